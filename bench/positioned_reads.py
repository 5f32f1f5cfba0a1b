"""Time the read paths with ``os.pread`` and with Windows' fallback (a locked seek + readinto).

Each run is a fresh process; for the fallback, ``os.pread``/``os.preadv`` are deleted before
``lib_modeldoc`` is imported, exactly as ``MODELDOC_FAKE_WINDOWS_IO=1`` does for the tests.
The sample (random float32 values, real safetensors) is read from the page cache, which is
where the lock could cost most: no disk wait hides it.

    .venv/bin/python bench/positioned_reads.py [--mb 512] [--repeat 5] [--before OLD_TREE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

CHILD = r"""
import json, os, resource, sys, tempfile, time
if sys.argv[1] == "fallback":
    for name in ("pread", "preadv"):
        delattr(os, name)
sys.path.insert(0, sys.argv[4])
try:
    from lib_modeldoc.io.positioned import strategy
except ImportError:  # a tree from before the positioned-read layer
    strategy = lambda: "os.pread, before io.positioned"
job, path = sys.argv[2], sys.argv[3]
start, cpu = time.perf_counter(), time.process_time()
if job == "hash":
    from lib_modeldoc.analysis.hashing import hash_file
    hash_file(path)
elif job.startswith("scan"):
    from lib_modeldoc.arch.identify import identify_model
    from lib_modeldoc.arch.layout import layout_of
    from lib_modeldoc.io.model import open_model
    from lib_modeldoc.analysis.scan import scan_model
    with open_model(path) as model:
        layout = layout_of(list(model), identify_model(model))
        scan_model(model, layout, workers=int(job[4:]))
elif job == "convert":
    from lib_modeldoc.operations.convert import ConvertOptions, plan_convert
    from lib_modeldoc.io.model import open_model
    from lib_modeldoc.operations.writer import write_plan
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as out, open_model(path) as model:
        write_plan(plan_convert(model, ConvertOptions(precision="fp16", force=True, keep_junk=True)), os.path.join(out, "o.safetensors"))
print(json.dumps({"strategy": strategy(), "wall": time.perf_counter() - start, "cpu": time.process_time() - cpu}))
"""


def write_sample(path: str, megabytes: int) -> None:
    from lib_modeldoc.samples import Spec, write_safetensors_sample

    rng = np.random.default_rng(0)
    shapes = [(1280, 1280), (640, 640, 3, 3), (320, 320), (1280,), (2560, 1280)]
    specs, values, total, i = [], {}, 0, 0
    while total < megabytes << 20:
        shape = shapes[i % len(shapes)]
        key = f"model.diffusion_model.block{i}.weight"
        values[key] = (rng.standard_normal(shape) * 0.02).astype(np.float32)
        specs.append(Spec(key, "F32", shape))
        total += values[key].nbytes
        i += 1
    write_safetensors_sample(path, specs, values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=512, help="sample size in MiB (default 512)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per job and mode (default 5)")
    parser.add_argument("--jobs", default="hash,scan2,scan4,convert")
    parser.add_argument("--before", metavar="TREE", help="also time this older lib_modeldoc tree (with os.pread), "
                        "e.g. from `git archive COMMIT lib_modeldoc | tar -x -C TREE`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modeldoc-pread-") as folder:
        path = os.path.join(folder, "sample.safetensors")
        write_sample(path, args.mb)
        print(f"sample: {os.path.getsize(path) / 1e6:.0f} MB, load {os.getloadavg()[0]:.1f}")
        for job in args.jobs.split(","):
            modes = ["pread", "fallback"] + (["before"] if args.before else [])
            runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
            for i in range(args.repeat + 1):  # the first round warms the page cache, untimed
                for mode in modes if i % 2 else modes[::-1]:
                    tree = args.before if mode == "before" else REPO
                    out = subprocess.run([sys.executable, "-c", CHILD, mode, job, path, tree],
                                         check=True, capture_output=True, text=True).stdout
                    if i:
                        runs[mode].append(json.loads(out))
            row = [f"{job:8}"]
            for mode, got in runs.items():
                wall = statistics.median(r["wall"] for r in got)
                cpu = statistics.median(r["cpu"] for r in got)
                row.append(f"{mode} ({got[0]['strategy']}): wall {wall:.3f} s, cpu {cpu:.3f} s")
            print("  ".join(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
