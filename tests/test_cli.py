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


def start(*args):
    """A real `python -m dqngan ...` process (the module entry point, its exit code, everything it prints)."""
    return subprocess.Popen([sys.executable, "-m", "dqngan", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)


def finished(p):
    """(returncode, stdout, stderr) of a process from start()."""
    try:
        out, err = p.communicate(timeout=300)
    finally:
        p.kill()
    return p.returncode, out, err


def dqngan(*args):
    rc, out, err = finished(start(*args))
    if rc != 0:
        raise AssertionError(f"exit {rc}: {err[-2000:]}")
    return out, err


def succeeded(*results):
    for r in results:
        assert r["rc"] == 0, f"exit {r['rc']}: {r['stderr'][-2000:]}"


# One bad command line per way a real `python -m dqngan` process can fail (the batched cases below run `main(argv)`
# inside one driver process, which cannot see what only a process of its own shows: start-up and import warnings,
# anything printed at exit, the exit status `sys.exit(main())` really gives): argparse's own exit, a CLIError /
# ConfigError returned as 2, a file error returned as 1.
REAL_ERRORS = {
    "argparse": (["frobnicate"], 2, "invalid choice"),
    "config": (["train", "--out", "{tmp}/x", "--steps", "1", "--set", "lr_g=-1"], 2, "lr_g must be >= 0"),
    "file": (["sample", "--checkpoint", "{tmp}/no-ckpt", "--out", "{tmp}/a.npy"], 1, "no checkpoint at"),
}


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """The module's real processes that need nothing else, started side by side (the error paths' start-ups overlap
    the training on a second core): {"train": (out dir, rc, stdout, stderr)} and {error path: (rc, stdout, stderr)}."""
    tmp = tmp_path_factory.mktemp("cli")
    out = tmp / "run"
    train = start("train", "--out", out, "--steps", 20, "--preset", "tiny", "--json", "--set", "fid_n=200")
    errors = {k: start(*(a.format(tmp=tmp) for a in argv)) for k, (argv, _, _) in REAL_ERRORS.items()}
    results = {k: finished(p) for k, p in errors.items()}
    results["train"] = (out, *finished(train))
    return results


@pytest.fixture(scope="module")
def trained(real_runs):
    out, rc, stdout, stderr = real_runs["train"]
    assert rc == 0, f"exit {rc}: {stderr[-2000:]}"
    return out, (stdout, stderr)


def test_train_json_summary_and_checkpoint(trained):
    out, (stdout, stderr) = trained
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["steps"] == 20 and summary["checkpoint"] == str(out) and summary["steps_per_s"] > 0
    assert summary["seconds"] > 0 and summary["fid"] > 0
    assert (out / "weights.safetensors").is_file() and not (out / "weights.safetensors.tmp").exists()
    assert "train" in stderr  # the tqdm bar goes to stderr


@pytest.mark.parametrize("path", REAL_ERRORS)
def test_a_real_process_fails_with_one_line_and_its_exit_code(path, real_runs):
    rc, stdout, stderr = real_runs[path]
    _, code, words = REAL_ERRORS[path]
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert rc == code, (rc, stderr)
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert words in lines[0] and not stdout.strip(), (stdout, stderr)


# The module's other command lines run in ONE driver process (the `batch` fixture, in this order, so a command may use
# what an earlier one wrote), each a group {name: argvs(folder, trained checkpoint)} with a folder of its own.
def sample_argvs(tmp, ck):
    sample = ["sample", "--checkpoint", ck]
    return [[*sample, "--n", 10, "--out", tmp / "raw.npy", "--seed", 3],
            [*sample, "--n", 10, "--out", tmp / "ref.npy", "--seed", 3, "--refine"],
            [*sample, "--n", 10, "--out", tmp / "raw2.npy", "--seed", 3],
            [*sample, "--n", 16, "--out", tmp / "grid.png", "--refine"]]


RESUME_COMMON = ["--preset", "tiny", "--no-progress", "--set", "fid_every=0"]


def resume_argvs(tmp, ck):
    """The two trainings that the resume test compares; the resume itself runs later, in a process of its own."""
    return [["train", "--out", tmp / "full", "--steps", 12, *RESUME_COMMON],
            ["train", "--out", tmp / "half", "--steps", 6, *RESUME_COMMON]]


def export_argvs(tmp, ck):
    export = ["export", "--checkpoint", ck, "--out"]
    return [[*export, tmp / "slim"],
            ["sample", "--checkpoint", tmp / "slim", "--n", 4, "--out", tmp / "s.npy", "--refine"],
            [*export, ck],
            # Training knobs can be changed for whoever continues the run, even the number of parallel episodes; the
            # networks are copied unchanged, and keys that would change a tensor shape are refused in one line.
            [*export, tmp / "cpu", "--set", "n_envs=3", "q_batch=5"],
            ["train", "--resume", tmp / "cpu", "--out", tmp / "cont", "--steps", 3, "--no-progress"],
            [*export, tmp / "bad", "--set", "q_hidden=7"]]


def one_liner_argvs(tmp, ck):
    """HELP, GOAL_SAMPLE and every BAD_ARGS command line (below), {tmp}, {ck} and {goals} filled in."""
    cases = [*HELP, GOAL_SAMPLE, *(args for args, _ in BAD_ARGS)]
    return [[a.format(tmp=tmp, ck=ck, goals=GOALS) for a in args] for args in cases]


GROUPS = {"sample": sample_argvs, "resume": resume_argvs, "export": export_argvs, "one_liners": one_liner_argvs}


@pytest.fixture(scope="module")
def batch(trained, tmp_path_factory):
    """{group: (its folder, [{rc, stderr, stdout, crash} per argv])}, every group's command lines run by the real CLI
    in one subprocess (helpers.run_cli_batch: one start-up of the interpreter, torch and its optimizers, 2-4 s here,
    instead of one per command). The exit codes are the tests' to check."""
    root = tmp_path_factory.mktemp("batch")
    argvs = {}
    for name, make in GROUPS.items():
        (root / name).mkdir()
        argvs[name] = [[str(a) for a in argv] for argv in make(root / name, trained[0])]
    results = iter(run_cli_batch([a for group in argvs.values() for a in group], root, ENV, ROOT))
    return {name: (root / name, [next(results) for _ in group]) for name, group in argvs.items()}


def no_crash(argvs, results):
    """None of them may crash (an uncaught exception)."""
    for argv, r in zip(argvs, results):
        assert r["crash"] is None, (argv, r["crash"])
    return results


def group(batch, name):
    tmp, results = batch[name]
    return tmp, no_crash(GROUPS[name](tmp, "-"), results)


def test_sample_npy_refined_and_png(batch):
    tmp, results = group(batch, "sample")
    succeeded(*results)
    raw_a, ref_a = np.load(tmp / "raw.npy"), np.load(tmp / "ref.npy")
    assert raw_a.shape == (10, 28, 28) and raw_a.dtype == np.uint8 and ref_a.shape == raw_a.shape
    # same seed, same samples (here even within one process, after other draws: the seed alone decides)
    assert np.array_equal(np.load(tmp / "raw2.npy"), raw_a)
    assert (tmp / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_matches_uninterrupted_run(batch):
    tmp, results = group(batch, "resume")
    succeeded(*results)
    full, half = tmp / "full", tmp / "half"
    # the resume runs in a process of its own (a real `python -m dqngan`), as after a real interruption: only the
    # files carry the run over
    dqngan("train", "--out", half, "--resume", half, "--steps", 6, "--no-progress")
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
def one_liners(batch):
    """(the folder that {tmp} stands for, {argv as written above: its result}), from the `batch` process."""
    tmp, results = batch["one_liners"]
    return tmp, dict(zip(map(tuple, [*HELP, GOAL_SAMPLE, *(args for args, _ in BAD_ARGS)]), results))


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


def test_export_makes_a_slim_loadable_copy(trained, batch):
    out, _ = trained
    tmp, (made, sampled, same_dir, knobs, cont, shape) = group(batch, "export")
    slim, cpu = tmp / "slim", tmp / "cpu"
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
