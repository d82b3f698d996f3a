"""The published student edition (`student/`, written by tools/editions.py): what it holds and how it is kept in sync.

- `python tools/editions.py --check` (CI runs it in .ci/run) notices a missing, stale or extra student notebook and
  names the fix;
- its Colab badges open `student/<name>.ipynb`, its links to notebooks without a student version go to `../nbs/`;
- every student notebook is a valid nbgrader source: nbgrader's own metadata validator accepts it, its ClearSolutions
  keeps each stub's signature, and no cell but a solution cell holds nbgrader's solution delimiters.
(tests/test_nbgrader.py runs the full generate_assignment + autograde pipeline on one lesson.)
"""
import importlib.util, json, re, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import colab, editions  # noqa: E402  (tools/colab.py, tools/editions.py)


@pytest.fixture(scope='module')
def edition(tmp_path_factory):
    "The student edition as nbs/ gives it today, built into a folder named student/ (as the committed one is)."
    out = tmp_path_factory.mktemp('ed')/'student'
    written = editions.build(None, out)
    assert written, 'no lesson has exercises'
    return out


def test_check_notices_stale_missing_and_extra_notebooks(edition, tmp_path):
    out = tmp_path/'student'
    shutil.copytree(edition, out)
    assert editions.check(out) == []
    names = sorted(p.name for p in out.glob('*.ipynb'))
    (out/names[0]).unlink()
    nb = json.loads((out/names[1]).read_text()); nb['cells'][0]['source'] = '# changed by hand'
    (out/names[1]).write_text(json.dumps(nb, indent=1) + '\n')
    (out/'99_gone.ipynb').write_text((out/names[2]).read_text())
    probs = editions.check(out)
    assert probs == [f'missing: {names[0]}', 'no teacher notebook with exercises: 99_gone.ipynb',
                     f'differs from nbs/{names[1]}'], probs
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'editions.py'), '--check', '--out', str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and 'python tools/editions.py' in r.stderr, r.stderr     # the message names the fix
    editions.build(None, out)                                                           # the fix fixes it
    assert editions.check(out) == [] and not (out/'99_gone.ipynb').exists()


def test_badges_open_the_student_edition(edition):
    cfg = colab.settings()
    for p in sorted(edition.glob('*.ipynb')):
        nb = editions.read_nb(p)
        badge = [colab._src(c) for c in nb['cells'] if colab.is_badge(c)]
        assert len(badge) == 1 and f"/blob/{cfg['install_ref']}/student/{p.name})" in badge[0], badge
        assert colab.problems(nb, p.name, cfg, folder='student') == []
        assert sum(map(colab.is_setup, nb['cells'])) == 1
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'colab.py'), '--check', *map(str, sorted(edition.glob('*.ipynb')))],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_links_resolve_from_student_folder(edition):
    "A link in a student notebook goes to a student notebook that exists, or to the teacher's edition in ../nbs/."
    stems = {p.stem for p in edition.glob('*.ipynb')}
    for p in sorted(edition.glob('*.ipynb')):
        text = '\n'.join(editions.src(c) for c in editions.read_nb(p)['cells'] if c['cell_type'] == 'markdown')
        for target in re.findall(r'\]\(((?:\.\./nbs/)?[\w.-]+)\.ipynb(?:#[^)]*)?\)', text):
            if target.startswith('../nbs/'): assert (ROOT/'nbs'/f'{target[7:]}.ipynb').exists(), (p.name, target)
            else: assert target in stems, f'{p.name} links {target}.ipynb, which has no student version'


def test_every_notebook_is_a_valid_nbgrader_source(edition):
    nbformat = pytest.importorskip('nbformat')
    assert importlib.util.find_spec('nbgrader'), 'nbgrader is a dev dependency: pip install -e ".[dev]"'
    from nbgrader.nbgraderformat import MetadataValidator
    from nbgrader.preprocessors import ClearSolutions
    for p in sorted(edition.glob('*.ipynb')):
        nb = nbformat.read(str(p), as_version=4)
        MetadataValidator().validate_nb(nb)                         # schema 3, grade ids unique, points on tests
        kinds = [(c.metadata.nbgrader['solution'], c.metadata.nbgrader['grade']) for c in nb.cells]
        assert (True, False) in kinds and (False, True) in kinds, f'{p.name}: solution cells and autograder tests'
        for c in nb.cells:
            if not c.metadata.nbgrader['solution']:                 # nbgrader would cut the cell there
                assert not re.search('(BEGIN|END) SOLUTION', c.source), f'{p.name}: a delimiter in {c.source[:80]!r}'
        released, _ = ClearSolutions().preprocess(nb, {})
        for c in released.cells:
            if c.metadata.nbgrader['solution'] and c.cell_type == 'code':
                assert re.search(r'^(async )?def \w+\(', c.source, re.M) and 'raise NotImplementedError()' in c.source, \
                    f'{p.name}: nbgrader released a stub without its signature:\n{c.source}'


def test_grading_skips_long_and_gpu_cells(edition):
    "The autograder's extra preprocessor (tools/editions.py SkipFlaggedCells) blanks `#| cuda`/`#| slow` cells only."
    nbformat = pytest.importorskip('nbformat')
    pytest.importorskip('nbconvert')
    pre = editions.skip_flagged_cells()()
    assert pre.enabled
    flagged = 0
    for p in sorted(edition.glob('*.ipynb')):
        nb = nbformat.read(str(p), as_version=4)
        before = [c.source for c in nb.cells]
        out, _ = pre(nb, {})
        for c, src in zip(out.cells, before):
            if c.cell_type == 'code' and editions.skipped({'source': src, 'cell_type': 'code'}):
                flagged += 1
                assert editions.SKIPPED_WHEN_GRADING in c.source and c.source.startswith('#|'), c.source
                compile(c.source, p.name, 'exec')
            else: assert c.source == src
    assert flagged, 'no lesson has a #| cuda or #| slow cell: the test tests nothing'
