"""Plans for component work: export one part, replace one part, build a model from parts.

Every plan is checked for fit before anything is written: a part must match a table the target
slot accepts (an SD2 UNet does not go into SD1; an SDXL VAE, same structure, goes anywhere).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from ..arch.components import TEXT_ENCODERS, component_facts
from ..arch.families import FAMILIES, ComponentId, Family, FamilyKind, Mount, family
from ..arch.parts import Part, find_part, identify_model
from ..checks.context import POSITION_IDS
from ..errors import IncompatibleComponentError, PlanError
from ..io.model import ModelFile
from ..report.advice import Note, Remedy
from ..report.messages import Counted
from .builder import Casting, PlanBuilder, stamped, stored
from .convert import PRECISIONS, check_format, check_precision, position_ids_entry
from .plan import Entry, Plan

__all__ = ["COMPONENT_CHOICES", "plan_export", "plan_replace", "plan_build", "expand_component"]

COMPONENT_CHOICES = ("unet", "vae", "clip", "clip_l", "clip_g", "ema-unet", "transformer", "t5xxl")


def expand_component(component: str, fam: Family) -> tuple[str, ...]:
    """Slot names a CLI component means for a family: ``clip`` is every text encoder it has."""
    if component == "clip":
        found = tuple(s.component for s in fam.slots if s.component in TEXT_ENCODERS)
        if not found:
            raise PlanError(f"a {fam.name} has no text encoder")
        return found
    slot = "ema_unet" if component == "ema-unet" else component
    if fam.slot(slot) is None:
        raise PlanError(f"a {fam.name} has no {component}")
    return (slot,)


def _entries(part: Part, mount: Mount, casting: Casting, origin: int, fix_clip: bool, changes: list[str]) -> list[Entry]:
    entries = []
    for table_key, info in part.tensors.items():
        dst = mount.key(table_key)
        if table_key == POSITION_IDS and part.component == ComponentId.CLIP_L:
            entry, change = position_ids_entry(part.model, info, dst, fix=fix_clip)
            entries.append(dataclasses.replace(entry, origin=origin, renamed_from=info.key))
            if change:
                changes.append(change)
            continue
        entries.append(stored(dst, info, casting.dtype(info.dtype, dst, info.shape), origin=origin, renamed_from=info.key))
    return entries


def plan_export(
    model: ModelFile, component: str, *, precision: str | None = None, fix_clip: bool = False, format: str = "safetensors"
) -> Plan:
    """Plan writing one component of ``model`` as its own file, without the checkpoint prefix.

    Args:
        model: a checkpoint (or component file) holding the part.
        component: ``unet``, ``vae``, ``clip`` (every text encoder), ``clip_l``, ``clip_g`` or
            ``ema-unet`` (the EMA weights, keyed as a normal UNet).
        precision: a ``convert`` precision; default ``keep`` for the VAE, ``fp16`` otherwise.
        fix_clip: reset CLIP-L position_ids to 0..76.
        format: ``safetensors`` or ``ckpt``.

    Raises:
        PlanError: the model has no such component.
    """
    ident = identify_model(model)
    if ident.family is None and ident.parts:  # SD3 / Flux: the files Forge and ComfyUI load separately
        from .transformer_parts import plan_export_part

        return plan_export_part(model, component, precision=precision, format=format)
    if ident.family is None:
        raise PlanError(f"{model.path}: a {ident.architecture} file has no components to export")
    slots = expand_component(component, ident.family)
    first = component_facts(slots[0])  # the text encoders of ``clip`` share one default
    precision = precision or (first.export_precision if first is not None else "fp16")
    changes: list[str] = []
    warnings: list[str] = []
    entries: list[Entry] = []
    casting = Casting(PRECISIONS[precision])
    if component == "clip" and len(slots) > 1:
        target_family = family("CLIP-SDXL")
    else:
        target_family = None
    for slot_name in slots:
        part = find_part(model, slot_name, ident)
        if part is None:
            raise PlanError(f"{model.path}: this {ident.architecture} has no {slot_name} to export")
        if not part.complete:
            warnings.append(Note.worded("plan.export_incomplete", part=slot_name,
                                        tensors=Counted("tensor", len(part.tensors))))
        facts = component_facts(part.component)
        if facts is None or part.base not in facts.export_as:
            raise PlanError(f"{model.path}: the {slot_name} of a {ident.architecture} has no file format of its own")
        standalone = target_family or family(facts.export_as[part.base])
        out_slot = standalone.slot(facts.export_slot)
        assert out_slot is not None
        entries += _entries(part, out_slot.mounts[0], casting, 0, fix_clip, changes)
        changes.append(Note.worded("plan.exported", part=slot_name, table=part.table, family=standalone.name))
    changes.extend(filter(None, [casting.kept_line()]))
    return _plan([model], entries, format, changes, warnings, model.path)


def _plan(
    sources: list[ModelFile], entries: list[Entry], format: str, changes: list[str], warnings: list[str], source: str
) -> Plan:
    metadata = stamped(changes, os.path.basename(source)) if format == "safetensors" else None
    return Plan(sources, entries, [], metadata, format, warnings, changes)


def _check_fit(part: Part, slot_tables: tuple[str, ...], target: str, target_arch: str) -> None:
    if part.table not in slot_tables:
        raise IncompatibleComponentError(
            f"{part.model.path} ({part.architecture}) has a {part.component} of type {part.table}, but "
            f"{target} ({target_arch}) needs {' or '.join(slot_tables)}"
        )
    if not part.complete:
        raise IncompatibleComponentError(
            f"{part.model.path} ({part.architecture}): its {part.component} is incomplete; refusing to use it"
        )


def _source_part(source: ModelFile, slot: str, target: str, target_arch: str) -> Part:
    ident = identify_model(source)
    part = find_part(source, slot, ident)
    if part is None:
        raise IncompatibleComponentError(
            f"{source.path} is {ident.architecture} and has no {slot} for {target} ({target_arch})"
        )
    return part


def plan_replace(
    target: ModelFile, component: str, source: ModelFile, *, precision: str | None = None, format: str = "safetensors"
) -> Plan:
    """Plan a copy of ``target`` with one component taken from ``source``.

    Everything else in ``target`` is copied byte for byte, metadata included. ``source`` may be a
    full model or a component file, prefixed or not.

    Raises:
        IncompatibleComponentError: the source part does not fit, naming both sides.
    """
    ident = identify_model(target)
    if ident.family is None or ident.family.kind != FamilyKind.CHECKPOINT:
        raise PlanError(f"{target.path}: replace works on a checkpoint, and this is a {ident.architecture}")
    replacements: dict[str, Part] = {}
    for slot_name in expand_component(component, ident.family):
        slot = ident.family.slot(slot_name)
        assert slot is not None
        part = _source_part(source, slot_name, target.path, ident.architecture)
        _check_fit(part, slot.tables, target.path, ident.architecture)
        replacements[slot_name] = part
    check_precision(precision or "keep")
    check_format(format)
    builder = _ReplaceBuilder(target, ident, Casting(PRECISIONS[precision or "keep"]), replacements)
    builder.copy_the_rest()
    builder.drop_training_state()
    for slot_name, part in replacements.items():
        builder.put(slot_name, part)
    builder.summarise()  # the target's own VAE is left as it is: not ours to warn about, and replace has no --vae
    return builder.plan(format)


class _ReplaceBuilder(PlanBuilder):
    """``replace``: the target's tensors byte for byte (a NAI-layout CLIP too), but the replaced components'."""

    def copy_the_rest(self) -> None:
        for key, info in sorted(self.model.items(), key=lambda kv: kv[1].data_offset):
            if key in self.replaced:
                self.drop(key, f"{self.replaced[key]} replaced")
            else:
                self.entries.append(stored(key, info, info.dtype))


def plan_build(
    arch: str,
    parts: Mapping[str, ModelFile],
    *,
    precision: str | None = None,
    allow_missing: bool = False,
    fix_clip: bool = False,
    format: str = "safetensors",
) -> Plan:
    """Plan a new checkpoint of ``arch`` (``SD1``, ``SD2``, ``SDXL``) from component files.

    Args:
        parts: ``unet``, ``vae``, ``clip`` and, for SDXL, optionally ``clip_g`` -> an open file
            holding that part (a checkpoint or a component file). For SDXL, ``clip`` provides
            CLIP-L, and CLIP-G too unless ``clip_g`` is given.
        allow_missing: build even when a part is missing (the WebUI then keeps the previous
            model's part); otherwise a missing part is an error.

    Raises:
        PlanError: unknown architecture or a missing part.
        IncompatibleComponentError: a part does not fit ``arch``.
    """
    from .transformer_parts import TRANSFORMER_ARCHS, plan_build_parts

    if arch in TRANSFORMER_ARCHS:
        renamed = {"clip_l" if k == "clip" else k: v for k, v in parts.items()}
        return plan_build_parts(arch, renamed, precision=precision, allow_missing=allow_missing, format=format)
    names = {f.name for f in FAMILIES if f.kind == FamilyKind.CHECKPOINT}
    if arch not in names:
        raise PlanError(f"cannot build {arch!r}; choose one of {', '.join(sorted(names))}")
    fam = family(arch)
    if "clip_g" in parts and fam.slot(ComponentId.CLIP_G) is None:  # the --clip-g option
        raise PlanError(f"a {arch} model has no OpenCLIP-bigG text encoder", remedy=Remedy.DROP_CLIP_G)
    sources: list[ModelFile] = []
    entries: list[Entry] = []
    changes: list[str] = []
    warnings: list[str] = []
    casting = Casting(PRECISIONS[precision or "keep"])
    for slot in fam.slots:
        if not slot.required:
            continue
        option = "clip_g" if slot.component == ComponentId.CLIP_G and "clip_g" in parts else (
            "clip" if slot.component in TEXT_ENCODERS else slot.component)
        source = parts.get(option)
        if (source is not None and option == "clip" and slot.component == ComponentId.CLIP_G
                and find_part(source, ComponentId.CLIP_G) is None):
            # --clip holds only CLIP-L: SDXL's clip_g is missing (--clip-g gives it), not a misfit.
            if not allow_missing:
                raise IncompatibleComponentError(
                    f"{source.path} is {identify_model(source).architecture} and has no clip_g for the new model "
                    f"({arch})", remedy=(Remedy.GIVE_CLIP_G, Remedy.ALLOW_MISSING)
                )
            source = None
        if source is None:
            if not allow_missing:
                raise PlanError.worded("error.build.part_missing", remedy=(Remedy.give(option), Remedy.ALLOW_MISSING),
                                       part=slot.component, arch=arch)
            warnings.append(Note.worded("plan.part_missing", part=slot.component, arch=arch))
            continue
        part = _source_part(source, slot.component, "the new model", arch)
        _check_fit(part, slot.tables, "the new model", arch)
        # By identity: a ModelFile is a Mapping, and two files with the same header compare equal.
        origin = next((i for i, s in enumerate(sources) if s is source), len(sources))
        if origin == len(sources):
            sources.append(source)
        entries += _entries(part, slot.mounts[0], casting, origin, fix_clip, changes)
        changes.append(Note.worded("plan.part_from", part=slot.component, name=os.path.basename(source.path),
                                   arch=part.architecture))
    if not entries:
        raise PlanError(f"nothing to build: give at least one part for {arch}")
    changes.extend(filter(None, [casting.kept_line()]))
    return _plan(sources, entries, format, changes, warnings, "+".join(os.path.basename(s.path) for s in sources))
