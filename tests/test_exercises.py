"""Exercises and the two editions of the course (tools/editions.py).

- Every lesson with exercises has 3-5 of them, each with a solution and check cell or an answer cell.
- The student edition builds, and holds no line of any solution's code (nor the answers).
- Running the student edition top to bottom as nbdev_test does (IN_TEST, one thread, skip flags), in a fresh process
  per notebook: it runs up to its first exercise; at every exercise the check cell fails on the student's stub and on
  a wrong answer planted here (WRONG, one per solution: a test that cannot fail is a defect), and passes on the
  teacher's solution.
"""
import ast, json, os, re, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import editions  # noqa: E402  (tools/editions.py)

NBS = ROOT/'nbs'
LESSONS = [p for p in sorted(NBS.glob('*.ipynb')) if editions.has_exercises(editions.read_nb(p))]
REQUIRED = ('00_data', '01_models', '02_moco', '03_banks', '04_attacks', '05_losses', '06_pretrain', '07_linear_eval', '08_finetune',
            '09_evaluate', '10_baselines', '11_viz', '12_speed', '13_experiments', '14_distributed', '20_train_gpu', '21_analysis',
            '22_explorer')

# One plausible mistake per exercise, keyed by the solution's function name. Each must make its check cell fail.
WRONG = {
    # 09: the examples judged by the model they were crafted on, not the target
    'transfer_accuracy': '''
def transfer_accuracy(source, target, x, y, eps, attack='pgd20'):
    x_adv = run_attack(source, attack_suite(eps, tuple(x.shape[1:]))[attack], x, y)
    return accuracy(source, x_adv, y)
''',
    # 09: the lowest per-attack accuracy, not the per-image worst case
    'worst_case_accuracy': '''
def worst_case_accuracy(correct):
    return min(torch.as_tensor(c).float().mean().item() for c in correct.values())
''',
    # 06: the bank that gives the negatives taken for the bank that is written (ACA writes no M_adv, CAC does)
    'banks_written': '''
def banks_written(variant, aca_plus=False):
    return {'clean', get_variant(variant).bank}
''',
    # 07: the classifier put in train mode: the frozen encoder's BN running statistics move
    'robev_step': '''
def robev_step(clf, opt, x, y, eps, alpha, steps):
    clf.train()
    x_adv = pgd_attack(clf, x, y, eps, alpha, steps)
    loss = F.cross_entropy(clf(x_adv), y)
    opt.zero_grad(); loss.backward(); opt.step()
    return loss.item()
''',
    # 08: the KL the wrong way round, KL(p(x') || p(x))
    'trades_kl': '''
def trades_kl(logits_nat, logits_adv):
    return F.kl_div(F.log_softmax(logits_nat, dim=1), F.softmax(logits_adv, dim=1), reduction='batchmean')
''',
    # 08: the mean over the evaluations, not the best one: no selection, no optimism
    'selection_optimism': '''
def selection_optimism(acc, n_test, n_evals, sims=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (sims, n_evals)
    correct = torch.binomial(torch.full(shape, float(n_test)), torch.full(shape, float(acc)), generator=g)
    return (correct.mean(1) / n_test).mean().item() - acc
''',
    # 10: the bank's similarities not divided by the temperature
    'nt_xent_bank': '''
def nt_xent_bank(z1, z2, bank, t=0.5):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    sim = (z @ z.t() / t).masked_fill(torch.eye(2 * n, dtype=torch.bool), float('-inf'))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(torch.cat([sim, z @ bank.t()], dim=1), target)
''',
    # 00: std per image, then averaged - not the std over all pixels
    'channel_stats': '''
def channel_stats(s):
    x = to_float(s.x)
    return x.mean(dim=(0, 2, 3)), x.std(dim=(2, 3)).mean(0)
''',
    # 00: the first n images are not balanced
    'stratified_subset': '''
def stratified_subset(s, n_per_class):
    return s.subset(n_per_class * s.n_classes)
''',
    # 01: both branches counted
    'bn_params': '''
def bn_params(model, branch='adv'):
    return sum(p.numel() for m in model.modules() if isinstance(m, DualBatchNorm) for p in m.parameters())
''',
    # 01: parameters copied, running statistics forgotten
    'copy_bn_branch': '''
def copy_bn_branch(model, src='clean', dst='adv'):
    for m in model.modules():
        if isinstance(m, DualBatchNorm):
            for a, b in zip(getattr(m, 'bn_' + dst).parameters(), getattr(m, 'bn_' + src).parameters()):
                a.data.copy_(b.data)
    return model
''',
    # 02: in-batch accuracy, the bank ignored
    'instance_accuracy': '''
def instance_accuracy(q, k, bank):
    return ((q @ k.t()).argmax(1) == torch.arange(len(q))).float().mean().item()
''',
    # 03: a slice that does not wrap around the ring
    'newest_keys': '''
def newest_keys(bank, n):
    return bank.keys[max(int(bank.ptr) - n, 0):int(bank.ptr)].flip(0)
''',
    # 04: the accuracy of the clean images, the attack computed and ignored
    'robust_accuracy_curve': '''
def robust_accuracy_curve(model, x, y, eps_list, steps=10):
    out = []
    for eps in eps_list:
        xa = pgd_attack(model, x, y, eps=eps, alpha=eps / 4, steps=steps)
        with torch.no_grad(): out.append((model(x).argmax(1) == y).float().mean().item())
    return out
''',
    # 05: the key's branch instead of the query's
    'untrained_query_adv_bn': '''
def untrained_query_adv_bn(variants):
    return {name for name, v in variants.items() if v.key_bn != 'adv'}
''',
    # 05: the negatives always from M_clean
    'eq34_loss': '''
def eq34_loss(v, q_clean, q_adv, k_clean, k_adv, M_clean, M_adv, lam=0.5, T=0.2):
    l_ccc = info_nce(q_clean, k_clean, M_clean, T)
    q = q_adv if v.adv_query else q_clean
    kk = k_adv if v.adv_key else k_clean
    return amoc_loss(l_ccc, info_nce(q, kk, M_clean, T), lam)
''',
    # 14 (another author's lesson): every process enqueues the same keys, as if gathered - no gap at all
    'local_enqueue_gap': '''
def local_enqueue_gap(world=2, b=8, size=64):
    torch.manual_seed(0)
    keys = [F.normalize(torch.randn(b, 16), dim=1) for _ in range(world)]
    banks = [MemoryBank(size, 16) for _ in range(world)]
    for bank in banks: bank.keys.copy_(banks[0].keys)
    for bank in banks: bank.enqueue(torch.cat(keys)[:b])
    return int((banks[0].keys != banks[1].keys).any(1).sum())
''',
    # 12: the key's attack backwards forgotten
    'predicted_passes': '''
def predicted_passes(variant='ACC', attack_steps=5):
    v, s = get_variant(variant), attack_steps
    out = {('forward', 'q', 'clean'): 1, ('forward', 'k', 'clean'): 1, ('backward', 'q'): 1}
    if v.adv_query:
        out[('forward', 'q', 'adv')] = s + 1
        out[('backward', 'q')] += s + 1
    if v.adv_key:
        out[('forward', 'k', 'adv')] = s + 1
    return out
''',
    # 11: the approximation (K/B - 1)/2, exact only when B divides K
    'full_ring_mean_age': '''
def full_ring_mean_age(K, B):
    return (K / B - 1) / 2
''',
    # 11: Gaussian vectors not put on the unit sphere
    'sampled_denominator': '''
def sampled_denominator(d, T, K=4096, n_q=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, n = torch.randn(n_q, d, generator=g), torch.randn(K, d, generator=g)
    return torch.exp(q @ n.t() / T).mean().item()
''',
}
# More planted answers, one file per lesson (tests/planted/NN_name.py, each defining WRONG = {...}; they win over the ones above).
for _f in sorted((ROOT/'tests'/'planted').glob('*.py')):
    _ns = {}; exec(_f.read_text(encoding='utf-8'), _ns)
    WRONG.update(_ns['WRONG'])


def _solutions(nb):
    return [editions.src(c) for c in nb['cells'] if editions.is_solution(c)]

def _fn_names(source):
    return [n.name for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_required_lessons_have_exercises():
    names = {p.stem for p in LESSONS}
    assert set(REQUIRED) <= names, f'lessons without exercises: {sorted(set(REQUIRED) - names)}'


def test_every_planted_answer_belongs_to_an_exercise():
    "A planted answer whose exercise is gone (or renamed) tests nothing: keep WRONG and the lessons in step."
    names = {n for p in LESSONS for s in _solutions(editions.read_nb(p)) for n in _fn_names(s)[:1]}
    assert set(WRONG) <= names, f'planted answers without an exercise: {sorted(set(WRONG) - names)}'


@pytest.mark.parametrize('path', LESSONS, ids=lambda p: p.stem)
def test_exercise_structure(path):
    nb = editions.read_nb(path)
    cells = nb['cells']
    heads = [i for i, c in enumerate(cells) if c['cell_type'] == 'markdown' and re.search(r'^## Exercises\s*$', editions.src(c), re.M)]
    assert len(heads) == 1, 'one "## Exercises" section'
    n = len(re.findall(r'^### Exercise \d+', '\n'.join(editions.src(c) for c in cells if c['cell_type'] == 'markdown'), re.M))
    assert 3 <= n <= 5, f'{n} exercises; a lesson has 3-5'
    assert all(i > heads[0] for i, c in enumerate(cells) if editions.is_exercise(c)), 'exercise cells sit in the section'
    sols = _solutions(nb)
    assert sols and any(editions.is_answer(c) for c in cells), 'code exercises and answered questions'
    for s in sols:
        tree = ast.parse(s)
        assert _fn_names(s), 'a solution cell defines the function the student writes'
        assert all(isinstance(n, (ast.FunctionDef, ast.Import, ast.ImportFrom)) for n in tree.body), \
            'a solution cell holds only functions (and imports): everything else would vanish from the stub'
        assert editions.hints(s), 'every solution cell carries a # hint: line for the stub'
        assert _fn_names(s)[0] in WRONG, f'no planted wrong answer for {_fn_names(s)[0]} in tests/test_exercises.py'
    # each exercise, by the kind in its heading: predict and open questions have an answer, code ones a solution
    starts = [i for i, c in enumerate(cells) if c['cell_type'] == 'markdown' and re.search(r'^### Exercise \d+', editions.src(c), re.M)]
    kinds = []
    for a, b in zip(starts, starts[1:] + [len(cells)]):
        kind = re.search(r'^### Exercise \d+ \(([^)]*)\)', editions.src(cells[a]), re.M)
        assert kind, f'cell {a}: an exercise heading says its kind, e.g. "### Exercise 2 (code): ..."'
        kind, seg = kind.group(1), cells[a:b]
        kinds.append(kind)
        if 'predict' in kind or 'open' in kind: assert any(editions.is_answer(c) for c in seg), f'cell {a}: no answer cell'
        if 'code' in kind: assert any(editions.is_solution(c) for c in seg), f'cell {a}: no solution cell'
    assert any('predict' in k for k in kinds) and any('code' in k for k in kinds) and any('open' in k for k in kinds), kinds
    if path.name[:2].isdigit() and int(path.name[:2]) <= 13:       # the lessons on the paper: an open question tied to it
        assert any('open' in k and 'arxiv.org/abs/2012.13154' in editions.src(cells[a]) for k, a in zip(kinds, starts)), \
            'one open question links the paper (arXiv 2012.13154, with its section, table or equation)'
    last = [i for i, c in enumerate(cells) if c['cell_type'] == 'markdown' and '## Summary' in editions.src(c)]
    if path.stem in REQUIRED: assert last, 'the lesson ends with a summary'
    if last: assert last[-1] > heads[0], 'the summary comes after the exercises'
    assert 'reference-spec' not in json.dumps(nb), 'cite the paper or the authors\' repository, not reference-spec.md'


def leaks(teacher, student) -> list:
    "Lines of solution code or answers of `teacher` that appear in `student` (lines the lesson also has elsewhere do not count)."
    text = '\n'.join(editions.src(c) for c in student['cells'])
    shared = '\n'.join(editions.src(c) for c in teacher['cells'] if not editions.is_exercise(c))
    found = []
    for s in _solutions(teacher):
        for fn in (n for n in ast.parse(s).body if isinstance(n, ast.FunctionDef)):
            body = fn.body[1:] if ast.get_docstring(fn) is not None else fn.body
            lines = [l for stmt in body for l in ast.unparse(stmt).splitlines()]          # normalised formatting
            lines += ast.get_source_segment(s, fn).splitlines()[1:]                      # and the original one
            for l in (l.strip() for l in lines):
                if len(l) > 12 and not l.startswith(('"', "'", '#')) and l in text and l not in shared: found.append(l)
    for a in (editions.src(c) for c in teacher['cells'] if editions.is_answer(c)):
        found += [l for l in a.splitlines()[1:] if len(l.strip()) > 30 and l in text]
    return found


def test_student_edition_clears_exercise_outputs():
    "A rendered teacher notebook has outputs in its exercises; the student edition drops them, and only them."
    nb = editions.read_nb(LESSONS[0])
    out = {'output_type': 'stream', 'name': 'stdout', 'text': ['an answer\n']}
    for c in nb['cells']:
        if c['cell_type'] == 'code': c['outputs'] = [out]
    st = editions.student_nb(nb)
    start = next(i for i, c in enumerate(st['cells']) if editions.is_exercises_heading(c))
    code = lambda cells: [c for c in cells if c['cell_type'] == 'code']
    assert code(st['cells'][:start]) and all(c['outputs'] == [out] for c in code(st['cells'][:start]))
    assert code(st['cells'][start:]) and all(c['outputs'] == [] for c in code(st['cells'][start:]))


def test_student_edition_has_no_solutions(tmp_path):
    written = editions.build(LESSONS, tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in LESSONS)
    for path in LESSONS:
        teacher, student = editions.read_nb(path), editions.read_nb(tmp_path/path.name)
        text = '\n'.join(editions.src(c) for c in student['cells'])
        assert editions.SOLUTION not in text and editions.STUB_MARK in text
        assert leaks(teacher, student) == [], f'{path.name}: solution code or answers in the student edition'
        assert leaks(teacher, teacher), f'{path.name}: the leak check finds nothing even in the teacher edition'
        start = next(i for i, c in enumerate(student['cells']) if editions.is_exercises_heading(c))
        assert not any(c.get('outputs') for c in student['cells'][start:]), 'no outputs in the exercises (they are answers)'
        assert 'NotImplementedError' in text


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    "One fresh process per notebook runs its student edition with the planted wrong answers (tools/editions.py --run)."
    wrong = tmp_path_factory.mktemp('wrong')/'wrong.json'
    wrong.write_text(json.dumps(WRONG))
    env = {**os.environ, 'IN_TEST': '1', 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
    def one(path):
        r = subprocess.run([sys.executable, str(ROOT/'tools'/'editions.py'), '--run', str(wrong), str(path)],
                           cwd=NBS, env=env, capture_output=True, text=True, timeout=600)
        lines = [l for l in r.stdout.splitlines() if l.startswith('{"notebook"')]
        return (json.loads(lines[-1]) if r.returncode == 0 and lines else         # one notebook's crash
                dict(reached_first_exercise=False, error=f'exit {r.returncode}: {r.stderr[-2000:]}', exercises=[]))
    with ThreadPoolExecutor(max_workers=2) as pool:               # two one-thread processes at a time: the two cores
        return dict(zip((p.name for p in LESSONS), pool.map(one, LESSONS)))


@pytest.mark.parametrize('path', LESSONS, ids=lambda p: p.stem)
def test_student_edition_runs_and_checks_discriminate(runs, path):
    res = runs[path.name]
    assert res['reached_first_exercise'], f'{path.name} stopped before its first exercise: {res["error"]}'
    assert res['error'] is None, res['error']
    assert len(res['exercises']) == len(_solutions(editions.read_nb(path)))
    for ex in res['exercises']:
        assert ex['solution'] == 'passed', f"{ex['name']}: the teacher's solution fails its check: {ex['solution']}"
        assert ex['stub'].startswith('NotImplementedError'), f"{ex['name']}: the check does not fail on the stub: {ex['stub']}"
        assert ex['wrong'] not in ('passed', 'missing'), f"{ex['name']}: the check passes the planted wrong answer"
        assert not ex['wrong'].startswith(('SyntaxError', 'NameError')), f"{ex['name']}: the planted answer is broken: {ex['wrong']}"
