"""Find one component (UNet, VAE, a text encoder) in any file, prefixed or not.

A :class:`Part` maps the component's *table-relative* keys (``encoder.conv_in.weight``) to the
tensors that hold them, whatever layout the file uses: a full checkpoint, a standalone
component file, the old NAI CLIP layout, or an EMA copy. Export, replace, build and bake all
work on parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import IncompatibleComponentError
from ..io.model import ModelFile
from ..io.tensor import TensorInfo
from .components import component_facts
from .families import Base, ComponentId
from .identify import Identification, SlotMatch, identify_model

__all__ = ["Part", "find_part", "require_part", "identify_model"]


@dataclass(frozen=True)
class Part:
    """One component found in a file."""

    component: ComponentId
    table: str  # the table it matched (unet_sd1, vae, clip_h ...)
    architecture: str  # the file's architecture (SD1, VAE, CLIP-SDXL ...)
    base: Base  # SD for the VAE all three share
    tensors: dict[str, TensorInfo]  # table-relative key -> tensor in the file
    complete: bool
    model: ModelFile

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())


def _part_from_slot(model: ModelFile, ident: Identification, slot: SlotMatch) -> Part:
    tensors = {}
    for key in slot.keys:
        table_key = slot.table_key(key)
        if table_key is not None:
            tensors[table_key] = model[key]
    assert ident.family is not None
    return Part(slot.component, slot.table, ident.architecture, _base(ident, slot), tensors, slot.complete, model)


def _base(ident: Identification, slot: SlotMatch) -> Base:
    assert ident.family is not None
    facts = component_facts(slot.component)
    return facts.base if facts is not None and facts.base else ident.family.base


def find_part(model: ModelFile, component: str, ident: Identification | None = None) -> Part | None:
    """The component ``component`` of ``model``, or ``None`` when the file has none.

    ``component`` is a slot name (``unet``, ``vae``, ``clip_l``, ``clip_h``, ``clip_g``,
    ``ema_unet``).
    """
    ident = ident or identify_model(model)
    if ident.family is None:
        return None
    slot = ident.slot(component)
    if slot is None or not slot.present:
        return None
    return _part_from_slot(model, ident, slot)


def require_part(model: ModelFile, component: str, *, role: str = "source") -> Part:
    """Like :func:`find_part`, but a missing or incomplete component is an error naming the file."""
    ident = identify_model(model)
    part = find_part(model, component, ident)
    if part is None:
        raise IncompatibleComponentError(
            f"{model.path}: {role} is {ident.architecture} and holds no {component}"
        )
    if not part.complete:
        raise IncompatibleComponentError(
            f"{model.path}: the {component} of this {ident.architecture} {role} is incomplete; refusing to use it"
        )
    return part
