#!/bin/bash
# Prints, NUL-separated and relative to the top of the tree, the files that
# make up the source: what git knows about plus untracked, non-ignored files
# (what "make" would build), or, outside a git checkout, everything except
# the build directories.  Used by build-deb.sh and build-rpm.sh.
set -eu
cd "$(dirname "$0")/.."
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # deleted-but-tracked files are skipped
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
        done
else
    find . \( -path ./build -o -path './build-*' -o -path ./.git \) -prune -o \
        \( -type f -o -type l \) -printf '%P\0'
fi
