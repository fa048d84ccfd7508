"""Tests for dqngan.data on the real embedded digits (no network)."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from dqngan.data import BatchSampler, DataError, load_dataset, stratified_split, to_float, to_uint8


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist5k")


def assert_one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert msg and "\n" not in msg
    return msg


def test_mnist5k_shape_dtype_and_balance(mnist5k):
    assert mnist5k.images.dtype == torch.uint8 and mnist5k.images.shape == (5000, 28, 28)
    assert mnist5k.labels.dtype == torch.int64 and mnist5k.labels.shape == (5000,)
    assert torch.bincount(mnist5k.labels).tolist() == [500] * 10
    assert mnist5k.class_names == [str(d) for d in range(10)]
    # MNIST polarity: dark background, bright strokes.
    assert mnist5k.images[:, 0, :].float().mean() < 5 and mnist5k.images.max() == 255


def test_float_uint8_round_trip(mnist5k):
    x = to_float(mnist5k.images[:100])
    assert x.dtype == torch.float32 and x.shape == (100, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1
    assert torch.equal(to_uint8(x), mnist5k.images[:100])
    assert torch.equal(to_uint8(torch.full((2, 1, 28, 28), 3.0)), torch.full((2, 28, 28), 255, dtype=torch.uint8))


def test_batch_sampler_reproducible_from_generator_state(mnist5k):
    g = torch.Generator().manual_seed(7)
    sampler = BatchSampler(mnist5k, g)
    sampler.next(16)
    state = g.get_state()
    a = sampler.next(32)
    g.set_state(state)
    b = BatchSampler(mnist5k, g).next(32)
    assert a.shape == (32, 1, 28, 28) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, sampler.next(32))


def test_stratified_split_is_fixed_and_disjoint(mnist5k):
    tr, ho = stratified_split(mnist5k.labels, 100, seed=0)
    tr2, ho2 = stratified_split(mnist5k.labels, 100, seed=0)
    assert torch.equal(ho, ho2) and torch.equal(tr, tr2)
    assert len(tr) == 4000 and len(ho) == 1000 and not set(tr.tolist()) & set(ho.tolist())
    assert torch.bincount(mnist5k.labels[ho]).tolist() == [100] * 10


def test_image_folder_with_classes(mnist5k, tmp_path):
    for label in (3, 7):
        (tmp_path / f"digit{label}").mkdir()
        for j in range(3):
            Image.fromarray(mnist5k.images[label * 500 + j].numpy()).save(tmp_path / f"digit{label}" / f"{j}.png")
    # A non-28x28 RGB image must be converted to grayscale and resized.
    big = np.asarray(Image.fromarray(mnist5k.images[7 * 500 + 3].numpy()).resize((56, 56)).convert("RGB"))
    Image.fromarray(big).save(tmp_path / "digit7" / "big.jpg")
    (tmp_path / "digit7" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        data = load_dataset(str(tmp_path))
    assert data.images.shape == (7, 28, 28) and data.images.dtype == torch.uint8
    assert data.class_names == ["digit3", "digit7"]
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    # The PNG copies are exact; the resized RGB copy is close to the original digit.
    assert torch.equal(data.images[0], mnist5k.images[1500])
    assert torch.equal(data.images[3], mnist5k.images[3500])
    diff = (data.images[6].float() - mnist5k.images[3503].float()).abs().mean()  # big.jpg sorts after 2.png
    assert diff < 10


def test_image_folder_without_subfolders_is_unlabelled(mnist5k, tmp_path):
    for j in range(2):
        Image.fromarray(mnist5k.images[j].numpy()).save(tmp_path / f"{j}.bmp")
    data = load_dataset(str(tmp_path))
    assert data.labels is None and data.class_names is None and len(data.images) == 2


@pytest.mark.parametrize("case", ["missing", "file", "empty", "no_images"])
def test_bad_folders_raise_one_line_data_error(tmp_path, case):
    path = tmp_path / "d"
    if case == "file":
        path.write_text("x")
    elif case == "empty":
        path.mkdir()
    elif case == "no_images":
        path.mkdir()
        (path / "a.txt").write_text("x")
        (path / "b.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError) as err:
        load_dataset(str(path))
    assert str(path) in assert_one_line(err)


def test_unknown_name_lists_choices():
    with pytest.raises(DataError) as err:
        load_dataset("cifar10")
    msg = assert_one_line(err)
    assert "mnist5k" in msg and "fashion-mnist" in msg


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_offline_hub_dataset_points_to_mnist5k(tmp_path, monkeypatch, name):
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants as hf_constants
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # huggingface_hub reads these at import time, so patch the constants too (avoids ~20 s of retries).
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(DataError) as err:
        load_dataset(name, cache_dir=str(tmp_path / "cache"))
    msg = assert_one_line(err)
    assert name in msg and "offline" in msg and "mnist5k" in msg


def test_hub_without_huggingface_hub_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # makes the lazy import fail
    with pytest.raises(DataError) as err:
        load_dataset("mnist")
    assert "mnist5k" in assert_one_line(err)


def test_cached_hub_parquet_is_decoded_offline(mnist5k, tmp_path, monkeypatch):
    """A parquet with the Hub schema, placed in the HF cache layout, loads through hf_hub_download while offline."""
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants as hf_constants
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    commit = "0" * 40
    repo = tmp_path / "datasets--ylecun--mnist"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    target = repo / "snapshots" / commit / "mnist" / "train-00000-of-00001.parquet"
    target.parent.mkdir(parents=True)
    idx = [0, 500, 4999]
    pngs = []
    for i in idx:
        buf = io.BytesIO()
        Image.fromarray(mnist5k.images[i].numpy()).save(buf, format="PNG")
        pngs.append({"bytes": buf.getvalue(), "path": None})
    table = pa.table({"image": pa.array(pngs, type=pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                      "label": pa.array(mnist5k.labels[idx].numpy(), type=pa.int64())})
    pq.write_table(table, target)
    data = load_dataset("mnist", cache_dir=str(tmp_path))
    assert data.name == "mnist" and data.images.dtype == torch.uint8
    assert torch.equal(data.images, mnist5k.images[idx]) and data.labels.tolist() == [0, 1, 9]
