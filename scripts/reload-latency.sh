#!/usr/bin/env bash
# Reload-to-verdict latency of the agent loop, under `kbench watch` and under `kbench serve`,
# with default trial settings. A benchmark to read, not a test: it prints figures and exits 0.
#
#   scripts/reload-latency.sh [RELOADS]      (default 5; needs a build: scripts/build.sh)
#
# Each reload rebuilds a posting-intersect candidate (plugins/posting-intersect/portable.c,
# with a new --build-id so every build has new bytes) with gcc, as an agent would, then waits
# for the verdict:
#   watch: the build lands in the watched file; the watch's own reload_ms runs from the
#          inotify event to the printed verdict, and `wall` from gcc's exit to the verdict
#          line appearing on the watch's stdout.
#   serve: `kbench trial --server` runs after gcc; `wall` is that command, start to exit.
# Reload 1 is cold (inputs and oracle outputs generated), the rest warm. Per reload:
#   trial_ms    the trial itself (its trial_seconds: setup, measuring, teardown)
#   outside_ms  reload/wall minus trial: what the loop adds around a trial
#   batches_ms  inside the trial, the timed batches of both sides
# Then (`best`) a keep --against best that promotes the build: its verdict's trial plus the
# one more trial that measures the new best against the oracle.
# For comparison, the same candidate through a plain `kbench trial` (cold every time).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${KB_BUILD:-$root/build}"
kb="$build/kbench"
n="${1:-5}"
[ -x "$kb" ] || { echo "$0: $kb not found; build first (scripts/build.sh)" >&2; exit 64; }
tmp="$(mktemp -d /tmp/kb-latency.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
src="$root/plugins/posting-intersect/portable.c"
cand="$tmp/cand.so"

rebuild() { # $1: build number
  gcc -O2 -shared -fPIC -fvisibility=hidden -I "$root/abi" "-Wl,--build-id=0x$(printf '%08x' "$1")" \
    "$src" -o "$cand"
}
ms() { date +%s%N | awk '{ printf "%.1f", $1 / 1e6 }'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
field() { awk -v k="$1" -F': ' '$1 == k { print $2; exit }' "$2"; }
# The reason of any verdict but a timing one, so a surprise is seen, not just counted.
why() {
  case "$(field status "$tmp/last")" in
    keep|discard|inconclusive|correct) ;;
    *) echo "       reason: $(field reason "$tmp/last")" ;;
  esac
}

printf '%-6s %-6s %-5s %10s %10s %10s %10s  %s\n' mode reload warm reload_ms trial_ms outside_ms \
  batches_ms status

# ---- watch --------------------------------------------------------------------------------
rebuild 0
"$kb" watch "$cand" --no-initial >"$tmp/watch.out" 2>"$tmp/watch.err" &
pids+=($!)
sleep 0.5
for i in $(seq 1 "$n"); do
  before=$(grep -c '^warm: ' "$tmp/watch.out" || true)
  rebuild "$i"
  t0=$(ms)
  while [ "$(grep -c '^warm: ' "$tmp/watch.out" || true)" -le "$before" ]; do sleep 0.005; done
  t1=$(ms)
  # the last verdict block
  awk 'BEGIN { RS = "---\n" } END { print }' "$tmp/watch.out" >"$tmp/last"
  reload=$(field reload_ms "$tmp/last")
  trial=$(field trial_ms "$tmp/last")
  printf '%-6s %-6s %-5s %10s %10s %10s %10s  %s  (wall from gcc exit: %.1f ms)\n' watch "$i" \
    "$(field warm "$tmp/last")" "$reload" "$trial" "$(field outside_ms "$tmp/last")" \
    "$(field batches_ms "$tmp/last")" "$(field status "$tmp/last")" "$(sub "$t1" "$t0")"
  why
  sleep 0.3
done
kill -INT "${pids[0]}"
wait "${pids[0]}" || true

# ---- serve --------------------------------------------------------------------------------
sock="$tmp/kb.sock"
"$kb" serve --socket "$sock" 2>"$tmp/serve.err" &
pids+=($!)
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
for i in $(seq 1 "$n"); do
  rebuild $((100 + i))
  t0=$(ms)
  "$kb" trial --server "$sock" "$cand" -q >"$tmp/last" || true
  t1=$(ms)
  wall=$(sub "$t1" "$t0")
  trial=$(awk -F': ' '$1 == "trial_seconds" { printf "%.1f", $2 * 1000 }' "$tmp/last")
  warm=$([ "$i" -gt 1 ] && echo yes || echo no)
  printf '%-6s %-6s %-5s %10s %10s %10.1f %10s  %s\n' serve "$i" "$warm" "$wall" "$trial" \
    "$(sub "$wall" "$trial")" - "$(field status "$tmp/last")"
  why
done

# ---- a keep against the best: the verdict, then one trial of the new best against the oracle ----
# Each round plants baseline.so as the best (its recorded ratio to the oracle set high, so the
# promotion's own check against the oracle passes), then times a new build of portable.c
# --against best through the same server. `wall` covers both trials; `trial_ms` is the
# verdict's trial alone, so outside_ms here is mostly the promotion's trial against the oracle.
base_so="$build/plugins/posting-intersect/baseline.so"
if [ -f "$base_so" ]; then
  "$kb" verify "$base_so" >"$tmp/v" 2>/dev/null || true
  bdig=$(field candidate_digest "$tmp/v")
  odig=$(field oracle_digest "$tmp/v")
  for i in $(seq 1 "$n"); do
    st="$tmp/state$i/posting-intersect"
    mkdir -p "$st" && cp "$base_so" "$st/best.so" && : >"$st/.lock"
    printf 'target\tposting-intersect\ndigest\t%s\noracle_digest\t%s\noracle_ratio\t9\nsource\t%s\nledger\tn/a\n' \
      "$bdig" "$odig" "$base_so" >"$st/best.tsv"
    rebuild $((200 + i))
    t0=$(ms)
    "$kb" trial --server "$sock" "$cand" --against best --state "$tmp/state$i" -q \
      >"$tmp/last" || true
    t1=$(ms)
    wall=$(sub "$t1" "$t0")
    trial=$(awk -F': ' '$1 == "trial_seconds" { printf "%.1f", $2 * 1000 }' "$tmp/last")
    printf '%-6s %-6s %-5s %10s %10s %10.1f %10s  %s (promoted: %s, oracle_ratio %s)\n' best "$i" \
      yes "$wall" "$trial" "$(sub "$wall" "$trial")" - "$(field status "$tmp/last")" \
      "$(field promoted "$tmp/last")" "$(field oracle_ratio_source "$tmp/last")"
    why
  done
fi

# ---- setup alone: verify through the same server (no measuring), cold then warm -------------
for t in posting-intersect/portable pq-l2/portable; do
  so="$build/plugins/$t.so"
  [ -f "$so" ] || continue
  cp "$so" "$tmp/v.so"
  for i in 1 2 3; do
    t0=$(ms)
    "$kb" verify --server "$sock" "$tmp/v.so" --cases all >"$tmp/last" || true
    t1=$(ms)
    wall=$(sub "$t1" "$t0")
    trial=$(awk -F': ' '$1 == "trial_seconds" { printf "%.1f", $2 * 1000 }' "$tmp/last")
    warm=$([ "$i" -gt 1 ] && echo yes || echo no)
    printf '%-6s %-6s %-5s %10s %10s %10s %10s  %s (verify --cases all, %s)\n' verify "$i" "$warm" \
      "$wall" "$trial" "$(sub "$wall" "$trial")" - "$(field status "$tmp/last")" "${t%%/*}"
  done
done

# ---- plain trials, for comparison ----------------------------------------------------------
for i in 1 2; do
  t0=$(ms)
  "$kb" trial "$cand" -q >"$tmp/last" || true
  t1=$(ms)
  wall=$(sub "$t1" "$t0")
  trial=$(awk -F': ' '$1 == "trial_seconds" { printf "%.1f", $2 * 1000 }' "$tmp/last")
  printf '%-6s %-6s %-5s %10s %10s %10.1f %10s  %s\n' trial "$i" no "$wall" "$trial" \
    "$(sub "$wall" "$trial")" - "$(field status "$tmp/last")"
done
echo
echo "cold reload 1 includes generating every quick case's inputs and oracle outputs; warm"
echo "reloads reuse them (watch prints warm: yes). See docs/agent-loop.md for the breakdown."
