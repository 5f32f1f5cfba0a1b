"""Model Doctor benchmark: real-size synthetic checkpoints, each operation timed as a whole process.

Usage (from the repository root)::

    .venv/bin/python bench/bench.py                      # generate samples if needed, run all jobs
    .venv/bin/python bench/bench.py --baseline           # also time a full load, as older extensions do
    .venv/bin/python bench/bench.py --only inspect-json --repeat 5 --json results.json
    .venv/bin/python bench/bench.py --list               # jobs and samples, nothing run

Samples are written once into a cache folder outside the repository (``~/.cache/modeldoc-bench``
by default) and reused while their ``.ok`` stamp matches what this script would write. Each job
runs ``python -m lib_modeldoc ...`` in a child process: one untimed warm-up run (page cache and
bytecode warm), then ``--repeat`` timed runs; the table shows the median wall time, the median CPU
time (user + system, less sensitive than wall time to other load on the machine) and the largest
peak RSS of the child (``ru_maxrss`` from ``os.wait4``).

Jobs are rows in :data:`JOBS`; a later command is benchmarked by adding a row. Jobs whose command
the CLI does not offer yet are skipped with a note.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import hashlib
import json
import math
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from lib_modeldoc.arch.tables import table  # noqa: E402
from lib_modeldoc.io.atomic import atomic_output  # noqa: E402
from lib_modeldoc.io.safetensors_write import OutTensor, build_header  # noqa: E402
from lib_modeldoc.samples import Spec, broken_position_ids, family_specs, write_safetensors_sample  # noqa: E402
from lib_modeldoc.report.units import human_bytes  # noqa: E402

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "modeldoc-bench")
# Bump when the way samples are generated changes, so that cached files are rewritten.
GENERATOR_VERSION = 1
CHUNK_ELEMENTS = 1 << 23  # random numbers drawn per step: 32 MB of float32
WEIGHT_STD = 0.02

SD1_CLIP_POSITION_IDS = "cond_stage_model.transformer.text_model.embeddings.position_ids"


# --------------------------------------------------------------------------------------------
# Samples


@dataclass(frozen=True)
class SampleContent:
    """The tensors of a sample in file order, and the exact values of the few that are not random.

    Tensors without a fixed value are random (normal, std 0.02) for floats; ``*position_ids``
    integer tensors are the correct ``0..76``.
    """

    specs: list[Spec]
    fixed: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """A benchmark input file: its name in the cache, how it is stored, and what it holds."""

    name: str
    description: str
    container: str  # "safetensors" or "ckpt" (torch zip, Lightning layout)
    seed: int
    content: Callable[[], SampleContent]


def _sd15_fp16() -> SampleContent:
    return SampleContent(family_specs("SD1", dtype="F16"))


def _sdxl_fp16() -> SampleContent:
    return SampleContent(family_specs("SDXL", dtype="F16"))


def _vae_fp16() -> SampleContent:
    return SampleContent(family_specs("VAE", dtype="F16"))


def _lora_leftovers(modules: int = 4, rank: int = 8) -> list[Spec]:
    """The first few text-encoder LoRA tensors (``lora_te_*``), as a careless merge leaves them."""
    specs = []
    for key, shape in list(table("lora_clip_sd1_a").shapes.items())[: modules * 3]:
        specs.append(Spec(key, "F32", tuple(rank if d == -1 else d for d in shape)))
    return specs


def _sd15_fp32_ema_junk() -> SampleContent:
    """SD1 fp32 + EMA, an ``embedding_manager`` CLIP copy, LoRA leftovers, float position_ids."""
    specs = [
        Spec(s.key, "F32", s.shape) if s.key == SD1_CLIP_POSITION_IDS else s
        for s in family_specs("SD1", dtype="F32", ema=True)
    ]
    specs += [
        Spec(f"embedding_manager.embedder.transformer.text_model.{key}", "F32", tuple(shape))
        for key, shape in table("clip_l").shapes.items()
        if not key.endswith("position_ids")
    ]
    specs += _lora_leftovers()
    specs += [Spec("model_ema.decay", "F32", ()), Spec("model_ema.num_updates", "I32", ())]
    fixed = {
        SD1_CLIP_POSITION_IDS: broken_position_ids({76: 75.9975}),
        "model_ema.decay": np.array(0.9999, dtype=np.float32),
        "model_ema.num_updates": np.array(500_000, dtype=np.int32),
    }
    return SampleContent(specs, fixed)


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample("sd15-fp16.safetensors", "SD1.5 fp16, UNet + VAE + CLIP-L, correct int64 position_ids",
               "safetensors", 15, _sd15_fp16),
        Sample("sd15-fp32-ema-junk.ckpt", "SD1.5 fp32 + EMA, embedding_manager CLIP copy, lora_te_* "
               "leftovers, float position_ids (76 -> 75.9975); torch zip, Lightning layout",
               "ckpt", 1532, _sd15_fp32_ema_junk),
        Sample("sdxl-fp16.safetensors", "SDXL base fp16, UNet + VAE + CLIP-L + CLIP-G",
               "safetensors", 1024, _sdxl_fp16),
        Sample("sd-vae-fp16.safetensors", "the SD1/SD2/SDXL VAE alone, fp16 (83.7 M values)",
               "safetensors", 8, _vae_fp16),
    )
}


def content_digest(sample: Sample, content: SampleContent) -> str:
    """A hash of everything that decides a sample's bytes, stored in its ``.ok`` stamp."""
    h = hashlib.sha256()
    head = {"generator": GENERATOR_VERSION, "container": sample.container, "seed": sample.seed,
            "std": WEIGHT_STD, "chunk": CHUNK_ELEMENTS}
    h.update(json.dumps(head, sort_keys=True).encode())
    for spec in content.specs:
        h.update(f"{spec.key}|{spec.dtype}|{list(spec.shape)}\n".encode())
    for key in sorted(content.fixed):
        h.update(key.encode() + np.ascontiguousarray(content.fixed[key]).tobytes())
    return h.hexdigest()


def stamp_path(path: str) -> str:
    """Where the completion stamp of a sample file lives."""
    return path + ".ok"


def read_stamp(path: str) -> dict[str, Any] | None:
    """The stamp of ``path``, or ``None`` if it is missing or unreadable."""
    try:
        with open(stamp_path(path), encoding="utf-8") as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def is_cached(sample: Sample, path: str, digest: str) -> bool:
    """True when ``path`` is complete and was written from the same content as now."""
    stamp = read_stamp(path)
    if stamp is None or stamp.get("digest") != digest or stamp.get("name") != sample.name:
        return False
    try:
        return os.path.getsize(path) == stamp.get("size")
    except OSError:
        return False


def write_stamp(sample: Sample, path: str, digest: str, seconds: float) -> None:
    """Record that ``path`` is complete (written after the file itself is renamed into place)."""
    stamp = {
        "name": sample.name,
        "description": sample.description,
        "digest": digest,
        "size": os.path.getsize(path),
        "generator": GENERATOR_VERSION,
        "seconds": round(seconds, 1),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with atomic_output(stamp_path(path)) as f:
        f.write(json.dumps(stamp, indent=2).encode() + b"\n")


# --------------------------------------------------------------------------------------------
# Sample generation (runs in a spawned child so that its memory is given back afterwards)


def _torch_dtype(code: str) -> Any:
    import torch

    return {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64,
            "I32": torch.int32, "I64": torch.int64}[code]


def _is_float(code: str) -> bool:
    return code in ("F16", "BF16", "F32", "F64")


def _not_random(spec: Spec, content: SampleContent) -> Any:
    """The torch tensor for a spec whose value is fixed (or correct position_ids), else ``None``."""
    import torch

    if spec.key in content.fixed:
        return torch.from_numpy(np.ascontiguousarray(content.fixed[spec.key]))
    if spec.key.endswith("position_ids") and not _is_float(spec.dtype):
        return torch.arange(math.prod(spec.shape), dtype=_torch_dtype(spec.dtype)).reshape(spec.shape)
    if not _is_float(spec.dtype):
        raise ValueError(f"{spec.key}: no value given for an integer tensor")
    return None


def random_chunks(spec: Spec, generator: Any, scratch: Any) -> Iterator[Any]:
    """A float tensor's random values in ``spec.dtype``, drawn in float32 a chunk at a time."""
    total = math.prod(spec.shape)
    dtype = _torch_dtype(spec.dtype)
    for start in range(0, total, CHUNK_ELEMENTS):
        part = scratch[: min(CHUNK_ELEMENTS, total - start)]
        part.normal_(0.0, WEIGHT_STD, generator=generator)
        yield part if dtype == scratch.dtype else part.to(dtype)


def _write_bytes(f: BinaryIO, tensor: Any) -> None:
    import torch

    f.write(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().data)


def write_safetensors_stream(f: BinaryIO, content: SampleContent, seed: int) -> None:
    """Write a safetensors file one chunk at a time: memory stays near one chunk."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    scratch = torch.empty(CHUNK_ELEMENTS, dtype=torch.float32)
    # The header only needs keys, dtypes and shapes; the data is written below, chunk by chunk.
    f.write(build_header([OutTensor(s.key, s.dtype, s.shape, lambda: ()) for s in content.specs]))
    for spec in content.specs:
        exact = _not_random(spec, content)
        if exact is not None:
            if exact.dtype != _torch_dtype(spec.dtype) or tuple(exact.shape) != spec.shape:
                raise ValueError(f"{spec.key}: fixed value does not match its spec")
            _write_bytes(f, exact)
            continue
        for chunk in random_chunks(spec, generator, scratch):
            _write_bytes(f, chunk)


def build_state_dict(content: SampleContent, seed: int) -> dict[str, Any]:
    """The whole state dict in memory (torch.save needs it): about the size of the file."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    scratch = torch.empty(CHUNK_ELEMENTS, dtype=torch.float32)
    state: dict[str, Any] = {}
    for spec in content.specs:
        exact = _not_random(spec, content)
        if exact is not None:
            state[spec.key] = exact.clone()
            continue
        tensor = torch.empty(spec.shape, dtype=_torch_dtype(spec.dtype))
        flat, start = tensor.view(-1), 0
        for chunk in random_chunks(spec, generator, scratch):
            flat[start:start + chunk.numel()] = chunk
            start += chunk.numel()
        state[spec.key] = tensor
    return state


def write_ckpt(f: BinaryIO, content: SampleContent, seed: int) -> None:
    """Write a torch zip checkpoint in the layout PyTorch Lightning saves."""
    import torch

    checkpoint = {
        "epoch": 6,
        "global_step": 470000,
        "pytorch-lightning_version": "1.4.2",
        "state_dict": build_state_dict(content, seed),
    }
    torch.save(checkpoint, f)


def generate_sample(name: str, path: str) -> None:
    """Child-process entry point: write one sample through a temporary file, then stamp it."""
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    sample = SAMPLES[name]
    content = sample.content()
    digest = content_digest(sample, content)
    expected = sum(s.nbytes for s in content.specs)
    start = time.perf_counter()
    with atomic_output(path, expected_size=expected) as f:
        if sample.container == "safetensors":
            write_safetensors_stream(f, content, sample.seed)
        else:
            write_ckpt(f, content, sample.seed)
    write_stamp(sample, path, digest, time.perf_counter() - start)


def ensure_small_samples(names: Sequence[str], cache: str) -> dict[str, str]:
    """``--small``: the safetensors samples written *sparse* (real keys and shapes, zeros, a hole the
    filesystem does not allocate: a few KB of disk each), rewritten on every run; name -> path.

    For checking the bench and the start-up jobs quickly, not for the README's figures: the
    ``.ckpt`` sample (torch.save needs its 8 GB in memory) has no sparse form and is left out.
    """
    folder = os.path.join(cache, "small")
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for name in names:
        sample = SAMPLES[name]
        if sample.container != "safetensors":
            continue
        content = sample.content()
        values = dict(content.fixed)
        for spec in content.specs:  # integer position_ids hold their correct values, as in the full sample
            if spec.key.endswith("position_ids") and not _is_float(spec.dtype) and spec.key not in values:
                values[spec.key] = np.arange(math.prod(spec.shape), dtype=np.int64).reshape(spec.shape)
        paths[name] = write_safetensors_sample(os.path.join(folder, name), content.specs, values)
        print(f"sample {name}: written sparse ({human_bytes(os.path.getsize(paths[name]))} apparent)")
    return paths


def with_samples(jobs: list[Job], available: set[str]) -> list[Job]:
    """The jobs restricted to the file sets whose samples are available (a note for each one dropped)."""
    kept = []
    for job in jobs:
        sets = tuple(s if len(s) > 1 else s[0] for s in job.file_sets() if set(s) <= available)
        if len(sets) < len(job.file_sets()):
            print(f"note: {job.name}: skipping the file sets with a sample --small has not got")
        if sets:
            kept.append(dataclasses.replace(job, files=sets))
    return kept


def remove_leftovers(path: str) -> None:
    """Delete a sample's stale stamp and the temporary files of an interrupted earlier write."""
    folder, name = os.path.split(path)
    leftovers = [stamp_path(path)] + glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.partial"))
    for leftover in leftovers:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(leftover)


def ensure_samples(names: Sequence[str], cache: str) -> dict[str, str]:
    """Make sure every named sample is in ``cache``; returns name -> path. Prints what it does."""
    os.makedirs(cache, exist_ok=True)
    paths = {}
    for name in names:
        sample = SAMPLES[name]
        path = os.path.join(cache, name)
        paths[name] = path
        if is_cached(sample, path, content_digest(sample, sample.content())):
            print(f"sample {name}: cached ({human_bytes(os.path.getsize(path))})")
            continue
        remove_leftovers(path)
        print(f"sample {name}: writing ({sample.description}) ...", flush=True)
        start = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(target=generate_sample, args=(name, path))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"bench: writing sample {name} failed (exit {child.exitcode})")
        print(f"sample {name}: written, {human_bytes(os.path.getsize(path))} in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
    return paths


# --------------------------------------------------------------------------------------------
# Jobs


@dataclass(frozen=True)
class Goal:
    """A target a job should meet: wall time and peak RSS (decimal MB) per run."""

    wall_s: float
    rss_mb: float

    def describe(self) -> str:
        return f"<= {self.wall_s:g} s, <= {self.rss_mb:g} MB"

    def met(self, wall_s: float, rss_mb: float) -> bool:
        return wall_s <= self.wall_s and rss_mb <= self.rss_mb


FileSet = tuple[str, ...]


@dataclass(frozen=True)
class Job:
    """One benchmarked operation, run once per entry of ``files``.

    ``argv_template`` is what follows ``python -m lib_modeldoc`` (or ``python`` for a
    ``runner="python"`` job). Placeholders: ``{file}`` (the first file of the entry),
    ``{file0}``, ``{file1}``, ... (each file of a multi-file entry), ``{dir}`` (the first
    file's folder), ``{out}`` (a path
    ``out{out_suffix}`` in a fresh temporary folder, deleted after each run) and ``{outdir}``
    (that folder).
    """

    name: str
    argv_template: tuple[str, ...]
    files: tuple[str | FileSet, ...]
    goal: Goal | None = None
    out_suffix: str = ""
    runner: str = "modeldoc"  # "modeldoc": python -m lib_modeldoc; "python": plain python
    baseline: bool = False
    floor: str | None = None  # a key of FLOORS: the least such a job could cost, timed beside it
    env: tuple[tuple[str, str], ...] = ()  # set for the job's runs (not its floor's)
    note: str = ""  # what sets this row apart from others of the same job, printed beside its name

    @property
    def command(self) -> str | None:
        """The CLI command the job needs (its first non-option argument), for modeldoc jobs."""
        if self.runner != "modeldoc":
            return None
        return next((a for a in self.argv_template if not a.startswith("-")), None)

    def file_sets(self) -> list[FileSet]:
        return [(f,) if isinstance(f, str) else tuple(f) for f in self.files]

    def uses_output(self) -> bool:
        return any("{out}" in a or "{outdir}" in a for a in self.argv_template)


SD15_FP16 = "sd15-fp16.safetensors"
SD15_CKPT = "sd15-fp32-ema-junk.ckpt"
SDXL_FP16 = "sdxl-fp16.safetensors"
SD_VAE = "sd-vae-fp16.safetensors"
INSPECT_GOAL = Goal(wall_s=0.5, rss_mb=120)
READ, SHA256, SHA256_TWO, STARTUP = "read pass", "sha256 pass", "2 sha256 streams", "python start-up"
READ_WRITE = "read + write"  # read the sources, write and fsync as many bytes as the job's output
WRITE = "write"  # only the write + fsync: the disk's share, which a job that reads while it writes cannot beat
NO_LIBDEFLATE = (("MODELDOC_NO_LIBDEFLATE", "1"),)  # CRC-32 by zlib, as where the system has no libdeflate
CONVERT_GOAL = Goal(wall_s=12, rss_mb=1000)

JOBS: list[Job] = [
    Job("inspect", ("inspect", "{file}"), (SD15_FP16, SD15_CKPT, SDXL_FP16), INSPECT_GOAL, floor=STARTUP),
    Job("inspect-json", ("inspect", "{file}", "--json"), (SD15_CKPT,), INSPECT_GOAL, floor=STARTUP),
    # Prune + fp16 of the 8 GB fp32 .ckpt (EMA, junk, broken CLIP) to a 2.1 GB .safetensors.
    Job("convert", ("convert", "{file}", "-o", "{out}", "--fix-clip"), (SD15_CKPT,), CONVERT_GOAL,
        out_suffix=".safetensors", floor=READ_WRITE),
    Job("convert", ("convert", "{file}", "-o", "{out}", "--fix-clip"), (SD15_CKPT,), CONVERT_GOAL,
        out_suffix=".safetensors", floor=WRITE),
    # A plain prune of an fp16 model (nothing to drop or cast: a streamed copy).
    Job("convert-prune", ("convert", "{file}", "-o", "{out}"), (SD15_FP16,), Goal(wall_s=12, rss_mb=1000),
        out_suffix=".safetensors", floor=READ_WRITE),
    Job("convert-ckpt", ("convert", "{file}", "-o", "{out}"), (SD15_CKPT,), CONVERT_GOAL, out_suffix=".ckpt",
        floor=READ_WRITE),
    Job("export-vae", ("export", "{file}", "--component", "vae", "-o", "{out}"), (SDXL_FP16,),
        out_suffix=".safetensors"),
    Job("replace-vae", ("replace", "{file0}", "--component", "vae", "--from", "{file1}", "-o", "{out}"),
        ((SD15_FP16, SDXL_FP16),), out_suffix=".safetensors"),
    # hash computes two SHA-256 streams (the file; AutoV3 = the data section after the header) in
    # one read on two threads: timed against one plain SHA-256 pass and against two such streams
    # run side by side, with the system's libdeflate CRC-32 where it has one and with zlib's.
    Job("hash", ("hash", "{file}"), (SD15_FP16, SDXL_FP16), floor=SHA256),
    Job("hash", ("hash", "{file}"), (SD15_FP16, SDXL_FP16), floor=SHA256_TWO),
    Job("hash", ("hash", "{file}"), (SD15_FP16, SDXL_FP16), floor=SHA256, env=NO_LIBDEFLATE, note="zlib crc"),
    Job("inspect-scan", ("inspect", "{file}", "--scan"), (SDXL_FP16,), floor=READ),
    Job("compare", ("compare", "{file0}", "{file1}", "--json"), ((SD15_FP16, SD15_CKPT),), floor=READ),
    Job("audit", ("audit", "{dir}", "--json"), (SD15_FP16,)),  # the whole sample folder
    # The VAE test (a real-size VAE, random weights: the time does not depend on the values). The
    # default runs fp32 (peaks per layer) and then the confirming fp16 pass where torch has fp16
    # convolution on the CPU; --no-fp16-run is the fp32 pass alone.
    Job("vae-test-256", ("inspect", "{file}", "--json", "--vae-test", "--vae-size", "256"), (SD_VAE,)),
    Job("vae-test-256-fp32", ("inspect", "{file}", "--json", "--vae-test", "--vae-size", "256", "--no-fp16-run"),
        (SD_VAE,)),
    Job("vae-test-512", ("inspect", "{file}", "--json", "--vae-test", "--vae-size", "512"), (SD_VAE,)),
    Job("vae-test-512-fp32", ("inspect", "{file}", "--json", "--vae-test", "--vae-size", "512", "--no-fp16-run"),
        (SD_VAE,)),
]

# The whole file loaded the way older extensions do; Model Doctor never does this. argv[2] == "read"
# also reads every tensor once: safetensors >= 0.4 maps the file lazily, so load_file alone reads
# little, while the WebUI (or an extension's check) then goes through every tensor.
_FULL_LOAD = (
    "import sys\n"
    "path, read = sys.argv[1], sys.argv[2] == 'read'\n"
    "if path.endswith('.safetensors'):\n"
    "    from safetensors.torch import load_file\n"
    "    state = load_file(path)\n"
    "else:\n"
    "    import torch\n"
    "    checkpoint = torch.load(path, map_location='cpu', weights_only=False)\n"
    "    state = checkpoint.get('state_dict', checkpoint)\n"
    "if read:\n"
    "    for tensor in state.values():\n"
    "        tensor.clone()\n"
)

_SHA256 = (
    "import hashlib, sys\n"
    "h = hashlib.sha256()\n"
    "with open(sys.argv[1], 'rb') as f:\n"
    "    while block := f.read(16 << 20):\n"
    "        h.update(block)\n"
)

_READ = (
    "import sys\n"
    "buffer = bytearray(16 << 20)\n"
    "for path in sys.argv[1:]:\n"
    "    with open(path, 'rb', buffering=0) as f:\n"
    "        while f.readinto(buffer):\n"
    "            pass\n"
)

_SHA256_ALL = (
    "import hashlib, sys\n"
    "for path in sys.argv[1:]:\n"
    "    h = hashlib.sha256()\n"
    "    with open(path, 'rb') as f:\n"
    "        while block := f.read(16 << 20):\n"
    "            h.update(block)\n"
)

# What a conversion cannot beat: read its sources once, write as many bytes as its output (known from
# the warm-up run) into a file beside the samples, fsync it (as the writer does) and remove it.
_READ_WRITE = (
    "import os, sys\n"
    "out, size = sys.argv[1], int(sys.argv[2])\n"
    "buffer = bytearray(16 << 20)\n"
    "for path in sys.argv[3:]:\n"
    "    with open(path, 'rb', buffering=0) as f:\n"
    "        while f.readinto(buffer):\n"
    "            pass\n"
    "with open(out, 'wb', buffering=0) as f:\n"
    "    while size > 0:\n"
    "        size -= f.write(memoryview(buffer)[:min(size, len(buffer))])\n"
    "    os.fsync(f.fileno())\n"
    "os.remove(out)\n"
)

# What hash cannot beat while it computes AutoV3: the file's SHA-256 and the data section's
# (from 8 + header length), each in its own thread reading its own blocks.
_SHA256_TWO = (
    "import hashlib, struct, sys, threading\n"
    "def stream(path, start):\n"
    "    h = hashlib.sha256()\n"
    "    with open(path, 'rb') as f:\n"
    "        f.seek(start)\n"
    "        while block := f.read(16 << 20):\n"
    "            h.update(block)\n"
    "for path in sys.argv[1:]:\n"
    "    with open(path, 'rb') as f:\n"
    "        (n,) = struct.unpack('<Q', f.read(8))\n"
    "    threads = [threading.Thread(target=stream, args=(path, start)) for start in (0, 8 + n)]\n"
    "    for t in threads:\n"
    "        t.start()\n"
    "    for t in threads:\n"
    "        t.join()\n"
)

# The floor of a job, timed in the same run, each floor run just before the job's run: a read-only
# pass over the job's files, that pass plus writing and fsyncing as many bytes as the job writes,
# one hashlib SHA-256 pass over them, or bare Python start-up. A busy
# machine slows both alike, so the ratio job/floor means something where the seconds do not.
FLOORS: dict[str, tuple[str, ...]] = {
    READ: ("-c", _READ),
    SHA256: ("-c", _SHA256_ALL),
    SHA256_TWO: ("-c", _SHA256_TWO),
    STARTUP: ("-c", "pass"),
    READ_WRITE: ("-c", _READ_WRITE),  # + the scratch file, the output's size, the sources (floor_argv)
    WRITE: ("-c", _READ_WRITE),  # the same with no sources
}
# Start-up references printed once per run (same interleaving): Python alone, Python + numpy.
REFERENCES: dict[str, tuple[str, ...]] = {"python -c pass": ("-c", "pass"), "python -c 'import numpy'": ("-c", "import numpy")}


BASELINE_JOBS: list[Job] = [
    Job("baseline-load", ("-c", _FULL_LOAD, "{file}", "load"), (SD15_FP16, SD15_CKPT, SDXL_FP16),
        runner="python", baseline=True),
    Job("baseline-load-read", ("-c", _FULL_LOAD, "{file}", "read"), (SD15_FP16, SD15_CKPT, SDXL_FP16),
        runner="python", baseline=True),
    # The yardstick of the hash and scan goals: one plain sha256 pass over the file.
    Job("baseline-sha256", ("-c", _SHA256, "{file}"), (SD15_FP16, SDXL_FP16), runner="python", baseline=True),
]


def cli_commands(python: str) -> set[str] | None:
    """The commands ``python -m lib_modeldoc --help`` lists, or ``None`` if it cannot run."""
    proc = subprocess.run([python, "-m", "lib_modeldoc", "--help"], cwd=REPO, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        return None
    commands: set[str] = set()
    in_positionals = False
    for line in proc.stdout.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            in_positionals = line.startswith("positional arguments")
            continue
        match = re.match(r"^ {4}([a-z][\w-]*)(?: {2,}|$)", line)
        if in_positionals and match:
            commands.add(match.group(1))
    return commands


def select_jobs(only: Sequence[str] | None, baseline: bool) -> list[Job]:
    """The jobs to run: all (plus baselines with ``baseline``), or those named in ``only``."""
    candidates = JOBS + (BASELINE_JOBS if baseline or only else [])
    if not only:
        return candidates
    known = {j.name for j in JOBS + BASELINE_JOBS}
    unknown = [n for n in only if n not in known]
    if unknown:
        raise SystemExit(f"bench: unknown job(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [j for j in candidates if j.name in only]


def runnable_jobs(jobs: list[Job], python: str) -> list[Job]:
    """Drop (with a note) jobs whose CLI command does not exist yet."""
    commands = cli_commands(python)
    if commands is None:
        raise SystemExit(f"bench: '{python} -m lib_modeldoc --help' failed; is the environment set up?")
    kept = []
    for job in jobs:
        if job.command is not None and job.command not in commands:
            print(f"note: skipping job {job.name}: the CLI has no '{job.command}' command yet")
            continue
        kept.append(job)
    return kept


# --------------------------------------------------------------------------------------------
# Measuring


@dataclass(frozen=True)
class Run:
    """One child process: wall and CPU seconds, peak RSS in KiB, exit status, end of its stderr."""

    wall_s: float
    cpu_s: float
    maxrss_kib: int
    returncode: int
    stderr_tail: str


def child_environment(extra: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """This environment plus ``extra``, less PYTHONDONTWRITEBYTECODE: children cache their bytecode as
    a normal install does (the warm-up run compiles), else every run would compile every module again
    (about 0.05 s more of start-up for inspect)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def run_child(argv: list[str], env: Sequence[tuple[str, str]] = ()) -> Run:
    """Run ``argv`` in the repository root (``env``: variables added) and measure it as a whole process."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                env=child_environment(env))
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            raise
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        tail = err.read()[-2000:].decode("utf-8", "replace")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode, tail)


_PLACEHOLDER = re.compile(r"\{(file\d*|dir|out|outdir)\}")


def expand(template: Sequence[str], files: FileSet, outdir: str | None, out_suffix: str) -> list[str]:
    """Fill a job's placeholders."""
    values = {"file": files[0], "dir": os.path.dirname(files[0]), **{f"file{i}": f for i, f in enumerate(files)}}
    if outdir is not None:
        values.update(out=os.path.join(outdir, "out" + out_suffix), outdir=outdir)

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ValueError(f"placeholder {match.group(0)} has no value here")
        return values[match.group(1)]

    # Only these placeholders are replaced, so code passed with ``-c`` may contain braces.
    return [_PLACEHOLDER.sub(fill, arg) for arg in template]


@contextlib.contextmanager
def output_folder(job: Job, cache: str) -> Iterator[str | None]:
    """A fresh temporary folder for one run of a job that writes output (beside the samples)."""
    if not job.uses_output():
        yield None
        return
    scratch = os.path.join(cache, "tmp")
    os.makedirs(scratch, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=f"{job.name}-", dir=scratch)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(scratch)  # only when empty


def floor_argv(floor: str, sources: tuple[str, ...], cache: str, output_size: int) -> list[str]:
    """The arguments of a floor's ``python -c`` run over the job's ``sources``."""
    if floor == STARTUP:
        return list(FLOORS[floor])
    if floor in (READ_WRITE, WRITE):
        scratch = os.path.join(cache, f"floor-write-{os.getpid()}.tmp")
        return [*FLOORS[floor], scratch, str(output_size), *(sources if floor == READ_WRITE else ())]
    return [*FLOORS[floor], *sources]


def folder_size(folder: str) -> int:
    """Bytes of the files a run wrote into ``folder``."""
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def job_argv(job: Job, python: str, files: FileSet, outdir: str | None) -> list[str]:
    prefix = [python, "-m", "lib_modeldoc"] if job.runner == "modeldoc" else [python]
    return prefix + expand(job.argv_template, files, outdir, job.out_suffix)


def ratio(value: float, floor: float) -> str:
    """``value / floor`` as ``1.23x``; ``-`` when the floor is too small to divide by."""
    return f"{value / floor:.2f}x" if floor > 1e-3 else "-"


@dataclass
class Result:
    """The measurements of one job on one file set."""

    job: str
    files: list[str]
    size_bytes: int
    baseline: bool
    goal: str | None
    walls_s: list[float] = field(default_factory=list)
    cpus_s: list[float] = field(default_factory=list)
    maxrss_kib: list[int] = field(default_factory=list)
    error: str | None = None
    loadavg_before: float = 0.0
    loadavg_after: float = 0.0
    loadavgs: list[float] = field(default_factory=list)  # 1-minute load average at each timed run
    floor: str | None = None
    floor_walls_s: list[float] = field(default_factory=list)
    floor_cpus_s: list[float] = field(default_factory=list)

    @property
    def median_load(self) -> float:
        return statistics.median(self.loadavgs) if self.loadavgs else math.nan

    @property
    def floor_wall_s(self) -> float:
        return statistics.median(self.floor_walls_s) if self.floor_walls_s else math.nan

    @property
    def floor_cpu_s(self) -> float:
        return statistics.median(self.floor_cpus_s) if self.floor_cpus_s else math.nan

    def versus_floor(self) -> str:
        """The job against its floor: seconds over start-up, or the ratio of wall and CPU times."""
        if self.floor is None or not self.floor_walls_s or self.error:
            return ""
        if self.floor == STARTUP:
            return (f"+{self.median_wall_s - self.floor_wall_s:.3f} s wall, "
                    f"+{self.median_cpu_s - self.floor_cpu_s:.3f} s cpu")
        return f"{ratio(self.median_wall_s, self.floor_wall_s)} wall, {ratio(self.median_cpu_s, self.floor_cpu_s)} cpu"

    @property
    def median_wall_s(self) -> float:
        return statistics.median(self.walls_s) if self.walls_s else math.nan

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.cpus_s) if self.cpus_s else math.nan

    @property
    def peak_rss_mb(self) -> float:
        return max(self.maxrss_kib) * 1024 / 1e6 if self.maxrss_kib else math.nan


def measure(job: Job, files: FileSet, paths: dict[str, str], python: str, repeat: int, cache: str) -> Result:
    """Warm up once (untimed), then time ``repeat`` runs of ``job`` on ``files``."""
    real = tuple(paths[f] for f in files)
    result = Result(f"{job.name} ({job.note})" if job.note else job.name, list(files), sum(os.path.getsize(p) for p in real), job.baseline,
                    job.goal.describe() if job.goal else None, loadavg_before=os.getloadavg()[0], floor=job.floor)
    output_size = 0  # of the last run: the read + write floor writes as much (0 before the warm-up)
    for attempt in range(repeat + 1):
        floor = None
        if job.floor is not None:  # interleaved: the floor's run, then the job's, under the same load
            floor = run_child([python, *floor_argv(job.floor, real, cache, output_size)])
        load = os.getloadavg()[0]
        with output_folder(job, cache) as outdir:
            run = run_child(job_argv(job, python, real, outdir), job.env)
            output_size = folder_size(outdir) if outdir is not None else 0
        if run.returncode != 0:
            last = run.stderr_tail.strip().splitlines()
            result.error = f"exit {run.returncode}: {last[-1] if last else '(no stderr)'}"
            break
        if attempt > 0:  # attempt 0 is the warm-up
            result.walls_s.append(run.wall_s)
            result.cpus_s.append(run.cpu_s)
            result.maxrss_kib.append(run.maxrss_kib)
            result.loadavgs.append(load)
            if floor is not None and floor.returncode == 0:
                result.floor_walls_s.append(floor.wall_s)
                result.floor_cpus_s.append(floor.cpu_s)
    result.loadavg_after = os.getloadavg()[0]
    return result


def measure_references(python: str, repeat: int) -> dict[str, dict[str, float]]:
    """Bare start-up figures of this run (median CPU and wall, load average), interleaved."""
    runs: dict[str, list[Run]] = {name: [] for name in REFERENCES}
    loads = []
    for attempt in range(repeat + 1):
        for name, argv in REFERENCES.items():
            run = run_child([python, *argv])
            if attempt > 0 and run.returncode == 0:
                runs[name].append(run)
        loads.append(os.getloadavg()[0])
    return {name: {"wall_s": statistics.median(r.wall_s for r in got), "cpu_s": statistics.median(r.cpu_s for r in got),
                   "load": statistics.median(loads)}
            for name, got in runs.items() if got}


def format_references(references: dict[str, dict[str, float]]) -> str:
    return "start-up in this run: " + "; ".join(
        f"{name}: {ref['cpu_s']:.3f} s cpu, {ref['wall_s']:.3f} s wall (load {ref['load']:.2f})"
        for name, ref in references.items())


def run_jobs(jobs: list[Job], paths: dict[str, str], python: str, repeat: int, cache: str) -> list[Result]:
    """Measure every job on each of its file sets, printing progress."""
    results = []
    for job in jobs:
        for files in job.file_sets():
            print(f"running {job.name} on {' '.join(files)} (1 warm-up + {repeat}) ...", flush=True)
            results.append(measure(job, files, paths, python, repeat, cache))
    return results


# --------------------------------------------------------------------------------------------
# Reporting


def status_of(result: Result, job: Job | None) -> str:
    if result.error:
        return "FAILED"
    if job is None or job.goal is None:
        return ""
    return "ok" if job.goal.met(result.median_wall_s, result.peak_rss_mb) else "MISSED"


def format_table(results: list[Result], jobs: dict[str, Job], repeat: int) -> str:
    """The results as a fixed-width text table; baselines in their own, labelled section."""
    header = ("job", "file", "size", "wall s (median)", "cpu s (median)", "load", "floor (same run)",
              "floor wall s", "floor cpu s", "job vs floor", "peak RSS MB", "goal", "")
    lines: list[str] = []
    for baseline in (False, True):
        rows = [r for r in results if r.baseline == baseline]
        if not rows:
            continue
        if baseline:
            lines += ["", "BASELINE, not Model Doctor: the whole file loaded the way older extensions do "
                          "(torch.load weights_only=False / safetensors.torch.load_file);",
                      "baseline-load-read also reads every tensor once (load_file maps the file lazily)"]
        body = [(r.job, "+".join(r.files), human_bytes(r.size_bytes),
                 f"{r.median_wall_s:.3f}" if not r.error else "-",
                 f"{r.median_cpu_s:.3f}" if not r.error else "-",
                 f"{r.median_load:.2f}" if r.loadavgs else "-",
                 r.floor or "",
                 f"{r.floor_wall_s:.3f}" if r.floor_walls_s else "",
                 f"{r.floor_cpu_s:.3f}" if r.floor_cpus_s else "",
                 r.versus_floor(),
                 f"{r.peak_rss_mb:.0f}" if not r.error else "-",
                 r.goal or "", status_of(r, jobs.get(r.job))) for r in rows]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths).rstrip())
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in body]
        lines += [f"  {r.job} on {'+'.join(r.files)}: {r.error}" for r in rows if r.error]
    lines.append("")
    lines.append(f"median of {repeat} timed runs after 1 warm-up; peak RSS = max ru_maxrss of the child "
                 f"(MB = 10^6 bytes); load average {results[0].loadavg_before:.2f} at start, "
                 f"{results[-1].loadavg_after:.2f} at end" if results else "no results")
    return "\n".join(lines)


def environment(python: str) -> dict[str, Any]:
    """Where the figures were measured, saved with them."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    return {"python": python, "python_version": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "commit": git("rev-parse", "HEAD") or None,
            "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def save_json(out: str, results: list[Result], python: str, repeat: int,
              references: dict[str, dict[str, float]] | None = None) -> None:
    """Write the results (every run's figures, not only the summaries) to ``out``."""
    data = {
        "environment": environment(python),
        "repeat": repeat,
        "references": references or {},
        "results": [dict(dataclasses.asdict(r), median_wall_s=r.median_wall_s, median_cpu_s=r.median_cpu_s,
                         peak_rss_mb=r.peak_rss_mb, floor_wall_s=r.floor_wall_s, floor_cpu_s=r.floor_cpu_s,
                         median_load=r.median_load)
                    for r in results],
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def list_jobs() -> str:
    """The jobs and samples this script knows."""
    lines = ["jobs:"]
    for job in JOBS + BASELINE_JOBS:
        command = " ".join(job.argv_template) if job.runner == "modeldoc" else "python -c <load script>"
        files = ", ".join("+".join(s) for s in job.file_sets())
        label = "  (baseline, with --baseline)" if job.baseline else ""
        lines.append(f"  {job.name:<20} {command}  on {files}{label}")
    lines.append("samples:")
    lines += [f"  {s.name:<26} {s.description}" for s in SAMPLES.values()]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark Model Doctor on real-size synthetic checkpoints.")
    parser.add_argument("--cache", default=DEFAULT_CACHE, help=f"sample folder (default {DEFAULT_CACHE})")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per job and file (default 3)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this job (repeatable)")
    parser.add_argument("--baseline", action="store_true", help="also time a full load as older extensions do")
    parser.add_argument("--json", metavar="OUT", help="save the results as JSON")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the children (default: this one)")
    parser.add_argument("--prepare", action="store_true", help="only write the samples")
    parser.add_argument("--list", action="store_true", help="list jobs and samples, run nothing")
    parser.add_argument("--small", action="store_true",
                        help="sparse samples (zeros, a few KB of disk, written in seconds) instead of the 17 GB of "
                             "random ones, .ckpt jobs left out: checks the bench, not figures for the README")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    cache = os.path.abspath(os.path.expanduser(args.cache))
    if cache == REPO or cache.startswith(REPO + os.sep):
        parser.error("--cache must be outside the repository")
    args.cache = cache
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the samples the selected jobs need, run the jobs and print the table."""
    args = parse_args(argv)
    if args.list:
        print(list_jobs())
        return 0
    jobs = runnable_jobs(select_jobs(args.only, args.baseline), args.python)
    needed = list(dict.fromkeys(f for j in (JOBS if args.prepare else jobs) for s in j.file_sets() for f in s))
    if args.small:
        paths = ensure_small_samples(needed, args.cache)
        jobs = with_samples(jobs, set(paths))
    else:
        paths = ensure_samples(needed, args.cache)
    if args.prepare or not jobs:
        return 0
    references = measure_references(args.python, args.repeat)
    results = run_jobs(jobs, paths, args.python, args.repeat, args.cache)
    print()
    print(format_table(results, {j.name: j for j in jobs}, args.repeat))
    print(format_references(references))
    if args.small:
        print("--small: sparse samples (zeros, real headers): the inspect and hash figures stand (their cost does not "
              "depend on the values); the others only check the bench")
    if args.json:
        save_json(args.json, results, args.python, args.repeat, references)
        print(f"saved {args.json}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
