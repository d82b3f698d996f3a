"""The course in a real browser: JupyterLab runs the variant explorer (lesson 22), and the built website renders.

Headless Chromium (Debian's `chromium` package) driven by Playwright. The test clicks the widgets' DOM controls -
never kernel code - and reads the page. Screenshots go to screenshots/ (git-ignored).

Needs: apt-get install -y chromium; pip install -e ".[lab,docs,browser]". Under CI=true a missing piece fails the
test; elsewhere the test is skipped and says what is missing.
"""
import functools, http.server, json, os, secrets, shutil, socket, subprocess, sys, threading, time, urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT/'screenshots'
SITE = ROOT/'docs'/'_build'/'html'
sys.path.insert(0, str(ROOT/'tools'))


def _missing(what: str):
    if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'): pytest.fail(f'CI=true and {what}')
    pytest.skip(what)


def _chromium() -> str:
    path = os.environ.get('CHROMIUM') or shutil.which('chromium') or shutil.which('chromium-browser')
    if not path: _missing("no chromium browser: apt-get install -y chromium")
    try: import playwright.sync_api  # noqa: F401
    except ImportError: _missing('no playwright: pip install -e ".[browser]"')
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def browser():
    path = _chromium()
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=['--no-sandbox'])
        yield b
        b.close()


def _local_only(page, port: int):
    "Nothing from the internet (there is none): abort any request that does not go to 127.0.0.1:<port>."
    page.route('**/*', lambda r: r.continue_() if r.request.url.startswith(f'http://127.0.0.1:{port}/') else r.abort())


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    try: import jupyterlab  # noqa: F401
    except ImportError: _missing('no JupyterLab: pip install -e ".[lab]"')
    root = tmp_path_factory.mktemp('lab')
    shutil.copy(ROOT/'nbs'/'22_explorer.ipynb', root/'22_explorer.ipynb')   # the lab saves into its copy, never nbs/
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ('IN_TEST', 'MPLBACKEND')}   # the kernel inherits this
    env.update(OMP_NUM_THREADS='1', JUPYTER_RUNTIME_DIR=str(root/'.runtime'), JUPYTERLAB_WORKSPACES_DIR=str(root/'.ws'),
               JUPYTER_CONFIG_DIR=str(root/'.config'))
    log = open(root/'lab.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ServerApp.ip=127.0.0.1',
                             f'--ServerApp.port={port}', f'--IdentityProvider.token={token}',
                             f'--ServerApp.root_dir={root}', '--LabApp.news_url=None',
                             '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
                             '--LabApp.extension_manager=readonly', '--allow-root'],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f'http://127.0.0.1:{port}'
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=2); break
            except Exception:
                if proc.poll() is not None: break
                time.sleep(0.5)
        else: pytest.fail('JupyterLab did not start: ' + (root/'lab.log').read_text()[-2000:])
        if proc.poll() is not None: pytest.fail('JupyterLab exited: ' + (root/'lab.log').read_text()[-2000:])
        yield dict(base=base, token=token, port=port, root=root)
    finally:
        proc.terminate()
        try: proc.wait(20)
        except subprocess.TimeoutExpired: proc.kill()
        log.close()


IDLE_JS = "(document.querySelector('#jp-main-statusbar') || {innerText: ''}).innerText.includes('(ipykernel) | Idle')"


def test_explorer_widgets_in_jupyterlab(browser, lab):
    page = browser.new_page(viewport={'width': 1400, 'height': 1000})
    _local_only(page, lab['port'])
    page.goto(f"{lab['base']}/lab/tree/22_explorer.ipynb?token={lab['token']}")
    page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=120_000)
    # the notebook names its kernel (tools/colab.py), so JupyterLab starts Python 3 without a "Select Kernel" dialog
    page.wait_for_function("() => document.querySelector('.jp-Dialog') || _idle()".replace('_idle()', IDLE_JS), timeout=120_000)
    assert page.locator('.jp-Dialog').count() == 0, 'JupyterLab asked: ' + page.locator('.jp-Dialog').first.inner_text()
    page.wait_for_function('() => ' + IDLE_JS, timeout=120_000)                      # kernel started and idle
    no_news = page.locator('.jp-toast-button', has_text='No')                        # the "Jupyter news?" toast
    if no_news.count(): no_news.first.click()
    page.screenshot(path=str(SHOTS/'lab_1_opened.png'))
    page.locator('.lm-MenuBar-itemLabel', has_text='Run').first.click()        # Run > Run All Cells, as a student does
    page.locator('.lm-Menu-itemLabel', has_text='Run All Cells').first.click()
    explorer = page.locator('.widget-vbox', has=page.locator('.widget-dropdown')).first
    explorer.wait_for(timeout=600_000)                                          # the last cell shows the explorer
    explorer.scroll_into_view_if_needed()
    name = explorer.locator('.widget-dropdown select')
    formula = explorer.locator('.widget-htmlmath')
    diagram = explorer.locator('.widget-output img').first

    MATH_JS = ('(el) => { const m = el.querySelector(".widget-htmlmath");'
               '  return m && m.querySelectorAll("mjx-container").length >= 2 && !m.innerText.includes("$$"); }')

    def state():
        diagram.wait_for(timeout=60_000)
        page.wait_for_function(MATH_JS, arg=explorer.element_handle(), timeout=60_000)   # eq. 3.4 rendered by MathJax
        return name.input_value(), formula.inner_text(), diagram.get_attribute('src')

    def after_click(target, shot, prev):
        target.click()
        page.wait_for_function('([el, old]) => el.querySelector(".widget-output img") && '
                               'el.querySelector(".widget-output img").src !== old',
                               arg=[explorer.element_handle(), prev[2]], timeout=60_000)
        now = state()
        explorer.screenshot(path=str(SHOTS/shot))
        return now

    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]', has_text='Traceback')
    assert errors.count() == 0 and page.locator('[data-mime-type="application/vnd.jupyter.error"]').count() == 0
    s0 = state()
    explorer.screenshot(path=str(SHOTS/'lab_2_explorer_ACC.png'))
    page.screenshot(path=str(SHOTS/'lab_2_page.png'), full_page=False)
    assert s0[0] == 'ACC' and s0[1].startswith('ACC') and s0[2].startswith('data:image/png')
    key = explorer.locator('.widget-checkbox', has_text="δ': perturb the key input").locator('input')
    query = explorer.locator('.widget-checkbox', has_text='δ: perturb the query input').locator('input')
    plus = explorer.locator('.widget-checkbox', has_text='ACA+').locator('input')
    bank_adv = explorer.locator('.widget-toggle-button', has_text='M_adv')
    assert plus.is_disabled()                                          # ACA+ changes nothing for ACC
    s1 = after_click(key, 'lab_3_key_on_AAC.png', s0)                 # delta' on: ACC -> AAC
    assert s1[0] == 'AAC' and s1[1].startswith('AAC') and s1[2] != s0[2]
    assert key.is_checked()
    s2 = after_click(query, 'lab_4_query_off_CAC.png', s1)            # delta off: AAC -> CAC
    assert s2[0] == 'CAC' and s2[1].startswith('CAC') and s2[2] not in (s0[2], s1[2])
    s3 = after_click(bank_adv, 'lab_5_bank_adv_CAA.png', s2)          # negatives from M_adv: CAC -> CAA
    assert s3[0] == 'CAA' and s3[1].startswith('CAA') and s3[2] not in (s0[2], s1[2], s2[2])
    assert 'mod-active' in (bank_adv.get_attribute('class') or '')
    s4 = after_click(query, 'lab_6_query_on_AAA.png', s3)             # delta on: CAA -> AAA
    s5 = after_click(key, 'lab_7_key_off_ACA.png', s4)                # delta' off: AAA -> ACA, ACA+ now applies
    assert (s4[0], s5[0]) == ('AAA', 'ACA') and plus.is_disabled() is False and s5[1].startswith('ACA')
    s6 = after_click(plus, 'lab_8_ACA_plus.png', s5)                  # ACA+: M_adv written, one arrow changes
    assert s6[1].startswith('ACA+') and s6[2] != s5[2] and 'ACA+, measured' in explorer.inner_text()
    page.close()


@pytest.fixture(scope='module')
def site():
    if not (SITE/'index.html').exists():
        if importlib_missing('myst_nb'): _missing('no built site and no myst-nb: pip install -e ".[docs]"')
        subprocess.run([sys.executable, str(ROOT/'tools'/'website.py')], check=True)
    port = _free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield dict(base=f'http://127.0.0.1:{port}', port=port)
    srv.shutdown()


def importlib_missing(mod):
    import importlib.util
    return importlib.util.find_spec(mod) is None


def test_site_home_and_a_lesson(browser, site):
    import website
    order = website.lesson_order(ROOT/'nbs')
    page = browser.new_page(viewport={'width': 1300, 'height': 1000})
    _local_only(page, site['port'])
    page.goto(site['base'] + '/index.html')
    assert 'amoc_nb' in page.locator('h1').first.inner_text()
    page.wait_for_selector('mjx-container', timeout=60_000)                    # the home page has math too
    nav = [a.get_attribute('href') for a in page.locator('nav.bd-links a.reference.internal').all()]
    assert [h for h in nav if '/' not in h] == [f'{s}.html' for s in order], nav   # the README table's order
    page.screenshot(path=str(SHOTS/'site_1_home.png'))
    page.locator('nav.bd-links a', has_text=website.title(json.loads((ROOT/'nbs'/'21_analysis.ipynb').read_text()))).click()
    page.wait_for_url('**/21_analysis.html')
    want = website.title(json.loads((ROOT/'nbs'/'21_analysis.ipynb').read_text()))
    assert page.locator('h1').first.inner_text().strip().rstrip('#').strip() == want
    page.wait_for_selector('mjx-container', timeout=60_000)                    # MathJax 3, from the site's own files
    page.screenshot(path=str(SHOTS/'site_2_lesson_21_top.png'))
    scripts = [s.get_attribute('src') for s in page.locator('script[src*="mathjax"]').all()]
    assert scripts and all(s.startswith('_static/mathjax/') for s in scripts), scripts
    fig = page.locator('.cell_output img').first
    fig.scroll_into_view_if_needed()
    assert fig.evaluate('i => i.complete && i.naturalWidth > 100'), 'the saved figure did not load'
    assert page.locator('a[href*="colab.research.google.com/github/"]').count() >= 1   # the Colab badge
    page.screenshot(path=str(SHOTS/'site_3_lesson_21_at_figure.png'))
    fig.screenshot(path=str(SHOTS/'site_4_lesson_21_figure.png'))
    import editions                                                            # the student edition, if lessons have exercises
    student = [s for s in order if editions.has_exercises(json.loads((ROOT/'nbs'/f'{s}.ipynb').read_text()))]
    if student:
        page.goto(f"{site['base']}/student/{student[0]}.html")
        assert 'Student edition' in page.locator('article').inner_text()
        assert page.locator('pre', has_text='NotImplementedError').count() >= 1
        page.screenshot(path=str(SHOTS/f'site_5_student_{student[0]}.png'))
    page.close()
