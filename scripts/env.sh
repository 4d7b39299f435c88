# Sourced by the scripts in this folder: create or reuse .venv, install torch FIRST (a bare `torch` requirement
# would otherwise pull a multi-GB CUDA build), then the package with its dev extras, and activate it.
# AGIFORMER_TORCH overrides the torch requirement (default torch==2.13.0, the CPU wheel these machines carry).
venv=${AGIFORMER_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv"
  python3 -m venv "$venv"
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"
if ! python -c 'import torch' 2>/dev/null; then
  echo "== installing ${AGIFORMER_TORCH:-torch==2.13.0}"
  python -m pip install -q --disable-pip-version-check ${AGIFORMER_TORCH:-torch==2.13.0}
fi
stamp="$venv/.agiformer-installed"
if [ ! -f "$stamp" ] || [ settings.ini -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "== installing agiformer[dev]"
  python -m pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
