"""`python -m dqngan evaluate --checkpoint DIR ...`: the baselines table with paired intervals, plugged into cli.py."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .argtypes import finite_float, int_at_least
from .evaluate import MAX_N, EvaluateError, Settings

USER_ERRORS = (EvaluateError,)
DEFAULTS = Settings()


NON_NEGATIVE = finite_float(positive=False)


def register(sub: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    p = sub.add_parser(
        "evaluate", help="does the agent help? every baseline vs the DQN agent, same N and same z_0, paired 95 %% CIs",
        description="Score G raw, G_ema, truncation, random walk, greedy search, best-of-M, gradient ascent in z and "
                    "the DQN agent from the same starting latents: MetricNet-FID, a second judge (RewardNet "
                    "features: KID, FID, density, coverage), digit entropy, D-bar logit, displacement, G+D "
                    "evaluations and ms per sample, and a fresh discriminator's accuracy; every row's paired "
                    "difference to G_ema with a 95 % bootstrap interval, and a PASS/FAIL/INCONCLUSIVE verdict "
                    "from those intervals.")
    p.add_argument("--checkpoint", required=True, metavar="DIR")
    p.add_argument("--n", type=int_at_least(2), default=DEFAULTS.n,
                   help=f"samples per row, at most {MAX_N} (default 2000)")
    p.add_argument("--seeds", type=int_at_least(1), default=DEFAULTS.seeds, help="seeds (default 3)")
    p.add_argument("--seed-offset", type=int_at_least(0), default=DEFAULTS.seed_offset, metavar="S",
                   help="the reported seeds are S, S+1, ... (default 100: disjoint from seed 0, on which the shipped "
                        "snapshots were chosen)")
    p.add_argument("--selection-seeds", type=int_at_least(0), nargs="*", default=[], metavar="SEED",
                   help="seeds the snapshot or its settings were chosen on: recorded in the report, and refused if "
                        "they overlap the reported ones")
    p.add_argument("--bootstrap", type=int_at_least(10), default=DEFAULTS.bootstrap, metavar="B",
                   help="bootstrap replicates per seed for the 95 %% intervals (default 1000)")
    p.add_argument("--out", metavar="REPORT.md", help="write the markdown report here and the plot beside it (.png)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object on the last line")
    p.add_argument("--best-of", type=int_at_least(1), default=DEFAULTS.best_of, metavar="M",
                   help="candidates for best-of-M (default 2K+1)")
    p.add_argument("--grad-steps", type=int_at_least(1), default=DEFAULTS.grad_steps, metavar="S")
    p.add_argument("--grad-eps", type=NON_NEGATIVE, default=DEFAULTS.grad_eps, metavar="EPS")
    p.add_argument("--grad-noise", type=NON_NEGATIVE, default=DEFAULTS.grad_noise, metavar="SIGMA",
                   help="Langevin noise scale (0 = plain ascent, 1 = DDLS)")
    p.add_argument("--dprime-steps", type=int_at_least(1), default=DEFAULTS.dprime_steps, metavar="S",
                   help="training steps of the fresh discriminator D' (exploit check)")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--no-progress", action="store_true")
    return {"evaluate": cmd_evaluate}


def command_line(a: argparse.Namespace) -> str:
    """The command that reproduces this evaluation (every option spelled out)."""
    parts = ["python -m dqngan evaluate", f"--checkpoint {a.checkpoint}", f"--n {a.n}", f"--seeds {a.seeds}",
             f"--seed-offset {a.seed_offset}"]
    if a.selection_seeds:
        parts.append("--selection-seeds " + " ".join(map(str, a.selection_seeds)))
    parts.append(f"--bootstrap {a.bootstrap}")
    if a.best_of:
        parts.append(f"--best-of {a.best_of}")
    parts += [f"--grad-steps {a.grad_steps}", f"--grad-eps {a.grad_eps}", f"--grad-noise {a.grad_noise}",
              f"--dprime-steps {a.dprime_steps}", f"--device {a.device}"]
    if a.out:
        parts.append(f"--out {a.out}")
    return " ".join(parts)


def cmd_evaluate(a: argparse.Namespace) -> int:
    from . import evaluate as ev
    from .checkpoint import load_checkpoint

    out = Path(a.out) if a.out else None
    if out is not None:
        if out.suffix.lower() != ".md":
            raise EvaluateError(f"--out must end in .md (the plot goes beside it as .png), got {a.out!r}")
        if not out.parent.is_dir():
            raise EvaluateError(f"the folder of --out ({out.parent}) does not exist")
    settings = Settings(n=a.n, seeds=a.seeds, seed_offset=a.seed_offset, selection_seeds=tuple(a.selection_seeds),
                        bootstrap=a.bootstrap, best_of=a.best_of, grad_steps=a.grad_steps, grad_eps=a.grad_eps,
                        grad_noise=a.grad_noise, dprime_steps=a.dprime_steps)
    ev.check_settings(settings)  # before loading anything: a wrong --n or seed set fails at once
    trainer = load_checkpoint(a.checkpoint, device=a.device)
    t0 = time.monotonic()
    summ = ev.summary(ev.evaluate(trainer, settings, progress=not a.no_progress))
    seconds = time.monotonic() - t0
    summ["meta"]["seconds"] = round(seconds, 1)
    summ["meta"]["command"] = command_line(a)
    text = ev.report_markdown(summ, command_line(a), None, seconds)
    if out is not None:
        plot = ev.plot(summ, out.with_suffix(".png"))
        out.write_text(ev.report_markdown(summ, command_line(a), plot.name, seconds))
        # machine-readable beside it: the model card's model-index (the Hub's evaluation widget) reads it
        out.with_suffix(".json").write_text(json.dumps(summ, ensure_ascii=False, indent=1))
    print(text.split("\n## How each row is made")[0].rstrip())
    if out is not None:
        print(f"\nreport: {out} (plot: {out.with_suffix('.png')}, data: {out.with_suffix('.json')})")
    if a.json:
        print(json.dumps(summ, ensure_ascii=False), file=sys.stdout)
    return 0
