"""Pictures for the UI: raw | refined grid pairs, frame strips, the training-timeline GIF, mosaics as data URIs, and
turning a sketch into a 28x28 digit."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..plots import grid_image, side_by_side


def grid_pair(raw: np.ndarray, refined: np.ndarray) -> np.ndarray:
    """The raw 8x8 grid, a grey gap, and the agent-refined grid from the same noise (uint8, H x W)."""
    return side_by_side(grid_image(raw), grid_image(refined))


def upscale(img: np.ndarray, k: int) -> np.ndarray:
    """Nearest-neighbour upscaling, so small digits stay crisp in the browser."""
    return np.kron(np.asarray(img, dtype=np.uint8), np.ones((k, k), dtype=np.uint8)) if k > 1 else img


def strip(frames: Sequence[np.ndarray], pad: int = 2, value: int = 96) -> np.ndarray:
    """Frames (each H x W uint8) side by side in one row."""
    frames = [np.asarray(f, dtype=np.uint8) for f in frames]
    if not frames:
        return np.zeros((28, 28), dtype=np.uint8)
    return grid_image(np.stack(frames), nrow=len(frames), pad=pad, value=value)


def rows(*strips_: np.ndarray, gap: int = 4, value: int = 96) -> np.ndarray:
    """Stack strips vertically (padding narrower ones)."""
    w = max(s.shape[1] for s in strips_)
    out = []
    for i, s in enumerate(strips_):
        if s.shape[1] < w:
            s = np.pad(s, ((0, 0), (0, w - s.shape[1])), constant_values=value)
        out.append(s)
        if i < len(strips_) - 1:
            out.append(np.full((gap, w), value, dtype=np.uint8))
    return np.concatenate(out)


def data_uri(img: np.ndarray) -> str:
    """A PNG data URI (for Plotly layout images)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(img, dtype=np.uint8), mode="L").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def mosaic(images: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """Images laid out on a grid without padding, rows top to bottom (for the latent map's thumbnails)."""
    images = np.asarray(images, dtype=np.uint8)
    h, w = images.shape[1:]
    return images.reshape(n_rows, n_cols, h, w).transpose(0, 2, 1, 3).reshape(n_rows * h, n_cols * w)


def timeline_gif(grids: Sequence[tuple[int, Any, Any]], path: str | Path, scale: int = 2, ms: int = 300) -> Path:
    """One frame per recorded grid (raw | refined), labelled with its training step."""
    if not grids:
        raise ValueError("no sample grids recorded yet; train a few steps first")
    frames = []
    for step, raw, refined in grids:
        img = Image.fromarray(upscale(grid_pair(np.asarray(raw), np.asarray(refined)), scale), mode="L")
        canvas = Image.new("L", (img.width, img.height + 16), 255)
        canvas.paste(img, (0, 16))
        ImageDraw.Draw(canvas).text((4, 2), f"step {step}   raw | agent-refined", fill=0)
        frames.append(canvas.convert("P"))
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms, loop=0, optimize=True)
    return path


def sketch_to_digit(value: Any) -> np.ndarray | None:
    """A Sketchpad value -> uint8 (28, 28), white digit on black like MNIST; None if nothing was drawn.

    The digit is cropped to its bounding box, fitted in 20x20 and centred in 28x28 (how MNIST was made), so a small
    or off-centre drawing still projects well."""
    if value is None:
        return None
    img = value.get("composite") if isinstance(value, dict) else value
    if img is None:
        return None
    a = np.asarray(img)
    if a.ndim not in (2, 3) or a.dtype.kind not in "uifb":
        raise ValueError(f"the drawing is not an image (got an array of shape {a.shape}, type {a.dtype})")
    if a.size == 0:
        return None
    if a.ndim == 3 and a.shape[2] == 4:  # RGBA: untouched pixels are transparent; the stroke is the alpha
        ink = a[..., 3].astype(np.float32) * (255.0 - a[..., :3].mean(axis=2)) / 255.0
    elif a.ndim == 3:
        ink = 255.0 - a[..., :3].mean(axis=2)
    else:
        ink = 255.0 - a.astype(np.float32)  # "L" mode: flattened onto white, strokes dark
    ink = np.clip(ink, 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(ink > 30)
    if len(ys) == 0:
        return None
    crop = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = crop.shape
    s = 20.0 / max(h, w)
    small = Image.fromarray(crop).resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)
    out = np.zeros((28, 28), dtype=np.uint8)
    y0, x0 = (28 - small.height) // 2, (28 - small.width) // 2
    out[y0:y0 + small.height, x0:x0 + small.width] = np.asarray(small)
    return out
