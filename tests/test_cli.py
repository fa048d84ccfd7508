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


def dqngan(*args, check=True):
    p = subprocess.run([sys.executable, "-m", "dqngan", *map(str, args)], capture_output=True, text=True, env=ENV,
                       cwd=ROOT, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}: {p.stderr[-2000:]}")
    return p


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
    dqngan("sample", "--checkpoint", out, "--n", 10, "--out", tmp_path / "raw.npy", "--seed", 3)
    dqngan("sample", "--checkpoint", out, "--n", 10, "--out", tmp_path / "ref.npy", "--seed", 3, "--refine")
    raw, ref = np.load(tmp_path / "raw.npy"), np.load(tmp_path / "ref.npy")
    assert raw.shape == (10, 28, 28) and raw.dtype == np.uint8 and ref.shape == raw.shape
    again = tmp_path / "raw2.npy"
    dqngan("sample", "--checkpoint", out, "--n", 10, "--out", again, "--seed", 3)
    assert np.array_equal(np.load(again), raw)  # same seed, same samples
    dqngan("sample", "--checkpoint", out, "--n", 16, "--out", tmp_path / "grid.png", "--refine")
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_matches_uninterrupted_run(tmp_path):
    full, half = tmp_path / "full", tmp_path / "half"
    common = ["--preset", "tiny", "--no-progress", "--set", "fid_every=0"]
    dqngan("train", "--out", full, "--steps", 12, *common)
    dqngan("train", "--out", half, "--steps", 6, *common)
    dqngan("train", "--out", half, "--resume", half, "--steps", 6, "--no-progress")
    a, b = load_file(str(full / "weights.safetensors")), load_file(str(half / "weights.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert json.loads((half / "train_state.json").read_text())["step"] == 12


def test_help_for_each_command():
    for cmd in ([], ["train"], ["sample"], ["bench"]):
        p = dqngan(*cmd, "--help")
        assert "usage: dqngan" in p.stdout


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
def cli_bad(trained, tmp_path_factory):
    """Every BAD_ARGS command line run by the real CLI in one subprocess (see helpers.run_cli_batch)."""
    tmp = tmp_path_factory.mktemp("bad-args")
    goals = ROOT / "checkpoints" / "mnist-goals"
    argvs = [[a.format(tmp=tmp, ck=trained[0], goals=goals) for a in args] for args, _ in BAD_ARGS]
    return dict(zip([tuple(a) for a, _ in BAD_ARGS], run_cli_batch(argvs, tmp, ENV, ROOT)))


@pytest.mark.parametrize("args,words", BAD_ARGS)
def test_bad_arguments_give_one_line_and_nonzero_exit(args, words, tmp_path, cli_bad):
    import torch

    if args[-1] == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = cli_bad[tuple(args)]
    assert r["crash"] is None, r["crash"]
    assert r["rc"] not in (0, None), r
    lines = [ln for ln in r["stderr"].splitlines() if ln.strip()]
    assert len(lines) == 1, r["stderr"]
    assert "Traceback" not in r["stderr"]
    if words:
        assert words in lines[0]


def test_export_makes_a_slim_loadable_copy(trained, tmp_path):
    out, _ = trained
    dqngan("export", "--checkpoint", out, "--out", tmp_path / "slim")
    assert (tmp_path / "slim" / "train_state.safetensors").stat().st_size < (
        out / "train_state.safetensors").stat().st_size
    dqngan("sample", "--checkpoint", tmp_path / "slim", "--n", 4, "--out", tmp_path / "s.npy", "--refine")
    p = dqngan("export", "--checkpoint", out, "--out", out, check=False)
    assert p.returncode != 0 and "must differ" in p.stderr
    # Training knobs can be changed for whoever continues the run, even the number of parallel episodes; the
    # networks are copied unchanged, and keys that would change a tensor shape are refused in one line.
    dqngan("export", "--checkpoint", out, "--out", tmp_path / "cpu", "--set", "n_envs=3", "q_batch=5")
    cfg = json.loads((tmp_path / "cpu" / "config.json").read_text())
    assert (cfg["n_envs"], cfg["q_batch"]) == (3, 5)
    w = [(d / "weights.safetensors").read_bytes() for d in (tmp_path / "slim", tmp_path / "cpu")]
    assert w[0] == w[1]
    dqngan("train", "--resume", tmp_path / "cpu", "--out", tmp_path / "cont", "--steps", 3, "--no-progress")
    p = dqngan("export", "--checkpoint", out, "--out", tmp_path / "bad", "--set", "q_hidden=7", check=False)
    assert p.returncode != 0 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_goal_agent_samples_with_a_goal(tmp_path):
    """The refusal above is only for no-goal refinement: the same agent steers with --goal."""
    goals = ROOT / "checkpoints" / "mnist-goals"
    if not (goals / "manifest.json").is_file():
        pytest.skip("the shipped goal checkpoint is missing")
    dqngan("sample", "--checkpoint", goals, "--n", 4, "--goal", 3, "--out", tmp_path / "g.npy", "--device", "cpu")
    assert np.load(tmp_path / "g.npy").shape == (4, 28, 28)
