#!/bin/bash
# Time-bounded libFuzzer runs (clang, ASan+UBSan) of the parsers that see
# untrusted input: the config parser, Medplum error bodies, and the whole
# login state machine fed arbitrary server answers.  The project's own
# sources are compiled into each fuzzer so they are instrumented.
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-10}
out=${O:-build}/fuzz
mkdir -p "$out"
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -Icore $(pkg-config --cflags libcjson libcurl) \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -DMP_VERSION=\"fuzz\""
LIBS="$(pkg-config --libs libcjson libcurl)"
CORE="core/mp_config.c core/mp_validate.c core/mp_secret.c core/mp_log.c core/mp_json.c \
  core/mp_login.c core/mp_outcome.c core/mp_status.c core/mp_crypto.c core/mp_http.c"
pass=0 fail=0
for target in config json login; do
    bin=$out/fuzz_$target
    # shellcheck disable=SC2086
    if ! clang $CFLAGS -o "$bin" tests/fuzz/fuzz_$target.c $CORE $LIBS; then
        echo "FAIL fuzz_$target: does not build"; fail=$((fail + 1)); continue
    fi
    corpus=$out/corpus_$target
    mkdir -p "$corpus"
    cp -n tests/fuzz/corpus/$target/* "$corpus"/ 2>/dev/null
    if "$bin" -max_total_time="$secs" -rss_limit_mb=1024 -max_len=8192 -timeout=5 \
        -artifact_prefix="$out/crash_${target}_" "$corpus" >"$out/fuzz_$target.log" 2>&1; then
        echo "ok   fuzz_$target: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/fuzz_$target.log" ||
            tail -1 "$out/fuzz_$target.log")"
        pass=$((pass + 1))
    else
        echo "FAIL fuzz_$target:"; tail -40 "$out/fuzz_$target.log"; fail=$((fail + 1))
    fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
