"""Which tensors stay out of fp8 when a model is stored in fp8, as data.

The rule the WebUIs and ComfyUI follow (AUTOMATIC1111's and Forge's fp8 storage cast only the
weights of linear and convolution layers; ComfyUI's fp8 checkpoints and ``t5xxl_fp8`` keep norms,
biases and embeddings in 16 bit): a tensor with fewer than two dimensions (biases, norm weights,
qk-norm scales), a normalisation layer, or an embedder (token / position embeddings and the input
projections of the SD3 and Flux transformers) keeps 16-bit precision.
"""

from __future__ import annotations

import re

__all__ = ["FP8_DTYPES", "keeps_16bit_in_fp8", "sixteen_bit_for"]

FP8_DTYPES = frozenset({"F8_E4M3", "F8_E5M2"})

_KEEP = re.compile(
    r"(norm|ln_|_ln\.|layer_norm|LayerNorm|"  # normalisation layers (norm1, ln_final, final_layer_norm ...)
    r"embed|embedding|position|pos_embed|shared\.weight|"  # embeddings, embedders (x_embedder, t_embedder ...)
    r"(^|\.)(img_in|txt_in|time_in|vector_in|guidance_in)\.|"  # Flux input projections
    r"final_layer\.|time_embed\.|label_emb\.)"  # the output layer and timestep/label embedders
)


def keeps_16bit_in_fp8(key: str, shape: tuple[int, ...]) -> bool:
    """Whether ``key`` keeps 16-bit storage when the model goes to fp8."""
    return len(shape) < 2 or bool(_KEEP.search(key))


def sixteen_bit_for(source_dtype: str) -> str:
    """The 16-bit type such a tensor keeps: bf16 stays bf16 (Flux, SD3), anything else becomes fp16."""
    return "BF16" if source_dtype == "BF16" else "F16"
