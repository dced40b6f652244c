#!/bin/bash
# Builds the Debian binary packages.
#
#   packaging/build-deb.sh [OUTDIR]      (default: build/packaging/debs)
#
# dpkg-buildpackage wants debian/ at the top of the source tree, and this
# repository keeps it in packaging/debian/.  So the tree (the files git knows
# about plus untracked, non-ignored ones: what "make" would build) is copied
# into a scratch directory, packaging/debian is copied to debian/ there, and
# "dpkg-buildpackage -us -uc -b" runs in it.  The .deb, .changes and
# .buildinfo files end up in OUTDIR; the scratch tree is removed.
#
# Environment: DEB_BUILD_OPTIONS is passed through (default parallel=<cpus>);
# KEEP_BUILD_TREE=1 keeps the scratch tree for inspection.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
outdir=${1:-$top/build/packaging/debs}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

version=$(sed -n 's/^VERSION := *//p' "$top/Makefile")
debversion=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
if [ "${debversion%%-*}" != "$version" ]; then
    echo "build-deb.sh: packaging/debian/changelog has $debversion but Makefile VERSION is $version;" >&2
    echo "  add a changelog entry (dch -v $version) first." >&2
    exit 1
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/pam-medplum-deb.XXXXXX")
cleanup() {
    if [ "${KEEP_BUILD_TREE:-0}" = 1 ]; then
        echo "build-deb.sh: build tree kept in $scratch" >&2
    else
        rm -rf "$scratch"
    fi
}
trap cleanup EXIT INT TERM

src=$scratch/pam-medplum-$version
mkdir -p "$src"
"$top/packaging/list-source-files.sh" > "$scratch/files"
(cd "$top" && tar --no-recursion --null -T "$scratch/files" -cf -) | tar -xf - -C "$src"
rm -rf "$src/debian"
cp -a "$top/packaging/debian" "$src/debian"

cd "$src"
DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-parallel=$(nproc)}
export DEB_BUILD_OPTIONS
dpkg-buildpackage -us -uc -b

for f in "$scratch"/*.deb "$scratch"/*.ddeb "$scratch"/*.changes "$scratch"/*.buildinfo; do
    [ -e "$f" ] || continue
    mv -f "$f" "$outdir/"
done
echo "build-deb.sh: packages in $outdir:"
ls -1 "$outdir"
