"""`evaluate`: every sampler on a real (tiny) checkpoint, the counts it states, the report, the plot and the CLI."""

import json
import os
from pathlib import Path

import pytest
import torch
from helpers import run_cli_batch

from dqngan import evaluate as ev
from dqngan.config import make_config
from dqngan.directions import action_moves

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
N = 12


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
    return ev.evaluate(checkpoint[0], ev.Settings(n=20, seeds=1, dprime_steps=5, grad_steps=3), progress=False)


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
    again = ev.evaluate(checkpoint[0], ev.Settings(n=20, seeds=1, dprime_steps=5, grad_steps=3), progress=False)
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
    for _, header, _ in ev.COLUMNS:
        assert header in text
    assert "r.png" in text and "N = 20" in text and "reference set" in text and "hardware" in text
    assert "python -m dqngan evaluate" in text
    checks = ev.verdict(summ)
    assert len(checks) == 6 and {c["status"] for c in checks} <= {"PASS", "FAIL", "N/A"}


def _fake(rows: dict[str, tuple[float, float, float, float]], goal: tuple[float, float] | None = None) -> dict:
    """A summary with (fid, entropy, evals, dprime) per row, for checking the verdict arithmetic."""
    def stat(v):
        return {"mean": v, "std": 0.0, "values": [v]}

    table = {k: {"fid": stat(f), "entropy": stat(h), "evals": stat(e), "dprime_acc": stat(d)}
             for k, (f, h, e, d) in rows.items()}
    goals = {"goal: DQN agent": {"success": stat(goal[0]), "fid": stat(goal[1])}} if goal else {}
    return {"meta": {"config": {"n_dirs": 8}}, "rows": table, "goal_rows": goals}


def test_verdict_arithmetic():
    base = {"G_ema": (40, 0.99, 1, 0.6), "random walk": (39, 0.99, 1, 0.6), "truncation ψ=0.5": (45, 0.95, 1, 0.7),
            "truncation ψ=0.7": (38, 0.97, 1, 0.6), "truncation ψ=0.9": (39, 0.98, 1, 0.6),
            "greedy search (D̄)": (20, 0.99, 170, 0.55)}
    good = ev.verdict(_fake({**base, "DQN agent (greedy)": (22, 0.99, 9, 0.55)}, goal=(0.93, 45)))
    assert [c["status"] for c in good] == ["PASS"] * 6
    bad = ev.verdict(_fake({**base, "DQN agent (greedy)": (37, 0.90, 17, 0.7)}, goal=(0.5, 49)))
    assert [c["status"] for c in bad] == ["FAIL"] * 6
    assert "37.00 vs 0.85 × 40.00 = 34.00" in bad[0]["detail"]
    assert ev.verdict(_fake({**base, "DQN agent (greedy)": (22, 0.99, 9, 0.55)}))[-1]["status"] == "N/A"


BAD_ARGS = [
    (["--checkpoint", "/nonexistent/ck", "--n", "10"], 1),
    (["--n", "1"], 2),
    (["--n", "5001"], 1),
    (["--out", "report.txt"], 1),
]


@pytest.fixture(scope="module")
def cli_runs(checkpoint, tmp_path_factory):
    """One end-to-end `evaluate` (its report written to the returned folder) and every BAD_ARGS command line, run by
    the real CLI in one subprocess (see helpers.run_cli_batch): (folder, the end-to-end result, {args: result})."""
    tmp, ck = tmp_path_factory.mktemp("eval-cli"), str(checkpoint[1])
    e2e = ["evaluate", "--checkpoint", ck, "--n", "16", "--seeds", "2", "--dprime-steps", "3", "--grad-steps", "2",
           "--out", str(tmp / "report.md"), "--json", "--no-progress"]
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
    assert any("minus G_ema" in k and v == pytest.approx(paired, abs=1e-3) for k, v in got.items()), got
    assert all(r.task_type == "unconditional-image-generation" and r.dataset_type == "ylecun/mnist"
               for r in card.data.eval_results)


@pytest.mark.parametrize("args, code", BAD_ARGS)
def test_cli_bad_arguments_fail_with_one_line(cli_runs, args, code):
    r = cli_runs[2][tuple(args)]
    assert r["crash"] is None, r["crash"]
    assert r["rc"] == code, r["stderr"]
    lines = r["stderr"].strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], r["stderr"]
