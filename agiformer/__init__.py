__version__ = "0.1.0"

# `AGIFORMER.from_pretrained` is defined with the loader in chapter 06 (agiformer.checkpoint): importing it here
# attaches it whichever module a user imports first, so huggingface_hub's own loader (which would fall back to
# pickles) is never the one called.
from . import checkpoint as _checkpoint  # noqa: E402,F401
