"""Datasets as uint8 (N, 28, 28) tensors, the [-1, 1] float view the networks see, and a reproducible batch sampler.

Sources: the embedded 5000-digit MNIST subset (default, no network), MNIST / Fashion-MNIST train splits from the
Hugging Face Hub (parquet, cached in the normal HF cache), or a folder of images (grayscale, resized to 28x28).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ASSETS_DIR = Path(__file__).resolve().parent / "assets"  # package data: installed with the package
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
# name -> (repo_id, path in repo, class names); the train split of each, stored as parquet on the Hub's main branch.
HUB_DATASETS = {
    "mnist": ("ylecun/mnist", "mnist/train-00000-of-00001.parquet", [str(d) for d in range(10)]),
    "fashion-mnist": ("zalando-datasets/fashion_mnist", "fashion_mnist/train-00000-of-00001.parquet", FASHION_CLASSES),
}
CHOICES = "mnist5k (embedded), mnist, fashion-mnist (Hugging Face Hub) or a path to a folder of images"


class DataError(ValueError):
    """A dataset cannot be loaded; the message is one line and says what to do instead."""


@dataclass
class ImageData:
    images: torch.Tensor  # uint8 (N, 28, 28), 0 = background (MNIST polarity for the built-in sources)
    labels: torch.Tensor | None  # int64 (N,), or None for an unlabelled folder
    name: str
    class_names: list[str] | None


def load_dataset(source: str = "mnist5k", cache_dir: str | None = None) -> ImageData:
    """Load `source`: "mnist5k", "mnist", "fashion-mnist" or a folder of images. Raises DataError on any failure."""
    if source == "mnist5k":
        return _load_mnist5k()
    if source in HUB_DATASETS:
        return _load_hub(source, cache_dir)
    path = Path(source).expanduser()
    # A bare word that is neither a known name nor an existing path is most likely a typo of a dataset name.
    if path.exists() or any(sep in source for sep in ("/", "\\")) or source.startswith((".", "~")):
        return _load_folder(path)
    raise DataError(f"unknown dataset {source!r}; choose {CHOICES}")


def _load_mnist5k() -> ImageData:
    path = ASSETS_DIR / "mnist5k.npz"
    if not path.is_file():
        raise DataError(f"{path} is missing; rebuild it with: python scripts/build_assets.py")
    with np.load(path) as f:  # plain arrays only: allow_pickle stays False
        images, labels = f["images"], f["labels"]
    return ImageData(torch.from_numpy(images.astype(np.uint8)), torch.from_numpy(labels.astype(np.int64)),
                     "mnist5k", [str(d) for d in range(10)])


def _load_hub(name: str, cache_dir: str | None) -> ImageData:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            OfflineModeIsEnabled,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError:
        raise DataError(f"{name} needs huggingface_hub (pip install 'huggingface_hub>=2.4,<3'); "
                        "or use the embedded default --dataset mnist5k") from None
    repo_id, filename, class_names = HUB_DATASETS[name]
    fallback = "use the embedded default --dataset mnist5k"
    try:
        path = hf_hub_download(repo_id, filename, repo_type="dataset", cache_dir=cache_dir)
    # Order matters: LocalEntryNotFoundError is also an EntryNotFoundError, OfflineModeIsEnabled a ConnectionError.
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
        raise DataError(f"{name} is not cached and the Hub is unreachable (offline); {fallback}") from None
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError, EntryNotFoundError):
        raise DataError(f"{repo_id}/{filename} was not found on the Hub; {fallback}") from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        raise DataError(f"the Hub answered HTTP {status} for {repo_id}; {fallback}") from None
    except OSError as e:  # connection and timeout errors that slipped through, disk full, ...
        raise DataError(f"could not download {name} ({type(e).__name__}); {fallback}") from None
    return _read_parquet(Path(path), name, class_names)


def _read_parquet(path: Path, name: str, class_names: list[str]) -> ImageData:
    import pyarrow.parquet as pq
    from PIL import Image

    try:
        table = pq.read_table(path, columns=["image", "label"])
        blobs = table.column("image").combine_chunks().field("bytes").to_pylist()
        images = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("L")) for b in blobs])
        labels = table.column("label").to_numpy().astype(np.int64)
    # pyarrow's errors subclass OSError/ValueError; KeyError/TypeError come from an unexpected schema.
    except (OSError, ValueError, KeyError, TypeError) as e:  # a corrupt cache file still gives a one-line DataError
        raise DataError(f"could not read {name} from {path} ({type(e).__name__}: {e})".replace("\n", " ")) from None
    if images.shape[1:] != (28, 28):
        raise DataError(f"{name} images are {images.shape[1:]}, expected 28x28")
    return ImageData(torch.from_numpy(images), torch.from_numpy(labels), name, class_names)


def _read_image(path: Path) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            # convert("L") handles RGB, RGBA, palette and 16-bit; LANCZOS downsampling is antialiased in PIL.
            small = img.convert("L").resize((28, 28), Image.Resampling.LANCZOS)
            return np.asarray(small, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _load_folder(folder: Path) -> ImageData:
    if not folder.exists():
        raise DataError(f"dataset folder {str(folder)!r} does not exist; choose {CHOICES}")
    if not folder.is_dir():
        raise DataError(f"dataset path {str(folder)!r} is not a folder; choose {CHOICES}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    images, kept = [], []
    for p in files:
        arr = _read_image(p)
        if arr is not None:
            images.append(arr)
            kept.append(p)
    if not images:
        raise DataError(f"no readable images (png/jpg/jpeg/bmp/gif/webp) in folder {str(folder)!r}")
    if len(kept) < len(files):
        warnings.warn(f"skipped {len(files) - len(kept)} unreadable image file(s) in {folder}", stacklevel=2)
    # Class labels only when every image sits in a named subfolder (ImageFolder convention); else unlabelled.
    parts = [p.relative_to(folder).parts for p in kept]
    labels, class_names = None, None
    if all(len(rel) >= 2 for rel in parts):
        class_names = sorted({rel[0] for rel in parts})
        index = {c: i for i, c in enumerate(class_names)}
        labels = torch.tensor([index[rel[0]] for rel in parts], dtype=torch.int64)
    return ImageData(torch.from_numpy(np.stack(images)), labels, folder.name or str(folder), class_names)


def stratified_split(labels: torch.Tensor, n_heldout_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed (train_idx, heldout_idx) split with the same number of held-out items per class; sorted indices."""
    g = torch.Generator().manual_seed(seed)
    train, held = [], []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        held.append(idx[:n_heldout_per_class])
        train.append(idx[n_heldout_per_class:])
    return torch.cat(train).sort().values, torch.cat(held).sort().values


def to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [-1, 1], the range of the generator's tanh."""
    return images_uint8.to(torch.float32).unsqueeze(1) / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Inverse of to_float: float (N, 1, 28, 28) or (N, 28, 28) in [-1, 1] -> uint8 (N, 28, 28), clamped."""
    x = x.detach()
    if x.dim() == 4:
        x = x.squeeze(1)
    return ((x.to(torch.float32) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


class BatchSampler:
    """Draws batches with replacement using only `generator` (on the same device as the images), so its state alone
    makes a run reproducible. The digits stay uint8 on the device (a quarter of float32's memory) and are scaled to
    [-1, 1] per batch; nothing is copied from the host per batch."""

    def __init__(self, data: ImageData, generator: torch.Generator, device: str | torch.device | None = None):
        if len(data.images) == 0:
            raise DataError(f"dataset {data.name} is empty")
        self.generator = generator
        self.device = torch.device(device) if device is not None else generator.device
        self.images = data.images.to(self.device)  # uint8 (N, 28, 28)

    def __len__(self) -> int:
        return len(self.images)

    def next(self, batch_size: int) -> torch.Tensor:
        """A float (batch_size, 1, 28, 28) batch in [-1, 1]."""
        idx = torch.randint(len(self.images), (batch_size,), generator=self.generator, device=self.device)
        return to_float(self.images[idx])
