"""`amoc-nb reproduce`: the plan of each part, the claims rule, a tiny run of two parts over two seeds end to end
(resumable, the results file's schema), and the two new switches the ablations rest on."""
import functools, http.server, json, subprocess, sys, threading
from pathlib import Path

import pytest
import torch

from amoc_nb import experiments as E, results as RS
from amoc_nb.configs import config_for, DIGITS
from amoc_nb.models import bn_shared
from amoc_nb.pretrain import build, amoc_step, step_settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_part_plans_what_the_paper_reports():
    d = E._demo_for(E.reproduce_config_for(), 0)
    enc = E.encoders(d)
    assert set(E.TABLE6_ROWS) <= set(enc) and enc['ACA'][1].aca_plus is False and enc['ACA+'][1].aca_plus is True
    assert enc['ACC-short'][1].epochs == DIGITS.short_epochs == 8 and enc['ACC'][1].epochs == DIGITS.pretrain_epochs
    assert enc['ACC-single-bn'][1].dual_bn is False and enc['ACC-in-batch'][1].negatives == 'batch'
    assert enc['ACL-short'][1].epochs == DIGITS.short_epochs and enc['ACL'][1].epochs == DIGITS.pretrain_epochs
    jobs = {p: E.jobs(p) for p in E.PARTS}
    assert {n for n, _, _ in jobs['table6']} == set(E.TABLE6_ROWS)
    assert all('autoattack' in m for n, ev, m in jobs['table6'] if ev == 'stdev')
    assert set(jobs['table3'][0][2]) == {'clean', 'pgd20', 'deepfool', 'autoattack', 'pgd50_l1', 'pgd50_l2'}
    stages = E.seed_stages(d, Path('/nowhere'), E.PARTS)
    names = [s[1] for s in stages]
    assert len(names) == len(set(names)) and names.count('amoc ACC') == 1          # a shared stage runs once
    with pytest.raises(ValueError, match='choose from'): E.reproduce_config_for(only=('table7',))
    with pytest.raises(ValueError, match='distinct'): E.reproduce_config_for(seeds=(0, 0))


def test_the_verdict_rule():
    assert E.verdict({0: .40, 1: .42, 2: .41}, {0: .30, 1: .31, 2: .29})[0] == 'holds'
    assert E.verdict({0: .30, 1: .31, 2: .29}, {0: .40, 1: .42, 2: .41})[0] == 'does not hold'
    assert E.verdict({0: .40, 1: .30, 2: .35}, {0: .33, 1: .36, 2: .35})[0] == 'inconclusive'   # within the noise
    assert E.verdict({0: .305, 1: .306, 2: .305}, {0: .30, 1: .30, 2: .30})[0] == 'inconclusive'  # < 1 point
    assert E.verdict({0: .4}, {1: .3})[0] == 'not measured'
    assert E._combine(['holds', 'inconclusive']) == 'inconclusive' and E._combine(['holds', 'does not hold']) == 'does not hold'


def test_single_bn_and_in_batch_negatives_train():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 8, 8)
    for kw in (dict(dual_bn=False), dict(negatives='batch')):
        cfg = config_for('digits', variant='ACC', width=4, image_size=8, batch_size=16, bank_size=64, attack_steps=1, **kw)
        model, opt, _ = build(cfg, 'cpu')
        assert bn_shared(model.q) == (not cfg.dual_bn) and bn_shared(model.k) == (not cfg.dual_bn)
        out = amoc_step(model, x, x.flip(3), opt, step_settings(cfg, cfg.eps, cfg.alpha))
        assert torch.isfinite(out['loss'])
        if kw.get('negatives'):                                  # in-batch: the loss is not the bank's
            ref = config_for('digits', variant='ACC', width=4, image_size=8, batch_size=16, bank_size=64, attack_steps=1)
            torch.manual_seed(0); m2, o2, _ = build(ref, 'cpu')
            assert abs(float(amoc_step(m2, x, x.flip(3), o2, step_settings(ref, ref.eps, ref.alpha))['l_ccc'])
                       - float(out['l_ccc'])) > 1e-3


def _reproduce(out, *extra):
    return subprocess.run([sys.executable, '-m', 'amoc_nb.cli', 'reproduce', '--out', str(out), '--pretrain-epochs', '1',
                           '--linear-epochs', '1', '--finetune-epochs', '1', '--n-test', '16', '--no-progress', *extra],
                          capture_output=True, text=True, cwd=ROOT)


def test_a_tiny_reproduction_end_to_end(tmp_path):
    out, res = tmp_path/'run', tmp_path/'digits.json'
    p = _reproduce(out, '--only', 'figure2', 'ablations', '--seeds', '0', '1', '--results', str(res))
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(res.read_text())
    assert set(r['tables']) == {'figure2', 'ablations'} and r['seeds'] == [0, 1]
    assert r['not_the_protocol'] and r['protocol']['pretrain_epochs'] == DIGITS.pretrain_epochs
    keys = {'method', 'variant', 'eval', 'seed', 'pretrain_epochs', 'metric', 'value'}
    assert all(keys <= set(x) for rows in r['tables'].values() for x in rows)
    fig2 = r['tables']['figure2']
    assert {x['method'] for x in fig2} == {'AdvTraining', 'TRADES', 'AMOC'}
    assert {(x['corruption'], x['severity']) for x in fig2} == {(c, s) for c in r['corruptions']['names'] for s in range(1, 6)}
    assert 'saturate' in r['corruptions']['caveats'] and 'not CIFAR-10-C' in r['corruptions']['note']
    assert {x.get('setting') for x in r['tables']['ablations']} == {None, 'single BN', 'in-batch negatives'}
    assert {c['id'] for c in r['claims']} == {'figure2_over_trades', 'dual_bn', 'bank_over_in_batch'}
    assert all(c['verdict'] in ('holds', 'does not hold', 'inconclusive') for c in r['claims'])
    assert set(r['seconds']) == set(E.PARTS) and r['seconds']['ablations'] > 0
    # the helper reads it, and the numbers it gives are the allowed ones
    m = RS.measured('ablations', r, variant='ACC', setting='single BN', eval='stdev', metric='clean')
    assert m.split(' ± ')[0] in RS.allowed_numbers(r)
    # resumable: the same command again trains nothing, measures nothing
    before = {f: f.stat().st_mtime for f in out.rglob('*.pt')}
    p = _reproduce(out, '--only', 'figure2', 'ablations', '--seeds', '0', '1', '--results', str(res))
    assert p.returncode == 0, p.stderr[-3000:]
    assert {f: f.stat().st_mtime for f in before} == before
    # other settings in the same --out: refused, naming the way out
    p = _reproduce(out, '--only', 'ablations', '--seeds', '0', '--results', '', '--n-test', '8')
    assert p.returncode == 2 and 'choose another --out' in p.stderr


def test_the_results_file_reaches_a_colab_install(tmp_path, monkeypatch):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(ROOT))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(RS, 'repo_path', lambda rel: tmp_path/'no-checkout'/rel)      # pip install: no data/
        monkeypatch.setattr(RS, 'RAW_URL', f'http://127.0.0.1:{server.server_port}/{{path}}')
        monkeypatch.setenv('AMOC_NB_CACHE', str(tmp_path/'cache'))
        r = RS.digits_results()
        assert r == json.loads((ROOT/RS.RESULTS).read_text())
        assert list((tmp_path/'cache').rglob('digits.json'))
    finally: server.shutdown()
