"""The layers of amoc_nb: every import points down this table, there is no import cycle and no re-export shim.

This is the one place the layer table lives. Bottom up: a module may import only modules above it in this list
(lower layers), counting imports inside functions too. Lessons 00-13 export the modules of the method; the engine
notebooks 40-45 export `runs`, `results`, `configs`, `checkpoints`, `pipeline` and `procgroup`.

    runs         40  run directories: locks, atomic writes, metrics, divergence and collapse watches
    results      45  the results file, the paper's tables, the prose-number check
    data         00  datasets and the two views
    models       01  dual BN, encoders, classifier
    moco         02  InfoNCE, momentum update
    banks        03  the memory banks
    attacks      04  PGD, DeepFool, AutoAttack, keyed random starts, `accuracy` (the one evaluation function)
    losses       05  Table 1, eq. 3.4
    configs      41  every stage's settings
    checkpoints  42  checkpoint files, `open_run` (the one way to open a run directory)
    procgroup    44  the process group under the loop: a world of one, or N with torchrun
    pretrain     06  the AMOC step and `train`, the one contrastive training loop
    linear_eval  07  StdEv / RobEv
    finetune     08  adversarial fine-tuning, TRADES
    evaluate     09  the attack suite (Table 2), sanity checks, CIFAR-10-C
    baselines    10  ACL (through `train`), the bank-vs-batch comparison
    viz          11  figures
    bench        12  the speed lesson
    pipeline     43  the stage drivers of the command line
    experiments  13  the demo and the paper's presets
    widgets      22  the variant explorer
    cli          30  `amoc-nb`
"""
import ast, re
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
LAYERS = re.findall(r'^    (\w+) +\d\d  ', __doc__, re.M)          # the table above, bottom up


def imports_of(path: Path, package: str = 'amoc_nb') -> set[str]:
    "The package modules that `path` imports anywhere (top level, inside functions, relative or absolute)."
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1: mod = node.module
            elif node.module and (node.module == package or node.module.startswith(package + '.')):
                mod = node.module[len(package) + 1:] or None
            else: continue
            if mod: deps.add(mod.split('.')[0])
            else: deps |= {a.name for a in node.names}             # from . import x / from amoc_nb import x
        elif isinstance(node, ast.Import):
            deps |= {a.name.split('.')[1] for a in node.names if a.name.startswith(package + '.')}
    return deps


def import_graph(pkg_dir: Path) -> dict[str, set[str]]:
    mods = {p.stem for p in pkg_dir.glob('*.py') if not p.stem.startswith('_')}
    return {m: imports_of(pkg_dir/f'{m}.py', pkg_dir.name) & mods - {m} for m in mods}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    "One import cycle of `graph` as a list of modules, or None."
    state, stack = {}, []
    def visit(m):
        state[m] = 'open'; stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 'open': return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)): return c
        state[m] = 'done'; stack.pop()
        return None
    for m in sorted(graph):
        if m not in state and (c := visit(m)): return c
    return None


def layer_problems(pkg_dir: Path, layers: list[str]) -> list[str]:
    "Every import against the table, every module missing from it, every cycle and module-level __getattr__."
    graph, rank = import_graph(pkg_dir), {m: i for i, m in enumerate(layers)}
    probs = [f'{m} is not in the layer table' for m in sorted(graph) if m not in rank]
    probs += [f'{m} imports {d}, which is not below it in the layer table' for m in sorted(graph) for d in sorted(graph[m])
              if m in rank and d in rank and rank[d] >= rank[m]]
    if (c := find_cycle(graph)): probs.append('import cycle: ' + ' -> '.join(c))
    for m in sorted(graph):
        tree = ast.parse((pkg_dir/f'{m}.py').read_text())
        if any(isinstance(n, ast.FunctionDef) and n.name == '__getattr__' for n in tree.body):
            probs.append(f'{m} has a module-level __getattr__ (a re-export shim)')
    return probs


def test_amoc_nb_follows_the_layer_table():
    assert layer_problems(ROOT/'amoc_nb', LAYERS) == []


def test_every_layer_is_a_module():
    assert sorted(LAYERS) == sorted(import_graph(ROOT/'amoc_nb')), 'the table and the package must list the same modules'


def _package(tmp_path, files: dict[str, str]) -> Path:
    pkg = tmp_path/'amoc_nb'; pkg.mkdir()
    for name, text in files.items(): (pkg/f'{name}.py').write_text(text)
    return pkg


def test_a_planted_upward_import_fails(tmp_path):
    pkg = _package(tmp_path, dict(runs='', data='def f():\n    from amoc_nb.models import x\n', models='from .runs import y\n'))
    assert layer_problems(pkg, ['runs', 'data', 'models']) == ['data imports models, which is not below it in the layer table']


def test_a_planted_cycle_and_shim_fail(tmp_path):
    pkg = _package(tmp_path, dict(a='from . import b\n', b='import amoc_nb.c\n',
                                  c='def __getattr__(name):\n    from amoc_nb import a\n    return getattr(a, name)\n'))
    probs = layer_problems(pkg, ['a', 'b', 'c'])
    assert 'import cycle: a -> b -> c -> a' in probs and 'c has a module-level __getattr__ (a re-export shim)' in probs



def test_readme_states_the_same_table():
    "README (from nbs/index.ipynb) names the layers in the table's order."
    text = ' '.join((ROOT/'README.md').read_text().split())
    assert ' < '.join(f'`{m}`' for m in LAYERS) in text
