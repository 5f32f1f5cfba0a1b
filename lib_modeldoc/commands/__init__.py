"""The CLI's commands, in the order ``--help`` lists them."""

from . import demo, inspect_cmd

COMMANDS = (inspect_cmd, demo)
