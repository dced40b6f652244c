#!/bin/bash
# Runs each test suite (a make target named on the command line), shows its
# output, and totals the counts each suite prints as its closing line:
#   "N passed, N failed" (optionally ", N skipped")   or cmocka's
#   "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)..."
# A suite that exits non-zero counts as failed even if its line said otherwise.
set -u
make_cmd=${MAKE:-make}
total_pass=0 total_fail=0 total_skip=0
failed_suites=()
log_dir=${TEST_LOG_DIR:-${O:-build}/test-logs}
mkdir -p "$log_dir"

for suite in "$@"; do
    echo "=== suite: $suite"
    log="$log_dir/$suite.log"
    start=$(date +%s)
    $make_cmd --no-print-directory -s "$suite" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    secs=$(( $(date +%s) - start ))
    p=0 f=0 s=0
    while read -r line; do
        if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
            p=$((p + BASH_REMATCH[1])); f=$((f + BASH_REMATCH[2])); s=$((s + ${BASH_REMATCH[4]:-0}))
        elif [[ $line =~ ^\[\ \ PASSED\ \ \]\ ([0-9]+)\ test ]]; then
            p=$((p + BASH_REMATCH[1]))
        elif [[ $line =~ ^\[\ \ FAILED\ \ \]\ ([0-9]+)\ test ]]; then
            f=$((f + BASH_REMATCH[1]))
        elif [[ $line =~ ^\[\ \ SKIPPED\ \]\ ([0-9]+)\ test ]]; then
            s=$((s + BASH_REMATCH[1]))
        fi
    done < <(grep -E '([0-9]+ passed, [0-9]+ failed)|^\[  (PASSED|FAILED|SKIPPED) ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    [ "$f" -ne 0 ] && failed_suites+=("$suite")
    echo "=== suite $suite: $p passed, $f failed, $s skipped (${secs}s, rc $rc)"
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
done

echo
if [ ${#failed_suites[@]} -gt 0 ]; then
    echo "Failed suites: ${failed_suites[*]}"
fi
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
