"""Architecture knowledge as data: key tables, families, and identification from headers."""

from .families import FAMILIES, KNOWN_BUFFERS, Family, Mount, Slot, family
from .identify import Identification, SlotMatch, identify, known_architectures
from .tables import Table, table

__all__ = [
    "FAMILIES", "KNOWN_BUFFERS", "Family", "Mount", "Slot", "family",
    "Identification", "SlotMatch", "identify", "known_architectures", "Table", "table",
]
