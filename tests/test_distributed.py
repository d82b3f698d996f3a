"""Data-parallel AMOC (lesson 06's loop over amoc_nb.procgroup) on the CPU: 2 processes under torchrun, gloo, one
thread per process.

The 2-process runs go through tools/dist_check.py (started with `amoc_nb.procgroup.launch`); the 1-process
references run here. `-m slow` adds AutoAttack's sharded counts."""
import json, os, signal, subprocess, sys, time, uuid
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import dist_check as C                                  # noqa: E402
from amoc_nb import procgroup as D                      # noqa: E402
from amoc_nb.attacks import eval_chunks, keyed_start, project   # noqa: E402
from amoc_nb.losses import ALL_VARIANTS                 # noqa: E402
from amoc_nb.pretrain import pretrain                   # noqa: E402

STEPS = 3
ENV = {'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join([str(ROOT/'tools'), str(ROOT)])}
# the measured 2-process vs 1-process differences are printed; these are the bounds the tests hold them to
EMULATION_TOL = 1e-5      # 2 processes vs 1 process with the same BN grouping: float rounding only (measured <= 6e-8)
GROUPING_MIN = 1e-4       # 2 processes vs 1 process with one BN batch: the grouping shows (measured ~5e-3)


def _torchrun(nproc, args, **popen):
    cmd = D.torchrun_command(nproc, args, module='dist_check')
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **ENV, **popen.pop('env', {})}, **popen)


@pytest.fixture(scope='module')
def two_procs(tmp_path_factory):
    "One 2-process start: every variant for STEPS steps, and the sharded evaluation."
    out = tmp_path_factory.mktemp('dist2')
    rc = D.launch(2, ['all', '--out', out, '--steps', STEPS], module='dist_check', env=ENV)
    assert rc == 0, f'torchrun exited with {rc}'
    return dict(steps=torch.load(out/'steps.pt', weights_only=False), eval=json.loads((out/'eval.json').read_text()))


def test_every_variant_two_processes_identical_banks(two_procs):
    res = two_procs['steps']
    assert res['world_size'] == 2 and res['torchrun'] and set(res['results']) == {*ALL_VARIANTS, *C.RECIPE_CASES}
    assert not D.launched_by_torchrun()                 # this process was not
    for v, r in res['results'].items():
        assert len(r['losses']) == STEPS and all(map(torch.isfinite, map(torch.tensor, r['losses']))), v
        assert r['bank_max_diff'] == 0.0, f'{v}: the banks differ across ranks by {r["bank_max_diff"]}'
        assert r['params_max_diff_ranks'] == 0.0, f'{v}: the weights differ across ranks'
        assert r['bank_ptr'] == STEPS * 32 % 256, f'{v}: each step must enqueue the global batch of 32'
        st = r['state']
        o = r['overrides']
        if ALL_VARIANTS[o['variant']].adv_key or o.get('aca_plus'):   # M_adv written with the gathered keys
            assert (st['banks.adv.written_at'] >= 0).sum() == STEPS * 32, v


def test_shuffled_bn_partition(two_procs):
    "The key network's per-rank BN batches: a shuffled partition of the global batch, not the query's shards."
    for v, r in two_procs['steps']['results'].items():
        pos = r['key_positions_all']                     # (ranks, 16): global positions in each rank's key batch
        assert sorted(pos.flatten().tolist()) == list(range(32)), v
        assert set(pos[0].tolist()) != set(range(16)) and set(pos[1].tolist()) != set(range(16, 32)), v
        assert r['key_input_matches'], f'{v}: the key network did not receive the shuffled global views'


def _max_diff(a, b, banks: bool):
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a
               if a[k].is_floating_point() and (('banks.' in k) == banks))


def test_two_processes_vs_one_differ_only_by_bn_grouping(two_procs):
    rows = []
    for v, r2 in two_procs['steps']['results'].items():
        cfg = C.small_config(**r2['overrides'])
        emul = C.run_steps(cfg, D.DistInfo(), STEPS, groups=2)       # 1 process, the same 2 BN groups
        plain = C.run_steps(cfg, D.DistInfo(), STEPS, groups=1)      # 1 process, one BN batch of 32 (keyed draws)
        d_emul = max(_max_diff(r2['state'], emul['state'], b) for b in (False, True))
        d_loss = max(abs(a - b) for a, b in zip(r2['losses'], emul['losses']))
        d_plain = _max_diff(r2['state'], plain['state'], False)
        rows.append((v, d_emul, d_loss, d_plain))
        assert d_emul <= EMULATION_TOL and d_loss <= EMULATION_TOL, (v, d_emul, d_loss)
        assert d_plain >= GROUPING_MIN and d_plain > 100 * max(d_emul, 1e-9), (v, d_plain)
    print('\nvariant  |2proc-emulated| weights+banks  |loss|  |2proc-1proc| weights')
    for v, a, b, c in rows: print(f'{v:8s} {a:.2e} {b:.2e} {c:.2e}')


def test_evaluation_sharding_exact_counts(two_procs):
    "Lesson 04's `accuracy` (through `evaluate_classifier`) counts the same on 2 processes as on 1."
    two, one = two_procs['eval'], C.eval_counts(D.DistInfo())
    assert two['world_size'] == 2 and one['world_size'] == 1 and set(two['processes'].values()) == {2}
    assert two['correct'] == one['correct']
    c = one['correct']
    assert 0 < c['pgd20'] < c['clean'] < 200                # the counts are not trivially 0 or all


@pytest.mark.slow
def test_evaluation_sharding_autoattack(tmp_path):
    "AutoAttack (APGD-CE), run per chunk with its keyed seed: 2 processes give the 1-process count (about 1 minute)."
    rc = D.launch(2, ['eval', '--autoattack', '--out', tmp_path], module='dist_check', env=ENV)
    assert rc == 0
    two = json.loads((tmp_path/'eval_aa.json').read_text())
    one = C.eval_counts(D.DistInfo(), ('apgd-ce',), n=96)
    assert two['correct'] == one['correct'] and two['world_size'] == 2


def _rank_pid(tag: str, rank: int) -> int | None:
    for p in Path('/proc').iterdir():
        if not p.name.isdigit(): continue
        try: env = (p/'environ').read_bytes().split(b'\0')
        except OSError: continue
        if f'AMOC_DIST_TAG={tag}'.encode() in env and f'RANK={rank}'.encode() in env and b'LOCAL_RANK=' + str(rank).encode() in env:
            return int(p.name)
    return None


def _wait_rows(out: Path, n: int, proc, timeout: float = 180) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        p = out/'metrics.jsonl'
        if p.exists() and len(p.read_text().splitlines()) >= n: return
        if proc.poll() is not None: pytest.fail(f'the run ended early with {proc.returncode}')
        time.sleep(0.3)
    pytest.fail('no metrics row in time')


@pytest.mark.skipif(not Path('/proc/self/environ').exists(), reason='finds the rank by /proc (Linux)')
def test_kill_one_rank_stops_cleanly_and_resume_continues(tmp_path):
    from amoc_nb.runs import run_lock, load_checkpoint_file, read_metrics
    out, tag = tmp_path/'run', uuid.uuid4().hex
    proc = _torchrun(2, ['pretrain', '--out', out, '--cfg', json.dumps(dict(epochs=40))], env={'AMOC_DIST_TAG': tag},
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_rows(out, 1, proc)
        pid = _rank_pid(tag, 1)
        assert pid is not None, 'rank 1 not found'
        os.kill(pid, signal.SIGKILL)
        rc = proc.wait(timeout=90)                       # torchrun stops rank 0 too: no hang in a collective
    finally:
        if proc.poll() is None: proc.kill(); proc.wait()
    assert rc != 0
    ck = load_checkpoint_file(out/'checkpoint.pt', 'amoc-pretrain')
    e = ck['epoch']
    assert 1 <= e < 40 and ck['distributed']['world_size'] == 2 and len(ck['distributed']['rng_ranks']) == 2
    with run_lock(out): pass                             # the lock died with rank 0
    # same N: --resume continues from the checkpoint (epochs is a setting a resumed run may change)
    r = _torchrun(2, ['pretrain', '--out', out, '--resume', '--cfg', json.dumps(dict(epochs=e + 1))])
    assert r.wait(timeout=240) == 0
    assert [m['epoch'] for m in read_metrics(out)] == list(range(1, e + 2))
    # another N (1 process, here): the state is re-sharded, the run goes on
    pretrain(C.small_config(epochs=e + 2), out, resume=True, progress=False)
    ck = load_checkpoint_file(out/'checkpoint.pt', 'amoc-pretrain')
    rows = read_metrics(out)
    assert ck['epoch'] == e + 2 and ck['distributed']['world_size'] == 1
    assert [m['epoch'] for m in rows] == list(range(1, e + 3)) and [m['world_size'] for m in rows[-2:]] == [2, 1]


def _final(out):
    from amoc_nb.runs import load_checkpoint_file
    return load_checkpoint_file(Path(out)/'checkpoint.pt', 'amoc-pretrain')


def _same_run(a, b):
    a, b = _final(a), _final(b)
    for k in a['model']: assert torch.equal(a['model'][k], b['model'][k]), k
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ('seconds', 'img_per_s')} for r in rows]
    assert strip(a['history']) == strip(b['history'])


def test_resume_is_exact_one_process(tmp_path):
    pretrain(C.small_config(epochs=2, variant='AAA'), tmp_path/'a', progress=False)
    pretrain(C.small_config(epochs=1, variant='AAA'), tmp_path/'b', progress=False)
    pretrain(C.small_config(epochs=2, variant='AAA'), tmp_path/'b', resume=True, progress=False)
    _same_run(tmp_path/'a', tmp_path/'b')


def _torchrun_pretrain(out, epochs, resume=False, **cfg):
    args = ['pretrain', '--out', out, '--cfg', json.dumps(dict(epochs=epochs, **cfg))] + (['--resume'] if resume else [])
    assert _torchrun(2, args).wait(timeout=300) == 0


def test_resume_is_exact_two_processes(tmp_path):
    "2 epochs in one go vs 1 epoch, a restart, then the second: the same weights, banks and metrics."
    cfg = dict(variant='ACA', aca_plus=True)
    _torchrun_pretrain(tmp_path/'a', 2, **cfg)
    _torchrun_pretrain(tmp_path/'b', 1, **cfg)
    _torchrun_pretrain(tmp_path/'b', 2, resume=True, **cfg)
    _same_run(tmp_path/'a', tmp_path/'b')
    # only checkpoint.prev.pt left (a crash between the renames of the epoch-2 save): --resume continues from epoch 1,
    # the same rule as for one process (test below), and ends where the uninterrupted run ended
    (tmp_path/'b'/'checkpoint.pt').unlink()
    _torchrun_pretrain(tmp_path/'b', 2, resume=True, **cfg)
    _same_run(tmp_path/'a', tmp_path/'b')


def test_only_prev_checkpoint_left_resumes_from_it_one_process(tmp_path, capsys):
    cfg = C.small_config(epochs=2, variant='ACC')
    pretrain(cfg, tmp_path/'a', progress=False)
    pretrain(cfg, tmp_path/'b', progress=False)
    (tmp_path/'b'/'checkpoint.pt').unlink()                       # what a crash between the two renames leaves
    with pytest.raises(D.RunExists): pretrain(cfg, tmp_path/'b', progress=False)
    pretrain(cfg, tmp_path/'b', resume=True, progress=False)
    assert 'resuming from checkpoint.prev.pt' in capsys.readouterr().err
    _same_run(tmp_path/'a', tmp_path/'b')


def test_keyed_random_starts_do_not_depend_on_the_split():
    x = torch.rand(8, 3, 4, 4)
    for norm in ('linf', 'l2', 'l1'):
        whole = keyed_start(range(8), 0, 'k')(x, 0.1, norm)
        a, b = keyed_start(range(4), 0, 'k')(x[:4], 0.1, norm), keyed_start(range(4, 8), 0, 'k')(x[4:], 0.1, norm)
        assert torch.equal(whole, torch.cat([a, b])), norm
        assert project(whole, 0.1, norm).sub(whole).abs().max() < 1e-6, norm     # inside the ball
    assert not torch.equal(keyed_start(range(8), 1, 'k')(x, 0.1, 'linf'), keyed_start(range(8), 0, 'k')(x, 0.1, 'linf'))


def test_small_helpers():
    assert D.strip_nproc(['pretrain', '--nproc', '4', '--epochs', '2']) == (4, ['pretrain', '--epochs', '2'])
    assert D.strip_nproc(['pretrain', '--nproc=2']) == (2, ['pretrain'])
    assert D.strip_nproc(['pretrain']) == (1, ['pretrain'])
    cmd = D.torchrun_command(2, ['pretrain', '--out', 'x'])
    assert cmd[1:] == ['-m', 'torch.distributed.run', '--standalone', '--nproc-per-node=2', '-m', 'amoc_nb.cli',
                       'pretrain', '--out', 'x']
    chunks = [eval_chunks(10, 3, r, 2) for r in range(2)]
    assert chunks == [[(0, 3), (6, 9)], [(3, 6), (9, 10)]]
    assert D.shard(32, 1, 2) == slice(16, 32)
    with pytest.raises(ValueError): D.shard(30, 0, 4)
    with pytest.raises(ValueError, match='divide'):
        os.environ['WORLD_SIZE'] = '3'
        try: pretrain(C.small_config(), '/nonexistent/never-written', progress=False)
        finally: del os.environ['WORLD_SIZE']
