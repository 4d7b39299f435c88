"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which these machines lack).

Markdown cells are copied, with links to chapters (`[x](09_recipe.ipynb)`, relative to nbs/ on the docs site) made
relative to the repository root (`[x](nbs/09_recipe.ipynb)`); code cells become ```python blocks; `#| hide` cells are
dropped; a `#| echo: false` cell (the docs site shows only its output) becomes its Markdown output (`text/markdown`,
e.g. the Measurements table, made from bench/results/ by bench/measurements.py), as committed: re-execute the index
(`python scripts/execute_nbs.py nbs/index.ipynb`) after a new measurement.
`python scripts/make_readme.py --check` exits 1 if README.md is out of date."""
import re, sys
from pathlib import Path
import nbformat

root = Path(__file__).resolve().parent.parent

def render() -> str:
    nb = nbformat.read(root / 'nbs' / 'index.ipynb', as_version=4)
    parts = []
    for c in nb.cells:
        src = c.source.strip()
        if not src or src.startswith('#| hide') or '\n#| hide' in src: continue
        if c.cell_type == 'markdown':
            # nbdev's title/summary convention: "> summary" under the title
            parts.append(re.sub(r'\]\((?![a-z]+:|/|#)([^)\s]+\.ipynb(?:#[^)]*)?)\)', r'](nbs/\1)', src))
        elif c.cell_type == 'code' and re.search(r'^#\|\s*echo:\s*false\s*$', src, flags=re.M):
            parts += [o['data']['text/markdown'].strip() for o in c.get('outputs', []) if 'text/markdown' in o.get('data', {})]
        elif c.cell_type == 'code':
            lines = [l for l in src.splitlines() if not l.startswith('#|')]
            parts.append('```python\n' + '\n'.join(lines) + '\n```')
    return '<!-- generated from nbs/index.ipynb by scripts/make_readme.py: edit the notebook, not this file -->\n\n' + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text, readme = render(), root / 'README.md'
    if '--check' in sys.argv:
        if not readme.exists() or readme.read_text() != text:
            sys.exit('README.md is out of date with nbs/index.ipynb: run python scripts/make_readme.py')
    else:
        readme.write_text(text)
