"""Build the course website from the notebooks and their saved outputs (nothing is executed).

    pip install -e ".[docs]" && python tools/website.py     # -> docs/_build/html/index.html (git-ignored)

Steps: stage a copy of every notebook in nbs/ into docs/_build/src, with the "Open in Colab" badge of tools/colab.py
on each page, the setup cell, `#| hide` cells and nbdev's `#|` directive lines left out; copy MathJax 3 from the
django-static-mathjax wheel into the site (no CDN); run Sphinx + myst-nb with warnings as errors (`-W`; `--no-strict`
to build anyway); put the notebooks themselves behind each page's download button (html/_sources/). The notebooks in
nbs/ are never written.

Navigation (the site's table of contents, and prev/next at the foot of each page):
- "Course": the pages without a number (glossary, teachers, then any other by name) and the student edition's
  landing page; "Lessons": the numbered notebooks in the order of index.ipynb's lesson tables (a notebook no table
  lists goes in by its number).
- Two editions, each with its own prev/next chain that never crosses to the other: the teacher's edition (home,
  lessons, course pages) and the student edition (student/index, then `student/<lesson>` for every lesson with
  exercises: tools/editions.py's stubs instead of solutions, titles "Student · ...", links to lessons that have a
  student page stay in the student edition, its own Colab badges when the repository has a top-level student/ folder).

Which code is shown (the notebooks keep every cell; the site folds some with myst-nb cell tags):
- `#| echo: false` (Quarto/nbdev): the code is removed, its output stays (`remove-input`);
- `#| code-fold: true`: the code is folded behind a "show" toggle (`hide-input`); `#| code-fold: false`: always shown;
- otherwise folded (`hide-input`): engine code, an exported cell (`#| export`) longer than a screen (more than
  LONG_EXPORT = 30 lines of code); and tests, a cell that is not exported, shows no output and asserts (more than
  LONG_TEST = 5 lines of code: a one-line check stays in view, it is part of the explanation);
- exercise cells (`# exercise: ...`) are never folded.

Figures: docs/_static/course.css widens the content column; docs/_static/course.js makes every output image
click-to-enlarge (a full-size view; the image is also a plain link to the PNG).
"""
from __future__ import annotations
import argparse, copy, importlib.util, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import colab  # noqa: E402

BUILD = ROOT/'docs'/'_build'
BADGE_FILE = 'colab-badge.svg'        # docs/colab-badge.svg: the badge image, served by the site itself
TABLE_LINK = re.compile(r'^\|[^\n]*?\]\(([\w.-]+)\.ipynb\)', re.M)   # the first notebook linked in a table row
COURSE_PAGES = ('glossary', 'teachers')   # pages without a number, in this order (any other one after them, by name)


def numbered(stem: str) -> bool: return stem[:1].isdigit()


def lesson_order(nbs: Path) -> list[str]:
    """Every page but the home page, in the site's navigation order: the course pages without a number first
    (COURSE_PAGES, then others by name), then the lessons in the order of index.ipynb's tables; a numbered notebook no
    table lists goes in by its number."""
    index = json.loads((nbs/'index.ipynb').read_text(encoding='utf-8'))
    text = '\n'.join(colab._src(c) for c in index['cells'] if c['cell_type'] == 'markdown')
    stems = {p.stem for p in nbs.glob('*.ipynb')} - {'index'}
    order = list(dict.fromkeys(s for s in TABLE_LINK.findall(text) if s in stems and numbered(s)))
    for stem in sorted(s for s in stems if numbered(s) and s not in order):
        order.insert(next((i for i, s in enumerate(order) if s > stem), len(order)), stem)   # by number among the rest
    rank = {s: i for i, s in enumerate(COURSE_PAGES)}
    return sorted((s for s in stems if not numbered(s)), key=lambda s: (rank.get(s, len(rank)), s)) + order


def title(nb: dict) -> str:
    "The lesson's title: the first markdown heading of the notebook (nbdev's title cell)."
    for c in nb['cells']:
        m = re.search(r'^#\s+(.+)$', colab._src(c), re.M) if c['cell_type'] == 'markdown' else None
        if m: return m[1].strip()
    return ''


def nav_title(stem: str, title: str) -> str:
    "The page's entry in the site's navigation: a lesson's number (as in the README table) and its title."
    return f"{stem.split('_')[0]} · {title or stem}" if numbered(stem) else (title or stem)


def _directives(src: str) -> list[str]: return [l[2:].strip() for l in src.splitlines() if l.startswith('#|')]


LONG_EXPORT, LONG_TEST = 30, 5          # lines of code above which an exported cell / a test cell is folded
ASSERTS = re.compile(r'^\s*assert\b|^\s*test_\w*\(', re.M)

def site_tags(src: str, outputs=()) -> list[str]:
    "The myst-nb tags that fold (`hide-input`) or remove (`remove-input`) a code cell's source on the site (rule: module docstring)."
    d = {k.strip(): v.strip().lower() for k, _, v in (x.partition(':') for x in _directives(src))}
    body = '\n'.join(l for l in src.splitlines() if not l.startswith('#|'))
    if d.get('echo') == 'false': return ['remove-input']
    if d.get('code-fold') in ('true', 'show', 'hide'): return ['hide-input']
    if d.get('code-fold') == 'false' or body.lstrip().startswith('# exercise:'): return []
    n = sum(1 for l in body.splitlines() if l.strip() and not l.strip().startswith('#'))
    exported = any(k in ('export', 'exports', 'exporti') for k in d)
    if exported and n > LONG_EXPORT: return ['hide-input']
    if not exported and not outputs and n > LONG_TEST and ASSERTS.search(body): return ['hide-input']
    return []


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
            if colab.is_setup(c) or any(d.replace(' ', '') in ('hide', 'include:false') for d in _directives(src)):
                continue
            body = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip('\n')
            if not body and not c.get('outputs'): continue
            tags = list(c.get('metadata', {}).get('tags', []))
            tags += [t for t in site_tags(src, c.get('outputs')) if t not in tags]
            c = {**c, 'source': body, 'metadata': {**c.get('metadata', {}), **({'tags': tags} if tags else {})}}
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


STUDENT_TITLE = 'Student · '
EXERCISE = re.compile(r'^###\s+Exercise\s+\d+\s*\(([^)]*)\)', re.M)   # '### Exercise 2 (code): ...'

def _toctree(caption: str, entries, hidden: bool = True) -> str:
    return (f'```{{toctree}}\n' + (':hidden:\n' if hidden else '') + f':maxdepth: 1\n:caption: {caption}\n\n' +
            '\n'.join(entries) + '\n```')


def _md_cell(cid: str, source: str) -> dict: return {'cell_type': 'markdown', 'id': cid, 'metadata': {}, 'source': source}


def stage(nbs: Path = ROOT/'nbs', build: Path = BUILD) -> dict:
    """Write docs/_build/src (the pages) and docs/_build/static (MathJax); return {'order', 'titles', 'students',
    'static', 'chains' (the two editions' prev/next orders), 'student_repo' (a top-level student/ folder exists)}."""
    cfg = colab.settings(ROOT)
    src, static = build/'src', build/'static'
    shutil.rmtree(src, ignore_errors=True); src.mkdir(parents=True)
    if not (static/'mathjax'/'es5'/'tex-chtml.js').exists():
        shutil.rmtree(static/'mathjax', ignore_errors=True)
        shutil.copytree(mathjax_dir(), static/'mathjax'/'es5')
    order = lesson_order(nbs)
    lessons, course = [s for s in order if numbered(s)], [s for s in order if not numbered(s)]
    raw = {stem: json.loads((nbs/f'{stem}.ipynb').read_text(encoding='utf-8')) for stem in ['index'] + order}
    pages = {stem: stage_notebook(nb, f'{stem}.ipynb', cfg, stems=order) for stem, nb in raw.items()}
    titles = {stem: title(nb) for stem, nb in pages.items()}
    students = student_pages(raw, order, cfg)                 # the student edition, where lessons have exercises
    home = pages['index']
    for c in home['cells']:                                   # the index's link into student/ opens its landing page
        if c['cell_type'] == 'markdown': c['source'] = colab._src(c).replace('](student/00_data.ipynb)', '](student/index.md)')
    if students and not any('](student/' in colab._src(c) for c in home['cells'] if c['cell_type'] == 'markdown'):
        home['cells'].append(_md_cell('site-student-link', (
            '## The student edition\n\nThe same lessons with every exercise left for you to write: '
            '[the student edition](student/index.md). Give it to students; this edition has the solutions.')))
    toc = [('Course', [f'{nav_title(s, titles[s])} <{s}>' for s in course] +
            (['Student edition <student/index>'] if students else [])),
           ('Lessons', [f'{nav_title(s, titles[s])} <{s}>' for s in lessons])]
    for i, (caption, entries) in enumerate(toc):
        if entries: home['cells'].append(_md_cell(f'site-toc-{i}', _toctree(caption, entries)))
    for stem, nb in pages.items(): (src/f'{stem}.ipynb').write_text(colab.dumps(nb), encoding='utf-8')
    shutil.copy(ROOT/'docs'/BADGE_FILE, src/BADGE_FILE)
    if students:
        (src/'student').mkdir(exist_ok=True)
        for stem, nb in students.items(): (src/'student'/f'{stem}.ipynb').write_text(colab.dumps(nb), encoding='utf-8')
        (src/'student'/'index.md').write_text(student_index(students, titles), encoding='utf-8')
    chains = [['index'] + lessons + course] + ([['student/index'] + [f'student/{s}' for s in students]] if students else [])
    return {'order': order, 'titles': titles, 'students': list(students), 'static': str(static), 'chains': chains,
            'student_repo': (ROOT/'student').is_dir()}


def student_index(students: dict, titles: dict) -> str:
    "The student edition's landing page: what it is, the lessons in it, its own table of contents."
    def kinds(nb):
        ks = [k.strip().lower() for c in nb['cells'] if c['cell_type'] == 'markdown' for k in EXERCISE.findall(colab._src(c))]
        return sum(k.startswith('code') for k in ks), sum(not k.startswith('code') for k in ks)
    rows = '\n'.join(f'| [{nav_title(s, titles[s])}]({s}.ipynb) | {" | ".join(map(str, kinds(nb)))} |'
                     for s, nb in students.items())
    entries = [f'{STUDENT_TITLE}{nav_title(s, titles[s])} <{s}>' for s in students]
    return (f'# Student edition\n\n'
            f'> The lessons with their exercises left for you: each solution is a stub that raises '
            f'`NotImplementedError`, each answer a pointer to the teacher\'s edition.\n\n'
            f'Work through a lesson top to bottom, write each exercise\'s function in its stub cell and run the check '
            f'cell below it: it passes when your answer is right. Write down your prediction before you run a '
            f'"predict" cell. Each page opens in Colab from its badge, and the download button (top right) gives its '
            f'notebook. The lessons themselves, with the solutions, are the [teacher\'s edition](../index.ipynb).\n\n'
            f'| lesson | code exercises | questions (predict, open) |\n|---|---|---|\n{rows}\n\n' +
            _toctree('Student edition', entries, hidden=False) + '\n')


LOCAL_NB_LINK = re.compile(r'\]\((?!https?:|#|/|\.\./)([\w.-]+)\.ipynb((?:#[^)]*)?)\)')

try: import editions  # noqa: E402 - tools/editions.py: the student edition
except ImportError: editions = None


def student_pages(raw: dict, order: list[str], cfg: dict) -> dict:
    """{stem: staged student notebook} for the lessons with exercises (tools/editions.py). Titles start with
    "Student · "; a link to a lesson with a student page stays in the student edition, any other goes to the teacher's
    page; the Colab badge opens student/<stem>.ipynb when the repository has a top-level student/ folder."""
    if editions is None: return {}
    with_ex = [s for s in order if numbered(s) and editions.has_exercises(raw[s])]
    scfg = {**cfg, 'nbs_path': 'student'} if (ROOT/'student').is_dir() else cfg

    def link(m):
        stem, anchor = m[1], m[2]
        if stem in with_ex: return f']({stem}.ipynb{anchor})'
        if stem == 'index': return f'](index.md{anchor})'
        return f'](../{stem}.ipynb{anchor})'
    out = {}
    for stem in with_ex:
        nb = stage_notebook(editions.student_nb(raw[stem]), f'{stem}.ipynb', scfg, up='../', stems=order)
        titled = False
        for c in nb['cells']:
            if c['cell_type'] != 'markdown': continue
            text = LOCAL_NB_LINK.sub(link, colab._src(c))
            if not titled and re.search(r'^#\s+\S', text, re.M):
                text, titled = re.sub(r'^#\s+', f'# {STUDENT_TITLE}', text, count=1, flags=re.M), True
            c['source'] = text
        out[stem] = nb
    return out


def ship_notebooks(html: Path, info: dict, nbs: Path = ROOT/'nbs') -> list[Path]:
    """Put the notebooks themselves behind the download buttons (html/_sources/<page>.ipynb): nbs/<stem>.ipynb for
    the teacher's edition, student/<stem>.ipynb (or the student edition built now) for the student pages."""
    written = []
    for stem in ['index'] + info['order']:
        dest = html/'_sources'/f'{stem}.ipynb'
        dest.parent.mkdir(parents=True, exist_ok=True); shutil.copy(nbs/f'{stem}.ipynb', dest); written.append(dest)
    for stem in info['students']:
        dest = html/'_sources'/'student'/f'{stem}.ipynb'
        dest.parent.mkdir(parents=True, exist_ok=True)
        committed = ROOT/'student'/f'{stem}.ipynb'
        if committed.exists(): shutil.copy(committed, dest)
        elif hasattr(editions, 'edition'): dest.write_text(colab.dumps(editions.edition(nbs/f'{stem}.ipynb')), encoding='utf-8')
        else: dest.write_text(colab.dumps(editions.student_nb(editions.read_nb(nbs/f'{stem}.ipynb'))), encoding='utf-8')
        written.append(dest)
    return written


def build(strict: bool = True, quiet: bool = True) -> Path:
    t0 = time.time()
    info = stage()
    html = BUILD/'html'
    shutil.rmtree(html, ignore_errors=True); shutil.rmtree(BUILD/'doctrees', ignore_errors=True)
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-c', str(ROOT/'docs'), '-d', str(BUILD/'doctrees'),
           str(BUILD/'src'), str(html)] + (['-W', '--keep-going'] if strict else []) + (['-q'] if quiet else [])
    env = {**os.environ, 'AMOC_SITE_STAGE': json.dumps({k: info[k] for k in ('static', 'chains', 'student_repo')})}
    r = subprocess.run(cmd, env=env)
    if r.returncode: sys.exit(f'sphinx-build failed (exit {r.returncode}): {" ".join(cmd)}')
    ship_notebooks(html, info)
    pages = len(list(html.glob('*.html'))) + len(list(html.glob('student/*.html')))
    pages -= len([p for p in ('genindex.html', 'search.html') if (html/p).exists()])
    print(f'built {pages} pages (home, {len(info["order"])} lessons and course pages, {len(info["students"])} in the '
          f'student edition) in {time.time() - t0:.0f} s: {html/"index.html"}')
    return html


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--no-strict', action='store_true', help='do not turn Sphinx warnings into errors')
    p.add_argument('--verbose', action='store_true', help="show Sphinx's progress")
    a = p.parse_args()
    build(strict=not a.no_strict, quiet=not a.verbose)
