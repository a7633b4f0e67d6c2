"""Finding the user's manager class from ``--manager module:Class``.

``module`` is imported with the current directory on ``sys.path``, so a
manager module beside the store works without installing anything.
"""

from __future__ import annotations

import importlib
import os
import sys

from ..errors import ConfigurationError
from ..managers import CManager


def load_manager_class(spec: str | None) -> type[CManager]:
    """Import ``module:Class`` and check it is a :class:`CManager` subclass.

    Raises :class:`ConfigurationError` with a one-line explanation otherwise,
    including when the module itself fails while being imported (a syntax
    error, a missing name): the message names the exception and, for a syntax
    error, the file and line.
    """
    if not spec:
        raise ConfigurationError(
            "this command needs the manager: pass --manager module:Class (or set SSSHELF_MANAGER)"
        )
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"--manager {spec!r} must look like module:Class")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import module {module_name!r} for --manager: {exc}"
        ) from None
    except Exception as exc:
        raise ConfigurationError(
            f"module {module_name!r} for --manager failed while importing: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    found: object = module
    for part in attr.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise ConfigurationError(f"module {module_name!r} has no attribute {attr!r}")
    if not (isinstance(found, type) and issubclass(found, CManager)):
        raise ConfigurationError(f"{spec} is not a CManager subclass")
    return found
