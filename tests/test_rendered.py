"""Saved lesson outputs: made by tools/render.py, with figures, no absolute paths, and not stale (issue 11)."""
import importlib.util
import json
import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('render', ROOT / 'tools' / 'render.py')
render = importlib.util.module_from_spec(spec); spec.loader.exec_module(render)

# Every lesson 00-13 (render.LESSONS) must be rendered and clean, and so must 14 (distributed) and 21 (analysis).
RENDERED = sorted(p.stem for p in (ROOT / 'nbs').glob('*.ipynb') if any(p.name.startswith(l) for l in render.LESSONS))
RENDERED += ['14_distributed', '21_analysis']


def test_every_lesson_is_in_the_list():
    assert [n[:2] for n in RENDERED[:14]] == [f'{i:02d}' for i in range(14)], RENDERED


@pytest.mark.parametrize('name', RENDERED)
def test_rendered_lesson_is_clean(name):
    assert render.problems(ROOT / 'nbs' / f'{name}.ipynb') == []


def tiny_notebook(path: Path, root_path: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os, matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
                                          "import matplotlib.pyplot as plt"),
                nbformat.v4.new_code_cell(f"print({root_path!r} + '/runs/demo', os.environ.get('IN_TEST'))"),
                nbformat.v4.new_code_cell("fig, ax = plt.subplots(); ax.plot([0, 1]); ax.set_title('t'); plt.show()"),
                nbformat.v4.new_code_cell("#| cuda\nraise RuntimeError('needs a GPU')")]
    nbformat.write(nb, path)
    return path


def test_render_then_check_catches_stale_and_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.setenv('IN_TEST', '1')                              # the kernel must not inherit it
    p = tiny_notebook(tmp_path / '05_tiny.ipynb', str(render.ROOT))
    info = render.render(p)
    assert info['skipped_cells'] == 1
    nb = json.loads(p.read_text())
    out = ''.join(nb['cells'][1]['outputs'][0]['text'])
    assert out.strip() == '../runs/demo None'                       # repository root made relative; no IN_TEST
    assert render.problems(p) == []                                 # rendered, a figure, no paths
    assert nb['cells'][3]['outputs'] == []                          # the cuda cell was not run

    planted = json.loads(p.read_text())                             # an absolute path planted in an output
    planted['cells'][1]['outputs'][0]['text'] = ['/work/main/runs/demo\n']
    (tmp_path / '06_planted.ipynb').write_text(json.dumps(planted))
    assert any('absolute path' in x for x in render.problems(tmp_path / '06_planted.ipynb'))

    stale = json.loads(p.read_text())                               # code changed after rendering
    stale['cells'][2]['source'] = ["fig, ax = plt.subplots(); ax.plot([1, 0]); plt.show()"]
    (tmp_path / '07_stale.ipynb').write_text(json.dumps(stale))
    assert any('code changed' in x for x in render.problems(tmp_path / '07_stale.ipynb'))

    nofig = json.loads(p.read_text())                               # a lesson without a figure
    nofig['cells'][2]['outputs'] = []
    (tmp_path / '08_nofig.ipynb').write_text(json.dumps(nofig))
    assert any('no figure' in x for x in render.problems(tmp_path / '08_nofig.ipynb'))
    assert render.main(['--check', str(tmp_path / '08_nofig.ipynb')]) == 1


def test_scrub_makes_paths_relative_once():
    tmp = render.tempfile.gettempdir()
    assert render._scrub(f'{tmp}/tmpab12/a') == '<tmp>/tmpab12/a'          # not '<tmp><tmp>ab12/a'
    assert render._scrub(str(render.ROOT / 'runs' / 'demo')) == '../runs/demo'
    assert render._scrub(str(render.ROOT / 'nbs' / 'fig.png')) == 'fig.png'
    assert render.ABS_PATH.search(render._scrub(f'see {tmp}/x and {render.ROOT}/y')) is None
