#!/bin/bash
# GPU session 3: the best goal setting of session 2 (lam_prior 0.2: 82.8 % success, FID 1.05x G_ema) with a
# checkpoint-sized Q-network, two neighbours of it, and 400 s more for the unconditional grad-view agent (un2).
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 OMP_NUM_THREADS=3
OUT=${OUT:-/tmp/out}; S=${SECS:-400}; mkdir -p "$OUT" runs exp
GOAL="beta_goal=3 lam_prior=0.2 horizon=16 q_hidden=512 gamma=0.95 n_envs=1024 q_batch=1024 eps_decay=8000
      learning_starts=8000 buffer_size=500000 fid_every=0 q_state=z"
run() { python3 -m dqngan train --device cuda --resume "$2" $3 --preset agent --out "runs/$1" --seconds "$S" \
        --save-every 900 --no-progress --json ${@:4} > "runs/$1.log" 2>&1
        python3 -m dqngan export --checkpoint "runs/$1" --out "exp/$1" >> "runs/$1.log" 2>&1
        python3 -m dqngan evaluate --checkpoint "exp/$1" --n 2000 --seeds 1 --device cuda --no-progress --json \
          --out "exp/$1/evaluation.md" > "exp/$1/eval.log" 2>&1; }
run gA gpu_in/P --new-agent --set $GOAL &
run gB gpu_in/P --new-agent --set $GOAL lam_prior=0.3 &
run gC gpu_in/P --new-agent --set $GOAL horizon=24 &
run uA gpu_in/s2/exp/un2 "" &
wait
for v in gA gB gC uA; do
  echo "== $v $(grep -o '"steps": [0-9]*' runs/$v.log | head -1)"
  python3 - "exp/$v/eval.log" <<'PY'
import json, sys
try:
    r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception as e:
    print("no eval:", e, open(sys.argv[1]).read()[-400:]); sys.exit()
for t in (r["rows"], r.get("goal_rows") or {}):
    for k, v in t.items():
        if k.startswith(("G_ema", "random", "greedy", "DQN", "goal")):
            print(f"  {k:24s}", " ".join(f"{m}={v[m]['mean']:.3f}" for m in ("fid", "entropy", "success", "evals", "dprime_acc") if m in v))
PY
  tar cf - "exp/$v" "runs/$v.log" | gzip -1 | split -b 15M -d - "$OUT/$v.tgz."
done
ls -la "$OUT"
