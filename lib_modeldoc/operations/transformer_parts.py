"""SD3 and FLUX.1: export the parts Forge and ComfyUI load as separate files, and build them back.

An all-in-one checkpoint (ComfyUI's layout) holds the transformer under ``model.diffusion_model.``,
the text encoders under ``text_encoders.<name>.transformer.`` and the 16-channel VAE under
``first_stage_model.``; the separate files hold the same tensors without those prefixes
(``arch.families.TRANSFORMER_PART_FILES``). Precision: kept by default (bf16 stays bf16); to fp8,
norms, biases and embedders stay 16-bit (``arch.precision``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..arch.families import TRANSFORMER_PART_ARCHS, TRANSFORMER_PART_FILES, ComponentId
from ..arch.parts import identify_model
from ..errors import IncompatibleComponentError, PlanError
from ..io.model import ModelFile
from ..report.advice import Remedy
from .builder import Casting, stamped, stored
from .convert import PRECISIONS
from .plan import Entry, Plan

__all__ = ["TRANSFORMER_ARCHS", "plan_export_part", "plan_build_parts"]

TRANSFORMER_ARCHS = ("Flux", "SD3")
_ALIASES = {"unet": "transformer"}


def _base(architecture: str) -> str | None:
    return next((a for a in TRANSFORMER_ARCHS if architecture.startswith(a)), None)


def _part_keys(model: ModelFile, component: str, architecture: str) -> tuple[dict[str, str], str]:
    """``{key in the part's own file: key in model}`` and where it was found."""
    prefix, own = TRANSFORMER_PART_FILES[component]
    found = {own + k[len(prefix):]: k for k in model if k.startswith(prefix)}
    if found:
        return found, f"'{prefix}' of {os.path.basename(model.path)}"
    ident = identify_model(model)
    allowed = TRANSFORMER_PART_ARCHS.get(architecture, {}).get(component, ())
    whole = ident.architecture in allowed
    if component == ComponentId.VAE and whole:
        slot = ident.slot(ComponentId.VAE)
        whole = slot is not None and slot.table == "vae_16ch"  # an SD VAE (4 channels) does not fit
    if not whole:
        raise IncompatibleComponentError(
            f"{model.path} is {ident.architecture} and holds no {component} for a {architecture} model"
        )
    return {k: k for k in model}, os.path.basename(model.path)


def plan_export_part(model: ModelFile, component: str, *, precision: str | None = None, format: str = "safetensors") -> Plan:
    """Plan writing one part of an SD3 / Flux checkpoint as the file Forge and ComfyUI load.

    ``component``: ``transformer`` (or ``unet``), ``clip_l``, ``clip_g`` (SD3), ``t5xxl``, ``vae``.
    """
    ident = identify_model(model)
    base = _base(ident.architecture)
    if base is None:
        raise PlanError(f"{model.path}: a {ident.architecture} file has no SD3 / Flux parts")
    component = _ALIASES.get(component, component)
    if component not in TRANSFORMER_PART_ARCHS[base]:
        raise PlanError(f"{model.path}: a {base} model has no {component}; choose one of "
                        f"{', '.join(TRANSFORMER_PART_ARCHS[base])}")
    prefix, own = TRANSFORMER_PART_FILES[component]
    keys = {own + k[len(prefix):]: k for k in model if k.startswith(prefix)}
    if not keys:
        raise PlanError(f"{model.path}: this {ident.architecture} file holds no {component} (no '{prefix}' keys)")
    casting = Casting(PRECISIONS[precision or "keep"])
    entries = []
    for dst, src in keys.items():
        info = model[src]
        entries.append(stored(dst, info, casting.dtype(info.dtype, dst, info.shape), renamed_from=src))
    changes = [f"exported the {component} of a {base} checkpoint ({len(entries)} tensors, without '{prefix}')",
               *filter(None, [casting.kept_line()])]
    metadata = stamped(changes, os.path.basename(model.path)) if format == "safetensors" else None
    return Plan([model], entries, [], metadata, format, [], changes)


def plan_build_parts(architecture: str, parts: Mapping[str, ModelFile], *, precision: str | None = None,
                     allow_missing: bool = False, format: str = "safetensors") -> Plan:
    """Plan one ComfyUI-style SD3 / Flux checkpoint from its part files (or from checkpoints holding them).

    ``parts``: ``transformer`` (or ``unet``), ``clip_l``, ``clip_g`` (SD3), ``t5xxl``, ``vae`` -> an open file.
    """
    if architecture not in TRANSFORMER_ARCHS:
        raise PlanError(f"cannot build {architecture!r} from parts; choose one of {', '.join(TRANSFORMER_ARCHS)}")
    wanted = TRANSFORMER_PART_ARCHS[architecture]
    given = {_ALIASES.get(k, k): v for k, v in parts.items()}
    extra = set(given) - set(wanted)
    if extra:
        raise PlanError(f"a {architecture} model has no {', '.join(sorted(extra))}")
    casting = Casting(PRECISIONS[precision or "keep"])
    sources: list[ModelFile] = []
    entries: list[Entry] = []
    changes: list[str] = []
    warnings: list[str] = []
    for component in wanted:
        source = given.get(component)
        if source is None:
            message = f"no {component} given for {architecture}"
            if not allow_missing:
                raise PlanError(message, remedy=Remedy.ALLOW_MISSING)
            warnings.append(message + ": load it as a separate file next to this one")
            continue
        keys, where = _part_keys(source, component, architecture)
        origin = next((i for i, s in enumerate(sources) if s is source), len(sources))
        if origin == len(sources):
            sources.append(source)
        prefix, own = TRANSFORMER_PART_FILES[component]
        for key, src in keys.items():
            info = source[src]
            dst = prefix + key[len(own):]
            entries.append(stored(dst, info, casting.dtype(info.dtype, dst, info.shape), origin=origin,
                                  renamed_from=src if src != dst else None))
        changes.append(f"{component} from {where}")
    if not entries:
        raise PlanError(f"nothing to build: give at least one part for {architecture}")
    changes.extend(filter(None, [casting.kept_line()]))
    metadata = stamped(changes, "+".join(os.path.basename(s.path) for s in sources)) if format == "safetensors" else None
    return Plan(sources, entries, [], metadata, format, warnings, changes)
