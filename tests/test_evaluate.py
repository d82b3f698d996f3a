"Robustness evaluation: attacks within budget, AutoAttack, CIFAR-10-C loader, load_classifier, results.json, CLI errors."
import contextlib, io, json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from amoc_nb.cli import main
from amoc_nb.data import digits, to_float
from amoc_nb.models import Classifier, make_encoder
from amoc_nb.pretrain import AMOC
from amoc_nb.runs import CheckpointError
from amoc_nb.checkpoints import atomic_save, save_classifier
from amoc_nb import evaluate as ev
from amoc_nb.attacks import accuracy
from amoc_nb.checkpoints import load_classifier
from amoc_nb.pipeline import RESULT_KEYS

P = {'linf': float('inf'), 'l2': 2, 'l1': 1}


@pytest.fixture(scope='module')
def trained():
    "A small CNN trained normally on digits for a few seconds, and 96 test images."
    torch.manual_seed(0)
    tr, te = digits()
    X, Y = to_float(tr.x), tr.y
    clf = Classifier(make_encoder('small_cnn', mean=(0.5,) * 3, std=(0.5,) * 3, width=8), 10, bn='clean')
    opt = torch.optim.Adam(clf.parameters(), 5e-3)
    for _ in range(80):
        idx = torch.randint(0, len(X), (128,))
        loss = F.cross_entropy(clf(X[idx]), Y[idx]); opt.zero_grad(); loss.backward(); opt.step()
    return clf.eval(), to_float(te.x[:96]), te.y[:96]


@pytest.fixture(scope='module')
def saved(trained, tmp_path_factory):
    d = tmp_path_factory.mktemp('clf')
    save_classifier(trained[0], d/'classifier.pt', config={'image_size': 16})
    return d


def run_cli(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try: code = main([str(a) for a in argv])
        except SystemExit as e: code = e.code
    return code, err.getvalue()


@pytest.mark.parametrize('name', ['pgd20', 'deepfool', 'pgd50_l1', 'pgd50_l2'])
def test_attack_within_budget_and_lowers_accuracy(trained, name):
    clf, x, y = trained
    spec = ev.attack_suite(0.1, (3, 16, 16))[name]
    xa = ev.run_attack(clf, spec, x, y)
    norm = (xa - x).flatten(1).norm(p=P[spec.norm], dim=1).max().item()
    assert norm <= spec.eps * (1 + 1e-4) + 1e-4, (name, norm, spec.eps)
    assert xa.min() >= 0 and xa.max() <= 1
    clean, adv = accuracy(clf, x, y), accuracy(clf, xa, y)
    assert clean > 0.8 and adv < clean - 0.2, (name, clean, adv)
    assert not clf.training


def test_evaluate_classifier_and_budget_check(trained):
    clf, x, y = trained
    det = {}
    r = ev.evaluate_classifier(clf, x, y, ['clean', 'pgd20'], eps=0.1, batch_size=40, details=det)
    assert set(r) == {'clean', 'pgd20'} and r['pgd20'] < r['clean']
    assert det['pgd20']['max_perturbation'] <= 0.1 + 1e-6
    with pytest.raises(ValueError, match='pgd50_l2'): ev.evaluate_classifier(clf, x, y, ['cw'])
    spec = ev.attack_suite(0.1, (3, 16, 16))['pgd20']
    with pytest.raises(RuntimeError, match='exceeds eps'): ev.check_budget((x + 0.2).clamp(0, 1), x, spec)


def test_autoattack_sensible_on_tiny_model(trained):
    clf, x, y = trained
    x, y = x[:32], y[:32]
    det = {}
    r = ev.evaluate_classifier(clf, x, y, ['clean', 'pgd20', 'apgd-ce'], eps=0.1, details=det)
    assert 0 <= r['apgd-ce'] < r['clean'] - 0.2                # lowers accuracy (a plain model: a lot)
    assert r['apgd-ce'] <= r['pgd20'] + 2 / 32               # at least as strong as PGD-20
    assert det['apgd-ce']['max_perturbation'] <= 0.1 + 1e-5  # within budget (check_budget also raised otherwise)


def test_worst_case_attacks_only_the_survivors(trained):
    "survivors=('pgd20', mask): the second attack runs on PGD-20's survivors only; the result is the worst case of both."
    clf, x, y = trained
    x, y = x[:48], y[:48]
    det, masks = {}, {}
    r = ev.evaluate_classifier(clf, x, y, ['pgd20', 'apgd-ce'], eps=0.01, details=det, masks=masks)
    both = ev.evaluate_classifier(clf, x, y, ['apgd-ce'], eps=0.01, details=det, survivors=('pgd20', masks['pgd20']))
    assert 0 < r['pgd20'] < 1                                              # some survive, some do not
    assert masks['pgd20'].sum() == round(r['pgd20'] * 48) and masks['pgd20'].dtype == torch.bool
    assert both['apgd-ce'] <= min(r['pgd20'], r['apgd-ce'] + 2 / 48)         # at most either (up to APGD's own noise)
    assert det['apgd-ce']['attacked'] == int(masks['pgd20'].sum()) and det['apgd-ce']['total'] == 48
    assert 'survived pgd20' in det['apgd-ce']['attack']
    none = torch.zeros(48, dtype=torch.bool)                                # PGD-20 broke all: nothing left to attack
    assert ev.evaluate_classifier(clf, x, y, ['apgd-ce'], eps=0.01, details=det, survivors=('pgd20', none)) == {'apgd-ce': 0.0}
    assert det['apgd-ce']['attacked'] == 0


def test_sanity_checks_pass_on_plain_model(trained):
    clf, x, y = trained
    c = ev.sanity_checks(clf, x[:64], y[:64], eps=0.1, steps=10, eps_factors=(0, 1, 8), more=3, restarts=2)
    assert set(c) == {'deterministic', 'eps_to_zero', 'more_steps', 'restarts', 'beats_noise', 'nonzero_gradients'}
    assert all(v['passed'] for v in c.values()), ev.sanity_summary(c)


def test_cifar10c_fixture_and_errors(tmp_path):
    d = ev.write_cifar10c_fixture(tmp_path, n_per_severity=6)
    assert sorted(p.stem for p in d.glob('*.npy')) == sorted(ev.CORRUPTIONS + ('labels',))
    assert len(ev.CORRUPTIONS) == 19
    x, y = ev.load_cifar10c('gaussian_noise', 5, tmp_path)
    raw = np.load(d/'gaussian_noise.npy')
    assert raw.shape == (30, 32, 32, 3) and raw.dtype == np.uint8
    assert torch.equal(x, torch.from_numpy(raw[24:30]).permute(0, 3, 1, 2))
    assert torch.equal(y, torch.from_numpy(np.load(d/'labels.npy')[24:30]).long())
    assert ev.load_cifar10c('fog', 2, tmp_path, n=3)[0].shape == (3, 3, 32, 32)
    torch.manual_seed(0)
    clf = Classifier(make_encoder('small_cnn', width=4), 10, bn='clean').eval()
    r = ev.cifar10c_accuracy(clf, tmp_path, corruptions=('fog', 'snow'))
    assert set(r['per_corruption']) == {'fog', 'snow'} and set(r['per_corruption']['fog']) == {'1', '2', '3', '4', '5'}
    ev.plot_cifar10c(r, tmp_path/'fig.png')
    assert (tmp_path/'fig.png').read_bytes()[:4] == b'\x89PNG'
    # errors: missing folder, missing file, wrong shape, wrong dtype, unreadable, truncated
    with pytest.raises(FileNotFoundError, match='zenodo'): ev.load_cifar10c('fog', 1, tmp_path/'none')
    (d/'snow.npy').unlink()
    with pytest.raises(FileNotFoundError, match='snow.npy is missing'): ev.load_cifar10c('snow', 1, tmp_path)
    np.save(d/'fog.npy', np.zeros((30, 32, 32), np.uint8))
    with pytest.raises(ValueError, match='fog.npy is corrupted'): ev.load_cifar10c('fog', 1, tmp_path)
    np.save(d/'fog.npy', np.zeros((30, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match='fog.npy is corrupted'): ev.load_cifar10c('fog', 1, tmp_path)
    (d/'fog.npy').write_bytes(b'garbage')
    with pytest.raises(ValueError, match='corrupted'): ev.load_cifar10c('fog', 1, tmp_path)
    good = d/'frost.npy'
    good.write_bytes(good.read_bytes()[:5000])                        # truncated download
    with pytest.raises(ValueError, match='frost.npy'): ev.load_cifar10c('frost', 1, tmp_path)


def test_load_classifier_round_trip_and_wrong_kind(tmp_path):
    torch.manual_seed(1)
    clf = Classifier(make_encoder('small_cnn', width=4), 10, bn='adv')
    save_classifier(clf, tmp_path/'run'/'classifier.pt')
    x = torch.rand(3, 3, 16, 16)
    for p in (tmp_path/'run'/'classifier.pt', tmp_path/'run'):
        m = load_classifier(p)
        assert isinstance(m, torch.nn.Module) and not m.training
        with torch.no_grad(): assert torch.equal(m(x), clf.eval()(x))
    atomic_save(dict(kind='amoc-pretrain', model=AMOC(make_encoder('small_cnn', width=4), 8, 32).state_dict()),
                tmp_path/'pre'/'checkpoint.pt')
    with pytest.raises(CheckpointError, match='linear-eval'): load_classifier(tmp_path/'pre')
    with pytest.raises(CheckpointError, match='linear-eval'): load_classifier(tmp_path/'pre'/'checkpoint.pt')


def test_cli_results_schema(saved, tmp_path):
    out = tmp_path/'eval'
    code, err = run_cli('evaluate', '--classifier', saved, '--dataset', 'digits', '--attacks', 'clean', 'pgd20',
                        'pgd50_l2', '--n-test', '48', '--sanity-n', '16', '--sanity-steps', '5', '--no-progress',
                        '--out', out)
    assert code == 0, err
    r = json.loads((out/'results.json').read_text())
    assert set(RESULT_KEYS) <= set(r)
    assert r['complete'] is True and r['n_test'] == 48 and r['dataset'] == 'digits'
    assert set(r['accuracy']) == {'clean', 'pgd20', 'pgd50_l2'}
    assert all(0 <= v <= 1 for v in r['accuracy'].values())
    assert r['accuracy']['pgd20'] < r['accuracy']['clean']
    assert r['attacks']['pgd50_l2']['norm'] == 'l2' and r['attacks']['pgd20']['max_perturbation'] <= 0.1 + 1e-6
    assert isinstance(r['sanity_passed'], bool) and all('passed' in c for c in r['sanity'].values())
    assert r['settings']['eps'] == 0.1 and json.loads((out/'config.json').read_text())['n_test'] == 48
    code, err = run_cli('evaluate', '--classifier', saved, '--dataset', 'digits', '--out', out)      # no overwrite
    assert code == 2 and '--resume' in err


def test_cli_cifar10c_only(tmp_path):
    ev.write_cifar10c_fixture(tmp_path/'data', n_per_severity=4, corruptions=ev.CORRUPTIONS)
    torch.manual_seed(0)
    save_classifier(Classifier(make_encoder('small_cnn', width=4), 10, bn='clean'), tmp_path/'c.pt')
    code, err = run_cli('evaluate', '--classifier', tmp_path/'c.pt', '--attacks', 'cifar10c', '--no-sanity',
                        '--data-root', tmp_path/'data', '--no-progress', '--out', tmp_path/'e')
    assert code == 0, err
    r = json.loads((tmp_path/'e'/'results.json').read_text())
    assert len(r['cifar10c']['per_corruption']) == 19 and 0 <= r['accuracy']['cifar10c'] <= 1
    assert (tmp_path/'e'/'cifar10c.png').exists()


@pytest.mark.parametrize('args,msg', [
    (['--attacks', 'pgd20', 'cw'], 'pgd50_l2'),                                   # unknown attack name
    (['--attacks', 'cifar10c', '--data-root', '{tmp}/nodata'], 'CIFAR-10-C'),     # missing CIFAR-10-C folder
    (['--eps', '-1'], '--eps'),
])
def test_cli_bad_input_exit_2(saved, tmp_path, args, msg):
    args = [a.replace('{tmp}', str(tmp_path)) for a in args]
    code, err = run_cli('evaluate', '--classifier', saved, '--dataset', 'digits', *args, '--out', tmp_path/'o')
    assert code == 2 and msg in err, err
    assert not (tmp_path/'o').exists()                                          # nothing written


def test_cli_wrong_kind_and_missing(tmp_path):
    atomic_save(dict(kind='amoc-pretrain', model={}), tmp_path/'pre'/'checkpoint.pt')
    code, err = run_cli('evaluate', '--classifier', tmp_path/'pre', '--dataset', 'digits', '--out', tmp_path/'o')
    assert code == 2 and 'linear-eval' in err, err
    code, err = run_cli('evaluate', '--dataset', 'digits', '--out', tmp_path/'o')
    assert code == 2 and '--classifier' in err, err
    save_classifier(Classifier(make_encoder('small_cnn', width=4), 10), tmp_path/'d.pt', config={'dataset': 'digits'})
    code, err = run_cli('evaluate', '--classifier', tmp_path/'d.pt', '--out', tmp_path/'o')      # default cifar10
    assert code == 2 and 'add --dataset digits' in err, err
    assert not (tmp_path/'o').exists()
