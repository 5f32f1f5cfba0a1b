"""The CLI's commands, in the order ``--help`` lists them.

Each entry maps a command name to the object (a module or a class) that provides
``add_parser(subparsers)`` and ``run(args) -> int``. They are imported only when needed, so
``inspect`` never pays for the imports of ``compare`` or the UI.
"""

from __future__ import annotations

import importlib
from typing import Any

COMMANDS: dict[str, str] = {
    "inspect": "inspect_cmd",
    "convert": "convert_cmd",
    "export": "component_cmds:export",
    "replace": "component_cmds:replace",
    "build": "component_cmds:build",
    "hash": "hash_cmd",
    "compare": "compare_cmd",
    "audit": "audit_cmd",
    "meta": "meta_cmd",
    "demo": "demo",
    "serve": "serve",
}


def load(name: str) -> Any:
    """The command object for ``name`` (a key of :data:`COMMANDS`)."""
    module_name, _, attribute = COMMANDS[name].partition(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, attribute) if attribute else module
