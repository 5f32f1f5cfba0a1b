"""Run the CLI on one file in a child process and measure it: exit status, stderr, peak RSS, time.

The child runs under an address-space cap (``resource.RLIMIT_AS``) so a regression fails the
test with a MemoryError line or a kill instead of taking the machine down. POSIX only.

``python tests/fuzz/measure.py FILE [CLI ARGS...]`` prints one line of figures (used for the
bench table in tests/fuzz/README.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADDRESS_SPACE_CAP = 4 << 30  # python + numpy reserve ~1 GiB of address space before any work


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    seconds: float


def _cap_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))


def run_cli(args: list[str], timeout: float = 60.0, root: str = ROOT) -> Run:
    """``python -m lib_modeldoc ARGS`` (from the checkout at ``root``) under the memory cap."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lib_modeldoc", *args], cwd=root, env=env, preexec_fn=_cap_memory,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += b"\n[timed out]"
    seconds = time.monotonic() - start
    # RUSAGE_CHILDREN is the largest peak of any child so far: measure() runs this in a fresh
    # wrapper process, so there it is this child's own.
    return Run(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
               _peak_rss_mb(), seconds)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def measure(args: list[str], timeout: float = 600.0, root: str = ROOT) -> Run:
    """Like :func:`run_cli`, in a fresh wrapper process so the peak RSS is this run's alone."""
    code = (
        "import json,sys; sys.path.insert(0, %r); from tests.fuzz.measure import run_cli; "
        "r = run_cli(%r, %r, %r); print(json.dumps(r.__dict__))" % (ROOT, args, timeout, root)
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout + 30)
    import json

    return Run(**json.loads(done.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    result = measure(sys.argv[2:] + [sys.argv[1]] if len(sys.argv) > 2 else ["inspect", sys.argv[1]])
    line = (result.stderr.strip().splitlines() or [""])[-1]
    print(f"rc={result.returncode} peak_rss={result.peak_rss_mb:.0f}MB time={result.seconds:.2f}s {line[:160]}")
