"""The built-in test image of the VAE test: made by code, the same bytes on every machine.

Four quadrants, each a kind of content a damaged VAE gets wrong in its own way:

* colour patches (primaries, secondaries, black, white, greys, skin and sky tones): colour shifts;
* gradients (a hue sweep, a grey ramp, single-channel ramps): banding and contrast loss;
* edges (a black/white step, rings, fine and coarse checkerboards, thin lines): blur and ringing;
* texture (seeded noise over a woven pattern, in colour): the detail a washed-out VAE smears.

Everything is computed from pixel coordinates and a fixed seed, so any size gives the same
picture at its own resolution and no file is downloaded.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["vae_test_image", "side_by_side", "png_bytes", "PATCH_COLOURS"]

PATCH_COLOURS: tuple[tuple[float, float, float], ...] = (
    (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1),
    (0, 1, 1), (1, 0, 1), (1, 1, 0), (0, 0, 0),
    (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), (0.75, 0.75, 0.75), (0.94, 0.76, 0.64),
    (0.55, 0.36, 0.24), (0.40, 0.62, 0.90), (0.20, 0.45, 0.18), (0.98, 0.60, 0.10),
)
_SEED = 20_231_130


def _hue(h: np.ndarray) -> np.ndarray:
    """Fully saturated colours for hue in [0, 1) (HSV with s = v = 1)."""
    k = (np.array([5.0, 3.0, 1.0]) + h[..., None] * 6.0) % 6.0
    return 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _patches(n: int) -> np.ndarray:
    cells = (np.arange(n) * 4) // n
    index = cells[:, None] * 4 + cells[None, :]
    return np.asarray(PATCH_COLOURS, dtype=np.float64)[index]


def _gradients(n: int) -> np.ndarray:
    x = (np.arange(n) + 0.5) / n
    band = (np.arange(n) * 4) // n  # four horizontal bands
    out = np.empty((n, n, 3))
    rows = {b: band == b for b in range(4)}
    out[rows[0]] = _hue(x)
    out[rows[1]] = np.repeat(x[:, None], 3, axis=1)
    out[rows[2]] = np.stack([x, np.zeros(n), 1 - x], axis=1)  # red against blue
    out[rows[3]] = np.stack([x * 0.9 + 0.05, x * 0.6 + 0.2, np.full(n, 0.15)], axis=1)  # dark to warm
    return out


def _edges(n: int) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n]
    u, v = (x + 0.5) / n, (y + 0.5) / n
    grey = np.where(u < 0.5, 0.0, 1.0)  # a hard step in the middle
    rings = (np.hypot(u - 0.25, v - 0.25) * n / 3).astype(int) % 2
    grey = np.where(np.hypot(u - 0.25, v - 0.25) < 0.22, rings, grey)
    fine = ((x // 2 + y // 2) % 2).astype(float)
    coarse = ((x * 8 // n + y * 8 // n) % 2).astype(float)
    grey = np.where((u >= 0.5) & (v >= 0.5), fine, grey)
    grey = np.where((u < 0.5) & (v >= 0.5), coarse, grey)
    lines = (np.abs(((u + v) * n) % 16 - 8) < 1) & (u >= 0.5) & (v < 0.5)
    grey = np.where(lines, 0.0, grey)
    out = np.repeat(grey[..., None].astype(float), 3, axis=2)
    out[(u >= 0.5) & (v < 0.5) & ~lines] = (0.9, 0.85, 0.2)  # dark lines on yellow
    return out


def _texture(n: int) -> np.ndarray:
    rng = np.random.default_rng(_SEED)
    noise = rng.random((n, n, 3))
    y, x = np.mgrid[0:n, 0:n] / max(n, 1)
    weave = 0.5 + 0.25 * np.sin(2 * np.pi * 24 * x) * np.sin(2 * np.pi * 24 * y)
    base = np.stack([0.55 + 0.3 * x, 0.35 + 0.3 * y, 0.45 - 0.2 * x], axis=-1)
    return np.clip(base * weave[..., None] + 0.35 * (noise - 0.5), 0.0, 1.0)


def vae_test_image(size: int = 256) -> np.ndarray:
    """The test image, ``size`` x ``size`` RGB, float32 in [0, 1], shape ``(size, size, 3)``.

    ``size`` must be even (each quadrant is ``size // 2`` pixels square).
    """
    if size < 16 or size % 2:
        raise ValueError(f"test image size must be an even number of pixels, at least 16 (got {size})")
    n = size // 2
    top = np.concatenate([_patches(n), _gradients(n)], axis=1)
    bottom = np.concatenate([_edges(n), _texture(n)], axis=1)
    return np.concatenate([top, bottom], axis=0).astype(np.float32)



def side_by_side(original: np.ndarray, decoded: np.ndarray, gap: int = 8) -> np.ndarray:
    """Two uint8 HxWx3 images next to each other on a white ``gap`` (original left)."""
    height = original.shape[0]
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    return np.concatenate([original, spacer, decoded], axis=1)


def png_bytes(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of a uint8 HxWx3 array (zlib only: no imaging library needed)."""
    height, width, _ = rgb.shape
    rows = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rgb.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))
