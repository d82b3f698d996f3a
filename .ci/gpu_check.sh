#!/usr/bin/env bash
# GPU check for issue 6 (fast path + `amoc-nb bench`). Synthetic data only, nothing downloaded.
# Run from the repository root on a CUDA machine (amoc_nb installed: `pip install -e .`).
# Everything goes to $OUT (default ./gpu_out). Budget: ~6-8 minutes on an H100/H200, each part under its own timeout.
#   (a) amoc-nb bench --device cuda --json, ResNet-18, batch 256                      -> bench.txt, bench.json
#   (b) pretrain(): ResNet-18 AMOC-ACC, 10240 synthetic 32x32 images, batch 256,
#       bank 32768, 2 epochs (epoch 1 includes cuDNN autotuning) -> img/s per epoch    -> pretrain/, pretrain.txt
#   (c) host-sync audit of the fast step (torch.cuda.set_sync_debug_mode) + a CUDA
#       profile of one fast step (top kernels)                                         -> syncs.txt, profile.txt
#   (d) optional, if time is left: the bench with --compile                            -> bench_compile.txt
#   (e) fp16 (what a T4 without bf16 runs: autocast + GradScaler) and bf16, each with --deterministic (the resume
#       must be bit-exact) and without (the resume's weight difference is measured)    -> fp16_resume.txt
set -uo pipefail
export OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
t0=$(date +%s)
step() { echo "== $1 ($(( $(date +%s) - t0 )) s)"; }

step env
{ nvidia-smi || true; python -c "import torch, kornia; print('torch', torch.__version__, 'kornia', kornia.__version__,
  'cuda', torch.version.cuda, torch.cuda.get_device_name())"; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt" | tail -2

step "(a) bench"
timeout 240 amoc-nb bench --device cuda --json --arch resnet18 --batch-size 256 > "$OUT/bench.txt" 2> "$OUT/bench.err"
echo "bench rc=$?"; cat "$OUT/bench.txt"; tail -n 1 "$OUT/bench.txt" > "$OUT/bench.json"

step "(b) pretrain, 2 epochs of 10240 synthetic images"
timeout 180 python - > "$OUT/pretrain.txt" 2>&1 <<'PY'
import json, os, shutil, time
import amoc_nb.pretrain as P
from amoc_nb.data import synthetic
from amoc_nb.configs import PretrainConfig
from amoc_nb.runs import read_metrics
# `amoc-nb pretrain --dataset synthetic` has only 512 images; give pretrain() 10240 (same generator, 32x32)
P.load_dataset = lambda name, root, download, size, seed=0: synthetic(n_train=10240, n_test=256, size=size, seed=seed)
out = os.path.join(os.environ.get('OUT', 'gpu_out'), 'pretrain')
shutil.rmtree(out, ignore_errors=True)
cfg = PretrainConfig(dataset='synthetic', variant='ACC', arch='resnet18', image_size=32, batch_size=256,
                       bank_size=32768, epochs=2, device='cuda')          # the paper's settings otherwise
t = time.time(); P.pretrain(cfg, out, progress=False); wall = time.time() - t
rows = read_metrics(out)
for r in rows: print(f"epoch {r['epoch']}: {r['img_per_s']:.0f} img/s, loss {r['loss']:.3f}, {r['seconds']:.1f} s")
steady = rows[-1]['img_per_s']
print(json.dumps(dict(img_per_s=[r['img_per_s'] for r in rows], wall_s=wall,
                      est_200_epochs_min=200 * 50000 / steady / 60)))
PY
echo "pretrain rc=$?"; cat "$OUT/pretrain.txt"

step "(c) sync audit + CUDA profile of one fast step"
timeout 120 python - > "$OUT/syncs.txt" 2> "$OUT/syncs.err" <<'PY'
import os, warnings, torch
from torch.profiler import profile, ProfilerActivity
from amoc_nb.bench import bench_config_for, FastPath, ReferencePath
from amoc_nb.data import synthetic
cfg = bench_config_for(device='cuda', batch_size=256)
x = synthetic(2048, 8, size=32)[0].x
for cls in (FastPath, ReferencePath):
    p = cls(cfg, x, torch.device('cuda'))
    for _ in range(5): p.step()
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        for _ in range(3): p.step()
        torch.cuda.set_sync_debug_mode('default')
    torch.cuda.synchronize()
    msgs = [str(m.message).splitlines()[0] for m in w if 'synchroniz' in str(m.message)]
    print(f'{cls.name}: {len(msgs)} host syncs in 3 steps')
    for m in sorted(set(msgs)): print('   ', msgs.count(m), 'x', m[:200])
    if cls is FastPath:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            p.step(); torch.cuda.synchronize()
        with open(os.path.join(os.environ.get('OUT', 'gpu_out'), 'profile.txt'), 'w') as f:
            f.write(prof.key_averages().table(sort_by='cuda_time_total', row_limit=30))
PY
echo "sync audit rc=$?"; cat "$OUT/syncs.txt"; head -c 3000 "$OUT/profile.txt" 2>/dev/null

left=$(( 450 - ($(date +%s) - t0) ))
if [ "$left" -gt 150 ]; then
  step "(d) bench with --compile (timeout ${left} s)"
  timeout "$left" amoc-nb bench --device cuda --json --arch resnet18 --batch-size 256 --compile \
    > "$OUT/bench_compile.txt" 2> "$OUT/bench_compile.err"
  echo "bench --compile rc=$?"; tail -n 9 "$OUT/bench_compile.txt"
else
  echo "skipping (d): ${left} s left"
fi
step "(e) fp16 and bf16 pre-training; resume with and without --deterministic"
timeout 300 python - > "$OUT/fp16_resume.txt" 2>&1 <<'PY'
import json, os, shutil
from amoc_nb.configs import config_for
from amoc_nb.pretrain import pretrain
from amoc_nb.checkpoints import load_checkpoint
from amoc_nb.runs import read_metrics
root = os.path.join(os.environ.get('OUT', 'gpu_out'), 'resume'); shutil.rmtree(root, ignore_errors=True)
base = dict(arch='resnet18', image_size=32, batch_size=128, bank_size=4096, device='cuda')   # 512 synthetic images
def gap(a, b):
    a, b = load_checkpoint(a)['model'], load_checkpoint(b)['model']
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())
res = {}
for amp in ('fp16', 'bf16'):
    for det in (True, False):
        tag, cfg = f"{amp}-{'deterministic' if det else 'autotuned'}", (lambda e: config_for('synthetic', amp=amp,
                                                                       deterministic=det, epochs=e, **base))
        full, split = f'{root}/{tag}-full', f'{root}/{tag}-split'
        pretrain(cfg(2), full, progress=False)
        pretrain(cfg(1), split, progress=False); pretrain(cfg(2), split, resume=True, progress=False)
        res[tag] = dict(resume_max_weight_gap=gap(full, split), loss=[r['loss'] for r in read_metrics(full)],
                        run=json.load(open(f'{full}/config.json'))['_run'])
print(json.dumps(res, indent=1))
assert all(r['loss'][-1] == r['loss'][-1] for r in res.values()), 'a non-finite loss'
assert res['fp16-deterministic']['resume_max_weight_gap'] == 0 == res['bf16-deterministic']['resume_max_weight_gap']
PY
echo "fp16/resume rc=$?"; cat "$OUT/fp16_resume.txt"
step done
