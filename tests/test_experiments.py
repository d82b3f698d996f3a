"""The demo / preset pipeline: results.json schema, test_set.pt, bad input, and kill-and-rerun equality."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import torch

from amoc_nb.cli import main
from amoc_nb.checkpoints import load_classifier

TINY = ['--pretrain-epochs', '2', '--linear-epochs', '2', '--n-test', '60', '--autoattack-n', '0', '--tsne-n', '0', '--no-controls',
        '--no-progress']
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}          # the same thread count in every run: bit-identical results


def demo(out, *extra):
    return subprocess.run(['amoc-nb', 'run', '--preset', 'demo', '--out', str(out), *TINY, *extra],
                          capture_output=True, text=True, env=ENV, timeout=900)


def test_unknown_preset_and_variant_exit_2(tmp_path, capsys):
    assert main(['run', '--preset', 'table9', '--out', str(tmp_path / 'r')]) == 2
    assert 'table6' in capsys.readouterr().err
    assert main(['demo', '--variants', 'ACC', 'XYZ', '--out', str(tmp_path / 'r')]) == 2
    assert 'CCC' in capsys.readouterr().err
    assert not (tmp_path / 'r').exists()


def test_kill_midway_then_rerun_equals_uninterrupted(tmp_path):
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    p = demo(full)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((full / 'results.json').read_text())
    # schema of the issue: {"dataset", "eps", "variants": {V: {"stdev": {"clean", "pgd20", "checkpoint"}, "robev"}}}
    assert res['dataset'] == 'digits' and res['eps'] == 0.1
    assert set(res['variants']) == {'CCC', 'ACC', 'ACA'}
    for v, row in res['variants'].items():
        for ev in ('stdev', 'robev'):
            r = row[ev]
            assert 0 <= r['pgd20'] <= r['clean'] <= 1
            clf = load_classifier(full / r['checkpoint'])
            assert not clf.training
    t = torch.load(full / 'test_set.pt', weights_only=True)
    assert t['x'].dtype == torch.float32 and t['x'].shape == (60, 3, 16, 16) and t['y'].dtype == torch.long
    assert 0 <= float(t['x'].min()) and float(t['x'].max()) <= 1
    assert (full / 'report.md').read_text().startswith('# AMOC on digits')

    # the same command, killed once the second variant's pre-training has a checkpoint, then run again
    proc = subprocess.Popen(['amoc-nb', 'run', '--preset', 'demo', '--out', str(killed), *TINY],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    ck = killed / 'pretrain' / 'ACC' / 'checkpoint.pt'
    t0 = time.time()
    while not ck.exists() and proc.poll() is None and time.time() - t0 < 600:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / 'results.json').exists()          # it really stopped midway
    p = demo(killed)
    assert p.returncode == 0, p.stderr[-2000:]
    res2 = json.loads((killed / 'results.json').read_text())
    for v in res['variants']:
        for ev in ('stdev', 'robev'):
            assert res2['variants'][v][ev]['clean'] == res['variants'][v][ev]['clean']
            assert res2['variants'][v][ev]['pgd20'] == res['variants'][v][ev]['pgd20']
    # `amoc-nb compare` on the two real runs: every accuracy equal, so they agree even at tolerance 0
    p = subprocess.run(['amoc-nb', 'compare', '--runs', str(full), str(killed), '--tolerance', '0', '--json'],
                       capture_output=True, text=True, env=ENV)
    assert p.returncode == 0, p.stderr
    verdict = json.loads(p.stdout.strip().splitlines()[-1])
    assert verdict['agree'] and verdict['max_abs_diff'] == 0 and verdict['settings_differ'] == []
    assert len(verdict['rows']) == 3 * 2 * 2                # 3 variants x (StdEv, RobEv) x (clean, PGD-20)


def fake_run(path, clean, pgd20, amp):
    path.mkdir()
    res = dict(settings=dict(amp=amp), variants=dict(ACC=dict(stdev=dict(clean=clean, pgd20=pgd20, autoattack_n=100,
                                                                          checkpoint='stdev/ACC/classifier.pt'))))
    (path / 'results.json').write_text(json.dumps(res))
    return path


def test_compare_reports_the_largest_difference_and_the_settings(tmp_path, capsys):
    a, b = fake_run(tmp_path / 'a', 0.95, 0.22, 'off'), fake_run(tmp_path / 'b', 0.94, 0.25, 'bf16')
    assert main(['compare', '--runs', str(a), str(b), '--json']) == 0
    out = capsys.readouterr().out
    assert "amp: 'off' -> 'bf16'" in out and 'NOT within 2 points' in out and '+3.0' in out
    verdict = json.loads(out.strip().splitlines()[-1])
    assert not verdict['agree'] and abs(verdict['max_abs_diff'] - 3.0) < 1e-9
    assert main(['compare', '--runs', str(a), str(b), '--metrics', 'clean']) == 0   # only clean: 1 point apart
    out = capsys.readouterr().out
    assert 'within 2 points' in out and 'NOT' not in out


def test_compare_bad_input_exit_2(tmp_path, capsys):
    a = fake_run(tmp_path / 'a', 0.95, 0.22, 'off')
    assert main(['compare', '--runs', str(a)]) == 2
    assert 'two run directories' in capsys.readouterr().err
    assert main(['compare', '--runs', str(a), str(tmp_path / 'missing')]) == 2
    assert 'finished `amoc-nb demo`' in capsys.readouterr().err


def test_seeds_and_controls(tmp_path):
    "--seeds 2 runs the pipeline per seed and reports mean +- sd; the control rows (random encoder, AT) are there."
    out = tmp_path / 'seeds'
    p = subprocess.run(['amoc-nb', 'demo', '--out', str(out), '--seeds', '2', '--variants', 'CCC', 'ACC', '--evals', 'stdev',
                        '--pretrain-epochs', '1', '--linear-epochs', '1', '--finetune-epochs', '1', '--n-test', '40',
                        '--autoattack-n', '0', '--tsne-n', '0', '--no-progress'],
                       capture_output=True, text=True, env=ENV, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads((out / 'results.json').read_text())
    assert res['seeds'] == [0, 1]
    per = [json.loads((out / f).read_text()) for f in res['per_seed']]
    accs = [r['variants']['ACC']['stdev']['pgd20'] for r in per]
    mean, sd = res['mean_sd']['variants']['ACC']['stdev']['pgd20']
    assert abs(mean - sum(accs) / 2) < 1e-9 and abs(sd - abs(accs[0] - accs[1]) / 2 ** 0.5) < 1e-9
    for r in per:
        assert set(r['controls']) == {'random', 'AT'}
        assert r['controls']['random']['stdev']['clean'] >= 0 and r['controls']['AT']['supervised']['pgd20'] >= 0
        assert r['settings']['seed'] in (0, 1) and set(r['learning']) == {'CCC', 'ACC'}
    report = (out / 'report.md').read_text()
    assert '2 seeds (0, 1), mean ± sd' in report and '| random | stdev |' in report and '| AT | supervised |' in report
