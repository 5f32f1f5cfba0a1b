"""What Model Doctor knows about each component (UNet, VAE, a text encoder ...), as one table.

:mod:`~lib_modeldoc.arch.families` says where a component sits in a file; this table says what it
is: its name in messages, the ``convert`` option group it belongs to, the standalone file an
exported copy is written as, how ``compare`` splits it into blocks and how the model-toolkit metric
(:mod:`~lib_modeldoc.analysis.fingerprint`) measures it. Everything else derives from it.
A front end that words a component differently keeps its own words in its wording table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType

from .families import Base, ComponentId

__all__ = [
    "MetricScale", "Component", "COMPONENTS", "GROUPS", "TEXT_ENCODERS", "component_facts", "component_name", "group_of",
]

#: ``convert``'s option groups (``--unet``, ``--vae``, ``--clip``, ``--other``), in option order.
GROUPS = ("unet", "vae", "clip", "other")


@dataclass(frozen=True)
class MetricScale:
    """How the model-toolkit turns a component's sum into its four-digit number, and what it sums.

    A tensor is summed when its component-relative key contains one of ``sums`` (every tensor
    when empty) and none of ``skips``.
    """

    label: str  # UNET, VAE, CLIP-L, OpenCLIP-H
    base: float  # the sum of the reference component
    scale: int  # how strongly a relative deviation is magnified
    sums: tuple[str, ...] = ()
    skips: tuple[str, ...] = ()

    def selects(self, table_key: str) -> bool:
        """Whether the toolkit sums the tensor at this component-relative key."""
        return (not self.sums or any(s in table_key for s in self.sums)) and not any(s in table_key for s in self.skips)


@dataclass(frozen=True)
class Component:
    """One kind of component, by its slot name (``Slot.component`` in the families).

    Attributes:
        id: the slot name (``unet``, ``vae``, ``clip_l`` ...).
        name: what messages call it.
        group: the ``convert`` option group (:data:`GROUPS`) that decides what happens to it.
        base: the family base a part of this kind fits, when not its model's (``SD``: the VAE, one
            structure in SD1, SD2 and SDXL).
        export_as: family base of the part (``SD1``, ``SD2``, ``SDXL``, or :attr:`base`) -> the
            standalone family an exported copy is written as (its first mount).
        export_slot: the slot of that standalone family it fills (the EMA copy becomes a UNet).
        export_precision: what ``export`` stores it in unless told (the VAE keeps its own: fp16 breaks SDXL's).
        blocks: ``compare``'s block of a relative key: the first group of this regular expression.
        block_order: ``compare``'s display order of blocks (by name without the index).
        metric: the model-toolkit metric, for the components it measures.
    """

    id: ComponentId
    name: str
    group: str = "other"
    _: KW_ONLY
    export_as: Mapping[Base, str] = field(default_factory=lambda: MappingProxyType({}))
    export_slot: ComponentId | None = None
    base: Base | None = None
    export_precision: str = "fp16"
    blocks: str | None = None
    block_order: tuple[str, ...] = ()
    metric: MetricScale | None = None

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"{self.id}: unknown option group {self.group!r}")
        if self.export_slot is None:
            object.__setattr__(self, "export_slot", self.id)


_UNET_BLOCKS = r"^(input_blocks\.\d+|middle_block|output_blocks\.\d+)\."
_UNET_ORDER = ("time_embed", "label_emb", "input_blocks", "middle_block", "output_blocks", "out")
_UNET_EXPORT = MappingProxyType({Base.SD1: "UNET-SD1", Base.SD2: "UNET-SD2", Base.SDXL: "UNET-SDXL"})
_OPENCLIP_BLOCKS = r"^transformer\.(resblocks\.\d+)\."
_OPENCLIP_ORDER = ("token_embedding", "positional_embedding", "resblocks", "ln_final", "text_projection")
# The toolkit sums CLIP's MLPs but layer 23's (it measures SD1/SD2 parts; SDXL's CLIP-L is the same encoder).
_CLIP_MLPS = {"sums": ("mlp.",), "skips": (".23.",)}

COMPONENTS: tuple[Component, ...] = (
    Component(ComponentId.UNET, "UNet", "unet", export_as=_UNET_EXPORT, blocks=_UNET_BLOCKS, block_order=_UNET_ORDER,
              metric=MetricScale("UNET", -6131.5400, 10_000)),
    Component(ComponentId.EMA_UNET, "EMA UNet", "unet", export_as=_UNET_EXPORT, export_slot=ComponentId.UNET, blocks=_UNET_BLOCKS,
              block_order=_UNET_ORDER),
    Component(ComponentId.VAE, "VAE", "vae", export_as=MappingProxyType({Base.SD: "VAE"}), base=Base.SD, export_precision="keep",
              blocks=r"^(encoder|decoder)\.",
              block_order=("encoder", "quant_conv", "post_quant_conv", "decoder"),
              metric=MetricScale("VAE", 17870.7051, 10_000, sums=("encoder.", "decoder."))),
    # Text encoders are exported the way their own tools name them (SDXL's CLIP-L as SD1's).
    Component(ComponentId.CLIP_L, "CLIP-L text encoder", "clip", export_as=MappingProxyType({Base.SD1: "CLIP-SD1", Base.SDXL: "CLIP-SD1"}),
              blocks=r"^encoder\.(layers\.\d+)\.", block_order=("embeddings", "layers", "final_layer_norm"),
              metric=MetricScale("CLIP-L", -2097.8596, 1_000_000, **_CLIP_MLPS)),
    Component(ComponentId.CLIP_H, "OpenCLIP-H text encoder", "clip", export_as=MappingProxyType({Base.SD2: "CLIP-SD2"}),
              blocks=_OPENCLIP_BLOCKS, block_order=_OPENCLIP_ORDER,
              metric=MetricScale("OpenCLIP-H", -8757.5630, 10_000, **_CLIP_MLPS)),
    Component(ComponentId.CLIP_G, "OpenCLIP-bigG text encoder", "clip", export_as=MappingProxyType({Base.SDXL: "CLIP-SDXL"}),
              blocks=_OPENCLIP_BLOCKS, block_order=_OPENCLIP_ORDER),
    Component(ComponentId.DEPTH, "MiDaS depth model"),
    Component(ComponentId.CONTROLNET, "ControlNet", blocks=r"^(input_blocks\.\d+|middle_block|zero_convs\.\d+)\."),
)

_BY_ID: Mapping[str, Component] = MappingProxyType({c.id: c for c in COMPONENTS})

#: Slot names of the text encoders (what ``--clip`` and the component ``clip`` mean).
TEXT_ENCODERS: tuple[ComponentId, ...] = tuple(c.id for c in COMPONENTS if c.group == "clip")


def component_facts(component_id: str) -> Component | None:
    """The table's entry for a slot name; ``None`` for a slot it does not describe (``embedder`` ...)."""
    return _BY_ID.get(component_id)


def component_name(component_id: str) -> str:
    """What messages call a component (its slot name when the table has no entry)."""
    found = _BY_ID.get(component_id)
    return found.name if found is not None else component_id


def group_of(part: str) -> str:
    """The ``convert`` option group of a layout part (a slot name, or ``buffer`` / ``junk`` / ``unknown``)."""
    found = _BY_ID.get(part)
    return found.group if found is not None else "other"
