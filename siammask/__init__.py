"""SiamMask for PyTorch: the project's one import package.

The sub-packages are the repository's top-level folders, where users of the original look for them:
``siammask.models`` is ``models/``, ``siammask.datasets`` is ``datasets/``, and likewise ``utils``, ``tracker``,
``evaluation``, ``training``, ``tools`` and ``serving`` (setup.py's ``package_dir``; a wheel lays them out under
``siammask/``).
In a source checkout that is not installed (``PYTHONPATH=<checkout>``, as on a server with its own torch) the folders
are found beside this one.
"""
from __future__ import annotations

from pathlib import Path

__version__ = "0.2.0"

SUBPACKAGES = ("models", "datasets", "utils", "tracker", "evaluation", "training", "tools", "serving")

_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "setup.py").is_file() and (_checkout / "models" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 - the package's own search path
