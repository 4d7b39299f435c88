"""scripts/clear_widget_state.py: widget state leaves a notebook, every other output stays; --check only reports."""
import importlib.util, json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / 'scripts' / 'clear_widget_state.py'
spec = importlib.util.spec_from_file_location('clear_widget_state', SCRIPT)
cws = importlib.util.module_from_spec(spec); spec.loader.exec_module(cws)


def _notebook(path):
    nb = {'cells': [{'cell_type': 'code', 'source': 'view', 'metadata': {}, 'execution_count': 1, 'outputs': [
              {'output_type': 'display_data', 'metadata': {},
               'data': {cws.WIDGET_VIEW: {'model_id': 'abc'}, 'text/plain': 'VBox()'}},
              {'output_type': 'display_data', 'metadata': {}, 'data': {'image/png': 'iVBOR', 'text/plain': '<Figure>'}}]}],
          'metadata': {'widgets': {'application/vnd.jupyter.widget-state+json': {'state': {}}}},
          'nbformat': 4, 'nbformat_minor': 5}
    path.write_text(json.dumps(nb))
    return path


def test_removes_widget_state_and_keeps_other_outputs(tmp_path):
    p = _notebook(tmp_path / 'w.ipynb')
    os.chmod(p, 0o640)
    assert cws.clear_widget_state(p) == 2                      # metadata.widgets and one widget view
    back = json.loads(p.read_text())
    assert 'widgets' not in back['metadata']
    assert [list(o['data']) for o in back['cells'][0]['outputs']] == [['image/png', 'text/plain']]
    assert oct(p.stat().st_mode & 0o777) == '0o640'            # permissions kept
    assert cws.clear_widget_state(p) == 0                      # nothing left to remove
    assert [q.name for q in tmp_path.iterdir()] == ['w.ipynb']  # no temporary file left behind


def test_keeps_the_static_twin_of_a_widget(tmp_path):
    p = _notebook(tmp_path / 'w.ipynb')
    nb = json.loads(p.read_text())
    nb['cells'][0]['outputs'][0]['data']['image/png'] = 'TWIN'     # a view that also offers a PNG of its figure
    p.write_text(json.dumps(nb))
    assert cws.clear_widget_state(p) == 2
    outs = json.loads(p.read_text())['cells'][0]['outputs']
    assert [o['data'] for o in outs] == [{'image/png': 'TWIN'}, {'image/png': 'iVBOR', 'text/plain': '<Figure>'}]


def test_check_reports_without_changing(tmp_path):
    p = _notebook(tmp_path / 'w.ipynb')
    before = p.read_text()
    r = subprocess.run([sys.executable, str(SCRIPT), '--check', str(p)], capture_output=True, text=True)
    assert r.returncode == 1 and 'holds 2 widget state items' in r.stdout and 'before committing' in r.stderr
    assert p.read_text() == before
    r = subprocess.run([sys.executable, str(SCRIPT), str(p)], capture_output=True, text=True)
    assert r.returncode == 0 and 'removed 2' in r.stdout
    r = subprocess.run([sys.executable, str(SCRIPT), '--check', str(p)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == ''


def test_committed_notebooks_hold_no_widget_state():
    r = subprocess.run([sys.executable, str(SCRIPT), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_unreadable_notebook_is_one_line_error(tmp_path):
    p = tmp_path / 'bad.ipynb'; p.write_text('{not json')
    r = subprocess.run([sys.executable, str(SCRIPT), str(p)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith('clear_widget_state: error:') and len(r.stderr.splitlines()) == 1
