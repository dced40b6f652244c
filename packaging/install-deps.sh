#!/bin/sh
# Installs every Debian package the project needs to build, test and package
# pam_medplum (Debian 12 / bookworm package names).
#
#   packaging/install-deps.sh               install all (apt-get; needs root)
#   packaging/install-deps.sh --if-missing  do nothing when everything is present;
#                                           otherwise install what is missing (root),
#                                           or, not root, print the command and exit 1
#   packaging/install-deps.sh --list        print the package list and exit
#   packaging/install-deps.sh --check       exit 0 if all present, 1 (and list) if not
#   ... --demo                               (with any of the above) only what `make demo`
#                                           needs: the build, pam_wrapper, pamtester,
#                                           python3 and openssl; no ssh server, no
#                                           packaging tools
#
# apt-get update runs at most once, and only when a package has no install
# candidate in the current lists (or there are no lists at all).
set -eu

BUILD_DEPS="build-essential dpkg-dev libpam0g-dev libcurl4-openssl-dev libcjson-dev
libcmocka-dev pkg-config libcrypt-dev"
TEST_DEPS="libpam-wrapper libpamtest0-dev libnss-wrapper pamtester openssh-server sshpass
expect clang libclang-rt-14-dev valgrind cppcheck clang-format python3 openssl"
PACKAGING_DEPS="debhelper dh-nss lintian debootstrap rpm rpmlint devscripts fakeroot mandoc
groff-base man-db"

DEMO_DEPS="libpam-wrapper pamtester python3 openssl"

ALL_DEPS=$(echo $BUILD_DEPS $TEST_DEPS $PACKAGING_DEPS)
for arg in "$@"; do
    if [ "$arg" = --demo ]; then
        ALL_DEPS=$(echo $BUILD_DEPS $DEMO_DEPS)
    fi
done

usage() {
    sed -n '2,18s/^# \{0,1\}//p' "$0"
}

mode=all
if [ "${1:-}" = --demo ]; then
    shift
fi
case "${1:-}" in
    "") ;;
    --if-missing) mode=if-missing ;;
    --check) mode=check ;;
    --list) echo "$ALL_DEPS" | tr ' ' '\n'; exit 0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
esac

missing() {
    for p in $ALL_DEPS; do
        st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [ "$st" = installed ] || printf '%s ' "$p"
    done
}

todo=$(missing)
todo=${todo% }

if [ -z "$todo" ] && [ "$mode" != all ]; then
    exit 0
fi
if [ "$mode" = check ]; then
    echo "missing packages: $todo" >&2
    exit 1
fi
[ "$mode" = all ] && todo=$ALL_DEPS

cmd="apt-get install -y --no-install-recommends $todo"
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: missing packages: $todo" >&2
    echo "install-deps.sh: run as root:" >&2
    echo "  apt-get update && DEBIAN_FRONTEND=noninteractive $cmd" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

need_update=no
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
    need_update=yes
else
    for p in $todo; do
        cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/{print $2; exit}')
        if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
            need_update=yes
            break
        fi
    done
fi
if [ "$need_update" = yes ]; then
    echo "install-deps.sh: apt-get update" >&2
    apt-get update
fi

echo "install-deps.sh: installing: $todo" >&2
# shellcheck disable=SC2086
if ! apt-get install -y --no-install-recommends $todo; then
    # Stale lists (404 on a superseded version): refresh once and retry.
    if [ "$need_update" = no ]; then
        apt-get update
        apt-get install -y --no-install-recommends $todo
    else
        exit 1
    fi
fi

left=$(missing)
if [ -n "$left" ]; then
    echo "install-deps.sh: still missing after install: $left" >&2
    exit 1
fi
