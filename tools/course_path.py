"""The path through the course: order, kind, prerequisites and times of every notebook, written into nbs/index.ipynb.

    python tools/course_path.py             # write the table into index.ipynb (cell id 'course-path')
    python tools/course_path.py --check     # CI: the table is what the notebooks and the times file say
    python tools/course_path.py --measure   # measure this CPU's training rate into data/results/course_times.json

The times, per notebook:
- to read: its words (markdown and code) at 200 words per minute, plus half a minute per figure in its saved outputs;
- to run on a CPU: measured - the wall time of its last render (`tools/render.py` stores it in the notebook's
  metadata, `amoc_render.seconds`, with the number of threads); engine notebooks are not rendered (their tests run
  under nbdev_test) and have no time;
- to run on a Colab GPU: an *estimate*, not a measurement: the lesson's compute, taken as its CPU time times the
  rate at which this CPU trains the digits network (`--measure`: `amoc_nb.bench` on the digits setting, FLOPs counted
  by `bench.step_flops`), divided by a T4's fp32 peak (8.1 TFLOP/s) at 30% utilisation. Python overhead, the package
  install and small kernels are not counted, so read it as a lower bound, until a GPU run measures it.
Run the render tool on a notebook, then this tool, and commit both.
"""
from __future__ import annotations
import argparse, datetime, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
from colab import _src, is_setup  # noqa: E402  (the setup cell, read the one way tools/ read it)
from website import title  # noqa: E402  (a lesson's title, as the site's navigation shows it)

NBS = ROOT/'nbs'
TIMES = ROOT/'data'/'results'/'course_times.json'
CELL_ID = 'course-path'
T4_FP32_TFLOPS, GPU_UTILISATION = 8.1, 0.3
WORDS_PER_MIN, MIN_PER_FIGURE = 200, 0.5
GPU_NOTE = {'20_train_gpu': 'hours per preset: see the lesson'}   # lessons whose real work is on a GPU
CPU_NOTE = {'13_experiments': ' + the demo'}   # renders that read a run made elsewhere (runs/demo: `amoc-nb demo`)

# (stem, kind, prerequisites in the course) in the recommended order. core: the method and its evaluation;
# optional: go further; engine: the machinery the lessons import (read when you need it).
PATH = [
    ('00_data', 'core', ''), ('01_models', 'core', '00'), ('02_moco', 'core', '00, 01'), ('03_banks', 'core', '02'),
    ('04_attacks', 'core', '01'), ('05_losses', 'core', '02-04'), ('06_pretrain', 'core', '05'),
    ('07_linear_eval', 'core', '06'), ('08_finetune', 'core', '07'), ('09_evaluate', 'core', '04, 08'),
    ('10_baselines', 'optional', '06, 08'), ('11_viz', 'optional', '06, 07'), ('12_speed', 'optional', '06'),
    ('13_experiments', 'optional', '06-10'), ('14_distributed', 'optional', '06'), ('20_train_gpu', 'optional', '06-09, 13'),
    ('21_analysis', 'core', '07-10'), ('22_explorer', 'optional', '05'), ('30_cli', 'engine', '13'),
    ('40_runs', 'engine', '06'), ('41_configs', 'engine', '06'), ('42_checkpoints', 'engine', '06'),
    ('43_pipeline', 'engine', '07-09'), ('44_procgroup', 'engine', '14'), ('45_results', 'engine', '21'),
]


def read(stem: str) -> dict: return json.loads((NBS/f'{stem}.ipynb').read_text(encoding='utf-8'))

def figures(nb: dict) -> int:
    return sum('image/png' in o.get('data', {}) or 'image/svg+xml' in o.get('data', {})
               for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', []))

def words(nb: dict) -> int:
    return sum(len(_src(c).split()) for c in nb['cells'] if not is_setup(c))

def read_minutes(nb: dict) -> float: return words(nb) / WORDS_PER_MIN + MIN_PER_FIGURE * figures(nb)

def cpu_seconds(nb: dict) -> float | None: return nb.get('metadata', {}).get('amoc_render', {}).get('seconds')

def gpu_minutes(cpu_s: float, cpu_tflops: float) -> float:
    return cpu_s * cpu_tflops / (T4_FP32_TFLOPS * GPU_UTILISATION) / 60

def fmt_min(m: float | None) -> str:
    "Minutes for reading: whole minutes."
    if m is None: return '-'
    return '< 1' if m < 1 else f'{m:.0f}'

def fmt_time(seconds: float | None) -> str:
    "A run time: seconds under a minute (at least 1 s), else whole minutes."
    if seconds is None: return '-'
    return f'{max(seconds, 1):.0f} s' if seconds < 59.5 else f'{seconds / 60:.0f} min'


def table(times: dict | None = None) -> str:
    times = times if times is not None else (json.loads(TIMES.read_text()) if TIMES.exists() else {})
    tf = times.get('cpu_tflops')
    rows = ['| # | lesson | kind | needs | read (min) | run on a CPU (measured) | Colab GPU (estimate) |',
            '|---|---|---|---|---|---|---|']
    tot = {'read': 0.0, 'cpu': 0.0}
    for stem, kind, needs in PATH:
        nb = read(stem)
        s = cpu_seconds(nb)
        r = read_minutes(nb)
        if kind != 'engine': tot['read'] += r; tot['cpu'] += (s or 0) / 60
        gpu = GPU_NOTE.get(stem) or (fmt_time(60 * gpu_minutes(s, tf)) if (s is not None and tf) else '-')
        rows.append(f"| {stem[:2]} | [{title(nb) or stem}]({stem}.ipynb) | {kind} | {needs or '-'} | {fmt_min(r)} | "
                    f"{fmt_time(s)}{CPU_NOTE.get(stem, '') if s is not None else ''} | {gpu} |")
    head = ("## The path through the course\n\nTake the lessons in this order. **Core** lessons are the method and its "
            "evaluation; **optional** ones go further (baselines, figures, speed, the reproduction, several GPUs, "
            "the explorer); **engine** notebooks are the machinery the lessons import: read them when you need them. "
            "\"needs\" names the lessons to read first. Every term has an entry in the [glossary](glossary.ipynb); "
            "teachers start at the [teacher's page](teachers.ipynb).\n\n"
            "**Before you start** you should know: PyTorch training loops and data loaders "
            "([PyTorch: Learn the Basics](https://pytorch.org/tutorials/beginner/basics/intro.html)); stochastic "
            "gradient descent ([d2l.ai, SGD](https://d2l.ai/chapter_optimization/sgd.html)); contrastive learning and "
            "MoCo ([He et al., MoCo](https://arxiv.org/abs/1911.05722), [Chen et al., SimCLR](https://arxiv.org/abs/2002.05709)); "
            "adversarial examples and PGD ([Madry et al.](https://arxiv.org/abs/1706.06083), "
            "[Kolter & Madry's tutorial](https://adversarial-ml-tutorial.org)). Lesson 02 recaps MoCo and lesson 04 PGD.\n\n")
    core = sum(1 for _, k, _ in PATH if k == 'core')
    foot = (f"\n\nIn all, the core and optional lessons take about {tot['read'] / 60:.0f} hours to read and "
            f"{tot['cpu']:.0f} minutes to run on a CPU. How the times are made (`python tools/course_path.py`): reading "
            f"at {WORDS_PER_MIN} words a minute plus {MIN_PER_FIGURE} min per figure; the CPU time is the lesson's "
            f"last render on 2 cores (`tools/render.py`) with nothing cached (lessons 06-08 and 21 keep their "
            f"trained runs under `runs/lessons/`, so a second run is faster; lesson 13 shows the demo's `runs/demo/`, and "
            f"runs the demo first - about ten more minutes - when it is missing), engine notebooks are not rendered; the GPU time is an "
            f"estimate from FLOPs - the CPU time times this CPU's measured digits training rate "
            f"({'%.3f TFLOP/s' % tf if tf else 'not measured'}, `--measure`), over a T4's fp32 peak at "
            f"{GPU_UTILISATION:.0%} - a lower bound (no Python overhead or install), until measured on a GPU. "
            f"{core} lessons are core.")
    return head + '\n'.join(rows) + foot


def cell(times=None) -> dict:
    return {'cell_type': 'markdown', 'id': CELL_ID, 'metadata': {}, 'source': table(times)}


def write(times=None) -> bool:
    p = NBS/'index.ipynb'
    nb = json.loads(p.read_text(encoding='utf-8'))
    new = cell(times)
    at = next((i for i, c in enumerate(nb['cells']) if c.get('id') == CELL_ID), None)
    if at is None:                                           # after the lesson table ("## The course")
        at = next(i for i, c in enumerate(nb['cells']) if c['cell_type'] == 'markdown' and '## The course' in _src(c)) + 1
        nb['cells'].insert(at, new); changed = True
    else:
        changed = _src(nb['cells'][at]) != new['source']
        nb['cells'][at] = new
    p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    return changed


def check() -> int:
    nb = json.loads((NBS/'index.ipynb').read_text(encoding='utf-8'))
    have = next((_src(c) for c in nb['cells'] if c.get('id') == CELL_ID), None)
    if have != table():
        print('nbs/index.ipynb: the course path is out of date (a lesson was rendered or edited since): run '
              '`python tools/course_path.py && python .ci/readme.py`', file=sys.stderr)
        return 1
    return 0


def measure() -> dict:
    "This CPU's rate (TFLOP/s) training the digits network with the digits batch: the GPU estimate's scale."
    import torch
    sys.path.insert(0, str(ROOT))
    from amoc_nb.bench import bench, bench_config_for
    from amoc_nb.configs import DIGITS, SMALL_DEFAULTS
    cfg = bench_config_for(device='cpu', arch=DIGITS.arch, width=DIGITS.width, image_size=DIGITS.image_size,
                           batch_size=SMALL_DEFAULTS['batch_size'], bank_size=SMALL_DEFAULTS['bank_size'],
                           warmup=2, steps=8, chunk=2, n_images=512, eval_batch=64, eval_batches=1)
    r = bench(cfg, log=lambda s: None)
    out = dict(cpu_tflops=r['tflops'], gflop_per_image=r['gflop_per_image'], img_s=r['fast_img_s'],
               threads=torch.get_num_threads(), torch=torch.__version__, date=str(datetime.date.today()),
               command='OMP_NUM_THREADS=2 python tools/course_path.py --measure')
    TIMES.write_text(json.dumps(out, indent=1) + '\n')
    return out


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--check', action='store_true')
    ap.add_argument('--measure', action='store_true')
    a = ap.parse_args()
    if a.check: sys.exit(check())
    if a.measure: print(json.dumps(measure()))
    print('index.ipynb: course path ' + ('updated' if write() else 'unchanged'))
