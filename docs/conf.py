"""Sphinx configuration of the course website (built by `python tools/website.py`, which stages the notebooks first).

Nothing is executed: the pages show the outputs saved in the notebooks. MathJax 3 is served from the site's own
_static/mathjax (copied by tools/website.py from the django-static-mathjax wheel), never from a CDN.
"""
import json, os, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import colab  # noqa: E402

cfg = colab.settings(ROOT)
STAGE = json.loads(os.environ.get('AMOC_SITE_STAGE', '{}'))     # what tools/website.py staged: {'static': ...}

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
html_static_path = [STAGE['static']] if STAGE.get('static') else []

html_theme = 'sphinx_book_theme'
html_title = f"{cfg['title']}: the AMOC course"
html_theme_options = {
    'repository_url': cfg['git_url'],
    'repository_branch': cfg.get('install_ref') or cfg.get('branch', 'main'),
    'path_to_docs': cfg.get('nbs_path', 'nbs'),
    'use_repository_button': True,
    'launch_buttons': {'colab_url': 'https://colab.research.google.com'},
    'show_toc_level': 2,
}
html_last_updated_fmt = None
smartquotes = False                       # δ' is a prime, not a closing quote
html_copy_source = False
html_show_sourcelink = False
