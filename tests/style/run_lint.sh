#!/usr/bin/env bash
# run_lint.sh <ems-binary> — the C code is formatted, clang-tidy clean and cppcheck clean.
#
#   clang-format  every C file under src/, tests/ and bench/ is as .clang-format formats it
#   clang-tidy    src/ with the checks in .clang-tidy (bug-prone patterns, CERT C), against the
#                 compile commands of the build that made <ems-binary>
#   cppcheck      src/: warnings, performance and portability
#
# Each prints what it found; the suite prints "N passed, N failed" and fails if any failed.
set -u
src="${EMS_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
build=$(cd "$(dirname "${1:?usage: run_lint.sh <ems-binary>}")" && pwd)
cd "$src" || exit 2
passed=0 failed=0
result() { # result <ok 0|1> <name>
    if [ "$1" -eq 0 ]; then
        echo "PASS $2"
        passed=$((passed + 1))
    else
        echo "FAIL $2"
        failed=$((failed + 1))
    fi
}

for tool in clang-format clang-tidy cppcheck; do
    command -v "$tool" >/dev/null || { echo "run_lint: $tool is missing (scripts/deps.sh installs it)"; exit 1; }
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT

mapfile -t c_files < <(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c' 'bench/*.h' 2>/dev/null)
if [ ${#c_files[@]} -eq 0 ]; then # not a git checkout: the same files by name
    mapfile -t c_files < <(find src tests bench -name '*.[ch]' | sort)
fi
clang-format --dry-run --Werror "${c_files[@]}" >"$out" 2>&1
rc=$?
grep -E '^[^ ].*(error|warning):' "$out" | head -20
result "$rc" "clang-format: ${#c_files[@]} files as .clang-format formats them (fix: clang-format -i FILE)"

if [ -f "$build/compile_commands.json" ]; then
    mapfile -t tidy_files < <(printf '%s\n' "${c_files[@]}" | grep -E '^src/.*\.c$')
    printf '%s\n' "${tidy_files[@]}" | xargs -P "$(nproc)" -n 8 clang-tidy -p "$build" --quiet >"$out" 2>/dev/null
    rc=$?
    grep -E '(error|warning):' "$out" | sed "s|^$src/||" | sort -u | head -40
    result "$rc" "clang-tidy: ${#tidy_files[@]} files of src/ with .clang-tidy's checks"
else
    echo "run_lint: no compile_commands.json in $build (CMAKE_EXPORT_COMPILE_COMMANDS is on in CMakeLists.txt)"
    result 1 "clang-tidy: compile commands"
fi

cppcheck --quiet --enable=warning,performance,portability --std=c11 -D_GNU_SOURCE --inline-suppr \
    -I src/core -I src/roles -I src/sim --error-exitcode=1 -j "$(nproc)" src >"$out" 2>&1
rc=$?
head -40 "$out"
result "$rc" "cppcheck: src/"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
