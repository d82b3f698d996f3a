"""The student edition grades with nbgrader's real pipeline: `generate_assignment`, then `autograde`.

One fast lesson (LESSON) goes through a throw-away nbgrader course: its student edition (tools/editions.py, with
nbgrader's cell metadata) is the assignment's source; `nbgrader generate_assignment` releases it; submissions made
from the release are autograded in fresh kernels, and the gradebook must say:

- the teacher's solutions score full marks on every autograded test (the written answers wait for a manual grade);
- the untouched release (the stubs) scores zero;
- a planted wrong answer (tests/test_exercises.py WRONG, which merges tests/planted/*.py) loses exactly its check's
  points, the other checks keep theirs.

Generic over the lesson's exercises, so the lesson may change. The course is configured as teachers configure theirs
(`python tools/editions.py --nbgrader-course DIR`: IN_TEST=1, the lessons' short settings; long and GPU cells skipped);
the kernels run with one thread; nbgrader's per-cell execution timeout is EXEC_TIMEOUT.
"""
import ast, copy, importlib.util, json, os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import editions  # noqa: E402  (tools/editions.py)

LESSON = '03_banks'            # fast (seconds under IN_TEST); any lesson with code exercises works
ASSIGNMENT, COURSE_ID = 'ps1', 'amoc_nb'
EXEC_TIMEOUT = 300             # seconds per cell


def _wrong() -> dict:
    "The planted wrong answers, as tests/test_exercises.py has them (its dict, plus tests/planted/*.py)."
    spec = importlib.util.spec_from_file_location('_exercises_wrong', ROOT/'tests'/'test_exercises.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.WRONG


def _nbgrader(course: Path, *args):
    env = {**os.environ, 'IN_TEST': '1', 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'MPLBACKEND': 'Agg',
           'PYTHONPATH': os.pathsep.join([str(ROOT), *filter(None, [os.environ.get('PYTHONPATH')])])}
    r = subprocess.run([sys.executable, '-m', 'nbgrader', *args], cwd=course, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, f'nbgrader {" ".join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}'
    assert 'Exception while loading config' not in r.stdout + r.stderr, f'nbgrader_config.py does not load:\n{r.stderr[-5000:]}'
    return r


def _solution_name(cell) -> str: return editions.fn_names(editions.src(cell))[0]


@pytest.fixture(scope='module')
def graded(tmp_path_factory):
    "Run the course: release the lesson, submit stub / solution / each planted wrong answer, autograde; the grades."
    assert importlib.util.find_spec('nbgrader'), 'nbgrader is a dev dependency: pip install -e ".[dev]"'
    course = tmp_path_factory.mktemp('course')
    (course/'nbgrader_config.py').write_text(editions.nbgrader_config(COURSE_ID, EXEC_TIMEOUT))    # what teachers get
    editions.build([ROOT/'nbs'/f'{LESSON}.ipynb'], course/'source'/ASSIGNMENT)
    _nbgrader(course, 'generate_assignment', ASSIGNMENT, '--create')
    release = json.loads((course/'release'/ASSIGNMENT/f'{LESSON}.ipynb').read_text(encoding='utf-8'))

    teacher = editions.read_nb(ROOT/'nbs'/f'{LESSON}.ipynb')
    solutions = {_solution_name(c): editions.src(c) for c in teacher['cells'] if editions.is_solution(c)}
    answers = [editions.src(c) for c in teacher['cells'] if editions.is_answer(c)]
    wrong = _wrong()
    planted = {name: wrong[name] for name in solutions if name in wrong}

    def submit(student: str, code: dict, written: list | None = None):
        nb, k = copy.deepcopy(release), 0
        for c in nb['cells']:
            meta = c['metadata'].get('nbgrader', {})
            if not meta.get('solution'): continue
            if c['cell_type'] == 'code' and _solution_name(c) in code: c['source'] = code[_solution_name(c)]
            if c['cell_type'] == 'markdown' and written: c['source'] = written[k]; k += 1
        d = course/'submitted'/student/ASSIGNMENT
        d.mkdir(parents=True)
        (d/f'{LESSON}.ipynb').write_text(json.dumps(nb, indent=1), encoding='utf-8')

    submit('stub', {})
    submit('solution', solutions, answers)
    for name, code in planted.items(): submit(f'wrong_{name}', {**solutions, name: code})
    _nbgrader(course, 'autograde', ASSIGNMENT, '--create')

    from nbgrader.api import Gradebook
    grades = {}
    with Gradebook(f"sqlite:///{course/'gradebook.db'}", course_id=COURSE_ID) as gb:
        for student in ['stub', 'solution', *(f'wrong_{n}' for n in planted)]:
            sub = gb.find_submission_notebook(LESSON, ASSIGNMENT, student)
            grades[student] = {g.name: (g.cell_type, g.auto_score, g.max_score, g.needs_manual_grade) for g in sub.grades}
    return dict(release=release, solutions=solutions, planted=planted, grades=grades)


def _body_lines(source: str) -> list[str]:
    "The lines of the solution's function bodies (docstrings aside) longer than 20 characters."
    out = []
    for fn in (n for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        body = fn.body[1:] if ast.get_docstring(fn) is not None else fn.body
        out += [l.strip() for stmt in body for l in ast.unparse(stmt).splitlines() if len(l.strip()) > 20]
    return out


def _tests(grades: dict) -> dict:
    "The autograded tests (code grade cells): {grade_id: (score, max)}."
    return {k: (s, m) for k, (kind, s, m, _) in grades.items() if kind == 'code'}


def test_release_keeps_signatures_hints_and_locks(graded):
    cells, solutions = graded['release']['cells'], graded['solutions']
    sol = [c for c in cells if c['metadata'].get('nbgrader', {}).get('solution') and c['cell_type'] == 'code']
    assert sorted(map(_solution_name, sol)) == sorted(solutions), 'one solution cell per exercise function'
    for c in sol:
        s = editions.src(c)
        assert 'raise NotImplementedError' in s and '# hint:' in s, s      # nbgrader's stub, our signature and hints
        assert not [l for l in _body_lines(solutions[_solution_name(c)]) if l in s], 'no solution code in the release'
    tests = [c for c in cells if c['metadata'].get('nbgrader', {}).get('grade') and c['cell_type'] == 'code']
    assert len(tests) == len(solutions) and all(c['metadata'].get('editable') is False for c in tests)
    assert all(editions.first_line(c) == editions.CHECK for c in tests), 'the autograder tests are the check cells'
    others = [c for c in cells if not c['metadata']['nbgrader'].get('solution') and not c['metadata']['nbgrader'].get('grade')]
    assert others and all(c['metadata']['nbgrader']['locked'] and c['metadata'].get('editable') is False for c in others)


def test_solution_scores_full_marks(graded):
    g = graded['grades']['solution']
    tests = _tests(g)
    assert tests and all(s == m > 0 for s, m in tests.values()), f'the teacher solution loses points: {tests}'
    written = {k: v for k, v in g.items() if v[0] == 'markdown'}
    assert all(needs for *_, needs in written.values()), 'written answers wait for the teacher (manual grade)'


def test_stub_scores_zero(graded):
    g = graded['grades']['stub']
    assert all(s == 0 for _, s, _, _ in g.values()), f'the unanswered release scores points: {g}'


def test_planted_wrong_answer_loses_its_points(graded):
    assert graded['planted'], f'no planted wrong answer for {LESSON} (tests/planted/{LESSON}.py)'
    for name in graded['planted']:
        tests = _tests(graded['grades'][f'wrong_{name}'])
        lost = [k for k, (s, m) in tests.items() if s < m]
        assert lost == [k for k in tests if k.endswith(f'_{editions._slug(name)}_check')], \
            f'planted wrong {name}: lost points on {lost}, expected only its own check ({tests})'
