"""The tab's action panels: each lays out its options and says how they become a request.

One function per panel (fix/prune/convert, export, replace, build, hashes, metadata, the loaded model). Each
returns a :class:`Panel`; :func:`lib_modeldoc.ui.builder.build_ui` wires them all the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from ..errors import ModelDocError
from ..operations.components import COMPONENT_CHOICES
from ..operations.convert import PRECISIONS, PRUNE_MODES
from . import actions
from .host import ClipIds, Defaults, Folders, Host
from .wording import tab_error

__all__ = ["Panel", "convert_panel", "export_panel", "replace_panel", "build_panel", "loaded_panel", "files_panel", "metadata_panel", "NONE", "BUILD_PARTS",
           "labels", "vae_labels", "part_labels"]

PART_ACTIONS = ["convert", "copy", "delete"]
NONE = "None"
BUILD_ARCHS = ["SD1", "SD2", "SDXL"]


def labels(host: Host) -> list[str]:
    """The model picker's choices: checkpoints, then VAEs, then LoRAs."""
    return [c.label for c in host.checkpoints() + host.vaes() + host.loras()]


def vae_labels(host: Host) -> list[str]:
    """Choices of a VAE to bake: none, or one from the VAE list."""
    return [NONE] + [c.label for c in host.vaes()]


def part_labels(host: Host) -> list[str]:
    """Choices of a file to take a part from: none, a checkpoint or a VAE (or any path typed)."""
    return [NONE] + [c.label for c in host.checkpoints() + host.vaes()]


@dataclass
class Panel:
    """One action panel: its option fields by name and how to make a request of them.

    ``fields`` maps each request argument to the component that holds it; its order is the order
    the job's inputs have (the page sends them by position).
    """

    prefix: str
    fields: dict[str, Any]
    make_request: Callable[[Host, str | None, dict[str, Any]], Any]  # (host, picked model, values by name)
    dropdowns: list[tuple[Any, Callable[[Host], list[str]]]] = field(default_factory=list)  # refreshed lists
    result: Any = None
    buttons: dict[str, Any] = field(default_factory=dict)
    # fields that follow the host's settings, set again on every page load (Settings → Model Doctor
    # then reach the tab without a restart): (field, value from the defaults and folders)
    settings: list[tuple[Any, Callable[[Defaults, Folders], Any]]] = field(default_factory=list)

    @property
    def inputs(self) -> list[Any]:
        """The fields' components, in the order :meth:`request` takes their values."""
        return list(self.fields.values())

    def request(self, host: Host, value: str | None, *values: Any) -> Any:
        """The request (with ``.plan`` and ``.output``) for the picked model and the fields' values."""
        return self.make_request(host, value, dict(zip(self.fields, values)))


def _output_settings(out: dict[str, Any], folder_of: Callable[[Folders], str] | None
                     ) -> list[tuple[Any, Callable[[Defaults, Folders], Any]]]:
    """The output fields that follow the host's settings: format, verify and (given ``folder_of``) a free-form folder."""
    found: list[tuple[Any, Callable[[Defaults, Folders], Any]]] = [(out["format"], lambda d, f: d.format),
                                                                   (out["verify"], lambda d, f: d.verify)]
    if folder_of is not None and isinstance(out["folder"], gr.Textbox):  # a free-form folder (the WebUI's)
        found.append((out["folder"], lambda d, f: folder_of(f)))
    return found


def _job_buttons(panel: Panel, write_label: str = "Write") -> Panel:
    p = panel.prefix
    with gr.Row():
        panel.buttons["preview"] = gr.Button("Preview plan", elem_id=f"modeldoc_{p}_preview")
        panel.buttons["write"] = gr.Button(write_label, variant="primary", elem_id=f"modeldoc_{p}_write")
        panel.buttons["interrupt"] = gr.Button("Interrupt", elem_id=f"modeldoc_{p}_interrupt")
    with gr.Row():
        panel.buttons["load"] = gr.Button("Load the new model", visible=False, elem_id=f"modeldoc_{p}_load")
        panel.buttons["inspect_new"] = gr.Button("Inspect the new file", visible=False, elem_id=f"modeldoc_{p}_inspect_new")
    panel.result = gr.HTML(elem_id=f"modeldoc_{p}_result", elem_classes=["modeldoc-job-result"])
    return panel


AUTO_FOLDER = "(by part: the VAE folder for a VAE, else the parts folder)"


def _output_fields(p: str, defaults: Defaults, folder: str, name_hint: str, folder_hint: str = "",
                   host: Host | None = None) -> dict[str, Any]:
    """Format, output folder, name, overwrite, verify, by request argument.

    A host that confines its outputs (``output_folders()``, the standalone server) gets a choice
    among its folders instead of a free-form folder; the host checks the value again on write.
    """
    offered = getattr(host, "output_folders", None)
    with gr.Row():
        fmt = gr.Radio(["safetensors", "ckpt"], value=defaults.format, label="Format", elem_id=f"modeldoc_{p}_format")
        name = gr.Textbox(label="Output file name", placeholder=name_hint, elem_id=f"modeldoc_{p}_out_name", scale=2)
        if offered is not None:
            choices = ([AUTO_FOLDER] if not folder else []) + list(offered())
            out = gr.Dropdown(choices, value=folder if folder in choices else choices[0], label="Output folder",
                              elem_id=f"modeldoc_{p}_out_folder", scale=3)
        else:
            out = gr.Textbox(value=folder, label="Output folder", placeholder=folder_hint,
                             elem_id=f"modeldoc_{p}_out_folder", scale=3)
    with gr.Row():
        overwrite = gr.Checkbox(value=False, label="Overwrite an existing file", elem_id=f"modeldoc_{p}_overwrite")
        verify = gr.Checkbox(value=defaults.verify, label="Verify after writing (re-read every tensor)",
                             elem_id=f"modeldoc_{p}_verify")
    return {"format": fmt, "folder": out, "name": name, "overwrite": overwrite, "verify": verify}


def convert_panel(host: Host, defaults: Defaults, folders: Folders) -> Panel:
    """Fix / prune / convert: every ``convert`` option; writes into the checkpoint folder."""
    f: dict[str, Any] = {}
    with gr.Row():
        f["precision"] = gr.Radio(list(PRECISIONS), value=defaults.precision, label="Precision of the weights",
                                  elem_id="modeldoc_precision")
        f["prune"] = gr.Radio(list(PRUNE_MODES), value=defaults.prune, label="EMA weights",
                              info="no-ema drops the EMA copy; ema-only makes it the UNet", elem_id="modeldoc_prune")
    with gr.Row():
        f["fix_clip"] = gr.Checkbox(value=defaults.fix_clip, label="Fix CLIP position_ids (reset to 0..76)",
                                    elem_id="modeldoc_fix_clip")
        f["strip_metadata"] = gr.Checkbox(value=False, label="Strip metadata", elem_id="modeldoc_strip_metadata")
    with gr.Row():
        # Junk is a named group no WebUI loads (dropped by default); a tensor no table describes is
        # "unknown" and kept unless asked (the junk rule, lib_modeldoc/operations/convert.py).
        f["keep_junk"] = gr.Checkbox(value=False, label="Keep junk tensors (embedding_manager, LoRA leftovers, …)",
                                     elem_id="modeldoc_keep_junk")
        f["drop_unknown"] = gr.Checkbox(value=False, label="Drop unknown tensors (no table describes them; kept by default)",
                                        elem_id="modeldoc_drop_unknown")
    with gr.Accordion("Per part: convert to the precision above, copy as stored, or delete", open=False):
        with gr.Row():
            f["unet"] = gr.Dropdown(PART_ACTIONS, value="convert", label="UNet", elem_id="modeldoc_part_unet")
            f["vae"] = gr.Dropdown(PART_ACTIONS, value="convert", label="VAE", elem_id="modeldoc_part_vae")
            f["clip"] = gr.Dropdown(PART_ACTIONS, value="convert", label="Text encoders", elem_id="modeldoc_part_clip")
        f["bake_vae"] = gr.Dropdown(vae_labels(host), value=NONE, label="Bake in a VAE (replaces the model's own)",
                                    elem_id="modeldoc_bake_vae")
    out = _output_fields("convert", defaults, folders.checkpoints, "<model>-fixed", host=host)
    # The order of the job's inputs (the page and API clients send values by position).
    order = ["precision", "prune", "fix_clip", "keep_junk", "drop_unknown", "unet", "vae", "clip", "bake_vae",
             "strip_metadata"]
    fields = {**{name: f[name] for name in order}, **out}

    def request(host: Host, value: str | None, args: dict[str, Any]) -> actions.ConvertRequest:
        args["bake_vae"] = _file(host, args["bake_vae"])
        return actions.ConvertRequest(source=_source(host, value), **args)

    panel = Panel("convert", fields, request, [(f["bake_vae"], vae_labels)])
    panel.settings = [(f["precision"], lambda d, f: d.precision), (f["prune"], lambda d, f: d.prune),
                      (f["fix_clip"], lambda d, f: d.fix_clip), *_output_settings(out, lambda f: f.checkpoints)]
    return _job_buttons(panel)


def export_panel(host: Host, defaults: Defaults, folders: Folders) -> Panel:
    """Export one part; a VAE goes to the VAE folder, other parts to the parts folder."""
    f: dict[str, Any] = {}
    with gr.Row():
        f["component"] = gr.Radio(list(COMPONENT_CHOICES), value="vae", label="Part", elem_id="modeldoc_export_component")
        f["precision"] = gr.Radio([actions.AUTO, *PRECISIONS], value=actions.AUTO, label="Precision",
                                  info="auto: keep for a VAE, fp16 otherwise", elem_id="modeldoc_export_precision")
        f["fix_clip"] = gr.Checkbox(value=defaults.fix_clip, label="Fix CLIP position_ids",
                                    elem_id="modeldoc_export_fix_clip")
    hint = (f"empty: a VAE to {folders.for_part('vae')}, text encoders to {folders.for_part('clip')}, "
            f"a UNet to {folders.for_part('unet')}")
    out = _output_fields("export", defaults, "", "<model>-<part>", hint, host=host)

    def request(host: Host, value: str | None, args: dict[str, Any]) -> actions.ExportRequest:
        if args["folder"] == AUTO_FOLDER:
            args["folder"] = ""
        if not (args["folder"] or "").strip():
            args["folder"] = host.folders().for_part(args["component"])
        return actions.ExportRequest(source=_source(host, value), **args)

    panel = Panel("export", {**f, **out}, request)
    panel.settings = [(f["fix_clip"], lambda d, f: d.fix_clip), *_output_settings(out, None)]
    return _job_buttons(panel)


def replace_panel(host: Host, defaults: Defaults, folders: Folders) -> Panel:
    """Replace one part from another file (a VAE from the VAE list bakes it in)."""
    f: dict[str, Any] = {}
    with gr.Row():
        f["component"] = gr.Radio([c for c in COMPONENT_CHOICES if c != "ema-unet"], value="vae",
                                  label="Part to replace", elem_id="modeldoc_replace_component")
        f["part_from"] = gr.Dropdown(
            part_labels(host), value=NONE, allow_custom_value=True,
            label="Take it from (a VAE from the list bakes it in; or a checkpoint, a part file, any path)",
            elem_id="modeldoc_replace_from", scale=3)
        f["precision"] = gr.Radio(["keep", *[p for p in PRECISIONS if p != "keep"]], value="keep",
                                  label="Precision of the new part", elem_id="modeldoc_replace_precision")
    out = _output_fields("replace", defaults, folders.checkpoints, "<model>-new-<part>", host=host)

    def request(host: Host, value: str | None, args: dict[str, Any]) -> actions.ReplaceRequest:
        args["part_from"] = _file(host, args["part_from"]) or ""
        return actions.ReplaceRequest(source=_source(host, value), **args)

    panel = Panel("replace", {**f, **out}, request, [(f["part_from"], part_labels)])
    panel.settings = _output_settings(out, lambda f: f.checkpoints)
    return _job_buttons(panel)


BUILD_PARTS = {"unet": "UNet from", "vae": "VAE from", "clip": "Text encoder(s) from",
               "clip_g": "SDXL CLIP-G from (if not in the above)"}


def build_panel(host: Host, defaults: Defaults, folders: Folders) -> Panel:
    """Build a checkpoint of an architecture from part files."""
    f: dict[str, Any] = {}
    with gr.Row():
        arch = gr.Radio(BUILD_ARCHS, value="SD1", label="Architecture", elem_id="modeldoc_build_arch")
        precision = gr.Radio(["keep", *[p for p in PRECISIONS if p != "keep"]], value="keep", label="Precision",
                             elem_id="modeldoc_build_precision")
    f["arch"] = arch
    with gr.Row():
        for key, label in BUILD_PARTS.items():
            f[key] = gr.Dropdown(part_labels(host), value=NONE, allow_custom_value=True, label=label,
                                 elem_id=f"modeldoc_build_{key}")
    f["precision"] = precision
    with gr.Row():
        f["fix_clip"] = gr.Checkbox(value=defaults.fix_clip, label="Fix CLIP position_ids",
                                    elem_id="modeldoc_build_fix_clip")
        f["allow_missing"] = gr.Checkbox(value=False, label="Allow a missing part (the WebUI then keeps the previous model's)",
                                         elem_id="modeldoc_build_allow_missing")
    out = _output_fields("build", defaults, folders.checkpoints, "built-<arch>", host=host)

    def request(host: Host, value: str | None, args: dict[str, Any]) -> actions.BuildRequest:
        given = tuple((k, path) for k in BUILD_PARTS if (path := _file(host, args.pop(k))))
        return actions.BuildRequest(parts=given, **args)

    panel = Panel("build", {**f, **out}, request, [(f[k], part_labels) for k in BUILD_PARTS])
    panel.settings = [(f["fix_clip"], lambda d, f: d.fix_clip), *_output_settings(out, lambda f: f.checkpoints)]
    return _job_buttons(panel)


def _source(host: Host, value: str | None) -> str:
    source = actions.loaded_or_picked(host, value)
    if not source:
        raise tab_error(ModelDocError, "tab.error.no_model")
    return source


def _file(host: Host, value: str | None) -> str | None:
    return host.resolve(value) if value and value != NONE else None


def loaded_panel(host: Host) -> dict[str, Any]:
    """The loaded model: check (and where the model holds them, reset) its CLIP position_ids in memory."""
    p: dict[str, Any] = {}
    fixable = getattr(host, "clip_ids", ClipIds.READ) is ClipIds.READ
    if fixable:
        intro = ("Checks the CLIP position_ids of the model the program has **in memory**, and can reset them there "
                 "without reloading or writing a file. The fix lasts until the model is reloaded; repair the file to "
                 "make it permanent.")
    else:
        intro = (f"{host.name} rebuilds CLIP position_ids when it loads a model, so the model in memory never holds a "
                 "file's shifted ids and there is nothing to fix here. Repair the file for the programs that read them "
                 "(AUTOMATIC1111, other tools).")
    gr.Markdown(intro, elem_id="modeldoc_loaded_intro")
    with gr.Row():
        p["check"] = gr.Button("Check loaded model's CLIP", elem_id="modeldoc_live_check")
        p["fix"] = gr.Button("Fix in memory", elem_id="modeldoc_live_fix", visible=fixable)
    p["result"] = gr.HTML(elem_id="modeldoc_live_result")
    return p


def files_panel(host: Host) -> dict[str, Any]:
    """Know your files: every hash of the picked file, and a comparison with a second model."""
    p: dict[str, Any] = {}
    with gr.Accordion("Hashes", open=True, elem_id="modeldoc_hash_box"):
        gr.Markdown("SHA-256, the WebUI's AutoV1/V2/V3, CRC32 and BLAKE3 of the picked file, in one read, "
                    "with the forms Civitai shows and searches by.")
        with gr.Row():
            p["hash"] = gr.Button("Compute hashes", variant="primary", elem_id="modeldoc_hash")
            p["hash_interrupt"] = gr.Button("Interrupt", elem_id="modeldoc_hash_interrupt")
        p["hash_result"] = gr.HTML(elem_id="modeldoc_hash_result", elem_classes=["modeldoc-job-result"])
    with gr.Accordion("Compare with another model", open=True, elem_id="modeldoc_compare_box"):
        with gr.Row():
            p["other"] = gr.Dropdown(labels(host), allow_custom_value=True, label="Second model (B); the picked one is A",
                                     elem_id="modeldoc_compare_other", scale=4)
            p["compare"] = gr.Button("Compare", variant="primary", elem_id="modeldoc_compare", scale=1)
            p["compare_interrupt"] = gr.Button("Interrupt", elem_id="modeldoc_compare_interrupt", scale=1)
        p["compare_result"] = gr.HTML(elem_id="modeldoc_compare_result", elem_classes=["modeldoc-job-result"])
    return p


# The common ModelSpec keys' labels (lib_modeldoc.operations.meta.COMMON_FIELDS), each naming its key.
META_FIELDS = {"title": "Title (modelspec.title)", "author": "Author (modelspec.author)",
               "license": "License (modelspec.license)", "date": "Date (modelspec.date)",
               "description": "Description (modelspec.description)",
               "usage_hint": "Usage hint (modelspec.usage_hint)",
               "trigger_phrase": "Trigger words (modelspec.trigger_phrase)"}


def metadata_panel(host: Host) -> dict[str, Any]:
    """The metadata editor: the common ModelSpec fields, the other keys as JSON, the merge recipe decoded,
    saved as a new file beside the model or in place (never the loaded model)."""
    p: dict[str, Any] = {"fields": {}}
    gr.Markdown("View and edit the picked model's metadata (safetensors only). Saving rewrites the header and copies "
                "the tensors byte for byte: AutoV3 stays the same, AutoV2 changes. An empty field removes its key, "
                "and so does a key taken out of Other keys.", elem_id="modeldoc_meta_intro")
    with gr.Row():
        p["load"] = gr.Button("Load metadata", variant="primary", elem_id="modeldoc_meta_load")
        p["load_interrupt"] = gr.Button("Interrupt", elem_id="modeldoc_meta_load_interrupt")
    p["status"] = gr.HTML(elem_id="modeldoc_meta_status", elem_classes=["modeldoc-job-result"])
    boxes = p["fields"]
    with gr.Row():
        for short in ("title", "author", "license", "date"):
            boxes[short] = gr.Textbox(label=META_FIELDS[short], elem_id=f"modeldoc_meta_{short}")
    boxes["description"] = gr.Textbox(label=META_FIELDS["description"], lines=3, elem_id="modeldoc_meta_description")
    with gr.Row():
        for short in ("usage_hint", "trigger_phrase"):
            boxes[short] = gr.Textbox(label=META_FIELDS[short], elem_id=f"modeldoc_meta_{short}")
    p["other"] = gr.Textbox(label="Other keys (a JSON object of text values)", lines=8, elem_id="modeldoc_meta_other")
    p["recipe"] = gr.HTML(elem_id="modeldoc_meta_recipe")
    with gr.Row():
        p["name"] = gr.Textbox(label="New file name (saved beside the model, never over an existing file)",
                               placeholder="<model>-meta", elem_id="modeldoc_meta_out_name", scale=3)
        p["in_place"] = gr.Checkbox(value=False, label="Replace the file itself instead (never the loaded model)",
                                    elem_id="modeldoc_meta_in_place", scale=2)
    with gr.Row():
        p["save"] = gr.Button("Save metadata", variant="primary", elem_id="modeldoc_meta_save")
        p["save_interrupt"] = gr.Button("Interrupt", elem_id="modeldoc_meta_save_interrupt")
    p["result"] = gr.HTML(elem_id="modeldoc_meta_result", elem_classes=["modeldoc-job-result"])
    return p
