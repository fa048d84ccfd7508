"""`evaluate`: every sampler on a real (tiny) checkpoint, the counts it states, the report, the plot and the CLI."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli_batch

from dqngan import evaluate as ev
from dqngan.config import make_config
from dqngan.directions import action_moves

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
N = 12
SMALL = ev.Settings(n=20, seeds=1, dprime_steps=5, grad_steps=3, bootstrap=50)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, mnist):
    from dqngan.checkpoint import save_checkpoint
    from dqngan.trainer import Trainer

    t = Trainer(make_config("tiny"), "cpu", data=mnist)
    t.run(steps=20)
    return t, save_checkpoint(t, tmp_path_factory.mktemp("eval") / "ck")


@pytest.fixture(scope="module")
def ctx(checkpoint):
    return ev.context(checkpoint[0])


@pytest.fixture(scope="module")
def small_run(checkpoint):
    """One full evaluation at tiny N (1 seed, a 5-step D'), shared by the report tests."""
    return ev.evaluate(checkpoint[0], SMALL, progress=False)


def z0(n=N, seed=0):
    return torch.randn(n, 100, generator=torch.Generator().manual_seed(seed))


def test_phi_matches_the_engine_potential(checkpoint, ctx):
    trainer, _ = checkpoint
    z = z0()
    goal = torch.full((N,), -1, dtype=torch.long)
    assert torch.allclose(ev.phi(ctx, z, goal)[0], trainer.potential(z, goal), atol=1e-5)


def test_every_method_returns_n_images_and_its_stated_evaluations(checkpoint, ctx):
    trainer, _ = checkpoint
    k, horizon, z = ctx.dirs.shape[0], ctx.horizon, z0()
    gen = torch.Generator().manual_seed(1)
    runs = {
        "plain": (ev.sample_g(ctx, z), 1.0),
        "raw": (ev.sample_g(ctx, z, raw=True), 1.0),
        "trunc": (ev.sample_g(ctx, z, psi=0.5), 1.0),
        "walk": (ev.random_walk(ctx, z, gen), 1.0),
        "best": (ev.best_of(ctx, z, 5, gen), 2 * 5 + 1.0),
        "grad": (ev.gradient_refine(ctx, z, 3, 0.05, 0.5, gen), 4 * 3 + 1.0),
    }
    for name, (s, evals) in runs.items():
        assert s.images.shape == (N, 28, 28) and s.images.dtype == torch.uint8, name
        assert torch.equal(s.evals, torch.full((N,), evals)), name
        assert torch.equal(s.z0, z), name

    greedy = ev.greedy_search(ctx, z)
    moves = torch.stack(greedy.actions).ne(0).sum(0).float()
    searched = torch.clamp(moves + 1, max=horizon)  # steps scored: each move, plus the one that found none
    assert torch.equal(greedy.evals, 2 * (1 + 2 * k * searched) + 1)  # 2K new Phi values per step, 2 evals each
    goal = torch.full((N,), -1, dtype=torch.long)
    assert (trainer.potential(greedy.z_t, goal) >= trainer.potential(z, goal) - 1e-5).all()  # never worse

    agent = ev.dqn_agent(trainer, ctx, z)
    z_ref, actions = trainer.refine(z)
    assert torch.equal(agent.z_t, z_ref) and agent.images.shape == (N, 28, 28)
    moves = torch.stack(actions).ne(0).sum(0).float()
    per_decision = ev.decision_cost(trainer.potential.features)  # the Q-network's view of G(z)
    assert per_decision == (0 if trainer.cfg.q_state == "z" else 2 if trainer.cfg.q_state != "grad" else 4)
    assert torch.equal(agent.evals, 1 + per_decision * torch.clamp(moves + 1, max=horizon))


def test_a_z_only_agent_costs_one_g_forward(mnist):
    from dqngan.trainer import Trainer

    t = Trainer(make_config("tiny", {"q_state": "z"}), "cpu", data=mnist)
    agent = ev.dqn_agent(t, ev.context(t), z0())
    assert torch.equal(agent.evals, torch.ones(N))  # moves cost no G or D: only the final image
    assert [ev.decision_cost(v) for v in ("", "image", "score", "grad", True, False)] == [0, 2, 2, 4, 2, 0]


def test_random_walk_moves_exactly_delta_per_step(ctx):
    z = z0()
    one = ev.random_walk(ctx, z, torch.Generator().manual_seed(2), steps=1)
    assert torch.allclose((one.z_t - z).norm(dim=1), torch.full((N,), ctx.delta), atol=1e-5)
    walk = ev.random_walk(ctx, z, torch.Generator().manual_seed(3))
    assert len(walk.actions) == ctx.horizon and all(bool((a != 0).all()) for a in walk.actions)  # never stops
    path = z.clone()
    for a in walk.actions:
        step = action_moves(a, ctx.dirs, ctx.delta)
        assert torch.allclose(step.norm(dim=1), torch.full((N,), ctx.delta), atol=1e-5)
        path = path + step
    assert torch.allclose(path, walk.z_t)


def test_same_start_gives_identical_rows_across_calls(checkpoint, small_run):
    again = ev.evaluate(checkpoint[0], SMALL, progress=False)
    for name in ("G_ema", "greedy search (D̄)", "DQN agent (greedy)"):
        a, b = small_run["rows"][name][0], again["rows"][name][0]
        assert {k: v for k, v in a.items() if k != "ms"} == {k: v for k, v in b.items() if k != "ms"}, name
    # one z_0 for every row: truncation moves it by exactly (1 - psi) |z_0|
    rows = small_run["rows"]
    norm = rows["truncation ψ=0.5"][0]["displacement"] / 0.5
    assert rows["truncation ψ=0.9"][0]["displacement"] == pytest.approx(0.1 * norm, rel=1e-4)


def test_report_has_every_row_and_column_and_the_plot(small_run, tmp_path):
    summ = ev.summary(small_run)
    assert list(summ["rows"]) == ev.ROWS and not summ["goal_rows"]  # tiny preset: beta_goal = 0
    plot = ev.plot(summ, tmp_path / "r.png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = ev.report_markdown(summ, "python -m dqngan evaluate ...", plot.name, 1.0)
    for name in ev.ROWS:
        assert f"| {name} |" in text
    for _, header, _, _ in ev.COLUMNS + ev.PAIRED_COLUMNS:
        assert header in text
    assert "r.png" in text and "N = 20" in text and "reference set" in text and "hardware" in text
    assert "reported seeds 100" in text and "bootstrap" in text and "RewardNet" in text
    assert "python -m dqngan evaluate" in text
    checks = summ["verdict"]
    assert len(checks) == 6 and {c["status"] for c in checks} <= {"PASS", "FAIL", "INCONCLUSIVE", "N/A"}
    # every row but the floor and G_ema itself has its paired difference to G_ema, with an interval per metric
    assert set(summ["paired"]) == set(ev.ROWS) - {ev.FLOOR, ev.EMA}
    fid = summ["paired"][ev.AGENT]["fid"]
    assert fid["lo"] <= fid["hi"] and len(fid["per_seed"]) == 1
    assert fid["mean"] == pytest.approx(small_run["rows"][ev.AGENT][0]["fid"] - small_run["rows"][ev.EMA][0]["fid"])


def test_rows_are_paired_on_the_same_resampled_z(small_run):
    """Every row of a seed uses the same bootstrap draws: a row that moves z a little (truncation 0.9) has a far
    narrower interval for its difference to G_ema than the same replicates would give unpaired (shuffled)."""
    reps = small_run["reps"]
    a, e = reps["truncation ψ=0.9"][0]["fid"], reps[ev.EMA][0]["fid"]
    shuffled = e[np.random.default_rng(0).permutation(len(e))]
    assert np.std(a - e) < 0.5 * np.std(a - shuffled)


def test_dprime_draws_match_its_held_out_halves_when_reals_run_out():
    """Above the 5 000 reference digits D' pairs only as many samples as there are reals: the resample rows for its
    held-out halves must have that size (this broke --n 10 000 once)."""
    real, fake = torch.randint(0, 256, (7, 28, 28), dtype=torch.uint8), torch.randint(0, 256, (12, 28, 28),
                                                                                         dtype=torch.uint8)
    right_r, right_f = ev.two_sample_test(real, fake, seed=0, steps=2, batch=4)
    draws = ev.Draws.make(12, 5, seed=0, n_real=7)
    assert draws.samples.shape == (6, 12) and draws.real.shape == (6, len(right_r)) == draws.fake.shape
    assert len(right_r) == len(right_f) == 4
    acc = (draws.real @ right_r + draws.fake @ right_f) / (2 * len(right_r))
    assert float(acc[0]) == pytest.approx(ev.two_sample_accuracy(real, fake, seed=0, steps=2, batch=4))


def _result(rows: dict[str, dict[str, float]], goal: dict[str, dict[str, float]] | None = None, beta: float = 0.0,
            noise: float = 0.01, seeds: int = 2, b: int = 200) -> dict:
    """An evaluate() result with these values on every seed and replicates scattered `noise` (relative) around
    them, for checking the verdict's arithmetic."""
    rng = np.random.default_rng(0)
    table = {**rows, **(goal or {})}
    reps = {name: [{k: v + rng.normal(0, noise * abs(v) + 1e-9, b) for k, v in vals.items()} for _ in range(seeds)]
            for name, vals in table.items()}
    return {"meta": {"config": {"n_dirs": 8, "beta_goal": beta}, "judge_independent": beta == 0},
            "rows": {k: [dict(v) for _ in range(seeds)] for k, v in rows.items()},
            "goal_rows": {k: [dict(v) for _ in range(seeds)] for k, v in (goal or {}).items()}, "reps": reps}


def _row(fid, kid, entropy=0.99, coverage=0.9, evals=1.0, dprime=0.6, **extra):
    return {"fid": fid, "kid": kid * 1e-3, "entropy": entropy, "coverage": coverage, "evals": evals,
            "dprime_acc": dprime, **extra}


BASE = {"G_ema": _row(40, 4.0), "random walk": _row(39, 3.9), "truncation ψ=0.5": _row(45, 5, entropy=0.95),
        "truncation ψ=0.7": _row(38, 3.8, entropy=0.97), "truncation ψ=0.9": _row(39, 3.9, entropy=0.98),
        "greedy search (D̄)": _row(20, 0.8, evals=170, dprime=0.55)}
GOALS = {"goal: none (G_ema)": _row(40, 4.0, success=0.1)}


def test_verdict_from_intervals_and_agreeing_metrics():
    good = ev.verdict(_result({**BASE, ev.AGENT: _row(22, 1.0, evals=9, dprime=0.55)},
                              {**GOALS, ev.GOAL_AGENT: _row(45, 4.5, success=0.93)}))
    assert [c["status"] for c in good] == ["PASS"] * 6, good
    bad = ev.verdict(_result({**BASE, ev.AGENT: _row(37, 3.9, entropy=0.9, coverage=0.8, evals=17, dprime=0.7)},
                             {**GOALS, ev.GOAL_AGENT: _row(49, 6.0, success=0.5)}))
    assert [c["status"] for c in bad] == ["FAIL"] * 6, bad
    assert "FID +3.00 [" in bad[0]["detail"] and "KID×10³ +0.50 [" in bad[0]["detail"]  # agent − 0.85 × G_ema
    # FID says yes, the independent KID says no: inconclusive, not PASS
    split = ev.verdict(_result({**BASE, ev.AGENT: _row(22, 4.0, evals=9, dprime=0.55)}))
    assert split[0]["status"] == "INCONCLUSIVE" and "(PASS)" in split[0]["detail"] and "(FAIL)" in split[0]["detail"]
    assert split[-1]["status"] == "N/A"  # no goal rows
    # both metrics agree on the point estimates, but the intervals straddle the bound
    noisy = ev.verdict(_result({**BASE, ev.AGENT: _row(33, 3.3, evals=9, dprime=0.55)}, noise=0.3))
    assert noisy[0]["status"] == "INCONCLUSIVE"


def test_verdict_of_a_goal_only_agent_skips_unconditional_refinement():
    checks = ev.verdict(_result({**BASE, ev.AGENT: _row(400, 40, evals=1, dprime=0.9)},
                                {**GOALS, ev.GOAL_AGENT: _row(45, 4.5, success=0.93, dprime=0.605)}, beta=3.0))
    assert [c["status"] for c in checks[:4]] == ["N/A"] * 4 and "refuses unconditional refinement" in checks[0][
        "detail"]
    assert checks[4]["status"] == "PASS" and "goal: DQN agent" in checks[4]["detail"]  # exploit check on steering
    assert checks[5]["status"] == "PASS" and "not independent" in checks[5]["detail"]  # RewardNet was its reward


BAD_ARGS = [
    (["--checkpoint", "/nonexistent/ck", "--n", "10"], 1),
    (["--n", "1"], 2),
    (["--n", "10001"], 1),
    (["--bootstrap", "5"], 2),
    (["--selection-seeds", "0", "101"], 1),  # 101 is among the reported seeds 100-102
    (["--out", "report.txt"], 1),
]


@pytest.fixture(scope="module")
def cli_runs(checkpoint, tmp_path_factory):
    """One end-to-end `evaluate` (its report written to the returned folder) and every BAD_ARGS command line, run by
    the real CLI in one subprocess (see helpers.run_cli_batch): (folder, the end-to-end result, {args: result})."""
    tmp, ck = tmp_path_factory.mktemp("eval-cli"), str(checkpoint[1])
    e2e = ["evaluate", "--checkpoint", ck, "--n", "16", "--seeds", "2", "--dprime-steps", "3", "--grad-steps", "2",
           "--bootstrap", "40", "--selection-seeds", "0", "--out", str(tmp / "report.md"), "--json", "--no-progress"]
    bad = [["evaluate", *([] if "--checkpoint" in args else ["--checkpoint", ck]), *args] for args, _ in BAD_ARGS]
    first, *rest = run_cli_batch([e2e, *bad], tmp, ENV, ROOT)
    return tmp, first, dict(zip([tuple(a) for a, _ in BAD_ARGS], rest))


def test_cli_end_to_end(cli_runs, checkpoint, tmp_path):
    folder, p, _ = cli_runs
    out = folder / "report.md"
    assert p["crash"] is None, p["crash"]
    assert p["rc"] == 0, p["stderr"][-2000:]
    result = json.loads(p["stdout"].strip().splitlines()[-1])
    assert list(result["rows"]) == ev.ROWS and result["meta"]["n"] == 16 and result["meta"]["seeds"] == 2
    assert result["meta"]["seed_list"] == [100, 101] and result["meta"]["selection_seeds"] == [0]
    assert "reps" not in result and result["paired"][ev.AGENT]["kid"]["lo"] <= result["paired"][ev.AGENT]["kid"]["hi"]
    assert len(result["rows"]["G_ema"]["fid"]["values"]) == 2 and len(result["verdict"]) == 6
    assert out.is_file() and out.with_suffix(".png").is_file() and "report.png" in out.read_text()
    assert "| DQN agent (greedy) |" in p["stdout"] and "Verdict" in p["stdout"]
    assert json.loads(out.with_suffix(".json").read_text())["rows"] == result["rows"]  # the data beside the report
    # the model card's model-index carries these numbers, in the schema huggingface_hub parses (the Hub's widget)
    import shutil

    from huggingface_hub import ModelCard

    from dqngan.modelcard import render_card

    ck = shutil.copytree(checkpoint[1], tmp_path / "ck")
    shutil.copy(out.with_suffix(".json"), ck / "evaluation.json")
    card = ModelCard(render_card(ck, "alice/tiny"))
    got = {r.metric_name: r.metric_value for r in card.data.eval_results}
    agent, ema = result["rows"]["DQN agent (greedy)"]["fid"], result["rows"]["G_ema"]["fid"]
    paired = sum(a - e for a, e in zip(agent["values"], ema["values"])) / 2
    assert any("agent-refined" in k and v == pytest.approx(agent["mean"], abs=1e-3) for k, v in got.items()), got
    assert any("minus G_ema" in k and "95 % CI" in k and v == pytest.approx(paired, abs=1e-3)
               for k, v in got.items()), got
    assert all(r.task_type == "unconditional-image-generation" and r.dataset_type == "ylecun/mnist"
               for r in card.data.eval_results)


@pytest.mark.parametrize("args, code", BAD_ARGS)
def test_cli_bad_arguments_fail_with_one_line(cli_runs, args, code):
    r = cli_runs[2][tuple(args)]
    assert r["crash"] is None, r["crash"]
    assert r["rc"] == code, r["stderr"]
    lines = r["stderr"].strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], r["stderr"]


@pytest.mark.parametrize("name", ["mnist", "mnist-goals"])
def test_shipped_reports_are_on_seeds_disjoint_from_the_selection_seeds(name):
    """Selection hygiene of the shipped evaluations: the z-sets the snapshot was chosen on are declared, recorded in
    COMMANDS.md and not among the reported ones; every verdict line comes with paired intervals."""
    folder = ROOT / "checkpoints" / name
    report = json.loads((folder / "evaluation.json").read_text())
    meta = report["meta"]
    assert meta["selection_seeds"] and not set(meta["seed_list"]) & set(meta["selection_seeds"])
    assert meta["n"] >= 2000 and len(meta["seed_list"]) >= 3 and meta["bootstrap"] >= 1000
    commands = (folder / "COMMANDS.md").read_text()
    assert "--selection-seeds " + " ".join(map(str, meta["selection_seeds"])) in commands
    assert f"--seed-offset {meta['seed_list'][0]}" in commands
    assert {c["status"] for c in report["verdict"]} <= {"PASS", "FAIL", "INCONCLUSIVE", "N/A"}
    agent = ev.GOAL_AGENT if name == "mnist-goals" else ev.AGENT
    assert {"fid", "kid", "coverage"} <= set(report["paired"][agent])
