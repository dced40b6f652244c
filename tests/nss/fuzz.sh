#!/bin/bash
# Time-bounded libFuzzer run (clang, ASan+UBSan) of the cache reader, seeded
# with caches written by the real writer (mkcache).
#   usage: fuzz.sh OUTDIR MKCACHE   (FUZZ_SECONDS, default 10)
set -u
out=$1
mkcache=$2
secs=${FUZZ_SECONDS:-10}
pass=0 fail=0
mkdir -p "$out/corpus"
if ! command -v clang >/dev/null; then
    echo "clang not installed"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
if ! clang -g -O1 -std=c11 -D_GNU_SOURCE -Icore -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=all -o "$out/fuzz_cache_reader" tests/nss/fuzz_cache_reader.c \
    core/mp_cache_reader.c; then
    echo "FAIL fuzz_cache_reader: does not build"; echo "0 passed, 1 failed"; exit 1
fi
# Seeds: the nss_wrapper fixture and a generated cache.
T=$(mktemp -d "${TMPDIR:-/tmp}/nss-fuzz.XXXXXX")
trap 'rm -rf "$T"' EXIT
printf '%s\n' \
    'user:alice:5001:5001:Alice:/home/alice:/bin/bash:a@example.org:Practitioner/a:m1:1' \
    'user:bob:5002:6000::/home/bob:/bin/sh:b@example.org:Practitioner/b::0' \
    'group:alice:5001:' 'group:medstaff:6000:alice,bob' 'resv:Practitioner/a:5001' \
    | "$mkcache" "$T/c1" - && cp "$T/c1/accounts.db" "$out/corpus/fixture"
"$mkcache" --generate 20 "$T/c2" && cp "$T/c2/accounts.db" "$out/corpus/generated"
if "$out/fuzz_cache_reader" -max_total_time="$secs" -rss_limit_mb=1024 -max_len=16384 \
    -timeout=5 -artifact_prefix="$out/crash_" "$out/corpus" >"$out/fuzz.log" 2>&1; then
    echo "ok   fuzz_cache_reader: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/fuzz.log" ||
        tail -1 "$out/fuzz.log")"
    pass=1
else
    echo "FAIL fuzz_cache_reader:"; tail -40 "$out/fuzz.log"; fail=1
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
