#!/usr/bin/env bash
# The one brace style (.clang-format) on the project's C and C++ sources:
# host/, abi/, oracles/, plugins/, generators/.
#   scripts/format.sh           rewrite the files in place
#   scripts/format.sh --check   change nothing; list each file that differs and
#                               exit 1 (CI runs this)
# Needs clang-format 14 (apt-get install clang-format-14): another version
# formats some constructs differently, so the check names the one it wants.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  ""|--check) ;;
  *) echo "format.sh: unknown option '$1' (try --help)" >&2; exit 64 ;;
esac
cf=$(command -v clang-format-14 || true)
if [ -z "$cf" ]; then
  echo "format.sh: clang-format-14 not found; install it with: apt-get install clang-format-14" >&2
  exit 69
fi
mapfile -t files < <(git ls-files -- host abi oracles plugins generators |
                     grep -E '\.(c|h|cpp|hpp)$')
if [ "${1:-}" = --check ]; then
  bad=()
  for f in "${files[@]}"; do
    "$cf" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    printf 'format.sh: %s is not in the project style\n' "${bad[@]}" >&2
    echo "format.sh: ${#bad[@]} file(s) differ; run scripts/format.sh and commit the result" >&2
    exit 1
  fi
  echo "format.sh: ${#files[@]} files in the project style"
else
  "$cf" -i "${files[@]}"
fi
