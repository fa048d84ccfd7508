"""End-to-end CLI runs in subprocesses (real training, real files)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli_batch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")


def dqngan(*args):
    p = subprocess.run([sys.executable, "-m", "dqngan", *map(str, args)], capture_output=True, text=True, env=ENV,
                       cwd=ROOT, timeout=300)
    if p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}: {p.stderr[-2000:]}")
    return p


def cli(tmp, *argvs):
    """Each argv through the real CLI, all in ONE subprocess (helpers.run_cli_batch: one start-up of the interpreter,
    torch and its optimizers, 2-4 s here, instead of one per command); in order, so a command may use what an earlier
    one wrote. None of them may crash (an uncaught exception); the exit codes are the caller's to check."""
    results = run_cli_batch([[str(a) for a in argv] for argv in argvs], tmp, ENV, ROOT)
    for argv, r in zip(argvs, results):
        assert r["crash"] is None, (argv, r["crash"])
    return results


def succeeded(*results):
    for r in results:
        assert r["rc"] == 0, f"exit {r['rc']}: {r['stderr'][-2000:]}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    p = dqngan("train", "--out", out, "--steps", 20, "--preset", "tiny", "--json", "--set", "fid_n=200")
    return out, p


def test_train_json_summary_and_checkpoint(trained):
    out, p = trained
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 20 and summary["checkpoint"] == str(out) and summary["steps_per_s"] > 0
    assert summary["seconds"] > 0 and summary["fid"] > 0
    assert (out / "weights.safetensors").is_file() and not (out / "weights.safetensors.tmp").exists()
    assert "train" in p.stderr  # the tqdm bar goes to stderr


def test_sample_npy_refined_and_png(trained, tmp_path):
    out, _ = trained
    raw, ref, again, grid = tmp_path / "raw.npy", tmp_path / "ref.npy", tmp_path / "raw2.npy", tmp_path / "grid.png"
    sample = ["sample", "--checkpoint", out]
    succeeded(*cli(tmp_path, [*sample, "--n", 10, "--out", raw, "--seed", 3],
                   [*sample, "--n", 10, "--out", ref, "--seed", 3, "--refine"],
                   [*sample, "--n", 10, "--out", again, "--seed", 3],
                   [*sample, "--n", 16, "--out", grid, "--refine"]))
    raw_a, ref_a = np.load(raw), np.load(ref)
    assert raw_a.shape == (10, 28, 28) and raw_a.dtype == np.uint8 and ref_a.shape == raw_a.shape
    # same seed, same samples (here even within one process, after other draws: the seed alone decides)
    assert np.array_equal(np.load(again), raw_a)
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_matches_uninterrupted_run(tmp_path):
    full, half = tmp_path / "full", tmp_path / "half"
    common = ["--preset", "tiny", "--no-progress", "--set", "fid_every=0"]
    succeeded(*cli(tmp_path, ["train", "--out", full, "--steps", 12, *common],
                   ["train", "--out", half, "--steps", 6, *common]))
    # the resume runs in a process of its own, as after a real interruption: only the files carry the run over
    succeeded(*cli(tmp_path, ["train", "--out", half, "--resume", half, "--steps", 6, "--no-progress"]))
    a, b = load_file(str(full / "weights.safetensors")), load_file(str(half / "weights.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert json.loads((half / "train_state.json").read_text())["step"] == 12


# Single commands that need nothing but `trained` or a shipped checkpoint; the `one_liners` fixture runs them all.
HELP = [[*cmd, "--help"] for cmd in ([], ["train"], ["sample"], ["bench"])]
GOALS = ROOT / "checkpoints" / "mnist-goals"
GOAL_SAMPLE = ["sample", "--checkpoint", "{goals}", "--n", "4", "--goal", "3", "--out", "{tmp}/g.npy",
               "--device", "cpu"]
BAD_ARGS = [
    (["train"], "the following arguments are required: --out"),
    (["train", "--out", "{tmp}/x", "--steps", "-3"], "must be >= 1"),
    (["train", "--out", "{tmp}/x", "--steps", "5", "--seconds", "3"], "not allowed with"),
    (["train", "--out", "{tmp}/x", "--steps", "1", "--set", "lr_g=-1"], "lr_g must be >= 0"),
    (["train", "--out", "{tmp}/x", "--steps", "1", "--set", "nonsense=1"], "unknown config key"),
    (["train", "--out", "{tmp}/x", "--steps", "1", "--set", "delta=nan"], "finite"),
    (["train", "--out", "{tmp}/x", "--steps", "1", "--preset", "huge"], "unknown preset"),
    (["train", "--out", "{tmp}/x", "--steps", "1", "--dataset", "{tmp}/no-such-folder"], "does not exist"),
    (["train", "--out", "{tmp}/x", "--steps", "1", "--resume", "{tmp}/no-ckpt"], "no checkpoint at"),
    (["train", "--out", "{tmp}/x", "--steps", "1", "--device", "cuda"], None),
    (["sample", "--checkpoint", "{tmp}/no-ckpt", "--out", "{tmp}/a.npy"], "no checkpoint at"),
    (["sample", "--checkpoint", "{ck}", "--out", "{tmp}/a.txt"], "must end in .npy or .png"),
    (["sample", "--checkpoint", "{ck}", "--out", "{tmp}/a.npy", "--goal", "12"], "a goal is a digit"),
    (["sample", "--checkpoint", "{ck}", "--out", "{tmp}/a.npy", "--goal", "3"], "trained without goals"),
    (["sample", "--checkpoint", "{ck}", "--out", "{tmp}/a.npy", "--n", "0"], "must be >= 1"),
    # the shipped goal agent never saw a no-goal state: refining without a goal is refused, not silently bad
    (["sample", "--checkpoint", "{goals}", "--out", "{tmp}/a.npy", "--refine"], "trained only with goal digits"),
    (["frobnicate"], "invalid choice"),
]


@pytest.fixture(scope="module")
def one_liners(trained, tmp_path_factory):
    """HELP, GOAL_SAMPLE and every BAD_ARGS command line, run by the real CLI in one subprocess (see
    helpers.run_cli_batch): (the folder that {tmp} stands for, {argv as written above: its result})."""
    tmp = tmp_path_factory.mktemp("one-liners")
    cases = [*HELP, GOAL_SAMPLE, *(args for args, _ in BAD_ARGS)]
    argvs = [[a.format(tmp=tmp, ck=trained[0], goals=GOALS) for a in args] for args in cases]
    return tmp, dict(zip(map(tuple, cases), run_cli_batch(argvs, tmp, ENV, ROOT)))


def test_help_for_each_command(one_liners):
    # `python -m dqngan` itself (the module entry point and its exit code) is run by the `trained` fixture
    for argv in HELP:
        r = one_liners[1][tuple(argv)]
        assert r["rc"] == 0 and "usage: dqngan" in r["stdout"], (argv, r)


@pytest.mark.parametrize("args,words", BAD_ARGS)
def test_bad_arguments_give_one_line_and_nonzero_exit(args, words, one_liners):
    import torch

    if args[-1] == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = one_liners[1][tuple(args)]
    assert r["crash"] is None, r["crash"]
    assert r["rc"] not in (0, None), r
    lines = [ln for ln in r["stderr"].splitlines() if ln.strip()]
    assert len(lines) == 1, r["stderr"]
    assert "Traceback" not in r["stderr"]
    if words:
        assert words in lines[0]


def test_export_makes_a_slim_loadable_copy(trained, tmp_path):
    out, _ = trained
    slim, cpu = tmp_path / "slim", tmp_path / "cpu"
    export = ["export", "--checkpoint", out, "--out"]
    made, sampled, same_dir, knobs, cont, shape = cli(
        tmp_path,
        [*export, slim],
        ["sample", "--checkpoint", slim, "--n", 4, "--out", tmp_path / "s.npy", "--refine"],
        [*export, out],
        # Training knobs can be changed for whoever continues the run, even the number of parallel episodes; the
        # networks are copied unchanged, and keys that would change a tensor shape are refused in one line.
        [*export, cpu, "--set", "n_envs=3", "q_batch=5"],
        ["train", "--resume", cpu, "--out", tmp_path / "cont", "--steps", 3, "--no-progress"],
        [*export, tmp_path / "bad", "--set", "q_hidden=7"])
    succeeded(made, sampled, knobs, cont)
    assert (slim / "train_state.safetensors").stat().st_size < (out / "train_state.safetensors").stat().st_size
    assert same_dir["rc"] != 0 and "must differ" in same_dir["stderr"]
    cfg = json.loads((cpu / "config.json").read_text())
    assert (cfg["n_envs"], cfg["q_batch"]) == (3, 5)
    w = [(d / "weights.safetensors").read_bytes() for d in (slim, cpu)]
    assert w[0] == w[1]
    assert shape["rc"] != 0 and len(shape["stderr"].strip().splitlines()) == 1 and "Traceback" not in shape["stderr"]


def test_goal_agent_samples_with_a_goal(one_liners):
    """The refusal above is only for no-goal refinement: the same agent steers with --goal."""
    if not (GOALS / "manifest.json").is_file():
        pytest.skip("the shipped goal checkpoint is missing")
    tmp, results = one_liners
    r = results[tuple(GOAL_SAMPLE)]
    assert r["crash"] is None and r["rc"] == 0, r
    assert np.load(tmp / "g.npy").shape == (4, 28, 28)
