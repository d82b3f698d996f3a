"""The adversary inside `amoc_step` ascends the objective the paper documents (eq. 3.1 / 3.3), computed here by hand.

For every variant whose key is attacked, the query is the anchor: the logits are [q.k'/T, q.M/T]. CAC/CAA hold the
clean query fixed; AAC/AAA perturb (delta, delta') jointly, each view scored against the other. The reference PGD
below re-implements l_inf PGD from the same random start on that objective; the step's adversarial views (recorded
at the training forward that consumes them) must be the same points.
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from amoc_nb.losses import get_variant, RECIPES, STEP_SWITCHES

from amoc_nb.moco import info_nce
from amoc_nb.models import make_encoder, bn_mode
from amoc_nb.pretrain import AMOC, StepSettings, amoc_step

EPS, ALPHA, STEPS, T, SEED = 0.1, 0.02, 5, 0.2, 123


def feature(net, x, bn):
    net.eval()
    with bn_mode(net, bn): return F.normalize(net(x), dim=1)


def setup(seed=0):
    torch.manual_seed(seed)
    model = AMOC(make_encoder('small_cnn', width=8), feat_dim=16, bank_size=64)
    x1, x2 = torch.rand(2, 16, 3, 8, 8).unbind(0)
    return model, x1, x2


def step_views(name, recipe='paper'):
    "Run one step; return the model before it, the views, and the adversarial inputs of the training forwards."
    model, x1, x2 = setup()
    before = copy.deepcopy(model)
    seen = {}
    for tag, net in (('q', model.q), ('k', model.k)):
        def hook(mod, inp, out, tag=tag):
            from amoc_nb.models import get_bn_mode
            if mod.training and get_bn_mode(mod) == 'adv': seen.setdefault(tag, inp[0].detach().clone())
        net.register_forward_hook(hook)
    s = StepSettings(get_variant(name), T=T, eps=EPS, alpha=ALPHA, attack_steps=STEPS,
                     **{k: RECIPES[recipe][k] for k in STEP_SWITCHES})
    torch.manual_seed(SEED)
    amoc_step(model, x1, x2, torch.optim.SGD(model.q.parameters(), lr=0.1), s)
    return before, x1, x2, seen


def reference_pgd(J, x0):
    "l_inf PGD ascending J (per-sample values) from a uniform random start drawn from the global RNG now."
    delta = ((x0 + torch.empty_like(x0).uniform_(-EPS, EPS)).clamp(0, 1) - x0).requires_grad_(True)
    for _ in range(STEPS):
        g, = torch.autograd.grad(J(x0 + delta).sum(), delta)
        with torch.no_grad():
            delta += ALPHA * g.sign()
            delta.copy_((x0 + delta.clamp(-EPS, EPS)).clamp(0, 1) - x0)
    return (x0 + delta).detach()


def assert_same_points(a, b):
    same = ((a - b).abs() < 1e-5).float().mean().item()
    assert same > 0.99, f'the attack reached other points than PGD on the documented objective ({same:.1%} agree)'


@pytest.mark.parametrize('name', ['CAC', 'CAA'])
def test_key_attack_holds_the_clean_query_as_anchor(name):
    before, x1, x2, seen = step_views(name)
    v = get_variant(name)
    q = before.query(x1, 'clean').detach()           # the training forward's clean query, as in the step
    before.key(x2, 'clean')                          # (the step's clean key forward: same BN statistics after it)
    bank = before.banks[v.bank].keys
    J = lambda xk: info_nce(q, feature(before.k, xk, 'adv'), bank, T, reduction='none')
    torch.manual_seed(SEED)
    ref = reference_pgd(J, x2)
    assert_same_points(seen['k'], ref)
    assert J(seen['k']).mean() > J(x2).mean()        # it ascends L_NCE(q, f_k(c'(x)+delta'), M)
    assert 'q' not in seen                           # the query stays clean


@pytest.mark.parametrize('name', ['AAC', 'AAA'])
@pytest.mark.parametrize('recipe', ['paper', 'code'])
def test_joint_attack_scores_each_view_against_the_other(name, recipe):
    before, x1, x2, seen = step_views(name, recipe)
    v = get_variant(name)
    if recipe == 'paper': before.query(x1, 'clean'); before.key(x2, 'clean')   # BN statistics as the step has them
    bank = before.banks[v.bank].keys
    J = lambda xs: info_nce(feature(before.q, xs[:, 0], 'adv'), feature(before.k, xs[:, 1], 'adv'), bank, T,
                            reduction='none')
    torch.manual_seed(SEED)
    ref = reference_pgd(J, torch.stack([x1, x2], 1))
    assert_same_points(seen['q'], ref[:, 0])
    assert_same_points(seen['k'], ref[:, 1])


@pytest.mark.parametrize('recipe', ['paper', 'code'])
def test_query_attack_reference(recipe):
    "ACC: the query moves against the clean key (paper) or against f_k(c'(x) + r) in eval mode (code)."
    before, x1, x2, seen = step_views('ACC', recipe)
    torch.manual_seed(SEED)
    if recipe == 'paper':
        before.query(x1, 'clean'); k = before.key(x2, 'clean')
    else:
        r = torch.empty_like(x2).uniform_(-EPS, EPS)                  # the key view's random start comes first
        with torch.no_grad(): k = feature(before.k, (x2 + r).clamp(0, 1), 'clean')
    J = lambda xq: info_nce(feature(before.q, xq, 'adv'), k, before.banks['clean'].keys, T, reduction='none')
    if recipe == 'paper': torch.manual_seed(SEED)
    ref = reference_pgd(J, x1)
    assert_same_points(seen['q'], ref)


def test_cli_recipe_code_sets_every_switch_and_a_switch_wins(tmp_path):
    import json
    from amoc_nb.cli import main
    flags = ['--dataset', 'digits', '--epochs', '1', '--width', '8', '--bank-size', '256', '--batch-size', '64',
             '--image-size', '8', '--attack-steps', '1', '--no-progress']
    assert main(['pretrain', *flags, '--variant', 'AAA', '--recipe', 'code', '--out', str(tmp_path / 'a')]) == 0
    cfg = json.loads((tmp_path / 'a' / 'config.json').read_text())
    assert (cfg['recipe'], cfg['enqueue_order'], cfg['attack_anchor'], cfg['attack_first']) == ('code', 'code', 'eval', True)
    assert main(['pretrain', *flags, '--recipe', 'code', '--enqueue-order', 'paper', '--out', str(tmp_path / 'b')]) == 0
    assert json.loads((tmp_path / 'b' / 'config.json').read_text())['enqueue_order'] == 'paper'
    assert main(['pretrain', *flags, '--attack-first', '--out', str(tmp_path / 'c')]) == 2   # needs --attack-anchor eval
