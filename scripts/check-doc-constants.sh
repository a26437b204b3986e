#!/usr/bin/env bash
# Checks that the numbers docs/design.md quotes from the code match the
# #defines in abi/kbench.h and host/ (a constant changed and the doc did not:
# the test fails, naming the line). Two tags, invisible when rendered:
#   16<!-- kb:KB__SETS -->          the number right before the tag must equal
#                                    the expression (names, + - * /, numbers)
#   <!-- kb:KB__SETS=16 -->          the expression must equal the number: for
#                                    figures in code blocks and words ("sixteen")
# Usage: scripts/check-doc-constants.sh [SOURCE_DIR] [DOC...]
# (defaults: this checkout, docs/design.md). Exit 0 all match, 1 a mismatch.
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
shift || true
docs=("$@")
[ ${#docs[@]} -gt 0 ] || docs=("$src/docs/design.md")

# name<TAB>value of every object-like #define with a value, first one wins;
# C literals made awk arithmetic: suffixes, casts, UINT64_C(), << as *2^.
defs=$(cat "$src"/abi/kbench.h "$src"/host/*/*.h "$src"/host/*/*.c |
    sed -n 's/^#define \([A-Z_][A-Z0-9_]*\)[[:space:]]\+\(.*\)/\1\t\2/p' |
    sed -e 's|[[:space:]]*/[*/].*||' -e 's/[[:space:]]*$//' -e 's/UINT64_C(\([^)]*\))/\1/g' -e 's/(\(size_t\|double\|uint64_t\))//g' \
        -e 's/\([0-9]\)[uU]*[lL]*\b/\1/g' -e 's/<</*2^/g' |
    awk -F'\t' '!seen[$1]++')

declare -A def
while IFS=$'\t' read -r name value; do def[$name]=$value; done <<<"$defs"

# Evaluates EXPR with every name replaced by its value (recursively), in bash
# and one awk: the test runs in the default suite, on loaded machines too.
eval_expr() {
    local e=$1 i v
    for ((i = 0; i < 50; i++)); do
        [[ $e =~ ^(.*[^A-Za-z0-9_]|)([A-Z_][A-Z0-9_]*)(.*)$ ]] || break
        v=${def[${BASH_REMATCH[2]}]-}
        if [ -z "$v" ]; then
            echo "no #define ${BASH_REMATCH[2]} in abi/kbench.h or host/" >&2
            return 1
        fi
        e="${BASH_REMATCH[1]}($v)${BASH_REMATCH[3]}"
    done
    if [[ ! $e =~ ^[-+*/^().0-9eExa-f\ ]*$ ]]; then
        echo "cannot resolve $1 to a number: $e" >&2
        return 1
    fi
    awk "BEGIN { printf \"%.10g\\n\", ($e) }"
}

same() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; m = (a < 0 ? -a : a); exit !(d <= 1e-9 * (m > 1 ? m : 1)) }'; }

bad=0 n=0
for doc in "${docs[@]}"; do
    rel=${doc#"$src"/}
    while IFS= read -r hit; do
        line=${hit%%:*}
        tag=${hit#*:}
        n=$((n + 1))
        if [[ $tag =~ ^([0-9][0-9.]*)\<!--\ kb:([^ =]+)\ --\>$ ]]; then
            said=${BASH_REMATCH[1]} expr=${BASH_REMATCH[2]}
        elif [[ $tag =~ ^\<!--\ kb:([^ =]+)=([0-9][0-9.eE+-]*)\ --\>$ ]]; then
            expr=${BASH_REMATCH[1]} said=${BASH_REMATCH[2]}
        else
            echo "$rel:$line: malformed tag '$tag': write N<!-- kb:NAME --> or <!-- kb:NAME=N -->" >&2
            bad=1
            continue
        fi
        if ! want=$(eval_expr "$expr"); then
            echo "$rel:$line: tag $expr names no constant of the code; fix the tag" >&2
            bad=1
        elif ! same "$said" "$want"; then
            echo "$rel:$line: says $said for $expr, the code's #defines make it $want; update the doc and the tag" >&2
            bad=1
        fi
    done < <(grep -no '\([0-9]\+\(\.[0-9]\+\)\?\)\?<!-- kb:[^>]*-->' "$doc" || true)
done
if [ "$n" -eq 0 ]; then
    echo "no <!-- kb:NAME --> tags in ${docs[*]}: the check would prove nothing" >&2
    exit 1
fi
[ "$bad" -eq 0 ] && echo "check-doc-constants: $n quoted constants match the code"
exit "$bad"
