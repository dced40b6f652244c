#!/bin/bash
# nss_wrapper tests of libnss_medplum.so.2: getent passwd/group by name and
# id, enumeration, id(1), misses, and a corrupt cache (UNAVAIL, logged).
# No root and no /etc changes: nss_wrapper loads the module by path.
#   usage: nss_wrapper.sh MODULE MKCACHE
# Environment: NSS_TEST_PRELOAD is put before libnss_wrapper.so in
# LD_PRELOAD (the ASan runtime for a sanitizer build of the module);
# NSS_TEST_WRAPPER prefixes each command (valgrind).
set -u
module=$(readlink -f "$1")
mkcache=$(readlink -f "$2")
pass=0 fail=0 skip=0
T=$(mktemp -d "${TMPDIR:-/tmp}/nss-wrapper.XXXXXX")
trap 'rm -rf "$T"' EXIT

if ! [ -e /usr/lib/x86_64-linux-gnu/libnss_wrapper.so ] && ! ldconfig -p | grep -q libnss_wrapper.so; then
    echo "libnss_wrapper.so not installed (apt-get install libnss-wrapper)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi

cache="$T/cache"
cat > "$T/spec" <<'SPEC'
user:alice:5001:5001:Alice Example:/home/alice:/bin/bash:alice@example.org:Practitioner/aaaaaaaa-0000-4000-8000-000000000001:m1:1
user:bob:5002:5002:Bob:/home/bob:/bin/sh:bob@example.org:Practitioner/aaaaaaaa-0000-4000-8000-000000000002::0
user:carol:5003:6000::/home/carol:/bin/sh:carol@example.org:Practitioner/aaaaaaaa-0000-4000-8000-000000000003::0
group:alice:5001:
group:bob:5002:
group:medstaff:6000:alice,bob,carol
group:medadmin:6001:alice
resv:Practitioner/aaaaaaaa-0000-4000-8000-000000000001:5001
resv:Practitioner/aaaaaaaa-0000-4000-8000-000000000002:5002
resv:Practitioner/aaaaaaaa-0000-4000-8000-000000000003:5003
resv:Practitioner/aaaaaaaa-0000-4000-8000-000000000009:5009
SPEC
"$mkcache" "$cache" "$T/spec" || { echo "mkcache failed"; echo "0 passed, 1 failed"; exit 1; }

: > "$T/passwd"
: > "$T/group"
run() {
    LD_PRELOAD="${NSS_TEST_PRELOAD:+$NSS_TEST_PRELOAD:}libnss_wrapper.so" NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
        NSS_WRAPPER_MODULE_SO_PATH="$module" NSS_WRAPPER_MODULE_FN_PREFIX=medplum \
        NSS_MEDPLUM_CACHE_DIR="$cache" NSS_MEDPLUM_DEBUG=1 ${NSS_TEST_WRAPPER:-} "$@"
}

# expect NAME WANT_RC WANT_OUTPUT CMD...
expect() {
    local name=$1 want_rc=$2 want=$3 out rc
    shift 3
    out=$(run "$@" 2>"$T/stderr")
    rc=$?
    if [ "$rc" -eq "$want_rc" ] && [ "$out" = "$want" ]; then
        pass=$((pass + 1))
        echo "ok   $name"
    else
        fail=$((fail + 1))
        echo "FAIL $name: rc $rc (want $want_rc)"
        echo "  got:  $out"
        echo "  want: $want"
        sed 's/^/  stderr: /' "$T/stderr"
    fi
}

alice='alice:*:5001:5001:Alice Example:/home/alice:/bin/bash'
bob='bob:*:5002:5002:Bob:/home/bob:/bin/sh'
carol='carol:*:5003:6000::/home/carol:/bin/sh'

expect "getent passwd by name" 0 "$alice" getent passwd alice
expect "getent passwd by uid" 0 "$bob" getent passwd 5002
expect "getent passwd empty gecos" 0 "$carol" getent passwd carol
expect "getent passwd unknown name" 2 "" getent passwd nosuch
expect "getent passwd unknown uid" 2 "" getent passwd 5009
expect "getent passwd enumeration" 0 "$alice
$bob
$carol" getent passwd
expect "getent group by name" 0 "medstaff:*:6000:alice,bob,carol" getent group medstaff
expect "getent group by gid" 0 "medadmin:*:6001:alice" getent group 6001
expect "getent group private" 0 "alice:*:5001:" getent group alice
expect "getent group unknown" 2 "" getent group nosuch
expect "getent group enumeration" 0 "alice:*:5001:
bob:*:5002:
medstaff:*:6000:alice,bob,carol
medadmin:*:6001:alice" getent group
expect "id alice" 0 "uid=5001(alice) gid=5001(alice) groups=5001(alice),6000(medstaff),6001(medadmin)" id alice
expect "id carol" 0 "uid=5003(carol) gid=6000(medstaff) groups=6000(medstaff)" id carol
expect "id -u by name" 0 "5002" id -u bob

# The cache is replaced under the same path: the next process sees it.
sed -i 's/^user:bob:5002:5002:Bob:/user:bob:5002:5002:Robert:/' "$T/spec"
"$mkcache" "$cache" "$T/spec" >/dev/null 2>&1
expect "replaced cache is read" 0 "bob:*:5002:5002:Robert:/home/bob:/bin/sh" getent passwd bob

# A corrupt cache: unavailable, logged, no crash.
printf 'garbage' | dd of="$cache/accounts.db" bs=1 seek=200 conv=notrunc status=none
expect "corrupt cache: lookup fails" 2 "" getent passwd alice
if grep -q "nss_medplum: cache .* unavailable: checksum mismatch" "$T/stderr"; then
    pass=$((pass + 1)); echo "ok   corrupt cache is logged"
else
    fail=$((fail + 1)); echo "FAIL corrupt cache is logged"; cat "$T/stderr"
fi

# An insecure cache: refused, logged.
"$mkcache" "$cache" "$T/spec" >/dev/null 2>&1
chmod 0666 "$cache/accounts.db"
expect "world-writable cache refused" 2 "" getent passwd alice
if grep -q "writable by group or others" "$T/stderr"; then
    pass=$((pass + 1)); echo "ok   insecure cache is logged"
else
    fail=$((fail + 1)); echo "FAIL insecure cache is logged"; cat "$T/stderr"
fi
chmod 0644 "$cache/accounts.db"
chmod 0777 "$cache"
expect "world-writable directory refused" 2 "" getent passwd alice
chmod 0755 "$cache"

# Missing cache directory: unavailable, no crash.
NSS_MEDPLUM_CACHE_DIR_SAVE=$cache
cache="$T/nonexistent"
expect "missing cache" 2 "" getent passwd alice
cache=$NSS_MEDPLUM_CACHE_DIR_SAVE

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
