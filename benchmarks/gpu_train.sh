#!/usr/bin/env bash
# The main job on the GPU, for gpu_check.sh's GPU_CHECK_EXTRA stage: `sinabs-fast train
# --device cuda` with its defaults but 2 epochs per run, once on sinabs_fast's layers and once on
# sinabs' own (`--layers sinabs`, the same loop), then each run's seconds per epoch.
# Usage: GPU_CHECK_EXTRA=benchmarks/gpu_train.sh bash benchmarks/gpu_check.sh
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/benchmarks/out}"
PY="${PYTHON:-python3}"
EPOCHS="${GPU_TRAIN_EPOCHS:-2}"
for layers in sinabs_fast sinabs; do
  echo "--- sinabs-fast train --device cuda --epochs $EPOCHS --layers $layers"
  timeout 150 "$PY" -m sinabs_fast.cli train --device cuda --epochs "$EPOCHS" --no-progress \
    --layers "$layers" --out "$OUT/train-$layers" 2>&1 | tail -n 25
done
"$PY" - "$OUT" << 'PY'
import json, os, statistics, sys
out = sys.argv[1]
for layers in ("sinabs_fast", "sinabs"):
    path = os.path.join(out, f"train-{layers}", "report.json")
    if not os.path.exists(path):
        print(f"{layers}: no report"); continue
    r = json.load(open(path))
    for run in ("baseline", "penalised"):
        rows = r.get(run, {}).get("history", [])
        secs = [row["seconds"] for row in rows if "seconds" in row]
        print(f"{layers:12s} {run:10s} seconds per epoch {['%.2f' % s for s in secs]}"
              f" test accuracy {r.get(run, {}).get('test_accuracy')}")
PY
