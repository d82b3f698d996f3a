"""`--recipe code` for the supervised stages (lesson 05's table, rows 15-19): each switch does what the authors' code
does, and a stage inherits the pre-training run's recipe."""
import json

import pytest
import torch

from amoc_nb.configs import config_for, finetune_config_for, linear_eval_config_for, save_config
from amoc_nb.data import crop_flip, digits, to_float
from amoc_nb.finetune import initial_classifier, trades_loss


def test_reflect_padding_never_shows_a_zero_border():
    "--pad-mode reflect (row 15): a crop of a white image stays white; zero padding shows black borders."
    torch.manual_seed(0)
    white = torch.ones(64, 3, 16, 16)
    assert crop_flip(16, 4, 'reflect')(white).min() == 1
    assert crop_flip(16, 4, 'zeros')(white).min() == 0


def test_head_init_zero_and_the_recipe_bn(tmp_path):
    "--head-init zero (row 17) and --bn auto (row 18) under --recipe code; PyTorch's init and BN_adv under paper."
    cfg = finetune_config_for('digits', recipe='code')
    clf, info = initial_classifier(cfg, 10)
    assert clf.fc.weight.abs().sum() == 0 and clf.fc.bias.abs().sum() == 0 and cfg.bn == 'auto'
    clf, info = initial_classifier(finetune_config_for('digits'), 10)
    assert clf.fc.weight.abs().sum() > 0 and info['bn'] == 'adv'


@pytest.mark.parametrize('start', ['gaussian', 'uniform'])
def test_trades_start(start):
    "--trades-start (row 19): with no PGD step, the KL term is taken at the start point, which the switch sets."
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10))
    x, y = to_float(digits(16)[0].x[:32]), torch.arange(32) % 10
    seen = []
    lin[1].register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
    trades_loss(lin, x, y, eps=0.1, alpha=0.025, steps=0, beta=6.0, start=start)
    start_point = seen[-1].view_as(x)                  # the last forward: the adversarial point, here the start
    gap = (start_point - x).abs()
    assert gap.max() <= 0.1 + 1e-6
    if start == 'uniform': assert gap.mean() > 0.03     # U(-eps, eps) has mean |.| eps/2 (less at the [0,1] clip)
    else: assert gap.mean() < 0.003                     # 0.001 N(0, 1)


def test_linear_eval_and_finetune_take_the_pretraining_runs_recipe(tmp_path):
    run = tmp_path / 'run'
    run.mkdir()
    save_config(config_for('digits', recipe='code'), run)
    lin = linear_eval_config_for(encoder=str(run))
    fin = finetune_config_for(encoder=str(run))
    assert (lin.recipe, lin.pad_mode, lin.last_batch) == ('code', 'reflect', 'keep')
    assert (fin.recipe, fin.head_init, fin.trades_start, fin.bn) == ('code', 'zero', 'uniform', 'auto')
    assert linear_eval_config_for(encoder=str(run), recipe='paper').pad_mode == 'zeros'     # a flag wins
    assert json.loads((run / 'config.json').read_text())['recipe'] == 'code'
