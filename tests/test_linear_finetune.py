"CLI tests of `amoc-nb linear-eval` and `amoc-nb finetune`: real tiny runs on digits, resume, and bad input (exit 2)."
import json
from pathlib import Path

import pytest
import torch

from amoc_nb.cli import main
from amoc_nb.pretrain import pretrain
from amoc_nb.configs import config_for
from amoc_nb.checkpoints import load_checkpoint
from amoc_nb.runs import read_metrics


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    "Tiny models: one thread avoids oversubscribing the shared cores (restored afterwards)."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp('linft')


@pytest.fixture(scope='module')
def encoder(tmp):
    "A tiny CCC pre-training run on digits (one epoch, width 8)."
    return pretrain(config_for('digits', variant='CCC', epochs=1, width=8, batch_size=32, bank_size=128,
                               warmup_epochs=1), tmp/'pre-CCC', progress=False)


def cli(*argv, capsys=None):
    "Run amoc-nb in-process; return (exit code, stderr)."
    try: code = main([str(a) for a in argv])
    except SystemExit as e: code = e.code
    return code, capsys.readouterr().err if capsys else ''


FAST = ['--epochs', '2', '--milestones', '1', '--n-test', '100', '--batch-size', '64', '--no-progress']


def results(run): return json.loads((Path(run)/'results.json').read_text())


def test_linear_eval_stdev(tmp, encoder, capsys):
    out = tmp/'stdev'
    code, err = cli('linear-eval', '--encoder', encoder, '--mode', 'stdev', *FAST, '--out', out, capsys=capsys)
    assert code == 0, err
    r = results(out)
    assert (r['mode'], r['bn'], r['variant'], r['dataset'], r['n_test']) == ('stdev', 'clean', 'CCC', 'digits', 100)
    assert 0.2 < r['clean'] <= 1 and 0 <= r['pgd20'] <= r['clean']          # learned something; PGD cannot help
    cfg = json.loads((out/'config.json').read_text())
    assert (cfg['lr'], cfg['weight_decay'], cfg['image_size']) == (1.0, 2e-4, 16)  # digits StdEv defaults, from the run
    ck = load_checkpoint(out/'classifier.pt', kind='classifier')
    assert ck['bn'] == 'clean' and ck['meta']['mode'] == 'stdev'
    assert [m['epoch'] for m in read_metrics(out)] == [1, 2]
    # the same command again: refused, nothing overwritten; with --resume and more epochs: continued
    before = (out/'results.json').read_bytes()
    code, err = cli('linear-eval', '--encoder', encoder, '--mode', 'stdev', *FAST, '--out', out, capsys=capsys)
    assert code == 2 and '--resume' in err
    assert (out/'results.json').read_bytes() == before
    code, err = cli('linear-eval', '--encoder', encoder, '--mode', 'stdev', *FAST[:-1], '--epochs', '3', '--resume',
                    '--no-progress', '--out', out, capsys=capsys)
    assert code == 0, err
    assert [m['epoch'] for m in read_metrics(out)] == [1, 2, 3]


def test_linear_eval_robev(tmp, encoder, capsys):
    out = tmp/'robev'
    code, err = cli('linear-eval', '--encoder', encoder, '--mode', 'robev', '--bn', 'adv', '--attack-steps', '2', *FAST,
                    '--out', out, capsys=capsys)
    assert code == 0, err
    r = results(out)
    assert (r['mode'], r['bn']) == ('robev', 'adv')                          # --bn overrides the auto rule
    assert 0 <= r['pgd20'] <= r['clean'] <= 1
    assert r['attack']['steps'] == 20 and abs(r['attack']['eps'] - 0.1) < 1e-9
    cfg = json.loads((out/'config.json').read_text())
    assert (cfg['weight_decay'], cfg['attack_steps'], cfg['lr']) == (5e-4, 2, 0.3)
    # the frozen encoder is untouched
    enc = load_checkpoint(encoder)['model']
    clf = load_checkpoint(out/'classifier.pt', kind='classifier')['model']
    for k, v in clf.items():
        if k.startswith('encoder.'): assert torch.equal(v, enc['q.' + k]), k


def test_linear_eval_bad_input(tmp, encoder, capsys):
    code, err = cli('linear-eval', '--encoder', tmp/'missing', *FAST, '--out', tmp/'bad1', capsys=capsys)
    assert code == 2 and 'does not exist' in err and '--encoder' in err, err
    from amoc_nb.checkpoints import save_classifier
    from amoc_nb.models import Classifier, make_encoder
    clf_ckpt = save_classifier(Classifier(make_encoder('small_cnn', width=8), 10), tmp/'a-classifier'/'classifier.pt')
    code, err = cli('linear-eval', '--encoder', clf_ckpt, *FAST, '--dataset', 'digits', '--out', tmp/'bad2', capsys=capsys)
    assert code == 2 and "'classifier' checkpoint, not a pre-trained encoder" in err, err
    code, err = cli('linear-eval', '--encoder', encoder, '--mode', 'fast', '--out', tmp/'bad3', capsys=capsys)
    assert code == 2 and 'invalid choice' in err and 'robev' in err, err
    code, err = cli('linear-eval', '--dataset', 'digits', '--out', tmp/'bad4', capsys=capsys)
    assert code == 2 and '--encoder is required' in err, err
    assert not any((tmp/f'bad{i}').exists() for i in range(1, 5))


def test_finetune_cli(tmp, encoder, capsys):
    out = tmp/'ft'
    code, err = cli('finetune', '--encoder', encoder, '--attack-steps', '2', '--val-size', '128', *FAST, '--epochs', '1',
                    '--out', out, capsys=capsys)
    assert code == 0, err
    r = results(out)
    assert (r['loss'], r['bn'], r['init'], r['selection'], r['selected_epoch']) == ('ce', 'adv', 'amoc-pretrain', 'val-pgd', 1)
    assert 0 <= r['pgd20'] <= r['clean'] <= 1
    assert 'val_pgd' in read_metrics(out)[0]
    # random initialisation (supervised adversarial training) with TRADES
    out2 = tmp/'ft-trades'
    code, err = cli('finetune', '--dataset', 'digits', '--width', '8', '--loss', 'trades', '--attack-steps', '1', *FAST,
                    '--epochs', '1', '--out', out2, capsys=capsys)
    assert code == 0, err
    r = results(out2)
    assert (r['loss'], r['init'], r['variant']) == ('trades', 'random-init', None)
    code, err = cli('finetune', '--dataset', 'digits', '--loss', 'mart', '--out', tmp/'bad5', capsys=capsys)
    assert code == 2 and 'invalid choice' in err, err
    code, err = cli('finetune', '--encoder', out/'classifier.pt', '--dataset', 'digits', '--out', tmp/'bad6', capsys=capsys)
    assert code == 2 and 'not a pre-trained encoder' in err, err
    assert not (tmp/'bad5').exists() and not (tmp/'bad6').exists()
