#!/bin/bash
# Fast packaging checks (no root, no network):
#  - every man page passes mandoc -T lint, groff -wall and man -l without a
#    single message;
#  - every key of the table in core/mp_config.c (printed by mp_keydump) is
#    documented in pam_medplum.conf(5) with its default, and present,
#    commented out with its default, in the shipped pam_medplum.conf; and
#    neither of them names a key the table does not have;
#  - every module argument pam_medplum accepts is in pam_medplum(8), every
#    medplumctl command in medplumctl(8).
# Ends with "N passed, N failed"; exits non-zero on any failure.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
O=${O:-build}
KEYDUMP=${KEYDUMP:-$O/packaging/mp_keydump}
MANDIR=packaging/man
CONF=packaging/conf/pam_medplum.conf
CONFMAN=$MANDIR/pam_medplum.conf.5

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   - $*"; }
nok() { fail=$((fail + 1)); echo "FAIL - $*"; return 1; }
check() { # check "description" command...
    local what=$1; shift
    if "$@"; then ok "$what"; else nok "$what"; fi
}

T=$(mktemp -d "${TMPDIR:-/tmp}/check-man.XXXXXX")
trap 'rm -rf "$T"' EXIT

pages=("$MANDIR"/*.[1-8])
version=$(sed -n 's/^VERSION := *//p' Makefile)

# ---- rendering without warnings ---------------------------------------------
for tool in mandoc groff man; do
    if ! command -v $tool >/dev/null; then
        nok "$tool is installed (packaging/install-deps.sh)"
    fi
done

for p in "${pages[@]}"; do
    name=${p##*/}
    if command -v mandoc >/dev/null; then
        # -W style: also the style messages (the strictest level).
        mandoc -T lint -W style "$p" > "$T/lint" 2>&1
        check "mandoc -T lint $name: no messages" test ! -s "$T/lint" || sed 's/^/     /' "$T/lint"
    fi
    if command -v groff >/dev/null; then
        groff -man -wall -z -Tutf8 "$p" > "$T/groff" 2>&1
        check "groff -wall $name: no warnings" test ! -s "$T/groff" || sed 's/^/     /' "$T/groff"
    fi
    if command -v man >/dev/null; then
        LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=all -l "$p" > "$T/man.out" 2> "$T/man.err"
        check "man -l $name renders (no stderr)" test ! -s "$T/man.err" -a -s "$T/man.out" ||
            sed 's/^/     /' "$T/man.err"
        # A line wider than the terminal means an unbreakable word or table.
        python3 -c 'import sys
for n, l in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    l = l.rstrip("\n")
    if len(l) > 80: print("line %d: %d: %s" % (n, len(l), l))' "$T/man.out" > "$T/wide"
        check "man -l $name: no line wider than 80 columns" test ! -s "$T/wide" ||
            sed 's/^/     /' "$T/wide"
    fi
    th=$(grep -m1 "^\.TH " "$p" | awk "{print tolower(\$2) \".\" \$3}")
    check "$name: .TH names the page ($th)" test "$th" = "$name"
    thv=$(grep -m1 "^\.TH " "$p" | sed -n 's/.*"pam_medplum \([^"]*\)".*/\1/p')
    check "$name: .TH version ($thv) is the Makefile VERSION ($version)" test "$thv" = "$version"
done

# ---- config keys: table vs pam_medplum.conf(5) vs shipped conffile ----------
if ! [ -x "$KEYDUMP" ]; then
    nok "key table dump $KEYDUMP exists (make $KEYDUMP)"
else
    "$KEYDUMP" > "$T/keys"
    nkeys=$(wc -l < "$T/keys")
    check "key table has keys ($nkeys)" test "$nkeys" -gt 0

    # Items of the man page: ".TP" followed by "\fBkey\fR = ..."; the text up
    # to the next item/section is the key's paragraph.
    awk '
        /^\.(TP|SH|SS)/ { if (key != "") print key "\t" text; key = ""; text = ""; item = ($0 ~ /^\.TP/); next }
        item && match($0, /^\\fB[a-z_]+\\fR = /) { key = substr($0, 4, RLENGTH - 9); item = 0; next }
        key != "" { text = text " " $0 }
        END { if (key != "") print key "\t" text }
    ' "$CONFMAN" > "$T/man-items"

    while IFS=$'\t' read -r key def desc; do
        para=$(awk -F'\t' -v k="$key" '$1 == k { print $2 }' "$T/man-items")
        if [ -z "$para" ]; then
            nok "pam_medplum.conf(5) documents $key"
        else
            n=$(awk -F'\t' -v k="$key" '$1 == k' "$T/man-items" | wc -l)
            check "pam_medplum.conf(5) documents $key once" test "$n" -eq 1
            if [ "$def" = "-" ]; then
                check "pam_medplum.conf(5) $key: says there is no default" \
                    grep -q 'No default' <<< "$para"
            else
                # "Default: \fBvalue\fR" (roff escapes: \- for -, \e for \)
                mdef=$(sed -n 's/.*Default: \\fB\([^\\]*\(\\[-e][^\\]*\)*\)\\fR.*/\1/p' <<< "$para" |
                    sed 's/\\-/-/g; s/\\e/\\/g')
                check "pam_medplum.conf(5) $key: default '$def' (page says '$mdef')" \
                    test "$mdef" = "$def"
            fi
        fi

        # The conffile: "#key = value" once; the value is the default when there
        # is one; the comment block just above says "No default" otherwise.
        lines=$(grep -c "^#$key = " "$CONF")
        check "$CONF: $key appears once, commented out" test "$lines" -eq 1
        if [ "$def" != "-" ]; then
            check "$CONF: $key shows its default '$def'" grep -qxF "#$key = $def" "$CONF"
        else
            block=$(awk -v k="#$key = " '
                /^#/ && index($0, k) != 1 { b = b $0 "\n"; next }
                index($0, k) == 1 { printf "%s", b; exit }
                { b = "" }' "$CONF")
            check "$CONF: $key says there is no default" grep -q 'No default' <<< "$block"
        fi
        # Its explanation: a comment right above the key.
        above=$(grep -B1 "^#$key = " "$CONF" | head -1)
        check "$CONF: $key is explained in a comment above it" \
            test -n "$above" -a "${above:0:1}" = "#" -a "$above" != "#"
    done < "$T/keys"

    cut -f1 "$T/keys" | sort > "$T/table-keys"
    cut -f1 "$T/man-items" | sort -u > "$T/man-keys"
    sed -n 's/^#\([a-z_]*\) = .*/\1/p' "$CONF" | sort -u > "$T/conf-keys"
    extra=$(comm -13 "$T/table-keys" "$T/man-keys" | tr '\n' ' ')
    check "pam_medplum.conf(5) names no key outside the table${extra:+ (extra: $extra)}" test -z "$extra"
    extra=$(comm -13 "$T/table-keys" "$T/conf-keys" | tr '\n' ' ')
    check "$CONF names no key outside the table${extra:+ (extra: $extra)}" test -z "$extra"
    check "$CONF sets no key (everything is commented out)" \
        test -z "$(grep -Ev '^[[:space:]]*(#|$)' "$CONF")"
fi

# ---- module arguments and medplumctl commands ---------------------------------
args=$(grep -ho 'str[n]*cmp(a, "[a-z_=]*"' pam_medplum/*.c 2>/dev/null |
    sed 's/.*"\(.*\)"/\1/' | sort -u)
check "pam_medplum module arguments found in pam_medplum/*.c" test -n "$args"
for a in $args; do
    check "pam_medplum(8) documents module argument $a" \
        grep -q "^\\.B[IR]* \"\\?${a%=}" "$MANDIR/pam_medplum.8"
done

# medplumctl: the commands of its table, "cache list|purge", and every long
# option that appears in a usage text (fprintf lines of medplumctl/*.c).
cmds=$(grep -o '^    {"[a-z-]*", "' medplumctl/medplumctl.c 2>/dev/null | sed 's/.*{"\([a-z-]*\)".*/\1/')
check "medplumctl commands found in medplumctl/medplumctl.c" test -n "$cmds"
for c in $cmds "cache list" "cache purge"; do
    esc=${c//-/\\\\-}
    check "medplumctl(8) documents command '$c'" grep -q "^\\.B[IR]* \"\\?$esc" "$MANDIR/medplumctl.8"
done
opts=$(grep -h -A12 'usage(FILE' medplumctl/*.c 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u)
for o in $opts; do
    check "medplumctl(8) documents option $o" grep -qF -- "${o//-/\\-}" "$MANDIR/medplumctl.8"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
