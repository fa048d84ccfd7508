"""The model card (README.md) pushed with a checkpoint: Hub YAML metadata + what, how trained, results, usage.

`render_card` only reads the checkpoint directory; it never sees a token and makes no network call.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from .checkpoint import resolve

TAGS = ["dqn", "gan", "dcgan", "reinforcement-learning", "image-generation", "pytorch", "safetensors"]
# config "dataset" value -> (Hub dataset id, name, licence line)
DATASETS = {
    "mnist5k": ("ylecun/mnist", "MNIST (the embedded 5000-digit subset, 500 per class)",
                "MNIST (Yann LeCun, Corinna Cortes, Christopher J. C. Burges) is licensed CC BY-SA 3.0"),
    "mnist": ("ylecun/mnist", "MNIST (60000 training digits)",
              "MNIST (Yann LeCun, Corinna Cortes, Christopher J. C. Burges) is licensed CC BY-SA 3.0"),
    "fashion-mnist": ("zalando-datasets/fashion_mnist", "Fashion-MNIST (60000 training images)",
                      "Fashion-MNIST (Zalando Research) is licensed MIT"),
}
METRICS = {  # metrics.json key -> what it means
    "step": "GAN steps trained", "agent_steps": "agent (env + DQN) steps", "train_seconds": "training time (s)",
    "device": "device", "fid": "FID on MetricNet features (lower is better; not Inception-FID)",
    "d_loss": "discriminator loss", "g_loss": "generator loss", "d_real": "D score on real images",
    "d_fake": "D score on G(z)", "d_refined": "D score on agent-refined G(z_T)", "td_loss": "DQN TD loss",
    "episode_return": "mean episode return of the agent", "epsilon": "exploration epsilon",
}
FILES = {
    "config.json": "every hyper-parameter (the `Config` dataclass)",
    "weights.safetensors": "G, G_ema, D, D_bar, Q, Q_target (keys prefixed `G.`, `Q.`, ...)",
    "train_state.safetensors": "optimizer moments, replay memory, env state, RNG state (exact resume)",
    "train_state.json": "counters, optimizer hyper-parameters, metric history",
    "metrics.json": "the latest metrics",
    "samples.png": "raw (left) and agent-refined (right) samples from fixed noise",
    "manifest.json": "sha256 and size of every file above (checked on load)",
    "evaluation.md": "the evaluation report",
}


def render_card(checkpoint_dir: str | os.PathLike, repo_id: str, *, command: str | None = None) -> str:
    """README.md text for the checkpoint at `checkpoint_dir`, to be published as `repo_id`."""
    path = resolve(checkpoint_dir)
    cfg: dict[str, Any] = _json(path / "config.json")
    metrics: dict[str, Any] = _json(path / "metrics.json")
    command = command or metrics.get("command")
    dataset = str(cfg.get("dataset", "?"))
    hub_id, data_name, data_licence = DATASETS.get(dataset, (None, f"a local image folder ({Path(dataset).name})",
                                                             "the training images' licence is not known"))
    meta: dict[str, Any] = {"library_name": "dqngan", "license": "mit", "tags": TAGS,
                            "pipeline_tag": "unconditional-image-generation"}
    if hub_id:
        meta["datasets"] = [hub_id]
    meta["metrics"] = ["fid"]
    results = eval_results(path, cfg, metrics, hub_id or "local-images", data_name)
    if results:  # the Hub's evaluation widget, in the schema huggingface_hub writes and parses
        from huggingface_hub import ModelCardData

        meta.update(ModelCardData(model_name=repo_id.rsplit("/", 1)[-1], eval_results=results).to_dict())
    parts = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip(), "---", "",
             f"# {repo_id.rsplit('/', 1)[-1]}", "", _intro(cfg), ""]
    if (path / "samples.png").is_file():
        parts += ["![Samples: raw G(z) on the left, agent-refined G(z_T) on the right](samples.png)", "",
                  "*Left: raw samples G(z) from fixed noise. Right: the same noise after the agent's greedy moves.*",
                  ""]
    parts += _usage(repo_id) + _training(cfg, metrics, data_name, command) + _results(metrics)
    if (path / "evaluation.md").is_file():
        parts += ["## Evaluation", "", (path / "evaluation.md").read_text(errors="replace").strip(), ""]
    present = [f for f in FILES if (path / f).is_file()]
    parts += ["## Files", "", "| file | content |", "|---|---|"] + [f"| `{f}` | {FILES[f]} |" for f in present] + [
        "", "Only safetensors and JSON are ever loaded; `python -m dqngan pull` refuses repos that carry pickle files.",
        "", "## Limitations", "",
        "A small 28x28 grayscale research model. The FID here uses a small MNIST classifier's features, so it is only "
        "comparable between runs with the same number of samples and says nothing about Inception-FID scales.", "",
        "## License", "",
        f"Code and weights: MIT. Training data: {data_licence}.", ""]
    return "\n".join(parts)


def eval_results(path: Path, cfg: dict[str, Any], metrics: dict[str, Any], dataset_id: str,
                 dataset_name: str) -> list[Any]:
    """model-index entries: the training FID (metrics.json) and, when `dqngan evaluate --out evaluation.md` left its
    evaluation.json beside the checkpoint, G_ema's and the agent's FID, their paired difference (the same z, mean
    over seeds, with its 95 % bootstrap interval in the name) and the judge's KID difference; for a goal agent, its
    steering success and the steered set's FID instead (it refuses unconditional refinement)."""
    from huggingface_hub import EvalResult

    task = {"task_type": "unconditional-image-generation", "task_name": "Unconditional image generation",
            "dataset_type": dataset_id, "dataset_name": dataset_name}
    out = []

    def add(kind: str, value: Any, name: str) -> None:
        if isinstance(value, (int, float)) and value == value:  # not None, not NaN
            out.append(EvalResult(**task, metric_type=kind, metric_value=round(float(value), 4), metric_name=name,
                                  verified=False))

    add("fid", metrics.get("fid"), f"classifier-FID of G_ema at the last training log (MetricNet features, "
        f"N = {cfg.get('fid_n', '?')})")
    ev = _json(path / "evaluation.json")
    rows, goal_rows = ev.get("rows") or {}, ev.get("goal_rows") or {}
    meta, pairs = ev.get("meta") or {}, ev.get("paired") or {}
    seeds = meta.get("seed_list") or meta.get("seeds")
    where = f"N = {meta.get('n')}, seeds {seeds}, dqngan evaluate"
    goal_only = float(cfg.get("beta_goal") or 0) > 0
    agent_row, ema_row = ("goal: DQN agent", "goal: none (G_ema)") if goal_only else ("DQN agent (greedy)", "G_ema")
    ema, agent = (rows.get("G_ema") or {}).get("fid"), ((goal_rows if goal_only else rows).get(agent_row) or {})
    agent = agent.get("fid")
    label = "goal-steered (goals 0-9 evenly)" if goal_only else "agent-refined"
    if ema and agent:
        add("fid", ema["mean"], f"classifier-FID, G_ema ({where})")
        add("fid", agent["mean"], f"classifier-FID, {label} ({where})")
        paired = [a - e for a, e in zip(agent["values"], ema["values"])]
        add("fid", sum(paired) / len(paired), f"{label} FID minus G_ema FID on the same z, mean over seeds"
            + _ci(pairs.get(agent_row, {}).get("fid")) + f" ({where})")
    kid = pairs.get(agent_row, {}).get("kid")
    if kid:
        add("kid", 1e3 * kid["mean"], f"{label} KID minus G_ema KID on the same z, x1000, RewardNet features"
            + _ci(kid, 1e3) + f" ({where})")
    success = goal_rows.get("goal: DQN agent", {}).get("success")
    if success:
        add("accuracy", success["mean"], f"goal steering success, judged by MetricNet ({where})")
    return out


def _ci(iv: dict[str, Any] | None, scale: float = 1.0) -> str:
    """", 95 % CI [lo, hi]" from an evaluation.json interval, or "" (older files have none)."""
    if not iv or "lo" not in iv:
        return ""
    return f", 95 % CI [{scale * iv['lo']:.2f}, {scale * iv['hi']:.2f}]"


def _intro(cfg: dict[str, Any]) -> str:
    loss = {"ns": "non-saturating", "wgan-gp": "WGAN-GP", "hinge": "hinge"}.get(cfg.get("loss"), cfg.get("loss"))
    k = cfg.get("n_dirs", "?")
    return (f"A **DCGAN** for 28x28 images (latent size {cfg.get('z_dim', '?')}, width x{cfg.get('width', '?')}, "
            f"{loss} loss) trained jointly with a **Double DQN agent** that steers the latent space: at each of up to "
            f"{cfg.get('horizon', '?')} moves it shifts z along one of {k} {cfg.get('directions', '?')} directions "
            f"(2K+1 = {2 * k + 1 if isinstance(k, int) else '?'} actions, including stop), rewarded by the change of "
            f"a potential built from a slow copy of the discriminator and a Gaussian prior on z. "
            "Made with dqngan (DQN-GAN Lab).")


def _usage(repo_id: str) -> list[str]:
    return ["## Usage", "",
            "In Python, with the `dqngan-lab` package installed (`pip install .` in a clone of DQN-GAN Lab):", "",
            "```python", "from dqngan import Lab", "",
            f'lab = Lab.from_pretrained("{repo_id}")  # safetensors only; repos with pickle files are refused',
            "images = lab.sample(n=64)          # uint8 (64, 28, 28): G alone",
            "refined = lab.refine(n=64)         # the same z after the agent's greedy moves",
            "sevens = lab.steer(goal=7, n=64)   # a goal-conditioned agent only", "```", "",
            "From the command line:", "", "```bash",
            f"dqngan pull --repo-id {repo_id} --out ckpt",
            "dqngan sample --checkpoint ckpt --n 64 --out samples.png --refine", "```", "",
            "Resume training with `dqngan train --resume ckpt --out ckpt --steps 1000`.", ""]


def _training(cfg: dict[str, Any], m: dict[str, Any], data_name: str, command: str | None) -> list[str]:
    lines = ["## Training", "", f"- Data: {data_name}"]
    for key, label in (("step", "GAN steps"), ("agent_steps", "agent steps"), ("train_seconds", "training time (s)"),
                       ("device", "hardware")):
        if key in m:
            lines.append(f"- {label}: {_fmt(m[key])}")
    if command:
        lines += ["", "Command:", "", "```bash", str(command), "```"]
    lines += ["", "<details><summary>Full configuration (config.json)</summary>", "", "| key | value |", "|---|---|"]
    lines += [f"| `{k}` | {_cell(json.dumps(v))} |" for k, v in sorted(cfg.items())] + ["", "</details>", ""]
    return lines


def _results(m: dict[str, Any]) -> list[str]:
    rows = [(k, v) for k, v in m.items() if k not in ("command", "device", "step", "agent_steps", "train_seconds")]
    if not rows:
        return []
    out = ["## Results", "", f"Latest metrics at step {_fmt(m.get('step', '?'))} (metrics.json):", "",
           "| metric | value | meaning |", "|---|---|---|"]
    order = list(METRICS)
    rows.sort(key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))
    return out + [f"| `{k}` | {_cell(v)} | {METRICS.get(k, '')} |" for k, v in rows] + [""]


def _json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _cell(v: Any) -> str:
    # a pipe would end the Markdown table cell
    return _fmt(v).replace("|", "\\|").replace("\n", " ")
