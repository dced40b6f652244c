#!/bin/bash
# The NSS module runs inside every process: it must need libc only and
# export only _nss_medplum_* (checked on the built .so).
#   usage: linkage.sh MODULE
set -u
so=$1
pass=0 fail=0
check() {
    if [ "$2" = ok ]; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1: $3"; fi
}

needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
bad=$(printf '%s\n' "$needed" | grep -vE '^(libc\.so\.6|ld-linux-x86-64\.so\.2|ld-linux[-.a-z0-9_]*\.so\.[0-9]+)$' | grep -v '^$')
[ -z "$bad" ] && [ -n "$needed" ] && check "NEEDED is libc only ($needed)" ok || check "NEEDED is libc only" bad "$needed"

soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libnss_medplum.so.2 ] && check "SONAME libnss_medplum.so.2" ok || check "SONAME" bad "$soname"

exports=$(nm -D --defined-only "$so" | awk '{print $3}')
badsym=$(printf '%s\n' "$exports" | grep -v '^_nss_medplum_' | grep -v '^$')
[ -z "$badsym" ] && check "exports only _nss_medplum_*" ok || check "exports only _nss_medplum_*" bad "$badsym"

for f in getpwnam_r getpwuid_r setpwent getpwent_r endpwent getgrnam_r getgrgid_r setgrent \
         getgrent_r endgrent initgroups_dyn; do
    printf '%s\n' "$exports" | grep -qx "_nss_medplum_$f" && check "exports _nss_medplum_$f" ok \
        || check "exports _nss_medplum_$f" bad missing
done

# No writable+executable or text relocations, full RELRO, non-executable stack.
readelf -d "$so" | grep -q TEXTREL && check "no TEXTREL" bad present || check "no TEXTREL" ok
readelf -d "$so" | grep -q 'BIND_NOW\|FLAGS.*NOW' && check "BIND_NOW (full RELRO)" ok || check "BIND_NOW" bad missing
readelf -lW "$so" | grep GNU_STACK | grep -q RWE && check "non-executable stack" bad RWE || check "non-executable stack" ok

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
