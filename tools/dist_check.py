"""Worker for the distributed checks (tests/test_distributed.py, lesson 14): run it under torchrun, or import it.

    torchrun --standalone --nproc-per-node 2 tools/dist_check.py steps --out /tmp/d     # every variant, a few steps
    torchrun --standalone --nproc-per-node 2 tools/dist_check.py eval --out /tmp/d      # sharded evaluation counts
    torchrun --standalone --nproc-per-node 2 tools/dist_check.py all --out /tmp/d       # steps and eval in one start
    torchrun --standalone --nproc-per-node 2 tools/dist_check.py pretrain --out RUN --cfg '{"epochs": 2}' [--resume]
    torchrun --standalone --nproc-per-node 2 tools/dist_check.py bench --out /tmp/d --steps 10   # images/s

Rank 0 writes the results under --out (steps.pt, eval.json, bench.json); `pretrain` runs lesson 06's
`amoc_nb.pretrain.pretrain` (the one loop, any N) on the synthetic set with the small settings below, overridden by --cfg.
"""
from __future__ import annotations
import argparse, json, os, sys, time
from pathlib import Path

import torch

from amoc_nb.configs import config_for
from amoc_nb.losses import ALL_VARIANTS
from amoc_nb.data import load_dataset, batch_indices
from amoc_nb import procgroup as D
from amoc_nb.pretrain import AMOC_METHOD, build, make_views, pretrain, train_step
from amoc_nb.evaluate import evaluate_classifier

# the small synthetic settings of the checks: global batch 32 (16 per rank with 2 processes)
SMALL = dict(width=8, image_size=16, batch_size=32, bank_size=256, attack_steps=3, epochs=1, device='cpu',
             eps_warmup_epochs=0, warmup_epochs=1)


# the authors'-code recipe (enqueue first, attack first, anchors f(x + r)) and ACA+, on top of the seven variants and CAA
RECIPE_CASES = {'AAA/code': dict(variant='AAA', recipe='code'), 'ACA+/code': dict(variant='ACA', aca_plus=True, recipe='code')}


def small_config(**kw):
    return config_for('synthetic', **{**SMALL, **kw})


def setup(cfg, info, groups: int | None = None):
    """(view, model, optimiser, views function) of `cfg` on this rank, as lesson 06's loop builds them: rank 0's initial
    weights; the view `parallel_view` picks (`groups`: the 1-process emulation with that many BN groups, keyed)."""
    torch.manual_seed(cfg.seed)
    model, opt, aug = build(cfg, info.device)
    D.broadcast_module(model)
    model.train()
    view = D.parallel_view(model, info, cfg.seed, cfg.variant, 'on' if groups else cfg.shuffle_bn, groups or 2)
    return view, model, opt, (lambda x: make_views(aug, x, cfg, info.device))


def run_steps(cfg, info, steps: int = 3, groups: int | None = None, capture: bool = False) -> dict:
    """`steps` steps of lesson 06's loop (`train_step`) for `cfg` on this rank (or the 1-process emulation with `groups`
    BN groups): final state, per-step losses (mean over ranks) and, with `capture`, what the key network's first BN
    batch held."""
    train, _ = load_dataset(cfg.dataset, size=cfg.image_size, seed=0)
    x_train = train.x.to(info.device)
    view, model, opt, make = setup(cfg, info, groups)
    order = torch.stack(batch_indices(len(x_train), cfg.batch_size, torch.Generator().manual_seed(cfg.seed)))
    n_steps = len(order)
    seen = []
    def hook(mod, args):
        if mod.training and not seen: seen.append(args[0].detach().clone())
    h = model.k.register_forward_pre_hook(hook) if capture else None
    losses, positions = [], None
    for step in range(steps):
        terms, _, _ = train_step(AMOC_METHOD, view, opt, make, x_train, order[step].to(info.device), step, n_steps, cfg)
        losses.append(float(D.mean_over_ranks({'loss': terms['loss']})['loss']))
        if step == 0 and capture: positions = (view.key_positions or [torch.arange(cfg.batch_size)])[0]
    if h is not None: h.remove()
    out = dict(state={k: v.detach().clone() for k, v in model.state_dict().items()}, losses=losses)
    if capture:
        with D.keyed_rng(info.device, cfg.seed, 0): _, x2 = make(x_train[order[0]])    # the global views of step 0
        out.update(key_input=seen[0], key_positions=positions, x2_global=x2)
    return out


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument('mode', choices=('steps', 'eval', 'all', 'pretrain', 'bench'))
    p.add_argument('--out', required=True, type=Path)
    p.add_argument('--steps', type=int, default=3)
    p.add_argument('--variants', nargs='+', default=list(ALL_VARIANTS))
    p.add_argument('--cfg', default='{}')
    p.add_argument('--resume', action='store_true')
    p.add_argument('--arch', default='small_cnn')
    p.add_argument('--autoattack', action='store_true', help='eval: AutoAttack (APGD-CE) on 96 images instead')
    a = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    if a.mode == 'pretrain':
        pretrain(small_config(**json.loads(a.cfg)), a.out, resume=a.resume, progress=False)
        return 0
    info = D.init_distributed('cpu' if not torch.cuda.is_available() else 'auto')
    a.out.mkdir(parents=True, exist_ok=True)
    if a.mode in ('steps', 'all'):
        res = {}
        cases = {v: dict(variant=v) for v in a.variants}
        if a.mode == 'all': cases.update(RECIPE_CASES)
        for v, over in cases.items():
            over = {**over, **json.loads(a.cfg)}
            r = run_steps(small_config(**over), info, a.steps, capture=True)
            r['overrides'] = over
            # the banks of every rank, side by side: identical if the enqueue gathered first
            banks = {b: D.all_gather_cat(r['state'][f'banks.{b}.keys'][None]) for b in ('clean', 'adv')}
            r['bank_max_diff'] = max(float((t - t[:1]).abs().max()) for t in banks.values())
            r['bank_ptr'] = int(r['state']['banks.clean.ptr'])
            r['key_positions_all'] = D.all_gather_cat(r['key_positions'][None].to(info.device)).cpu()
            ok = torch.equal(r['key_input'], r['x2_global'][r['key_positions'].to(r['x2_global'].device)])
            r['key_input_matches'] = bool(D.all_gather_cat(torch.tensor([ok], device=info.device)).all())
            r['params_max_diff_ranks'] = max(float((t - t[:1]).abs().max()) for t in
                                             [D.all_gather_cat(v_[None].float()) for v_ in r['state'].values()])
            for k in ('key_input', 'x2_global', 'key_positions'): r.pop(k)
            res[v] = r
        if info.is_main: torch.save(dict(results=res, world_size=info.world_size, torchrun=D.launched_by_torchrun()), a.out/'steps.pt')
    if a.mode in ('eval', 'all'):
        res = eval_counts(info, ('apgd-ce',), n=96) if a.autoattack else eval_counts(info)
        if info.is_main: (a.out/('eval_aa.json' if a.autoattack else 'eval.json')).write_text(json.dumps(res, indent=1))
    if a.mode == 'bench':
        res = bench(info, a.steps, a.arch, **json.loads(a.cfg))
        if info.is_main: (a.out/f'bench_{info.world_size}.json').write_text(json.dumps(res, indent=1))
    return 0


def tiny_classifier(seed: int = 0, size: int = 16, steps: int = 18):
    "A fixed random classifier on the synthetic images: enough for exact-count checks."
    from amoc_nb.models import make_encoder, Classifier
    torch.manual_seed(seed)
    clf = Classifier(make_encoder('small_cnn', mean=(0.5,) * 3, std=(0.5,) * 3, width=8), 10, bn='adv')
    train, _ = load_dataset('synthetic', size=size, seed=0)
    x, y = train.x.float() / 255, train.y
    opt = torch.optim.SGD(clf.parameters(), lr=0.05, momentum=0.9)
    clf.train()
    for i in range(steps):                     # a short supervised run: accuracy well between chance and 100%
        j = torch.arange(i * 64, (i + 1) * 64) % len(x)
        loss = torch.nn.functional.cross_entropy(clf(x[j]), y[j])
        opt.zero_grad(); loss.backward(); opt.step()
    for p in clf.parameters(): p.requires_grad_(False)
    return clf.eval()


EVAL_EPS = 0.04


def eval_counts(info, attacks=('clean', 'pgd20'), n: int = 200, batch_size: int = 48) -> dict:
    "`evaluate_classifier` (lesson 04's `accuracy` inside) on `n` synthetic test images, with the exact counts."
    _, test = load_dataset('synthetic', size=16, seed=0)
    x, y = test.x[:n], test.y[:n]
    clf = tiny_classifier().to(info.device)
    D.broadcast_module(clf)                    # the same weights on every rank
    det = {}
    acc = evaluate_classifier(clf, x, y, attacks, eps=EVAL_EPS, batch_size=batch_size, device=info.device, details=det)
    return dict(acc=acc, correct={k: d['correct'] for k, d in det.items()},
                processes={k: d['processes'] for k, d in det.items()}, world_size=info.world_size)


def bench(info, steps: int = 10, arch: str = 'small_cnn', **kw) -> dict:
    "Images/s of the loop's step (`train_step`, global batch) after one warm-up step."
    cfg = small_config(arch=arch, **kw)
    train, _ = load_dataset(cfg.dataset, size=cfg.image_size, seed=0)
    x_train = train.x.to(info.device)
    view, model, opt, make = setup(cfg, info)
    order = torch.stack(batch_indices(len(x_train), cfg.batch_size, torch.Generator().manual_seed(0)))
    train_step(AMOC_METHOD, view, opt, make, x_train, order[0], 0, len(order), cfg)
    if info.world_size > 1: torch.distributed.barrier()
    t0 = time.time()
    for s in range(1, steps + 1):
        train_step(AMOC_METHOD, view, opt, make, x_train, order[s % len(order)], s, len(order), cfg)
    if info.world_size > 1: torch.distributed.barrier()
    dt = time.time() - t0
    return dict(processes=info.world_size, steps=steps, global_batch=cfg.batch_size, arch=cfg.arch,
                image_size=cfg.image_size, attack_steps=cfg.attack_steps, seconds=dt,
                img_per_s=steps * cfg.batch_size / dt, threads_per_process=torch.get_num_threads())


if __name__ == '__main__':
    sys.exit(main())
