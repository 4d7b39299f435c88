"""Build "stdlib-prose": a corpus of English prose that every Python installation holds, offline.

It is the running Python's own documentation text, in a fixed order:

1. the language and library reference topics that `help()` shows (`pydoc_data.topics`, sorted by topic name);
2. every docstring (module, class, function; cleaned by `ast.get_docstring`) of every `*.py` file under the standard
   library directory (`sysconfig.get_paths()['stdlib']`, nothing under site-packages), files sorted by their relative
   POSIX path, docstrings in `ast.walk` order, each docstring once (later exact repeats are dropped).

Texts are joined by a blank line and written as UTF-8. No code, only prose: a second corpus to check that a training
recipe holds on text as well as on the code of "pystdlib". On Python 3.11.7 it is about 2.5 MB; load it like any file
(`agiformer_train --data data/stdlib-prose.txt`), split 90/5/5 like the other corpora.

    python scripts/stdlib_prose.py [--out data/stdlib-prose.txt]
"""
import argparse, ast, hashlib, os, sys, sysconfig, tempfile, warnings
from pathlib import Path


def stdlib_prose() -> tuple[bytes, dict]:
    "(corpus bytes, facts about it)."
    import pydoc_data.topics as topics
    root = Path(sysconfig.get_paths()['stdlib'])
    files = sorted((p for p in root.rglob('*.py') if 'site-packages' not in p.relative_to(root).parts),
                   key=lambda p: p.relative_to(root).as_posix())
    texts, seen, n_doc = [topics.topics[k].strip() for k in sorted(topics.topics)], set(), 0
    for p in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')              # invalid escape sequences in old test files
                tree = ast.parse(p.read_bytes())
        except (SyntaxError, ValueError): continue            # test data that is not valid Python
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)): continue
            d = ast.get_docstring(node)
            if d and d.strip() and d not in seen:
                seen.add(d); texts.append(d.strip()); n_doc += 1
    data = '\n\n'.join(texts).encode('utf-8', 'replace') + b'\n'
    return data, dict(python=sys.version.split()[0], n_files=len(files), n_topics=len(topics.topics), n_docstrings=n_doc,
                      n_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default='data/stdlib-prose.txt', help='where to write the corpus')
    a = ap.parse_args()
    data, info = stdlib_prose()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=out.name + '.', suffix='.tmp')   # whole file or none
    with os.fdopen(fd, 'wb') as f: f.write(data)
    os.replace(tmp, out)
    print(f"{out}: {info['n_bytes']:,} bytes of Python {info['python']} ({info['n_topics']} reference topics, "
          f"{info['n_docstrings']:,} docstrings of {info['n_files']:,} files), sha256 {info['sha256']}")


if __name__ == '__main__':
    main()
