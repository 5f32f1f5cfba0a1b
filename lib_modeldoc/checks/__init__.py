"""The checks ``inspect`` runs: each turns a model and its identification into findings.

Each check is a plain function ``(ctx) -> Iterable[Finding]`` listed in :data:`CHECKS`, in the
order their findings are reported. Shared analyses (position_ids values, junk groups) are
computed once on the :class:`CheckContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..report.data import Finding
from .clip import check_nai_layout, check_position_ids
from .components import check_components
from .context import CheckContext
from .identity import check_identity
from .networks import check_network
from .precision import check_fp64, check_precision_waste
from .prediction import check_prediction
from .storage import check_ema, check_junk, check_pickle, check_unknown

__all__ = ["CHECKS", "CheckContext", "Check", "run_checks"]

Check = Callable[[CheckContext], Iterable[Finding]]

CHECKS: tuple[Check, ...] = (
    check_identity,
    check_components,
    check_position_ids,
    check_nai_layout,
    check_junk,
    check_unknown,
    check_ema,
    check_fp64,
    check_precision_waste,
    check_prediction,
    check_network,
    check_pickle,
)


def run_checks(ctx: CheckContext, checks: Iterable[Check] = CHECKS) -> list[Finding]:
    """Run ``checks`` in order and collect their findings."""
    return [finding for check in checks for finding in check(ctx)]
