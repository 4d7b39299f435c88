#!/usr/bin/env python
"""Remove stored ipywidgets state from notebooks before they are committed.

A notebook saved after its widgets ran stores their state (`metadata.widgets`) and one output per widget view that only
a live kernel can fill; `nbdev_clean` keeps both. This removes them and leaves every other output (static figures,
printed text) in place, keeping the file's permissions. A widget output that also carries a static twin (the views
add a PNG of their figure) keeps the twin, so the docs site shows the figure.

    python scripts/clear_widget_state.py nbs/13_tutorial.ipynb     # clear these notebooks (default: nbs/*.ipynb)
    python scripts/clear_widget_state.py --check                   # exit 1 naming each notebook that holds widget state

Repository tooling (standard library only): not part of the agiformer package.
"""
import argparse, json, os, sys, tempfile
from pathlib import Path

WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'
ROOT = Path(__file__).resolve().parent.parent


def strip_widgets(nb: dict) -> int:
    "Remove `metadata.widgets` and every widget-view output from the notebook dict `nb` in place; returns items removed."
    removed = int('widgets' in nb.get('metadata', {}))
    nb.get('metadata', {}).pop('widgets', None)
    for cell in nb.get('cells', []):
        outs = cell.get('outputs')
        if not outs: continue
        keep = []
        for o in outs:
            data = o.get('data', {})
            if WIDGET_VIEW not in data: keep.append(o); continue
            removed += 1
            static = {k: v for k, v in data.items() if k != WIDGET_VIEW and k != 'text/plain'}
            if static: keep.append({**o, 'data': static})     # a static twin (e.g. a PNG of the figure) stays
        cell['outputs'] = keep
    return removed


def clear_widget_state(path, check: bool=False) -> int:
    "Widget state items in the notebook at `path`; removed from the file (atomically) unless `check`."
    path = Path(path)
    nb = json.loads(path.read_text(encoding='utf-8'))
    removed = strip_widgets(nb)
    if removed and not check:
        mode = path.stat().st_mode & 0o777
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
        try:
            with os.fdopen(fd, 'w', encoding='utf-8') as f:
                f.write(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
            os.chmod(tmp, mode)                                 # keep the notebook's permissions
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp): os.unlink(tmp)
            raise
    return removed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebooks', nargs='*', help='notebooks to clear (default: nbs/*.ipynb)')
    p.add_argument('--check', action='store_true', help='change nothing; exit 1 if a notebook holds widget state')
    a = p.parse_args(argv)
    paths = [Path(n) for n in a.notebooks] or sorted((ROOT / 'nbs').glob('*.ipynb'))
    dirty = 0
    for path in paths:
        try: n = clear_widget_state(path, check=a.check)
        except (OSError, ValueError) as e:
            print(f"clear_widget_state: error: {path}: {e}", file=sys.stderr); return 2
        if n:
            dirty += 1
            print(f"{path}: {'holds' if a.check else 'removed'} {n} widget state item{'s' * (n != 1)}")
    if a.check and dirty:
        print(f"{dirty} notebook(s) store widget state: run python scripts/clear_widget_state.py before committing",
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
