"""Build the plan of ``convert``: prune, repair, re-type and bake, decided from headers.

The builder never reads weights (only position_ids, 77 numbers). :func:`lib_modeldoc.operations.writer.write_plan`
carries the plan out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .._version import __version__
from ..arch.components import GROUPS, group_of
from ..arch.families import KNOWN_BUFFERS
from ..arch.identify import Identification
from ..arch.layout import BUFFER, EMA, JUNK, UNKNOWN, layout_of
from ..arch.modelspec import (
    EPSILON_FAMILIES, modelspec_architecture, signature_modelspec, v_prediction_sources, ztsnr_sources,
)
from ..arch.parts import Part, identify_model, require_part
from ..arch.precision import FP8_DTYPES, keeps_16bit_in_fp8, sixteen_bit_for
from ..checks.context import CLIP_LENGTH, POSITION_IDS, _as_webui_int64
from ..dtypes import DTYPES
from ..errors import PlanError
from ..io.model import ModelFile
from ..io.plain_values import read_plain, wrong_positions
from ..io.tensor import TensorInfo
from ..report.advice import Note, Remedy, count
from .plan import CAST, COPY, FIX, SYNTH, Drop, Entry, Plan

__all__ = ["ConvertOptions", "PRECISIONS", "plan_convert", "position_ids_entry"]

PRECISIONS = {"fp32": "F32", "fp16": "F16", "bf16": "BF16", "fp8_e4m3fn": "F8_E4M3", "fp8_e5m2": "F8_E5M2", "keep": None}
PRUNE_MODES = ("none", "no-ema", "ema-only")
PART_ACTIONS = ("convert", "copy", "delete")
NAI_PREFIX = "cond_stage_model.transformer."


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
    preserve: bool = False  # copy every tensor that is not replaced exactly as it is (``replace``)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise PlanError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.prune not in PRUNE_MODES:
            raise PlanError(f"unknown prune mode {self.prune!r}; choose one of {', '.join(PRUNE_MODES)}")
        if self.format not in ("safetensors", "ckpt"):
            raise PlanError(f"unknown output format {self.format!r}; choose safetensors or ckpt")
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
    replace: Mapping[str, Part] | None = None,
) -> Plan:
    """Plan a conversion of an open model.

    Args:
        model: the source, opened with :func:`~lib_modeldoc.open_model`.
        options: what to do.
        bake_vae: the open VAE source when ``options.bake_vae`` is set (any file holding a VAE).
        ident: the model's identification, when the caller already has it.
        replace: component slot name -> the :class:`~lib_modeldoc.arch.parts.Part` to put there
            instead of the model's own (the model's tensors of that slot are dropped).

    Raises:
        PlanError: the options contradict the model (e.g. ``ema-only`` without EMA, junk
            pruning of an unidentified model).
        IncompatibleComponentError: the VAE to bake is not a complete VAE.
    """
    ident = ident or identify_model(model)
    layout = layout_of(list(model), ident)
    if not options.preserve:
        _refuse_blind_pruning(model, ident, options)
    replacements = dict(replace or {})
    if bake_vae is not None:
        replacements["vae"] = require_part(bake_vae, "vae", role="VAE to bake")
    builder = _Builder(model, ident, options, replacements)
    ema_map = builder.ema_renames() if options.prune == "ema-only" else {}
    for key, info in sorted(model.items(), key=lambda kv: kv[1].data_offset):
        part = layout.parts[key]
        builder.add(key, info, part, ema_map)
    for key, info in model.stray_tensors.items():
        builder.dropped.append(Drop(key, "training state", info.nbytes))
    for component, part in replacements.items():
        builder.put(component, part)
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
        return entry, f"fixed CLIP position_ids ({key}): reset to int64 0..76 (were wrong at {wrong})"
    if fix:
        return entry, f"CLIP position_ids ({key}) stored as int64 0..76 (were {info.dtype})"
    if not correct:
        return entry, Note(f"CLIP position_ids ({key}) kept as the WebUI reads them, still wrong", Remedy.FIX_CLIP)
    return entry, f"CLIP position_ids ({key}) stored as int64 (were {info.dtype})"


def _refuse_blind_pruning(model: ModelFile, ident: Identification, options: ConvertOptions) -> None:
    if ident.prunable or options.keep_junk or options.force:
        return
    what = "not a known architecture" if ident.architecture == "unknown" else f"a {ident.label}"
    raise PlanError(f"{model.path}: {what}, so no tensor can be called junk", remedy=Remedy.KEEP_JUNK)


class _Builder:
    def __init__(self, model: ModelFile, ident: Identification, options: ConvertOptions, replacements: Mapping[str, Part]) -> None:
        self.model = model
        self.ident = ident
        self.options = options
        self.target = PRECISIONS[options.precision]
        self.sources: list[ModelFile] = [model]
        self.entries: list[Entry] = []
        self.dropped: list[Drop] = []
        self.changes: list[str] = []
        self.warnings: list[str] = []
        clip = ident.slot("clip_l")
        self.nai = clip is not None and clip.present and clip.mount.layout == "nai"
        self.position_keys = {s.mount.key(POSITION_IDS) for s in ident.slots if s.component == "clip_l" and s.present}
        self.vae_keys = set(ident.slot("vae").keys) if ident.slot("vae") is not None else set()
        self.kept_16bit = 0  # tensors kept out of fp8 (norms, biases, embedders)
        self.replaced: dict[str, str] = {}  # file key -> component being replaced
        for component in replacements:
            slot = ident.slot(component)
            if slot is None:
                raise PlanError(f"{model.path}: a {ident.architecture} has no {component} to replace")
            self.replaced.update(dict.fromkeys(slot.keys, component))

    # -- per key ---------------------------------------------------------------------------------
    def ema_renames(self) -> dict[str, str]:
        """EMA key -> UNet key, for ``ema-only``."""
        ema, unet = self.ident.slot(EMA), self.ident.slot("unet")
        if ema is None or not ema.present or unet is None:
            raise PlanError(f"{self.model.path}: “ema-only” needs EMA weights, and this file has none")
        renames = {}
        for key in ema.keys:
            table_key = ema.table_key(key)
            if table_key is not None:
                renames[key] = unet.mount.key(table_key)
        return renames

    def add(self, key: str, info, part: str, ema_map: dict[str, str]) -> None:
        if key in self.replaced:
            return self._drop(key, f"{self.replaced[key]} replaced")
        if self.options.preserve:
            self.entries.append(Entry(key, info.dtype, info.shape, COPY, info))
            return
        prune = self.options.prune
        if part == EMA and prune == "no-ema":
            return self._drop(key, "ema")
        if part == "unet" and prune == "ema-only":
            return self._drop(key, "UNet replaced by its EMA")
        if part == EMA and prune == "ema-only" and key not in ema_map:
            return self._drop(key, "ema bookkeeping")
        if part == JUNK and not self.options.keep_junk:
            return self._drop(key, "junk")
        if part == UNKNOWN and self.options.drop_unknown:
            return self._drop(key, "unknown")
        group = group_of(part)
        action = self.options.action(group)
        if action == "delete" and part != BUFFER and key not in KNOWN_BUFFERS:
            return self._drop(key, f"{group} deleted")
        dst = ema_map.get(key, key)
        if self.nai and key.startswith(NAI_PREFIX) and not key.startswith(NAI_PREFIX + "text_model."):
            dst = NAI_PREFIX + "text_model." + key[len(NAI_PREFIX):]
        if key in self.position_keys:
            return self._position_ids(key, info, dst)
        dtype = self._dtype(info.dtype, part, action, key, info.shape)
        self.entries.append(Entry(
            dst, dtype, info.shape, CAST if dtype != info.dtype else COPY, info,
            renamed_from=key if dst != key else None,
        ))

    def _drop(self, key: str, reason: str) -> None:
        self.dropped.append(Drop(key, reason, self.model[key].nbytes))

    def _dtype(self, dtype: str, part: str, action: str, key: str = "", shape: tuple[int, ...] = ()) -> str:
        if not DTYPES[dtype].is_float:
            return dtype  # integers are never cast
        if part == BUFFER or action == "copy" or self.target is None:
            return "F32" if dtype == "F64" else dtype  # float64 is always narrowed
        if self.target in FP8_DTYPES and keeps_16bit_in_fp8(key, shape):
            self.kept_16bit += 1
            return dtype if dtype in ("F16", "BF16") or dtype in FP8_DTYPES else sixteen_bit_for(dtype)
        return self.target

    def _position_ids(self, key: str, info: TensorInfo, dst: str) -> None:
        entry, change = position_ids_entry(self.model, info, dst, fix=self.options.fix_clip)
        self.entries.append(entry)
        if change:
            self.changes.append(change)

    # -- replacements ---------------------------------------------------------------------------
    def put(self, component: str, part: Part) -> None:
        """Mount ``part``'s tensors where this model keeps ``component``."""
        assert self.ident.family is not None
        slot = self.ident.family.slot(component)
        assert slot is not None  # checked in __init__
        group = group_of(component)
        action = "copy" if self.options.preserve and self.target is None else self.options.action(group)
        if action == "delete":
            raise PlanError(f"replacing the {component} and --{group} delete contradict each other")
        origin = len(self.sources)
        self.sources.append(part.model)
        mount = slot.mounts[0]  # the standard layout
        for table_key, info in part.tensors.items():
            dtype = self._dtype(info.dtype, component, action, mount.key(table_key), info.shape)
            self.entries.append(Entry(
                mount.key(table_key), dtype, info.shape, CAST if dtype != info.dtype else COPY,
                info, origin=origin, renamed_from=info.key, note=f"{component} from {os.path.basename(part.model.path)}",
            ))
        verb = "baked VAE" if component == "vae" and self.options.bake_vae else f"replaced {component}"
        self.changes.append(f"{verb} from {os.path.basename(part.model.path)} ({part.architecture})")

    # -- result ----------------------------------------------------------------------------------
    def _markers(self) -> dict[str, str]:
        """ModelSpec keys to add, and in a .ckpt (no metadata) the marker tensors the metadata stood for."""
        if self.options.preserve:
            return {}
        meta = self.model.metadata
        if self.ident.family is None:  # SD3 / Flux: the spec's id where the keys tell it
            name = signature_modelspec(self.ident.architecture, self.model)
            if name is None or "modelspec.architecture" in meta:
                return {}
            return {"modelspec.architecture": name,
                    **({} if "modelspec.sai_model_spec" in meta else {"modelspec.sai_model_spec": "1.0.0"})}
        if self.ident.family.kind != "checkpoint":
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
        options = self.options
        spec = self._markers()
        self._summarise()
        metadata = None
        if options.format == "safetensors":
            metadata = {} if options.strip_metadata else dict(self.model.metadata)
            metadata["format"] = "pt"
            if not options.strip_metadata and spec:
                metadata.update(spec)
                self.changes.append("ModelSpec: " + ", ".join(f"{k}={v}" for k, v in spec.items()))
            if not options.strip_metadata:
                metadata["modeldoc"] = json.dumps(
                    {"version": __version__, "source": os.path.basename(self.model.path), "changes": self.changes},
                    ensure_ascii=False,
                )
        elif self.model.metadata and not options.strip_metadata:
            self.warnings.append("a .ckpt has no place for the source's metadata; it is not carried over")
        return Plan(self.sources, self.entries, self.dropped, metadata, options.format, self.warnings, self.changes)

    def _summarise(self) -> None:
        options = self.options
        reasons: dict[str, int] = {}
        for d in self.dropped:
            reasons[d.reason] = reasons.get(d.reason, 0) + d.nbytes
        for reason, size in reasons.items():
            if reason.endswith(" replaced"):
                continue  # said by the replacement's own line
            self.changes.append(f"dropped {reason} ({size / 1e6:.1f} MB)")
        if self.nai and not options.preserve:  # ``replace`` copies a NAI-layout CLIP as it is
            self.changes.append("renamed NAI-layout CLIP keys to the standard layout")
        if self.kept_16bit:
            self.changes.append(f"kept {count(self.kept_16bit, 'tensor')} (norms, biases, embedders) in 16 bit, not fp8")
        casts = {(e.source.dtype, e.dtype) for e in self.entries if e.action == CAST and e.source is not None}
        for src, dst in sorted(casts):
            self.changes.append(f"cast {DTYPES[src].label} -> {DTYPES[dst].label}")
        # ``replace`` leaves the model's own VAE untouched (not ours to warn about) and has no --vae.
        vae_keys = {e.key for e in self.entries if e.note.startswith("vae from ")}
        if not options.preserve:
            vae_keys |= self.vae_keys
        how = () if options.preserve else (Remedy.VAE_COPY,)
        vae_dtypes = {e.dtype for e in self.entries if e.key in vae_keys}
        if vae_dtypes & {"F8_E4M3", "F8_E5M2"}:
            self.warnings.append(Note("the VAE in fp8 visibly degrades images; keep it in fp16/fp32", *how))
        if "F16" in vae_dtypes and self.ident.family is not None and self.ident.family.base == "SDXL":
            self.warnings.append(Note(
                "SDXL's original VAE overflows in fp16 (black images) unless it is the fp16-fix; "
                "the WebUI then retries in fp32 — or keep it fp32", *how
            ))
