"""Render README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which this project cannot install).

    python .ci/readme.py          # write README.md
    python .ci/readme.py --check  # exit 1 if README.md is out of date
"""
import json, re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
SETUP_MARK = '# Setup, the same in every notebook'   # tools/colab.py's setup cell never reaches the README

def render(nb_path=root/'nbs'/'index.ipynb') -> str:
    nb = json.loads(Path(nb_path).read_text())
    parts = ['<!-- Generated from nbs/index.ipynb by .ci/readme.py: edit the notebook, not this file. -->']
    for cell in nb['cells']:
        src = ''.join(cell['source']).strip()
        if not src or src.startswith('#|') or SETUP_MARK in src: continue   # directives, hidden cells, the Colab setup cell
        if cell['cell_type'] == 'markdown':
            parts.append(re.sub(r'\]\(((?!https?:)[^)]+\.ipynb)\)', r'](nbs/\1)', src))   # links relative to the repo root
        elif cell['cell_type'] == 'code':
            parts.append('```python\n' + src + '\n```')
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text, readme = render(), root/'README.md'
    if '--check' in sys.argv:
        if not readme.exists() or readme.read_text() != text:
            sys.exit('README.md is out of date with nbs/index.ipynb: run `python .ci/readme.py`')
        print('README.md is in sync with nbs/index.ipynb')
    else:
        readme.write_text(text); print('wrote', readme)
