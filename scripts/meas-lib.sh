# meas-lib.sh -- shared by scripts/aa.sh, power.sh, measure-smoke.sh,
# gbench-agree.sh, overhead.sh and fx-slowdown.sh (sourced, not run). Finds
# the build, runs one kbench trial and keeps its key lines, and prints rates
# with Wilson score intervals.

KB_BUILD=${KB_BUILD:-build}
KBENCH=${KBENCH:-$KB_BUILD/kbench}

meas_need_build() {
  if [ ! -x "$KBENCH" ]; then
    echo "$0: no kbench at $KBENCH; run scripts/build.sh (or set KB_BUILD)" >&2
    exit 2
  fi
}

# The load average and the number of CPUs, for the record: every figure
# here depends on what else the machine was doing.
meas_load() {
  printf 'load %s on %s CPUs' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
}

# meas_trial LOG ARGS...: one `kbench trial ARGS -q`; appends one line to
# LOG: status exit_code geomean_ratio ci90_low ci90_high trial_seconds
# worst_ratio noise_pct reason trial_ci90_low trial_ci90_high, tab-separated
# ("n/a" where the block has none; status "error" when it printed no
# verdict).
meas_trial() {
  local log=$1 out rc
  shift
  out=$("$KBENCH" trial "$@" -q 2>&1) && rc=0 || rc=$?
  awk -v rc="$rc" -F': ' '
    { key = $1; sub(/^[^:]*: /, ""); gsub(/\t/, " "); v[key] = $0 }
    END {
      n = split("status geomean_ratio ci90_low ci90_high trial_seconds worst_ratio " \
                "noise_pct reason trial_ci90_low trial_ci90_high", k, " ")
      printf "%s\t%s", (v["status"] == "") ? "error" : v["status"], rc
      for (i = 2; i <= n; i++) printf "\t%s", (v[k[i]] == "") ? "n/a" : v[k[i]]
      printf "\n"
    }' <<< "$out" >> "$log"
  # A here-string, not a pipe: grep -q stops reading at the first match and
  # under pipefail the writer's SIGPIPE would read as "no verdict".
  if ! grep -q '^status: ' <<< "$out"; then
    echo "$0: kbench trial $* printed no verdict (exit $rc):" >&2
    tail -5 <<< "$out" >&2
  fi
}

# meas_wilson K N: "K/N = P% [95% CI LO%, HI%]", Wilson score interval.
meas_wilson() {
  awk -v k="$1" -v n="$2" 'BEGIN {
    if (n == 0) { print "0/0"; exit }
    z = 1.959964; p = k / n; d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    lo = c - h; hi = c + h; if (lo < 0) lo = 0; if (hi > 1) hi = 1
    printf "%d/%d = %.1f%% [95%% CI %.1f%%, %.1f%%]", k, n, 100 * p, 100 * lo, 100 * hi }'
}

# meas_summary LOG: how many trials had each status, and the mean, median
# and largest trial_seconds.
meas_summary() {
  awk -F'\t' '
    { c[$1]++; if ($6 != "n/a") { t[++m] = $6; s += $6 } }
    END {
      out = ""
      for (k in c) out = out sprintf("%s%s %d", out == "" ? "" : ", ", k, c[k])
      for (i = 2; i <= m; i++) {   # insertion sort: mawk has no asort
        x = t[i]; j = i - 1
        while (j > 0 && t[j] > x) { t[j + 1] = t[j]; j-- }
        t[j + 1] = x
      }
      med = m ? (m % 2 ? t[(m + 1) / 2] : (t[m / 2] + t[m / 2 + 1]) / 2) : 0
      printf "statuses: %s; trial_seconds mean %.2f, median %.2f, max %.2f\n",
             out, m ? s / m : 0, med, m ? t[m] : 0
    }' "$1"
}

# meas_count LOG STATUS: how many lines of LOG have that status.
meas_count() {
  awk -F'\t' -v s="$2" '$1 == s { n++ } END { print n + 0 }' "$1"
}

# meas_seen LOG: the geometric mean over trials of the geomean ratio, i.e.
# how large the difference looked to kbench.
meas_seen() {
  awk -F'\t' '$3 != "n/a" { s += log($3); m++ }
    END { if (m) printf "%.4f", exp(s / m); else printf "n/a" }' "$1"
}

# meas_calibrate DIR: unless KBENCH_STATE_DIR is set already, run `kbench
# calibrate` into DIR/state and use it, so verdicts carry this machine's
# noise floor as they would for a user who calibrated first; print the
# floors it found.
meas_calibrate() {
  if [ -n "${KBENCH_STATE_DIR:-}" ]; then
    echo "state dir: $KBENCH_STATE_DIR (given; not recalibrated)"
    return
  fi
  export KBENCH_STATE_DIR=$1/state
  mkdir -p "$KBENCH_STATE_DIR"
  local out
  out=$("$KBENCH" calibrate 2>/dev/null) || true
  printf 'kbench calibrate (fresh state dir): %s\n' "$(awk -F': ' '
    $1 == "target" { t = $2 }
    $1 == "noise_floor_pct" { printf "%s noise floor %s%%; ", t, $2 }' <<< "$out")"
}
