"""tokenhot_jupyter: the Tokenhot AI gateway in Jupyter."""
from ._version import __version__

__all__ = ["__version__"]
