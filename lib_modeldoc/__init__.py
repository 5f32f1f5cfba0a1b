"""Model Doctor: inspect, repair, split and convert Stable Diffusion checkpoints.

Reading and inspecting need only numpy; torch is used, when present, for fast casts.

Example:
    >>> from lib_modeldoc import inspect_model
    >>> report = inspect_model("merge.safetensors")
    >>> report.architecture, [f.id for f in report.findings]
"""

from ._version import __version__
from .checks.diagnose import inspect_model
from .errors import (
    IncompatibleComponentError, ModelDocError, ModelReadError, OutputError, PlanError, UnsafeCheckpointError,
)
from .io.model import ModelFile, open_model

__all__ = [
    "__version__", "inspect_model", "open_model", "ModelFile",
    "ModelDocError", "ModelReadError", "UnsafeCheckpointError", "IncompatibleComponentError", "OutputError", "PlanError",
]
