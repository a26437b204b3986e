#!/usr/bin/env bash
# Checks the user's pages: every relative link in README.md and docs/*.md
# points at a file that exists and, with #anchor, at a heading of it (GitHub's
# slugs: lower case, punctuation dropped, spaces as hyphens, -1, -2 for
# repeats); and docs/measurement.md stays a user's page of at most 400 lines
# (the laboratory notebook lives in docs/lab/).
# Usage: scripts/check-doc-links.sh [SOURCE_DIR]. Exit 0 all good, 1 not.
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$src"
bad=0
max=400
lines=$(wc -l <docs/measurement.md)
if [ "$lines" -gt "$max" ]; then
    echo "docs/measurement.md: $lines lines, over $max: keep it a user's page and move lab notes to docs/lab/" >&2
    bad=1
fi

# file:line:target of every inline link outside code blocks and code spans.
links() {
    awk '/^[[:space:]]*```/ { fence = !fence; next }
        fence { next }
        { s = $0; gsub(/`[^`]*`/, "", s)
          while (match(s, /\]\([^) ]+\)/)) {
              print FILENAME ":" FNR ":" substr(s, RSTART + 2, RLENGTH - 3)
              s = substr(s, RSTART + RLENGTH) } }' "$1"
}

# The GitHub anchor of every heading of a file, one a line.
slugs() {
    awk '/^[[:space:]]*```/ { fence = !fence; next }
        fence || !/^#+ / { next }
        { h = $0; sub(/^#+ +/, "", h); sub(/ +#+ *$/, "", h)
          h = tolower(h)
          while (match(h, /\[[^]]*\]\([^)]*\)/)) {
              t = substr(h, RSTART + 1, RLENGTH); sub(/\]\(.*$/, "", t)
              h = substr(h, 1, RSTART - 1) t substr(h, RSTART + RLENGTH) }
          gsub(/[^a-z0-9_ -]/, "", h); gsub(/ /, "-", h)
          n = seen[h]++; print (n ? h "-" n : h) }' "$1"
}

for f in README.md docs/*.md; do
    while IFS= read -r hit; do
        line=${hit#*:}
        line=${line%%:*}
        target=${hit#*:*:}
        case $target in http://* | https://* | mailto:*) continue ;; esac
        path=${target%%#*}
        anchor=
        [[ $target == *'#'* ]] && anchor=${target#*#}
        if [ -z "$path" ]; then
            dest=$f
        else
            dest=$(dirname "$f")/$path
        fi
        if [ ! -e "$dest" ]; then
            echo "$f:$line: link '$target': no such file $dest; fix the link" >&2
            bad=1
            continue
        fi
        if [ -n "$anchor" ]; then
            if [ -d "$dest" ] || ! slugs "$dest" | grep -qxF -- "$anchor"; then
                echo "$f:$line: link '$target': no heading with anchor #$anchor in $dest; fix the link or the heading" >&2
                bad=1
            fi
        fi
    done < <(links "$f")
done
[ "$bad" -eq 0 ] && echo "check-doc-links: links and anchors resolve; docs/measurement.md $lines lines"
exit "$bad"
