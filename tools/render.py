"""Render lessons: run each notebook top to bottom in a fresh kernel, in the reader's setting, and keep its outputs.

    python tools/render.py nbs/02_moco.ipynb [more notebooks ...]   # render these
    python tools/render.py --check [notebooks ...]                  # what CI checks (default: lessons 00-13)

The reader's setting: a fresh Jupyter kernel started in nbs/, without IN_TEST (so lessons run their full CPU
settings, not the shortened test ones), cells flagged `#| cuda` skipped (no GPU here) and `#| slow` skipped unless
--slow. Lessons that train something long cache their run directories under runs/ themselves, so rendering one
notebook again costs minutes. After the run, this machine's paths are replaced in the outputs (the repository root
by `.`, the temporary folder by `<tmp>`), and the hash of the notebook's code cells is stored in its metadata
(`amoc_render.code_sha256`, with the render's wall time `seconds`: the course path's CPU times): `--check` fails when a notebook's code changed since its outputs were rendered, when a
lesson has no figure, or when an output still shows an absolute path.
"""
from __future__ import annotations

import argparse, hashlib, json, os, re, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSONS = [f'{i:02d}_' for i in range(14)]                 # lessons 00-13 must have figures
ABS_PATH = re.compile(r'(/work/|/tmp/|/root/|/home/|/Users/|[A-Za-z]:\\\\Users\\\\)')
SKIP_FLAGS = ('cuda', 'notest')


SETUP_MARK = '# Setup, the same in every notebook (tools/colab.py'   # written from settings.ini, not lesson code

def code_hash(nb: dict) -> str:
    "sha256 of the notebook's code cells (sources, stripped of trailing white space), in order; the Colab setup cell aside."
    srcs = [''.join(c['source']) if isinstance(c['source'], list) else c['source']
            for c in nb['cells'] if c['cell_type'] == 'code']
    src = '\n\x00\n'.join(x.rstrip() for x in srcs if SETUP_MARK not in x)
    return hashlib.sha256(src.encode()).hexdigest()


def _texts(out: dict):
    if 'text' in out: yield ''.join(out['text']) if isinstance(out['text'], list) else out['text']
    for k, v in out.get('data', {}).items():
        if k.startswith('text/') or k == 'application/json':
            yield ''.join(v) if isinstance(v, list) else (v if isinstance(v, str) else json.dumps(v))
    if 'traceback' in out: yield '\n'.join(out['traceback'])


def problems(path: Path, lesson: bool | None = None) -> list[str]:
    "What `--check` reports for one notebook (empty when it is fine)."
    nb = json.loads(Path(path).read_text())
    name = Path(path).name
    lesson = any(name.startswith(p) for p in LESSONS) if lesson is None else lesson
    probs = []
    meta = nb.get('metadata', {}).get('amoc_render')
    if meta is None: probs.append(f'{name}: never rendered (run: python tools/render.py nbs/{name})')
    elif meta.get('code_sha256') != code_hash(nb):
        probs.append(f'{name}: its code changed since its outputs were rendered (run: python tools/render.py nbs/{name})')
    n_img = 0
    for i, c in enumerate(nb['cells']):
        for o in c.get('outputs', []):
            if 'image/png' in o.get('data', {}): n_img += 1
            if o.get('output_type') == 'error': probs.append(f'{name}: cell {i} saved an error ({o.get("ename")})')
            for t in _texts(o):
                m = ABS_PATH.search(t)
                if m: probs.append(f'{name}: cell {i} shows an absolute path ({t[max(0, m.start() - 20):m.end() + 30]!r})'); break
    if lesson and n_img == 0: probs.append(f'{name}: a lesson with no figure output')
    return probs


def _flags(src: str) -> set[str]:
    return {f for line in src.splitlines() if line.startswith('#|') for f in line[2:].split() if f in (*SKIP_FLAGS, 'slow')}


def _scrub(text: str) -> str:
    for p, r in ((str(ROOT / 'nbs') + '/', ''), (str(ROOT / 'nbs'), '.'), (str(ROOT) + '/', '../'), (str(ROOT), '..')):
        text = text.replace(p, r)
    for t in dict.fromkeys((os.path.realpath(tempfile.gettempdir()), tempfile.gettempdir())):   # each once: /tmp/x -> <tmp>/x
        text = re.sub(re.escape(t) + r'(?=/|\b|$)', '<tmp>', text)
    return text


def _scrub_outputs(nb) -> None:
    for c in nb.cells:
        for o in c.get('outputs', []):
            if 'text' in o: o['text'] = _scrub(o['text'])
            for k in list(o.get('data', {})):
                if k.startswith('text/') and isinstance(o['data'][k], str): o['data'][k] = _scrub(o['data'][k])


def render(path: Path, slow: bool = False, timeout: int = 1800) -> dict:
    "Execute `path` in a fresh kernel (reader's setting), scrub paths, store the code hash; returns timing info."
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    skip = set(SKIP_FLAGS) | (set() if slow else {'slow'})
    originals = {}
    for i, c in enumerate(nb.cells):                       # flagged cells: not run (a no-op), their old outputs dropped
        if c.cell_type == 'code' and _flags(c.source) & skip:
            originals[i] = c.source
            c.source = 'pass'
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}   # the reader's setting, not the test one
    env.setdefault('OMP_NUM_THREADS', '2')
    t0 = time.time()
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}})
    client.execute(env=env)
    for i, src in originals.items():
        c = nb.cells[i]; c.source = src; c.outputs = []; c.execution_count = None
    seconds = round(time.time() - t0, 1)
    _scrub_outputs(nb)
    nb.metadata['amoc_render'] = {'code_sha256': code_hash(json.loads(nbformat.writes(nb))), 'tool': 'tools/render.py',
                                  'skipped_flags': sorted(skip), 'seconds': seconds, 'threads': int(env['OMP_NUM_THREADS'])}
    nbformat.write(nb, path)
    return dict(notebook=path.name, seconds=seconds, skipped_cells=len(originals))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*', type=Path)
    ap.add_argument('--check', action='store_true', help='check saved outputs instead of rendering')
    ap.add_argument('--slow', action='store_true', help='also run cells flagged #| slow')
    a = ap.parse_args(argv)
    if a.check:
        nbs = a.notebooks or sorted(p for p in (ROOT / 'nbs').glob('*.ipynb') if any(p.name.startswith(l) for l in LESSONS))
        probs = [p for nb in nbs for p in problems(nb)]
        for p in probs: print(p, file=sys.stderr)
        print(f'{len(nbs) - len({p.split(":")[0] for p in probs})} of {len(nbs)} notebooks rendered and clean')
        return 1 if probs else 0
    if not a.notebooks: ap.error('name the notebooks to render (e.g. nbs/02_moco.ipynb)')
    for nb in a.notebooks:
        print(json.dumps(render(nb.resolve(), a.slow)), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
