"""Command-line, integration and fault tests for `amoc-nb pretrain` (issue: the pre-training course)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from amoc_nb.cli import main
from amoc_nb.losses import VARIANTS
from amoc_nb.checkpoints import load_checkpoint


def run(argv, capsys):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def pretrain_args(out, *extra, variant='ACC', epochs=1):
    return ['pretrain', '--dataset', 'digits', '--variant', variant, '--epochs', epochs, '--out', out,
            '--width', '8', '--bank-size', '256', '--batch-size', '64', '--no-progress', *extra]


def test_unknown_variant_and_dataset_exit_2_listing_valid_values(tmp_path):
    for flag, bad, expect in [('--variant', 'XYZ', 'CCC'), ('--dataset', 'mnist', 'digits')]:
        p = subprocess.run(['amoc-nb', 'pretrain', flag, bad, '--out', str(tmp_path / 'r')],
                           capture_output=True, text=True)
        assert p.returncode == 2, p.stderr
        assert expect in p.stderr and 'invalid choice' in p.stderr
    assert not (tmp_path / 'r').exists()


@pytest.mark.parametrize('flag,value', [('--eps', -0.1), ('--lam', 1.5), ('--lam', -0.1), ('--T', 0), ('--T', -1),
                                        ('--m', 1.0), ('--m', -0.5), ('--bank-size', 64)])
def test_out_of_range_values_name_the_flag(tmp_path, capsys, flag, value):
    code, err = run(pretrain_args(tmp_path / 'r', flag, value), capsys)
    assert code == 2
    assert flag in err, err
    assert not (tmp_path / 'r').exists()


def test_missing_cifar10_says_where_and_how(tmp_path, capsys):
    code, err = run(['pretrain', '--dataset', 'cifar10', '--out', tmp_path / 'r', '--data-root', tmp_path / 'nodata',
                     '--no-progress'], capsys)
    assert code == 2
    assert '--download' in err and 'cifar-10-python.tar.gz' in err and str(tmp_path / 'nodata') in err


@pytest.mark.parametrize('views', ['device', 'host'])
def test_resume_is_exact(tmp_path, capsys, views):
    "Fast path (kornia views) and plain path (torchvision views per PIL image) both resume bit for bit."
    full, split = tmp_path / 'full', tmp_path / 'split'
    assert run(pretrain_args(full, '--views', views, epochs=3), capsys)[0] == 0
    assert run(pretrain_args(split, '--views', views, epochs=2), capsys)[0] == 0
    assert run(pretrain_args(split, '--views', views, '--resume', epochs=3), capsys)[0] == 0
    assert json.loads((full / 'config.json').read_text())['views'] == views
    a, b = load_checkpoint(full), load_checkpoint(split)
    assert a['epoch'] == b['epoch'] == 3
    for k in a['model']:
        assert torch.equal(a['model'][k], b['model'][k]), k
    for k in ('torch', 'data'):
        assert torch.equal(a['rng'][k], b['rng'][k])
    assert [json.loads(l)['epoch'] for l in (split / 'metrics.jsonl').read_text().splitlines()] == [1, 2, 3]


def test_resume_with_different_config_is_refused_naming_fields(tmp_path, capsys):
    out = tmp_path / 'r'
    assert run(pretrain_args(out), capsys)[0] == 0
    before = (out / 'checkpoint.pt').read_bytes()
    code, err = run(pretrain_args(out, '--resume', '--eps', '0.2', '--T', '0.5', epochs=2), capsys)
    assert code == 2
    assert 'eps: 0.1 -> 0.2' in err and 'T: 0.2 -> 0.5' in err
    assert (out / 'checkpoint.pt').read_bytes() == before


def test_rerun_without_resume_refuses_and_keeps_the_run(tmp_path, capsys):
    out = tmp_path / 'r'
    assert run(pretrain_args(out), capsys)[0] == 0
    before = (out / 'checkpoint.pt').read_bytes()
    code, err = run(pretrain_args(out), capsys)
    assert code == 2 and '--resume' in err
    assert (out / 'checkpoint.pt').read_bytes() == before


def test_truncated_checkpoint_clear_error_and_last_good_kept(tmp_path, capsys):
    out = tmp_path / 'r'
    assert run(pretrain_args(out, epochs=2), capsys)[0] == 0
    prev = (out / 'checkpoint.prev.pt').read_bytes()
    ck = out / 'checkpoint.pt'
    ck.write_bytes(ck.read_bytes()[: len(ck.read_bytes()) // 2])
    code, err = run(pretrain_args(out, '--resume', epochs=3), capsys)
    assert code == 2
    assert 'corrupt or truncated' in err and 'checkpoint.prev.pt' in err
    assert (out / 'checkpoint.prev.pt').read_bytes() == prev       # the last good checkpoint is untouched
    assert load_checkpoint(out / 'checkpoint.prev.pt')['epoch'] == 1


def test_kill_during_checkpoint_write_leaves_last_good(tmp_path, capsys, monkeypatch):
    "A crash inside torch.save (as a kill mid-write) must leave checkpoint.pt complete."
    out = tmp_path / 'r'
    assert run(pretrain_args(out), capsys)[0] == 0
    good = (out / 'checkpoint.pt').read_bytes()
    import amoc_nb.pretrain as P
    real_save = torch.save

    def dying_save(obj, f, *a, **k):
        f.write(b'partial bytes')
        raise KeyboardInterrupt
    monkeypatch.setattr(P.torch, 'save', dying_save)
    code, err = run(pretrain_args(out, '--resume', epochs=2), capsys)
    monkeypatch.setattr(P.torch, 'save', real_save)
    assert code == 130 and '--resume' in err
    assert (out / 'checkpoint.pt').read_bytes() == good
    assert load_checkpoint(out)['epoch'] == 1


@pytest.mark.parametrize('variant', list(VARIANTS) + ['CAA'])
def test_every_variant_runs_one_digits_epoch(tmp_path, capsys, variant):
    out = tmp_path / variant
    assert run(pretrain_args(out, variant=variant), capsys)[0] == 0
    ck = load_checkpoint(out)
    written = ck['model']['banks.adv.written_at']
    if variant in ('ACA', 'CCA', 'CCC', 'ACC'):
        assert (written == -1).all(), 'M_adv must stay as initialised'
    else:
        assert (written >= 0).any()
    row = json.loads((out / 'metrics.jsonl').read_text().splitlines()[-1])
    assert row['loss'] == row['loss'] and row['loss'] > 0


def test_aca_keeps_adv_bank_at_init_unless_aca_plus(tmp_path, capsys):
    from amoc_nb.configs import PretrainConfig, config_from_dict
    from amoc_nb.pretrain import build
    plain, plus = tmp_path / 'aca', tmp_path / 'aca_plus'
    assert run(pretrain_args(plain, '--seed', '3', variant='ACA'), capsys)[0] == 0
    assert run(pretrain_args(plus, '--seed', '3', '--aca-plus', variant='ACA'), capsys)[0] == 0
    a, b = load_checkpoint(plain), load_checkpoint(plus)
    torch.manual_seed(3)                         # rebuild the model exactly as the run did before training
    init, _, _ = build(config_from_dict(PretrainConfig, a['config']), 'cpu')
    assert torch.equal(a['model']['banks.adv.keys'], init.banks['adv'].keys)      # ACA: M_adv as initialised
    assert (a['model']['banks.adv.written_at'] == -1).all()
    assert (b['model']['banks.adv.written_at'] >= 0).all()                         # ACA+: written every step
    assert not torch.equal(b['model']['banks.adv.keys'], init.banks['adv'].keys)


def test_run_directory_files(tmp_path, capsys):
    out = tmp_path / 'r'
    assert run(pretrain_args(out), capsys)[0] == 0
    cfg = json.loads((out / 'config.json').read_text())
    assert cfg['variant'] == 'ACC' and cfg['dataset'] == 'digits'
    ck = torch.load(out / 'checkpoint.pt', weights_only=True)
    assert ck['kind'] == 'amoc-pretrain'
    assert {'model', 'optimizer', 'scheduler', 'rng', 'config', 'epoch'} <= set(ck)
    assert 'banks.clean.ptr' in ck['model'] and 'banks.adv.keys' in ck['model']


def test_one_fp16_step_on_cpu_with_loss_scaling():
    "What a GPU without bf16 (Colab's T4) runs - fp16 autocast and a GradScaler - here on the CPU: one AMOC step."
    from amoc_nb.configs import config_for
    from amoc_nb.data import digits
    from amoc_nb.pretrain import amoc_step, build, make_views, step_settings
    cfg = config_for('digits', variant='AAA', width=8, bank_size=256, batch_size=32)
    torch.manual_seed(0)
    model, opt, aug = build(cfg, torch.device('cpu'))
    x1, x2 = make_views(aug, digits(16)[0].x[:32], cfg, torch.device('cpu'))
    scaler = torch.amp.GradScaler('cpu')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    terms = amoc_step(model, x1, x2, opt, step_settings(cfg, 0.1, 0.025, torch.float16, scaler=scaler))
    assert all(torch.isfinite(v) and v.dtype == torch.float32 for v in terms.values()), terms
    assert scaler._scale is not None and scaler.get_scale() > 0          # the loss went through the scaler
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith('q.') and after[k].is_floating_point())
    assert (after['banks.adv.written_at'] >= 0).sum() == 32 and after['banks.adv.keys'].dtype == torch.float32


def test_fp16_run_keeps_its_precision_and_scaler_and_resumes_exactly(tmp_path, capsys):
    "--amp fp16 on the CPU: config.json says which precision and why; the scaler state is checkpointed, resume is exact."
    full, split = tmp_path/'full', tmp_path/'split'
    assert run(pretrain_args(full, '--amp', 'fp16', epochs=2), capsys)[0] == 0
    assert run(pretrain_args(split, '--amp', 'fp16', epochs=1), capsys)[0] == 0
    assert run(pretrain_args(split, '--amp', 'fp16', '--resume', epochs=2), capsys)[0] == 0
    cfg = json.loads((full / 'config.json').read_text())
    assert cfg['amp'] == 'fp16' and cfg['_run']['precision'] == 'fp16' and cfg['_run']['precision_reason'] == '--amp fp16'
    a, b = load_checkpoint(full), load_checkpoint(split)
    assert a['scaler'] is not None and a['scaler'] == b['scaler']
    for k in a['model']: assert torch.equal(a['model'][k], b['model'][k]), k


@pytest.mark.parametrize('last_batch', ['drop', 'keep'])
def test_compiled_networks_do_not_recompile_after_the_first_epoch(last_batch):
    """torch.compile (eager backend, on the CPU): every graph is made in epoch 1; epochs 2-3 and the metrics add none,
    with the last partial batch kept (a second shape) as well."""
    import torch._dynamo
    from torch._dynamo.utils import counters
    from amoc_nb.configs import config_for, speed_setup
    from amoc_nb.data import batch_indices, digits
    from amoc_nb.pretrain import AMOC_METHOD, bank_metrics, build, make_views, train_step
    from amoc_nb.procgroup import DistInfo, parallel_view
    cfg = config_for('digits', variant='ACA', aca_plus=True, width=8, bank_size=256, batch_size=64, compile=True,
                     last_batch=last_batch)
    torch._dynamo.reset(); counters.clear()
    torch.manual_seed(0)
    model, opt, aug = build(cfg, torch.device('cpu'))
    speed_setup(model, cfg, torch.device('cpu'), backend='eager')
    view, x = parallel_view(model, DistInfo(), cfg.seed, cfg.variant), digits(16)[0].x
    make, gen, graphs = (lambda xb: make_views(aug, xb, cfg, torch.device('cpu'))), torch.Generator().manual_seed(0), []
    for epoch in range(3):
        batches = batch_indices(len(x), cfg.batch_size, gen, drop_last=last_batch == 'drop')
        for i, idx in enumerate(batches[:2] + batches[-1:]):            # kept: 1347 = 21 x 64 + 3, the last of 3
            _, x1, x2 = train_step(AMOC_METHOD, view, opt, make, x, idx, 3 * epoch + i, 3, cfg)
        bank_metrics(model, x1, x2, cfg)                                # the epoch's metrics, as the loop runs them
        graphs.append(counters['stats']['unique_graphs'])
    assert 0 < graphs[0] == graphs[1] == graphs[2] <= torch._dynamo.config.recompile_limit, graphs
    torch._dynamo.reset()


def authors_lrs(epochs=200, warmup=10, lr=0.1):
    "The lr of every epoch as the authors' code computes it: torch's CosineAnnealingLR behind their WarmupLP."
    import warnings
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs - warmup)
    for g in opt.param_groups: g['lr'] = 1e-4                    # WarmupLP.__init__
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')                          # "scheduler.step() before optimizer.step()"
        for epoch in range(epochs):
            out.append(opt.param_groups[0]['lr'])                # what this epoch trains with
            if warmup > epoch:                                   # WarmupLP.step(epoch), after the epoch (src/base.py)
                for g in opt.param_groups: g['lr'] = (epoch + 1) / warmup * lr
            else: cosine.step()
    return out


def test_recipe_code_lr_schedule_is_the_authors_for_every_epoch_of_200():
    from amoc_nb.configs import config_for
    from amoc_nb.pretrain import lr_at
    cfg = config_for('cifar10', recipe='code')
    ours, theirs = [lr_at(e * 196, 196, cfg) for e in range(200)], authors_lrs()
    for e, (a, b) in enumerate(zip(ours, theirs)): assert a == pytest.approx(b, rel=1e-9), (e, a, b)
    assert ours[0] == 1e-4 and ours[10] == pytest.approx(0.1) and ours[-1] == pytest.approx(6.8e-6, abs=1e-7)
    assert all(lr_at(e * 196 + 195, 196, cfg) == ours[e] for e in range(200))    # constant within an epoch
    paper = config_for('cifar10')                                                # the default: per step, to 0
    assert paper.lr_schedule == 'paper' and lr_at(0, 196, paper) != 1e-4


def test_recipe_code_run_writes_the_authors_lr_per_epoch(tmp_path, capsys):
    from amoc_nb.configs import config_for
    out = tmp_path / 'r'
    assert run(pretrain_args(out, '--recipe', 'code', '--warmup-epochs', '2', epochs=4), capsys)[0] == 0
    rows = [json.loads(line) for line in (out / 'metrics.jsonl').read_text().splitlines()]
    assert [r['lr'] for r in rows] == pytest.approx(authors_lrs(4, 2, config_for('digits').lr), rel=1e-9)


def test_recipe_code_initialises_every_convolution_as_the_authors():
    "--init code (set by --recipe code): kaiming-normal fan_out on every convolution, the 3x3 stem included."
    import math
    from amoc_nb.configs import config_for
    from amoc_nb.pretrain import build
    stds = {}
    for recipe in ('paper', 'code'):
        torch.manual_seed(0)
        model, _, _ = build(config_for('cifar10', recipe=recipe), 'cpu')
        stds[recipe] = {n: float(m.weight.detach().std()) for n, m in model.encoder.named_modules()
                        if isinstance(m, torch.nn.Conv2d)}
    fan_out = lambda n: {'backbone.conv1': 64 * 9}.get(n)
    assert stds['code']['backbone.conv1'] == pytest.approx(math.sqrt(2 / fan_out('backbone.conv1')), rel=0.1)   # 0.059
    assert stds['paper']['backbone.conv1'] == pytest.approx(1 / math.sqrt(3 * 27), rel=0.1)                    # 0.11
    # the other convolutions are kaiming fan_out under both (torchvision's init is that too)
    others = [n for n in stds['code'] if n != 'backbone.conv1']
    assert others and all(stds['code'][n] == pytest.approx(stds['paper'][n], rel=0.1) for n in others)


@pytest.mark.parametrize('recipe,sizes', [('code', [128] * 10 + [67]), ('paper', [128] * 10)])
def test_recipe_code_trains_on_the_last_partial_batch(monkeypatch, tmp_path, recipe, sizes):
    "--last-batch keep (set by --recipe code): 11 steps per digits epoch at batch 128, the last of 1347 - 1280 = 67."
    import amoc_nb.pretrain as P
    from amoc_nb.configs import config_for
    seen, step = [], P.train_step
    monkeypatch.setattr(P, 'train_step', lambda method, view, opt, make, x, idx, *a, **k: (
        seen.append(len(idx)), step(method, view, opt, make, x, idx, *a, **k))[1])
    cfg = config_for('digits', recipe=recipe, width=8, bank_size=256, epochs=2, batch_size=128)
    P.pretrain(cfg, tmp_path / recipe, progress=False)
    assert seen == sizes * 2
    rows = [json.loads(line) for line in (tmp_path / recipe / 'metrics.jsonl').read_text().splitlines()]
    assert [r['step'] for r in rows] == [len(sizes), 2 * len(sizes)]


def test_a_kept_last_batch_splits_evenly_over_processes_and_bn_groups():
    "N processes (or --shuffle-bn on's BN groups) each take an equal part of the kept last batch; the remainder waits."
    from amoc_nb.configs import config_for
    from amoc_nb.data import batch_indices
    from amoc_nb.pretrain import batch_multiple
    cfg = config_for('digits', recipe='code', batch_size=128)
    assert batch_multiple(cfg, 1) == 1 and batch_multiple(cfg, 4) == 4
    assert batch_multiple(config_for('digits', shuffle_bn='on', bn_groups=8), 1) == 8
    for n, last in ((1, 67), (2, 66), (4, 64), (8, 64)):               # 1347 = 10 x 128 + 67
        sizes = [len(b) for b in batch_indices(1347, 128, drop_last=False, multiple=n)]
        assert sizes == [128] * 10 + [last] and last % n == 0 and 67 - last < n
