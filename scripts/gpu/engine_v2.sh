#!/bin/bash
# Engine v2 on a lent GPU, one call of about 5 minutes (issue "Engine v2", item 6): the CUDA tests (graph capture,
# sync-free replays, replay == eager), the engine bench (GAN-only vs joint, graphed vs eager, read-backs), a profile
# of kernels and host syncs per step (eager and graphed), and a width/batch/envs sweep for the `gpu` preset.
# Usage (device tool): bash scripts/gpu/engine_v2.sh   — writes everything under $OUT; commit $OUT/log.txt as
# bench/out/gpu/engine_v2.log.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
nvidia-smi -L; python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
pip install -q -r requirements.txt 2>&1 | tail -1
echo "== tests/test_cuda.py"; timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15
echo "== bench (cpu preset)"; timeout 240 python3 -m dqngan bench --device cuda --preset cpu --seconds 5 --rounds 2
echo "== profile"; timeout 200 python3 - <<'PY'
import time, torch
from torch.profiler import ProfilerActivity, profile
from dqngan.config import make_config
from dqngan.trainer import Trainer
for graphs in (False, True):
    t = Trainer(make_config("cpu", {"grid_every": 10**6, "fid_every": 0, "cuda_graphs": graphs}), "cuda")
    t.run(steps=400)  # past learning_starts (and captured)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        s0 = t.step_count; t.run(steps=200); torch.cuda.synchronize(); n = t.step_count - s0
    ev = {e.key: e.count for e in prof.key_averages()}
    gpu_us = sum(e.device_time_total for e in prof.key_averages() if e.device_type.name == "CUDA")
    print(f"graphs={graphs}: {n} steps; per step: cudaLaunchKernel {ev.get('cudaLaunchKernel', 0) / n:.1f}, "
          f"cudaGraphLaunch {ev.get('cudaGraphLaunch', 0) / n:.2f}, cudaStreamSynchronize "
          f"{ev.get('cudaStreamSynchronize', 0) / n:.2f}, cudaMemcpyAsync {ev.get('cudaMemcpyAsync', 0) / n:.2f}; "
          f"GPU time {gpu_us / n / 1000:.3f} ms/step; failed={getattr(t.graphs, 'failed', None)}")
PY
echo "== gpu preset sweep (joint steps/s and images/s, graphed)"; timeout 240 python3 - <<'PY'
import time, torch
from dqngan.config import make_config
from dqngan.trainer import Trainer
for width, batch, envs in ((0.25, 64, 64), (0.5, 128, 256), (1.0, 128, 256), (1.0, 256, 512)):
    t = Trainer(make_config("gpu", {"width": width, "batch_size": batch, "n_envs": envs, "q_batch": envs,
                                    "agent_every": 8, "grid_every": 10**6, "fid_every": 0}), "cuda")
    t.run(steps=300); torch.cuda.synchronize()
    t0, s0 = time.perf_counter(), t.step_count
    t.run(seconds=8); torch.cuda.synchronize()
    rate = (t.step_count - s0) / (time.perf_counter() - t0)
    print(f"width {width} batch {batch} envs {envs}: {rate:.1f} joint steps/s, {rate * batch:.0f} images/s, "
          f"graphs failed={getattr(t.graphs, 'failed', None)}")
PY
ls -la "$OUT"
