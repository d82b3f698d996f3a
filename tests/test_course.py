"""The course as a path: every lesson has learning goals, a summary and a Next link to the next notebook of the path;
lessons link the glossary, whose anchors exist; the index's path table (tools/course_path.py) is up to date."""
import json, re, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import course_path  # noqa: E402

NBS = ROOT/'nbs'
LESSONS = [stem for stem, kind, _ in course_path.PATH if kind != 'engine']
ORDER = [stem for stem, _, _ in course_path.PATH]


def md(stem):
    nb = json.loads((NBS/f'{stem}.ipynb').read_text(encoding='utf-8'))
    return [course_path._src(c) for c in nb['cells'] if c['cell_type'] == 'markdown']


def slug(heading: str) -> str:
    "The anchor myst (myst_heading_anchors) gives a heading on the website."
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


GLOSSARY = {slug(m) for s in md('glossary') for m in re.findall(r'^##\s+(.+)$', s, re.M)}


def test_every_notebook_is_on_the_path():
    on_disk = {p.stem for p in NBS.glob('*.ipynb') if p.stem[:2].isdigit()}
    assert on_disk == set(ORDER), f'notebooks missing from tools/course_path.py PATH: {sorted(on_disk - set(ORDER))}'


@pytest.mark.parametrize('stem', LESSONS)
def test_lesson_has_goals_and_summary(stem):
    cells = md(stem)
    goals = [i for i, s in enumerate(cells) if re.search(r'^## Learning goals\s*$', s, re.M)]
    summ = [i for i, s in enumerate(cells) if re.search(r'^## Summary\s*$', s, re.M)]
    assert goals and goals[0] <= 4, 'the lesson opens (within its first markdown cells) with "## Learning goals"'
    assert len(re.findall(r'^\s*[-*] ', cells[goals[0]], re.M)) >= 3 or \
        len(re.findall(r'^\s*[-*] ', '\n'.join(cells[goals[0]:goals[0] + 2]), re.M)) >= 3, 'at least three goals'
    assert summ and summ[-1] > goals[0], 'a "## Summary" after the goals'


@pytest.mark.parametrize('stem', ORDER)
def test_ends_with_next_link(stem):
    last = md(stem)[-1]
    nxt = ORDER[ORDER.index(stem) + 1] if stem != ORDER[-1] else 'index'
    assert re.match(r'\*\*(Next|Back):\*\*', last.strip()), f'the last cell is the Next link, not {last[:80]!r}'
    assert f']({nxt}.ipynb' in last, f'the Next link goes to {nxt}.ipynb'


@pytest.mark.parametrize('stem', LESSONS)
def test_links_the_glossary(stem):
    text = '\n'.join(md(stem))
    anchors = re.findall(r'\]\(glossary\.ipynb#([\w-]+)\)', text)
    assert anchors, 'the lesson links the glossary at the first use of a term'
    assert set(anchors) <= GLOSSARY, f'anchors the glossary does not have: {sorted(set(anchors) - GLOSSARY)}'


def test_glossary_anchors_and_its_own_links():
    assert {'stdev', 'robev', 'aca', 'variant', 'recipe', 'memory-bank', 'dual-batchnorm'} <= GLOSSARY
    own = re.findall(r'\]\(#([\w-]+)\)', '\n'.join(md('glossary')))
    assert own and set(own) <= GLOSSARY


def test_index_path_is_up_to_date():
    assert course_path.check() == 0, 'run python tools/course_path.py && python .ci/readme.py'
    text = '\n'.join(md('index'))
    for stem in ORDER: assert f']({stem}.ipynb)' in text
    assert '](glossary.ipynb)' in text and '](teachers.ipynb)' in text


def test_times_rule():
    "The table's times follow its stated rule (a planted change of the rule would show here)."
    nb = course_path.read('02_moco')
    r = course_path.read_minutes(nb)
    assert r == pytest.approx(course_path.words(nb) / 200 + 0.5 * course_path.figures(nb))
    assert course_path.words(nb) > 500 and course_path.figures(nb) >= 1
    assert course_path.gpu_minutes(60, 8.1 * 0.3) == pytest.approx(1.0)
    assert course_path.fmt_min(0.4) == '< 1' and course_path.fmt_min(None) == '-' and course_path.fmt_min(12.4) == '12'
    assert course_path.fmt_time(0.2) == '1 s' and course_path.fmt_time(42) == '42 s' and course_path.fmt_time(150) == '2 min'
