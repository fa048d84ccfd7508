"""Pictures for the UI: raw | refined grid pairs, frame strips, captioned frames (the Explore / Draw before-after
views), the training-timeline GIF, mosaics as data URIs, and turning a sketch into a 28x28 digit."""

from __future__ import annotations

import base64
import functools
import importlib.util
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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


# ------------------------------------------------------------------------------------------------ captioned frames
PAPER, INK = 255, 0  # captions: black on white, whatever the page theme (the frames themselves are white on black)
ASCII = {"Δ": "d", "Φ": "Phi", "−": "-", "→": "->", "·": "|", "…": "..."}


@functools.lru_cache(maxsize=8)
def font(size: int) -> tuple[Any, bool]:
    """(font, has Greek): DejaVu Sans ships with matplotlib (a requirement) and draws Δ and Φ; PIL's built-in font
    draws them as boxes, so text is then spelled in ASCII."""
    try:
        spec = importlib.util.find_spec("matplotlib")
        root = Path(next(iter(spec.submodule_search_locations)))  # type: ignore[union-attr]
        return ImageFont.truetype(str(root / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"), size), True
    except Exception:  # no matplotlib / no FreeType: fall back to what PIL has
        try:
            return ImageFont.load_default(size=size), False
        except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
            return ImageFont.load_default(), False


def text_band(lines: Sequence[str], width: int, size: int = 13) -> np.ndarray:
    """Lines of text, centred, on a white band `width` pixels wide (cut with … if too long)."""
    f, greek = font(size)
    lines = [ln if greek else "".join(ASCII.get(c, c) for c in ln) for ln in lines]
    line_h = size + 4
    img = Image.new("L", (width, line_h * len(lines) + 2), PAPER)
    draw = ImageDraw.Draw(img)
    for i, ln in enumerate(lines):
        while ln and draw.textlength(ln, font=f) > width - 2:
            ln = ln[:-2] + ("…" if greek else ".")
        x = max(0, (width - draw.textlength(ln, font=f)) / 2)
        draw.text((x, 1 + i * line_h), ln, font=f, fill=INK)
    return np.asarray(img)


def tile(frame: np.ndarray, scale: int, title: str = "", caption: Sequence[str] = (), size: int = 13) -> np.ndarray:
    """One frame upscaled, an optional title above and caption lines below it (outside the digit, never over it)."""
    f = upscale(np.asarray(frame, dtype=np.uint8), scale)
    parts = ([text_band([title], f.shape[1], size + 1)] if title else []) + [f]
    if caption:
        parts.append(text_band(list(caption), f.shape[1], size))
    return np.concatenate(parts)


def side(tiles: Sequence[np.ndarray], gap: int = 10) -> np.ndarray:
    """Tiles left to right on white, bottom-padded to the tallest."""
    h = max(t.shape[0] for t in tiles)
    out: list[np.ndarray] = []
    for i, t in enumerate(tiles):
        out.append(np.pad(t, ((0, h - t.shape[0]), (0, 0)), constant_values=PAPER))
        if i < len(tiles) - 1:
            out.append(np.full((h, gap), PAPER, dtype=np.uint8))
    return np.concatenate(out, axis=1)


def stack(blocks: Sequence[np.ndarray], gap: int = 8, margin: int = 6) -> np.ndarray:
    """Blocks top to bottom on white (right-padded to the widest), with a white margin all round."""
    return np.pad(rows(*blocks, gap=gap, value=PAPER), margin, constant_values=PAPER)


def heading(text: str, width: int, size: int = 14) -> np.ndarray:
    """A left-aligned line of text (a row's name in a picture)."""
    f, greek = font(size)
    text = text if greek else "".join(ASCII.get(c, c) for c in text)
    img = Image.new("L", (width, size + 6), PAPER)
    ImageDraw.Draw(img).text((2, 2), text, font=f, fill=INK)
    return np.asarray(img)


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
