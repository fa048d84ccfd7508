"""The project as a package: `pip install .` (here into a --target folder, from a copy of the source, with the
dependencies this environment already has) gives a `dqngan` command that works outside the repository, and the
embedded digits and classifiers come with it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from helpers import run_cli_batch

ROOT = Path(__file__).resolve().parent.parent


def test_pip_install_gives_a_working_dqngan_command(tmp_path, ckpt):
    src = tmp_path / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    shutil.copytree(ROOT / "dqngan", src / "dqngan", ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(site), str(src)], check=True, capture_output=True, timeout=300)
    work = tmp_path / "elsewhere"  # not the repository: only the installed copy can be imported
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}

    where = subprocess.run([sys.executable, "-c", "import dqngan; print(dqngan.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(site)), where
    # the `dqngan` command itself; training reads the embedded digits from the installed package data. It runs beside
    # the other commands' process (2 cores: each start-up imports torch), which writes other files.
    p = subprocess.Popen([str(site / "bin" / "dqngan"), "train", "--out", "run", "--steps", "2", "--preset", "tiny",
                          "--device", "cpu", "--no-progress"], cwd=work, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        # the installed copy's other commands, in one process (helpers.run_cli_batch; same cwd and PYTHONPATH as
        # `where`)
        helped, sampled, refused = run_cli_batch([
            ["--help"],
            ["sample", "--checkpoint", str(ckpt), "--n", "4", "--out", "s.npy", "--device", "cpu"],
            ["sample", "--checkpoint", "no-such-dir", "--out", "x.npy"],
        ], tmp_path, env, work)
        _, err = p.communicate(timeout=300)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert (site / "dqngan" / "assets" / "mnist5k.npz").is_file() and (work / "run" / "manifest.json").is_file()
    for r in (helped, sampled, refused):
        assert r["crash"] is None, r["crash"]
    assert helped["rc"] == 0 and "train" in helped["stdout"] and "sample" in helped["stdout"], helped["stderr"]
    assert sampled["rc"] == 0, sampled["stderr"]
    assert np.load(work / "s.npy").shape == (4, 28, 28)
    assert refused["rc"] != 0 and "Traceback" not in refused["stderr"]
    assert len(refused["stderr"].strip().splitlines()) == 1
