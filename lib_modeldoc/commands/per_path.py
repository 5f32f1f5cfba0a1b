"""Run a command over several paths: one result each, errors reported per path, not fatal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import ModelDocError
from .wording import say

T = TypeVar("T")


def run_per_path(
    paths: Sequence[str],
    compute: Callable[[str], T],
    to_json: Callable[[T], dict[str, Any]],
    to_text: Callable[[T], str],
    *,
    as_json: bool,
) -> int:
    """Compute each path's result and print it (text, or JSON: an object, or an array for several).

    With one path an error propagates (the CLI prints it as one line); with several, each failing
    path gets its error line and a ``{"path", "error"}`` JSON entry, and the status is 2.
    """
    results: list[dict[str, Any]] = []
    failed = False
    for index, path in enumerate(paths):
        try:
            result = compute(path)
        except ModelDocError as exc:
            if len(paths) == 1:
                raise
            failed = True
            print(f"modeldoc: error: {say(exc)}", file=sys.stderr)
            results.append({"path": path, "error": say(exc)})
            continue
        if as_json:
            results.append(to_json(result))
        else:
            if index:
                print()
            print(to_text(result))
    if as_json:
        print(json.dumps(results[0] if len(paths) == 1 else results, indent=2, ensure_ascii=False))
    return 2 if failed else 0
