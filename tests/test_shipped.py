"""The shipped digits encoders (data/pretrained): the manifest's hashes hold, they load by name from a checkout and,
as in a Colab install without data/, from the repository (a web server on 127.0.0.1 stands in for GitHub)."""
import configparser, functools, http.server, json, threading
from pathlib import Path

import pytest
import torch

from amoc_nb import runs
from amoc_nb.checkpoints import encoder_info, load_encoder
from amoc_nb.cli import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT/'data'/'pretrained'
MANIFEST = json.loads((SHIPPED/'MANIFEST.json').read_text())


def test_source_is_settings_ini():
    "runs.SOURCE names the repository and ref that settings.ini's git_url and install_ref name."
    ini = configparser.ConfigParser(delimiters=['='])
    ini.read(ROOT/'settings.ini')
    assert ini['DEFAULT']['git_url'].endswith('/' + runs.SOURCE['repo'])
    assert ini['DEFAULT']['install_ref'] == runs.SOURCE['ref']


def test_manifest_matches_the_files_and_they_load_by_name():
    assert sum(e['bytes'] for e in MANIFEST) <= 20 * 2 ** 20
    for e in MANIFEST:
        f = SHIPPED/e['file']
        assert f.stat().st_size == e['bytes'] and runs.sha256_of(f) == e['sha256'], e['name']
        info = encoder_info(e['name'])
        assert info['variant'] == e['variant'] and info['source'].startswith(f"shipped '{e['name']}'")
        assert info['dataset'] == e['config']['dataset'] and info['epochs'] == e['config']['epochs']
        enc = load_encoder(e['name'])
        with torch.no_grad(): assert enc.eval()(torch.rand(2, 3, 16, 16)).shape == (2, enc.feature_dim)


@pytest.fixture
def github(tmp_path):
    "A web server on 127.0.0.1 serving this checkout's data/pretrained as raw.githubusercontent.com would."
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(ROOT))
    handler.func.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{server.server_port}/{{path}}'
    server.shutdown()


def test_a_colab_install_fetches_and_checks(github, tmp_path, monkeypatch):
    "No data/ folder: the manifest and the file come from the repository into the cache; a second load needs no server."
    monkeypatch.setattr(runs, 'RAW_URL', github)
    monkeypatch.setattr(runs, 'repo_path', lambda rel: tmp_path/'no-checkout'/rel)
    monkeypatch.setenv('AMOC_NB_CACHE', str(tmp_path/'cache'))
    name = MANIFEST[0]['name']
    path, how = runs.resolve(name)
    assert path.is_relative_to(tmp_path/'cache') and 'sha256 checked' in how and runs.sha256_of(path) == MANIFEST[0]['sha256']
    monkeypatch.setattr(runs, 'RAW_URL', 'http://127.0.0.1:9/{path}')       # nothing listens there now
    assert runs.resolve(name)[0] == path
    path.write_bytes(b'damaged')                                              # a damaged cache is fetched again ...
    with pytest.raises(runs.CheckpointError, match='could not download'): runs.resolve(name)   # (no server: a clear error)


def test_linear_eval_takes_a_shipped_name_and_a_path_wins(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ['linear-eval', '--encoder', 'digits-ACC', '--epochs', '1', '--milestones', '1', '--n-test', '40',
            '--eval-steps', '2', '--no-progress']
    assert main(args + ['--out', 'shipped-run']) == 0
    res = json.loads((tmp_path/'shipped-run'/'results.json').read_text())
    assert res['encoder_source'].startswith("shipped 'digits-ACC'") and res['variant'] == 'ACC'
    import shutil
    (tmp_path/'digits-ACC').mkdir()                                           # a run directory of that name wins
    shutil.copy(SHIPPED/'digits-CCC.pt', tmp_path/'digits-ACC'/'checkpoint.pt')
    ccc = next(e for e in MANIFEST if e['name'] == 'digits-CCC')
    (tmp_path/'digits-ACC'/'config.json').write_text(json.dumps(ccc['config']))
    assert main(args + ['--out', 'path-run']) == 0
    res = json.loads((tmp_path/'path-run'/'results.json').read_text())
    assert res['encoder_source'].startswith('digits-ACC (a path)') and res['variant'] == 'CCC'
