#!/bin/bash
# GPU session 2: agent phases scaled up (1024 parallel episodes, 1024-state batches) on the shipped GAN, side by side,
# then a one-seed evaluation of each. Goal runs start from runs/P (the GAN before the shipped agent phase, exported
# without replay into gpu_in/P); unconditional runs from checkpoints/mnist.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 OMP_NUM_THREADS=2
OUT=${OUT:-/tmp/out}; S=${SECS:-330}; mkdir -p "$OUT" runs exp
GOAL="beta_goal=3 lam_prior=0.05 horizon=16 q_hidden=1024 gamma=0.95 n_envs=1024 q_batch=1024 eps_decay=8000
      learning_starts=8000 buffer_size=500000 fid_every=0 q_state=z"
UNC="q_state=grad gamma=0 q_targets=all n_envs=512 q_batch=256 q_hidden=512 learning_starts=4000 eps_decay=4000
     buffer_size=300000 fid_every=0"
run() { python3 -m dqngan train --device cuda --resume "$2" --new-agent --preset agent --out "runs/$1" --seconds "$S" \
        --save-every 600 --no-progress --json --set "${@:3}" > "runs/$1.log" 2>&1
        python3 -m dqngan export --checkpoint "runs/$1" --out "exp/$1" >> "runs/$1.log" 2>&1
        python3 -m dqngan evaluate --checkpoint "exp/$1" --n 2000 --seeds 1 --device cuda --no-progress --json \
          --out "exp/$1/evaluation.md" > "exp/$1/eval.log" 2>&1; }
run gl1 gpu_in/P $GOAL &
run gl2 gpu_in/P $GOAL lam_prior=0.2 &
run gl3 gpu_in/P $GOAL q_targets=all q_batch=256 &
run gl4 gpu_in/P $GOAL beta_goal=5 &
run un1 checkpoints/mnist $UNC delta=0.25 horizon=16 &
run un2 checkpoints/mnist $UNC &
wait
for v in gl1 gl2 gl3 gl4 un1 un2; do
  echo "== $v $(grep -o '"steps": [0-9]*' runs/$v.log | head -1)"
  python3 - "exp/$v/eval.log" <<'PY'
import json, sys
try:
    r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception as e:
    print("no eval:", e, open(sys.argv[1]).read()[-400:]); sys.exit()
for t in (r["rows"], r.get("goal_rows") or {}):
    for k, v in t.items():
        print(f"  {k:24s}", " ".join(f"{m}={v[m]['mean']:.3f}" for m in ("fid", "success", "evals", "dprime_acc") if m in v))
PY
  tar czf "$OUT/$v.tgz" "exp/$v" "runs/$v.log"
done
ls -la "$OUT"
