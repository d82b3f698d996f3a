"""The course website (tools/website.py): order, titles, badges, links, local MathJax, saved outputs only; folded
engineering and test cells; the notebooks behind the download buttons; two editions with their own navigation.

.ci/run builds the site (with -W) before the tests; run alone, this builds it if it is not there.
"""
import html as htmllib, json, os, re, subprocess, sys
from pathlib import Path
from urllib.parse import urlsplit, unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT/'docs'/'_build'/'html'
sys.path.insert(0, str(ROOT/'tools'))
import colab, website  # noqa: E402


@pytest.fixture(scope='module')
def site():
    if not (SITE/'index.html').exists():
        import importlib.util
        if importlib.util.find_spec('myst_nb') is None:
            if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'): pytest.fail('CI=true and myst-nb is missing')
            pytest.skip('no built site and no myst-nb: pip install -e ".[docs]"')
        subprocess.run([sys.executable, str(ROOT/'tools'/'website.py')], check=True)
    return SITE


def _page(name): return (SITE/f'{name}.html').read_text(encoding='utf-8')
def _nb(stem): return json.loads((ROOT/'nbs'/f'{stem}.ipynb').read_text(encoding='utf-8'))


def test_staging_drops_setup_and_hidden_cells_and_keeps_outputs():
    nb = {'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': '# T\n> d'},
                    {'cell_type': 'code', 'metadata': {}, 'execution_count': 1, 'source': '#| hide\nsecret = 1', 'outputs': []},
                    {'cell_type': 'code', 'metadata': {}, 'execution_count': 2, 'source': '#| default_exp x', 'outputs': []},
                    {'cell_type': 'code', 'metadata': {}, 'execution_count': 3, 'source': '#| export\ndef f(): pass',
                     'outputs': [{'output_type': 'stream', 'name': 'stdout', 'text': 'kept\n'}]}],
          'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    out = website.stage_notebook(nb, 'x.ipynb', colab.settings())
    srcs = [colab._src(c) for c in out['cells']]
    assert srcs[0] == '# T\n> d' and colab.colab_url('x.ipynb') in srcs[1] and srcs[2] == 'def f(): pass'
    assert 'tags' not in out['cells'][2]['metadata']                       # a short exported cell stays in view
    assert '(colab-badge.svg)' in srcs[1]                                  # the badge image comes from the site
    assert len(srcs) == 3 and out['cells'][2]['outputs'][0]['text'] == 'kept\n'
    assert not any(colab.SETUP_MARK in s or 'secret' in s for s in srcs)


def test_order_titles_and_badges(site):
    order = website.lesson_order(ROOT/'nbs')
    table = re.findall(r'^\| \[([\w.-]+)\]\(nbs/\1\.ipynb\)', (ROOT/'README.md').read_text(), re.M)
    assert [s for s in order if s in table] == [s for s in table if (ROOT/'nbs'/f'{s}.ipynb').exists()]
    assert set(order) == {p.stem for p in (ROOT/'nbs').glob('*.ipynb')} - {'index'}
    course = [s for s in order if not s[0].isdigit()]
    assert order[:len(course)] == course and set(course) >= {'glossary'} & set(order), order   # pages without a number
    home = _page('index')
    nav = re.search(r'<nav class="bd-links bd-docs-nav".*?</nav>', home, re.S)[0]
    assert re.findall(r'class="reference internal" href="([\w.-]+)\.html"', nav) == order
    captions = re.findall(r'<p aria-level="2" class="caption" role="heading"><span class="caption-text">([^<]+)</span>', nav)
    assert captions == ['Course', 'Lessons'], captions
    for stem in ['index'] + order:
        page = _page(stem)
        h1 = htmllib.unescape(re.sub(r'<[^>]+>', '', re.search(r'<h1[^>]*>(.*?)</h1>', page, re.S)[1])).strip(' #¶\n')
        assert h1 == website.title(_nb(stem)), stem
        assert f'href="{colab.colab_url(stem + ".ipynb")}"' in page, f'{stem}: no Colab badge'
        assert colab.SETUP_MARK not in page and 'AMOC_NB_SOURCE' not in page, f'{stem}: the setup cell leaked'
        assert not re.search(r'<pre>(?:<span></span>)?#\|', page), f'{stem}: an nbdev directive is shown'


def test_nav_titles_and_pages_without_a_number(tmp_path):
    "glossary.ipynb, teachers.ipynb (no number) go first, as 'Course' pages; the lessons follow the index's tables."
    for stem in ['index', '00_a', '01_b', '02_c', 'teachers', 'glossary', 'zz_extra']:
        (tmp_path/f'{stem}.ipynb').write_text(json.dumps({'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': (
            '| # | lesson |\n|---|---|\n| 01 | [B](01_b.ipynb) |\n| 00 | [A](00_a.ipynb) |\n\nsee [g](glossary.ipynb)'
            if stem == 'index' else f'# {stem}')}]}))
    assert website.lesson_order(tmp_path) == ['glossary', 'teachers', 'zz_extra', '01_b', '00_a', '02_c']
    assert website.nav_title('06_pretrain', 'AMOC pre-training') == '06 · AMOC pre-training'
    assert website.nav_title('glossary', 'Glossary') == 'Glossary'


def test_which_code_the_site_folds():
    "The rule of website.py's docstring: long exported cells and silent test cells fold; directives decide first."
    long_export, long_test = '#| export\n' + 'x = 1\n' * 31, 'x = 1\n' * 5 + 'assert x == 1'
    assert website.site_tags(long_export) == ['hide-input']
    assert website.site_tags('#| export\n' + 'x = 1\n' * 30) == []
    assert website.site_tags(long_test) == ['hide-input']
    assert website.site_tags(long_test, outputs=[{'output_type': 'stream'}]) == []       # it shows something: a demo
    assert website.site_tags('assert 1 == 1') == []                                      # a one-line check stays in view
    assert website.site_tags('#| echo: false\nplot()') == ['remove-input']
    assert website.site_tags('#| code-fold: true\nplot()') == ['hide-input']
    assert website.site_tags('#| code-fold: false\n' + long_export) == []
    assert website.site_tags('# exercise: check\n' + long_test) == []
    nb = {'cells': [{'cell_type': 'code', 'metadata': {}, 'execution_count': 1, 'source': long_export, 'outputs': []}],
          'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    staged = website.stage_notebook(nb, 'x.ipynb', colab.settings())
    assert staged['cells'][-1]['metadata']['tags'] == ['hide-input'] and nb['cells'][0]['metadata'] == {}


def test_long_engineering_and_tests_are_folded_on_the_site(site):
    "Lesson 13 keeps its engine code and tests in the notebook; the page folds them (collapsed, with a toggle)."
    nb = website.stage_notebook(_nb('13_experiments'), '13_experiments.ipynb', colab.settings())
    want = sum(bool({'hide-input', 'remove-input'} & set(c['metadata'].get('tags', []))) for c in nb['cells'])
    page = _page('13_experiments')
    assert want >= 5 and page.count('tag_hide-input') + page.count('tag_remove-input') == want
    assert page.count('<details class="admonition hide above-input"') >= want - page.count('tag_remove-input')


def test_download_button_gives_the_notebook(site):
    "The download button of every page points at the page's own notebook, shipped in _sources/."
    editions = pytest.importorskip('editions')
    pages = [SITE/f'{s}.html' for s in ['index'] + website.lesson_order(ROOT/'nbs')] + sorted((SITE/'student').glob('[0-9]*.html'))
    for page in pages:
        text = page.read_text(encoding='utf-8')
        href = re.search(r'<a href="([^"]+)" target="_blank"\s+class="btn btn-sm btn-download-source-button', text)[1]
        stem = page.stem
        assert href.endswith(f'_sources/{"student/" if page.parent.name == "student" else ""}{stem}.ipynb'), (page, href)
        nb = json.loads((page.parent/href).read_text(encoding='utf-8'))
        assert nb['nbformat'] == 4 and nb['cells'], href
        if page.parent.name == 'student':
            assert 'NotImplementedError' in json.dumps(nb) and editions.has_exercises(_nb(stem))
        else:
            assert nb == _nb(stem), f'{href} is not nbs/{stem}.ipynb'
            assert any(colab.is_setup(c) for c in nb['cells']) or not stem[0].isdigit(), f'{href}: not runnable in Colab'


def test_every_lesson_page_shows_an_output(site):
    "No empty lesson page: each lesson (00-29) shows at least one saved output."
    for stem in [s for s in website.lesson_order(ROOT/'nbs') if s[:2].isdigit() and int(s[:2]) < 30]:
        assert _page(stem).count('<div class="cell_output docutils container">') >= 1, f'{stem}: no output on the page'
    outputs = _page('13_experiments').split('<div class="cell_output docutils container">')[1:]
    assert any('<table' in o.split('<div class="cell ')[0] for o in outputs), "lesson 13's report is not a table"
    assert not any(re.search(r'<pre>[^<]*\|\s*-{3,}', o) for o in outputs), 'lesson 13 prints a raw Markdown table'


def test_links_resolve_and_mathjax_is_local(site):
    for page in [*SITE.glob('*.html'), *SITE.glob('student/*.html')]:
        text = page.read_text(encoding='utf-8')
        for ref in re.findall(r'(?:href|src)="([^"]+)"', text):
            u = urlsplit(htmllib.unescape(ref))
            if u.scheme or u.netloc or not u.path: continue           # external (the badge) or an anchor
            assert (page.parent/unquote(u.path)).exists(), f'{page.name}: broken link {ref}'
        for src in re.findall(r'<script[^>]+src="([^"]+)"', text):
            assert not urlsplit(src).netloc, f'{page.name}: script from the internet: {src}'
    assert re.search(r'<script[^>]+src="_static/mathjax/es5/tex-chtml\.js', _page('21_analysis'))
    assert (SITE/'_static'/'mathjax'/'es5'/'output'/'chtml'/'fonts'/'woff-v2'/'MathJax_Main-Regular.woff').exists()


def test_pages_show_the_saved_outputs_and_nothing_else(site):
    "Nothing is executed at build time: a page has exactly the outputs its notebook saved."
    for stem in website.lesson_order(ROOT/'nbs'):
        nb = website.stage_notebook(_nb(stem), f'{stem}.ipynb', colab.settings())
        saved = sum(bool(c.get('outputs')) for c in nb['cells'] if c['cell_type'] == 'code')
        shown = _page(stem).count('<div class="cell_output docutils container">')
        assert shown == saved, f'{stem}: {shown} output blocks on the page, {saved} saved in the notebook'
    figs = [p for p in re.findall(r'<img[^>]+src="(_images/[^"]+\.png)"', _page('21_analysis'))]
    assert figs and all((SITE/f).stat().st_size > 1000 for f in figs)


def test_student_edition_pages(site):
    "Lessons with exercises also appear as the student edition: the stubs, not the solutions, in its own navigation."
    editions = pytest.importorskip('editions')
    order = website.lesson_order(ROOT/'nbs')
    with_ex = [s for s in order if s[0].isdigit() and editions.has_exercises(_nb(s))]
    assert sorted(p.stem for p in (SITE/'student').glob('*.html')) == sorted(with_ex + ['index'])
    nav = re.search(r'<nav class="bd-links bd-docs-nav".*?</nav>', _page('index'), re.S)[0]
    assert re.findall(r'href="student/([\w.-]+)\.html"', nav) == ['index']     # its pages show inside its section
    nav = re.search(r'<nav class="bd-links bd-docs-nav".*?</nav>', (SITE/'student'/'index.html').read_text(encoding='utf-8'), re.S)[0]
    assert re.findall(r'href="([\w.-]+)\.html"', nav) == with_ex
    assert 'href="student/index.html"' in re.search(r'<article class="bd-article">.*?</article>', _page('index'), re.S)[0]
    landing = (SITE/'student'/'index.html').read_text(encoding='utf-8')
    assert all(f'href="{s}.html"' in landing for s in with_ex)
    folder = 'student' if (ROOT/'student').is_dir() else None       # the committed edition has its own Colab badges
    for stem in with_ex:
        page = (SITE/'student'/f'{stem}.html').read_text(encoding='utf-8')
        assert 'Student edition' in page and 'NotImplementedError' in page, stem
        assert page.count('NotImplementedError') > _page(stem).count('NotImplementedError'), stem
        h1 = htmllib.unescape(re.sub(r'<[^>]+>', '', re.search(r'<h1[^>]*>(.*?)</h1>', page, re.S)[1])).strip(' #¶\n')
        assert h1 == website.STUDENT_TITLE + website.title(_nb(stem)), stem
        url = colab.colab_url(stem + '.ipynb', {**colab.settings(), 'nbs_path': folder} if folder else None)
        assert f'href="{url}"' in page, f'student/{stem}: no Colab badge for {url}'
        assert '/nbs/student/' not in page, f'student/{stem}: a launch link to a notebook that does not exist'


def _prev_next(page: Path):
    area = re.search(r'<div class="prev-next-area">.*?</div>\s*</footer>|<div class="prev-next-area">.*?</div>\s*</div>', page.read_text(encoding='utf-8'), re.S)
    links = dict(re.findall(r'<a class="(left-prev|right-next)"\s+href="([^"]+)"', area[0])) if area else {}
    return links.get('left-prev'), links.get('right-next')


def test_prev_next_stay_within_each_edition(site):
    "Teacher's pages lead to teacher's pages, student pages to student pages: never across."
    order = website.lesson_order(ROOT/'nbs')
    lessons = [s for s in order if s[0].isdigit()]
    teacher = ['index'] + lessons + [s for s in order if not s[0].isdigit()]
    for i, stem in enumerate(teacher):
        prev, nxt = _prev_next(SITE/f'{stem}.html')
        assert prev == (f'{teacher[i - 1]}.html' if i else None), (stem, prev)
        assert nxt == (f'{teacher[i + 1]}.html' if i + 1 < len(teacher) else None), (stem, nxt)
    student = ['index'] + sorted((p.stem for p in (SITE/'student').glob('[0-9]*.html')), key=lessons.index)
    for i, stem in enumerate(student):
        prev, nxt = _prev_next(SITE/'student'/f'{stem}.html')
        assert prev == (f'{student[i - 1]}.html' if i else None), (stem, prev)
        assert nxt == (f'{student[i + 1]}.html' if i + 1 < len(student) else None), (stem, nxt)


def test_lessons_link_each_other():
    stems = ['05_losses', '06_pretrain', '21_analysis']
    md = 'lesson 05, `lesson 05`, [lesson 05](x.ipynb), $lesson 05$, Lesson 21, lesson 99, lesson 06'
    assert website.link_lessons(md, stems, this='06_pretrain') == (
        '[lesson 05](05_losses.ipynb), `lesson 05`, [lesson 05](x.ipynb), $lesson 05$, '
        '[Lesson 21](21_analysis.ipynb), lesson 99, lesson 06')


def test_lesson_mentions_are_links_on_the_site(site):
    order = website.lesson_order(ROOT/'nbs')
    by_num = {s.split('_')[0]: s for s in order}
    checked = 0
    for stem in order:
        prose = '\n'.join(colab._src(c) for c in _nb(stem)['cells'] if c['cell_type'] == 'markdown')
        prose = website.PROTECTED.sub('', prose)
        for num in set(website.LESSON_REF.findall(prose)):
            target = by_num.get(num[1])
            if target and target != stem:
                body = re.search(r'<article class="bd-article">.*?</article>', _page(stem), re.S)[0]   # not the nav
                assert f'href="{target}.html"' in body, f'{stem}: "lesson {num[1]}" is not a link'
                checked += 1
    assert checked >= 5
