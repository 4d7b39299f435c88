__version__ = "0.1.0"

import signal as _signal, sys as _sys
from pathlib import Path as _Path

# The console commands (chapter 00, `cli`) answer Ctrl-C with one line, `COMMAND: interrupted`, and status 130. `cli`
# can only do that once its command's module is imported, and that import (torch and the rest) takes seconds. When
# this process is one of the commands, a Ctrl-C during those seconds ends the same way, and the command's module is
# imported here, before `cli` takes over.
_COMMANDS = {'agiformer_train': 'train', 'agiformer_eval': 'evaluate', 'agiformer_generate': 'generate',
             'agiformer_inspect': 'verdict', 'agiformer_push': 'hub'}
_command = _Path(_sys.argv[0]).name if _sys.argv and _sys.argv[0] else ''
_starting = _command in _COMMANDS and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler

def _interrupted(signum, frame):
    print(f"{_command}: interrupted", file=_sys.stderr, flush=True)
    _sys.exit(130)

if _starting: _signal.signal(_signal.SIGINT, _interrupted)

# `AGIFORMER.from_pretrained` is defined with the loader in chapter 06 (agiformer.checkpoint): importing it here
# attaches it whichever module a user imports first, so huggingface_hub's own loader (which would fall back to
# pickles) is never the one called.
from . import checkpoint as _checkpoint  # noqa: E402,F401

if _starting:
    __import__(f'{__name__}.{_COMMANDS[_command]}')
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)       # from here on, `cli` answers Ctrl-C
