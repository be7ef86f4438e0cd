#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The man pages: (a) each renders without a single groff warning (groff
# -man -ww -z, and man -l where man-db is installed); (b) they cannot drift
# from the programs: every long option that `unlockd --help` and
# `unlockctl --help` print is a tag of the OPTIONS section of the program's
# page and every such tag is an option the program prints, likewise the
# commands of `unlockctl --help` and the COMMANDS section.
#
# Usage: test-man.sh UNLOCKD UNLOCKCTL   (the pages are next to this script)
set -euo pipefail

MAN_DIR=$(cd "$(dirname "$0")" && pwd)
UNLOCKD=${1:?usage: test-man.sh UNLOCKD UNLOCKCTL}
UNLOCKCTL=${2:?usage: test-man.sh UNLOCKD UNLOCKCTL}
PAGES=(unlockd.8 unlockctl.8 unlockd-boot.7)
export LC_ALL=C.UTF-8

command -v groff >/dev/null || { echo "SKIP: groff is not installed (groff-base)"; exit 77; }

fail=0
bad() {
        echo "FAIL: $*"
        fail=1
}

# (a) Rendering.
for p in "${PAGES[@]}"; do
        [ -f "$MAN_DIR/$p" ] || { bad "$p: missing"; continue; }
        out=$(groff -man -ww -z "$MAN_DIR/$p" 2>&1) || bad "$p: groff failed"
        [ -z "$out" ] || bad "$p: groff warnings:"$'\n'"$out"
        if command -v man >/dev/null; then
                out=$(MANWIDTH=80 man --warnings=w -l "$MAN_DIR/$p" 2>&1 >/dev/null) || bad "$p: man -l failed"
                [ -z "$out" ] || bad "$p: man -l warnings:"$'\n'"$out"
        fi
        # Every page references pages that exist here or are well known.
        grep -q '^\.SH "SEE ALSO"' "$MAN_DIR/$p" || bad "$p: no SEE ALSO section"
done

# The long options a program's --help prints: the leading words of each
# option line that start with '-' ("-h --help", "--tcti=STRING", ...).
help_options() {
        "$1" --help | awk '
                /^[ \t]+-/ {
                        for (i = 1; i <= NF && substr($i, 1, 1) == "-"; i++)
                                if (match($i, /^--[a-z0-9][a-z0-9-]*/))
                                        print substr($i, 3, RLENGTH - 2)
                }' | sort -u
}

# The commands a program's --help lists under "Commands:".
help_commands() {
        "$1" --help | awk '
                /^Commands:/ { on = 1; next }
                /^[^ \t]/ { on = 0 }
                on && NF { print $1 }' | sort -u
}

# The tags (the line after each .TP) of one section of a page, as plain
# text: roff escapes and font requests removed.
section_tags() {
        awk -v want="$2" '
                /^\.SH/ { s = $0; sub(/^\.SH[ \t]+/, "", s); gsub(/"/, "", s); on = (s == want); next }
                on && tp { print; tp = 0; next }
                on && /^\.TP/ { tp = 1 }' "$1" |
                sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\&//g' -e 's/^\.[A-Z][A-Z]* *//' -e 's/"//g'
}

# The long options among a section's tags.
page_options() {
        section_tags "$1" OPTIONS | grep -o -- '--[a-z0-9][a-z0-9-]*' | sed 's/^--//' | sort -u
}

# The commands among a section's tags: their first word.
page_commands() {
        section_tags "$1" COMMANDS | awk '{ print $1 }' | sort -u
}

# Reports what one list has that the other lacks.
compare() {
        local what=$1 from_help=$2 from_page=$3 page=$4 prog=$5
        [ -n "$from_help" ] || bad "$prog --help: no $what found"
        [ -n "$from_page" ] || bad "$page: no $what found"
        while read -r x; do
                [ -n "$x" ] && bad "$prog --help has $what '$x' that $page does not document"
        done < <(comm -23 <(echo "$from_help") <(echo "$from_page"))
        while read -r x; do
                [ -n "$x" ] && bad "$page documents $what '$x' that $prog --help does not have"
        done < <(comm -13 <(echo "$from_help") <(echo "$from_page"))
        return 0
}

# (b) No drift.
for pair in "unlockd.8:$UNLOCKD" "unlockctl.8:$UNLOCKCTL"; do
        page=${pair%%:*} prog=${pair#*:}
        "$prog" --help >/dev/null || bad "$prog --help failed"
        compare "option" "$(help_options "$prog")" "$(page_options "$MAN_DIR/$page")" "$page" "$(basename "$prog")"
done
compare "command" "$(help_commands "$UNLOCKCTL")" "$(page_commands "$MAN_DIR/unlockctl.8")" unlockctl.8 unlockctl

# The kernel command line switches unlockd reads are in unlockd-boot(7).
boot=$(sed 's/\\-/-/g' "$MAN_DIR/unlockd-boot.7")
for sw in rd.luks.uuid rd.luks.name rd.unlockd.uuid rd.luks.options rd.luks.crypttab rd.unlockd \
        rd.luks rd.unlockd.reseal rd.unlockd.timeout x-unlockd x-unlockd-reseal noauto; do
        grep -q -F -- "$sw=" <<<"$boot" || grep -q -F -- "$sw " <<<"$boot" || bad "unlockd-boot.7: $sw is not documented"
done

[ "$fail" = 0 ] || exit 1
echo "man pages: ${PAGES[*]} render without warnings; options and commands match --help"
