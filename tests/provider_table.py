"""The generated backend's provider table, loaded from the template for template-side code.

`app/provider_table.py` is standard library only, so the template's tests, benchmarks and
reliability suite read the rows themselves instead of keeping lists of their own.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TEMPLATE = Path(__file__).resolve().parents[1]
TABLE_FILE = TEMPLATE / "{{cookiecutter.project_slug}}" / "backend" / "app" / "provider_table.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("template_provider_table", TABLE_FILE)
    assert spec is not None and spec.loader is not None, TABLE_FILE
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    # No __pycache__ beside it: the template would copy it into every project.
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module


TABLE = load()
ROWS = TABLE.ROWS
PROVIDERS = TABLE.PROVIDERS
KEY_VARIABLES: tuple[str, ...] = TABLE.KEY_VARIABLES
NEEDS_BASE_URL = tuple(row.name for row in ROWS if row.base_url is None)
