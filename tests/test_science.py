"""Does pre-training learn robust features? A seeded digits run short enough for CI, and two sabotaged copies of it.

`science_run` pre-trains CCC and ACC on digits with lesson 06's loop (the demo's settings, fewer epochs and a
narrower CNN), then fits a linear probe on each frozen encoder (StdEv's protocol with full-batch L-BFGS:
`baselines.quick_probe`, BN branch by the `auto` rule) and attacks it with PGD-20. `science_problems` states what a
healthy run must show:

- learning: the last epoch's L_CCC is well below chance, L_CCC / ln(K+1) < 0.85, and the clean query finds its
  positive key, mean q.k+ > 0.5 (a fresh encoder starts near ln(K+1) and a random bank near 0);
- robust features: ACC's StdEv PGD-20 accuracy beats CCC's by more than 12 points (chance is 10%);
- the probes themselves work: clean StdEv accuracy above 80% for both.

The sabotage tests patch the code and check that `science_problems` catches it:
- no learning: the optimiser step does nothing (`lr` 0 is refused by `validate`, so the step is patched);
- no adversarial examples: PGD's budget is 0 in pre-training (eps_at returns 0), so "ACC" trains on clean views.
"""
import math
from pathlib import Path

import pytest
import torch

from amoc_nb import pretrain as P
from amoc_nb.baselines import quick_probe
from amoc_nb.checkpoints import load_encoder
from amoc_nb.configs import config_for
from amoc_nb.data import digits
from amoc_nb.losses import get_variant
from amoc_nb.runs import read_metrics

EPOCHS, WIDTH = 25, 32
MARGIN, LOSS_RATIO, QK_MIN, CLEAN_MIN = 0.12, 0.85, 0.5, 0.8


def science_run(out: Path, epochs: int = EPOCHS) -> dict:
    "CCC and ACC pre-trained on digits (seed 0), each probed: {variant: dict(clean, pgd20, l_ccc_ratio, qk)}."
    train, test = digits(16)
    res = {}
    for v in ('CCC', 'ACC'):
        cfg = config_for('digits', variant=v, epochs=epochs, width=WIDTH, eps_warmup_epochs=0.3 * epochs)
        run = P.pretrain(cfg, out/v, progress=False)
        last = read_metrics(run)[-1]
        clean, pgd20 = quick_probe(load_encoder(run), train, test, cfg.eps, cfg.eps / 4, 20, bn=get_variant(v).query_bn)
        res[v] = dict(clean=clean, pgd20=pgd20, l_ccc_ratio=last['l_ccc'] / math.log(cfg.bank_size + 1),
                      qk=last['bank_clean_sim_pos'])
    return res


def science_problems(res: dict) -> list[str]:
    "What a healthy digits run must show, as a list of what it does not (empty: healthy)."
    probs = []
    for v, r in res.items():
        if not r['l_ccc_ratio'] < LOSS_RATIO: probs.append(f"{v}: L_CCC / ln(K+1) = {r['l_ccc_ratio']:.2f}, not < {LOSS_RATIO}")
        if not r['qk'] > QK_MIN: probs.append(f"{v}: mean q.k+ = {r['qk']:.2f}, not > {QK_MIN}")
        if not r['clean'] > CLEAN_MIN: probs.append(f"{v}: StdEv clean accuracy {r['clean']:.3f}, not > {CLEAN_MIN}")
    gap = res['ACC']['pgd20'] - res['CCC']['pgd20']
    if not gap > MARGIN: probs.append(f"ACC's StdEv PGD-20 beats CCC's by {gap:+.3f}, not by > {MARGIN}")
    return probs


def _report(res, probs):
    print('\n' + '\n'.join(f"{v}: StdEv clean {r['clean']:.3f} PGD-20 {r['pgd20']:.3f}, L_CCC/ln(K+1) "
                           f"{r['l_ccc_ratio']:.3f}, q.k+ {r['qk']:.3f}" for v, r in res.items()))
    print('problems:', probs or 'none')


def test_pretraining_learns_robust_features(tmp_path):
    res = science_run(tmp_path)
    probs = science_problems(res)
    _report(res, probs)
    assert probs == []


@pytest.mark.slow
def test_science_fails_when_pretraining_does_not_learn(tmp_path, monkeypatch):
    "Sabotage: the optimiser step of pre-training does nothing."
    real = P.amoc_step
    def no_update(model, x1, x2, opt, s, **kw):
        class Frozen:                                   # the step runs, but its SGD step changes nothing
            param_groups = opt.param_groups
            def zero_grad(self, **kw): opt.zero_grad(**kw)
            def step(self): pass
        return real(model, x1, x2, Frozen(), s, **kw)
    monkeypatch.setattr(P, 'amoc_step', no_update)
    res = science_run(tmp_path)
    probs = science_problems(res)
    _report(res, probs)
    assert any('L_CCC' in p for p in probs) and any('PGD-20' in p for p in probs)


@pytest.mark.slow
def test_science_fails_without_adversarial_examples(tmp_path, monkeypatch):
    "Sabotage: pre-training's PGD budget is 0, so ACC learns from clean views only."
    monkeypatch.setattr(P, 'eps_at', lambda step, n, cfg: (0.0, 0.0))
    res = science_run(tmp_path)
    probs = science_problems(res)
    _report(res, probs)
    assert any("ACC's StdEv PGD-20" in p for p in probs)
