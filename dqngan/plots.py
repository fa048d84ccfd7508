"""Pictures: sample grids as arrays / PNG files (matplotlib plots live beside, imported lazily)."""

from __future__ import annotations

import math
import os

import numpy as np


def grid_image(images: np.ndarray, nrow: int | None = None, pad: int = 2, value: int = 0) -> np.ndarray:
    """Tile uint8 images (N, H, W) into one (rows*(H+pad)+pad, cols*(W+pad)+pad) uint8 image."""
    images = np.asarray(images)
    n, h, w = images.shape
    cols = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), value, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = images[i]
    return out


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 8, value: int = 128) -> np.ndarray:
    """Two grids next to each other with a grey gap (raw | refined)."""
    h = max(left.shape[0], right.shape[0])
    out = np.full((h, left.shape[1] + gap + right.shape[1]), value, dtype=np.uint8)
    out[: left.shape[0], : left.shape[1]] = left
    out[: right.shape[0], left.shape[1] + gap:] = right
    return out


def save_png(path: str | os.PathLike, image: np.ndarray, scale: int = 1) -> None:
    from PIL import Image

    im = Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L")
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    im.save(path)


def save_grid_png(path: str | os.PathLike, raw: np.ndarray, refined: np.ndarray | None = None, scale: int = 2) -> None:
    """samples.png: the raw grid, and beside it the agent-refined grid from the same noise."""
    img = grid_image(raw)
    if refined is not None:
        img = side_by_side(img, grid_image(refined))
    save_png(path, img, scale)
