"""The demo / preset pipeline: results.json schema, test_set.pt, bad input, and kill-and-rerun equality."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import torch

from amoc_nb.cli import main
from amoc_nb.evaluate import load_classifier

TINY = ['--pretrain-epochs', '2', '--linear-epochs', '2', '--n-test', '60', '--autoattack-n', '0', '--tsne-n', '0',
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
