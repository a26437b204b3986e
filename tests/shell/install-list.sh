#!/bin/sh
# install-list.sh BUILD_DIR SOURCE_DIR -- an installed kbench uses only
# installed files: `cmake --install` into a fresh prefix, then `kbench list`
# from there must name paths under that prefix only (its oracles, their PIN
# and pinned sources, its candidates), resolved (no "/../"), never the
# source checkout it was built from; each oracle's pin is checked and ok, on
# the line right under the oracle.
set -eu
build=${1:?usage: install-list.sh BUILD_DIR SOURCE_DIR}
src=$(realpath "${2:?usage: install-list.sh BUILD_DIR SOURCE_DIR}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; exit 1; }
prefix=$(realpath "$tmp/prefix")
# From elsewhere, so nothing resolves relative to the checkout.
(cd "$tmp" && "$prefix/bin/kbench" list) >"$tmp/list" 2>"$tmp/err" ||
    { cat "$tmp/list" "$tmp/err"; echo "install-list: installed kbench list failed"; exit 1; }
fail() { cat "$tmp/list"; echo "install-list: $*"; exit 1; }
# Blocks whose oracle lies under the prefix (an install at the configured
# prefix may also be listed; it is not this test's).
awk -v p="$prefix/" '
    /^target:/ { keep = 0; buf = $0 "\n"; next }
    /^  oracle: / { keep = index($0, "  oracle: " p) == 1 }
    { buf = buf $0 "\n" }
    /^$/ { if (keep) printf "%s", buf; buf = "" }
' "$tmp/list" >"$tmp/ours"
n=$(grep -c '^  oracle: ' "$tmp/ours" || true)
[ "$n" -ge 1 ] || fail "no oracle listed under $prefix"
grep -q -F "$src" "$tmp/list" && fail "names the source tree $src"
grep -q '/\.\./\|/\./' "$tmp/ours" && fail "prints an unresolved path"
# every absolute path: one that starts a word or follows '('
grep -oE '(^|[ (])/[^ ()]*' "$tmp/ours" | sed 's/^[ (]//' >"$tmp/paths"
[ -s "$tmp/paths" ] || fail "no paths found in the listing"
outside=$(grep -v "^$prefix/" "$tmp/paths" | head -1)
[ -z "$outside" ] || fail "names a path outside $prefix: $outside"
# Each oracle line is followed by its pin line, and the pin is ok and installed.
awk '/^  oracle: /{o = NR} /^  pin: /{ if (NR != o + 1) bad = 1; p++ } END { exit bad }' "$tmp/ours" ||
    fail "the pin line is not right under its oracle"
[ "$(grep -c "^  pin: ok ($prefix/share/kbench/src/oracles/[a-z0-9-]*/PIN)$" "$tmp/ours")" -eq "$n" ] ||
    fail "not every oracle's pin is ok against $prefix/share/kbench/src"
echo "install-list: $n oracle(s), every path under $prefix, every pin ok"
