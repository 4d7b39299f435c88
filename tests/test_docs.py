"""The docs site, checked without Quarto by scripts/docs_check.py: every notebook processed as `nbdev_docs` does and
rendered with nbconvert, titles, show_doc coverage of the exported API, the site configuration, and (when chromium
and chromedriver are installed) one page in headless Chromium. About 45 s on 2 cores.
"""
import importlib.util, json, subprocess, sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / 'scripts' / 'docs_check.py'


def _load_check():
    spec = importlib.util.spec_from_file_location('docs_check', CHECK)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    "Run the whole check once; its JSON report, plus its exit status and output."
    d = tmp_path_factory.mktemp('docs')
    r = subprocess.run([sys.executable, str(CHECK), '--out', str(d / 'html'), '--json', str(d / 'report.json')],
                       capture_output=True, text=True, timeout=1200)
    if not (d / 'report.json').exists():
        pytest.fail(f"docs_check.py crashed (exit {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return {**json.loads((d / 'report.json').read_text()), 'rc': r.returncode, 'stdout': r.stdout}


def _fails(rep, *kinds) -> str:
    return '\n'.join(f'- {m}' for k, m in rep['failures'] if k in kinds)


def test_render_applies_frontmatter_and_directives(tmp_path):
    "What Quarto would do with nbdev's output: the title block, `echo: false`, `include: false`, `output: false`."
    dc = _load_check()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_raw_cell('---\ndescription: One line.\ntitle: A chapter\n---\n'),
        nbformat.v4.new_code_cell('#| echo: false\nshown_output()', outputs=[
            nbformat.v4.new_output('stream', name='stdout', text='VISIBLE\n')]),
        nbformat.v4.new_code_cell('#| include: false\nsecret_cell()'),
        nbformat.v4.new_code_cell('#| output: false\nkept_source()', outputs=[
            nbformat.v4.new_output('stream', name='stdout', text='HIDDEN\n')]),
        nbformat.v4.new_code_cell('show_doc(f)', outputs=[nbformat.v4.new_output('display_data', data={
            'text/markdown': '---\n\n[source](https://x/y.py#L1){target="_blank"}\n\n### f\n\n*Doc.*'})])])
    nbformat.write(nb, tmp_path / 'a.ipynb')
    pg = dc.render(tmp_path / 'a.ipynb', tmp_path / 'a.html')
    html = (tmp_path / 'a.html').read_text()
    assert pg['frontmatter']['title'] == 'A chapter' and pg['page_title'] == 'A chapter' and pg['h1'] == ['A chapter']
    assert 'One line.' in html and 'VISIBLE' in html and 'kept_source' in html
    assert 'shown_output' not in html and 'secret_cell' not in html and 'HIDDEN' not in html
    assert pg['show_doc'] == {'f'} and 'f' in pg['headings'] and 'target=' not in html.split('id="f"')[0][-2000:]


def test_api_coverage_names_what_lacks_a_show_doc():
    "The coverage check reads `__all__` (functions and classes only) and names the notebook of each missing one."
    dc = _load_check()
    nbs = [ROOT / 'nbs' / '00_core.ipynb']
    fails, notes = [], []
    missing = dc.api_coverage(nbs, {'00_core': {'show_doc': {'AGIConfig', 'bpc'}}}, lambda k, m: fails.append(m), notes)
    assert 'check_bytes' in missing['00_core.ipynb'] and 'AGIConfig' not in missing['00_core.ipynb']
    assert 'PRESETS' not in missing['00_core.ipynb']                 # a constant, not a function or class
    assert any(m.startswith('00_core.ipynb: exported without a show_doc: ') for m in fails)


def test_site_config(report):
    "nbs/_quarto.yml is complete, nbs/nbdev.yml is what nbdev_docs would write, and nbs/sidebar.yml (grouped) lists every chapter once."
    assert not _fails(report, 'config'), _fails(report, 'config')


def test_every_notebook_processes_and_renders(report):
    bad = _fails(report, 'process', 'render', 'error_output')
    assert not bad, f"the docs build would fail or show errors:\n{bad}"
    assert len(report['rendered']) == report['notebooks']


def test_every_page_has_its_title(report):
    assert not _fails(report, 'title'), _fails(report, 'title')


def test_every_exported_function_and_class_has_show_doc(report):
    assert not _fails(report, 'show_doc'), _fails(report, 'show_doc')


def test_browser_shows_title_and_figure(report):
    b = report['browser']
    if b['status'].startswith('skipped'): pytest.skip(b['status'])
    assert not _fails(report, 'browser'), _fails(report, 'browser')
    assert b['drawn'] >= 1 and b['title']


def test_exit_status_follows_failures(report):
    assert report['rc'] == (1 if report['failures'] else 0), report['stdout'][-3000:]


def test_chapters_are_committed_with_their_results(report):
    "Pages that draw show figures; the model ... tutorial pages show a figure or table; no output names a machine path."
    assert not _fails(report, 'outputs'), _fails(report, 'outputs')


def test_outputs_check_can_fail(tmp_path):
    "The results found on a page: a figure and a table count, a show_doc table does not, a machine's path is named."
    dc = _load_check()
    png = 'iVBORw0KGgo='
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('show_doc(f)', outputs=[nbformat.v4.new_output('display_data', data={
            'text/markdown': '| a | b |\n| --- | --- |\n| 1 | 2 |'})]),
        nbformat.v4.new_code_cell('fig', outputs=[nbformat.v4.new_output('display_data', data={'image/png': png})]),
        nbformat.v4.new_code_cell('print(path)', outputs=[nbformat.v4.new_output('stream', name='stdout',
                                                                                  text='saved /tmp/abc/model.safetensors\n')])])
    res = dc.results(nb)
    assert (res['figures'], res['tables']) == (1, 0) and 'cell 2' in res['abs_paths'][0]
    src = tmp_path / 'x.ipynb'
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('#| export\nclass AView(View): pass'),
                                                   nbformat.v4.new_code_cell('ax.plot([1, 2])')]), src)
    assert dc.drawing_cells(src) == [1]                     # exported code draws nothing when the page is built


def test_figures_have_a_json_source(report):
    "README's Measurements table is what bench/measurements.py makes of bench/results/, and no chapter types a bench figure."
    assert not _fails(report, 'measurements', 'figures'), _fails(report, 'measurements', 'figures')


def test_hand_typed_figures_rule(tmp_path):
    "The rule fires on benchmark figures typed into prose or tables, and not on sizes, counts or a chapter's own words."
    dc = _load_check()
    fires = {
        "`bench/memory.py` measured 0.57 / 1.13 / 5.17 GB at 1 / 4 / 16 KB.": '0.57 / 1.13 / 5.17 GB',
        "The stateful loop decodes 846 B/s on this machine.": '846 B/s',                   # a speed: always
        "In one run of the same bench, the GELU of one row took 7.5 us.": '7.5 us',
        "Training is 2.3x faster with the kernels.": '2.3x faster',
        "A paragraph naming `bench/generate_speed.py`.\n\n| path | bytes/s |\n| --- | --- |\n| original loop | 41.3 |": '41.3',
        "`python bench/generate_speed.py` prints it. In run A a patch took 4.5 ms, 4.8x the limit.": '4.5 ms',
    }
    for text, fig in fires.items(): assert fig in dc.hand_typed_figures(text), (text, dc.hand_typed_figures(text))
    quiet = ["enwik8 is distributed as a 36 MB zip; the standard benchmark for byte-level models.",
             "At 65,536 bytes the scores take 1 GiB per head and layer.",                    # arithmetic, no measurement
             "`bench/memory.py` measures what a training step costs; the performance appendix has its figures.",
             "The command below measures it:\n\n```sh\npython bench/throughput.py  # about 10 min, 2.6x\n```",
             "| what | size |\n| --- | --- |\n| data in memory | 720 MB |"]
    for text in quiet: assert dc.hand_typed_figures(text) == [], (text, dc.hand_typed_figures(text))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("Decoding: 846 B/s (`bench/generate_speed.py`).")])
    nb.cells[0].id = 'speed'
    nbformat.write(nb, tmp_path / 'x.ipynb')
    (fail,) = dc.figure_problems([tmp_path / 'x.ipynb'])
    assert fail.startswith('x.ipynb, markdown cell speed: benchmark figures typed by hand (846 B/s)'), fail


def test_measurements_table_check(tmp_path):
    "README's table against bench/measurements.py: equal passes, a hand-edited figure fails with what to run."
    dc = _load_check()
    table = dc._bench_module().table()
    readme = tmp_path / 'README.md'
    readme.write_text(f"# x\n\n## Measurements\n\nSome words.\n\n{table}\n\nMore words.\n\n## Next\n")
    assert dc.readme_table(readme.read_text()) == table and dc.measurement_problems(readme) == []
    readme.write_text(readme.read_text().replace(table.splitlines()[-1], table.splitlines()[-1].replace('|', '| 9.99', 2)))
    (fail,) = dc.measurement_problems(readme)
    assert 're-execute the index' in fail and 'README only: ' in fail and 'results only: ' in fail, fail
