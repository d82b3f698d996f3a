"""Colab from a badge: the badge and setup cell come from settings.ini, and notebook 20 works in a stand-in Colab.

The stand-in Colab is a real Jupyter kernel (nbclient) with a fake `google.colab` package (and its `drive.mount`)
imported before any cell, as Colab does. The setup cell then really pip-installs the package - from the local
checkout (`AMOC_NB_SOURCE`), without dependencies, into a temporary folder (`PIP_TARGET`) - and the lesson imports it
from there. Notebook 20 must mount Google Drive by default and write its runs there.
"""
import json, os, shutil, subprocess, sys, textwrap
from configparser import ConfigParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import colab  # noqa: E402  (tools/colab.py)

NBS = ROOT/'nbs'
OWNED = ('index.ipynb', '20_train_gpu.ipynb', '22_explorer.ipynb')   # the rest get the cells when the lead runs the tool


def _nb(name): return json.loads((NBS/name).read_text(encoding='utf-8'))


def test_badge_and_setup_cell_come_from_settings():
    cfg = colab.settings()
    assert cfg.get('install_ref'), 'settings.ini needs install_ref (the branch or tag Colab installs)'
    for name in OWNED:
        nb = _nb(name)
        assert colab.problems(nb, name, cfg) == [], name
        cells = nb['cells']
        assert colab.is_badge(cells[1]) and colab.is_setup(cells[2]), f'{name}: badge and setup cell right after the title'
        assert colab.colab_url(name, cfg) in colab._src(cells[1])
        assert f"git+{cfg['git_url']}@{cfg['install_ref']}" in colab._src(cells[2])
        assert nb['metadata']['kernelspec']['name'] == 'python3'        # JupyterLab and Colab do not ask for a kernel
    setups = {colab._src(c) for p in NBS.glob('*.ipynb') for c in _nb(p.name)['cells'] if colab.is_setup(c)}
    assert len(setups) == 1, 'the setup cell must be identical in every notebook'
    assert 'mount' not in setups.pop()


def test_check_passes_on_every_notebook_that_has_the_cells():
    have = [p for p in sorted(NBS.glob('*.ipynb')) if any(map(colab.is_badge, _nb(p.name)['cells']))]
    assert len(have) >= len(OWNED)
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'colab.py'), '--check', *map(str, have)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_tool_is_idempotent_on_any_notebook_and_follows_git_url(tmp_path):
    cfg = colab.settings()
    for name in ('05_losses.ipynb', '21_analysis.ipynb', '20_train_gpu.ipynb'):   # read only: the tool runs on copies
        nb = _nb(name)
        n_cells = len([c for c in nb['cells'] if not (colab.is_badge(c) or colab.is_setup(c))])
        once = colab.dumps(colab.apply(json.loads(json.dumps(nb)), name, cfg))
        twice = colab.dumps(colab.apply(json.loads(once), name, cfg))
        assert once == twice, f'{name}: a second run changed the notebook'
        new = json.loads(once)
        assert len(new['cells']) == n_cells + 2 and new['cells'][0]['source'][0].startswith('# ')
        had = any(map(colab.is_badge, nb['cells'])) and any(map(colab.is_setup, nb['cells']))
        assert colab.problems(new, name, cfg) == []
        assert colab.problems(nb, name, cfg) == ([] if had else [f'{name}: no badge cell'])
        stale = json.loads(once); stale['cells'][1]['source'] = ['[![Open In Colab](' + colab.BADGE_SVG + ')](old)']
        assert 'stale' in colab.problems(stale, name, cfg)[0]
    # the render command on a copy: a new git_url / install_ref changes every badge, the setup cell and the README
    (tmp_path/'nbs').mkdir(); (tmp_path/'tools').mkdir(); (tmp_path/'.ci').mkdir()
    for name in ('index.ipynb', '05_losses.ipynb', '20_train_gpu.ipynb'): shutil.copy(NBS/name, tmp_path/'nbs'/name)
    shutil.copy(ROOT/'tools'/'colab.py', tmp_path/'tools'); shutil.copy(ROOT/'.ci'/'readme.py', tmp_path/'.ci')
    ini = (ROOT/'settings.ini').read_text().replace(cfg['git_url'], 'https://github.com/someone/else')
    (tmp_path/'settings.ini').write_text(ini.replace(f"install_ref = {cfg['install_ref']}", 'install_ref = v9.9'))
    nbs = sorted(str(p) for p in (tmp_path/'nbs').glob('*.ipynb'))
    subprocess.run([sys.executable, str(tmp_path/'tools'/'colab.py'), *nbs], check=True, capture_output=True)
    subprocess.run([sys.executable, str(tmp_path/'.ci'/'readme.py')], check=True, capture_output=True)
    subprocess.run([sys.executable, str(tmp_path/'tools'/'colab.py'), '--check', *nbs], check=True, capture_output=True)
    for p in nbs:
        text = Path(p).read_text()
        assert f'colab.research.google.com/github/someone/else/blob/v9.9/nbs/{Path(p).name}' in text
        assert 'git+https://github.com/someone/else@v9.9' in text and 'amoc-nb/amoc_nb' not in text
    readme = (tmp_path/'README.md').read_text()
    assert 'colab.research.google.com/github/someone/else/blob/v9.9/nbs/index.ipynb' in readme


def test_readme_has_the_badge_but_not_the_setup_cell():
    readme = (ROOT/'README.md').read_text()
    assert colab.badge_markdown('index.ipynb') in readme
    assert colab.SETUP_MARK not in readme and 'AMOC_NB_SOURCE' not in readme
    assert 'jupyter lab nbs/' in readme


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, 'run', lambda *a, **k: calls.append(a))
    monkeypatch.delitem(sys.modules, 'google.colab', raising=False)
    exec(colab.setup_source(), {})
    assert calls == []
    monkeypatch.setitem(sys.modules, 'google.colab', type(sys)('google.colab'))
    exec(colab.setup_source(), {})                      # and in Colab it pip-installs the spec from settings.ini
    assert calls and calls[0][0][-1] == colab.install_spec() and calls[0][0][1:4] == ['-m', 'pip', 'install']


STANDIN_DRIVE = '''
"""Stand-in for google.colab.drive: mount() makes MyDrive under the mount point and records the call."""
import json, os
from pathlib import Path
calls = []
def mount(mountpoint, force_remount=False, **kw):
    calls.append(str(mountpoint))
    (Path(mountpoint)/'MyDrive').mkdir(parents=True, exist_ok=True)
    Path(os.environ['STANDIN_LOG']).write_text(json.dumps(calls))
'''


def _kernel_env(tmp_path, session: int):
    "A fresh Colab machine (its own install target and working folder) with the same Google Drive every session."
    standin, target, mount, work = (tmp_path/'standin', tmp_path/f'target{session}', tmp_path/'drive', tmp_path/f'work{session}')
    for d in (standin/'google'/'colab', target, work): d.mkdir(parents=True, exist_ok=True)
    (standin/'google'/'colab'/'__init__.py').write_text('"Stand-in for Colab\'s google.colab package."\n')
    (standin/'google'/'colab'/'drive.py').write_text(textwrap.dedent(STANDIN_DRIVE))
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'AMOC_RUNS_DIR', 'PYTHONPATH')}
    env.update(PYTHONPATH=os.pathsep.join([str(standin), str(target)]), PIP_TARGET=str(target), PIP_NO_DEPS='1',
               PIP_NO_BUILD_ISOLATION='1', PIP_DISABLE_PIP_VERSION_CHECK='1', AMOC_NB_SOURCE=str(ROOT),
               AMOC_DRIVE_MOUNT=str(mount), STANDIN_LOG=str(tmp_path/f'mounts{session}.json'), OMP_NUM_THREADS='1',
               MPLBACKEND='Agg')
    return env, target, mount, work


def _run_in_standin_colab(tmp_path, session: int):
    "Run the setup cell and notebook 20 up to its small run in a new kernel, as Colab's run-all does; return what it saw."
    import nbformat
    from nbclient import NotebookClient
    env, target, mount, work = _kernel_env(tmp_path, session)
    nb = nbformat.reads((NBS/'20_train_gpu.ipynb').read_text(), as_version=4)
    cells = nb.cells
    assert colab.is_setup(cells[2])
    last = next(i for i, c in enumerate(cells) if c.cell_type == 'code' and 'pretrain(half' in c.source)
    colab_start = nbformat.v4.new_code_cell('import google.colab  # Colab imports it before any cell runs')
    report = nbformat.v4.new_code_cell(textwrap.dedent('''\
        import json, amoc_nb
        print('REPORT' + json.dumps(dict(pkg=amoc_nb.__file__, run_root=str(RUN_ROOT), use_drive=USE_DRIVE,
                                         in_colab=IN_COLAB, has_gpu=HAS_GPU)))'''))
    nb.cells = [colab_start] + cells[:last + 1] + [report]
    old_cwd, saved = os.getcwd(), dict(os.environ)
    os.chdir(work)                                     # the kernel starts in the client's working directory
    try:
        os.environ.clear(); os.environ.update(env)     # nbclient's kernel inherits this environment
        NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': str(work)}}).execute()
    finally:
        os.environ.clear(); os.environ.update(saved); os.chdir(old_cwd)
    out = '\n'.join(o.get('text', '') for c in nb.cells if c.cell_type == 'code' for o in c.outputs)
    rep = json.loads(out.split('REPORT')[-1].splitlines()[0])
    return rep, out, target, mount, work


def test_notebook_20_in_a_standin_colab(tmp_path):
    pytest.importorskip('nbclient'); pytest.importorskip('ipykernel')
    for session in (1, 2):                             # 2: "run all" again on a new machine after a disconnect
        rep, out, target, mount, work = _run_in_standin_colab(tmp_path, session)
        # the setup cell really installed the package into this machine's target folder; the lesson imported it there
        assert Path(rep['pkg']).resolve().is_relative_to(target.resolve()), rep['pkg']
        assert (target/'amoc_nb'/'widgets.py').exists() and any(target.glob('amoc_nb-*.dist-info'))
        # in Colab, Drive is mounted by default and the runs are written there (and nowhere else)
        assert rep['in_colab'] and rep['use_drive']
        assert json.loads((tmp_path/f'mounts{session}.json').read_text()) == [str(mount)]
        runs = mount/'MyDrive'/'amoc_runs'
        assert Path(rep['run_root']) == runs
        assert (runs/'small-ACC'/'checkpoint.pt').exists() and (runs/'small-ACC-whole'/'checkpoint.pt').exists()
        assert [json.loads(l)['epoch'] for l in (runs/'small-ACC'/'metrics.jsonl').read_text().splitlines()] == [1, 2]
        assert not (work/'runs').exists()
        if not rep['has_gpu']: assert 'the preset run is skipped' in out     # the GPU cell is guarded by HAS_GPU


def test_lessons_import_only_runtime_requirements():
    "A runtime install (`pip install -e .`, or the Colab setup cell) is enough for every lesson: no dev-only imports."
    import importlib.metadata as md, re as _re
    from packaging.requirements import Requirement
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini'); cfg = cfg['DEFAULT']
    todo, runtime = [Requirement(r).name for r in cfg['requirements'].split()], set()
    while todo:                                        # the runtime requirements and everything they pull in
        name = todo.pop().lower().replace('_', '-')
        if name in runtime: continue
        runtime.add(name)
        try: reqs = md.requires(name) or []
        except md.PackageNotFoundError: continue
        todo += [Requirement(r).name for r in reqs if 'extra ==' not in r]
    provided = {mod for mod, dists in md.packages_distributions().items()
                if any(d.lower().replace('_', '-') in runtime for d in dists)}
    optional = {'google': 'Colab itself', 'imagecorruptions': 'the corruptions extra, imported inside a function'}
    bad = []
    for p in sorted(NBS.glob('*.ipynb')):
        for c in _nb(p.name)['cells']:
            if c['cell_type'] != 'code': continue
            for line in colab._src(c).splitlines():
                m = _re.match(r'(?:from\s+(\w+)[\w.]*\s+import|import\s+(\w+))', line)   # top-level imports only
                mod = m and (m[1] or m[2])
                if mod and mod not in sys.stdlib_module_names and mod != 'amoc_nb' and mod not in provided \
                        and mod not in optional:
                    bad.append(f'{p.name}: {line.strip()}')
    assert not bad, 'lessons import packages that are not runtime requirements (settings.ini requirements):\n' + '\n'.join(bad)
