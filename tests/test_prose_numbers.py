"""Every percentage with a decimal, and every 'a ± b', in the course's markdown and the README is a number the
results file gives (through amoc_nb.results.measured), a number of the paper's tables, or a chance level."""
import json
from pathlib import Path

import pytest

from amoc_nb.results import RESULTS, ALLOWED, digits_results, allowed_numbers, check_prose, prose_numbers

ROOT = Path(__file__).resolve().parents[1]


def texts():
    "(where, text) of every markdown cell of nbs/ and of the README."
    for f in sorted((ROOT/'nbs').glob('*.ipynb')):
        for i, c in enumerate(json.loads(f.read_text())['cells']):
            if c['cell_type'] == 'markdown': yield f'{f.name} cell {i}', ''.join(c['source'])
    yield 'README.md', (ROOT/'README.md').read_text()


@pytest.fixture(scope='module')
def allowed():
    return allowed_numbers(digits_results(ROOT/RESULTS))


def test_every_typed_number_comes_from_the_results_file_or_the_paper(allowed):
    bad = {where: b for where, t in texts() if (b := check_prose(t, allowed))}
    assert not bad, ('numbers typed into prose that neither the results file, the paper (amoc_nb.results.PAPER) nor the '
                     f'allowlist give: {bad}. Quote a measured number through amoc_nb.results.measured in a code cell.')
    assert sum(len(prose_numbers(t)) for _, t in texts()) > 20          # the check reads the course, not nothing


def test_a_planted_wrong_number_fails(allowed):
    wrong = next(f'{v / 10:.1f}' for v in range(1000, 0, -1) if f'{v / 10:.1f}' not in allowed)
    where, text = next((w, t) for w, t in texts() if w.startswith('21_analysis'))
    planted = text + f'\n\nACC keeps {wrong}% under PGD-20.'
    assert check_prose(text, allowed) == [] and check_prose(planted, allowed) == [wrong]
    assert check_prose(f'{wrong} ± 1.0', allowed)[0] == wrong


def test_the_results_file_holds_every_part_over_three_seeds():
    r = digits_results(ROOT/RESULTS)
    assert set(r['tables']) == {'table6', 'table4', 'table3', 'table5', 'figure2', 'ablations'}
    assert r['seeds'] == [0, 1, 2] and 'not_the_protocol' not in r
    keys = {'method', 'variant', 'eval', 'seed', 'pretrain_epochs', 'metric', 'value'}
    for part, rows in r['tables'].items():
        assert rows and all(keys <= set(x) and 0 <= x['value'] <= 1 for x in rows), part
        assert {x['seed'] for x in rows} == {0, 1, 2}, part
    assert {x['corruption'] for x in r['tables']['figure2']} == set(r['corruptions']['names'])
    assert all({'id', 'claim', 'evidence', 'verdict'} <= set(c) for c in r['claims']) and len(r['claims']) >= 10
    assert set(ALLOWED) >= {'10.0'}
