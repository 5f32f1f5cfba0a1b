"""Measure every hostile class through the CLI: refused cleanly?, peak RSS, wall time.

``python tests/fuzz/measure_classes.py [--root CHECKOUT] [--timeout S]`` prints a Markdown table.
``--root`` measures another checkout (e.g. an older commit unpacked with ``git archive``); each run
is capped at 4 GiB of address space and ``--timeout`` seconds. Files are built in a temp folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.fuzz import craft  # noqa: E402
from tests.fuzz.measure import ROOT, measure  # noqa: E402

DRY = ["convert", "--dry-run", "-o", "{tmp}/out.safetensors"]
CASES = [
    # (label, file name, maker, commands)
    ("LONG_BINPUT huge index (9 B)", "memo.ckpt", craft.memo_long_binput, [["inspect"]]),
    ("LONG_BINPUT 0x7fffffff (9 B)", "memo2.ckpt", craft.memo_long_binput_variant, [["inspect"]]),
    ("numpy _reconstruct 1 GiB", "np.ckpt", craft.numpy_reconstruct_huge, [["inspect"], DRY]),
    ("one text encoded 2,000 times", "encode.ckpt", craft.encode_copies, [["inspect"]]),
    ("zip of dicts (deflated data.pkl)", "dicts.ckpt", craft.zip_of_dicts, [["inspect"]]),
    ("300 MB byteorder record", "byteorder.ckpt", craft.byteorder_member, [["inspect"]]),
    ("EMPTY_DICT ops x4M (bare pickle)", "empty.ckpt", craft.empty_dict_ops, [["inspect"]]),
    ("self-referencing state_dict (24 B)", "self.ckpt", craft.self_reference, [["inspect"], DRY, ["audit", "{dir}"]]),
    ("self-referencing list", "selflist.ckpt", craft.self_referencing_list, [["inspect"]]),
    ("shared DAG 2**48 paths", "dag.ckpt", craft.shared_dag, [["inspect"]]),
    ("deep lists 200k", "deeplist.ckpt", craft.deep_lists, [["inspect"]]),
    ("deep dicts 100k", "deepdict.ckpt", craft.deep_dicts, [["inspect"]]),
    ("BUILD setattr on reader function", "build1.ckpt", craft.build_setattr_function, [["inspect"]]),
    ("BUILD on a tensor record", "build2.ckpt", craft.build_on_tensor_ref, [["inspect"]]),
    ("numpy 100-dim array state", "npdims.ckpt", craft.numpy_many_dims, [["inspect"]]),
    ("numpy dtype from a list", "npdtype.ckpt", craft.numpy_dtype_list, [["inspect"]]),
    ("zip: encrypted record", "enc.ckpt", craft.zip_encrypted, [["inspect"]]),
    ("zip: unknown method 99", "method.ckpt", craft.zip_unknown_method, [["inspect"]]),
    ("zip: corrupt deflate", "deflate.ckpt", craft.zip_corrupt_deflate, [["inspect"]]),
    ("zip: corrupt LZMA", "lzma.ckpt", craft.zip_corrupt_lzma, [["inspect"]]),
    ("zip: bad local header", "local.ckpt", craft.zip_bad_local_header, [["inspect", "--scan"]]),
    ("zip: negative offsets", "neg.ckpt", craft.zip_negative_offset, [["inspect"]]),
    ("zip: offset 2**63-1", "huge.ckpt", craft.zip_huge_offset, [["inspect"]]),
    ("legacy view at -5", "view.ckpt", craft.legacy_negative_view, [["inspect", "--scan"], DRY]),
    ("JSON 4,301-digit int", "int.safetensors", craft.json_long_int, [["inspect"]]),
    ("JSON list as dtype", "dtype.safetensors", craft.json_dtype_list, [["inspect"]]),
    ("JSON lone surrogate key", "sur.safetensors", craft.json_lone_surrogate_key, [["inspect"]]),
    ("JSON 100 dims", "dims.safetensors", craft.json_many_dims, [["inspect", "--scan"]]),
    ("JSON dims past 2**64", "bigdims.safetensors", craft.json_huge_dims, [["inspect", "--scan"]]),
    ("JSON nested 100k", "deep.safetensors", craft.json_deep, [["inspect"]]),
    ("JSON 3M empty lists", "lists.safetensors", craft.json_many_lists, [["inspect"]]),
    ("97 MB header: 7M small metadata entries", "meta.safetensors", lambda: craft.json_many_strings(7_000_000), [["inspect"]]),
    ("JSON 3M floats in a shape", "floats.safetensors", craft.json_many_numbers, [["inspect"]]),
    ("99 MB header (metadata)", "header.safetensors", craft.huge_header_safetensors, [["inspect"]]),
    ("1M tensors safetensors", "million.safetensors", craft.many_tensors_safetensors, [["inspect"], DRY]),
    ("1M tensors pickle", "million.ckpt", craft.many_tensors_pickle, [["inspect"]]),
    ("64 MB deflated storage x 2,000 tensors", "shared.ckpt", craft.compressed_shared_storage, [["inspect", "--scan"]]),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=ROOT)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    print("| class | command | exit | refused cleanly | peak RSS | time | line |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, make, commands in CASES:
            if args.only and args.only not in label:
                continue
            folder = os.path.join(tmp, name + ".d")
            os.makedirs(folder)
            path = os.path.join(folder, name)
            with open(path, "wb") as f:
                f.write(make())
            for command in commands:
                argv = [a.format(tmp=tmp, dir=folder) for a in command]
                if command[0] != "audit":
                    argv.append(path)
                run = measure(argv, timeout=args.timeout, root=args.root)
                lines = run.stderr.strip().splitlines()
                clean = (run.returncode == 2 and len(lines) == 1 and lines[0].startswith("modeldoc: error:")
                         and "internal error" not in lines[0])
                if command[0] == "audit":  # audit reports unreadable files in its table, exits 0 or 2
                    clean = run.returncode in (0, 2) and "internal error" not in run.stdout + run.stderr
                last = (lines[-1] if lines else run.stdout.strip().splitlines()[0] if run.stdout.strip() else "")
                last = last.replace(path, "FILE").replace("|", "/")[:110]
                exit_code = "timeout" if "[timed out]" in run.stderr else ("killed" if run.returncode < 0 else run.returncode)
                print(f"| {label} | {' '.join(command[:2])} | {exit_code} | {'yes' if clean else 'no'} | "
                      f"{run.peak_rss_mb:.0f} MB | {run.seconds:.1f} s | {last} |", flush=True)
            os.remove(path)


if __name__ == "__main__":
    main()
