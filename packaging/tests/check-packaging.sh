#!/bin/bash
# The Debian packages, end to end (root; about a minute, plus ~50 s once for
# the debootstrap base):
#   1. build them with packaging/build-deb.sh, lint them with
#      lintian --fail-on error,warning; check contents, modes, conffiles,
#      Multi-Arch, hardening;
#   2. the nsswitch.conf editing of libnss-medplum's maintainer scripts, run
#      against sample files (DPKG_ROOT);
#   3. install them into a Debian minbase chroot (an overlay over a cached
#      debootstrap tree in $PAM_MEDPLUM_TEST_CACHE, default
#      /var/cache/pam-medplum-test) and check files, modes, nsswitch.conf,
#      the common-* PAM files, pam-auth-update --enable medplum, local logins
#      through common-auth with pamtester;
#   4. if the test server (tests/server/) is there: log the demo user in
#      through the chroot's common-auth and common-account;
#   5. remove and purge, and check that /etc is as before.
# Everything runs in a private mount namespace; the host's /etc is never
# touched.  Ends with "N passed, N failed, N skipped".
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
O=${O:-build}
case $O in /*) ;; *) O=$top/$O ;; esac
CACHE=${PAM_MEDPLUM_TEST_CACHE:-/var/cache/pam-medplum-test}
SUITE=bookworm
# Bump BASE_REV when BASE_PACKAGES changes: a new base is then bootstrapped.
BASE_REV=1
BASE_PACKAGES=pamtester,libcurl4,libcjson1,ca-certificates
BASE=$CACHE/$SUITE-minbase-v$BASE_REV

pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "ok   - $*"; }
nok() { fail=$((fail + 1)); echo "FAIL - $*"; return 1; }
skipped() { skip=$((skip + 1)); echo "skip - $*"; }
check() { # check "description" command...
    local what=$1; shift
    if "$@"; then ok "$what"; else nok "$what"; fi
}
finish() {
    echo "$pass passed, $fail failed, $skip skipped"
    [ "$fail" -eq 0 ]
    exit
}
indent() { sed 's/^/     /'; }

if [ "$(id -u)" -ne 0 ]; then
    skipped "check-packaging needs root (debootstrap chroot, mounts)"
    finish
fi
# The packages need every component's install rule.
for part in pam_medplum nss_medplum medplumctl; do
    if ! [ -e "$part/module.mk" ]; then
        skipped "check-packaging: $part/module.mk is not there yet (the packages need it)"
        finish
    fi
done
missing=
for tool in dpkg-buildpackage lintian debootstrap hardening-check unshare dh_installnss; do
    command -v $tool >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    nok "tools present (missing:$missing; run packaging/install-deps.sh)"
    finish
fi

# Re-run inside a private mount namespace: every mount below vanishes with it.
if [ -z "${CHECK_PACKAGING_NS:-}" ]; then
    CHECK_PACKAGING_NS=1 exec unshare --mount --propagation private "$top/packaging/tests/check-packaging.sh" "$@"
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/check-packaging.XXXXXX")
R=$T/root
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if mountpoint -q "$R/proc" 2>/dev/null; then umount "$R/proc"; fi
    if mountpoint -q "$R" 2>/dev/null; then umount "$R"; fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
debs=$O/packaging/debs

# ---- 1. build, lintian, contents --------------------------------------------
rm -rf "$debs"
start=$(date +%s)
if packaging/build-deb.sh "$debs" > "$T/build.log" 2>&1; then
    ok "build-deb.sh builds the packages ($(($(date +%s) - start)) s)"
else
    nok "build-deb.sh builds the packages"
    tail -40 "$T/build.log" | indent
    finish
fi
changes=$(ls "$debs"/*.changes)
pkgs="libpam-medplum libnss-medplum medplum-auth-tools"
deb() { ls "$debs/$1"_*.deb; }

lintian --fail-on error,warning "$changes" > "$T/lintian.log" 2>&1
rc=$?
grep -v '^running with root privileges' "$T/lintian.log" > "$T/lintian.tags"
check "lintian --fail-on error,warning: clean" test "$rc" -eq 0 || indent < "$T/lintian.tags"
for f in packaging/debian/*.lintian-overrides; do
    [ -e "$f" ] || continue
    # every override line follows a comment that gives the reason
    bad=$(awk '/^[^#[:space:]]/ && prev !~ /^#/ { print } { prev = $0 }' "$f")
    check "${f##*/}: every override has a written reason" test -z "$bad"
done

# File lists, without directories and the generated /usr/share/doc files.
contents() { dpkg-deb -c "$(deb "$1")" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $1, $2, $6 }' |
    grep -v ' /usr/share/doc/' | sort -k3; }
expect_files() { # package, then "mode owner path" lines
    local p=$1; shift
    printf '%s\n' "$@" | sort -k3 > "$T/expect.$p"
    contents "$p" > "$T/got.$p"
    check "$p: exactly the expected files, modes and owners" diff -u "$T/expect.$p" "$T/got.$p" ||
        diff -u "$T/expect.$p" "$T/got.$p" | indent
}
expect_files libpam-medplum \
    "-rw-r--r-- root/root /usr/lib/$ma/security/pam_medplum.so" \
    "-rw-r--r-- root/root /usr/share/pam-configs/medplum" \
    "-rw-r--r-- root/root /usr/share/man/man8/pam_medplum.8.gz"
expect_files libnss-medplum \
    "-rw-r--r-- root/root /usr/lib/$ma/libnss_medplum.so.2" \
    "-rw-r--r-- root/root /usr/share/man/man8/nss_medplum.8.gz"
expect_files medplum-auth-tools \
    "-rw------- root/root /etc/medplum/pam_medplum.conf" \
    "-rw-r--r-- root/root /usr/share/lintian/overrides/medplum-auth-tools" \
    "-rw-r--r-- root/root /lib/systemd/system/medplum-sync.service" \
    "-rw-r--r-- root/root /lib/systemd/system/medplum-sync.timer" \
    "-rw-r--r-- root/root /usr/lib/tmpfiles.d/pam_medplum.conf" \
    "-rwxr-xr-x root/root /usr/sbin/medplumctl" \
    "-rw-r--r-- root/root /usr/share/man/man5/pam_medplum.conf.5.gz" \
    "-rw-r--r-- root/root /usr/share/man/man8/medplumctl.8.gz"

field() { dpkg-deb -f "$(deb "$1")" "$2"; }
check "libpam-medplum is Multi-Arch: same" test "$(field libpam-medplum Multi-Arch)" = same
check "libnss-medplum is Multi-Arch: same" test "$(field libnss-medplum Multi-Arch)" = same
check "medplum-auth-tools is Multi-Arch: foreign" test "$(field medplum-auth-tools Multi-Arch)" = foreign
check "libpam-medplum depends on libpam-runtime (pam-auth-update)" \
    grep -q 'libpam-runtime' <<< "$(field libpam-medplum Depends)"
check "medplum-auth-tools depends on both modules of the same version" \
    grep -q 'libnss-medplum (= .*libpam-medplum (= ' <<< "$(field medplum-auth-tools Depends)"
nss_deps=$(field libnss-medplum Depends)
check "libnss-medplum depends on libc only ($nss_deps)" \
    test -z "$(tr ',' '\n' <<< "$nss_deps" | grep -v '^ *libc6 ')"
conffiles=$(dpkg-deb --ctrl-tarfile "$(deb medplum-auth-tools)" | tar -xOf - ./conffiles 2>/dev/null)
check "medplum-auth-tools: /etc/medplum/pam_medplum.conf is a conffile" \
    test "$conffiles" = /etc/medplum/pam_medplum.conf

mkdir -p "$T/x"
for p in $pkgs; do dpkg-deb -x "$(deb "$p")" "$T/x"; done
for f in "$T/x/usr/lib/$ma/security/pam_medplum.so" "$T/x/usr/lib/$ma/libnss_medplum.so.2" \
    "$T/x/usr/sbin/medplumctl"; do
    if file -b "$f" | grep -q ELF; then
        # hardening=+all: stack protector, fortify, relro, bindnow (PIE for
        # the executable).  Not control-flow protection: bookworm's dpkg
        # (1.21) has no "branch" feature, so -fcf-protection is never passed.
        hardening-check --quiet --nocfprotection "$f" > "$T/hc" 2>&1
        check "hardening-check ${f##*/}" test $? -eq 0 || indent < "$T/hc"
    else
        skipped "hardening-check ${f##*/}: not an ELF file yet"
    fi
done
soname=$(objdump -p "$T/x/usr/lib/$ma/libnss_medplum.so.2" 2>/dev/null | awk '$1 == "SONAME" { print $2 }')
check "libnss_medplum.so.2 has SONAME libnss_medplum.so.2" test "$soname" = libnss_medplum.so.2
exported=$(nm -D --defined-only "$T/x/usr/lib/$ma/security/pam_medplum.so" | awk '$2 == "T" { print $3 }' | sort | tr '\n' ' ')
check "pam_medplum.so exports only pam_sm_* ($exported)" \
    test -z "$(tr ' ' '\n' <<< "$exported" | grep -v '^pam_sm_' | grep -v '^$')"

# ---- 2. nsswitch.conf editing of the built maintainer scripts ----------------
mkdir -p "$T/nss/etc" "$T/scripts"
for s in preinst postinst postrm; do
    dpkg-deb --ctrl-tarfile "$(deb libnss-medplum)" | tar -xOf - ./$s > "$T/scripts/$s"
done
nss_run() { # phase args...
    env DPKG_ROOT="$T/nss" DPKG_MAINTSCRIPT_PACKAGE=libnss-medplum \
        DPKG_MAINTSCRIPT_PACKAGE_INSTCOUNT="${INSTCOUNT:-0}" sh "$T/scripts/$1" "${@:2}" >/dev/null 2>&1
}
nss_install() { nss_run preinst install && nss_run postinst configure ""; }
nss_case() { # "original line" "expected line after installation"
    printf '# comment passwd: files\n%s\nhosts: files dns\n' "$1" > "$T/nss/etc/nsswitch.conf"
    cp "$T/nss/etc/nsswitch.conf" "$T/nss.orig"
    nss_install
    check "nsswitch: '$1' -> '$2'" test "$(sed -n 2p "$T/nss/etc/nsswitch.conf")" = "$2"
    nss_run postinst configure 0.1.0
    check "nsswitch: '$1': configure again (upgrade) adds nothing" \
        test "$(sed -n 2p "$T/nss/etc/nsswitch.conf")" = "$2"
    nss_run postrm remove
    check "nsswitch: '$1': restored exactly by remove" cmp -s "$T/nss.orig" "$T/nss/etc/nsswitch.conf"
}
nss_case 'passwd:         files systemd' 'passwd:         files medplum systemd'
nss_case 'group:          files systemd' 'group:          files medplum systemd'
nss_case 'passwd:         files' 'passwd:         files medplum'
nss_case 'passwd: sss files' 'passwd: sss files medplum'
nss_case 'passwd: files [NOTFOUND=return] ldap' 'passwd: files [NOTFOUND=return] medplum ldap'
nss_case 'passwd: files # local first' 'passwd: files medplum # local first'
nss_case 'shadow: files' 'shadow: files'
nss_case 'passwd: compat' 'passwd: compat'
# The admin's own entry is left where it is; an upgrade does not re-add an
# entry the admin took out; another architecture still installed keeps it.
printf 'passwd: medplum files\ngroup: files\n' > "$T/nss/etc/nsswitch.conf"
nss_install
check "nsswitch: an existing 'medplum' entry is left where the admin put it" \
    test "$(cat "$T/nss/etc/nsswitch.conf")" = "$(printf 'passwd: medplum files\ngroup: files')"
printf 'passwd: files\n' > "$T/nss/etc/nsswitch.conf"
nss_run postinst configure 0.1.0
check "nsswitch: an upgrade does not re-add an entry the admin removed" \
    test "$(cat "$T/nss/etc/nsswitch.conf")" = "passwd: files"
printf 'passwd: files medplum\n' > "$T/nss/etc/nsswitch.conf"
INSTCOUNT=1 nss_run postrm remove
check "nsswitch: removing one of two architectures keeps the entry" \
    test "$(cat "$T/nss/etc/nsswitch.conf")" = "passwd: files medplum"

# ---- 3. the chroot ------------------------------------------------------------
prepare_base() {
    mkdir -p "$CACHE"
    (
        flock 9
        [ -e "$BASE/.complete" ] && exit 0
        rm -rf "$BASE.tmp"
        mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
        mirror=${mirror:-http://deb.debian.org/debian}
        echo "bootstrapping $BASE from $mirror (once, ~50 s)"
        debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$BASE.tmp" "$mirror" \
            > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log"; exit 1; }
        rm -rf "$BASE.tmp/var/cache/apt/archives/"*.deb
        touch "$BASE.tmp/.complete"
        mv "$BASE.tmp" "$BASE"
    ) 9> "$CACHE/lock"
}
start=$(date +%s)
if prepare_base; then
    ok "debootstrap base $BASE ready ($(($(date +%s) - start)) s)"
else
    nok "debootstrap base $BASE"
    finish
fi

mkdir -p "$T/upper" "$T/work" "$R"
if ! mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$T/upper,workdir=$T/work" "$R"; then
    nok "overlay mount of the chroot"
    finish
fi
mount -t proc proc "$R/proc"
in_root() { chroot "$R" "$@"; }

# No service starts; a local account and a PAM service using the common-* files.
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"
chmod 0755 "$R/usr/sbin/policy-rc.d"
in_root useradd -m -s /bin/sh labadmin
echo 'labadmin:local-pass-1' | in_root chpasswd
printf '@include common-auth\n@include common-account\n@include common-password\n@include common-session\n' \
    > "$R/etc/pam.d/medplum-test"
cp -a "$R/etc" "$T/etc.before"

mkdir -p "$R/tmp/debs"
for p in $pkgs; do cp "$(deb "$p")" "$R/tmp/debs/"; done
in_root sh -c 'dpkg -i /tmp/debs/*.deb' > "$T/install.log" 2>&1
check "dpkg -i of the three packages in the chroot" test $? -eq 0 || tail -20 "$T/install.log" | indent

# Files and modes as installed.
mode_is() { # path "mode owner group type"
    local got
    got=$(in_root stat -c '%a %U %G %F' "$1" 2>&1)
    check "installed $1: $2" test "$got" = "$2" || echo "     got: $got"
}
mode_is "/usr/lib/$ma/security/pam_medplum.so" "644 root root regular file"
mode_is "/usr/lib/$ma/libnss_medplum.so.2" "644 root root regular file"
mode_is /usr/sbin/medplumctl "755 root root regular file"
mode_is /etc/medplum/pam_medplum.conf "600 root root regular file"
mode_is /var/lib/pam_medplum "755 root root directory"
mode_is /var/lib/pam_medplum/private "700 root root directory"
mode_is /usr/share/pam-configs/medplum "644 root root regular file"
check "the conffile is registered" \
    grep -q '/etc/medplum/pam_medplum.conf' <<< "$(in_root dpkg-query -W -f='${Conffiles}' medplum-auth-tools)"
check "the shipped conffile is the one in the source tree" \
    cmp -s packaging/conf/pam_medplum.conf "$R/etc/medplum/pam_medplum.conf"
if [ -x "$R/usr/bin/deb-systemd-helper" ]; then
    check "medplum-sync.timer is enabled (timers.target.wants)" \
        test -L "$R/etc/systemd/system/timers.target.wants/medplum-sync.timer"
    check "medplum-sync.service is not enabled on its own" \
        test -z "$(find "$R/etc/systemd/system" -name medplum-sync.service 2>/dev/null)"
fi

# The tmpfiles.d entry recreates the cache directories with the right modes.
if command -v systemd-tmpfiles >/dev/null; then
    rm -rf "$R/var/lib/pam_medplum"
    systemd-tmpfiles --root="$R" --create pam_medplum.conf > "$T/tmpfiles.log" 2>&1
    check "systemd-tmpfiles --create pam_medplum.conf" test $? -eq 0 || indent < "$T/tmpfiles.log"
    mode_is /var/lib/pam_medplum "755 root root directory"
    mode_is /var/lib/pam_medplum/private "700 root root directory"
else
    skipped "systemd-tmpfiles not on the host"
fi
if command -v systemd-analyze >/dev/null; then
    # The minbase chroot has no systemd: lend it the host's targets.
    for u in /lib/systemd/system/*.target; do
        [ -e "$R$u" ] || cp "$u" "$R$u"
    done
    systemd-analyze verify --man=no --root="$R" medplum-sync.service medplum-sync.timer \
        > "$T/verify.log" 2>&1
    check "systemd-analyze verify of the units" test $? -eq 0 -a ! -s "$T/verify.log" ||
        indent < "$T/verify.log"
    score=$(systemd-analyze security --offline=yes --root="$R" medplum-sync.service 2>/dev/null |
        sed -n 's/.*Overall exposure level for medplum-sync.service: \([0-9.]*\).*/\1/p')
    check "medplum-sync.service exposure level ${score:-?} is at most 2.5 (OK)" \
        awk -v s="${score:-99}" 'BEGIN { exit !(s <= 2.5) }'
fi

# nsswitch.conf: medplum right after files on passwd and group, nothing else.
check "nsswitch.conf: passwd is 'files medplum'" grep -qE '^passwd:[[:space:]]+files medplum$' "$R/etc/nsswitch.conf"
check "nsswitch.conf: group is 'files medplum'" grep -qE '^group:[[:space:]]+files medplum$' "$R/etc/nsswitch.conf"
check "nsswitch.conf: nothing else changed" \
    cmp -s <(sed -E 's/ medplum$//' "$R/etc/nsswitch.conf") "$T/etc.before/nsswitch.conf"
check "no nsswitch.conf marker file left" test -z "$(ls "$R"/etc/nsswitch.conf.nss.* 2>/dev/null)"

# The PAM stack as pam-auth-update wrote it.
pam_lines() { grep -v '^#' "$R/etc/pam.d/$1" | grep -v '^$'; }
order_ok() { # file first-module second-module
    local a b
    a=$(pam_lines "$1" | grep -n "$2" | head -1 | cut -d: -f1)
    b=$(pam_lines "$1" | grep -n "$3" | head -1 | cut -d: -f1)
    [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]
}
# Not enabled at installation (Default: no): the PAM files are untouched
# until the admin enables the profile.
check "the PAM profile is not enabled at installation (common-* unchanged)" \
    diff -r "$T/etc.before/pam.d" "$R/etc/pam.d"
pamtest() { # user password actions...
    local u=$1 pw=$2; shift 2
    printf '%s\n' "$pw" | timeout 60 chroot "$R" pamtester medplum-test "$u" "$@" > "$T/pamtester.log" 2>&1
}
in_root pam-auth-update --enable medplum > "$T/pau.log" 2>&1
check "pam-auth-update --enable medplum" test $? -eq 0 || indent < "$T/pau.log"
check "common-auth: pam_medplum.so use_first_pass" \
    grep -qE '^auth[[:space:]].*pam_medplum\.so use_first_pass' "$R/etc/pam.d/common-auth"
check "common-auth: pam_unix before pam_medplum" order_ok common-auth pam_unix.so pam_medplum.so
check "common-auth: pam_medplum before pam_deny" order_ok common-auth pam_medplum.so pam_deny.so
check "common-account: pam_medplum after pam_permit, default=die" \
    order_ok common-account pam_permit.so 'default=die.*pam_medplum.so'
check "common-password: pam_unix stays first (its use_authtok chain intact)" \
    order_ok common-password pam_unix.so pam_medplum.so
check "common-password: pam_unix has no use_authtok when it is first" \
    test -z "$(pam_lines common-password | grep 'pam_unix.so.*use_authtok')"
check "common-session: pam_medplum optional" grep -qE '^session[[:space:]]+optional[[:space:]]+pam_medplum\.so' \
    "$R/etc/pam.d/common-session"
cp -a "$R/etc/pam.d" "$T/pam.d.installed"
in_root pam-auth-update --enable medplum > "$T/pau.log" 2>&1
check "pam-auth-update --enable medplum again changes nothing" diff -r "$T/pam.d.installed" "$R/etc/pam.d"

# Installing again (reinstall) duplicates nothing.
in_root sh -c 'dpkg -i /tmp/debs/*.deb' > "$T/reinstall.log" 2>&1
check "dpkg -i again (reinstall)" test $? -eq 0 || tail -20 "$T/reinstall.log" | indent
check "reinstall: nsswitch.conf passwd line unchanged" grep -qE '^passwd:[[:space:]]+files medplum$' "$R/etc/nsswitch.conf"
check "reinstall: the PAM profile stays enabled" diff -r "$T/pam.d.installed" "$R/etc/pam.d"

# Local users keep working through pam_unix; nobody else gets in while the
# configuration is the shipped (empty) one.
check "getent passwd root" in_root sh -c 'getent passwd root >/dev/null'
in_root getent passwd no-such-user-xyz >/dev/null 2>&1
check "getent passwd of an unknown name: not found (rc 2)" test $? -eq 2
check "local user: right password accepted (auth + account)" pamtest labadmin local-pass-1 authenticate acct_mgmt ||
    indent < "$T/pamtester.log"
pamtest labadmin wrong-pass
check "local user: wrong password refused" test $? -ne 0
start=$(date +%s%N)
pamtest someone some-password authenticate
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
check "unconfigured host: a non-local user is refused" test "$rc" -ne 0
check "unconfigured host: the refusal is quick (${ms} ms, no network)" test "$ms" -lt 5000
if file -b "$R/usr/sbin/medplumctl" | grep -q ELF; then
    in_root medplumctl --help > "$T/ctl.log" 2>&1
    check "medplumctl --help" test $? -eq 0 || indent < "$T/ctl.log"
    in_root medplumctl check-config --sync > "$T/ctl.log" 2>&1
    rc=$?
    # medplum-sync.service's ExecCondition: 1-254 skips the run, 255 fails it.
    check "medplumctl check-config --sync on the shipped file: exit 1 (sync skipped, rc $rc)" \
        test "$rc" -eq 1
else
    skipped "medplumctl is not built yet"
fi

# ---- 4. a Medplum login through common-auth -----------------------------------
if [ -f tests/server/medplum_server.py ] && [ -f tests/server/fixtures/demo.json ] &&
    [ -f tests/server/make_certs.sh ]; then
    mkdir -p "$T/srv"
    sh tests/server/make_certs.sh "$T/srv" > "$T/srv/certs.log" 2>&1
    python3 tests/server/medplum_server.py --fixture tests/server/fixtures/demo.json \
        --cert "$T/srv/server.pem" --key "$T/srv/server.key" --host 127.0.0.1 --port 0 \
        --port-file "$T/srv/port" --control-port-file "$T/srv/control-port" \
        > "$T/srv/stdout" 2> "$T/srv/stderr" &
    SERVER_PID=$!
    for _ in $(seq 100); do [ -s "$T/srv/port" ] && break; sleep 0.1; done
    port=$(cat "$T/srv/port" 2>/dev/null)
    if check "test server started (port ${port:-none})" test -n "$port"; then
        install -m 0644 "$T/srv/ca.pem" "$R/usr/local/share/medplum-test-ca.pem"
        cat >> "$R/etc/medplum/pam_medplum.conf" <<EOF
base_url = https://127.0.0.1:$port/
project_id = de300000-0000-4000-8000-000000000001
client_id = de300000-0000-4000-8000-000000000201
ca_file = /usr/local/share/medplum-test-ca.pem
email_domain = lab.example
EOF
        check "demo user: demo-password-1 accepted through common-auth" \
            pamtest demo demo-password-1 authenticate || indent < "$T/pamtester.log"
        pamtest demo wrong-password-1 authenticate
        check "demo user: a wrong password is refused" test $? -ne 0
        pamtest inactive inactive-password-1 authenticate
        check "inactive member: refused" test $? -ne 0
        # Second factor: pamtester answers the code prompt from the next line.
        code=$(python3 tests/server/totp.py DEMOMFATOTPSECRT)
        pamtest mfa "$(printf 'mfa-password-1\n%s' "$code")" authenticate
        check "MFA user: password + TOTP code accepted through common-auth" test $? -eq 0 ||
            indent < "$T/pamtester.log"
        pamtest mfa "$(printf 'mfa-password-1\n000000')" authenticate
        check "MFA user: a wrong code is refused" test $? -ne 0
        check "demo user: known to NSS after the login (getent passwd demo)" \
            in_root sh -c 'getent passwd demo >/dev/null' ||
            ls -lR "$R/var/lib/pam_medplum" 2>&1 | indent
        check "demo user: authenticate + acct_mgmt through common-auth/common-account" \
            pamtest demo demo-password-1 authenticate acct_mgmt || indent < "$T/pamtester.log"
        check "local user still accepted with the module configured" \
            pamtest labadmin local-pass-1 authenticate acct_mgmt
        # The directory through the packaged medplumctl and the host client,
        # then the account phase alone (as for an SSH key login).
        printf '5ec0%.0s' $(seq 16) > "$R/etc/medplum/host-client-secret"
        chmod 0600 "$R/etc/medplum/host-client-secret"
        printf '%s\n' "host_client_id = de300000-0000-4000-8000-000000000202" \
            "host_client_secret_file = /etc/medplum/host-client-secret" >> "$R/etc/medplum/pam_medplum.conf"
        in_root medplumctl check-config --sync > "$T/ctl.log" 2>&1
        check "medplumctl check-config --sync: configured host passes (the timer would sync)" \
            test $? -eq 0 || indent < "$T/ctl.log"
        in_root medplumctl sync > "$T/sync.log" 2>&1
        check "medplumctl sync in the chroot" test $? -eq 0 || indent < "$T/sync.log"
        check "after sync: getent passwd demo" in_root sh -c 'getent passwd demo >/dev/null'
        in_root getent passwd demo > "$T/pw.demo"
        check "after sync: demo's uid is in uid_min..uid_max ($(cut -d: -f3 "$T/pw.demo"))" \
            awk -F: '$3 >= 200000 && $3 <= 299999 { ok = 1 } END { exit !ok }' "$T/pw.demo"
        check "after sync: acct_mgmt alone for demo (no auth, like an SSH key)" \
            pamtest demo "" acct_mgmt || indent < "$T/pamtester.log"
        check "after sync: demo authenticate + acct_mgmt" \
            pamtest demo demo-password-1 authenticate acct_mgmt || indent < "$T/pamtester.log"
        pamtest inactive "" acct_mgmt
        check "after sync: acct_mgmt refuses the inactive member" test $? -ne 0
        rm -f "$R/etc/medplum/host-client-secret"
    fi
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
    rm -f "$R/usr/local/share/medplum-test-ca.pem"
else
    skipped "Medplum login through common-auth: tests/server (medplum_server.py, fixtures/demo.json) not there yet"
fi

# ---- 5. remove, purge -----------------------------------------------------------
in_root dpkg -r medplum-auth-tools libpam-medplum libnss-medplum > "$T/remove.log" 2>&1
check "dpkg -r of the three packages" test $? -eq 0 || tail -20 "$T/remove.log" | indent
check "remove: common-* PAM files as before installation" diff -r "$T/etc.before/pam.d" "$R/etc/pam.d" ||
    diff -r "$T/etc.before/pam.d" "$R/etc/pam.d" | indent
check "remove: nsswitch.conf as before installation" cmp -s "$T/etc.before/nsswitch.conf" "$R/etc/nsswitch.conf"
check "remove: the conffile stays until purge" test -e "$R/etc/medplum/pam_medplum.conf"
check "remove: the cache stays until purge" test -d "$R/var/lib/pam_medplum"
check "remove: the module is gone" test ! -e "$R/usr/lib/$ma/security/pam_medplum.so"
check "remove: local user still accepted" pamtest labadmin local-pass-1 authenticate acct_mgmt

# A reinstallation from the config-files state adds the nsswitch entries again.
in_root sh -c 'dpkg -i /tmp/debs/*.deb' > "$T/reinstall2.log" 2>&1
check "reinstall after remove" test $? -eq 0 || tail -20 "$T/reinstall2.log" | indent
check "reinstall after remove: nsswitch.conf has medplum again" \
    grep -qE '^passwd:[[:space:]]+files medplum$' "$R/etc/nsswitch.conf"
check "reinstall after remove: the PAM profile is not enabled again by itself" \
    diff -r "$T/etc.before/pam.d" "$R/etc/pam.d"
in_root pam-auth-update --enable medplum > "$T/pau.log" 2>&1
check "reinstall after remove: pam-auth-update --enable medplum" grep -q pam_medplum.so "$R/etc/pam.d/common-auth"

in_root dpkg -P medplum-auth-tools libpam-medplum libnss-medplum > "$T/purge.log" 2>&1
check "dpkg -P of the three packages" test $? -eq 0 || tail -20 "$T/purge.log" | indent
check "purge: /etc/medplum is gone" test ! -e "$R/etc/medplum"
check "purge: /var/lib/pam_medplum is gone" test ! -e "$R/var/lib/pam_medplum"
check "purge: no package state left" test -z "$(in_root dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' \
    libpam-medplum libnss-medplum medplum-auth-tools 2>/dev/null | grep -v ' un *$')"
diff -r --no-dereference "$T/etc.before" "$R/etc" | grep -v '^Binary files .*/ld.so.cache differ$' > "$T/etc.diff"
check "purge: /etc exactly as before installation" test ! -s "$T/etc.diff" || indent < "$T/etc.diff"
check "purge: local user still accepted" pamtest labadmin local-pass-1 authenticate acct_mgmt

finish
