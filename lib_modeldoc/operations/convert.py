"""Build the plan of ``convert``: prune, repair, re-type and bake, decided from headers.

The builder never reads weights (only position_ids, 77 numbers). :func:`lib_modeldoc.operations.writer.write_plan`
carries the plan out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arch.components import GROUPS, group_of
from ..arch.families import KNOWN_BUFFERS, ComponentId, FamilyKind, KeyLayout, Mount
from ..arch.identify import Identification
from ..arch.layout import BUFFER, EMA, JUNK, UNKNOWN, layout_of
from ..arch.modelspec import (
    EPSILON_FAMILIES, modelspec_architecture, signature_modelspec, v_prediction_sources, ztsnr_sources,
)
from ..arch.parts import Part, identify_model, require_part
from ..checks.context import CLIP_LENGTH, POSITION_IDS, _as_webui_int64
from ..errors import PlanError
from ..io.model import ModelFile
from ..io.plain_values import read_plain, wrong_positions
from ..io.tensor import TensorInfo
from ..report.advice import Note, Remedy
from .builder import Casting, PlanBuilder, stored
from .plan import COPY, FIX, SYNTH, Entry, Plan

__all__ = ["ConvertOptions", "PRECISIONS", "plan_convert", "position_ids_entry", "check_precision", "check_format"]

PRECISIONS = {"fp32": "F32", "fp16": "F16", "bf16": "BF16", "fp8_e4m3fn": "F8_E4M3", "fp8_e5m2": "F8_E5M2", "keep": None}
PRUNE_MODES = ("none", "no-ema", "ema-only")
PART_ACTIONS = ("convert", "copy", "delete")


def check_precision(precision: str) -> None:
    """Refuse a precision that is not one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise PlanError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")


def check_format(format: str) -> None:
    """Refuse an output format other than ``safetensors`` and ``ckpt``."""
    if format not in ("safetensors", "ckpt"):
        raise PlanError(f"unknown output format {format!r}; choose safetensors or ckpt")


@dataclass(frozen=True)
class ConvertOptions:
    """What ``convert`` does. Defaults: fp16, no EMA, junk dropped, metadata kept."""

    precision: str = "fp16"
    prune: str = "no-ema"
    keep_junk: bool = False
    drop_unknown: bool = False  # also drop tensors no table claims that are in no junk group
    fix_clip: bool = False
    parts: dict[str, str] = field(default_factory=lambda: {g: "convert" for g in GROUPS})
    bake_vae: str | None = None
    format: str = "safetensors"
    strip_metadata: bool = False
    force: bool = False

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.prune not in PRUNE_MODES:
            raise PlanError(f"unknown prune mode {self.prune!r}; choose one of {', '.join(PRUNE_MODES)}")
        check_format(self.format)
        for group, action in self.parts.items():
            if group not in GROUPS or action not in PART_ACTIONS:
                raise PlanError(f"invalid part action {group}={action}")

    def action(self, group: str) -> str:
        return self.parts.get(group, "convert")


def plan_convert(
    model: ModelFile,
    options: ConvertOptions = ConvertOptions(),
    *,
    bake_vae: ModelFile | None = None,
    ident: Identification | None = None,
) -> Plan:
    """Plan a conversion of an open model.

    Args:
        model: the source, opened with :func:`~lib_modeldoc.open_model`.
        options: what to do.
        bake_vae: the open VAE source when ``options.bake_vae`` is set (any file holding a VAE).
        ident: the model's identification, when the caller already has it.

    Raises:
        PlanError: the options contradict the model (e.g. ``ema-only`` without EMA, junk
            pruning of an unidentified model).
        IncompatibleComponentError: the VAE to bake is not a complete VAE.
    """
    ident = ident or identify_model(model)
    layout = layout_of(list(model), ident)
    _refuse_blind_pruning(model, ident, options)
    vae = require_part(bake_vae, ComponentId.VAE, role="VAE to bake") if bake_vae is not None else None
    builder = _ConvertBuilder(model, ident, options, baking=vae is not None)
    ema_map = builder.ema_renames() if options.prune == "ema-only" else {}
    for key, info in sorted(model.items(), key=lambda kv: kv[1].data_offset):
        builder.add(key, info, layout.parts[key], ema_map)
    builder.drop_training_state()
    if vae is not None:
        builder.bake(vae)
    return builder.finish()


def position_ids_entry(model: ModelFile, info: TensorInfo, dst: str, *, fix: bool) -> tuple[Entry, str | None]:
    """The output entry for a CLIP position_ids tensor, and the change it makes (if any).

    Always int64: with ``fix`` reset to ``0..76``; without, stored exactly as the WebUI reads the
    input (floats truncated), so the output behaves as the input did.
    """
    key = info.key
    plain = read_plain(model, info)  # struct: a correct file's copy needs no numpy
    correct = len(plain) == CLIP_LENGTH and not wrong_positions(plain)
    renamed = key if dst != key else None
    if info.dtype == "I64" and (correct or not fix):
        return Entry(dst, "I64", info.shape, COPY, info, renamed_from=renamed), None
    import numpy as np

    as_read = _as_webui_int64(model.read(info).reshape(-1))
    expected = np.arange(CLIP_LENGTH, dtype=np.int64)
    if fix:
        value, note = expected.reshape(1, CLIP_LENGTH), "reset to 0..76"
    else:
        value, note = as_read.reshape(info.shape), "stored as int64 the way the WebUI reads it"
    entry = Entry(dst, "I64", tuple(value.shape), FIX, value=value, renamed_from=renamed, note=note)
    if fix and not correct:
        wrong = np.nonzero(as_read != expected[: len(as_read)])[0].tolist() if len(as_read) <= CLIP_LENGTH else []
        return entry, Note.worded("plan.position_ids.fixed", key=key, wrong=wrong)
    if fix:
        return entry, Note.worded("plan.position_ids.int64_range", key=key, dtype=info.dtype)
    if not correct:
        return entry, Note.worded("plan.position_ids.kept_wrong", Remedy.FIX_CLIP, key=key)
    return entry, Note.worded("plan.position_ids.int64", key=key, dtype=info.dtype)


def _refuse_blind_pruning(model: ModelFile, ident: Identification, options: ConvertOptions) -> None:
    if ident.prunable or options.keep_junk or options.force:
        return
    what = "not a known architecture" if ident.architecture == "unknown" else f"a {ident.label}"
    raise PlanError(f"{model.path}: {what}, so no tensor can be called junk", remedy=Remedy.KEEP_JUNK)


class _ConvertBuilder(PlanBuilder):
    """``convert``: every tensor pruned, renamed to the standard layout and re-typed by the options."""

    def __init__(self, model: ModelFile, ident: Identification, options: ConvertOptions, *, baking: bool) -> None:
        super().__init__(model, ident, Casting(PRECISIONS[options.precision]), (ComponentId.VAE,) if baking else ())
        self.options = options
        self.position_keys = {s.mount.key(POSITION_IDS) for s in ident.slots if s.component == ComponentId.CLIP_L and s.present}
        vae = ident.slot(ComponentId.VAE)
        self.vae_keys = set(vae.keys) if vae is not None else set()
        # Components found in a legacy layout (NAI's CLIP without ``text_model.``):
        # (component, that mount, the slot's standard mount).
        self.relayout: list[tuple[ComponentId, Mount, Mount]] = [
            (s.component, s.mount, ident.family.slot(s.component).mounts[0])  # type: ignore[union-attr]
            for s in ident.slots if s.present and s.mount.layout != KeyLayout.STANDARD
        ]

    def ema_renames(self) -> dict[str, str]:
        """EMA key -> UNet key, for ``ema-only``."""
        ema, unet = self.ident.slot(EMA), self.ident.slot(ComponentId.UNET)
        if ema is None or not ema.present or unet is None:
            raise PlanError(f"{self.model.path}: “ema-only” needs EMA weights, and this file has none")
        renames = {}
        for key in ema.keys:
            table_key = ema.table_key(key)
            if table_key is not None:
                renames[key] = unet.mount.key(table_key)
        return renames

    def add(self, key: str, info: TensorInfo, part: str, ema_map: dict[str, str]) -> None:
        if key in self.replaced:
            return self.drop(key, f"{self.replaced[key]} replaced")
        prune = self.options.prune
        if part == EMA and prune == "no-ema":
            return self.drop(key, "ema")
        if part == ComponentId.UNET and prune == "ema-only":
            return self.drop(key, "UNet replaced by its EMA")
        if part == EMA and prune == "ema-only" and key not in ema_map:
            return self.drop(key, "ema bookkeeping")
        if part == JUNK and not self.options.keep_junk:
            return self.drop(key, "junk")
        if part == UNKNOWN and self.options.drop_unknown:
            return self.drop(key, "unknown")
        group = group_of(part)
        action = self.options.action(group)
        if action == "delete" and part != BUFFER and key not in KNOWN_BUFFERS:
            return self.drop(key, f"{group} deleted")
        dst = self._standard_key(key) or ema_map.get(key, key)
        if key in self.position_keys:
            return self._position_ids(key, info, dst)
        dtype = self.casting.dtype(info.dtype, key, info.shape, keep=part == BUFFER or action == "copy")
        self.entries.append(stored(dst, info, dtype, renamed_from=key if dst != key else None))

    def _standard_key(self, key: str) -> str | None:
        """Where a key under a legacy mount goes in the standard layout (``None``: it stays)."""
        for _, legacy, standard in self.relayout:
            if key.startswith(legacy.prefix) and not key.startswith(standard.prefix):
                return standard.key(key[len(legacy.prefix):])
        return None

    def _position_ids(self, key: str, info: TensorInfo, dst: str) -> None:
        entry, change = position_ids_entry(self.model, info, dst, fix=self.options.fix_clip)
        self.entries.append(entry)
        if change:
            self.changes.append(change)

    def bake(self, vae: Part) -> None:
        """Put ``vae`` in place of the model's own VAE, re-typed as ``--vae`` says."""
        action = self.options.action(group_of(ComponentId.VAE))
        if action == "delete":
            raise PlanError("the VAE is to be replaced and deleted at once", remedy=Remedy.VAE_NOT_DELETED)
        self.put(ComponentId.VAE, vae, keep=action == "copy", verb="baked VAE" if self.options.bake_vae else "")

    # -- result ----------------------------------------------------------------------------------
    def _markers(self) -> dict[str, str]:
        """ModelSpec keys to add, and in a .ckpt (no metadata) the marker tensors the metadata stood for."""
        meta = self.model.metadata
        if self.ident.family is None:  # SD3 / Flux: the spec's id where the keys tell it
            name = signature_modelspec(self.ident.architecture, self.model)
            if name is None or "modelspec.architecture" in meta:
                return {}
            return {"modelspec.architecture": name,
                    **({} if "modelspec.sai_model_spec" in meta else {"modelspec.sai_model_spec": "1.0.0"})}
        if self.ident.family.kind != FamilyKind.CHECKPOINT:
            return {}
        v = bool(v_prediction_sources(self.model, meta))
        tables = {s.table for s in self.ident.slots if s.present}
        spec: dict[str, str] = {}
        architecture = modelspec_architecture(self.ident.architecture, tables, v)
        if architecture and "modelspec.architecture" not in meta:
            spec["modelspec.architecture"] = architecture
        prediction = "v" if v else ("epsilon" if self.ident.architecture in EPSILON_FAMILIES else None)
        if prediction and "modelspec.prediction_type" not in meta:
            spec["modelspec.prediction_type"] = prediction
        if spec and "modelspec.sai_model_spec" not in meta:
            spec["modelspec.sai_model_spec"] = "1.0.0"
        if self.options.format == "ckpt":
            written = {e.key for e in self.entries}
            wanted = (["v_pred"] if v else []) + (["ztsnr"] if ztsnr_sources(self.model, meta) else [])
            for marker in wanted:
                if marker not in written:
                    import numpy as np

                    self.entries.append(Entry(marker, "F32", (0,), SYNTH, value=np.zeros(0, np.float32),
                                              note="marker the source's metadata stood for"))
                    self.changes.append(f"added the '{marker}' marker tensor (a .ckpt keeps no metadata)")
        return spec

    def finish(self) -> Plan:
        spec = self._markers()
        # e.g. "renamed NAI-layout CLIP keys to the standard layout"
        renamed = [f"renamed {legacy.layout.upper()}-layout {group_of(component).upper()} keys to the standard layout"
                   for component, legacy, _ in self.relayout]
        self.summarise(renamed, vae_keys=self.vae_keys, vae_remedy=(Remedy.VAE_COPY,))
        return self.plan(self.options.format, strip_metadata=self.options.strip_metadata, spec=spec)
