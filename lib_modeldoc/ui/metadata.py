"""The tab's metadata editor, without gradio: load a file's metadata into fields and raw JSON, save an edit.

The engine (:mod:`lib_modeldoc.operations.meta`) rewrites the header and copies the data section
byte for byte, so AutoV3 stays the same and AutoV2 changes. Here: what the form shows (the common
fields, the other keys as a JSON object, the merge recipe with its models resolved to the host's
checkpoints), and how the form's values become the new metadata. A save writes a new file beside
the source (never over an existing file) or, when asked, replaces the source in place — never
the checkpoint the WebUI has loaded (:func:`lib_modeldoc.ui.actions.loaded_conflict`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import Cancelled, ModelReadError, OutputError, PlanError
from ..io.paths import native_path, same_file
from ..io.regular import open_regular
from ..io.sniff import Format, sniff_bytes
from ..operations.meta import (
    COMMON_FIELDS, EditResult, MetadataEdit, MetadataView, edit_metadata, read_metadata, resolve_merge_inputs,
)
from ..report.messages import Language, text
from . import actions
from .host import Host, JobContext
from .views import e
from .wording import tab_error

__all__ = ["MetadataForm", "load_form", "form_metadata", "save_form", "output_for", "recipe_html", "saved_html",
           "NAME_SUFFIX"]

NAME_SUFFIX = "-meta"  # the default new file: <model>-meta.safetensors beside the model
# The recipe's keys, in the order A1111's checkpoint merger writes them (any others follow).
_RECIPE_ORDER = ("type", "primary_model_hash", "secondary_model_hash", "tertiary_model_hash", "interp_method",
                 "multiplier", "save_as_half", "custom_name", "config_source", "bake_in_vae", "discard_weights",
                 "is_inpainting", "is_instruct_pix2pix")


@dataclass(frozen=True)
class MetadataForm:
    """What the editor shows for one file."""

    path: str
    fields: dict[str, str]  # every COMMON_FIELDS short name -> its value ("" when the key is absent)
    other_json: str  # the other keys, as an indented JSON object of strings
    recipe_html: str
    output_name: str  # the default new file's name
    keys: int  # how many keys the file has


def require_safetensors(path: str) -> None:
    """Refuse a file that is not safetensors (only its header holds metadata) with the tab's remedy."""
    try:
        with open_regular(native_path(path), path) as f:  # a FIFO or a device is refused, not waited on
            head = f.read(512)
    except OSError as exc:
        raise ModelReadError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if sniff_bytes(head, path, b"") is not Format.SAFETENSORS:
        raise tab_error(ModelReadError, "tab.meta.not_safetensors", name=os.path.basename(path))


def load_form(path: str, host: Host, job: JobContext | None = None) -> MetadataForm:
    """Read ``path``'s metadata for the form; the merge recipe's models are looked up among the host's checkpoints.

    Looking them up takes a checkpoint's SHA-256 from the host's hash cache when the WebUI has
    hashed it, else reads 64 KiB of it (a full read only where that matches), so it runs as a job;
    ``job`` stops it between files.
    """
    require_safetensors(path)
    view = read_metadata(path)
    checkpoints = host.checkpoints()
    if view.merge_models:
        candidates = [c.path for c in checkpoints if os.path.realpath(c.path) != os.path.realpath(path)]
        cache = getattr(host, "hash_cache", None)  # the WebUI's: files it has hashed are not read again
        known = {p: actions.cached_sha256(cache, p) for p in candidates}
        candidates.sort(key=lambda p: known[p] is None)  # those first: the search stops once all are found
        found = resolve_merge_inputs(view.merge_models, _stoppable(candidates, job, actions.host_language(host))
                                     if job is not None else candidates, known_sha256=known.get)
        view = MetadataView(view.path, view.metadata, view.fields, view.merge_recipe, found, view.undecodable)
    common = set(COMMON_FIELDS.values())
    other = {k: v for k, v in sorted(view.metadata.items()) if k not in common}
    return MetadataForm(
        path=path,
        fields={short: view.metadata.get(key, "") for short, key in COMMON_FIELDS.items()},
        other_json=json.dumps(other, indent=2, ensure_ascii=False) if other else "{}",
        recipe_html=recipe_html(view, host),
        output_name=actions.default_output_name(path, "safetensors", NAME_SUFFIX),
        keys=len(view.metadata),
    )


def _stoppable(paths: list[str], job: JobContext, language: Language = Language.EN) -> Iterator[str]:
    """``paths`` one by one, with progress; stops the lookup (``Cancelled``) when the job is interrupted."""
    for index, path in enumerate(paths):
        if job.cancelled():
            raise tab_error(Cancelled, "tab.meta.load_interrupted")
        job.progress(index, len(paths), text("tab.meta.looking_up", language))
        yield path


def form_metadata(fields: Mapping[str, str | None], other_json: str | None) -> dict[str, str]:
    """The metadata the form's values make: the other keys' JSON, then the fields on top.

    An empty field removes its key (also when the JSON has it); so does a key left out of the JSON.

    Raises:
        PlanError: the JSON is not an object of text values.
    """
    text = (other_json or "").strip() or "{}"
    try:
        other = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise tab_error(PlanError, "tab.meta.bad_json", error=str(exc)) from None
    if not isinstance(other, dict):
        raise tab_error(PlanError, "tab.meta.bad_json", error=type(other).__name__)
    for key, value in other.items():
        if not isinstance(value, str):
            raise tab_error(PlanError, "tab.meta.not_text", key=key)
    metadata = dict(other)
    for short, key in COMMON_FIELDS.items():
        value = fields.get(short) or ""
        if value.strip():  # kept as typed: a description's line breaks and spaces are the user's
            metadata[key] = value
        else:
            metadata.pop(key, None)
    return metadata


def output_for(source: str, name: str | None, in_place: bool, host: Host | None) -> str:
    """Where a save goes: the source itself (``in_place``; never the loaded checkpoint), else ``name``
    beside it (always ``.safetensors``; the default name when empty). The host may confine it.

    Raises:
        OutputError: in place on the checkpoint the host has loaded, or a place the host does not write to.
    """
    if in_place:
        if host is not None and (loaded := host.loaded_checkpoint()) and same_file(loaded, source):
            raise tab_error(OutputError, "tab.meta.loaded_in_place", name=os.path.basename(source), program=host.name)
        output = source
    else:
        default = actions.default_output_name(source, "safetensors", NAME_SUFFIX)
        output = actions.output_path(os.path.dirname(os.path.abspath(source)), (name or "").strip() or default,
                                     "safetensors")
    confine = getattr(host, "confine_output", None)
    return confine(output) if confine is not None else output


def save_form(source: str, fields: Mapping[str, str | None], other_json: str | None, name: str | None,
              in_place: bool, host: Host | None, job: JobContext) -> EditResult:
    """Write ``source`` with the form's metadata; a new file is never written over an existing one."""
    require_safetensors(source)
    metadata = form_metadata(fields, other_json)
    output = output_for(source, name, in_place, host)
    if not in_place:
        conflict = actions.loaded_conflict(output, host)
        if conflict:
            raise conflict
    return edit_metadata(source, output, MetadataEdit(replace=metadata), overwrite=False, in_place=in_place,
                         progress=actions.job_progress(job, "saving"))


# --- HTML ----------------------------------------------------------------------------------------

def recipe_html(view: MetadataView, host: Host) -> str:
    """The merge recipe decoded: its settings, and each model it was made from with the name of the
    user's file that is that model (by SHA-256), if any. Empty when the file has no recipe."""
    language = actions.host_language(host)

    def said(message_id: str, **params: Any) -> str:  # in the host's language
        return text(message_id, language, **params)

    if view.merge_recipe is None and not view.merge_models:
        if not view.undecodable:
            return ""
        warning = said("tab.meta.recipe_undecodable", keys=", ".join(view.undecodable))
        return f'<div class="modeldoc-msg modeldoc-warning">{e(warning)}</div>'
    by_hash = {m.sha256.lower(): m for m in view.merge_models}
    checkpoints = host.checkpoints()

    def yours(model: Any) -> str:
        if not model.found:
            return said("tab.meta.not_yours")
        return actions.label_for(model.found, checkpoints) or model.found

    recipe = dict(view.merge_recipe or {})
    keys = [k for k in _RECIPE_ORDER if k in recipe] + sorted(k for k in recipe if k not in _RECIPE_ORDER)
    rows = []
    for key in keys:
        value = recipe[key]
        if value in (None, ""):
            continue
        model = by_hash.get(str(value).lower()) if isinstance(value, str) else None
        if model is not None:
            shown = f"{model.name or '?'} ({model.sha256[:10]}) → {yours(model)}"
        else:
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rows.append(f"<tr><td>{e(key)}</td><td>{e(shown)}</td></tr>")
    out = ['<div class="modeldoc-meta-recipe">', f"<p><b>{e(said('tab.meta.recipe'))}</b></p>"]
    if rows:
        out.append('<table class="modeldoc-table"><tbody>' + "".join(rows) + "</tbody></table>")
    if view.merge_models:
        head = "".join(f"<th>{e(said(h))}</th>" for h in ("tab.meta.recorded_name", "tab.meta.autov2",
                                                              "tab.meta.your_model"))
        body = "".join(
            f'<tr data-sha256="{e(m.sha256)}"><td>{e(m.name or "?")}</td><td><code>{e(m.sha256[:10])}</code></td>'
            f'<td class="{"modeldoc-ok" if m.found else "modeldoc-warning"}">{e(yours(m))}</td></tr>'
            for m in view.merge_models)
        out.append(f'<table class="modeldoc-table modeldoc-meta-models"><thead><tr>{head}</tr></thead>'
                   f"<tbody>{body}</tbody></table>")
    out.append("</div>")
    return "".join(out)


def loaded_html(form: MetadataForm, language: Language | str = Language.EN) -> str:
    """The line under Load metadata once the form holds a file's metadata."""
    key = "tab.meta.loaded" if form.keys else "tab.meta.no_metadata"
    line = text(key, language, name=os.path.basename(form.path), keys=form.keys)
    return f'<div class="modeldoc-msg modeldoc-ok">{e(line)}</div>'


def saved_html(result: EditResult, *, in_place: bool, stamp: str = "", language: Language | str = Language.EN) -> str:
    """What a save wrote, with AutoV2 before and after and the unchanged AutoV3. ``data-written``
    (as :func:`lib_modeldoc.ui.views.result_html`) lets the page refresh the WebUI's lists."""
    wrote = text("tab.meta.replaced" if in_place else "tab.meta.wrote", language, path=result.output,
                 keys=len(result.metadata))
    lines = [wrote,
             text("tab.meta.autov2_changed", language, before=result.autov2_before, after=result.autov2_after),
             text("tab.meta.autov3_same", language, autov3=result.autov3[:12])]
    body = "".join(f"<div>{e(line)}</div>" for line in lines)
    return (f'<div class="modeldoc-msg modeldoc-ok modeldoc-meta-saved" data-written="{e(result.output)}|{e(stamp)}" '
            f'data-autov2-before="{e(result.autov2_before)}" data-autov2-after="{e(result.autov2_after)}" '
            f'data-autov3="{e(result.autov3[:12])}">{body}</div>')
