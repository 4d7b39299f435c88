#!/usr/bin/env python
"""Check the docs site without Quarto.

1. Copies nbs/ and settings.ini to a temporary folder and processes every notebook exactly as `nbdev_docs` does
   (`nbdev.serve_drv.main` with nbdev's `FilterDefaults`: show_doc cells added and rendered, hidden and exported
   cells removed, directives handled), in one worker process. Notebooks are not run: nbdev only executes the cells
   show_doc needs (exports, cells with imports, show_doc), and so does this check.
2. Renders every processed notebook to HTML with nbconvert, applying the Quarto directives nbdev leaves behind
   (`echo: false`, `output: false`, `include: false`) and the frontmatter title, as Quarto would.
3. Fails, naming the notebook, on: a processing or rendering error, a saved error output, a page without its title,
   a cell that draws a figure (matplotlib, a plot_* function, a view) on a page that shows no figure, a chapter of
   the model, attention, reasoning, head, inspection, views or tutorial whose page shows no figure or table made by
   its examples (chapters are committed executed: `scripts/execute_nbs.py`), an output naming an absolute path,
   a show_doc that did not render, an exported public function or class (`__all__` in agiformer/*.py) without a
   show_doc, a module no notebook exports, nbs/nbdev.yml differing from what nbdev_docs writes (it regenerates it;
   nbs/_quarto.yml is ours), and a chapter that nbs/sidebar.yml (ours: `custom_sidebar = True`, grouped in sections)
   does not list exactly once.
4. Fails when a figure of a benchmark has no JSON source:
   a. README.md's Measurements table differs from what `bench/measurements.py` makes of the committed
      bench/results/*.json (after a new measurement: re-execute nbs/index.ipynb, then `python scripts/make_readme.py`);
   b. a markdown cell of a chapter (or of the index) types a benchmark's figure by hand (`hand_typed_figures`): a
      number with a unit of speed (B/s, bytes/s, s/step, ms per patch, "x faster") anywhere, or with a unit of time,
      memory or a ratio (ms, us, s, min, GB, GiB, MiB, MB, "2.3x") in a paragraph that names a `bench/` script or in a
      sentence that says "measured", "bench" or "quoted"; in a Markdown table, a row whose cells hold numbers under a
      unit in the row or its header, when the row, the header or the paragraph above names a script or says so. Such
      figures belong in a code cell that reads the JSON the script wrote (or the performance appendix does it, and the
      prose points there). A chapter's own printed outputs are not markdown, and are not checked.
5. If chromium and chromedriver are installed, opens one rendered page in headless Chromium (Selenium, as
   tests/test_browser.py drives it) and checks that it shows its title and at least one figure. Without them it
   says so and skips that part.

Usage: python scripts/docs_check.py [--out DIR] [--json FILE] [--browser auto|skip|require] [--page 13_tutorial]
Exit status 0 when every check passed.
"""
import argparse, ast, html, importlib.util, json, os, re, shutil, subprocess, sys, tempfile, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS, LIB = ROOT / 'nbs', ROOT / 'agiformer'


# ---- 1. nbdev processing ----

def process(nbs: list, work: Path) -> dict:
    "Process `nbs` (under work/nbs) into work/_proc/: one worker process, run in `work` for its settings.ini."
    (work / '_proc').mkdir()
    res_file = work / '_proc.json'
    r = subprocess.run([sys.executable, __file__, '--worker', str(res_file), *map(str, nbs)], cwd=work,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    res = json.loads(res_file.read_text()) if res_file.exists() else {}
    for p in nbs:                                      # a worker that died leaves its last notebooks without a result
        res.setdefault(p.stem, {'error': f'the worker exited {r.returncode}: {r.stdout[-2000:]}', 'notes': [],
                                'seconds': 0})
    return res


def _worker(res_file: str, nbs: list):
    "Process each notebook with `nbdev.serve_drv.main`, the function `nbdev_docs` maps over notebooks; save the results."
    import warnings
    import nbdev.serve_drv
    from nbdev.processors import FilterDefaults
    res = {}
    for src in map(Path, nbs):
        t0 = time.time()
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter('always')
            try: nbdev.serve_drv.main((src, src.parent.parent / '_proc' / src.name, FilterDefaults)); err = None
            except Exception as e: err = _error_text(e)
        notes = [_warning_note(str(w.message)) for w in ws if 'nbdev' in w.filename]
        res[src.stem] = {'error': err, 'notes': list(dict.fromkeys(notes)), 'seconds': round(time.time() - t0, 1)}
        Path(res_file).write_text(json.dumps(res))


def _error_text(e: Exception) -> str:
    "nbdev's error (the failing cell, shortened) and its cause, with the usual fix for a NameError."
    cause = e.__cause__ or e.__context__
    lines = str(e).splitlines()
    msg = '\n'.join(lines[:8] + (['    ...'] if len(lines) > 8 else []))
    if cause: msg += f"\n{type(cause).__name__}: {cause}"
    if isinstance(cause, NameError):
        msg += ("\nnbdev_docs runs every cell that contains an import (and exports and show_docs), nothing else: "
                "move this cell's imports to the notebook's import cell")
    return msg


def _warning_note(msg: str) -> str:
    "nbdev's warning, short: for a mixed cell, its first line (nbdev_docs executes such cells: keep imports apart)."
    if msg.startswith('Found cells containing imports and other code'):
        src = [l for l in msg.split('---')[1].splitlines() if l.strip()] if '---' in msg else ['?']
        return f"a cell mixes imports with other code, so nbdev_docs executes it: {src[0][:80]!r} ({len(src)} lines)"
    return msg.strip().splitlines()[0]


# ---- 2. rendering with nbconvert ----

_DIRECTIVE = re.compile(r'^#\|\s*([\w-]+):\s*(.*?)\s*$')
_PANDOC_ATTRS = re.compile(r'\)\{[^}\n]*\}')


def _quarto_cells(nb) -> dict:
    "Apply what Quarto would do with nbdev's output: frontmatter -> title block, cell directives -> nbconvert tags."
    import nbformat, yaml
    fm, cells = {}, []
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.lstrip().startswith('---') and not fm:
            fm = yaml.safe_load(c.source.strip().strip('-')) or {}
            block = f"# {fm.get('title', '')}" + (f"\n\n> {fm['description']}" if fm.get('description') else '')
            cells.append(nbformat.v4.new_markdown_cell(block)); continue
        if c.cell_type == 'code':
            lines, opts = c.source.splitlines(), {}
            while lines and (m := _DIRECTIVE.match(lines[0])): opts[m[1]] = m[2].lower(); lines.pop(0)
            c.source = '\n'.join(lines)
            tags = c.metadata.setdefault('tags', [])
            if opts.get('include') == 'false': continue
            if opts.get('echo') == 'false' or not c.source.strip(): tags.append('remove_input')
            if opts.get('output') == 'false': tags.append('remove_output')
            for o in c.get('outputs', []):                       # pandoc link attributes: Quarto reads, nbconvert shows
                md = o.get('data', {}).get('text/markdown')
                if md: o['data']['text/markdown'] = _PANDOC_ATTRS.sub(')', ''.join(md) if isinstance(md, list) else md)
        cells.append(c)
    nb.cells = cells
    return fm


def render(proc_nb: Path, out_html: Path) -> dict:
    "Render one processed notebook to HTML; return its frontmatter and what the page shows."
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    nb = nbformat.read(proc_nb, as_version=4)
    errors = [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb.cells) if c.cell_type == 'code'
              for o in c.get('outputs', []) if o.get('output_type') == 'error']
    shown = show_doc_names(nb)
    fm = _quarto_cells(nb)
    if not (nb.metadata.get('widgets', {}).get('application/vnd.jupyter.widget-state+json', {}) or {}).get('state'):
        nb.metadata.pop('widgets', None)                           # no state: no widget scripts to fetch
    nb.metadata['title'] = fm.get('title', '')
    cfg = Config({'TagRemovePreprocessor': {'enabled': True, 'remove_input_tags': ['remove_input'],
                                            'remove_all_outputs_tags': ['remove_output']},
                  'TemplateExporter': {'exclude_input_prompt': True, 'exclude_output_prompt': True}})
    body, _ = HTMLExporter(config=cfg, template_name='lab').from_notebook_node(nb, resources={'metadata': {'name': ''}})
    out_html.write_text(body, encoding='utf-8')
    heads = {_text(h) for h in re.findall(r'<h[1-4][^>]*>(.*?)</h[1-4]>', body, flags=re.S)}
    res = results(nb)
    res['img_tags'] = len(re.findall(r'<img\b', body))
    h1 = [_text(h) for h in re.findall(r'<h1[^>]*>(.*?)</h1>', body, flags=re.S)]
    page_title = _text(m[1]) if (m := re.search(r'<title>(.*?)</title>', body, flags=re.S)) else ''
    return {'frontmatter': fm, 'page_title': page_title, 'h1': h1, 'headings': heads, 'show_doc': shown,
            'saved_errors': errors, **res}


PLOTS = re.compile(r'\b(plt\.|plot_\w+\(|\.plot\(|imshow\(|savefig\(|\w+View\(|NbFigure\()')
PATHS = re.compile(r'(/work/|/home/|/tmp/|/root/|/Users/|[A-Z]:\\\\Users)')
# chapters whose pages must show at least one figure or table that a cell made (not a show_doc table)
NEED_RESULTS = ('02a_attention', '03_reasoning', '04_head', '05_model', '11_inspect', '12_views', '13_tutorial')


def results(nb) -> dict:
    "What a processed notebook's outputs show: figures and tables made by its cells (not show_doc), and machine paths."
    figs, tables, paths = 0, 0, []
    for i, c in enumerate(nb.cells):
        if c.cell_type != 'code' or 'show_doc(' in c.source: continue
        for o in c.get('outputs', []):
            d = o.get('data', {})
            figs += any(k.startswith('image/') for k in d)
            html_out, md = ''.join(d.get('text/html', '')), ''.join(d.get('text/markdown', ''))
            tables += '<table' in html_out or bool(re.search(r'^\s*\|.*\|\s*$', md, flags=re.M))
            text = ''.join(o.get('text', '')) + ''.join(d.get('text/plain', '')) + html_out + md
            if m := PATHS.search(text): paths.append(f"cell {i}: {text[max(0, m.start() - 40):m.end() + 40]!r}")
    return {'figures': figs, 'tables': tables, 'abs_paths': paths}


def drawing_cells(nb_path: Path) -> list:
    "Indices of the cells that `nbdev_test` runs (`scripts/execute_nbs.py`'s rule) and the page shows, and that draw."
    ex, nbio = _script_mod('execute_nbs'), importlib.import_module('execnb.nbio')
    flags, out = ex.test_flags(), []
    for i, c in enumerate(nbio.read_nb(nb_path).cells):
        if not ex.runs(c, flags) or ex.extract_directives(c, remove=False).keys() & {'export', 'exporti', 'hide'}: continue
        code = '\n'.join(l for l in c.source.splitlines() if not l.lstrip().startswith('#'))
        if PLOTS.search(code): out.append(i)
    return out


def _text(s: str) -> str:
    "Visible text of an HTML fragment or a markdown title, normalised for comparison."
    s = html.unescape(re.sub(r'<[^>]+>', '', s))
    return ' '.join(s.replace('`', '').replace('¶', '').split())


_HEADING = re.compile(r'^#{2,4}\s+(\S+)\s*$', flags=re.M)


def show_doc_names(nb) -> set:
    "Names whose show_doc rendered in a processed notebook: the heading of each show_doc markdown output."
    names = set()
    for c in nb.cells:
        if c.cell_type != 'code' or 'show_doc(' not in c.source: continue
        for o in c.get('outputs', []):
            md = o.get('data', {}).get('text/markdown', '')
            names.update(_HEADING.findall(''.join(md) if isinstance(md, list) else md))
    return names


# ---- 3. the exported API and the site configuration ----

def public_api() -> dict:
    "{module: [public functions and classes]}: the names in each module's `__all__` that it defines with def/class."
    api = {}
    for py in sorted(LIB.glob('*.py')):
        if py.stem.startswith('_'): continue
        tree = ast.parse(py.read_text(encoding='utf-8'))
        alls = [n.value for n in tree.body
                if isinstance(n, ast.Assign) and any(getattr(t, 'id', '') == '__all__' for t in n.targets)]
        names = ast.literal_eval(alls[0]) if alls else []
        defs = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        api[py.stem] = [n for n in names if n in defs]
    return api


def default_exp(nb_path: Path) -> str:
    "The module a notebook exports to (`#| default_exp`), or ''."
    m = re.search(r'#\|\s*default_exp\s+([\w.]+)', nb_path.read_text(encoding='utf-8'))
    return m[1] if m else ''


def config_problems(nbs: list) -> list:
    "Problems with nbs/_quarto.yml and the files nbdev_docs regenerates (nbdev.yml, sidebar.yml)."
    import contextlib, io, yaml
    from nbdev.config import get_config
    from nbdev.quarto import _nbdev_yml, nbdev_sidebar
    from fastcore.basics import str2bool
    fails = []
    q = NBS / '_quarto.yml'
    if not q.exists(): return ["nbs/_quarto.yml is missing: nbdev_docs would write nbdev's default"]
    quarto = yaml.safe_load(q.read_text())
    for f in quarto.get('metadata-files', []):
        if not (NBS / f).exists(): fails.append(f"nbs/_quarto.yml names metadata file {f}, which is missing")
    css = quarto.get('format', {}).get('html', {}).get('css')
    if css and not (NBS / css).exists(): fails.append(f"nbs/_quarto.yml names css {css}, which is missing")
    # nbdev_docs rewrites these two from settings.ini and the notebooks: the committed copies must match
    cfg = get_config()
    vals = {k: cfg[k] for k in ['title', 'description', 'branch', 'git_url', 'doc_host', 'doc_baseurl']}
    want = {'nbdev.yml': _nbdev_yml.format(doc_path=cfg.doc_path.name, **vals)}
    if not str2bool(cfg.get('custom_sidebar', 'False')):       # nbdev writes the sidebar; else it is ours (grouped), kept as it is
        with contextlib.redirect_stdout(io.StringIO()) as buf: nbdev_sidebar(path=str(NBS), printit=True, force=True)
        want['sidebar.yml'] = buf.getvalue()
    for f, text in want.items():
        have = (NBS / f).read_text() if (NBS / f).exists() else ''
        if have.strip() != text.strip():
            fails.append(f"nbs/{f} differs from what nbdev_docs writes (from settings.ini and the notebooks):\n{text}")
    side = yaml.safe_load((NBS / 'sidebar.yml').read_text()) if (NBS / 'sidebar.yml').exists() else {}
    def entries(items):
        for it in items or []:
            if isinstance(it, dict): yield from entries(it.get('contents'))
            else: yield it
    listed = list(entries(((side or {}).get('website') or {}).get('sidebar', {}).get('contents')))
    for p in nbs:
        if listed.count(p.name) != 1: fails.append(f"{p.name}: listed {listed.count(p.name)} times in nbs/sidebar.yml, not once")
    fails += [f"nbs/sidebar.yml lists {x}, which is not in nbs/" for x in listed if not (NBS / x).exists()]
    return fails


# ---- 4. figures with a JSON source ----

def _bench_module():
    "bench/measurements.py, which makes the README's Measurements table from bench/results/*.json."
    return _load(ROOT / 'bench' / 'measurements.py', 'agiformer_bench_measurements')


def readme_table(text: str) -> str:
    "The Markdown table under README's '## Measurements' heading ('' without one)."
    sec = re.split(r'^## Measurements\s*$', text, maxsplit=1, flags=re.M)
    if len(sec) < 2: return ''
    out = []
    for line in sec[1].split('\n## ')[0].splitlines():
        if line.startswith('|'): out.append(line.rstrip())
        elif out: break
    return '\n'.join(out)


def measurement_problems(readme: Path = ROOT / 'README.md') -> list:
    "README.md's Measurements table against what bench/measurements.py makes of the committed results."
    want, have = _bench_module().table(), readme_table(readme.read_text(encoding='utf-8'))
    if have == want: return []
    old, new = set(have.splitlines()), set(want.splitlines())
    diff = [f"  README only: {l[:160]}" for l in have.splitlines() if l not in new]
    diff += [f"  results only: {l[:160]}" for l in want.splitlines() if l not in old]
    return ["README.md's Measurements table differs from bench/results/*.json (bench/measurements.py): re-execute the "
            "index (python scripts/execute_nbs.py nbs/index.ipynb), then python scripts/make_readme.py\n" + '\n'.join(diff[:12])]


_NUM = r'(?<![\w.])\d[\d,]*(?:\.\d+)?'
_RANGE = _NUM + r'(?:\s*(?:-|to|/)\s*' + _NUM + r')*'
SPEED = re.compile(_RANGE + r'\s*(?:[KMG]?B/s|bytes/s|bytes per second|s/step|seconds? per step|ms per (?:patch|step|byte)|'
                   r'ms/(?:patch|step|byte)|x (?:faster|slower)|times (?:faster|slower))', re.I)
AMOUNT = re.compile(_RANGE + r'(?:\s*(?:ms|us|µs|μs|s|min|minutes?|seconds?|hours?|GB|GiB|MiB|MB|KiB)\b|x\b)')
UNIT_WORD = re.compile(r'B/s|bytes/s|bytes per second|s/step|seconds|per step|\bms\b|\bus\b|\bGB\b|GiB|MiB|\bMB\b|'
                       r'faster|slower', re.I)
NAMES_SCRIPT = re.compile(r'\bbench/\w+\.py|scripts/quickstart')
SAYS_MEASURED = re.compile(r'\bmeasur(?:ed|es|ing)\b|\bbench\b|\bquoted\b', re.I)


def _sentences(text: str) -> list: return re.split(r'(?<=[.!?])\s+(?=[A-Z`(*\[])', text)


def _figures(text: str, named: bool) -> list:
    "Benchmark figures in `text`: speeds always, times, sizes and ratios where a script is named or a sentence says measured."
    out = []
    for s in _sentences(text):
        out += [m.group(0) for m in SPEED.finditer(s)]
        if named or SAYS_MEASURED.search(s): out += [m.group(0) for m in AMOUNT.finditer(s)]
    return list(dict.fromkeys(' '.join(f.split()) for f in out))


def hand_typed_figures(source: str) -> list:
    "The benchmark figures typed by hand in one markdown cell's source (see the module docstring, 4b)."
    found, above = [], ''
    for para in re.split(r'\n\s*\n', re.sub(r'```.*?```', '', source, flags=re.S)):
        rows = para.strip().splitlines()
        if rows and all(r.lstrip().startswith('|') for r in rows):                  # a table: row by row
            head = rows[0]
            for r in rows[2:]:
                context = r + head + above
                named = bool(NAMES_SCRIPT.search(context) or SAYS_MEASURED.search(context))
                figs = _figures(r, named)
                if not figs and named and UNIT_WORD.search(r + head):        # bare numbers under a unit
                    figs = [c.strip() for c in r.split('|')[2:] if re.match(r'\s*' + _NUM, c)][:1]
                found += figs
        else:
            found += _figures(para, bool(NAMES_SCRIPT.search(para)))
            above = para
    return found


def figure_problems(nbs: list) -> list:
    "Markdown cells of `nbs` that type benchmark figures by hand."
    fails = []
    for p in nbs:
        for c in json.loads(p.read_text(encoding='utf-8'))['cells']:                # raw: cell ids as committed
            if c['cell_type'] != 'markdown' or not (figs := hand_typed_figures(''.join(c['source']))): continue
            fails.append(f"{p.name}, markdown cell {c.get('id')}: benchmark figures typed by hand ({', '.join(figs[:6])}"
                         f"{', ...' if len(figs) > 6 else ''}): read them from bench/results/<script>.json in a code cell, "
                         f"or point at the performance appendix (nbs/16a_performance.ipynb) without the number")
    return fails


# ---- 5. one page in headless Chromium ----

def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def _script_mod(name: str):
    "scripts/NAME.py as a module."
    return _load(ROOT / 'scripts' / f'{name}.py', f'agiformer_{name}')

def _browser_mod():
    "tests/test_browser.py, for its `chrome` (Selenium with the system chromedriver) and `_wait`."
    return _load(ROOT / 'tests' / 'test_browser.py', 'agiformer_test_browser')


PAGE_JS = """
const imgs = [...document.images];
return {ready: document.readyState, title: document.title,
        h1: [...document.querySelectorAll('h1')].map(h => h.textContent),
        images: imgs.length, drawn: imgs.filter(i => i.complete && i.naturalWidth > 0).length};
"""


def browser_check(page: Path, title: str) -> dict:
    "Open `page` in headless Chromium (Selenium, tests/test_browser.py's `chrome`); return what it shows and the problems."
    b = _browser_mod()
    work = Path(tempfile.mkdtemp(prefix='agiformer-docs-browser-'))
    driver = None
    try:
        driver = b.chrome(work)
        driver.get(page.resolve().as_uri())
        seen = b._wait(lambda: (lambda s: s if s['ready'] == 'complete' else None)(driver.execute_script(PAGE_JS)), 60,
                       'the page to load')
        want = _text(title)
        probs = []
        if want not in _text(seen['title']): probs.append(f"the browser's tab title is {seen['title']!r}, not {want!r}")
        if not any(want in _text(h) for h in seen['h1']): probs.append(f"no <h1> shows the title {want!r}: {seen['h1']}")
        if seen['drawn'] < 1: probs.append(f"no figure drawn ({seen['images']} <img>, none with a natural width)")
        return {**seen, 'problems': probs}
    finally:
        if driver is not None:
            try: driver.quit()
            except Exception: pass
        shutil.rmtree(work, ignore_errors=True)


# ---- the whole check ----

def check(out: Path, browser: str='auto', page: str='13_tutorial') -> dict:
    "Run every check, writing pages to out/; a report whose `failures` ([kind, message] pairs) is empty when all passed."
    t0 = time.time()
    nbs = sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith(('_', '.')))
    failures, notes = [], []
    def fail(kind, msg): failures.append([kind, msg])
    for m in config_problems(nbs): fail('config', m)
    for m in measurement_problems(): fail('measurements', m)
    for m in figure_problems(nbs): fail('figures', m)
    work = Path(tempfile.mkdtemp(prefix='agiformer-docs-'))
    try:
        shutil.copy(ROOT / 'settings.ini', work)
        shutil.copytree(NBS, work / 'nbs', ignore=shutil.ignore_patterns('_proc', '_docs', '.*'))
        procs = process([work / 'nbs' / p.name for p in nbs], work)
        t_proc = time.time() - t0
        out.mkdir(parents=True, exist_ok=True)
        pages = {}
        for p in nbs:
            r = procs[p.stem]
            notes += [f"{p.name}: {n}" for n in r['notes']]
            if r['error']: fail('process', f"{p.name}: nbdev processing (as in nbdev_docs) failed:\n{r['error']}"); continue
            try: pg = pages[p.stem] = render(work / '_proc' / p.name, out / f'{p.stem}.html')
            except Exception:
                fail('render', f"{p.name}: nbconvert rendering failed:\n{traceback.format_exc(limit=4)}"); continue
            title = pg['frontmatter'].get('title', '')
            if not title: fail('title', f"{p.name}: no title: the first markdown cell should be '# Title' then '> summary'")
            elif _text(title) not in pg['page_title'] or not any(_text(title) in h for h in pg['h1']):
                fail('title', f"{p.name}: the page lacks its title {title!r} (<title> {pg['page_title']!r}, h1 {pg['h1']})")
            if title and not pg['frontmatter'].get('description'):
                notes.append(f"{p.name}: no '> summary' line under the title")
            for e in pg['saved_errors']: fail('error_output', f"{p.name}: saved error output: {e}")
            if (draws := drawing_cells(p)) and not pg['figures']:
                fail('outputs', f"{p.name}: cell {draws[0]} draws a figure but the page shows none: run "
                                f"`python scripts/execute_nbs.py nbs/{p.name}` and commit the outputs")
            elif pg['figures'] > pg['img_tags']:
                fail('outputs', f"{p.name}: {pg['figures']} figure outputs but {pg['img_tags']} <img> on the page")
            if p.stem in NEED_RESULTS and not (pg['figures'] or pg['tables']):
                fail('outputs', f"{p.name}: the page shows no figure or table made by its examples: run "
                                f"`python scripts/execute_nbs.py nbs/{p.name}` and commit the outputs")
            for x in pg['abs_paths']: fail('outputs', f"{p.name}: an output names a machine's path, {x}")
            for n in sorted(pg['show_doc'] - pg['headings']):
                fail('render', f"{p.name}: show_doc({n}) rendered, but not on the page")
        missing = api_coverage(nbs, pages, fail, notes)
        t_render = time.time() - t0 - t_proc
        b = page_in_browser(out, pages, page, fail) if browser != 'skip' else {'status': 'skipped (--browser skip)'}
        if browser == 'require' and b['status'].startswith('skipped'): fail('browser', b['status'])
        return {'notebooks': len(nbs), 'rendered': sorted(pages), 'failures': failures, 'notes': notes,
                'missing_show_doc': missing, 'browser': b, 'out': str(out),
                'seconds': {'process': round(t_proc, 1), 'render': round(t_render, 1), 'total': round(time.time() - t0, 1),
                            'per_notebook': {k: v['seconds'] for k, v in procs.items()}}}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def api_coverage(nbs: list, pages: dict, fail, notes: list) -> dict:
    "Exported public functions and classes without a show_doc anywhere in the docs: {notebook: [names]}."
    shown = set().union(*(pg['show_doc'] for pg in pages.values()))
    mod2nb = {default_exp(p): p.name for p in nbs}
    missing, unchecked = {}, []
    for mod, names in public_api().items():
        if mod not in mod2nb:
            fail('show_doc', f"agiformer/{mod}.py: no notebook has `#| default_exp {mod}`: not in the docs"); continue
        nb = mod2nb[mod]
        if Path(nb).stem not in pages: unchecked.append(nb); continue     # its failure is already reported
        if miss := [n for n in names if n not in shown]:
            missing[nb] = miss
            fail('show_doc', f"{nb}: exported without a show_doc: {', '.join(miss)} (add `show_doc(name)` after each)")
    if unchecked: notes.append(f"show_doc coverage not checked for {', '.join(unchecked)}: their processing failed")
    return missing


def page_in_browser(out: Path, pages: dict, page: str, fail) -> dict:
    "The browser part: open out/{page}.html in headless Chromium when it is installed."
    bm = _browser_mod()
    if not (bm.CHROMIUM and bm.DRIVER):
        return {'status': 'skipped: chromium and chromedriver not found (apt-get install -y chromium chromium-driver)'}
    if page not in pages:
        fail('browser', f"browser check: {page}.ipynb was not rendered"); return {'status': 'not run'}
    try: seen = browser_check(out / f'{page}.html', pages[page]['frontmatter'].get('title', ''))
    except Exception as e:
        fail('browser', f"browser check on {page}.ipynb failed: {e!r}"); return {'status': f'error: {e!r}'}
    for x in seen['problems']: fail('browser', f"{page}.ipynb in Chromium: {x}")
    return {'status': 'ran', 'page': f'{page}.html', **seen}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', help='folder for the rendered pages (default: a temporary folder, removed)')
    ap.add_argument('--json', help='also write the report to this JSON file')
    ap.add_argument('--browser', choices=['auto', 'skip', 'require'], default='auto',
                    help='auto: run the Chromium check when chromium and chromedriver exist')
    ap.add_argument('--page', default='13_tutorial', help='notebook (stem) whose page the browser opens (one with figures)')
    a = ap.parse_args()
    out = Path(a.out).resolve() if a.out else Path(tempfile.mkdtemp(prefix='agiformer-docs-html-'))
    js = Path(a.json).resolve() if a.json else None
    os.chdir(ROOT)                                                  # nbdev reads settings.ini from the cwd
    try: rep = check(out, a.browser, a.page)
    finally:
        if not a.out: shutil.rmtree(out, ignore_errors=True)
    if js: js.write_text(json.dumps(rep, indent=1, default=sorted))
    for n in rep['notes']: print(f"note: {n}")
    s, br = rep['seconds'], rep['browser']
    print(f"docs check: {len(rep['rendered'])}/{rep['notebooks']} notebooks processed and rendered "
          f"({s['process']} s nbdev processing, {s['render']} s rendering, {s['total']} s in all)")
    print(f"browser: {br['status']}" + (f" ({br['page']}: title {br['title']!r}, {br['drawn']}/{br['images']} images drawn)"
                                        if br['status'] == 'ran' else ''))
    if rep['failures']:
        print(f"\nFAIL: {len(rep['failures'])} problem(s):")
        for _, f in rep['failures']: print(f"- {f}")
        sys.exit(1)
    print('OK: every page renders with its title, and every exported function and class has a show_doc')


if __name__ == '__main__':
    if sys.argv[1:2] == ['--worker']: _worker(sys.argv[2], sys.argv[3:])
    else: main()
