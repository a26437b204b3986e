#!/usr/bin/env bash
# The ledger under fire, for as long as you like: each round starts 8
# concurrent `kbench trial --ledger F` processes, kills 2 to 4 of them with
# SIGKILL at random moments, and checks the file: the header once, first;
# every line complete (newline-terminated, 13 tab-separated fields, a known
# status); every trial that exited normally has exactly one line (found by
# its --description, a token of its own); no trial has two.
#
# usage: scripts/ledger-stress.sh [ROUNDS]   (default 10)
# Uses ${KB_BUILD:-build}/kbench and its posting-intersect/portable.so.
# tests/test_ledger_kill.c is the same check as a ctest (one round).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
build=${KB_BUILD:-build}
kb=$build/kbench
plugin=$build/plugins/posting-intersect/portable.so
if [ ! -x "$kb" ] || [ ! -f "$plugin" ]; then
    echo "ledger-stress.sh: no $kb or $plugin; run scripts/build.sh first" >&2
    exit 69
fi
work=$(mktemp -d /tmp/kb-ledger-stress.XXXXXX)
trap 'rm -rf "$work"' EXIT
export KBENCH_STATE_DIR=$work/state
header=$'timestamp\ttarget\tcandidate\tdigest\toracle_digest\tcommit\tstatus\tgeomean_ratio\tci90_low\tci90_high\tworst_ratio\ttrial_seconds\tdescription'
n=8
bad=0
for r in $(seq 1 "$rounds"); do
    ledger=$work/results-$r.tsv
    pids=() toks=() killers=()
    for i in $(seq 0 $((n - 1))); do
        toks[i]="stress-$$-$r-$i"
        "$kb" trial "$plugin" --ledger "$ledger" --budget 0.3 --description "${toks[i]}" -q \
            >/dev/null 2>&1 &
        pids[i]=$!
    done
    # victims and their moments (0-8 s); a killer signals its trial only while
    # /proc shows that trial's own token, so no other process is ever hit
    nkill=$((2 + RANDOM % 3))
    for i in $(shuf -i 0-$((n - 1)) -n "$nkill"); do
        t=$((RANDOM % 8000))
        (
            sleep "$((t / 1000)).$(printf '%03d' $((t % 1000)))"
            if grep -qaF -- "${toks[i]}" "/proc/${pids[i]}/cmdline" 2>/dev/null; then
                kill -9 "${pids[i]}" 2>/dev/null && touch "$work/killed-$r-$i"
            fi
        ) &
        killers+=($!)
    done
    normal=0 killed=0
    for i in $(seq 0 $((n - 1))); do
        rc=0
        { wait "${pids[i]}" || rc=$?; } 2>/dev/null # no "Killed" chatter
        codes[i]=$rc
    done
    for k in "${killers[@]}"; do wait "$k" || true; done

    # the checks, in awk (independent of the C test)
    if ! awk -F'\t' -v header="$header" -v toks="${toks[*]}" -v codes="${codes[*]}" '
        BEGIN {
            nt = split(toks, tok, " "); split(codes, code, " ")
            for (i = 1; i <= nt; i++) idx[tok[i]] = i
            st["keep"] st["discard"] st["inconclusive"] st["incorrect"] st["crash"]
            st["timeout"] st["rejected"] st["correct"]
            err = 0
        }
        NR == 1 { if ($0 != header) { print "line 1 is not the header"; err = 1 } next }
        {
            if ($0 == header) { print "header again at line " NR; err = 1; next }
            if (NF != 13) { print "line " NR " has " NF " fields"; err = 1; next }
            if ($1 !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z$/) {
                print "line " NR ": timestamp " $1; err = 1 }
            if (!($7 in st)) { print "line " NR ": status " $7; err = 1 }
            for (f = 8; f <= 11; f++)
                if ($f != "n/a" && $f !~ /^-?[0-9]+\.[0-9]+$/) {
                    print "line " NR ": field " f " is " $f; err = 1 }
            if ($12 !~ /^[0-9]+\.[0-9]+$/) { print "line " NR ": trial_seconds " $12; err = 1 }
            if (!($13 in idx)) { print "line " NR ": unknown description " $13; err = 1; next }
            seen[$13]++
        }
        END {
            for (i = 1; i <= nt; i++) {
                if (seen[tok[i]] > 1) { print tok[i] " has " seen[tok[i]] " lines"; err = 1 }
                if (code[i] <= 4 && seen[tok[i]] != 1) {
                    print tok[i] " exited " code[i] " but has no line"; err = 1 }
                if (code[i] > 4 && code[i] != 137) {
                    print tok[i] " exited " code[i] ", not a verdict"; err = 1 }
            }
            exit err
        }' "$ledger"; then
        bad=1
    fi
    if [ -s "$ledger" ] && [ "$(tail -c1 "$ledger" | od -An -c | tr -d ' ')" != '\n' ]; then
        echo "round $r: the file does not end with a newline"
        bad=1
    fi
    for c in "${codes[@]}"; do
        if [ "$c" -eq 137 ]; then killed=$((killed + 1)); else normal=$((normal + 1)); fi
    done
    lines=$(($(wc -l <"$ledger" 2>/dev/null || echo 1) - 1))
    echo "round $r: $normal exited normally, $killed killed, $lines lines$([ $bad -eq 0 ] || echo ', FAILED')"
    [ $bad -eq 0 ] || { cp "$ledger" "/tmp/kb-ledger-stress-failed-$r.tsv"; exit 1; }
done
echo "ledger-stress: $rounds round(s) clean"
