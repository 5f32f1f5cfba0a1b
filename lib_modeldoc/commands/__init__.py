"""The CLI's commands, in the order ``--help`` lists them."""

from . import audit_cmd, compare_cmd, convert_cmd, demo, hash_cmd, inspect_cmd
from .component_cmds import build, export, replace

COMMANDS = (inspect_cmd, convert_cmd, export, replace, build, hash_cmd, compare_cmd, audit_cmd, demo)
