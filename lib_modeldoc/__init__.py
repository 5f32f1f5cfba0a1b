"""Model Doctor: inspect, repair, split and convert Stable Diffusion checkpoints.

Reading and inspecting need only numpy; torch is used, when present, for fast casts.

Example:
    >>> from lib_modeldoc import inspect_model
    >>> report = inspect_model("merge.safetensors")
    >>> report.architecture, [f.id for f in report.findings]
"""

__version__ = "0.1.0"

from .diagnose import inspect_model  # noqa: E402
from .errors import (  # noqa: E402
    IncompatibleComponentError, ModelDocError, ModelReadError, OutputError, PlanError, UnsafeCheckpointError,
)
from .model import ModelFile, open_model  # noqa: E402

__all__ = [
    "__version__", "inspect_model", "open_model", "ModelFile",
    "ModelDocError", "ModelReadError", "UnsafeCheckpointError", "IncompatibleComponentError", "OutputError", "PlanError",
]
