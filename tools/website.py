"""Build the course website from the notebooks and their saved outputs (nothing is executed).

    pip install -e ".[docs]" && python tools/website.py     # -> docs/_build/html/index.html (git-ignored)

Steps: stage a copy of every notebook in nbs/ into docs/_build/src (lessons in the order of the README table; a
notebook the table does not list goes in by its number), with the "Open in Colab" badge of tools/colab.py on each page, the setup cell,
`#| hide` cells and nbdev's `#|` directive lines left out, and the lesson list as the site's table of contents; the
student edition (tools/editions.py: exercises without their solutions) of every lesson that has exercises; copy
MathJax 3 from the django-static-mathjax wheel into the site (no CDN); run Sphinx + myst-nb with warnings as errors
(`-W`; `--no-strict` to build anyway). The notebooks in nbs/ are never written.
"""
from __future__ import annotations
import argparse, copy, importlib.util, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import colab  # noqa: E402

BUILD = ROOT/'docs'/'_build'
BADGE_FILE = 'colab-badge.svg'        # docs/colab-badge.svg: the badge image, served by the site itself
TABLE_LINK = re.compile(r'^\|\s*\[([^\]]+)\]\(([\w.-]+)\.ipynb\)', re.M)   # a row of the README's lesson table


def lesson_order(nbs: Path) -> list[str]:
    "Notebook stems in the order of index.ipynb's lesson table; a notebook the table does not list goes in by its number."
    index = json.loads((nbs/'index.ipynb').read_text(encoding='utf-8'))
    text = '\n'.join(colab._src(c) for c in index['cells'] if c['cell_type'] == 'markdown')
    listed = [stem for _, stem in TABLE_LINK.findall(text) if (nbs/f'{stem}.ipynb').exists()]
    order = list(dict.fromkeys(listed))
    for stem in sorted(p.stem for p in nbs.glob('*.ipynb') if p.stem != 'index' and p.stem not in listed):
        order.insert(next((i for i, s in enumerate(order) if s > stem), len(order)), stem)   # by number among the rest
    return order


def title(nb: dict) -> str:
    "The lesson's title: the first markdown heading of the notebook (nbdev's title cell)."
    for c in nb['cells']:
        m = re.search(r'^#\s+(.+)$', colab._src(c), re.M) if c['cell_type'] == 'markdown' else None
        if m: return m[1].strip()
    return ''


def nav_title(stem: str, title: str) -> str:
    "The lesson's entry in the site's navigation: its number (as in the README table) and its title."
    return f"{stem.split('_')[0]} · {title or stem}"


def _directives(src: str) -> list[str]: return [l[3:].strip() for l in src.splitlines() if l.startswith('#|')]


LESSON_REF = re.compile(r'\b([Ll]essons?) (\d\d)\b')
PROTECTED = re.compile(r'(```.*?```|`[^`\n]*`|\[[^\]\n]*\]\([^)\n]*\)|\$\$.*?\$\$|\$[^$\n]*\$|<[^>\n]*>)', re.S)

def link_lessons(md: str, stems, this: str = '') -> str:
    "Turn 'lesson 05' in prose into a link to that lesson's page (not inside code, math, links or HTML)."
    by_num = {s.split('_')[0]: s for s in stems if s != this}
    def sub(m): return f'[{m[0]}]({by_num[m[2]]}.ipynb)' if m[2] in by_num else m[0]
    return ''.join(part if i % 2 else LESSON_REF.sub(sub, part) for i, part in enumerate(PROTECTED.split(md)))


def stage_notebook(nb: dict, name: str, cfg: dict, up: str = '', stems=()) -> dict:
    """What the web page shows: badge on top (image from the site), no setup/hidden cells, no `#|` lines (outputs
    untouched); with `stems`, 'lesson NN' in the prose links to that lesson."""
    nb = colab.apply(copy.deepcopy(nb), name, cfg)
    cells = []
    for c in nb['cells']:
        if colab.is_badge(c): c = {**c, 'source': colab._src(c).replace(colab.BADGE_SVG, up + BADGE_FILE)}
        elif c['cell_type'] == 'markdown' and stems: c = {**c, 'source': link_lessons(colab._src(c), stems, Path(name).stem)}
        if c['cell_type'] == 'code':
            src = colab._src(c)
            if colab.is_setup(c) or any(d.split(':')[0].strip() in ('hide', 'include: false') for d in _directives(src)):
                continue
            body = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip('\n')
            if not body and not c.get('outputs'): continue
            c = {**c, 'source': body}
        cells.append(c)
    nb['cells'] = cells
    nb.setdefault('metadata', {}).setdefault('kernelspec', {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'})
    nb['metadata'].setdefault('language_info', {'name': 'python'})
    return nb


def mathjax_dir() -> Path:
    spec = importlib.util.find_spec('mathjax')
    d = Path(list(spec.submodule_search_locations)[0])/'static'/'mathjax'/'es5' if spec else None
    if not d or not (d/'tex-chtml.js').exists():
        sys.exit('MathJax 3 not found: pip install -e ".[docs]" (it ships in the django-static-mathjax wheel)')
    return d


def stage(nbs: Path = ROOT/'nbs', build: Path = BUILD) -> dict:
    "Write docs/_build/src (the pages) and docs/_build/static (MathJax); return {'order': [...], 'titles': {...}}."
    cfg = colab.settings(ROOT)
    src, static = build/'src', build/'static'
    shutil.rmtree(src, ignore_errors=True); src.mkdir(parents=True)
    if not (static/'mathjax'/'es5'/'tex-chtml.js').exists():
        shutil.rmtree(static/'mathjax', ignore_errors=True)
        shutil.copytree(mathjax_dir(), static/'mathjax'/'es5')
    order = lesson_order(nbs)
    raw = {stem: json.loads((nbs/f'{stem}.ipynb').read_text(encoding='utf-8')) for stem in ['index'] + order}
    pages = {stem: stage_notebook(nb, f'{stem}.ipynb', cfg, stems=order) for stem, nb in raw.items()}
    titles = {stem: title(nb) for stem, nb in pages.items()}
    students = student_pages(raw, order, cfg)                 # the student edition, where lessons have exercises
    toc = [('Lessons', [f'{nav_title(stem, titles[stem])} <{stem}>' for stem in order])]
    if students: toc.append(('Student edition (exercises without solutions)',
                             [f'{nav_title(stem, titles[stem])} <student/{stem}>' for stem in students]))
    for i, (caption, entries) in enumerate(toc):
        pages['index']['cells'].append({'cell_type': 'markdown', 'id': f'site-toc-{i}', 'metadata': {}, 'source':
                                        f'```{{toctree}}\n:hidden:\n:maxdepth: 1\n:caption: {caption}\n\n' +
                                        '\n'.join(entries) + '\n```'})
    for stem, nb in pages.items(): (src/f'{stem}.ipynb').write_text(colab.dumps(nb), encoding='utf-8')
    shutil.copy(ROOT/'docs'/BADGE_FILE, src/BADGE_FILE)
    for stem, nb in students.items():
        (src/'student').mkdir(exist_ok=True); (src/'student'/f'{stem}.ipynb').write_text(colab.dumps(nb), encoding='utf-8')
    return {'order': order, 'titles': titles, 'students': list(students), 'static': str(static)}


LOCAL_NB_LINK = re.compile(r'\]\((?!https?:|#|/|\.\./)([\w.-]+\.ipynb(?:#[^)]*)?)\)')

def student_pages(raw: dict, order: list[str], cfg: dict) -> dict:
    "{stem: staged student notebook} for the lessons with exercises (tools/editions.py); links go to the full lessons."
    try: import editions
    except ImportError: return {}
    out = {}
    for stem in order:
        if not editions.has_exercises(raw[stem]): continue
        nb = stage_notebook(editions.student_nb(raw[stem]), f'{stem}.ipynb', cfg, up='../', stems=order)
        for c in nb['cells']:
            if c['cell_type'] == 'markdown': c['source'] = LOCAL_NB_LINK.sub(r'](../\1)', colab._src(c))
        out[stem] = nb
    return out


def build(strict: bool = True, quiet: bool = True) -> Path:
    t0 = time.time()
    info = stage()
    html = BUILD/'html'
    shutil.rmtree(html, ignore_errors=True); shutil.rmtree(BUILD/'doctrees', ignore_errors=True)
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-c', str(ROOT/'docs'), '-d', str(BUILD/'doctrees'),
           str(BUILD/'src'), str(html)] + (['-W', '--keep-going'] if strict else []) + (['-q'] if quiet else [])
    env = {**os.environ, 'AMOC_SITE_STAGE': json.dumps({'static': info['static']})}
    r = subprocess.run(cmd, env=env)
    if r.returncode: sys.exit(f'sphinx-build failed (exit {r.returncode}): {" ".join(cmd)}')
    pages = len(list(html.glob('*.html'))) + len(list(html.glob('student/*.html')))
    pages -= len([p for p in ('genindex.html', 'search.html') if (html/p).exists()])
    print(f'built {pages} pages (home, {len(info["order"])} lessons, {len(info["students"])} in the student edition) '
          f'in {time.time() - t0:.0f} s: {html/"index.html"}')
    return html


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--no-strict', action='store_true', help='do not turn Sphinx warnings into errors')
    p.add_argument('--verbose', action='store_true', help="show Sphinx's progress")
    a = p.parse_args()
    build(strict=not a.no_strict, quiet=not a.verbose)
