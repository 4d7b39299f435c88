__version__ = "0.1.0"

import sys as _sys
from pathlib import Path as _Path

# The console commands (chapter 00, `cli`): each answers Ctrl-C with one line, `COMMAND: interrupted`, and status 130.
# `cli` can only do that once its command's module is imported, and that import (torch and the rest) takes seconds.
# When this process is one of the commands, that import happens here, where a Ctrl-C ends the same way.
_COMMANDS = {'agiformer_train': 'train', 'agiformer_eval': 'evaluate', 'agiformer_generate': 'generate',
             'agiformer_inspect': 'verdict', 'agiformer_push': 'hub'}
_command = _Path(_sys.argv[0]).name if _sys.argv and _sys.argv[0] else ''
try:
    # `AGIFORMER.from_pretrained` is defined with the loader in chapter 06 (agiformer.checkpoint): importing it here
    # attaches it whichever module a user imports first, so huggingface_hub's own loader (which would fall back to
    # pickles) is never the one called.
    from . import checkpoint as _checkpoint  # noqa: E402,F401
    if _command in _COMMANDS:
        import importlib as _importlib
        _importlib.import_module(f'{__name__}.{_COMMANDS[_command]}')
except KeyboardInterrupt:
    if _command not in _COMMANDS: raise
    print(f"{_command}: interrupted", file=_sys.stderr, flush=True)
    _sys.exit(130)
