"""The variant explorer's callbacks without a widget frontend: set the controls' values, click, assert on results."""
import matplotlib
matplotlib.use('Agg')
import pytest

from amoc_nb.losses import VARIANTS, ALL_VARIANTS, method_paths, draw_method
from amoc_nb.viz import figure_problems
from amoc_nb.widgets import (Explorer, variant_from_choices, aca_plus_applies, loss_latex, run_pick, plot_picks,
                             has_widget_frontend)


def fake_run(v, epochs, out, aca_plus=False, **kw):
    return dict(variant=v.name + ('+' if aca_plus and v.name == 'ACA' else ''), clean=0.9,
                pgd=0.4 if v.adv_query else 0.0, epochs=epochs, eps=0.1, pgd_steps=10, seconds=0.0, out=str(out), kw=kw)


def test_every_choice_maps_to_its_variant():
    for v in ALL_VARIANTS.values():
        assert variant_from_choices(v.adv_query, v.adv_key, v.bank) == v
    with pytest.raises(ValueError, match="'clean' or 'adv'"):
        variant_from_choices(True, False, 'both')


def test_switches_and_dropdown_stay_in_sync(tmp_path):
    ex = Explorer('CCC', run_fn=fake_run, out=tmp_path)
    ex.adv_query.value = True
    assert ex.name.value == 'ACC' and 'L}_{ACC}' in ex.formula.value and '$$' in ex.formula.value
    ex.bank.value = 'adv'
    assert ex.name.value == 'ACA'
    ex.name.value = 'AAC'
    assert (ex.adv_query.value, ex.adv_key.value, ex.bank.value) == (True, True, 'clean')
    assert ex.on_choice().name == 'AAC'
    assert figure_problems(ex.last_diagram) == []
    assert not has_widget_frontend()


def test_button_runs_the_current_pick_and_keeps_history(tmp_path):
    ex = Explorer('ACC', epochs=4, run_fn=fake_run, out=tmp_path, pgd_steps=3)
    ex.button.click()
    ex.name.value = 'ACA'; ex.aca_plus.value = True; ex.epochs.value = 2
    ex.button.click()
    assert [(h['variant'], h['epochs']) for h in ex.history] == [('ACC', 4), ('ACA+', 2)]
    assert ex.history[0]['kw'] == {'pgd_steps': 3}                       # extra run options reach run_fn
    assert ex.history[1]['out'].endswith('02_ACA_plus')                   # one folder per pick
    assert 'ACA+' in ex.status.value
    assert len(ex.last_plot.axes[0].patches) == 4 and figure_problems(ex.last_plot) == []


def test_diagram_highlights_the_active_path():
    for name, v in VARIANTS.items():
        p = method_paths(v)
        assert (p['query'], p['key'], p['negatives']) == (v.query_bn, v.key_bn, v.bank)
        assert ('adv' in p['writes']) == v.adv_key and 'clean' in p['writes']
        fig = draw_method(name)
        assert figure_problems(fig) == [] and len(fig.axes) == 2          # MoCo beside AMOC
        lw = {q.get_gid(): q.get_linewidth() for q in fig.axes[1].patches if q.get_gid()}
        assert (lw['bank_adv'] > lw['bank_clean']) == (v.bank == 'adv')
        assert (lw['fq_bn_adv'] > lw['fq_bn_clean']) == v.adv_query and (lw['fk_bn_adv'] > lw['fk_bn_clean']) == v.adv_key
        assert (lw['delta'] > 2, lw['delta_prime'] > 2) == (v.adv_query, v.adv_key)
    assert 'adv' in method_paths('ACA', aca_plus=True)['writes'] and 'adv' not in method_paths('ACA')['writes']


def _png(fig):
    import io
    b = io.BytesIO(); fig.savefig(b, format='png'); return b.getvalue()


def test_switches_that_do_not_apply_are_disabled_and_the_figure_follows(tmp_path):
    assert {n for n, v in ALL_VARIANTS.items() if aca_plus_applies(v)} == {'ACA'}
    ex = Explorer('ACC', run_fn=fake_run, out=tmp_path)
    assert ex.aca_plus.disabled
    acc = _png(ex.last_diagram)
    ex.bank.value = 'adv'                                                 # ACC -> ACA: the ACA+ switch applies
    assert ex.name.value == 'ACA' and not ex.aca_plus.disabled
    aca = _png(ex.last_diagram)
    ex.aca_plus.value = True                                              # ACA -> ACA+: M_adv is written
    assert '<b>ACA+</b>' in ex.formula.value and 'ACA+' in ex.measured.value
    assert len({acc, aca, _png(ex.last_diagram)}) == 3
    ex.adv_key.value = True                                               # AAA: ACA+ changes nothing, switch off
    assert ex.name.value == 'AAA' and ex.aca_plus.disabled and '<b>AAA</b>' in ex.formula.value
    ex.button.click()
    assert ex.history[-1]['variant'] == 'AAA' and ex.history[-1]['out'].endswith('01_AAA')
    assert loss_latex('CCC').count('$$') == 4 and 'plain MoCo' in loss_latex('CCC')


def test_run_pick_for_real(tmp_path):
    r = run_pick('ACA', epochs=1, out=tmp_path, aca_plus=True, linear_epochs=1, pgd_steps=2, n_test=100)
    assert r['variant'] == 'ACA+'
    assert 0.1 < r['clean'] <= 1 and 0 <= r['pgd'] <= r['clean'] + 0.05
    assert (tmp_path/'pretrain'/'checkpoint.pt').exists()
    assert figure_problems(plot_picks([r])) == []
