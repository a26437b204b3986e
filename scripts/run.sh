#!/usr/bin/env bash
# The first verdict: install dependencies, build, pick the fastest variant of
# the pq-l2 kernel that this CPU runs, and trial it against its oracle.
# Extra arguments go to `kbench trial`.
#
#   KB_RUN_TARGET=posting-intersect scripts/run.sh   another target
#   KB_RUN_CANDIDATE=path/to/x.so scripts/run.sh     skip the pick, trial this one
#
# The variants are the target's ISA files (avx512.so, avx2.so, neon.so) and
# portable.so. A variant whose descriptor needs CPU features this machine
# lacks is named with what it lacks and left out; `kbench pick` trials the
# rest and names the kept one with the lowest geomean ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
build=${KB_BUILD:-build}
kb=$build/kbench
target=${KB_RUN_TARGET:-pq-l2}
dir=$build/plugins/$target

if [ -n "${KB_RUN_CANDIDATE:-}" ]; then
  echo "$target: $(basename "$KB_RUN_CANDIDATE") (KB_RUN_CANDIDATE; no pick)"
  exec "$kb" trial "$KB_RUN_CANDIDATE" "$@"
fi

runs=() skipped=()
for isa in avx512 avx2 neon portable; do
  v=$dir/$isa.so
  [ -e "$v" ] || continue
  missing=$("$kb" info "$v" | sed -n 's/^cpu_features_missing: //p')
  if [ "$missing" = none ]; then
    runs+=("$v")
  else
    skipped+=("$isa.so (needs $missing)")
  fi
done
if [ ${#runs[@]} -eq 0 ]; then
  echo "run.sh: no variant of $target in $dir runs on this CPU; build with scripts/build.sh" >&2
  exit 1
fi

not_here=""
[ ${#skipped[@]} -eq 0 ] || not_here="; not for this CPU: $(IFS=,; echo "${skipped[*]}" | sed 's/,/, /g')"
if [ ${#runs[@]} -eq 1 ]; then
  cand=${runs[0]}
  why="the only variant this CPU runs$not_here"
else
  echo "run.sh: kbench pick ${runs[*]}"
  set +e
  pick=$("$kb" pick "${runs[@]}")
  rc=$?
  set -e
  echo "$pick"
  cand=$(sed -n 's/^best: //p' <<<"$pick")
  if [ "$rc" -ne 0 ] || [ ! -e "$cand" ]; then
    echo "run.sh: kbench pick kept no variant of $target (table above); trialling" \
         "portable.so, the plain C one" >&2
    cand=$dir/portable.so
    why="kbench pick kept none$not_here"
  else
    others=()
    for v in "${runs[@]}"; do [ "$v" = "$cand" ] || others+=("$(basename "$v")"); done
    why="picked by kbench pick over $(IFS=,; echo "${others[*]}" | sed 's/,/, /g')$not_here"
  fi
fi
needs=$("$kb" info "$cand" | sed -n 's/^cpu_features_needed: //p')
has="this CPU has ${needs:-none}"
[ -n "$needs" ] && [ "$needs" != none ] || has="plain C, no CPU features needed"
echo "$target: $(basename "$cand") ($has; $why)"
exec "$kb" trial "$cand" "$@"
