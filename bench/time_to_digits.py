"""Time to digits: train presets from scratch for the same wall-clock budget, side by side, and compare FID.

The runs advance in alternating slices (default 10 s each), so machine noise hits them alike. Writes a grid per run
and a JSON summary. Usage: python bench/time_to_digits.py [--budget 180] [--presets cpu canonical] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from dqngan.config import make_config  # noqa: E402
from dqngan.data import load_dataset  # noqa: E402
from dqngan.metrics import FIDScorer, digit_entropy, load_classifier  # noqa: E402
from dqngan.plots import grid_image, save_png  # noqa: E402
from dqngan.trainer import Trainer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--budget", type=float, default=180.0, help="training seconds per preset")
    ap.add_argument("--slice", type=float, default=10.0, help="seconds per alternating slice")
    ap.add_argument("--presets", nargs="+", default=["cpu", "canonical"])
    ap.add_argument("--n", type=int, default=2000, help="samples for FID (same N for every run)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/out")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset("mnist5k")
    runs = {p: Trainer(make_config(p, {"seed": a.seed, "fid_every": 0, "grid_every": 10**6}), "cpu", data=data)
            for p in a.presets}
    used = dict.fromkeys(runs, 0.0)
    bar = tqdm(total=int(a.budget * len(runs)), unit="s", desc="time-to-digits")
    while min(used.values()) < a.budget:
        for name, tr in runs.items():
            left = a.budget - used[name]
            if left <= 0:
                continue
            t0 = time.perf_counter()
            tr.run(seconds=min(a.slice, left))
            dt = time.perf_counter() - t0
            used[name] += dt
            bar.update(int(round(dt)))
    bar.close()

    clf = load_classifier("metric")
    scorer = FIDScorer(data.images, n=a.n, classifier=clf)
    z = torch.randn(a.n, 100, generator=torch.Generator().manual_seed(1234))
    result = {"budget_s": a.budget, "n": a.n, "torch_threads": torch.get_num_threads(), "runs": {}}
    for name, tr in runs.items():
        imgs = tr.generate(z[:, : tr.cfg.z_dim])
        fid = scorer.score(imgs)
        ent = digit_entropy(scorer.logits(imgs))
        save_png(out / f"digits_{name}_{int(a.budget)}s.png", grid_image(imgs[:64].numpy()), scale=3)
        result["runs"][name] = {"steps": tr.step_count, "steps_per_s": round(tr.step_count / used[name], 2),
                                "fid": round(fid, 3), "digit_entropy": round(ent, 4), "width": tr.cfg.width}
    names = list(runs)
    if len(names) == 2:
        result["fid_ratio"] = round(result["runs"][names[0]]["fid"] / result["runs"][names[1]]["fid"], 3)
    (out / "time_to_digits.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
