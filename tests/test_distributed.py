"""Scale-out with torchrun on the 2-core CPU: real gloo processes, real all-reduces, real checkpoints."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
       "DQNGAN_DIST_TIMEOUT": "30"}


def torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", *args],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def train_cli(out: Path, *extra: str) -> list[str]:
    return ["-m", "dqngan", "train", "--device", "cpu", "--preset", "tiny", "--out", str(out), "--json",
            "--no-progress", "--set", "grid_every=1000", *extra]


def test_ranks_keep_identical_models_and_average_gradients(tmp_path):
    out = tmp_path / "result.json"
    p = torchrun(str(ROOT / "tests" / "dist_worker.py"), str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["world"] == 2 and r["steps"] == 12
    assert r["models_identical"]  # parameters and BatchNorm statistics, after 12 joint steps with the agent
    assert r["models_identical_step_modes"]  # G skipping turns, two D updates per step, Step D / G / agent
    assert r["episodes_differ"]  # each rank has its own random stream
    assert r["grad_max_abs_diff"] <= 1e-6 * max(1.0, r["grad_norm"])
    assert r["resume_exact_all_ranks"]  # bit-exact resume with the same number of processes, rank 1's state too


def test_torchrun_cli_writes_one_checkpoint_that_loads_and_resumes_in_one_process(tmp_path, mnist):
    """The CLI under torchrun: rank 0 alone prints and writes; the checkpoint holds rank 1's state too."""
    from dqngan.checkpoint import load_checkpoint

    a = tmp_path / "a"
    p = torchrun(*train_cli(a, "--steps", "6"))
    assert p.returncode == 0, p.stderr[-2000:]
    lines = [ln for ln in p.stdout.strip().splitlines() if ln.strip()]
    assert len(lines) == 1  # only rank 0 prints (and writes)
    summary = json.loads(lines[0])
    assert summary["world_size"] == 2 and summary["step"] == 6
    assert (a / "rank1.safetensors").is_file() and "rank1.safetensors" in (a / "manifest.json").read_text()
    t = load_checkpoint(a, device="cpu", data=mnist)  # one process: samples, and resumes (inexactly: it says so)
    assert t.step_count == 6 and t.generate(torch.randn(4, t.cfg.z_dim)).shape == (4, 28, 28)
    assert any("written by 2 process(es), resumed with 1" in n for n in t.notes), t.notes
    assert t.run(steps=2) and t.step_count == 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_crashed_rank_stops_the_others_with_one_line(tmp_path):
    """Without torchrun's supervision (two processes started by hand): rank 1 is killed mid-run; rank 0 must not
    hang, and says what happened in one line."""
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        env = {**ENV, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": port}
        cli = train_cli(tmp_path / "ck", "--steps", "100000", "--save-every", "0.5")
        procs.append(subprocess.Popen([sys.executable, *cli], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 90
    while not (tmp_path / "ck" / "manifest.json").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)  # the first checkpoint: both ranks joined, trained and saved together
    assert procs[0].poll() is None and procs[1].poll() is None
    procs[1].send_signal(signal.SIGKILL)
    try:
        _, err = procs[0].communicate(timeout=90)
    finally:
        for p in procs:
            p.kill()
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert procs[0].returncode not in (0, None)
    assert "another process of this distributed run stopped" in lines[-1] and "Traceback" not in err, err[-1500:]


def test_bad_distributed_setups_are_one_line_errors(monkeypatch):
    from dqngan.distributed import DistError, from_env

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(DistError, match="needs RANK"):
        from_env("cpu")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(DistError, match="needs MASTER_ADDR"):
        from_env("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(DistError, match="not a whole number"):
        from_env("cpu")
