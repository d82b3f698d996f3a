"""Put the "Open in Colab" badge and the setup cell at the top of notebooks, built from settings.ini.

One place holds where the package comes from: settings.ini `git_url` (the repository) and `install_ref` (the branch
or tag that Colab installs and the badges open). Everything else is derived here:

    python tools/colab.py nbs/*.ipynb           # insert or refresh badge + setup cell (idempotent)
    python tools/colab.py --check nbs/*.ipynb   # exit 1 if a notebook's badge or setup cell is missing or stale
    python tools/colab.py                       # = index, 20_train_gpu, 22_explorer (the notebooks this tool owns today)
    python tools/colab.py --check student/*.ipynb   # the student edition: its badges open student/<name>

A notebook in `student/` (the student edition, written by tools/editions.py) gets a badge that opens
`student/<name>.ipynb`, so a student opens the version without solutions; every other notebook's badge opens `nbs/`.

The badge is a markdown cell right after the title cell; the setup cell follows it. A notebook without a kernelspec
gets Python 3's, so JupyterLab and Colab start the kernel without asking. In Colab the setup cell
pip-installs the package from `git+<git_url>@<install_ref>` (`AMOC_NB_SOURCE` overrides it, for tests); anywhere
else it does nothing. It mounts nothing: notebook 20 asks for Google Drive itself.
"""
from __future__ import annotations
import argparse, json, re, sys
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BADGE_ID, SETUP_ID = 'colab-badge', 'colab-setup'
SETUP_MARK = '# Setup, the same in every notebook'
BADGE_SVG = 'https://colab.research.google.com/assets/colab-badge.svg'
DEFAULT_NBS = ('index.ipynb', '20_train_gpu.ipynb', '22_explorer.ipynb')
KERNELSPEC = {'display_name': 'Python 3 (ipykernel)', 'language': 'python', 'name': 'python3'}   # nbdev_clean keeps it


def settings(root: Path = ROOT) -> dict:
    cfg = ConfigParser(delimiters=['='])
    cfg.read(Path(root)/'settings.ini', encoding='utf-8')
    return dict(cfg['DEFAULT'])


def install_spec(cfg: dict | None = None) -> str:
    "What Colab pip-installs: `git+<git_url>@<install_ref>`."
    cfg = cfg or settings()
    return f"git+{cfg['git_url'].rstrip('/')}@{cfg.get('install_ref') or cfg.get('branch', 'main')}"


STUDENT = 'student'          # the student edition's folder (tools/editions.py)


def folder_of(path) -> str | None:
    "The repository folder a notebook's badge should open: 'student' for the student edition, else None (nbs_path)."
    return STUDENT if Path(path).resolve().parent.name == STUDENT else None


def colab_url(nb_name: str, cfg: dict | None = None, folder: str | None = None) -> str:
    """The Colab address that opens `<folder>/<nb_name>` (default folder: settings.ini nbs_path) of the repository at
    `install_ref` (GitHub repositories only)."""
    cfg = cfg or settings()
    m = re.match(r'https?://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?$', cfg['git_url'])
    if not m: raise ValueError(f"git_url must be a GitHub repository address, got {cfg['git_url']!r}")
    ref = cfg.get('install_ref') or cfg.get('branch', 'main')
    return f"https://colab.research.google.com/github/{m[1]}/{m[2]}/blob/{ref}/{folder or cfg.get('nbs_path', 'nbs')}/{nb_name}"


def badge_markdown(nb_name: str, cfg: dict | None = None, folder: str | None = None) -> str:
    return f'[![Open In Colab]({BADGE_SVG})]({colab_url(nb_name, cfg, folder)})'


def setup_source(cfg: dict | None = None) -> str:
    "The setup cell: identical in every notebook."
    return (f"#| hide\n"
            f"{SETUP_MARK} (tools/colab.py writes it from settings.ini): in Colab, install the package; elsewhere nothing.\n"
            f"import os, sys, subprocess\n"
            f"if 'google.colab' in sys.modules:\n"
            f"    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', "
            f"os.environ.get('AMOC_NB_SOURCE', {install_spec(cfg)!r})], check=True)")


def _src(cell) -> str:
    s = cell.get('source', '')
    return ''.join(s) if isinstance(s, list) else s

def _lines(text: str) -> list[str]: return text.splitlines(keepends=True)

def is_badge(cell) -> bool: return cell['cell_type'] == 'markdown' and BADGE_SVG in _src(cell)
def is_setup(cell) -> bool: return cell['cell_type'] == 'code' and SETUP_MARK in _src(cell)


def apply(nb: dict, nb_name: str, cfg: dict | None = None, folder: str | None = None) -> dict:
    """Return `nb` with exactly one badge cell (opening `<folder>/<nb_name>`, default nbs/) and one setup cell, right
    after the title cell (in place, idempotent)."""
    cfg = cfg or settings()
    old_setup = next((c for c in nb['cells'] if is_setup(c)), {})     # keeps its outputs (a rendered notebook)
    old_badge = next((c for c in nb['cells'] if is_badge(c)), {})     # and both keep their metadata (nbgrader's)
    cells = [c for c in nb['cells'] if not (is_badge(c) or is_setup(c))]
    first = 1 if cells and cells[0]['cell_type'] == 'markdown' and _src(cells[0]).lstrip().startswith('# ') else 0
    badge = {'cell_type': 'markdown', 'id': BADGE_ID, 'metadata': old_badge.get('metadata', {}), 'source': _lines(badge_markdown(nb_name, cfg, folder))}
    setup = {'cell_type': 'code', 'execution_count': old_setup.get('execution_count'), 'id': SETUP_ID,
             'metadata': old_setup.get('metadata', {}), 'outputs': old_setup.get('outputs', []),
             'source': _lines(setup_source(cfg))}
    nb['cells'] = cells[:first] + [badge, setup] + cells[first:]
    nb.setdefault('metadata', {}).setdefault('kernelspec', KERNELSPEC)    # JupyterLab and Colab start Python 3 unasked
    if nb.get('nbformat', 4) == 4 and nb.get('nbformat_minor', 0) < 5: nb['nbformat_minor'] = 5   # cell ids
    return nb


def problems(nb: dict, nb_name: str, cfg: dict | None = None, folder: str | None = None) -> list[str]:
    "Why `nb` is not what `apply` makes of it (empty: up to date)."
    have_b, have_s = sum(map(is_badge, nb['cells'])), sum(map(is_setup, nb['cells']))
    if not have_b or not have_s: return [f"{nb_name}: no {'badge' if not have_b else 'setup'} cell"]
    want = apply(json.loads(json.dumps(nb)), nb_name, cfg, folder)
    if dumps(want) == dumps(nb): return []
    fix = 'python tools/editions.py' if folder == STUDENT else f'python tools/colab.py nbs/{nb_name}'
    return [f'{nb_name}: badge or setup cell stale or misplaced (run {fix})']


def dumps(nb: dict) -> str: return json.dumps(nb, indent=1, ensure_ascii=False) + '\n'   # as nbdev writes them


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('notebooks', nargs='*', help=f"default: {', '.join(DEFAULT_NBS)} in nbs/")
    p.add_argument('--check', action='store_true', help='change nothing; exit 1 if a notebook is not up to date')
    a = p.parse_args(argv)
    cfg = settings()
    paths = [Path(n) for n in a.notebooks] or [ROOT/cfg.get('nbs_path', 'nbs')/n for n in DEFAULT_NBS]
    bad = []
    for path in paths:
        text = path.read_text(encoding='utf-8')
        nb = json.loads(text)
        if a.check: bad += problems(nb, path.name, cfg, folder_of(path)); continue
        new = dumps(apply(nb, path.name, cfg, folder_of(path)))
        if new != text: path.write_text(new, encoding='utf-8'); print('updated', path)
    if bad: print('\n'.join(bad), file=sys.stderr); return 1
    if a.check: print(f'badge and setup cell up to date in {len(paths)} notebook(s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
