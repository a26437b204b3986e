#!/usr/bin/env bash
# One full `kbench trial` under valgrind (memcheck, leak check on), host and
# its workers alike: the workers are exec'd kbench processes, followed with
# --trace-children=yes. Clean means every process's log says "ERROR
# SUMMARY: 0 errors" and the trial reached a timed verdict.
#
# usage: scripts/valgrind-trial.sh [CANDIDATE.so]
#   default CANDIDATE: plugins/pq-l2/portable.so. valgrind (3.19) emulates a
#   CPU without AVX-512, so under it the host rejects avx512.so for missing
#   CPU features before running it; the portable build exercises the same
#   host paths.
# Uses ${KB_BUILD:-build}. Under valgrind the worker runs without its
# seccomp filter and file-size limit (host/sandbox/sandbox.h, KB__VALGRIND): the
# tool itself needs both.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KB_BUILD:-build}
cand=${1:-$build/plugins/pq-l2/portable.so}
command -v valgrind >/dev/null || { echo "valgrind-trial.sh: apt-get install valgrind" >&2; exit 69; }
[ -x "$build/kbench" ] || { echo "valgrind-trial.sh: no $build/kbench; run scripts/build.sh" >&2; exit 69; }
logs=$(mktemp -d /tmp/kb-valgrind.XXXXXX)
trap 'rm -rf "$logs"' EXIT

# --budget 20: every phase of a trial gets max(budget, 2 s); valgrind runs
# the workers' loading and prepare 20-50 times slower than that allows.
set +e
valgrind --vgdb=no --error-exitcode=1 --trace-children=yes --leak-check=full \
    --log-file="$logs/vg.%p.log" \
    "$build/kbench" trial "$cand" --budget 20 -q >"$logs/verdict.txt" 2>"$logs/stderr.txt"
rc=$?
set -e
cat "$logs/verdict.txt"
status=$(sed -n 's/^status: //p' "$logs/verdict.txt")
nlogs=$(ls "$logs"/vg.*.log | wc -l)
clean=$(grep -l "ERROR SUMMARY: 0 errors" "$logs"/vg.*.log | wc -l)
echo "valgrind-trial: kbench exit $rc, status ${status:-none}, $clean of $nlogs process logs clean"
fail=0
if [ "$clean" -ne "$nlogs" ]; then
    for f in "$logs"/vg.*.log; do
        grep -q "ERROR SUMMARY: 0 errors" "$f" || { echo "== $f"; cat "$f"; }
    done
    fail=1
fi
# the host and both workers (candidate and baseline) must have run under it
if [ "$nlogs" -lt 3 ]; then
    echo "valgrind-trial: only $nlogs process(es) ran under valgrind; expected host + 2 workers" >&2
    fail=1
fi
case "$status" in
keep|discard|inconclusive) ;;
*)
    echo "valgrind-trial: not a timed verdict; the trial did not run in full" >&2
    cat "$logs/stderr.txt" >&2
    fail=1 ;;
esac
[ $fail -eq 0 ] && echo "valgrind-trial: clean"
exit $fail
