"""The course website (tools/website.py): order, titles, badges, links, local MathJax, saved outputs only.

.ci/run builds the site (with -W) before the tests; run alone, this builds it if it is not there.
"""
import html as htmllib, json, os, re, subprocess, sys
from pathlib import Path
from urllib.parse import urlsplit, unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT/'docs'/'_build'/'html'
sys.path.insert(0, str(ROOT/'tools'))
import colab, website  # noqa: E402


@pytest.fixture(scope='module')
def site():
    if not (SITE/'index.html').exists():
        import importlib.util
        if importlib.util.find_spec('myst_nb') is None:
            if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'): pytest.fail('CI=true and myst-nb is missing')
            pytest.skip('no built site and no myst-nb: pip install -e ".[docs]"')
        subprocess.run([sys.executable, str(ROOT/'tools'/'website.py')], check=True)
    return SITE


def _page(name): return (SITE/f'{name}.html').read_text(encoding='utf-8')
def _nb(stem): return json.loads((ROOT/'nbs'/f'{stem}.ipynb').read_text(encoding='utf-8'))


def test_staging_drops_setup_and_hidden_cells_and_keeps_outputs():
    nb = {'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': '# T\n> d'},
                    {'cell_type': 'code', 'metadata': {}, 'execution_count': 1, 'source': '#| hide\nsecret = 1', 'outputs': []},
                    {'cell_type': 'code', 'metadata': {}, 'execution_count': 2, 'source': '#| default_exp x', 'outputs': []},
                    {'cell_type': 'code', 'metadata': {}, 'execution_count': 3, 'source': '#| export\ndef f(): pass',
                     'outputs': [{'output_type': 'stream', 'name': 'stdout', 'text': 'kept\n'}]}],
          'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    out = website.stage_notebook(nb, 'x.ipynb', colab.settings())
    srcs = [colab._src(c) for c in out['cells']]
    assert srcs[0] == '# T\n> d' and colab.colab_url('x.ipynb') in srcs[1] and srcs[2] == 'def f(): pass'
    assert '(colab-badge.svg)' in srcs[1]                                  # the badge image comes from the site
    assert len(srcs) == 3 and out['cells'][2]['outputs'][0]['text'] == 'kept\n'
    assert not any(colab.SETUP_MARK in s or 'secret' in s for s in srcs)


def test_order_titles_and_badges(site):
    order = website.lesson_order(ROOT/'nbs')
    table = re.findall(r'^\| \[([\w.-]+)\]\(nbs/\1\.ipynb\)', (ROOT/'README.md').read_text(), re.M)
    assert [s for s in order if s in table] == [s for s in table if (ROOT/'nbs'/f'{s}.ipynb').exists()]
    assert set(order) == {p.stem for p in (ROOT/'nbs').glob('*.ipynb')} - {'index'}
    home = _page('index')
    nav = re.search(r'<nav class="bd-links bd-docs-nav".*?</nav>', home, re.S)[0]
    assert re.findall(r'class="reference internal" href="([\w.-]+)\.html"', nav) == order
    for stem in ['index'] + order:
        page = _page(stem)
        h1 = htmllib.unescape(re.sub(r'<[^>]+>', '', re.search(r'<h1[^>]*>(.*?)</h1>', page, re.S)[1])).strip(' #¶\n')
        assert h1 == website.title(_nb(stem)), stem
        assert f'href="{colab.colab_url(stem + ".ipynb")}"' in page, f'{stem}: no Colab badge'
        assert colab.SETUP_MARK not in page and 'AMOC_NB_SOURCE' not in page, f'{stem}: the setup cell leaked'
        assert not re.search(r'<pre>(?:<span></span>)?#\|', page), f'{stem}: an nbdev directive is shown'


def test_links_resolve_and_mathjax_is_local(site):
    for page in [*SITE.glob('*.html'), *SITE.glob('student/*.html')]:
        text = page.read_text(encoding='utf-8')
        for ref in re.findall(r'(?:href|src)="([^"]+)"', text):
            u = urlsplit(htmllib.unescape(ref))
            if u.scheme or u.netloc or not u.path: continue           # external (the badge) or an anchor
            assert (page.parent/unquote(u.path)).exists(), f'{page.name}: broken link {ref}'
        for src in re.findall(r'<script[^>]+src="([^"]+)"', text):
            assert not urlsplit(src).netloc, f'{page.name}: script from the internet: {src}'
    assert re.search(r'<script[^>]+src="_static/mathjax/es5/tex-chtml\.js', _page('21_analysis'))
    assert (SITE/'_static'/'mathjax'/'es5'/'output'/'chtml'/'fonts'/'woff-v2'/'MathJax_Main-Regular.woff').exists()


def test_pages_show_the_saved_outputs_and_nothing_else(site):
    "Nothing is executed at build time: a page has exactly the outputs its notebook saved."
    for stem in website.lesson_order(ROOT/'nbs'):
        nb = website.stage_notebook(_nb(stem), f'{stem}.ipynb', colab.settings())
        saved = sum(bool(c.get('outputs')) for c in nb['cells'] if c['cell_type'] == 'code')
        shown = _page(stem).count('<div class="cell_output docutils container">')
        assert shown == saved, f'{stem}: {shown} output blocks on the page, {saved} saved in the notebook'
    figs = [p for p in re.findall(r'<img[^>]+src="(_images/[^"]+\.png)"', _page('21_analysis'))]
    assert figs and all((SITE/f).stat().st_size > 1000 for f in figs)


def test_student_edition_pages(site):
    "Lessons with exercises also appear as the student edition: the stubs, not the solutions."
    editions = pytest.importorskip('editions')
    with_ex = [s for s in website.lesson_order(ROOT/'nbs') if editions.has_exercises(_nb(s))]
    assert sorted(p.stem for p in (SITE/'student').glob('*.html')) == sorted(with_ex)
    nav = re.search(r'<nav class="bd-links bd-docs-nav".*?</nav>', _page('index'), re.S)[0]
    assert re.findall(r'href="student/([\w.-]+)\.html"', nav) == with_ex
    for stem in with_ex:
        page = (SITE/'student'/f'{stem}.html').read_text(encoding='utf-8')
        assert 'Student edition' in page and 'NotImplementedError' in page, stem
        assert page.count('NotImplementedError') > _page(stem).count('NotImplementedError'), stem
        assert f'href="{colab.colab_url(stem + ".ipynb")}"' in page


def test_lessons_link_each_other():
    stems = ['05_losses', '06_pretrain', '21_analysis']
    md = 'lesson 05, `lesson 05`, [lesson 05](x.ipynb), $lesson 05$, Lesson 21, lesson 99, lesson 06'
    assert website.link_lessons(md, stems, this='06_pretrain') == (
        '[lesson 05](05_losses.ipynb), `lesson 05`, [lesson 05](x.ipynb), $lesson 05$, '
        '[Lesson 21](21_analysis.ipynb), lesson 99, lesson 06')


def test_lesson_mentions_are_links_on_the_site(site):
    order = website.lesson_order(ROOT/'nbs')
    by_num = {s.split('_')[0]: s for s in order}
    checked = 0
    for stem in order:
        prose = '\n'.join(colab._src(c) for c in _nb(stem)['cells'] if c['cell_type'] == 'markdown')
        prose = website.PROTECTED.sub('', prose)
        for num in set(website.LESSON_REF.findall(prose)):
            target = by_num.get(num[1])
            if target and target != stem:
                body = re.search(r'<article class="bd-article">.*?</article>', _page(stem), re.S)[0]   # not the nav
                assert f'href="{target}.html"' in body, f'{stem}: "lesson {num[1]}" is not a link'
                checked += 1
    assert checked >= 5
