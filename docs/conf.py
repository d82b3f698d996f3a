"""Sphinx configuration of the course website (built by `python tools/website.py`, which stages the notebooks first).

Nothing is executed: the pages show the outputs saved in the notebooks. MathJax 3 is served from the site's own
_static/mathjax (copied by tools/website.py from the django-static-mathjax wheel), never from a CDN. docs/_static holds
the course's CSS (a wider column for figures) and JavaScript (click a figure to enlarge it). Each page's prev/next
stays within its edition (tools/website.py passes the two chains); the download button gives the page's notebook.
"""
import json, os, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import colab  # noqa: E402

cfg = colab.settings(ROOT)
STAGE = json.loads(os.environ.get('AMOC_SITE_STAGE', '{}'))     # what tools/website.py staged: static, chains, student_repo

project = cfg['title']
author = cfg['author']
copyright = cfg['copyright']
release = version = cfg['version']

extensions = ['myst_nb']
root_doc = 'index'
exclude_patterns = ['_build', '**.ipynb_checkpoints']
source_suffix = {'.ipynb': 'myst-nb', '.md': 'myst-nb'}

nb_execution_mode = 'off'                 # the saved outputs are the page: nothing re-executes
nb_ipywidgets_js = {}                     # no widget JavaScript from a CDN (the saved notebooks keep no widget state)
nb_merge_streams = True
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence']
myst_heading_anchors = 3                  # links like 05_losses.ipynb#the-seven-losses work
myst_dmath_double_inline = True

mathjax_path = 'mathjax/es5/tex-chtml.js'  # relative to _static: served from local files
html_static_path = ([STAGE['static']] if STAGE.get('static') else []) + [str(ROOT/'docs'/'_static')]
html_css_files = ['course.css']
html_js_files = ['course.js']

html_theme = 'sphinx_book_theme'
html_title = f"{cfg['title']}: the AMOC course"
html_theme_options = {
    'repository_url': cfg['git_url'],
    'repository_branch': cfg.get('install_ref') or cfg.get('branch', 'main'),
    'path_to_docs': cfg.get('nbs_path', 'nbs'),
    'use_repository_button': True,
    'launch_buttons': {'colab_url': 'https://colab.research.google.com'},
    'show_toc_level': 2,
    'collapse_navbar': True,            # a section's pages show in the sidebar only inside it: the student edition's
                                        # pages under 'Student edition', not beside the lessons they share titles with
}
html_last_updated_fmt = None
smartquotes = False                       # δ' is a prime, not a closing quote
html_copy_source = True                   # the download button's _sources/<page>.ipynb (website.py puts the notebook itself there)
html_sourcelink_suffix = ''
html_show_sourcelink = False


def _link(context, docname):
    title = ENV_TITLES.get(docname, docname)
    return {'link': context['pathto'](docname), 'title': title}


ENV_TITLES = {}

def _edition_prev_next(app, pagename, templatename, context, doctree):
    """prev/next within the page's edition (teacher's or student's), never across; the theme's Colab launch button of a
    student page opens the student notebook (top-level student/ when the repository has it, else the lesson)."""
    if not ENV_TITLES:
        ENV_TITLES.update({d: t.astext() for d, t in app.env.titles.items()})
    for chain in STAGE.get('chains', []):
        if pagename in chain:
            i = chain.index(pagename)
            context['prev'] = _link(context, chain[i - 1]) if i > 0 else None
            context['next'] = _link(context, chain[i + 1]) if i + 1 < len(chain) else None
    if pagename.startswith('student/'):
        nbs = cfg.get('nbs_path', 'nbs')
        new = '/student/' if STAGE.get('student_repo') else f'/{nbs}/'
        def fix(buttons):
            for b in buttons:
                if isinstance(b.get('url'), str): b['url'] = b['url'].replace(f'/{nbs}/student/', new)
                fix(b.get('buttons', []))
        fix(context.get('header_buttons', []))


def setup(app):
    app.connect('html-page-context', _edition_prev_next, priority=900)   # after the theme's own buttons and links
