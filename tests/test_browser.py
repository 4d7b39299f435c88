"""The views in a real browser: JupyterLab on 127.0.0.1, the views chapter and the tutorial (quick mode) opened in
headless Chromium and run; in each notebook every view (BPCView, ThinkingView, DepthSweepView) gets one control moved,
and its figure must change.

Runs by default with Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium chromium-driver`; `.ci/run`
installs them). Without them it is skipped, except under CI (`CI=true`), where it fails. Selenium drives the system
chromedriver, given by path, and a browser of its version (AGIFORMER_CHROME to choose one), so Selenium Manager never
downloads anything. Screenshots go to a temporary directory whose path is printed (`pytest -s`); AGIFORMER_BROWSER_SHOTS
chooses it. A notebook gets AGIFORMER_BROWSER_TIMEOUT seconds to run (default 900). Nothing of the user's Jupyter setup
is read or written: JupyterLab runs on a port the OS picks, with a token and temporary root, config, data, runtime and
settings directories, on copies of the notebooks. About 3.5 minutes on 2 busy cores (the tutorial trains for 2 of them).
"""
import base64, functools, hashlib, importlib.util, json, os, re, secrets, shutil, signal, subprocess, sys
import tempfile, time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {'views': ROOT / 'nbs' / '12_views.ipynb', 'tutorial': ROOT / 'nbs' / '13_tutorial.ipynb'}
BROWSERS = ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')
CHROMIUM = os.environ.get('AGIFORMER_CHROME') or next(filter(None, map(shutil.which, BROWSERS)), None)
DRIVER = shutil.which('chromedriver')
IN_CI = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')
RUN_TIMEOUT = int(os.environ.get('AGIFORMER_BROWSER_TIMEOUT', '900'))
CHROME_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync',
               '--disable-extensions', '--window-size=1400,1800']
# JupyterLab settings: every cell in the DOM (widgets below the fold are found), no news or update checks.
LAB_SETTINGS = {'@jupyterlab/notebook-extension/tracker.jupyterlab-settings': {'windowingMode': 'none'},
                '@jupyterlab/apputils-extension/notification.jupyterlab-settings': {'checkForUpdates': False,
                                                                                   'fetchNews': 'false'}}


def _wait(pred, timeout, what, every=0.25):
    "Poll `pred` until it returns something truthy; fail naming `what` after `timeout` seconds."
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v: return v
        if time.monotonic() > end: raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def _tail(path: Path, n: int=30) -> str:
    try: return '\n'.join(path.read_text(errors='replace').splitlines()[-n:])
    except OSError: return ''


class Lab:
    "JupyterLab on 127.0.0.1 (a port the OS picks, a token), in temporary directories; `close` stops it, kernels too."
    def __init__(self, work: Path):
        self.work, self.token = work, secrets.token_hex(16)
        root, settings = work / 'lab', work / 'settings'
        root.mkdir()
        for nb in NOTEBOOKS.values(): shutil.copy(nb, root / nb.name)     # autosave must not touch nbs/
        (root / 'models').symlink_to(ROOT / 'nbs' / 'models')               # the book's trained model, read only
        for rel, value in LAB_SETTINGS.items():
            (settings / rel).parent.mkdir(parents=True, exist_ok=True); (settings / rel).write_text(json.dumps(value))
        self.runtime = work / 'jrt'
        env = {**os.environ, 'AGIFORMER_TUTORIAL_QUICK': '1', 'AGIFORMER_RUNS': str(work / 'runs'),
               'AGIFORMER_DATA': os.environ.get('AGIFORMER_DATA', str(ROOT / 'data')),
               'JUPYTER_CONFIG_DIR': str(work / 'jcfg'), 'JUPYTER_DATA_DIR': str(work / 'jdata'),
               'JUPYTER_RUNTIME_DIR': str(self.runtime), 'IPYTHONDIR': str(work / 'ipython'),
               'JUPYTER_PLATFORM_DIRS': '1', 'MPLBACKEND': 'Agg',
               'IN_TEST': '1'}   # as under nbdev_test: the views chapter's closing nbdev_export() does nothing
        self.log = work / 'lab.log'
        self._log = open(self.log, 'w')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--allow-root', '--ip=127.0.0.1', '--port=0',
             '--ServerApp.port_retries=0', f'--IdentityProvider.token={self.token}', f'--ServerApp.root_dir={root}',
             '--LabApp.expose_app_in_browser=True', f'--LabApp.user_settings_dir={settings}',
             f'--LabApp.workspaces_dir={work / "ws"}',
             '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate'],
            env=env, cwd=root, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            info = _wait(self._info, 120, 'JupyterLab to start (its server file in the runtime directory)')
            self.base = f"http://127.0.0.1:{info['port']}"
            _wait(lambda: self._get('/api/status'), 60, 'JupyterLab to answer /api/status')
        except BaseException:
            self.close(); raise

    def _info(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{_tail(self.log)}")
        for f in self.runtime.glob('jpserver-*.json'):
            try: return json.loads(f.read_text())
            except (OSError, ValueError): pass       # being written

    def _get(self, path):
        try:
            r = requests.get(f'{self.base}{path}', headers={'Authorization': f'token {self.token}'}, timeout=10)
            return r.json() if r.status_code == 200 else None
        except requests.RequestException: return None

    def url(self, nb: Path) -> str: return f'{self.base}/lab/tree/{nb.name}?token={self.token}'

    def close(self):
        "Shut the kernels down through the REST API, then stop the server (SIGTERM, SIGKILL after 30 s)."
        if self.proc.poll() is None and hasattr(self, 'base'):
            for k in self._get('/api/kernels') or []:
                try: requests.delete(f"{self.base}/api/kernels/{k['id']}", timeout=30,
                                     headers={'Authorization': f'token {self.token}'})
                except requests.RequestException: pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try: self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired: pass
        try: os.killpg(self.proc.pid, signal.SIGKILL)     # the server, and anything left in its process group
        except (ProcessLookupError, PermissionError): pass
        self.proc.wait(); self._log.close()


def _major(exe) -> str|None:
    try: out = subprocess.run([exe, '--version'], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError): return None
    m = re.search(r'(\d+)\.\d+\.\d+', out)
    return m and m.group(1)


@functools.cache
def browser_binary() -> str|None:
    "AGIFORMER_CHROME, else the first browser on PATH of chromedriver's major version (a machine may have several)."
    if os.environ.get('AGIFORMER_CHROME'): return os.environ['AGIFORMER_CHROME']
    found = list(dict.fromkeys(filter(None, map(shutil.which, BROWSERS))))
    want = _major(DRIVER) if DRIVER else None
    return next((b for b in found if _major(b) == want), CHROMIUM)


def _options(profile: Path):
    from selenium import webdriver
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser_binary()
    for a in CHROME_ARGS + [f'--user-data-dir={profile}']: opts.add_argument(a)
    return opts


def chrome(work: Path):
    "Headless Chromium under Selenium, with the system chromedriver and browser given by path (no Selenium Manager)."
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    log = work / 'chromedriver.log'
    service = Service(executable_path=DRIVER, log_output=str(log))     # port: a free one, picked by Selenium
    try: return webdriver.Chrome(service=service, options=_options(work / 'chromium-profile'))
    except Exception as e:
        raise RuntimeError(f"could not start {browser_binary()} through {DRIVER} (AGIFORMER_CHROME chooses a browser): "
                           f"{e}\n{_tail(log)}") from e


@pytest.fixture(scope='module')
def session():
    "JupyterLab and a headless Chromium, shared by the tests of this file; both closed even when a test fails."
    if not (CHROMIUM and DRIVER):
        missing = ' and '.join(n for n, p in (('chromium', CHROMIUM), ('chromedriver', DRIVER)) if not p)
        msg = f"{missing} not found on PATH (Debian: apt-get install -y chromium chromium-driver)"
        if IN_CI: pytest.fail(f"CI=true but {msg}; .ci/run installs them before the tests", pytrace=False)
        pytest.skip(msg)
    if importlib.util.find_spec('selenium') is None:
        if IN_CI: pytest.fail("CI=true but selenium is not installed: pip install -e '.[dev]'", pytrace=False)
        pytest.skip("needs selenium: pip install -e '.[dev]'")
    shots = Path(os.environ.get('AGIFORMER_BROWSER_SHOTS') or tempfile.mkdtemp(prefix='agiformer-browser-shots-'))
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {shots}")
    work = Path(tempfile.mkdtemp(prefix='agiformer-browser-'))
    lab = driver = None
    try:
        lab = Lab(work)
        driver = chrome(work)
        driver.set_script_timeout(120)                   # RUN_ALL waits for the kernel to be ready
        yield lab, driver, shots
    finally:
        if driver is not None:
            try: driver.quit()
            except Exception: pass
        if lab is not None: lab.close()
        shutil.rmtree(work, ignore_errors=True)


# JavaScript run in the page; `window.jupyterapp` exists because the server runs with expose_app_in_browser.
OPENED = """
const app = window.jupyterapp, panel = app && app.shell.currentWidget;
return !!(panel && panel.content && panel.context && panel.context.path === arguments[0] && panel.sessionContext &&
          panel.sessionContext.session && panel.sessionContext.session.kernel);
"""
RUN_ALL = """
const done = arguments[arguments.length - 1];
(async () => {
  const app = window.jupyterapp, panel = app.shell.currentWidget;
  await panel.sessionContext.ready;
  await app.commands.execute('notebook:clear-all-cell-outputs');   // saved outputs and counts must not count as run
  app.commands.execute('notebook:run-all-cells');                  // not awaited: STATUS follows the run
  done('started');
})().catch(e => done('error: ' + e));
"""
STATUS = """
const panel = window.jupyterapp.shell.currentWidget;
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
const cells = panel.content.widgets.filter(c => c.model.type === 'code');
const errors = [];
cells.forEach((c, i) => { for (const o of c.model.outputs.toJSON()) if (o.output_type === 'error')
  errors.push(`code cell ${i}: ${o.ename}: ${o.evalue}`); });
return {status: kernel ? kernel.status : 'no kernel', n: cells.length,
        executed: cells.filter(c => c.model.executionCount !== null).length, errors: errors};
"""
# The outermost widget box holding an image and a control labelled arguments[0]: one view.
VIEW = """
const label = arguments[0];
const boxes = [...document.querySelectorAll('.jp-OutputArea-output .widget-vbox')].filter(b => b.querySelector('img')
  && [...b.querySelectorAll('.widget-label')].some(l => l.textContent.trim() === label));
return boxes.filter(b => !boxes.some(o => o !== b && o.contains(b)));
"""
# The control labelled arguments[1] inside the view arguments[0] (the widget element whose label it is).
CONTROL = """
const [box, label] = arguments;
const l = [...box.querySelectorAll('.widget-label')].find(l => l.textContent.trim() === label);
return l ? l.parentElement : null;   // ipywidgets 8: the label is a child of its widget's element
"""
# The bytes behind an <img> (a blob: or data: URL), base64-encoded.
IMG_BYTES = """
const [img, done] = arguments;
fetch(img.src).then(r => r.arrayBuffer()).then(buf => {
  const u = new Uint8Array(buf); let s = '';
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
  done(btoa(s));
}).catch(e => done('error: ' + e));
"""


def _figure(driver, box):
    "The view's figure: (its src, sha256 of its bytes, size), once the image has loaded."
    img = box.find_element('css selector', 'img')
    def loaded():
        src = img.get_attribute('src')
        if not src or not driver.execute_script('return arguments[0].complete && arguments[0].naturalWidth > 0', img):
            return None
        b64 = driver.execute_async_script(IMG_BYTES, img)
        if b64.startswith('error:'): return None         # a blob revoked under us: the figure is being replaced
        data = base64.b64decode(b64)
        return src, hashlib.sha256(data).hexdigest(), len(data), data[:8]
    src, digest, size, head = _wait(loaded, 60, 'the figure to load')
    assert head == b'\x89PNG\r\n\x1a\n', f"the figure is not a PNG (starts {head!r})"
    return src, digest, size


def _move_slider(driver, control):
    "One keyboard step on a slider's handle (left, or right at its minimum); returns (old, new) values from aria."
    from selenium.webdriver.common.keys import Keys
    handle = control.find_element('css selector', '.noUi-handle')
    now, lo = (float(handle.get_attribute(a)) for a in ('aria-valuenow', 'aria-valuemin'))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus();", handle)
    handle.send_keys(Keys.ARROW_RIGHT if now <= lo else Keys.ARROW_LEFT)
    moved = lambda: (lambda v: [v] if v != now else None)(float(handle.get_attribute('aria-valuenow')))   # 0 is a value
    return now, _wait(moved, 20, 'the slider handle to move')[0]


def _click_other_button(driver, control):
    "Click a toggle button that is not the active one; returns (old, new) labels."
    buttons = control.find_elements('css selector', 'button')
    old = next(b.text for b in buttons if 'mod-active' in (b.get_attribute('class') or ''))
    target = next(b for b in buttons if 'mod-active' not in (b.get_attribute('class') or ''))
    new = target.text
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", target)
    target.click()
    return old, new


# Each view: a label naming it, and the control moved. BPCView's smoothing acts only on train curves, which the views
# chapter's example has switched off, so its x axis is the control that changes its figure in both notebooks.
VIEWS = [('BPCView', 'smoothing', 'x axis', _click_other_button),
         ('ThinkingView', 'colour by', 'step t', _move_slider),
         ('DepthSweepView', "max T'", "max T'", _move_slider)]


def _run_and_check(session, name: str) -> dict:
    lab, driver, shots = session
    nb = NOTEBOOKS[name]
    driver.get(lab.url(nb))
    _wait(lambda: driver.execute_script(OPENED, nb.name), 120, f'{nb.name} to open with a kernel')
    assert driver.execute_async_script(RUN_ALL) == 'started'
    t0 = time.monotonic()
    def finished():
        s = driver.execute_script(STATUS)
        if s['errors']: raise AssertionError(f"{nb.name} failed in the browser: {s['errors']}\n"
                                             f"JupyterLab log:\n{_tail(lab.log)}")
        return s if s['n'] and s['executed'] == s['n'] and s['status'] == 'idle' else None
    st = _wait(finished, RUN_TIMEOUT, f'every cell of {nb.name} to run', every=1)
    seen = {'notebook': nb.name, 'cells': st['n'], 'run_all_s': round(time.monotonic() - t0, 1)}
    driver.save_screenshot(str(shots / f'{name}-after-run.png'))
    for view, label, control_label, move in VIEWS:
        boxes = _wait(lambda: driver.execute_script(VIEW, label), 60, f'{view} to render in {nb.name}')
        box = boxes[0]
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", box)
        src0, digest0, _ = _figure(driver, box)
        box.screenshot(str(shots / f'{name}-{view}-before.png'))
        control = driver.execute_script(CONTROL, box, control_label)
        assert control is not None, f"{view} in {nb.name} has no control labelled {control_label!r}"
        old, new = move(driver, control)
        _wait(lambda: box.find_element('css selector', 'img').get_attribute('src') != src0, 120,
              f"{view}'s figure in {nb.name} to be redrawn after {control_label!r} went {old} -> {new}")
        src1, digest1, size1 = _figure(driver, box)
        box.screenshot(str(shots / f'{name}-{view}-after.png'))
        assert digest1 != digest0, f"{view}'s figure in {nb.name} is unchanged after {control_label!r} {old} -> {new}"
        seen[view] = f"{control_label} {old} -> {new}: figure redrawn ({size1:,} bytes)"
    (shots / f'{name}-seen.json').write_text(json.dumps(seen, indent=1))
    print(json.dumps(seen))
    return seen


def test_views_chapter_in_browser(session):
    seen = _run_and_check(session, 'views')
    assert all(v in seen for v, *_ in VIEWS)


def test_tutorial_quick_in_browser(session):
    seen = _run_and_check(session, 'tutorial')
    assert all(v in seen for v, *_ in VIEWS)
