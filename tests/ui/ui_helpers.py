"""Drive a built ``gr.Blocks`` without a browser: find an event by its trigger's elem_id, fill its
inputs by elem_id (the rest keep their initial values), run the real handler, read outputs by
elem_id. Works with gradio 3.41 and 4.x (both expose ``config["dependencies"]``)."""

from __future__ import annotations

import copy
import inspect
import os
import shutil
import socket
from typing import Any

CI = bool(os.environ.get("CI"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def elem_ids(blocks: Any) -> dict[str, int]:
    return {b.elem_id: i for i, b in blocks.blocks.items() if getattr(b, "elem_id", None)}


class Driver:
    """One browser session's worth of state over a Blocks."""

    def __init__(self, blocks: Any) -> None:
        self.blocks = blocks
        self.ids = elem_ids(blocks)
        self.state: dict[int, Any] = {}

    def dependency(self, elem_id: str, trigger: str = "click") -> tuple[int, dict[str, Any]]:
        target = self.ids[elem_id]
        for index, dep in enumerate(self.blocks.config["dependencies"]):
            for t in dep["targets"]:
                tid, name = (t[0], t[1]) if isinstance(t, (list, tuple)) else (t, dep.get("trigger"))
                if tid == target and name == trigger:
                    return index, dep
        raise KeyError(f"no {trigger} event on #{elem_id}")

    def fn(self, index: int, dep: dict[str, Any]) -> Any:
        fns = self.blocks.fns
        key = dep.get("id", index)
        return (fns[key] if isinstance(fns, dict) else fns[index]).fn

    def value(self, block_id: int, given: dict[str, Any]) -> Any:
        block = self.blocks.blocks[block_id]
        if getattr(block, "elem_id", None) in given:
            return given[block.elem_id]
        if getattr(block, "stateful", False) or type(block).__name__ == "State":
            if block_id not in self.state:
                self.state[block_id] = copy.deepcopy(block.value)
            return self.state[block_id]
        return getattr(block, "value", None)

    def click(self, elem_id: str, trigger: str = "click", **given: Any) -> dict[str, Any]:
        """Run the handler; returns ``{output elem_id (or block id): value}``."""
        index, dep = self.dependency(elem_id, trigger)
        args = [self.value(i, given) for i in dep["inputs"]]
        result = self.fn(index, dep)(*args)
        if inspect.isgenerator(result):
            last = None
            for last in result:
                pass
            result = last
        outputs = dep["outputs"]
        if len(outputs) == 1 and not (isinstance(result, (list, tuple)) and len(result) == 1):
            result = [result]
        result = list(result or [])
        assert len(result) == len(outputs), f"#{elem_id}: {len(result)} values for {len(outputs)} outputs"
        named = {}
        for block_id, value in zip(outputs, result):
            block = self.blocks.blocks[block_id]
            named[getattr(block, "elem_id", None) or block_id] = value
        return named

    def load(self) -> dict[str, Any]:
        """Run the page-load handler (the one with a Python function) as a page (re)load does."""
        for index, dep in enumerate(self.blocks.config["dependencies"]):
            triggers = [t[1] if isinstance(t, (list, tuple)) else dep.get("trigger") for t in dep["targets"]] or \
                [dep.get("trigger")]
            if "load" in triggers and dep.get("backend_fn", True) and self.fn(index, dep) is not None:
                result = list(self.fn(index, dep)())
                return {getattr(self.blocks.blocks[b], "elem_id", None) or b: v for b, v in zip(dep["outputs"], result)}
        raise KeyError("no page-load handler")

    def js(self, elem_id: str, trigger: str = "click") -> Any:
        return self.dependency(elem_id, trigger)[1].get("js")


def update_value(value: Any) -> Any:
    """The value of a ``gr.update(...)`` dict, or the value itself."""
    if isinstance(value, dict) and "__type__" in value:
        return value.get("value")
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_or_skip() -> str:
    """The system Chromium; skipped only outside CI when it is not installed."""
    import pytest

    if os.path.exists(CHROMIUM) or shutil.which("chromium"):
        return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if CI:
        pytest.fail(f"{CHROMIUM} missing in CI (.ci/run installs the Debian package 'chromium')")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); runs in CI")


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_serve(args: list[str], env: dict[str, str] | None = None, wait: float = 90.0) -> tuple[Any, str]:
    """Start ``python -m lib_modeldoc serve ARGS``; returns (process, first line) once it prints its URL."""
    import subprocess
    import sys
    import time

    import pytest

    proc = subprocess.Popen([sys.executable, "-m", "lib_modeldoc", "serve", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + wait
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("Model Doctor is running on "):
            return proc, line.rstrip()
    proc.kill()
    proc.wait(10)
    pytest.fail("serve did not print its URL:\n" + "\n".join(lines))


def stop_serve(proc: Any) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
