"""Package entry points imported on first use (PEP 562), so importing a light sub-module stays light and
packages that use each other do not import each other in a circle."""
from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `package.<homes[name]>` and returns its `name`."""
    def __getattr__(name: str) -> Any:
        if name in homes:
            return getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        raise AttributeError(f"module '{package}' has no attribute '{name}'")
    return __getattr__
