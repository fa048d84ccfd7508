"""Train MetricNet and RewardNet on dqngan/assets/mnist5k.npz and calibrate classifier-FID on MetricNet.

Writes dqngan/assets/classifier_metric.safetensors, classifier_reward.safetensors and classifiers.json
(architectures, held-out accuracies, split, seeds and the FID ladder at N=1000). CPU, about a minute on 2 cores.

Usage: python scripts/train_classifiers.py
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script from anywhere

from dqngan.classifiers import MetricNet, RewardNet
from dqngan.data import ASSETS_DIR, load_dataset, stratified_split, to_float
from dqngan.metrics import FIDScorer, batched, gaussian_blur

SPLIT_SEED = 0
HELDOUT_PER_CLASS = 100  # 1000 held out, 4000 for training
FID_N = 1000
RUNS = {"metric": (MetricNet, 1), "reward": (RewardNet, 2)}  # kind -> (architecture, training seed)
EPOCHS, BATCH, LR, SHIFT = 20, 64, 2e-3, 2
COMMAND = "python scripts/train_classifiers.py"


def random_shift(x: torch.Tensor, g: torch.Generator, s: int = SHIFT) -> torch.Tensor:
    """Translate each image by up to +-s pixels, filling with background (-1)."""
    n = len(x)
    padded = F.pad(x, (s, s, s, s), value=-1.0)
    dy, dx = (torch.randint(0, 2 * s + 1, (n,), generator=g) for _ in range(2))
    rows = (dy[:, None] + torch.arange(28))[:, :, None]
    cols = (dx[:, None] + torch.arange(28))[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, desc: str) -> None:
    """Train in place; batch order and shifts come from a generator seeded with `seed` (dropout from torch's)."""
    g = torch.Generator().manual_seed(seed)
    steps_per_epoch = len(x) // BATCH
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, LR, total_steps=EPOCHS * steps_per_epoch)
    model.train()
    for _ in tqdm(range(EPOCHS), desc=desc, unit="epoch"):
        perm = torch.randperm(len(x), generator=g)
        for i in range(steps_per_epoch):
            idx = perm[i * BATCH:(i + 1) * BATCH]
            loss = F.cross_entropy(model(random_shift(x[idx], g)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (batched(model, "forward", x).argmax(1) == y).float().mean().item()


def fid_ladder(model: nn.Module, train_u8: torch.Tensor, held_u8: torch.Tensor) -> dict:
    """FID at N=1000 of held-out digits (clean and degraded) against 1000 fixed train-part digits."""
    scorer = FIDScorer(train_u8, n=FID_N, classifier=model)
    held = to_float(held_u8[:FID_N])
    g = torch.Generator().manual_seed(123)
    noisy = {std: (held + std * torch.randn(held.shape, generator=g)).clamp(-1, 1) for std in (0.1, 0.3)}
    rungs = {
        "floor_heldout": held,
        "blur_sigma1": gaussian_blur(held, 1.0),
        "blur_sigma2": gaussian_blur(held, 2.0),
        "noise_std0.1": noisy[0.1],
        "noise_std0.3": noisy[0.3],
        "uniform_noise": torch.rand(held.shape, generator=g) * 2 - 1,
    }
    return {name: round(scorer.score(x), 3) for name, x in rungs.items()}


def main() -> None:
    t0 = time.time()
    data = load_dataset("mnist5k")
    train_idx, held_idx = stratified_split(data.labels, HELDOUT_PER_CLASS, SPLIT_SEED)
    x_train, y_train = to_float(data.images[train_idx]), data.labels[train_idx]
    x_held, y_held = to_float(data.images[held_idx]), data.labels[held_idx]
    report: dict = {"classifiers": {}}
    models = {}
    for kind, (arch, seed) in RUNS.items():
        t = time.time()
        torch.manual_seed(seed)  # weight init and dropout, so each model is reproducible on its own
        model = arch()
        train(model, x_train, y_train, seed, f"{kind} ({arch.__name__})")
        acc = accuracy(model, x_held, y_held)
        path = ASSETS_DIR / f"classifier_{kind}.safetensors"
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(path), metadata={"arch": arch.__name__, "heldout_accuracy": f"{acc:.4f}"})
        report["classifiers"][kind] = {
            "arch": arch.__name__, "file": path.name, "heldout_accuracy": round(acc, 4), "train_seed": seed,
            "params": sum(p.numel() for p in model.parameters()), "train_seconds": round(time.time() - t, 1)}
        models[kind] = model
        print(f"{kind}: {arch.__name__} held-out accuracy {acc:.4f}")
    ladder = fid_ladder(models["metric"], data.images[train_idx], data.images[held_idx])
    print("FID ladder (MetricNet features, N=1000):", json.dumps(ladder))
    report.update({
        "dataset": "mnist5k",
        "split": {"function": "dqngan.data.stratified_split", "seed": SPLIT_SEED,
                  "heldout_per_class": HELDOUT_PER_CLASS, "n_train": len(train_idx), "n_heldout": len(held_idx)},
        "training": {"epochs": EPOCHS, "batch": BATCH, "lr": LR, "optimizer": "AdamW + OneCycle",
                     "augmentation": f"random shift +-{SHIFT} px"},
        "fid_ladder": {"classifier": "metric", "n": FID_N,
                       "reference": "1000 fixed train-part digits (FIDScorer subset, seed 0)",
                       "fakes": "the 1000 held-out digits, clean or degraded ([-1,1] units; noise clamped)",
                       "values": ladder},
        "command": COMMAND, "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__, "total_seconds": round(time.time() - t0, 1),
    })
    (ASSETS_DIR / "classifiers.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote classifiers to {ASSETS_DIR} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
