"""The CLI's commands, in the order ``--help`` lists them."""

from . import demo, hash_cmd, inspect_cmd

COMMANDS = (inspect_cmd, hash_cmd, demo)
