#!/usr/bin/env bash
# make soak: the model-based randomized test over fresh seeds until the time
# budget is spent (default 20 minutes), then stops by itself. Each round runs
# a few seeds; a failure stops the soak and prints the seed to replay with
#   BUNKER_MODEL_SEEDS=<seed> BUNKER_MODEL_STEPS=<steps> build/release/tests/integration/model/model_test
set -euo pipefail
build_dir="${1:-build/release}"
minutes="${2:-20}"
test_bin="$build_dir/tests/integration/model/model_test"
[[ -x "$test_bin" ]] || { echo "soak: $test_bin is not built" >&2; exit 1; }
deadline=$(( $(date +%s) + minutes * 60 ))
seed=${SOAK_FIRST_SEED:-$(date +%s)}
steps=${BUNKER_MODEL_STEPS:-40}
rounds=0
while (( $(date +%s) < deadline )); do
  seeds="$seed $((seed + 1))"
  echo "soak: seeds $seeds, $steps steps each"
  if ! BUNKER_MODEL_SEEDS="$seeds" BUNKER_MODEL_STEPS="$steps" "$test_bin" >"$build_dir/soak-last.log" 2>&1; then
    tail -60 "$build_dir/soak-last.log"
    echo "soak: FAILED with seeds $seeds (steps $steps); full log in $build_dir/soak-last.log" >&2
    exit 1
  fi
  grep -c '^seed ' "$build_dir/soak-last.log" | xargs -I{} echo "soak: {} steps passed"
  seed=$((seed + 2))
  rounds=$((rounds + 1))
done
echo "soak: $rounds rounds ($((rounds * 2)) seeds) passed in $minutes minutes"
