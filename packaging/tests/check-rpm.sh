#!/bin/bash
# The RPM (a smoke test on this Debian host, see packaging/rpm/pam_medplum.rpmlintrc):
#   - rpmbuild -bb succeeds (packaging/build-rpm.sh);
#   - rpmlint with the rpmlintrc is clean, and every filter has a reason;
#   - the conffile is %config(noreplace) and 0600, the cache dirs are owned
#     with their modes, %post/%postun run ldconfig;
#   - rpm -qpl lists the same files as the .debs, apart from the documented
#     differences (pam-auth-update profile vs authselect profile, paths).
# Ends with "N passed, N failed, N skipped".
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
O=${O:-build}
case $O in /*) ;; *) O=$top/$O ;; esac

pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "ok   - $*"; }
nok() { fail=$((fail + 1)); echo "FAIL - $*"; return 1; }
skipped() { skip=$((skip + 1)); echo "skip - $*"; }
check() {
    local what=$1; shift
    if "$@"; then ok "$what"; else nok "$what"; fi
}
finish() {
    echo "$pass passed, $fail failed, $skip skipped"
    [ "$fail" -eq 0 ]
    exit
}
indent() { sed 's/^/     /'; }

for part in pam_medplum nss_medplum medplumctl; do
    if ! [ -e "$part/module.mk" ]; then
        skipped "check-rpm: $part/module.mk is not there yet (the package needs it)"
        finish
    fi
done
missing=
for tool in rpmbuild rpm rpmlint dpkg-deb; do
    command -v $tool >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    nok "tools present (missing:$missing; run packaging/install-deps.sh)"
    finish
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/check-rpm.XXXXXX")
trap 'rm -rf "$T"' EXIT
# rpm and rpmlint keep state in ~/.rpmdb and ~/.config: not in root's home.
export HOME=$T/home
mkdir -p "$HOME"

rpmdir=$O/packaging/rpm
rm -rf "$rpmdir"
start=$(date +%s)
if packaging/build-rpm.sh "$rpmdir" > "$T/build.log" 2>&1; then
    ok "rpmbuild -bb ($(($(date +%s) - start)) s)"
else
    nok "rpmbuild -bb"
    tail -30 "$T/build.log" | indent
    finish
fi
rpmfile=$(ls "$rpmdir"/pam_medplum-[0-9]*.x86_64.rpm "$rpmdir"/pam_medplum-[0-9]*.rpm 2>/dev/null | head -1)
q() { rpm -qp "$@" "$rpmfile" 2>/dev/null; }

rpmlint -r packaging/rpm/pam_medplum.rpmlintrc "$rpmfile" packaging/rpm/pam_medplum.spec > "$T/rpmlint.log" 2>&1
check "rpmlint (with pam_medplum.rpmlintrc) clean" test $? -eq 0 || grep -E ': [EW]: ' "$T/rpmlint.log" | indent
bad=$(awk '/^addFilter/ && prev !~ /^(#|addFilter)/ { print } { prev = $0 }' packaging/rpm/pam_medplum.rpmlintrc)
check "every rpmlint filter follows a written reason" test -z "$bad" || echo "$bad" | indent

# File attributes.
q --qf '[%{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' > "$T/attrs"
check "conffile: %config(noreplace), -rw------- root:root" \
    grep -qE '^cn -rw------- root:root /etc/medplum/pam_medplum\.conf$' "$T/attrs" || grep pam_medplum.conf "$T/attrs" | indent
check "cache dir owned: drwxr-xr-x root:root /var/lib/pam_medplum" \
    grep -qE ' drwxr-xr-x root:root /var/lib/pam_medplum$' "$T/attrs"
check "cache private dir owned: drwx------ root:root" \
    grep -qE ' drwx------ root:root /var/lib/pam_medplum/private$' "$T/attrs"
q --scripts > "$T/scripts"
check "%post runs ldconfig" awk '/^postinstall scriptlet/ { s = 1 } /^(preuninstall|postuninstall)/ { s = 0 } s && /ldconfig/ { f = 1 } END { exit !f }' "$T/scripts"
check "%postun runs ldconfig" awk '/^postuninstall scriptlet/ { s = 1 } s && /ldconfig/ { f = 1 } END { exit !f }' "$T/scripts"
check "%postun removes the cache only on erase" grep -q 'if \[ \$1 -eq 0 \]; then' "$T/scripts"
check "the package provides libnss_medplum.so.2" grep -q '^libnss_medplum.so.2' <<< "$(q --provides)"

# Same files as the .debs.
debs=$O/packaging/debs
if ! ls "$debs"/medplum-auth-tools_*.deb >/dev/null 2>&1; then
    packaging/build-deb.sh "$debs" > "$T/deb.log" 2>&1 || { nok "build the .debs to compare"; tail -20 "$T/deb.log" | indent; finish; }
fi
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=$(HOME=$HOME rpm --eval '%{_libdir}')
for d in "$debs"/libpam-medplum_*.deb "$debs"/libnss-medplum_*.deb "$debs"/medplum-auth-tools_*.deb; do
    dpkg-deb -c "$d"
done | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' |
    grep -v -e '^/usr/share/doc/' -e '^/usr/share/lintian/' |
    sed -e "s,^/usr/lib/$ma/,$libdir/," -e 's,^/lib/systemd/,/usr/lib/systemd/,' -e 's,\.gz$,,' |
    sort > "$T/deb.files"
q --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' | awk '$1 !~ /^d/ { print $2 }' |
    grep -v '^/usr/lib/\.build-id/' | sed -E 's,\.(gz|bz2|xz|zst)$,,' | sort > "$T/rpm.files"
comm -23 "$T/deb.files" "$T/rpm.files" > "$T/deb-only"
comm -13 "$T/deb.files" "$T/rpm.files" > "$T/rpm-only"
# Documented differences: Debian enables through pam-auth-update, RPM
# systems through authselect.
check "only in the .debs: the pam-auth-update profile" \
    test "$(cat "$T/deb-only")" = /usr/share/pam-configs/medplum || indent < "$T/deb-only"
check "only in the RPM: the authselect profile" \
    test -z "$(grep -v '^/usr/share/authselect/vendor/medplum/' "$T/rpm-only")" -a -s "$T/rpm-only" ||
    indent < "$T/rpm-only"
for f in system-auth password-auth nsswitch.conf README REQUIREMENTS; do
    check "authselect profile has $f" grep -qx "/usr/share/authselect/vendor/medplum/$f" "$T/rpm-only"
done

# Scriptlets: install into and erase from the Debian chroot base of
# check-packaging (an overlay, thrown away), with the scriptlets run there.
BASE=${PAM_MEDPLUM_TEST_CACHE:-/var/cache/pam-medplum-test}/bookworm-minbase-v1
if [ "$(id -u)" -ne 0 ]; then
    skipped "rpm -i/-e of the package: needs root"
elif ! [ -e "$BASE/.complete" ]; then
    skipped "rpm -i/-e of the package: no chroot base yet (make check-packaging creates it)"
else
    mkdir -p "$T/ov/u" "$T/ov/w" "$T/ov/root"
    unshare --mount --propagation private bash -c '
        set -u
        R=$2/ov/root
        mount -t overlay overlay -o "lowerdir=$1,upperdir=$2/ov/u,workdir=$2/ov/w" "$R" || exit 1
        db="--root $R --dbpath /var/lib/rpm-check"
        rpm $db -i --nodeps "$3" > "$2/rpm-i.log" 2>&1 || { echo "rpm -i failed"; exit 1; }
        stat -c "%a %U %n" "$R/etc/medplum/pam_medplum.conf" "$R/var/lib/pam_medplum"             "$R/var/lib/pam_medplum/private" | sed "s,$R,," > "$2/rpm-modes"
        touch "$R/var/lib/pam_medplum/accounts.db"
        rpm $db -e pam_medplum > "$2/rpm-e.log" 2>&1 || { echo "rpm -e failed"; exit 1; }
        for p in /etc/medplum /var/lib/pam_medplum "/usr/lib64/security/pam_medplum.so"; do
            [ -e "$R$p" ] && echo "left after erase: $p"
        done
        exit 0
    ' rpmtest "$BASE" "$T" "$rpmfile" > "$T/rpm-root.log" 2>&1
    check "rpm -i and rpm -e in a chroot: scriptlets run, erase removes config and cache" \
        test $? -eq 0 -a ! -s "$T/rpm-root.log" || indent < "$T/rpm-root.log"
    check "rpm -i: conffile 0600, cache dirs 0755/0700" test "$(cat "$T/rpm-modes" 2>/dev/null)" = \
        "$(printf '600 root /etc/medplum/pam_medplum.conf\n755 root /var/lib/pam_medplum\n700 root /var/lib/pam_medplum/private')" ||
        indent < "$T/rpm-modes"
fi

finish
