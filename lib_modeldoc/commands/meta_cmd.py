"""``meta FILE [--json]`` shows a safetensors file's metadata; with edits, writes a new file.

``meta FILE --set KEY=VALUE … --delete KEY … -o OUT`` writes OUT; ``--in-place`` replaces FILE
atomically (the one command that may replace its own source, and only with that flag). The tensor
bytes are copied unchanged, so AutoV3 stays the same; AutoV2 before and after is printed.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..analysis.audit import find_model_files
from ..errors import PlanError
from ..operations.meta import (
    COMMON_FIELDS, EditResult, MetadataEdit, MetadataView, edit_metadata, read_metadata, resolve_merge_inputs,
)
from .progress_line import StderrProgress

_PREVIEW_CHARS = 200  # long values (workflows, tag frequencies) are cut in the text view


def add_parser(sub: Any) -> None:
    p = sub.add_parser("meta", help="show or edit a safetensors file's metadata (tensors copied unchanged)")
    p.add_argument("path", metavar="FILE", help="a .safetensors file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="set a key (repeatable)")
    p.add_argument("--delete", action="append", default=[], metavar="KEY", help="remove a key (repeatable)")
    p.add_argument("--from-json", metavar="JSON_FILE",
                   help="replace all metadata with this JSON object of strings (then --delete/--set apply)")
    for short, key in COMMON_FIELDS.items():
        p.add_argument(f"--{short.replace('_', '-')}", dest=f"field_{short}", metavar="TEXT", help=f"set {key}")
    p.add_argument("-o", "--output", metavar="OUT", help="write the edited file here")
    p.add_argument("--in-place", action="store_true", help="replace FILE itself (atomically, when complete)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--models", metavar="DIR", help="find the merge recipe's models in this folder (by hash)")
    p.add_argument("--full", action="store_true", help="show long values in full")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    edit = _edit_from_args(args)
    if edit is None:
        if args.output or args.in_place:
            raise PlanError("nothing to change: give --set, --delete, --from-json or a field option")
        view = read_metadata(args.path)
        if args.models:
            view = _resolved(view, args.models)
        print(json.dumps(view.to_dict(), indent=2, ensure_ascii=False) if args.json else render_view(view, full=args.full))
        return 0
    if args.in_place and args.output and os.path.abspath(args.output) != os.path.abspath(args.path):
        raise PlanError("give either -o OUT or --in-place, not both")
    if not args.in_place and not args.output:
        raise PlanError("say where to write: -o OUT, or --in-place to replace the file")
    output = args.path if args.in_place else args.output
    progress = StderrProgress(f"writing {os.path.basename(output)}")
    try:
        result = edit_metadata(args.path, output, edit, overwrite=args.overwrite, in_place=args.in_place,
                               progress=progress)
    finally:
        progress.finish()
    print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) if args.json else render_result(result))
    return 0


def render_view(view: MetadataView, *, full: bool = False) -> str:
    """The text form: common fields, merge recipe with its models, then every key."""
    lines = [view.path]
    if not view.metadata:
        lines.append("  no metadata")
        return "\n".join(lines)
    if view.fields:
        lines.append("Fields:")
        width = max(len(k) for k in view.fields)
        lines += [f"  {name:<{width}}  {_short(value, full)}" for name, value in view.fields.items()]
    if view.merge_recipe is not None or view.merge_models:
        lines.append("Merge recipe:")
        recipe = view.merge_recipe or {}
        for key in ("type", "interp_method", "multiplier", "primary_model_hash", "secondary_model_hash",
                    "tertiary_model_hash", "custom_name", "bake_in_vae", "discard_weights"):
            if recipe.get(key) not in (None, ""):
                lines.append(f"  {key}: {_name_hash(recipe[key], view)}")
        for model in view.merge_models:
            where = f"  -> {model.found}" if model.found else ""
            lines.append(f"  model {model.sha256[:10]}  {model.name or '(no name)'}{where}")
    if view.undecodable:
        lines.append("Not valid JSON (shown raw): " + ", ".join(view.undecodable))
    lines.append(f"All keys ({len(view.metadata)}):")
    lines += [f"  {key} = {_short(value, full)}" for key, value in sorted(view.metadata.items())]
    return "\n".join(lines)


def render_result(result: EditResult) -> str:
    return "\n".join([
        f"wrote {result.output} ({result.size_bytes} bytes, {len(result.metadata)} metadata keys)",
        f"  AutoV2  {result.autov2_before} -> {result.autov2_after}",
        f"  AutoV3  {result.autov3[:12]} (unchanged: the tensors were copied byte for byte)",
    ])


def _edit_from_args(args: argparse.Namespace) -> MetadataEdit | None:
    sets: dict[str, str] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PlanError(f"--set {item!r}: write KEY=VALUE")
        sets[key] = value
    for short, key in COMMON_FIELDS.items():
        value = getattr(args, f"field_{short}")
        if value is not None:
            sets[key] = value
    replace = _load_json_metadata(args.from_json) if args.from_json else None
    if not sets and not args.delete and replace is None:
        return None
    return MetadataEdit(set=sets, delete=tuple(args.delete), replace=replace)


def _load_json_metadata(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise PlanError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:
        raise PlanError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise PlanError(f"{path}: must be a JSON object of strings (safetensors metadata holds text only)")
    return data


def _resolved(view: MetadataView, folder: str) -> MetadataView:
    models = resolve_merge_inputs(view.merge_models, find_model_files(folder))
    return MetadataView(view.path, view.metadata, view.fields, view.merge_recipe, models, view.undecodable)


def _name_hash(value: Any, view: MetadataView) -> str:
    """A hash in the recipe, followed by the model name the recipe's model list gives it."""
    text = str(value)
    for model in view.merge_models:
        if text and model.sha256.lower() == text.lower():
            return f"{text[:10]} ({model.name or 'no name'})"
    return text


def _short(value: str, full: bool) -> str:
    one_line = value.replace("\n", "\\n")
    if full or len(one_line) <= _PREVIEW_CHARS:
        return one_line
    return f"{one_line[:_PREVIEW_CHARS]}… ({len(value)} characters; --full shows all)"
