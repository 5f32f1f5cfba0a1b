"""``convert SRC -o OUT [options]`` and ``convert --batch DIR -o OUTDIR``: prune, repair, re-type."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..errors import ModelDocError, PlanError
from ..io.model import open_model
from ..operations.batch import BatchAction, plan_batch
from ..operations.convert import GROUPS, PART_ACTIONS, PRECISIONS, PRUNE_MODES, ConvertOptions, plan_convert
from ..operations.plan import Plan
from ..operations.sidecars import Sidecar, carry_sidecars
from ..operations.writer import WriteResult, write_plan
from ..report.advice import count
from ..report.units import human_bytes
from .progress_line import StderrProgress
from .wording import say

_FORMAT_OF_SUFFIX = {".safetensors": "safetensors", ".ckpt": "ckpt", ".pt": "ckpt", ".pth": "ckpt", ".bin": "ckpt"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("convert", help="prune, repair and re-type a model into a new file (the source is never changed)")
    p.add_argument("source", nargs="?", metavar="SRC", help="the model to convert")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (with --batch: output folder)")
    p.add_argument("--batch", metavar="DIR",
                   help="convert every checkpoint under DIR (subfolders too) into the -o folder, keeping the layout; "
                        "run again to resume")
    p.add_argument("--no-sidecars", action="store_true",
                   help="do not copy the model's .yaml, preview, .json and .civitai.info files to the output's name")
    add_convert_options(p)
    p.add_argument("--format", choices=("safetensors", "ckpt", "diffusers"),
                   help="output format (default: from OUT's suffix); diffusers writes a pipeline (or ControlNet) folder OUT")
    p.add_argument("--tokenizers", metavar="DIR",
                   help="with --format diffusers: take the CLIP tokenizer files from DIR (a diffusers folder, or a "
                        "folder with vocab.json and merges.txt); default: the Hugging Face cache, Forge's bundled files")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--dry-run", action="store_true", help="print the plan and sizes; write nothing")
    p.add_argument("--verify", action="store_true", help="after writing, re-read every tensor and compare hashes")
    p.add_argument("--json", action="store_true", help="print a JSON result")
    p.set_defaults(run=run)


def add_convert_options(p: argparse.ArgumentParser) -> None:
    """The options shared by ``convert`` and the component commands."""
    p.add_argument("--precision", choices=tuple(PRECISIONS), default="fp16", help="float precision (default: fp16)")
    p.add_argument("--prune", choices=PRUNE_MODES, default="no-ema",
                   help="none; no-ema drops the EMA copy (default); ema-only makes the EMA weights the UNet")
    p.add_argument("--keep-junk", action="store_true",
                   help="keep the named junk groups too (embedding_manager, LoRA leftovers, a stray control_model ...)")
    p.add_argument("--drop-unknown", action="store_true",
                   help="also drop tensors no table describes that are in no junk group (kept by default)")
    p.add_argument("--force", action="store_true", help="convert a model whose architecture is unknown (keeps every tensor)")
    p.add_argument("--fix-clip", action="store_true", help="reset CLIP position_ids to int64 0..76")
    for group in GROUPS:
        p.add_argument(f"--{group}", choices=PART_ACTIONS, default="convert",
                       help=f"{group} tensors: convert to --precision (default), copy as they are, or delete")
    p.add_argument("--bake-vae", metavar="FILE", help="put this VAE (any .pt/.ckpt/.safetensors holding one) into the model")
    p.add_argument("--strip-metadata", action="store_true", help="drop the safetensors metadata (keeps only format=pt)")


def output_format(output: str, explicit: str | None) -> str:
    """``--format``, or the format the output's suffix names."""
    fmt = explicit or _FORMAT_OF_SUFFIX.get(os.path.splitext(output)[1].lower())
    if fmt is None:
        raise PlanError(f"{output}: cannot tell the output format from its suffix; add --format safetensors or --format ckpt")
    return fmt


def write_with_progress(plan: Plan, output: str, args: argparse.Namespace, sources: tuple[str, ...] = ()) -> WriteResult:
    """Carry out ``plan`` with a progress line on stderr (``--overwrite`` / ``--verify`` from ``args``).

    ``sources``: more files that must not be replaced (a batch's other sources).
    """
    progress = StderrProgress(f"writing {os.path.basename(output)}")
    try:
        return write_plan(plan, output, overwrite=args.overwrite, verify=args.verify, progress=progress,
                          sources=sources)
    finally:
        progress.finish()


def options_from(args: argparse.Namespace, output: str) -> ConvertOptions:
    fmt = output_format(output, args.format)
    return ConvertOptions(
        precision=args.precision, prune=args.prune, keep_junk=args.keep_junk, drop_unknown=args.drop_unknown, fix_clip=args.fix_clip,
        parts={g: getattr(args, g) for g in GROUPS}, bake_vae=args.bake_vae, format=fmt,
        strip_metadata=args.strip_metadata, force=args.force,
    )


def convert_one(source: str, output: str, args: argparse.Namespace, others: tuple[str, ...] = ()) -> dict[str, Any]:
    """Plan (and unless ``--dry-run`` write) one conversion; returns its JSON result.

    ``others``: the batch's other sources, never replaced by this output.
    """
    if args.format == "diffusers":
        return _to_diffusers(source, output, args)
    if getattr(args, "tokenizers", None):
        raise PlanError("--tokenizers goes with --format diffusers (a single file holds no tokenizer)")
    options = options_from(args, output)
    with open_model(source) as model:
        vae = open_model(options.bake_vae) if options.bake_vae else None
        try:
            plan = plan_convert(model, options, bake_vae=vae)
            if args.dry_run:
                return {"dry_run": True, "output": output, **plan.to_dict(), "plan": plan.describe(say=say)}
            result = write_with_progress(plan, output, args, others)
            carried = [] if args.no_sidecars else carry_sidecars(source, output, overwrite=args.overwrite)
            return {**result.to_dict(), "source": source, "sidecars": [c.to_dict() for c in carried]}
        finally:
            if vae is not None:
                vae.close()


def _to_diffusers(source: str, output: str, args: argparse.Namespace) -> dict[str, Any]:
    """``--format diffusers``: the single file as a diffusers pipeline folder."""
    from ..operations.diffusers_export import plan_diffusers, write_diffusers

    options = options_from(argparse.Namespace(**{**vars(args), "format": "safetensors"}), output)
    with open_model(source) as model:
        plan = plan_diffusers(model, options, tokenizers=getattr(args, "tokenizers", None))
        if args.dry_run:
            lines = [f"Plan for {source} -> diffusers folder {output}"]
            lines += [f"  {os.path.join(c.folder, c.weights)}: {count(len(c.plan.entries), 'tensor')}, "
                      f"{human_bytes(c.plan.output_size)}" for c in plan.components]
            lines += [f"  {t.folder}/: from {t.files.origin}" for t in plan.tokenizers]
            if plan.scheduler is not None:
                lines.append(f"  scheduler: prediction_type={plan.scheduler['prediction_type']}")
            lines += [f"  warning: {w}" for w in plan.warnings]
            return {"dry_run": True, "output": output, **plan.to_dict(), "plan": "\n".join(lines)}
        progress = StderrProgress(f"writing {os.path.basename(output)}")
        try:
            result = write_diffusers(plan, output, overwrite=args.overwrite, verify=args.verify, progress=progress)
        finally:
            progress.finish()
    return {**result, "source": source, "sidecars": []}


def run(args: argparse.Namespace) -> int:
    if args.batch:
        if args.format == "diffusers":
            raise PlanError("--batch does not write diffusers folders yet; convert one model at a time")
        return _run_batch(args)
    if not args.source:
        raise PlanError("give a SRC model, or --batch DIR")
    result = convert_one(args.source, args.output, args)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "plan"}, indent=2))
    elif result.get("dry_run"):
        print(result["plan"])
        print(f"(dry run: nothing written; {args.output} would be {human_bytes(result['size_bytes'])})")
    else:
        _print_result(result)
    return 0


def _print_result(result: dict[str, Any]) -> None:
    print(f"Wrote {result['output']}: {human_bytes(result['size_bytes'])}, {count(result['keys'], 'tensor')}"
          + (", verified" if result.get("verified") else ""))
    for change in result.get("changes", []):
        print(f"  - {say(change)}")
    for folder, origin in result.get("tokenizers", {}).items():
        print(f"  {folder}/: copied from {origin}")
    for warning in result.get("warnings", []):
        print(f"  warning: {say(warning)}")
    print_sidecars([Sidecar(**s) for s in result.get("sidecars", [])])


def print_sidecars(carried: list[Sidecar]) -> None:
    """One line per sidecar file: copied, or why not."""
    for sidecar in carried:
        if sidecar.copied:
            print(f"  copied {os.path.basename(sidecar.source)} -> {os.path.basename(sidecar.target)}")
        else:
            print(f"  {os.path.basename(sidecar.target)}: {sidecar.note}")


def _run_batch(args: argparse.Namespace) -> int:
    folder, out_dir = args.batch, args.output
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise PlanError(f"{out_dir}: is a file; the batch output must be a folder")
    suffix = "." + (args.format or "safetensors")
    items = plan_batch(folder, out_dir, suffix, overwrite=args.overwrite, force=args.force)
    batch_sources = tuple(i.source for i in items)
    results, failures, skipped = [], [], []
    for item in items:
        if item.action is BatchAction.FAIL:
            failures.append({"source": item.source, "error": say(item.note)})
            print(f"modeldoc: error: {say(item.note)}", file=sys.stderr)
            continue
        if item.action is not BatchAction.CONVERT:
            skipped.append({"source": item.source, "reason": item.note})
            if not args.json:
                print(f"{item.source}: skipped ({item.note})")
            continue
        try:
            if not args.dry_run:
                os.makedirs(os.path.dirname(os.path.abspath(item.output)), exist_ok=True)
            result = convert_one(item.source, item.output, args, batch_sources)
        except (ModelDocError, OSError) as exc:
            message = say(exc) if isinstance(exc, ModelDocError) else f"{item.output}: {exc.strerror or exc}"
            failures.append({"source": item.source, "error": message})
            print(f"modeldoc: error: {message}", file=sys.stderr)
            continue
        results.append(result)
        if not args.json:
            verb = "would write" if result.get("dry_run") else "wrote"
            print(f"{item.source}: {verb} {item.output} ({human_bytes(result['size_bytes'])})")
    if args.json:
        print(json.dumps({"converted": [{k: v for k, v in r.items() if k != "plan"} for r in results],
                          "skipped": skipped, "failed": failures}, indent=2))
    else:
        print(f"Batch: {len(results)} converted, {len(skipped)} skipped, {len(failures)} failed, "
              f"of {len(items)} model files in {folder}")
    return 2 if failures else 0
