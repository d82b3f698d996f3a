"""The course website in a real browser: readable figures, folded engineering code, working download buttons, the
student edition's own navigation, no empty lesson page.

Headless Chromium driven by Playwright, the fixtures of tests/test_browser.py (the built site served on 127.0.0.1,
nothing from the internet). Screenshots go to screenshots/ (git-ignored): look at them.
"""
import json, re, struct
from pathlib import Path
from urllib.parse import urljoin

import pytest

from test_browser import ROOT, SHOTS, SITE, _local_only, browser, site  # noqa: F401 - pytest fixtures

import website  # noqa: E402 - tools/ is on sys.path (test_browser puts it there)

VIEWPORT = {'width': 1300, 'height': 1000}     # a laptop: both sidebars shown, the content column at its narrowest
SMALLEST_PT = 7                                # the smallest text the course's figures use (bar labels; legends are 8)
READABLE_PX = 9                                # below this a label is not readable on a screen


def _lessons(): return [s for s in website.lesson_order(ROOT/'nbs') if s[:2].isdigit() and int(s[:2]) < 30]


def _dpi(png: Path) -> float:
    "The PNG's resolution (matplotlib writes it in the pHYs chunk); 100 (Jupyter's inline figures) when it has none."
    data = png.read_bytes()
    i = data.find(b'pHYs')
    if i < 0: return 100.0
    per_m, _, unit = struct.unpack('>IIB', data[i + 4:i + 13])
    return per_m * 0.0254 if unit == 1 else 100.0


def _smallest_px(dpi: float, shown: float, natural: float) -> float:
    "The smallest label's height in screen pixels: SMALLEST_PT at the figure's dpi, scaled as the page shows it."
    return SMALLEST_PT * dpi / 72 * shown / natural


def _open(page, base, path):
    page.goto(f'{base}/{path}')
    page.wait_for_load_state('load')


def test_figures_are_readable_or_enlarge(browser, site):
    """Every output figure of every lesson is readable where the page shows it, or it is click-to-enlarge: a link to
    the PNG that opens it at full size, where its smallest label is readable. Lessons 05, 06 and 21 are clicked."""
    page = browser.new_page(viewport=VIEWPORT)
    _local_only(page, site['port'])
    report, clicked = [], 0
    for stem in _lessons():
        _open(page, site['base'], f'{stem}.html')
        imgs = page.locator('.cell_output img')
        for k in range(imgs.count()):
            img = imgs.nth(k)
            img.scroll_into_view_if_needed()
            page.wait_for_function('i => i.complete && i.naturalWidth > 0', arg=img.element_handle(), timeout=30_000)
            natural, shown = img.evaluate('i => [i.naturalWidth, i.getBoundingClientRect().width]')
            src = img.get_attribute('src')
            px = _smallest_px(_dpi(SITE/src), shown, natural)
            report.append(dict(page=stem, image=src, natural=natural, shown=round(shown), smallest_label_px=round(px, 1)))
            if px >= READABLE_PX: continue
            link = img.locator('xpath=..')
            assert link.evaluate('a => a.tagName') == 'A' and 'course-zoom' in link.get_attribute('class'), \
                f'{stem}: figure {k} is shrunk to {shown / natural:.0%} (labels {px:.1f} px) and cannot be enlarged'
            assert urljoin(page.url, link.get_attribute('href')) == urljoin(page.url, src), 'the link is not the image'
            if stem in ('05_losses', '06_pretrain', '21_analysis') or k == 0:
                link.click()
                big = page.locator('.course-lightbox img')
                big.wait_for(timeout=10_000)
                page.wait_for_function('i => i.complete && i.naturalWidth > 0', arg=big.element_handle(), timeout=10_000)
                bw = big.evaluate('i => i.getBoundingClientRect().width')
                assert _smallest_px(_dpi(SITE/src), bw, natural) >= READABLE_PX, f'{stem}: enlarged figure {k} still small'
                if clicked == 0: page.screenshot(path=str(SHOTS/f'site_fig_enlarged_{stem}.png'))
                page.keyboard.press('Escape')
                assert page.locator('.course-lightbox').count() == 0, 'Escape did not close the enlarged figure'
                clicked += 1
    (SHOTS/'site_figures.json').write_text(json.dumps(report, indent=1))
    assert report and clicked >= 3, (len(report), clicked)
    page.close()


def test_lesson_pages_in_the_browser(browser, site):
    "No empty lesson page; long engine and test cells are folded and open with a click; screenshots of 06, 13, 21."
    page = browser.new_page(viewport=VIEWPORT)
    _local_only(page, site['port'])
    for stem in _lessons():
        _open(page, site['base'], f'{stem}.html')
        assert page.locator('article .cell_output').count() >= 1, f'{stem}: the page shows no output'
        if stem in ('06_pretrain', '13_experiments', '21_analysis'):
            page.screenshot(path=str(SHOTS/f'site_{stem}_top.png'))
            first = page.locator('.cell_output img').first
            if first.count():
                first.scroll_into_view_if_needed(); page.wait_for_timeout(300)
                page.screenshot(path=str(SHOTS/f'site_{stem}_figure.png'))
    _open(page, site['base'], '13_experiments.html')
    folded = page.locator('details.hide.above-input')
    assert folded.count() >= 5, 'lesson 13 folds none of its engine code'
    cell = folded.first
    code = cell.locator('pre').first
    assert not code.is_visible(), 'a folded cell shows its code'
    cell.locator('summary').click()
    assert code.is_visible(), 'the toggle does not open the folded code'
    cell.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS/'site_13_folded_cell_opened.png'))
    page.close()


def test_download_button_resolves_to_the_notebook(browser, site):
    "The download menu's .ipynb of a lesson and of a student page is a real notebook: nbs/ and the student edition."
    page = browser.new_page(viewport=VIEWPORT)
    _local_only(page, site['port'])
    student = sorted(p.stem for p in (SITE/'student').glob('[0-9]*.html'))
    for path in ['06_pretrain.html', '21_analysis.html'] + [f'student/{s}.html' for s in student[:1]]:
        _open(page, site['base'], path)
        page.locator('.dropdown-download-buttons button').first.click()
        button = page.locator('a.btn-download-source-button')
        assert button.is_visible() and button.inner_text().strip() == '.ipynb'
        url = urljoin(page.url, button.get_attribute('href'))
        r = page.request.get(url)
        assert r.ok, f'{path}: {url} -> {r.status}'
        nb = json.loads(r.text())
        assert nb['nbformat'] == 4 and len(nb['cells']) > 3, url
        if path.startswith('student/'): assert 'NotImplementedError' in r.text(), f'{url}: not the student edition'
        else: assert nb == json.loads((ROOT/'nbs'/path.replace('.html', '.ipynb')).read_text(encoding='utf-8'))
    page.close()


def test_student_edition_has_its_own_navigation(browser, site):
    """The home page links to the student edition's landing page; student pages are titled "Student · ...", and
    next/prev walk through the student edition only; the teacher's last page does not lead into it."""
    page = browser.new_page(viewport=VIEWPORT)
    _local_only(page, site['port'])
    _open(page, site['base'], 'index.html')
    page.locator('article a[href="student/index.html"]').first.click()
    page.wait_for_url('**/student/index.html')
    assert page.locator('h1').first.inner_text().strip().rstrip('#').strip() == 'Student edition'
    page.screenshot(path=str(SHOTS/'site_student_index.png'))
    seen = []
    for _ in range(len(list((SITE/'student').glob('[0-9]*.html')))):
        page.locator('a.right-next').click()
        page.wait_for_load_state('load')
        assert '/student/' in page.url, f'next left the student edition: {page.url}'
        assert page.locator('h1').first.inner_text().startswith(website.STUDENT_TITLE), page.url
        seen.append(page.url.rsplit('/', 1)[1])
        if len(seen) == 2:
            page.screenshot(path=str(SHOTS/f'site_student_{seen[-1][:-5]}.png'))
            nav = [a.get_attribute('href') for a in page.locator('nav.bd-links a.reference.internal').all()]
            assert any(h.endswith('student/index.html') or h == 'index.html' for h in nav)
    assert page.locator('a.right-next').count() == 0, 'the last student page leads out of the student edition'
    assert len(seen) == len(set(seen)) >= 1
    last = [s for s in website.lesson_order(ROOT/'nbs')][-1]
    _open(page, site['base'], f'{last}.html')
    nxt = page.locator('a.right-next')
    assert nxt.count() == 0 or 'student/' not in nxt.get_attribute('href')
    for caption in ('Course', 'Lessons'):
        assert page.locator('nav.bd-links p.caption', has_text=caption).count() == 1, caption
    for stem in [s for s in website.lesson_order(ROOT/'nbs') if not s[0].isdigit()]:
        assert page.locator(f'nav.bd-links a[href="{stem}.html"]').count() == 1, f'{stem} is not in the navigation'
    page.close()
