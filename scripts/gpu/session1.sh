#!/bin/bash
# GPU session 1 (run on the lent H100 through the device tool): the CUDA tests, the engine bench on CUDA, three GAN
# variants trained side by side on the one GPU, and the distillation probe (bench/agent_distill.py) at GPU scale.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
OUT=${OUT:-/tmp/out}; S=${SECS:-300}; mkdir -p "$OUT" runs
nvidia-smi -L; python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -3
python3 -m dqngan bench --device cuda --preset cpu --seconds 5 --rounds 3 2>&1 | tail -12
run() { python3 -m dqngan train --device cuda --preset cpu --out "runs/$1" --seconds "$S" --save-every 60 --no-progress \
        --json --set ema_decay=0.999 fid_every=5000 "${@:2}" > "runs/$1.log" 2>&1; }
run gA & run gB lr_g=4e-4 lr_d=4e-4 & run gC width=0.5 &
python3 bench/agent_distill.py --device cuda --states 100000 1000000 --hidden 1024 --epochs 10 \
    --json "$OUT/distill.json" 2>&1 | tail -5
wait
for v in gA gB gC; do
  echo "== $v"; tail -1 "runs/$v.log"
  python3 - "$v" <<'PY'
import json, sys
h = json.load(open(f"runs/{sys.argv[1]}/train_state.json"))["history"]
f = h["fid"]; print([(s, round(v, 2)) for s, v in zip(f["step"], f["value"])])
PY
done
tar czf "$OUT/runs1.tgz" runs/gA runs/gB runs/gC runs/*.log
ls -la "$OUT"
