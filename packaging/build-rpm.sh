#!/bin/bash
# Builds the RPM with rpmbuild -bb.
#
#   packaging/build-rpm.sh [OUTDIR]      (default: build/packaging/rpm)
#
# Makes pam_medplum-VERSION.tar.gz from the tree (packaging/list-source-files.sh),
# runs rpmbuild in a scratch _topdir and moves the binary RPMs to OUTDIR.
#
# On a Debian host (no Fedora build root) the BuildRequires cannot be
# resolved by rpm, so --nodeps is used there, and rpm keeps its database in
# ~/.rpmdb: it is pointed into the scratch directory instead.
# Extra rpmbuild arguments: RPMBUILD_ARGS.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
outdir=${1:-$top/build/packaging/rpm}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
spec=$top/packaging/rpm/pam_medplum.spec

version=$(sed -n 's/^VERSION := *//p' "$top/Makefile")
specversion=$(sed -n 's/^Version: *//p' "$spec")
if [ "$specversion" != "$version" ]; then
    echo "build-rpm.sh: $spec has Version $specversion but Makefile VERSION is $version" >&2
    exit 1
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/pam-medplum-rpm.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
mkdir -p "$scratch"/{BUILD,RPMS,SOURCES,SPECS,SRPMS,BUILDROOT,home}

"$top/packaging/list-source-files.sh" > "$scratch/files"
(cd "$top" && tar --no-recursion --transform "s,^,pam_medplum-$version/," \
    --owner=0 --group=0 --null -T "$scratch/files" \
    -czf "$scratch/SOURCES/pam_medplum-$version.tar.gz")
cp "$spec" "$scratch/SPECS/"

nodeps=
if [ -e /etc/debian_version ]; then
    nodeps=--nodeps
fi
# HOME: rpm creates ~/.rpmdb on Debian; keep it out of root's home.
HOME=$scratch/home rpmbuild --define "_topdir $scratch" \
    --define "_dbpath $scratch/rpmdb" $nodeps ${RPMBUILD_ARGS:-} \
    -bb "$scratch/SPECS/pam_medplum.spec"

find "$scratch/RPMS" -name '*.rpm' -exec mv -f {} "$outdir/" \;
echo "build-rpm.sh: packages in $outdir:"
ls -1 "$outdir"
