"""The course's two editions: the teacher's edition is nbs/ itself; this builds the student edition.

    python tools/editions.py                       # every notebook in nbs/ that has exercises -> _student/
    python tools/editions.py nbs/02_moco.ipynb     # just these
    python tools/editions.py --out /tmp/course     # somewhere else

Exercise cells are marked by their first line (a plain comment, so nbdev, nbdev_clean and Quarto leave it alone):

- `# exercise: solution` - a code cell that defines the exercise's function(s). Its `# hint: ...` lines are kept for
  the student. In the student edition each top-level function keeps its signature and docstring and its body becomes
  `raise NotImplementedError(<hint>)`; anything else in the cell (helpers, constants) is dropped, imports are kept.
- `# exercise: check` - the asserts that the solution must pass. Kept as they are (they fail on the stub).
- `<!-- exercise: answer -->` - a markdown cell with the answer to a predict-before-you-run or open question. The
  student edition replaces it with a pointer to the teacher's edition.

Outputs of every code cell from the `## Exercises` heading on are cleared in the student edition (the output of a
predict-before-you-run cell is its answer).
The student folder is git-ignored (`_student/`).
"""
from __future__ import annotations
import argparse, ast, copy, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
OUT = ROOT/'_student'
SOLUTION, CHECK, ANSWER = '# exercise: solution', '# exercise: check', '<!-- exercise: answer -->'
STUB_MARK = '# exercise: your solution'
ANSWER_STUB = (f"{ANSWER}\n*The answer is in the teacher's edition (the notebook of the same name in `nbs/`). "
               f"Write yours down first - and for a predict question, run the cells before you look.*")
BANNER = ("> **Student edition.** Each exercise's solution cell is a stub that raises `NotImplementedError`: "
          "fill it in, then run the check cell below it. Built by `python tools/editions.py` from the teacher's "
          "edition in `nbs/`.")


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
            keep.append(ast.unparse(fn))
    if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in tree.body):
        keep.append(f'raise NotImplementedError({"Exercise: " + hint!r})')
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


def student_nb(nb: dict) -> dict:
    "The student edition of one notebook (the teacher's edition is unchanged)."
    out = copy.deepcopy(nb)
    cells, in_exercises = [], False
    for c in out['cells']:
        in_exercises = in_exercises or is_exercises_heading(c)
        c = student_cell(c)
        if in_exercises and c['cell_type'] == 'code': c['outputs'], c['execution_count'] = [], None   # no answers shown
        cells.append(c)
    banner = {'cell_type': 'markdown', 'id': 'student-edition', 'metadata': {}, 'source': BANNER}
    title = next((i for i, c in enumerate(cells) if c['cell_type'] == 'markdown' and src(c).lstrip().startswith('# ')), -1)
    cells.insert(title + 1, banner)
    out['cells'] = cells
    return out


def build(paths=None, out: Path = OUT) -> list[Path]:
    "Write the student edition of `paths` (default: every notebook in nbs/ with exercises) into `out`."
    paths = [Path(p) for p in paths] if paths else sorted(NBS.glob('*.ipynb'))
    written = []
    for p in paths:
        nb = read_nb(p)
        if not has_exercises(nb): continue
        dest = Path(out)/p.name
        write_nb(student_nb(nb), dest)
        written.append(dest)
    return written


SKIP_FLAGS = ('notest', 'slow', 'cuda')   # settings.ini tst_flags: nbdev_test skips these cells; so does `run_exercises`

def skipped(cell) -> bool:
    "True for a cell nbdev_test would not run (`#| slow`, `#| notest`, `#| cuda`, `#| eval: false`)."
    for l in src(cell).splitlines():
        l = l.strip()
        if not l.startswith('#|'): continue
        d = l[2:].strip().replace(' ', '')
        if d in SKIP_FLAGS or d == 'eval:false': return True
    return False


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
    ap.add_argument('--out', default=str(OUT), help='folder of the student edition (default: _student/)')
    ap.add_argument('--run', metavar='WRONG_JSON', help='instead: run the exercises of each notebook (tests use this; '
                    'WRONG_JSON maps function names to planted wrong answers) and print one JSON line per notebook')
    a = ap.parse_args(argv)
    if a.run:
        import os; os.environ.setdefault('IN_TEST', '1'); os.environ.setdefault('MPLBACKEND', 'Agg')
        wrong = json.loads(Path(a.run).read_text())
        for nb in a.notebooks: print(json.dumps(run_exercises(nb, wrong)), flush=True)
        return
    written = build(a.notebooks or None, Path(a.out))
    for w in written: print(w.relative_to(ROOT) if w.resolve().is_relative_to(ROOT) else w)
    print(f'{len(written)} student notebooks in {a.out if a.out != str(OUT) else OUT.name + "/"}')


if __name__ == '__main__': main()
