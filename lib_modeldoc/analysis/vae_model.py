"""The KL autoencoder of Stable Diffusion as a small torch module built from a file's tensors.

One structure serves SD1, SD2 and SDXL (4 latent channels) and the 16-channel autoencoder of SD3
and Flux (the same blocks without ``quant_conv``/``post_quant_conv``). Its shape (channel widths,
levels, blocks per level, latent channels) is read from the tensors' shapes, never assumed, and
its module names are the LDM keys (``decoder.up.3.block.0.conv1``), so a layer named in a report
is the layer of that name in the file.

Diffusers-layout files (``decoder.up_blocks.0.resnets.0.conv1``; old ``query``/``key``/``value``
attention names too) are renamed to the LDM layout by :func:`ldm_keys`.

torch is imported by this module: import it only when a VAE is actually run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import IncompatibleComponentError

__all__ = ["VaeConfig", "Autoencoder", "ldm_keys", "is_diffusers_layout", "config_from_shapes", "GROUPS"]

GROUPS = 32  # GroupNorm groups of every SD/SD3/Flux autoencoder
EPS = 1e-6


# --------------------------------------------------------------------------------------------
# Key layouts

# diffusers name -> LDM name, for the pieces that are renamed one to one.
_ATTN_NAMES = {
    "group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out",
    "query": "q", "key": "k", "value": "v", "proj_attn": "proj_out",
}


def is_diffusers_layout(keys: Iterable[str]) -> bool:
    """Whether VAE keys (relative to the VAE) use the diffusers names (``down_blocks``, ``mid_block``)."""
    return any(".down_blocks." in k or ".up_blocks." in k or ".mid_block." in k for k in keys)


def _diffusers_to_ldm(key: str, up_levels: int) -> str:
    key = re.sub(r"^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.", r"encoder.down.\1.block.\2.", key)
    key = re.sub(r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample.", key)

    def up(match: re.Match[str]) -> str:
        return f"decoder.up.{up_levels - 1 - int(match.group(1))}."

    key = re.sub(r"^decoder\.up_blocks\.(\d+)\.", up, key)
    key = re.sub(r"^(decoder\.up\.\d+\.)resnets\.(\d+)\.", r"\1block.\2.", key)
    key = re.sub(r"^(decoder\.up\.\d+\.)upsamplers\.0\.", r"\1upsample.", key)
    key = re.sub(r"^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.",
                 lambda m: f"{m.group(1)}.mid.block_{int(m.group(2)) + 1}.", key)
    match = re.match(r"^(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)$", key)
    if match:
        name = _ATTN_NAMES.get(match.group(2), match.group(2))
        key = f"{match.group(1)}.mid.attn_1.{name}.{match.group(3)}"
    key = key.replace(".conv_shortcut.", ".nin_shortcut.").replace(".conv_norm_out.", ".norm_out.")
    return key


def ldm_keys(keys: Iterable[str]) -> dict[str, str]:
    """Map each VAE key (relative to the VAE, either layout) to its LDM name."""
    keys = list(keys)
    if not is_diffusers_layout(keys):
        return {k: k for k in keys}
    levels = {int(m.group(1)) for k in keys if (m := re.match(r"^decoder\.up_blocks\.(\d+)\.", k))}
    up_levels = max(levels) + 1 if levels else 0
    return {k: _diffusers_to_ldm(k, up_levels) for k in keys}


# --------------------------------------------------------------------------------------------
# Configuration read from shapes


@dataclass(frozen=True)
class VaeConfig:
    """The shape of one autoencoder, as read from its tensors."""

    in_channels: int  # image channels (3)
    out_channels: int
    widths: tuple[int, ...]  # channels of each level, outermost first (128, 256, 512, 512)
    blocks: int  # resnet blocks per encoder level (the decoder has one more)
    z_channels: int  # latent channels (4 for SD1/SD2/SDXL, 16 for SD3/Flux)
    quant: bool  # quant_conv / post_quant_conv present (SD1/SD2/SDXL)

    @property
    def downscale(self) -> int:
        """Pixels per latent along each side (8 for every released VAE)."""
        return 2 ** (len(self.widths) - 1)

    @property
    def family(self) -> str:
        """``SD`` (SD1/SD2/SDXL structure) or ``SD3/Flux`` (16 latent channels)."""
        return "SD" if self.z_channels == 4 else "SD3/Flux" if self.z_channels == 16 else f"{self.z_channels}-channel"


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]]) -> VaeConfig:
    """Read the autoencoder's shape from LDM-named tensor shapes.

    Raises:
        IncompatibleComponentError: the tensors are not those of a KL autoencoder this module runs.
    """
    def shape(key: str) -> tuple[int, ...]:
        if key not in shapes:
            raise IncompatibleComponentError(f"not a complete VAE: tensor '{key}' is missing")
        return tuple(shapes[key])

    conv_in = shape("encoder.conv_in.weight")
    levels = sorted({int(m.group(1)) for k in shapes if (m := re.match(r"^encoder\.down\.(\d+)\.", k))})
    if not levels or levels != list(range(len(levels))):
        raise IncompatibleComponentError("not a complete VAE: the encoder's levels are missing or out of order")
    widths = tuple(shape(f"encoder.down.{i}.block.0.conv1.weight")[0] for i in range(len(levels)))
    blocks = len({int(m.group(1)) for k in shapes if (m := re.match(r"^encoder\.down\.0\.block\.(\d+)\.", k))})
    if any(re.match(r"^(encoder\.down|decoder\.up)\.\d+\.attn\.", k) for k in shapes):
        raise IncompatibleComponentError("this VAE has attention inside its levels; only mid-block attention is supported")
    decoder_in = shape("decoder.conv_in.weight")
    z_channels = decoder_in[1]
    if shape("encoder.conv_out.weight")[0] != 2 * z_channels:
        raise IncompatibleComponentError("not a KL VAE: the encoder's output is not twice the latent channels")
    if any(w % GROUPS for w in widths) or conv_in[0] != widths[0]:
        raise IncompatibleComponentError(f"unsupported VAE widths {widths} (each must be a multiple of {GROUPS})")
    return VaeConfig(
        in_channels=conv_in[1],
        out_channels=shape("decoder.conv_out.weight")[0],
        widths=widths,
        blocks=blocks,
        z_channels=z_channels,
        quant="quant_conv.weight" in shapes,
    )


# --------------------------------------------------------------------------------------------
# The module (names follow the LDM keys)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(GROUPS, channels, eps=EPS)


class ResnetBlock(nn.Module):
    """GroupNorm, SiLU, 3x3 conv, twice; a 1x1 shortcut when the width changes."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.norm1 = _norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = _norm(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions (1x1 convs), with a residual."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.norm = _norm(ch)
        self.q = nn.Conv2d(ch, ch, 1)
        self.k = nn.Conv2d(ch, ch, 1)
        self.v = nn.Conv2d(ch, ch, 1)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        h = self.norm(x)

        def tokens(t: torch.Tensor) -> torch.Tensor:  # (b, c, h, w) -> (b, 1, hw, c)
            return t.reshape(b, 1, c, height * width).transpose(2, 3)

        out = F.scaled_dot_product_attention(tokens(self.q(h)), tokens(self.k(h)), tokens(self.v(h)))
        out = out.transpose(2, 3).reshape(b, c, height, width)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Stride-2 3x3 conv after padding right and bottom by one (the LDM convention)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour 2x, then a 3x3 conv."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Mid(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(ch, ch)
        self.attn_1 = AttnBlock(ch)
        self.block_2 = ResnetBlock(ch, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Level(nn.Module):
    """One resolution of the encoder (``down.i``) or decoder (``up.i``)."""

    def __init__(self, blocks: list[ResnetBlock], resample: nn.Module | None, name: str) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self._resample = name if resample is not None else None
        if resample is not None:
            self.add_module(name, resample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block:
            x = block(x)
        return x if self._resample is None else getattr(self, self._resample)(x)


class Encoder(nn.Module):
    def __init__(self, cfg: VaeConfig) -> None:
        super().__init__()
        widths = cfg.widths
        self.conv_in = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)
        down = []
        for i, width in enumerate(widths):
            ins = [widths[max(i - 1, 0)]] + [width] * (cfg.blocks - 1)
            blocks = [ResnetBlock(c, width) for c in ins]
            down.append(Level(blocks, Downsample(width) if i < len(widths) - 1 else None, "downsample"))
        self.down = nn.ModuleList(down)
        self.mid = Mid(widths[-1])
        self.norm_out = _norm(widths[-1])
        self.conv_out = nn.Conv2d(widths[-1], 2 * cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    def __init__(self, cfg: VaeConfig) -> None:
        super().__init__()
        widths = cfg.widths
        self.conv_in = nn.Conv2d(cfg.z_channels, widths[-1], 3, padding=1)
        self.mid = Mid(widths[-1])
        up = []
        for i, width in enumerate(widths):
            ins = [widths[min(i + 1, len(widths) - 1)]] + [width] * cfg.blocks
            blocks = [ResnetBlock(c, width) for c in ins]
            up.append(Level(blocks, Upsample(width) if i > 0 else None, "upsample"))
        self.up = nn.ModuleList(up)
        self.norm_out = _norm(widths[0])
        self.conv_out = nn.Conv2d(widths[0], cfg.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):  # the innermost level runs first
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Autoencoder(nn.Module):
    """The KL autoencoder; :meth:`encode` gives the latent mean (no sampling: deterministic)."""

    def __init__(self, cfg: VaeConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = nn.Conv2d(2 * cfg.z_channels, 2 * cfg.z_channels, 1) if cfg.quant else None
        self.post_quant_conv = nn.Conv2d(cfg.z_channels, cfg.z_channels, 1) if cfg.quant else None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        moments = self.encoder(x)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        return moments[:, : self.config.z_channels]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @classmethod
    def from_tensors(cls, shapes: Mapping[str, tuple[int, ...]], load: Callable[[str], torch.Tensor],
                     on_tensor: Callable[[str], None] | None = None) -> Autoencoder:
        """Build the module for LDM-named ``shapes`` and fill it one tensor at a time.

        ``load(ldm_key)`` returns one tensor (any float dtype; it is copied into float32), so at
        most one file tensor is held besides the module. ``on_tensor`` is called after each one
        (progress, cancellation).

        Raises:
            IncompatibleComponentError: a tensor is missing, unexpected or of the wrong shape.
        """
        cfg = config_from_shapes(shapes)
        with torch.device("meta"):
            model = cls(cfg)
        model = model.to_empty(device="cpu")
        params = dict(model.named_parameters())
        missing = sorted(set(params) - set(shapes))
        if missing:
            raise IncompatibleComponentError(f"not a complete VAE: {len(missing)} tensors missing (first: {missing[0]})")
        for name, param in params.items():
            value = load(name)
            linear_as_conv = value.dim() == 2 and tuple(param.shape) == (*value.shape, 1, 1)
            if tuple(value.shape) != tuple(param.shape) and not linear_as_conv:
                raise IncompatibleComponentError(
                    f"VAE tensor '{name}' has shape {tuple(value.shape)}, expected {tuple(param.shape)}")
            with torch.no_grad():
                param.copy_(value.reshape(param.shape))  # diffusers' linear attention weights are 1x1 convs here
            if on_tensor is not None:
                on_tensor(name)
        return model.eval()
