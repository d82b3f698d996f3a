"""Package set-up, read from settings.ini (the nbdev 2 layout, without the old pkg_resources import)."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
extras = {'dev': dev_requirements,
          'lab': cfg.get('lab_requirements', '').split(),           # jupyter lab nbs/
          'docs': cfg.get('docs_requirements', '').split(),         # python tools/website.py (MathJax 3 from a wheel, no CDN)
          'browser': cfg.get('browser_requirements', '').split(),   # tests/test_browser.py (with Debian's chromium)
          'corruptions': ['imagecorruptions-imaug']}   # the generated-corruption preview of lesson 09

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    author=cfg['author'],
    author_email=cfg['author_email'],
    license='Apache Software License 2.0',
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    include_package_data=True,
    install_requires=requirements,
    extras_require=extras,
    python_requires='>=' + cfg['min_python'],
    keywords=cfg['keywords'].split(),
    entry_points={'console_scripts': cfg['console_scripts'].split('\n'),
                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
