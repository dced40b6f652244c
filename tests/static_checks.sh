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
# The module's ABI: only the pam_sm_* entry points are exported.
exports_only_pam_sm() {
    make -s build/pam_medplum.so >/dev/null || return 1
    local bad
    bad=$(nm -D --defined-only build/pam_medplum.so | awk '{print $3}' | grep -v '^pam_sm_' )
    [ -z "$bad" ] || { echo "unexpected exports: $bad"; return 1; }
    nm -D --defined-only build/pam_medplum.so | grep -q ' pam_sm_authenticate$'
}
run "pam_medplum.so exports only pam_sm_*" exports_only_pam_sm

echo "static checks: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
