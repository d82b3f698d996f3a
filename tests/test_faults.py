"""Fault injection over every stage that writes a run directory (issue 13).

For each stage: SIGKILL of a real subprocess at seeded times and during a checkpoint write, then the same command
again; a full disk (a small tmpfs where this machine can mount one, else an injected ENOSPC) at the checkpoint, the
metrics and the results; two writers at once; each file of a run directory truncated and corrupted in turn. Every
rerun must end bit-for-bit equal to an uninterrupted run (tensors, results, metrics - timings aside), or refuse
with a clear message; never succeed with something else.

The default run keeps a representative subset; the whole matrix is marked slow:
    python -m pytest -q -m slow tests/test_faults.py
Set AMOC_NB_FAULT_REPORT=FILE to get the counts (faults injected, stages covered, runs that ended equal) as JSON.
"""
import contextlib
import io
import json
import re
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from amoc_nb import runs
from amoc_nb.cli import main

ENV = {k: v for k, v in os.environ.items() if k != 'AMOC_NB_FAULT'}
ENV['OMP_NUM_THREADS'] = '1'                 # the same thread count in every run: bit-identical results
SMALL = ['--dataset', 'digits', '--width', '4', '--image-size', '8', '--batch-size', '64', '--attack-steps', '1',
         '--no-progress']
HEAD = ['--n-test', '100', '--eval-steps', '2', '--batch-size', '64', '--attack-steps', '1', '--no-progress']

# name -> (argv without --out, which reference runs it reads, does it take --resume, does it write checkpoint.pt)
STAGES = {
    'pretrain': (lambda dep: ['pretrain', *SMALL, '--variant', 'ACC', '--epochs', '3', '--feat-dim', '16',
                              '--bank-size', '256'], (), True, True),
    'linear-eval': (lambda dep: ['linear-eval', '--encoder', dep['pretrain'], '--mode', 'robev', '--epochs', '3',
                                 '--milestones', '2', *HEAD], ('pretrain',), True, True),
    'finetune': (lambda dep: ['finetune', '--encoder', dep['pretrain'], '--epochs', '2', '--milestones', '1', *HEAD],
                 ('pretrain',), True, True),
    'evaluate': (lambda dep: ['evaluate', '--classifier', dep['linear-eval'] + '/classifier.pt', '--dataset', 'digits',
                              '--attacks', 'clean', 'pgd20', 'deepfool', '--n-test', '100', '--no-sanity',
                              '--no-progress'], ('linear-eval',), True, False),
    'baseline-at': (lambda dep: ['baseline', '--method', 'at', *SMALL, '--epochs', '2', '--milestones', '1',
                                 '--n-test', '100', '--eval-steps', '2'], (), True, True),
    'baseline-acl': (lambda dep: ['baseline', '--method', 'acl', *SMALL, '--epochs', '3'], (), True, True),
    'demo': (lambda dep: ['demo', '--variants', 'CCC', '--evals', 'stdev', '--pretrain-epochs', '2',
                          '--linear-epochs', '2', '--n-test', '60', '--autoattack-n', '0', '--tsne-n', '0',
                          '--no-controls', '--no-progress'], (), False, True),   # controls: 30 AT epochs, no new path
}
CORE = ['pretrain']            # the stage of the default subset's checkpoint faults (the slow matrix: every stage)
COUNTS = dict(faults=0, stages=set(), equal=0, refused=0)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module', autouse=True)
def report():
    yield
    if os.environ.get('AMOC_NB_FAULT_REPORT'):
        Path(os.environ['AMOC_NB_FAULT_REPORT']).write_text(json.dumps({**COUNTS, 'stages': sorted(COUNTS['stages'])}))


# ---------------------------------------------------------------------------------------------------- running
# `lock='file'`: the run-directory lock's fallback for filesystems without flock, forced by taking fcntl away
NO_FLOCK = 'import sys, amoc_nb.runs as r; r.fcntl = None; from amoc_nb.cli import main; sys.exit(main(sys.argv[1:]))'


def cli(argv, fault=None, lock=None):
    "Run amoc-nb in this process (optionally with an injected fault); return (exit code, stderr)."
    runs._WRITES.clear()
    env = {'AMOC_NB_FAULT': fault}
    saved_fcntl = runs.fcntl
    if lock == 'file': runs.fcntl = None
    old = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        if v is None: os.environ.pop(k, None)
        else: os.environ[k] = v
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
        runs.fcntl = saved_fcntl
    return code, err.getvalue()


class Proc(subprocess.Popen):
    "A subprocess whose stderr goes to a file (a pipe could fill up and stall it)."
    def stderr_text(self) -> str:
        self.err_file.seek(0)
        return self.err_file.read()


def spawn(argv, fault=None, lock=None) -> Proc:
    env = dict(ENV, **({'AMOC_NB_FAULT': fault} if fault else {}))
    err = tempfile.TemporaryFile('w+')
    cmd = [sys.executable, '-c', NO_FLOCK] if lock == 'file' else ['amoc-nb']
    p = Proc([*cmd, *[str(a) for a in argv]], stdout=subprocess.DEVNULL, stderr=err, text=True, env=env)
    p.err_file = err
    return p


def argv_of(stage, out, refs, resume=False):
    make, deps, takes_resume, _ = STAGES[stage]
    argv = make({d: str(refs(d)) for d in deps}) + ['--out', str(out)]
    return argv + (['--resume'] if resume and takes_resume else [])


def error_line(err: str) -> str:
    "The one `amoc-nb ...: error:` line of stderr (exactly one)."
    lines = [l for l in err.splitlines() if ': error: ' in l]
    assert len(lines) == 1, err
    return lines[0]


def wait_for_lock(out: Path, pid: int, proc, timeout=300):
    "Until process `pid` holds the lock on `out` (its lock file names it)."
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        try:
            if json.loads((out/runs.LOCK_FILE).read_text()).get('pid') == pid: return
        except (OSError, ValueError): pass
        time.sleep(0.05)
    raise AssertionError(f'{pid} never took the lock on {out}')


# ---------------------------------------------------------------------------------------------------- comparing
def _timing(key) -> bool:
    return isinstance(key, str) and ('seconds' in key or key.endswith('per_s') or key in ('started', 'time', 'timing'))


def _clean(obj, out: str):
    if isinstance(obj, dict): return {k: _clean(v, out) for k, v in obj.items() if not _timing(k)}
    if isinstance(obj, (list, tuple)): return [_clean(v, out) for v in obj]
    if isinstance(obj, str): return obj.replace(out, '<OUT>')
    return obj


def state(run_dir) -> dict:
    "Everything a run directory holds that must not depend on faults: tensors, results, metrics (timings aside)."
    run_dir = Path(run_dir)
    left = [p for p in run_dir.rglob(f'*{runs.TMP_SUFFIX}')]
    assert not left, f'temporary files left behind: {left}'
    out = {}
    for p in sorted(run_dir.rglob('*')):
        rel, o = str(p.relative_to(run_dir)), str(run_dir)
        if not p.is_file() or p.name.startswith(runs.LOCK_FILE) or p.name.endswith('.prev.pt'): continue
        if p.suffix == '.pt': out[rel] = _clean(torch.load(p, weights_only=True), o)
        elif p.suffix == '.json': out[rel] = _clean(json.loads(p.read_text()), o)
        elif p.suffix == '.jsonl': out[rel] = _clean(runs.read_metrics(p.parent), o)
        elif p.suffix == '.md': out[rel] = re.sub(r'\n## Time\n\n[^\n]*\n', '\n', p.read_text().replace(o, '<OUT>'))
        else: out[rel] = 'present'
    return out


def assert_same(a, b, where='run'):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f'{where}: keys {sorted(set(a) ^ set(b))}'
        for k in a: assert_same(a[k], b[k], f'{where}/{k}')
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f'{where}: lengths {len(a)} vs {len(b)}'
        for i, (x, y) in enumerate(zip(a, b)): assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b or (a != a and b != b), f'{where}: {a!r} != {b!r}'


def assert_equal_to_reference(stage, out, refs):
    assert_same(state(refs(stage)), state(out), stage)
    COUNTS['equal'] += 1
    COUNTS['stages'].add(stage)


@pytest.fixture(scope='module')
def refs(tmp_path_factory):
    "refs(stage): the run directory of an uninterrupted run of that stage (made once, in this process)."
    root, made = tmp_path_factory.mktemp('ref'), {}
    def get(stage):
        if stage not in made:
            for d in STAGES[stage][1]: get(d)
            out = root/stage
            code, err = cli(argv_of(stage, out, get))
            assert code == 0, err
            made[stage] = out
        return made[stage]
    return get


# ---------------------------------------------------------------------------------------------------- disk
@contextlib.contextmanager
def small_disk(d: Path, size: int):
    "A tmpfs of `size` bytes at `d` (yields True), or nothing mounted (yields False: inject the fault instead)."
    d.mkdir(parents=True, exist_ok=True)
    ok = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(d)],
                        capture_output=True).returncode == 0
    try: yield ok
    finally:
        if ok: subprocess.run(['umount', '-l', str(d)], capture_output=True)


def grow(d: Path, mounted: bool):
    "Free space: make the tmpfs large."
    if mounted: subprocess.run(['mount', '-o', 'remount,size=256m', str(d)], check=True)


def checkpoint_size(refs, stage) -> int:
    return max(p.stat().st_size for p in refs(stage).rglob('checkpoint.pt'))


# ================================================================================================ the default subset
def test_two_writers_the_second_exits_2_with_pid_and_host(refs, tmp_path):
    "Reproduction 1: the same pre-training started twice into one directory; the second is refused."
    out = tmp_path/'R'
    a = spawn(argv_of('pretrain', out, refs))
    wait_for_lock(out, a.pid, a)
    for resume in (False, True):
        code, err = cli(argv_of('pretrain', out, refs, resume=resume))
        line = error_line(err)
        assert code == 2 and f'pid {a.pid}' in line and socket.gethostname() in line and str(out) in line, err
    COUNTS['faults'] += 2
    assert a.wait(timeout=600) == 0, a.stderr_text()
    assert [r['epoch'] for r in runs.read_metrics(out)] == [1, 2, 3]            # 3 lines for 3 epochs, not 6
    assert_equal_to_reference('pretrain', out, refs)
    code, err = cli(argv_of('pretrain', out, refs, resume=True))               # the finished holder blocks nothing
    assert code == 0, err


@pytest.mark.parametrize('stage', CORE)
def test_killed_during_checkpoint_write_then_resume_is_exact(refs, tmp_path, stage):
    out = tmp_path/'R'
    p = spawn(argv_of(stage, out, refs), fault='kill:checkpoint.pt:2')
    assert p.wait(timeout=600) == -signal.SIGKILL
    COUNTS['faults'] += 1
    assert (out/('checkpoint.pt' + runs.TMP_SUFFIX)).exists()                   # really killed inside the write
    assert torch.load(out/'checkpoint.pt', weights_only=True)['epoch'] == 1
    assert [r['epoch'] for r in runs.read_metrics(out)] == [1]
    code, err = cli(argv_of(stage, out, refs, resume=True))
    assert code == 0, err
    assert_equal_to_reference(stage, out, refs)


@pytest.mark.parametrize('seed', [0])
def test_killed_at_a_seeded_time_then_rerun_is_exact(refs, tmp_path, seed):
    kill_and_rerun('pretrain', refs, tmp_path, seed)


@pytest.mark.parametrize('stage', CORE)
def test_disk_full_at_checkpoint_then_resume_is_exact(refs, tmp_path, stage):
    "Reproduction 2 (tiny): the disk fills at epoch 2's checkpoint: one line, exit 1, nothing inconsistent left."
    disk_full_at_checkpoint(stage, refs, tmp_path)


@pytest.mark.parametrize('stage', CORE)
def test_disk_full_at_metrics_then_resume_is_exact(refs, tmp_path, stage):
    out = tmp_path/'R'
    code, err = cli(argv_of(stage, out, refs), fault='enospc:metrics.jsonl:2')
    COUNTS['faults'] += 1
    line = error_line(err)
    assert code == 1 and 'could not write the metrics line' in line and 'ENOSPC' in line, err
    assert 'checkpoint (epoch 2) is saved' in line and '--resume' in line, err
    assert torch.load(out/'checkpoint.pt', weights_only=True)['epoch'] == 2
    code, err = cli(argv_of(stage, out, refs, resume=True))
    assert code == 0, err
    assert_equal_to_reference(stage, out, refs)


def test_disk_full_at_results_then_resume_is_exact(refs, tmp_path):
    disk_full_at_results('linear-eval', refs, tmp_path, fault='enospc:results.json:1')


@pytest.mark.parametrize('name,damage', [('metrics.jsonl', 'truncate'), ('metrics.jsonl', 'corrupt'),
                                         ('checkpoint.pt', 'truncate'), ('checkpoint.prev.pt', 'corrupt')])
@pytest.mark.parametrize('stage', CORE)
def test_damaged_file_is_refused_or_recovered(refs, tmp_path, stage, name, damage):
    damaged_then_rerun(stage, refs, tmp_path, name, damage)


def test_non_finite_loss_stops_the_run_and_writes_no_checkpoint(refs, tmp_path):
    out = tmp_path/'R'
    code, err = cli(['baseline', '--method', 'acl', *SMALL, '--epochs', '2', '--lr', '1e30', '--out', out])
    line = error_line(err)
    assert code == 1 and 'non-finite' in line and 'at step' in line and 'lr ' in line and 'eps ' in line, err
    assert not (out/'checkpoint.pt').exists() and not (out/'metrics.jsonl').exists()


# ================================================================================================ the shared checks
def kill_and_rerun(stage, refs, tmp_path, seed):
    "SIGKILL the stage at a seeded time after it took its lock, rerun the same command (with --resume), compare."
    out = tmp_path/f'{stage}-kill{seed}'
    ref_s = max(1.0, sum(r.get('seconds', 0) for r in runs.read_metrics(refs(stage))) or 5.0)
    delay = random.Random(seed).uniform(0.1, 1.2) * ref_s
    p = spawn(argv_of(stage, out, refs))
    wait_for_lock(out, p.pid, p)
    time.sleep(delay)
    alive = p.poll() is None
    if alive: p.send_signal(signal.SIGKILL); COUNTS['faults'] += 1
    p.wait(timeout=600)
    code, err = cli(argv_of(stage, out, refs, resume=True))
    assert code == 0, err
    assert_equal_to_reference(stage, out, refs)


def disk_full_at_checkpoint(stage, refs, tmp_path):
    "The disk fills while the second checkpoint is written (peak: the previous one + the new one)."
    d = tmp_path/'disk'
    size = int(checkpoint_size(refs, stage) * 1.5) + 16 * 1024      # 1 checkpoint and the small files fit, 2 do not
    # the demo writes other files before its first checkpoint: there the second checkpoint write fails by injection
    with (small_disk(d, size) if stage != 'demo' else contextlib.nullcontext(False)) as mounted:
        out = d/'R'
        code, err = cli(argv_of(stage, out, refs), fault=None if mounted else 'enospc:checkpoint.pt:2')
        COUNTS['faults'] += 1
        line = error_line(err)
        assert code == 1, err
        assert 'could not write the checkpoint' in line and 'No space left on device (ENOSPC)' in line, err
        assert 'it needs' in line and 'epoch 1) is intact' in line and '--resume' in line, err
        ck = [p for p in out.rglob('checkpoint.pt')]
        assert not list(out.rglob(f'*{runs.TMP_SUFFIX}')), 'a temporary file was left behind'
        last = max(ck, key=lambda p: p.stat().st_mtime)
        assert torch.load(last, weights_only=True)['epoch'] == 1
        assert [r['epoch'] for r in runs.read_metrics(last.parent)] == [1]   # no metrics past the checkpoint
        grow(d, mounted)
        code, err = cli(argv_of(stage, out, refs, resume=True))
        assert code == 0, err
        assert_equal_to_reference(stage, out, refs)


def disk_full_at_results(stage, refs, tmp_path, fault):
    out = tmp_path/'R'
    code, err = cli(argv_of(stage, out, refs), fault=fault)
    COUNTS['faults'] += 1
    line = error_line(err)
    assert code == 1 and 'could not write the results' in line and 'ENOSPC' in line and '--resume' in line, err
    assert not (out/'results.json').exists()
    code, err = cli(argv_of(stage, out, refs, resume=True))
    assert code == 0, err
    assert_equal_to_reference(stage, out, refs)


def midway(stage, refs, out):
    "A run directory stopped by a full disk at epoch 2's metrics line: checkpoint.pt, checkpoint.prev.pt and the rest."
    code, err = cli(argv_of(stage, out, refs), fault='enospc:metrics.jsonl:2')
    assert code == 1, err


def damage(path: Path, how: str):
    data = path.read_bytes()
    if how == 'truncate': path.write_bytes(data[:len(data) // 2])
    else:                                          # bytes overwritten in place: the size stays the same
        mid = len(data) // 2
        path.write_bytes(data[:mid] + (b'\x00garbage\xff' * 9)[:min(80, len(data) - mid)] + data[mid + 80:])


def damaged_then_rerun(stage, refs, tmp_path, name, how, finished=False):
    out = tmp_path/'R'
    if finished: shutil.copytree(refs(stage), out)
    else: midway(stage, refs, out)
    target = out/name
    assert target.exists(), sorted(p.name for p in out.iterdir())
    damage(target, how)
    COUNTS['faults'] += 1
    code, err = cli(argv_of(stage, out, refs, resume=True))
    if code == 0:
        assert_equal_to_reference(stage, out, refs)                           # recovered
    else:
        assert code == 2, err                                                 # refused, with a clear message
        line = error_line(err)
        assert name in line and ('corrupt' in line or 'damaged' in line or 'truncated' in line), line
        COUNTS['refused'] += 1
        COUNTS['stages'].add(stage)
    return code


# ================================================================================================ the full matrix (slow)
@pytest.mark.slow
@pytest.mark.parametrize('stage', list(STAGES))
@pytest.mark.parametrize('seed', [1, 2, 3])
def test_slow_kill_at_seeded_times(refs, tmp_path, stage, seed):
    kill_and_rerun(stage, refs, tmp_path, seed)


@pytest.mark.slow
@pytest.mark.parametrize('stage,file,n', [(s, f, n) for s in STAGES for f, n in
                                          [('checkpoint.pt', 1), ('checkpoint.pt', 2), ('classifier.pt', 1),
                                           ('results.json', 1), ('results.json', 2)]
                                          if STAGES[s][3] or f == 'results.json'])
def test_slow_kill_during_a_write(refs, tmp_path, stage, file, n):
    out = tmp_path/'R'
    p = spawn(argv_of(stage, out, refs), fault=f'kill:{file}:{n}')
    code = p.wait(timeout=900)
    if code != -signal.SIGKILL:                                              # this stage never writes that file
        assert code == 0, p.stderr_text()
        pytest.skip(f'{stage} writes no {file} #{n}')
    COUNTS['faults'] += 1
    code, err = cli(argv_of(stage, out, refs, resume=True))
    assert code == 0, err
    assert_equal_to_reference(stage, out, refs)


@pytest.mark.slow
@pytest.mark.parametrize('stage', [s for s in STAGES if STAGES[s][3]])
def test_slow_disk_full_at_checkpoint(refs, tmp_path, stage):
    disk_full_at_checkpoint(stage, refs, tmp_path)


@pytest.mark.parametrize('stage', [s for s in STAGES if s not in CORE])
def test_one_fault_per_stage(refs, tmp_path, stage):
    "The default selection: every stage meets one full disk (its checkpoint, or evaluate's results) and resumes exactly."
    if STAGES[stage][3]: disk_full_at_checkpoint(stage, refs, tmp_path)
    else: disk_full_at_results(stage, refs, tmp_path, fault='enospc:results.json:1')


@pytest.mark.slow
@pytest.mark.parametrize('stage', [s for s in STAGES if STAGES[s][3] and s != 'demo'])
def test_slow_disk_full_at_metrics(refs, tmp_path, stage):
    out = tmp_path/'R'
    code, err = cli(argv_of(stage, out, refs), fault='enospc:metrics.jsonl:1')
    COUNTS['faults'] += 1
    assert code == 1 and 'could not write the metrics line' in error_line(err), err
    code, err = cli(argv_of(stage, out, refs, resume=True))
    assert code == 0, err
    assert_equal_to_reference(stage, out, refs)


@pytest.mark.slow
@pytest.mark.parametrize('stage', ['linear-eval', 'finetune', 'evaluate', 'baseline-at', 'demo'])
def test_slow_disk_full_at_results(refs, tmp_path, stage):
    disk_full_at_results(stage, refs, tmp_path, fault='enospc:results.json:1')


@pytest.mark.slow
@pytest.mark.parametrize('stage', ['linear-eval', 'finetune', 'baseline-at'])
def test_slow_disk_full_at_classifier_on_a_real_small_disk(refs, tmp_path, stage):
    "A tmpfs that holds the training checkpoints but not classifier.pt as well."
    d = tmp_path/'disk'
    size = int(checkpoint_size(refs, stage) * 2.5) + 16 * 1024
    with small_disk(d, size) as mounted:
        if not mounted: pytest.skip('no tmpfs on this machine (the injected results fault is tested above)')
        out = d/'R'
        code, err = cli(argv_of(stage, out, refs))
        if code == 0: pytest.skip(f'{size} bytes were enough for {stage}')
        COUNTS['faults'] += 1
        line = error_line(err)
        assert code == 1 and 'No space left on device' in line and 'intact' in line, err
        assert not list(out.rglob(f'*{runs.TMP_SUFFIX}'))
        grow(d, mounted)
        code, err = cli(argv_of(stage, out, refs, resume=True))
        assert code == 0, err
        assert_equal_to_reference(stage, out, refs)


@pytest.mark.slow
@pytest.mark.parametrize('stage', list(STAGES))
@pytest.mark.parametrize('lock', [None, 'file'])
def test_slow_two_writers(refs, tmp_path, stage, lock):
    out = tmp_path/'R'
    a = spawn(argv_of(stage, out, refs), lock=lock)
    if lock == 'file':
        t0 = time.time()
        while not (out/(runs.LOCK_FILE + '.pid')).exists() and a.poll() is None and time.time() - t0 < 300:
            time.sleep(0.05)
    else: wait_for_lock(out, a.pid, a)
    code, err = cli(argv_of(stage, out, refs, resume=True), lock=lock)
    COUNTS['faults'] += 1
    assert code == 2 and f'pid {a.pid}' in error_line(err), err
    assert a.wait(timeout=900) == 0, a.stderr_text()
    assert_equal_to_reference(stage, out, refs)


RUN_FILES = {
    'pretrain': ['checkpoint.pt', 'checkpoint.prev.pt', 'metrics.jsonl', 'config.json', runs.LOCK_FILE],
    'baseline-acl': ['checkpoint.pt', 'checkpoint.prev.pt', 'metrics.jsonl', 'config.json'],
    'linear-eval': ['checkpoint.pt', 'checkpoint.prev.pt', 'metrics.jsonl', 'config.json'],
    'finetune': ['checkpoint.pt', 'checkpoint.prev.pt', 'metrics.jsonl', 'config.json'],
    'baseline-at': ['checkpoint.pt', 'checkpoint.prev.pt', 'metrics.jsonl', 'config.json'],
}
FINISHED_FILES = {
    'linear-eval': ['classifier.pt', 'results.json', 'metrics.jsonl'],
    'finetune': ['classifier.pt', 'results.json'],
    'baseline-at': ['classifier.pt', 'results.json'],
    'evaluate': ['results.json', 'config.json'],
}


@pytest.mark.slow
@pytest.mark.parametrize('how', ['truncate', 'corrupt'])
@pytest.mark.parametrize('stage,name', [(s, f) for s, fs in RUN_FILES.items() for f in fs])
def test_slow_damaged_midway_run(refs, tmp_path, stage, name, how):
    damaged_then_rerun(stage, refs, tmp_path, name, how)


@pytest.mark.slow
@pytest.mark.parametrize('how', ['truncate', 'corrupt'])
@pytest.mark.parametrize('stage,name', [(s, f) for s, fs in FINISHED_FILES.items() for f in fs])
def test_slow_damaged_finished_run(refs, tmp_path, stage, name, how):
    damaged_then_rerun(stage, refs, tmp_path, name, how, finished=True)


# ================================================================================================ the reproductions
PAPER_DIGITS = ['pretrain', '--dataset', 'digits', '--variant', 'ACC', '--no-progress']      # the digits defaults


@pytest.mark.slow
def test_repro1_same_command_twice_3s_apart(tmp_path):
    "`amoc-nb pretrain --dataset digits --variant ACC --epochs 3 --out R` started twice, 3 s apart."
    out = tmp_path/'R'
    a = spawn(PAPER_DIGITS + ['--epochs', '3', '--out', out])
    time.sleep(3)
    b = spawn(PAPER_DIGITS + ['--epochs', '3', '--out', out])
    assert b.wait(timeout=900) == 2, b.stderr_text()
    assert f'pid {a.pid}' in b.stderr_text() and socket.gethostname() in b.stderr_text(), b.stderr_text()
    assert a.wait(timeout=900) == 0, a.stderr_text()
    assert [r['epoch'] for r in runs.read_metrics(out)] == [1, 2, 3]
    assert torch.load(out/'checkpoint.pt', weights_only=True)['epoch'] == 3
    COUNTS['faults'] += 1


@pytest.mark.slow
@pytest.mark.parametrize('mb', [5, 3])
def test_repro2_small_filesystem(tmp_path, mb):
    """The 3-epoch run on a 5 MB filesystem (which now fits: a checkpoint and its predecessor share nothing but
    need 2 copies at most), and on 3 MB (which holds one checkpoint of 2 MB, not two): one line, exit 1, no temporary file, metrics at the
    checkpoint's epoch; after freeing space --resume ends with each epoch once."""
    d = tmp_path/'disk'
    with small_disk(d, int(mb * 2 ** 20)) as mounted:
        if not mounted: pytest.skip('cannot mount a tmpfs here')
        out = d/'R'
        code, err = cli(PAPER_DIGITS + ['--epochs', '3', '--out', out])
        if code == 0:
            assert mb == 5, err
        else:
            COUNTS['faults'] += 1
            line = error_line(err)
            assert code == 1 and 'No space left on device' in line and 'it needs' in line and 'is intact' in line, err
            assert not list(out.glob(f'*{runs.TMP_SUFFIX}'))
            ck = torch.load(out/'checkpoint.pt', weights_only=True)['epoch']
            assert [r['epoch'] for r in runs.read_metrics(out)] == list(range(1, ck + 1))
            grow(d, mounted)
            code, err = cli(PAPER_DIGITS + ['--epochs', '3', '--out', out, '--resume'])
            assert code == 0, err
        assert [r['epoch'] for r in runs.read_metrics(out)] == [1, 2, 3]     # epoch 3 once
        assert torch.load(out/'checkpoint.pt', weights_only=True)['epoch'] == 3


@pytest.mark.slow
def test_repro3_dead_network_is_flagged(tmp_path):
    "`--epochs 8 --warmup-epochs 1 --lr 10000`: a dead network (loss pinned at ln 513) warns and is flagged."
    out = tmp_path/'R'
    code, err = cli(PAPER_DIGITS + ['--epochs', '8', '--warmup-epochs', '1', '--lr', '10000', '--out', out])
    if code == 1:                                       # or the loss overflowed: stopped, nothing past the checkpoint
        assert 'non-finite' in error_line(err), err
        ck = torch.load(out/'checkpoint.pt', weights_only=True)['epoch']
        assert [r['epoch'] for r in runs.read_metrics(out)] == list(range(1, ck + 1))
        return
    assert code == 0, err
    assert 'WARNING' in err and '--lr' in err and '--m' in err, err
    rows = runs.read_metrics(out)
    assert rows[0]['collapse'] is None                                        # the warm-up epoch
    assert max(r['collapse_streak'] for r in rows) >= 3
    assert runs.collapse_summary(out) is not None


@pytest.mark.slow
def test_repro3_collapse_in_a_short_run_is_flagged(tmp_path):
    "`--epochs 3 --lr 10000`: similarities 0.98+ and the loss at ln(K+1) inside the warm-up: warned at the end."
    out = tmp_path/'R'
    code, err = cli(PAPER_DIGITS + ['--epochs', '3', '--lr', '10000', '--out', out])
    if code == 1:
        assert 'non-finite' in error_line(err), err
        return
    assert code == 0 and 'WARNING' in err and 'collapsed' in err and '--lr' in err, err
    assert runs.read_metrics(out)[-1]['collapse'] == 'collapsed'
    assert runs.collapse_summary(out).startswith('collapsed representation')
