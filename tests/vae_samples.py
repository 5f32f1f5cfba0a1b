"""One real-shape VAE (84 M values) in several forms, cheap on disk.

Small tensors (biases, norms, the smaller convolutions) hold random float32 values, the large
ones zeros, stored in fp16 in every form (so tests spend no time converting zeros; the
precision under test is that of the random small tensors). The ``.safetensors`` forms are
sparse files; the ``.pt`` stores each large tensor as a zero-stride view of a one-element
storage, as ``torch.save`` keeps expanded tensors, so it is a few MB on disk while its shapes
and values are those of the other forms.
"""

from __future__ import annotations

import math

import numpy as np

from lib_modeldoc.samples import Spec, family_specs, write_safetensors_sample

SMALL = 200_000  # tensors up to this many values get random values


def vae_values(seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 values for the small VAE tensors, by component-relative key."""
    rng = np.random.default_rng(seed)
    return {
        s.key: (rng.standard_normal(s.shape) * 0.3).astype(np.float32)
        for s in family_specs("VAE", dtype="F32") if math.prod(s.shape) <= SMALL
    }


def write_sparse_vae(path, *, dtype: str = "F16", prefix: str = "", seed: int = 0,
                     extra: dict[str, np.ndarray] | None = None) -> str:
    """The VAE as a sparse ``.safetensors`` (``prefix`` = ``first_stage_model.`` for a checkpoint part).

    ``dtype`` is the storage of the random small tensors.
    """
    numpy_dtype = {"F16": np.float16, "F32": np.float32}[dtype]
    values = {prefix + k: v.astype(numpy_dtype) for k, v in vae_values(seed).items()}
    specs = [Spec(prefix + s.key, dtype if prefix + s.key in values else "F16", s.shape)
             for s in family_specs("VAE", dtype="F16")]
    for key, value in (extra or {}).items():
        specs.append(Spec(key, {"float32": "F32", "float16": "F16"}[value.dtype.name], value.shape))
        values[key] = value
    return write_safetensors_sample(str(path), specs, values)


def write_vae_pt(path, *, seed: int = 0) -> str:
    """The VAE as a ``.vae.pt`` written by ``torch.save``: small tensors float32, large ones expanded fp16 zeros."""
    import torch

    values = vae_values(seed)
    state = {}
    for spec in family_specs("VAE", dtype="F32"):
        if spec.key in values:
            state[spec.key] = torch.from_numpy(values[spec.key])
        else:
            state[spec.key] = torch.zeros(1, dtype=torch.float16).expand(*spec.shape)
    torch.save({"state_dict": state}, str(path))
    return str(path)
