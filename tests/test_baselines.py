"""Command-line, integration and fault tests for `amoc-nb baseline` (issue 4: AdvTraining, TRADES and ACL)."""
import json
import subprocess

import pytest
import torch
import torch.nn.functional as F

from amoc_nb.cli import main
from amoc_nb.baselines import nt_xent
from amoc_nb.configs import baseline_config_for, METHODS
from amoc_nb.checkpoints import load_checkpoint, load_encoder


def run(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:                      # argparse errors (invalid choice) exit 2 by themselves
        code = e.code
    return code, capsys.readouterr().err


def baseline_args(out, method, *extra, epochs=1):
    """A tiny job: synthetic data (512 images, 4 steps of 128), a narrow CNN, one attack step."""
    return ['baseline', '--method', method, '--dataset', 'synthetic', '--epochs', epochs, '--out', out,
            '--width', '8', '--attack-steps', '1', '--n-test', '32', '--no-progress', *extra]


# ---- losses against a direct computation ---------------------------------------------------------------------------

def nt_xent_by_hand(z1, z2, t):
    z = [v / v.norm() for v in torch.cat([z1, z2])]
    n2, out = len(z), []
    for i in range(n2):
        pos = z[i] @ z[(i + n2 // 2) % n2]
        den = sum(torch.exp(z[i] @ z[k] / t) for k in range(n2) if k != i)
        out.append(-(pos / t - torch.log(den)))
    return torch.stack(out)


@pytest.mark.parametrize('t', [0.5, 0.2, 1.0])
def test_nt_xent_matches_formula(t):
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    assert torch.allclose(nt_xent(z1, z2, t, reduction='none'), nt_xent_by_hand(z1, z2, t), atol=1e-5)
    assert torch.allclose(nt_xent(z1, z2, t), nt_xent_by_hand(z1, z2, t).mean(), atol=1e-5)


def test_nt_xent_gradient_flows_to_both_views():
    z1, z2 = torch.randn(3, 5, requires_grad=True), torch.randn(3, 5, requires_grad=True)
    nt_xent(z1, z2).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_trades_loss_is_ce_plus_beta_kl_from_natural_to_adversarial():
    "TRADES against a hand computation on a tiny linear model: CE(f(x), y) + beta * KL(p(x) || p(x')), that direction."
    from amoc_nb.finetune import trades_loss
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4)).eval()
    with torch.no_grad(): lin[1].weight.mul_(5)                  # confident enough that the two KL directions differ
    x, y = torch.rand(5, 3, 2, 2), torch.randint(0, 4, (5,))
    eps = alpha = 0.3
    torch.manual_seed(7); loss = trades_loss(lin, x, y, eps, alpha, steps=1, beta=6.0)
    # by hand: the same start x + 0.001 n, one signed ascent step on sum KL(p(x) || p(x0)), projected to the box
    torch.manual_seed(7); x0 = (x + 0.001 * torch.randn_like(x)).requires_grad_(True)
    p = F.softmax(lin(x), 1).detach()
    g, = torch.autograd.grad((p * (p.log() - F.log_softmax(lin(x0), 1))).sum(), x0)
    xa = torch.min(torch.max(x0.detach() + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
    log_q = F.log_softmax(lin(xa), 1)
    kl = (p * (p.log() - log_q)).sum(1).mean()                    # KL(p(x) || p(x')), averaged over the batch
    kl_reversed = (log_q.exp() * (log_q - p.log())).sum(1).mean()
    ce = F.cross_entropy(lin(x), y)
    assert torch.allclose(loss, ce + 6.0 * kl, atol=1e-5), (loss, ce + 6.0 * kl)
    assert (ce + 6.0 * kl_reversed - loss).abs() > 1e-2                 # the other direction is another loss
    assert kl > 1e-2                                                     # and the attack moved the prediction


# ---- each method from the command line -----------------------------------------------------------------------------

@pytest.mark.parametrize('method', ['at', 'trades'])
def test_supervised_methods_run_and_write_classifier_and_results(tmp_path, capsys, method):
    out = tmp_path / method
    code, err = run(baseline_args(out, method), capsys)
    assert code == 0, err
    names = {p.name for p in out.iterdir()}
    assert {'config.json', 'metrics.jsonl', 'checkpoint.pt', 'classifier.pt', 'results.json'} <= names
    res = json.loads((out / 'results.json').read_text())
    assert res['method'] == method and res['n_test'] == 32
    assert 0 <= res['pgd20'] <= res['clean'] <= 1
    assert json.loads((out / 'config.json').read_text())['method'] == method
    from amoc_nb.checkpoints import load_classifier
    clf = load_classifier(out)
    assert clf(torch.rand(2, 3, 16, 16)).shape == (2, 10)


def test_acl_runs_resumes_exactly_and_feeds_linear_eval(tmp_path, capsys):
    full, split = tmp_path / 'full', tmp_path / 'split'
    assert run(baseline_args(full, 'acl', epochs=2), capsys)[0] == 0
    assert run(baseline_args(split, 'acl', epochs=1), capsys)[0] == 0
    assert run(baseline_args(split, 'acl', '--resume', epochs=2), capsys)[0] == 0
    a, b = load_checkpoint(full, kind='acl-pretrain'), load_checkpoint(split, kind='acl-pretrain')
    assert a['epoch'] == b['epoch'] == 2
    for k in a['model']:
        assert torch.equal(a['model'][k], b['model'][k]), k
    rows = [json.loads(l) for l in (full / 'metrics.jsonl').read_text().splitlines()]
    assert [r['epoch'] for r in rows] == [1, 2] and rows[0]['negatives'] == 2 * 128 - 2
    enc = load_encoder(full)                                   # prefix q.encoder.
    assert torch.equal(enc.state_dict()['backbone.features.0.weight'], a['model']['q.encoder.backbone.features.0.weight'])
    # the ACL encoder goes through the same linear evaluation as AMOC's
    le = tmp_path / 'le'
    code, err = run(['linear-eval', '--encoder', full, '--dataset', 'synthetic', '--epochs', '1', '--n-test', '32',
                     '--no-progress', '--out', le], capsys)
    assert code == 0, err
    res = json.loads((le / 'results.json').read_text())
    assert 0 <= res['robust'] <= res['clean'] <= 1


# ---- bad input -----------------------------------------------------------------------------------------------------

def test_unknown_method_exits_2_listing_valid_values(tmp_path):
    p = subprocess.run(['amoc-nb', 'baseline', '--method', 'simclr', '--dataset', 'digits', '--out', str(tmp_path / 'r')],
                       capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    assert 'invalid choice' in p.stderr and all(m in p.stderr for m in METHODS)
    assert not (tmp_path / 'r').exists()
    with pytest.raises(ValueError, match='at, trades, acl'):        # the Python API says the same
        baseline_config_for('digits', method='simclr')


@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('flag,value', [('--eps', -0.1), ('--beta', -1), ('--temperature', 0), ('--temperature', -0.5),
                                        ('--alpha', -0.01), ('--batch-size', 1)])
def test_out_of_range_values_name_the_flag(tmp_path, capsys, method, flag, value):
    code, err = run(baseline_args(tmp_path / 'r', method, flag, value), capsys)
    assert code == 2
    assert flag in err, err
    assert not (tmp_path / 'r').exists()


@pytest.mark.parametrize('method,flag,value,msg', [('at', '--eps', '0.2', 'eps'), ('trades', '--beta', '1.0', 'beta: 6.0 -> 1.0'),
                                                   ('acl', '--temperature', '0.2', 'temperature: 0.5 -> 0.2')])
def test_resume_with_other_settings_is_refused_and_keeps_the_run(tmp_path, capsys, method, flag, value, msg):
    out = tmp_path / method
    assert run(baseline_args(out, method), capsys)[0] == 0
    before = (out / 'checkpoint.pt').read_bytes()
    code, err = run(baseline_args(out, method, '--resume', flag, value, epochs=2), capsys)
    assert code == 2 and '--resume' in err and msg in err, err
    code, err = run(baseline_args(out, method), capsys)               # no --resume: refused, nothing overwritten
    assert code == 2 and '--resume' in err, err
    assert (out / 'checkpoint.pt').read_bytes() == before
