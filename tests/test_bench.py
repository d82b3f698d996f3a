"Tests of the speed lesson (amoc_nb.bench): per-sample device augmentation, and `amoc-nb bench --json`."
import contextlib, io, json

import pytest
import torch

from amoc_nb.cli import main
from amoc_nb.data import MocoV2Augment, synthetic

# a tiny benchmark: small CNN, 16x16, one warm-up and one timed step per path, one PGD-20 batch of 4
TINY = ['--arch', 'small_cnn', '--width', '8', '--image-size', '16', '--batch-size', '8', '--bank-size', '64',
        '--warmup', '1', '--steps', '1', '--chunk', '1', '--n-images', '16', '--eval-batch', '4', '--eval-batches', '1']
KEYS = ('device', 'fast_img_s', 'reference_img_s', 'ratio', 'est_200_epochs_min', 'eval_pgd20_img_s')


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = main(argv)
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()


def test_device_augmentation_draws_per_sample():
    "64 copies of ONE image in one batch: kornia must give 64 different views (own crop, jitter, ... per sample)."
    torch.manual_seed(0)
    x = synthetic(4, 4, size=32)[0].x[:1].repeat(64, 1, 1, 1)
    aug = MocoV2Augment(32)
    views = aug(x)
    assert len({tuple(v.flatten().tolist()) for v in views}) == 64
    crops = aug.ops[0]._params['src']                      # per-sample crop boxes drawn by RandomResizedCrop
    assert crops.shape[0] == 64 and len({tuple(c.flatten().tolist()) for c in crops}) > 48
    jitter = aug.ops[1]._params['brightness_factor']       # per-sample colour-jitter strengths
    assert len(set(jitter.flatten().tolist())) > 48
    assert not torch.equal(aug(x), views)                   # and a second call draws again


def test_cli_bench_json_last_line():
    code, out, err = run(['bench', '--device', 'cpu', '--json', *TINY])
    assert code == 0, err
    r = json.loads(out.strip().splitlines()[-1])
    for k in KEYS: assert k in r, k
    assert r['device'] == 'cpu' and r['arch'] == 'small_cnn' and r['batch_size'] == 8
    assert r['fast_img_s'] > 0 and r['reference_img_s'] > 0 and r['eval_pgd20_img_s'] > 0
    assert r['ratio'] == pytest.approx(r['fast_img_s'] / r['reference_img_s'], rel=1e-2)
    assert r['est_200_epochs_min'] == pytest.approx(200 * 50000 / r['fast_img_s'] / 60, rel=1e-2)
    assert 'ratio fast / reference' in out


def test_cli_bench_without_json_prints_no_json():
    code, out, err = run(['bench', '--device', 'cpu', *TINY])
    assert code == 0, err
    assert not out.strip().splitlines()[-1].startswith('{')


def test_cli_bench_bad_input():
    code, out, err = run(['bench', '--device', 'cpu', '--steps', '1', '--chunk', '3'])
    assert code == 2 and '--chunk' in err
    if not torch.cuda.is_available():
        code, out, err = run(['bench', '--device', 'cuda'])
        assert code == 2 and '--device cpu' in err
    code, out, err = run(['bench', '--device', 'tpu'])
    assert code == 2                                        # argparse: not one of auto, cpu, cuda
