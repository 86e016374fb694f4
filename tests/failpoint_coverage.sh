#!/usr/bin/env bash
# Failpoint coverage: every failpoint name in the code (Failpoint("…") in
# nodeagent/ and appliance/) and the tests that crash the process at it.
#
#   bash tests/failpoint_coverage.sh [BUILD_DIR]
#
# Runs the crash tests of agent_cli_test and nfs_cli_test (gtest filter
# *Crash*), which print "[ crash ] <point>…" for every crash they cause, and
# maps each point to the tests that crashed there. The randomized model test (tests/integration/
# model) also crashes at the points it lists; they are shown too. Exits 1
# when a point is covered by no crash test and is not a known gap below.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build/release}"
test_bin="$build_dir/tests/integration/agent/agent_cli_test"
[[ -x "$test_bin" ]] || { echo "failpoint_coverage: $test_bin is not built" >&2; exit 2; }

# Points no automated crash test reaches yet, with the reason.
declare -A known_gaps=()

declare -A where=()
while IFS=: read -r file line name; do
  where[$name]+="${where[$name]:+, }$file:$line"
done < <(grep -rnoE 'Failpoint\("[a-z0-9_.]+"\)' nodeagent appliance --include=*.cc |
         sed -E 's/^([^:]+):([0-9]+):Failpoint\("([^"]+)"\)$/\1:\2:\3/')

model_points=$(sed -n '/kBackupCrashPoints\[\] = {/,/};/p;/kPruneCrashPoints\[\] = {/,/};/p' \
                 tests/integration/model/model_test.cc | grep -oE '"[a-z0-9_.]+"' | tr -d '"' | sort -u)

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "failpoint_coverage: running $test_bin --gtest_filter=*Crash* (a few minutes)" >&2
nfs_bin="$build_dir/tests/integration/nfs/nfs_cli_test"
[[ -x "$nfs_bin" ]] || { echo "failpoint_coverage: $nfs_bin is not built" >&2; exit 2; }
{ "$test_bin" --gtest_filter='*Crash*' && "$nfs_bin" --gtest_filter='*Crash*'; } >"$log" 2>&1 || {
  tail -40 "$log"
  echo "failpoint_coverage: the crash tests failed" >&2
  exit 1
}

declare -A crashed_by=() crashes=()
test_name=""
while IFS= read -r line; do
  if [[ $line =~ ^\[\ RUN\ +\]\ (.*)$ ]]; then
    test_name=${BASH_REMATCH[1]}
  elif [[ $line =~ ^\[\ crash\ \]\ (prune\ at\ )?([a-z0-9_.]+) ]]; then
    p=${BASH_REMATCH[2]}
    crashes[$p]=$(( ${crashes[$p]:-0} + 1 ))
    [[ ",${crashed_by[$p]:-}," == *",$test_name,"* ]] || crashed_by[$p]+="${crashed_by[$p]:+,}$test_name"
  fi
done <"$log"

total=0 covered=0 gaps=0 missing=()
printf '%-28s %-8s %-6s %s\n' POINT CRASHES MODEL "CRASH TESTS (or why not)"
for p in $(printf '%s\n' "${!where[@]}" | sort); do
  total=$((total + 1))
  in_model=$(grep -qx "$p" <<<"$model_points" && echo yes || echo no)
  if [[ -n ${crashed_by[$p]:-} ]]; then
    covered=$((covered + 1))
    printf '%-28s %-8s %-6s %s\n' "$p" "${crashes[$p]}" "$in_model" "${crashed_by[$p]//,/, }"
  elif [[ -n ${known_gaps[$p]:-} ]]; then
    gaps=$((gaps + 1))
    printf '%-28s %-8s %-6s %s\n' "$p" 0 "$in_model" "KNOWN GAP: ${known_gaps[$p]}"
  else
    missing+=("$p")
    printf '%-28s %-8s %-6s %s\n' "$p" 0 "$in_model" "NOT COVERED (in ${where[$p]})"
  fi
done
echo
echo "failpoints: $total in the code, $covered crashed by a test, $gaps known gaps, ${#missing[@]} uncovered"
if ((${#missing[@]} > 0)); then
  echo "failpoint_coverage: uncovered: ${missing[*]}" >&2
  exit 1
fi
