#!/usr/bin/env bash
# Runs every ctest suite in the normal build and in the sanitizer build,
# and ends with one line: "N passed, N failed".
set -u
passed=0 failed=0
for dir in "$@"; do
  echo "== ctest in $dir"
  log=$(mktemp)
  ctest --test-dir "$dir" --output-on-failure --timeout 900 2>&1 | tee "$log"
  # ctest's summary: "100% tests passed, 0 tests failed out of 12"
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "run_all: no ctest summary in $dir"
    failed=$((failed + 1))
  else
    f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    t=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
    passed=$((passed + t - f))
    failed=$((failed + f))
  fi
  rm -f "$log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
