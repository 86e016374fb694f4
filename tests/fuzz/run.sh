#!/usr/bin/env bash
# Builds the libFuzzer harnesses in their own clang build (build/fuzz) and runs
# each for a bounded time, one at a time, then prints a table of executions
# and findings per harness. See tests/fuzz/README.md.
#
#   tests/fuzz/run.sh [--strict] [SECONDS_PER_HARNESS] [HARNESS...]
#   tests/fuzz/run.sh --write-seeds      # regenerate tests/fuzz/corpus
#
# --strict: known, reported product bugs (README.md) count as findings too:
# no UBSan suppressions, and the harnesses stop tolerating them.
# Environment: FUZZ_BUILD_DIR (build/fuzz), FUZZ_JOBS (build parallelism, 1).
# Exit status: 0 when no harness produced a finding.
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${FUZZ_BUILD_DIR:-$src/build/fuzz}"
jobs="${FUZZ_JOBS:-1}"
seconds=60
strict=0
write_seeds=0
only=()
for arg in "$@"; do
  case "$arg" in
    --strict) strict=1 ;;
    --write-seeds) write_seeds=1 ;;
    -h | --help)
      sed -n '2,13p' "$0"
      exit 0
      ;;
    *[!0-9]*) only+=("$arg") ;;
    *) seconds="$arg" ;;
  esac
done

for tool in clang clang++ cmake ninja; do
  command -v "$tool" >/dev/null || {
    echo "run.sh: $tool not found (Debian packages: clang libclang-rt-14-dev cmake ninja-build)" >&2
    exit 2
  }
done

echo "== configure $build (clang, libFuzzer, ASan + UBSan)"
CC=clang CXX=clang++ cmake -S "$src" -B "$build" -G Ninja -C "$src/tests/fuzz/fuzz.cmake" \
  >"$build.configure.log" 2>&1 || { cat "$build.configure.log" >&2; exit 1; }
harnesses=()
while read -r name; do
  [[ -n "$name" ]] && harnesses+=("$name")
done <"$build/tests/fuzz/harnesses.txt"
if ((${#only[@]})); then
  for h in "${only[@]}"; do
    [[ " ${harnesses[*]} " == *" $h "* ]] || { echo "unknown harness: $h" >&2; exit 2; }
  done
  harnesses=("${only[@]}")
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("${h}_fuzzer"); done
((write_seeds)) && targets+=(fuzz_seed_writer)
echo "== build ${targets[*]} (-j $jobs)"
nice -n 10 cmake --build "$build" -j "$jobs" --target "${targets[@]}"

if ((write_seeds)); then
  "$build/tests/fuzz/fuzz_seed_writer" "$src/tests/fuzz/corpus"
  echo "== seeds written to tests/fuzz/corpus ($(du -sh "$src/tests/fuzz/corpus" | cut -f1))"
  exit 0
fi

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
if ((strict)); then
  export BUNKER_FUZZ_STRICT=1
else
  export UBSAN_OPTIONS="$UBSAN_OPTIONS:suppressions=$src/tests/fuzz/ubsan.supp"
fi

results=()
status=0
for h in "${harnesses[@]}"; do
  corpus="$build/corpus/$h"
  findings="$build/findings/$h"
  log="$build/logs/$h.log"
  mkdir -p "$corpus" "$findings" "$(dirname "$log")"
  dict=()
  [[ -f "$src/tests/fuzz/dict/$h.dict" ]] && dict=(-dict="$src/tests/fuzz/dict/$h.dict")
  echo "== $h: ${seconds}s"
  set +e
  seeds=("$src/tests/fuzz/corpus/$h")
  for d in "$src/tests/fuzz/regressions/$h" "$src/tests/fuzz/regressions/open/$h"; do
    [[ -d "$d" ]] && seeds+=("$d")
  done
  nice -n 10 "$build/tests/fuzz/${h}_fuzzer" "$corpus" "${seeds[@]}" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=25 \
    -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  if [[ -z "$execs" ]]; then
    execs=$(grep -aoE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
  fi
  rate=$(grep -ao 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  cov=$(grep -aoE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  # Findings of this run: libFuzzer names each artifact it writes in the log.
  found=$(grep -ac 'Test unit written to' "$log" || true)
  known=$(grep -ao '^KNOWN-BUG [a-z0-9-]*' "$log" | cut -d' ' -f2 | sort -u | paste -sd, - || true)
  if ((rc != 0)) && ((found == 0)); then found="rc=$rc"; fi
  if [[ "$found" != 0 ]]; then status=1; fi
  results+=("$h|${execs:-0}|${rate:-0}|${cov:-0}|$found|${known:--}")
  if [[ "$found" != 0 ]]; then
    grep -aE 'ERROR|runtime error|PROPERTY|Test unit written|SUMMARY' "$log" | head -8 | sed 's/^/   /' || true
  fi
done

echo
printf '%-14s %12s %9s %6s %9s  %s\n' harness executions exec/s cov findings "known bugs hit"
printf '%-14s %12s %9s %6s %9s  %s\n' -------------- ------------ --------- ------ --------- --------------
for r in "${results[@]}"; do
  IFS='|' read -r h e s c f k <<<"$r"
  printf '%-14s %12s %9s %6s %9s  %s\n' "$h" "$e" "$s" "$c" "$f" "$k"
done
echo
echo "logs: $build/logs/   findings: $build/findings/<harness>/   strict: $strict"
echo "reproduce: $build/tests/fuzz/<harness>_fuzzer <finding file>"
exit "$status"
