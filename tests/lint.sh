#!/usr/bin/env bash
# Lint, as `make lint` runs it: bash tests/lint.sh BUILD_DIR
#
# 1. clang-format (the repo's .clang-format) over every tracked *.cc and *.h:
#    reports files that are not formatted; fix with `clang-format -i FILE`.
# 2. clang-tidy (the repo's .clang-tidy) over the C++ files changed against
#    origin/main, or against the previous commit when there is no origin/main,
#    including uncommitted changes, using BUILD_DIR/compile_commands.json.
#    A changed header is checked through a changed or sibling .cc that is
#    compiled, else on its own.
# Exits non-zero if either finds anything.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: bash tests/lint.sh BUILD_DIR" >&2
  exit 2
fi
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$1"
[[ "$build_dir" = /* ]] || build_dir="$top/$build_dir"
cd "$top"

for tool in clang-format clang-tidy; do
  command -v "$tool" >/dev/null || { echo "lint: $tool not found (make deps)" >&2; exit 2; }
done

status=0

# --- clang-format ---------------------------------------------------------
mapfile -t all_files < <(git ls-files -- '*.cc' '*.h')
if ((${#all_files[@]})); then
  if ! clang-format --dry-run --Werror "${all_files[@]}"; then
    echo "lint: clang-format: the files above are not formatted (clang-format -i FILE)" >&2
    status=1
  else
    echo "lint: clang-format: ${#all_files[@]} files formatted"
  fi
fi

# --- clang-tidy -----------------------------------------------------------
if git rev-parse -q --verify origin/main >/dev/null; then
  base=origin/main
elif git rev-parse -q --verify HEAD~1 >/dev/null; then
  base=HEAD~1
else
  base=
fi
if [[ -z "$base" ]]; then
  echo "lint: clang-tidy: no origin/main and no previous commit: nothing to compare, skipped"
  exit "$status"
fi

db="$build_dir/compile_commands.json"
if [[ ! -f "$db" ]]; then
  echo "lint: $db missing (cmake --preset …, or make configure)" >&2
  exit 2
fi

mapfile -t changed < <(git diff --name-only --diff-filter=ACMR "$base" -- '*.cc' '*.h')
# Sources the build compiles, relative to the top of the tree.
mapfile -t compiled < <(python3 - "$db" "$top" <<'PY'
import json, os, sys
db, top = sys.argv[1], sys.argv[2]
for entry in json.load(open(db)):
    path = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
    if path.startswith(top + os.sep):
        print(os.path.relpath(path, top))
PY
)
declare -A is_compiled=()
for f in "${compiled[@]}"; do
  is_compiled["$f"]=1
done

declare -A sources=()
headers=()
for f in "${changed[@]}"; do
  [[ -f "$f" ]] || continue
  case "$f" in
    *.cc)
      if [[ -n "${is_compiled[$f]:-}" ]]; then
        sources["$f"]=1
      else
        echo "lint: clang-tidy: $f is not in any built target, skipped"
      fi
      ;;
    *.h)
      sibling="${f%.h}.cc"
      if [[ -n "${is_compiled[$sibling]:-}" ]]; then
        sources["$sibling"]=1
      else
        headers+=("$f")
      fi
      ;;
  esac
done

if ((${#sources[@]} == 0 && ${#headers[@]} == 0)); then
  echo "lint: clang-tidy: no changed C++ files against $base"
  exit "$status"
fi

echo "lint: clang-tidy: ${#sources[@]} sources and ${#headers[@]} headers changed against $base"
jobs="$(nproc)"
# Boost 1.74 enables its coroutine API (awaitable, co_spawn) only for GCC;
# clang 14 supports C++20 coroutines too, so tell Asio, or clang-tidy cannot
# compile the Beast/Asio coroutine code of bunkerd, kube and the load bench.
tidy_args=(--extra-arg=-DBOOST_ASIO_HAS_CO_AWAIT)
tidy_failed=0
if ((${#sources[@]})); then
  printf '%s\n' "${!sources[@]}" | sort |
    xargs -P "$jobs" -n 1 clang-tidy -p "$build_dir" --quiet "${tidy_args[@]}" || tidy_failed=1
fi
if ((${#headers[@]})); then
  # Headers without a compiled .cc get flags interpolated from the database.
  printf '%s\n' "${headers[@]}" |
    xargs -P "$jobs" -n 1 clang-tidy -p "$build_dir" --quiet "${tidy_args[@]}" \
      --extra-arg=-Wno-pragma-once-outside-header || tidy_failed=1
fi
if ((tidy_failed)); then
  echo "lint: clang-tidy found problems (see above)" >&2
  status=1
else
  echo "lint: clang-tidy: clean"
fi
exit "$status"
