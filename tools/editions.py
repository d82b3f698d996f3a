"""The course's two editions: the teacher's edition is nbs/ itself; this builds the student edition.

    python tools/editions.py                       # every notebook in nbs/ that has exercises -> student/
    python tools/editions.py --check               # CI: exit 1 if student/ is not what nbs/ gives
    python tools/editions.py nbs/02_moco.ipynb     # just these
    python tools/editions.py --out /tmp/course     # somewhere else
    python tools/editions.py --nbgrader-course ~/amoc-course   # an nbgrader_config.py to grade it (nbs/teachers.ipynb)

Exercise cells are marked by their first line (a plain comment, so nbdev, nbdev_clean and Quarto leave it alone):

- `# exercise: solution` - a code cell that defines the exercise's function(s). Its `# hint: ...` lines are kept for
  the student. In the student edition each top-level function keeps its signature and docstring and its body becomes
  `raise NotImplementedError(<hint>)`; anything else in the cell (helpers, constants) is dropped, imports are kept.
- `# exercise: check` - the asserts that the solution must pass. Kept as they are (they fail on the stub).
- `<!-- exercise: answer -->` - a markdown cell with the answer to a predict-before-you-run or open question. The
  student edition replaces it with a pointer to the teacher's edition.

Outputs of every code cell from the `## Exercises` heading on are cleared in the student edition (the output of a
predict-before-you-run cell is its answer).

The student edition is committed in `student/` (one level below the repository root, as `nbs/` is, so the lessons'
relative paths work the same) and CI keeps it in sync: `python tools/editions.py --check` regenerates it and fails if
it differs from the committed one. Its Colab badges open `student/<name>.ipynb` (tools/colab.py, settings.ini), and its
links to notebooks that have no student version go to `../nbs/`.

nbgrader: the student edition is a valid nbgrader *source* notebook (cell metadata, schema 3). A solution cell is a
solution cell (`grade_id` `ex<N>_<function>`), each stub body sits between `### BEGIN SOLUTION` / `### END SOLUTION`
(so `nbgrader generate_assignment` keeps the signature, docstring and hints), its check cell is an autograder test
(`ex<N>_<function>_check`, CHECK_POINTS points), an answer cell is a manually graded written answer (ANSWER_POINTS
points) and every other cell is read-only (nbgrader restores it before it grades). The metadata lives only in the
generated edition, so nbdev's metadata cleaning of `nbs/` is not in the way.
"""
from __future__ import annotations
import argparse, ast, copy, filecmp, json, re, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
OUT = ROOT/'student'
SOLUTION, CHECK, ANSWER = '# exercise: solution', '# exercise: check', '<!-- exercise: answer -->'
STUB_MARK = '# exercise: your solution'
ANSWER_STUB = (f"{ANSWER}\n*The answer is in the teacher's edition (the notebook of the same name in `nbs/`). "
               f"Write yours down first - and for a predict question, run the cells before you look.*")
BANNER = ("> **Student edition.** Each exercise's solution cell is a stub that raises `NotImplementedError`: "
          "write your code in place of its `raise NotImplementedError(...)` line (between the two solution-marker "
          "comments, which nbgrader uses), then run the check cell below it. Built by `python tools/editions.py` "
          "from the teacher's edition in `nbs/`; nbgrader can release, collect and autograde it (see the teacher's "
          "page, `nbs/teachers.ipynb`).")
BEGIN, END = '### BEGIN SOLUTION', '### END SOLUTION'     # nbgrader's default solution delimiters (no other cell may
                                                          # hold these words: nbgrader would take it for a solution)
CHECK_POINTS, ANSWER_POINTS = 2, 1                        # an autograded check cell; a written (manually graded) answer


def src(cell) -> str:
    s = cell.get('source', '')
    return ''.join(s) if isinstance(s, list) else s

def first_line(cell) -> str: return src(cell).lstrip().split('\n', 1)[0].strip()
def is_solution(cell) -> bool: return cell['cell_type'] == 'code' and first_line(cell) == SOLUTION
def is_check(cell) -> bool: return cell['cell_type'] == 'code' and first_line(cell) == CHECK
def is_answer(cell) -> bool: return cell['cell_type'] == 'markdown' and first_line(cell) == ANSWER
def is_exercises_heading(cell) -> bool:
    return cell['cell_type'] == 'markdown' and any(l.strip() == '## Exercises' for l in src(cell).splitlines())
def is_exercise(cell) -> bool: return is_solution(cell) or is_check(cell) or is_answer(cell)

def read_nb(path) -> dict: return json.loads(Path(path).read_text(encoding='utf-8'))

def write_nb(nb: dict, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')

def has_exercises(nb: dict) -> bool: return any(is_solution(c) or is_answer(c) for c in nb['cells'])


def hints(source: str) -> list[str]:
    return [l.strip()[len('# hint:'):].strip() for l in source.splitlines() if l.strip().startswith('# hint:')]


def stub_source(source: str) -> str:
    "The student's version of a solution cell: the same functions (signature, docstring), bodies raising NotImplementedError."
    tree = ast.parse(source)
    hint = ' '.join(hints(source)) or 'see the exercise above'
    keep = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)): keep.append(ast.unparse(node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            fn = copy.deepcopy(node)
            doc = ast.get_docstring(node, clean=False)
            raise_ = ast.parse(f'raise NotImplementedError({"Exercise: " + hint!r})').body[0]
            fn.body = ([ast.Expr(ast.Constant(doc))] if doc is not None else []) + [raise_]
            *head_, last = ast.unparse(fn).split('\n')              # the last line is the raise
            ind = last[:len(last) - len(last.lstrip())]
            keep.append('\n'.join(head_ + [ind + BEGIN, last, ind + END]))
    if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in tree.body):
        keep += [BEGIN, f'raise NotImplementedError({"Exercise: " + hint!r})', END]
    head = [STUB_MARK] + [f'# hint: {h}' for h in hints(source)]
    return '\n'.join(head + keep)


def _code_cell(cell, source):
    c = copy.deepcopy(cell)
    c['source'] = source
    if c['cell_type'] == 'code': c['outputs'], c['execution_count'] = [], None
    return c


def student_cell(cell) -> dict:
    "A cell of the student edition: stubs for solutions, a pointer for answers, no outputs on exercise cells."
    if is_solution(cell): return _code_cell(cell, stub_source(src(cell)))
    if is_check(cell): return _code_cell(cell, src(cell))
    if is_answer(cell): return _code_cell(cell, ANSWER_STUB)
    return copy.deepcopy(cell)


def fn_names(source: str) -> list[str]:
    return [n.name for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _slug(text: str) -> str: return re.sub(r'[^a-z0-9]+', '_', text.lower()).strip('_')[:40] or 'cell'


def nbgrader_metadata(cells: list[dict]) -> list[dict]:
    """Give every cell of a student notebook nbgrader's cell metadata (schema 3), in place: solution cells (the stubs),
    autograder tests with points (the check cells), manually graded written answers (the answer cells), and read-only
    cells (all the others: nbgrader checksums them and puts them back before it grades). grade_ids are readable and
    stable: `ex<N>_<function>`, `ex<N>_<function>_check`, `ex<N>_answer`, `ro_<cell id>`."""
    ex, used = 0, set()
    def meta(c, grade_id, **kw):
        gid, k = grade_id, 2
        while gid in used: gid, k = f'{grade_id}_{k}', k + 1
        used.add(gid)
        c.setdefault('metadata', {})['nbgrader'] = {'grade': False, 'solution': False, 'locked': False, **kw,
                                                     'grade_id': gid, 'schema_version': 3}
    last_fn = 'cell'
    for i, c in enumerate(cells):
        text = src(c)
        m = re.search(r'^### Exercise (\d+)', text, re.M) if c['cell_type'] == 'markdown' else None
        if m: ex = int(m[1])
        if c['cell_type'] == 'code' and first_line(c) == STUB_MARK:
            last_fn = _slug((fn_names(text) or ['cell'])[0])
            meta(c, f'ex{ex}_{last_fn}', solution=True)
        elif is_check(c):
            meta(c, f'ex{ex}_{last_fn}_check', grade=True, locked=True, points=CHECK_POINTS)
        elif is_answer(c):
            meta(c, f'ex{ex}_answer', grade=True, solution=True, points=ANSWER_POINTS)
        else:
            meta(c, f"ro_{_slug(str(c.get('id') or i))}", locked=True)
    return cells


LOCAL_NB_LINK = re.compile(r'\]\((?!https?:|#|/|\.\./)([\w.-]+)\.ipynb((?:#[^)]*)?)\)')

def relink(text: str, student_stems) -> str:
    "Markdown links to notebooks without a student version go to the teacher's edition (`../nbs/`)."
    return LOCAL_NB_LINK.sub(lambda m: m[0] if m[1] in student_stems else f'](../nbs/{m[1]}.ipynb{m[2]})', text)


def student_nb(nb: dict, nbgrader: bool = False, student_stems=None) -> dict:
    """The student edition of one notebook (the teacher's edition is unchanged). `nbgrader`: with nbgrader's cell
    metadata; `student_stems`: the notebooks that have a student version (links to the others go to `../nbs/`)."""
    out = copy.deepcopy(nb)
    cells, in_exercises = [], False
    for c in out['cells']:
        in_exercises = in_exercises or is_exercises_heading(c)
        c = student_cell(c)
        if in_exercises and c['cell_type'] == 'code': c['outputs'], c['execution_count'] = [], None   # no answers shown
        if student_stems is not None and c['cell_type'] == 'markdown': c['source'] = relink(src(c), student_stems)
        c.get('metadata', {}).pop('execution', None)      # the render's timestamps: noise in a committed notebook
        cells.append(c)
    banner = {'cell_type': 'markdown', 'id': 'student-edition', 'metadata': {}, 'source': BANNER}
    title = next((i for i, c in enumerate(cells) if c['cell_type'] == 'markdown' and src(c).lstrip().startswith('# ')), -1)
    cells.insert(title + 1, banner)
    out['cells'] = cells
    out.get('metadata', {}).pop('amoc_render', None)        # the teacher edition's render record, not this notebook's
    if nbgrader: nbgrader_metadata(cells)
    return out


def student_stems(nbs: Path = NBS) -> set[str]:
    "The notebooks of nbs/ that have a student version (those with exercises)."
    return {p.stem for p in Path(nbs).glob('*.ipynb') if has_exercises(read_nb(p))}


def edition(path, stems=None) -> dict:
    "The committed form of `path`'s student edition: nbgrader metadata, student links, and a Colab badge for student/."
    import colab                                           # tools/colab.py: badge + setup cell from settings.ini
    nb = student_nb(read_nb(path), nbgrader=True, student_stems=student_stems() if stems is None else stems)
    nb = colab.apply(nb, Path(path).name, folder='student')
    for c in nb['cells']:                                  # colab's two cells are part of the lesson: read-only too
        if colab.is_badge(c) or colab.is_setup(c):
            c['metadata'] = {**c.get('metadata', {}), 'nbgrader': {'grade': False, 'solution': False, 'locked': True,
                             'grade_id': f"ro_{_slug(c['id'])}", 'schema_version': 3}}
    return nb


def build(paths=None, out: Path = OUT) -> list[Path]:
    """Write the student edition of `paths` (default: every notebook in nbs/ with exercises) into `out`; with the
    default, notebooks in `out` that no longer have a teacher notebook with exercises are removed."""
    everything = not paths
    paths = [Path(p) for p in paths] if paths else sorted(NBS.glob('*.ipynb'))
    stems, written = student_stems(), []
    for p in paths:
        nb = read_nb(p)
        if not has_exercises(nb): continue
        dest = Path(out)/p.name
        write_nb(edition(p, stems), dest)
        written.append(dest)
    if everything:
        for stale in set(Path(out).glob('*.ipynb')) - set(written): stale.unlink()
    return written


def check(out: Path = OUT) -> list[str]:
    "Why the committed student edition in `out` is not what nbs/ gives today (empty: in sync)."
    with tempfile.TemporaryDirectory() as tmp:
        want = {p.name: p for p in build(None, Path(tmp))}
        have = {p.name: p for p in Path(out).glob('*.ipynb')}
        probs = [f'missing: {n}' for n in sorted(set(want) - set(have))]
        probs += [f'no teacher notebook with exercises: {n}' for n in sorted(set(have) - set(want))]
        probs += [f'differs from nbs/{n}' for n in sorted(set(want) & set(have))
                  if not filecmp.cmp(want[n], have[n], shallow=False)]
    return probs


SKIP_FLAGS = ('notest', 'slow', 'cuda')   # settings.ini tst_flags: nbdev_test skips these cells; so does `run_exercises`

def skipped(cell) -> bool:
    "True for a cell nbdev_test would not run (`#| slow`, `#| notest`, `#| cuda`, `#| eval: false`)."
    for l in src(cell).splitlines():
        l = l.strip()
        if not l.startswith('#|'): continue
        d = l[2:].strip().replace(' ', '')
        if d in SKIP_FLAGS or d == 'eval:false': return True
    return False


SKIPPED_WHEN_GRADING = '# not run when nbgrader grades: a long or GPU-only cell (tools/editions.py, SkipFlaggedCells)'

def skip_flagged_cells():
    """nbgrader preprocessor class (nbconvert imported here, only when grading): blanks the cells that nbdev_test skips
    (`#| slow`, `#| cuda`, `#| notest`, `#| eval: false`) before nbgrader's Execute, so autograding a lesson does not
    train on CIFAR-10 or wait for a GPU; their first line stays, so the graded notebook shows what was left out."""
    from nbconvert.preprocessors import Preprocessor
    from traitlets import Bool
    class SkipFlaggedCells(Preprocessor):
        enabled = Bool(True)                          # nbconvert's preprocessors are off unless enabled
        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type == 'code' and skipped(cell):
                cell.source = '\n'.join([l for l in cell.source.splitlines() if l.strip().startswith('#|')] +
                                        [SKIPPED_WHEN_GRADING])
            return cell, resources
    return SkipFlaggedCells


def nbgrader_config(course_id: str = 'amoc_nb', timeout: int = 600, in_test: bool = True) -> str:
    """The text of an nbgrader_config.py for a course that grades this student edition: the course id, a per-cell
    execution timeout, the lessons' short settings (IN_TEST, the ones the checks are tested with) and SkipFlaggedCells
    ahead of nbgrader's own autograde preprocessors."""
    return f'''# nbgrader configuration for the amoc_nb student edition (written by: python tools/editions.py --nbgrader-course DIR)
import os, sys
sys.path.insert(0, {str(ROOT/'tools')!r})                       # tools/editions.py of the course's checkout
import editions
from nbgrader.converters.autograde import Autograde

c = get_config()
c.CourseDirectory.course_id = {course_id!r}
c.Execute.timeout = {int(timeout)}                     # seconds per cell
{'' if in_test else '# '}os.environ.setdefault('IN_TEST', '1')        # the lessons' short settings, which the check cells are tested with
c.Autograde.autograde_preprocessors = [editions.skip_flagged_cells(), *Autograde.autograde_preprocessors.default()]
'''


def _exec(source: str, ns: dict, name: str):
    "Run one cell's source in `ns`; None if it ran, else the exception's type name and message."
    try: exec(compile(source, name, 'exec'), ns); return None
    except BaseException as e:                      # noqa: BLE001 - a check may raise anything; report it
        if isinstance(e, KeyboardInterrupt): raise
        return f'{type(e).__name__}: {str(e)[:300]}'


def run_exercises(path, wrong: dict | None = None) -> dict:
    """Run the *student* edition of notebook `path` top to bottom, as nbdev_test would (IN_TEST, skip flags), in this
    process. At each exercise run the check cell three times: after the student's stub (it must fail), after the
    planted wrong answer `wrong[name]` (name: the solution's first function; it must fail), and after the teacher's
    solution (it must pass); the solution then stays defined for the cells after it.
    Returns {'cells_before_first_exercise', 'reached_first_exercise', 'error', 'exercises': [...]}."""
    import time
    wrong = wrong or {}
    cells = read_nb(path)['cells']
    import types
    mod = types.ModuleType('__lesson__')          # a registered module: dataclasses resolve string annotations in it
    sys.modules[mod.__name__] = mod
    ns = mod.__dict__
    res = dict(notebook=Path(path).name, reached_first_exercise=False, cells_before_first_exercise=0, error=None,
               exercises=[], seconds=0.0)
    t0, i = time.time(), 0
    while i < len(cells):
        cell = cells[i]
        if is_exercise(cell): res['reached_first_exercise'] = True
        if cell['cell_type'] != 'code' or skipped(cell): i += 1; continue
        if not res['reached_first_exercise']: res['cells_before_first_exercise'] += 1
        if is_check(cell):
            res['error'] = f'cell {i}: a check cell with no solution cell right before it'; break
        if not is_solution(cell):
            err = _exec(src(student_cell(cell)), ns, f'{res["notebook"]}[{i}]')
            if err: res['error'] = f'cell {i}: {err}'; break
            i += 1; continue
        j = i + 1
        while j < len(cells) and cells[j]['cell_type'] != 'code': j += 1
        if j == len(cells) or not is_check(cells[j]):
            res['error'] = f'cell {i}: a solution cell must be followed by its check cell'; break
        sol, chk = src(cell), src(cells[j])
        fns = [n.name for n in ast.parse(sol).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        name = fns[0] if fns else f'cell{i}'
        ex = dict(name=name, cell=i, stub=None, wrong=None, solution=None)
        for key, code in (('stub', stub_source(sol)), ('wrong', wrong.get(name)), ('solution', sol)):
            if code is None: ex[key] = 'missing'; continue
            err = _exec(code, ns, f'{res["notebook"]}[{i}:{key}]')
            ex[key] = err or _exec(chk, ns, f'{res["notebook"]}[{j}:check after {key}]') or 'passed'
        res['exercises'].append(ex)
        i = j + 1
    res['seconds'] = round(time.time() - t0, 1)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('notebooks', nargs='*', help='teacher notebooks (default: all of nbs/ that have exercises)')
    ap.add_argument('--out', default=str(OUT), help='folder of the student edition (default: student/)')
    ap.add_argument('--check', action='store_true', help='change nothing; exit 1 if the student edition in --out is '
                    'not exactly what nbs/ gives (CI runs this)')
    ap.add_argument('--nbgrader-course', metavar='DIR', help='instead: write DIR/nbgrader_config.py for a course that '
                    'grades the student edition (course id, timeout, IN_TEST, long and GPU cells skipped when grading)')
    ap.add_argument('--course-id', default='amoc_nb', help='with --nbgrader-course: the nbgrader course id')
    ap.add_argument('--run', metavar='WRONG_JSON', help='instead: run the exercises of each notebook (tests use this; '
                    'WRONG_JSON maps function names to planted wrong answers) and print one JSON line per notebook')
    a = ap.parse_args(argv)
    if a.check:
        probs = check(Path(a.out))
        if probs:
            print(f'{a.out} is out of date with nbs/ ({len(probs)} notebooks): ' + '; '.join(probs) +
                  '\nFix: python tools/editions.py  (then commit student/)', file=sys.stderr)
            return 1
        print(f'student edition in sync with nbs/ ({len(list(Path(a.out).glob("*.ipynb")))} notebooks)')
        return 0
    if a.nbgrader_course:
        cfg = Path(a.nbgrader_course)/'nbgrader_config.py'
        if cfg.exists(): print(f'{cfg} exists: left as it is (remove it to write a new one)', file=sys.stderr); return 1
        cfg.parent.mkdir(parents=True, exist_ok=True); cfg.write_text(nbgrader_config(a.course_id), encoding='utf-8')
        print(f'wrote {cfg}; copy student notebooks into {cfg.parent}/source/<assignment>/ and run '
              f'nbgrader generate_assignment <assignment> --create there')
        return 0
    if a.run:
        import os; os.environ.setdefault('IN_TEST', '1'); os.environ.setdefault('MPLBACKEND', 'Agg')
        wrong = json.loads(Path(a.run).read_text())
        for nb in a.notebooks: print(json.dumps(run_exercises(nb, wrong)), flush=True)
        return 0
    written = build(a.notebooks or None, Path(a.out))
    for w in written: print(w.relative_to(ROOT) if w.resolve().is_relative_to(ROOT) else w)
    print(f'{len(written)} student notebooks in {a.out if a.out != str(OUT) else OUT.name + "/"}')
    return 0


if __name__ == '__main__': sys.exit(main())
