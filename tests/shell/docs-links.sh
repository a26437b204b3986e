#!/bin/sh
# docs-links.sh BUILD_DIR SOURCE_DIR -- `cmake --install` puts every page of
# docs/ (and README.md) under share/doc/kbench, and every relative Markdown
# link there resolves to an installed file or directory.
set -eu
build=${1:?usage: docs-links.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: docs-links.sh BUILD_DIR SOURCE_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; exit 1; }
doc="$tmp/prefix/share/doc/kbench"
bad=0
for page in $(cd "$src/docs" && find . -name '*.md' ! -path '*/build/*'); do
    [ -f "$doc/$page" ] || { echo "docs-links: docs/${page#./} is not installed in share/doc/kbench"; bad=1; }
done
[ -f "$doc/README.md" ] || { echo "docs-links: README.md is not installed"; bad=1; }
for page in $(cd "$doc" && find . -name '*.md'); do
    dir=$(dirname "$doc/$page")
    # every ](target) that is not a URL or an in-page anchor
    for t in $(grep -o '](\([^) ]*\))' "$doc/$page" | sed 's/^](//; s/)$//' | sort -u); do
        case $t in [a-zA-Z]*:* | '#'*) continue ;; esac
        f=${t%%#*}
        [ -e "$dir/$f" ] || { echo "docs-links: share/doc/kbench/${page#./} links to $t, which is not installed"; bad=1; }
    done
done
[ "$bad" -eq 0 ] && echo "docs-links: every page installed, every relative link resolves"
exit "$bad"
