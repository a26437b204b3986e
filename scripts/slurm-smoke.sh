#!/usr/bin/env bash
# A kbench campaign on a real Slurm of one node: munged, slurmctld and slurmd
# started by hand from a slurm.conf written into a temporary folder (no
# systemd, nothing under /etc touched), a campaign of 6 trials (two targets,
# three candidates, a short budget) submitted as one job array with
# `kbench campaign --slurm`, waited for, merged, and its matrix and array job
# ids printed. The daemons it started are stopped by their pids on any exit.
#   scripts/slurm-smoke.sh [BUILD_DIR]   (default: ${KB_BUILD:-build})
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
scripts/deps.sh --slurm
build=$(cd "${1:-${KB_BUILD:-build}}" && pwd)
[ -x "$build/kbench" ] || { echo "slurm-smoke: no $build/kbench; run scripts/build.sh" >&2; exit 1; }
tmp=$(mktemp -d /tmp/kb-slurm.XXXXXX)
chmod 755 "$tmp"
pids=()
stop() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${KB_SLURM_KEEP:-}" ] || rm -rf "$tmp"
}
trap stop EXIT
fail() {
  echo "slurm-smoke: $*" >&2
  for f in slurmctld.log slurmd.log munged.log; do
    [ -f "$tmp/$f" ] && { echo "--- $f" >&2; tail -20 "$tmp/$f" >&2; }
  done
  exit 1
}

# A free TCP port: slurmctld's and slurmd's must not meet another Slurm.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
host=$(hostname -s)
mkdir -p "$tmp/state" "$tmp/spool" "$tmp/munge"
chmod 700 "$tmp/munge"
dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge/munge.key"
sock="$tmp/munge/munge.sock"
munged -F -f --key-file="$tmp/munge/munge.key" --socket="$sock" --pid-file="$tmp/munge/munged.pid" \
  --seed-file="$tmp/munge/seed" --log-file="$tmp/munged.log" >>"$tmp/munged.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || fail "munged did not start"

cat >"$tmp/slurm.conf" <<EOF
ClusterName=kbsmoke
SlurmctldHost=$host
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
MessageTimeout=5
PlugStackConfig=/dev/null
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=smoke Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$tmp/slurm.conf"
slurmctld -D -i >/dev/null 2>&1 &
pids+=($!)
slurmd -D >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  timeout 5 sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' && break
  sleep 0.2
done
timeout 5 sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' || fail "the node did not come up"

# Two targets x three candidates, one small case each.
mkdir -p "$tmp/campaign"
cat >"$tmp/campaign/smoke.json" <<EOF
{"out": "results", "targets": ["posting-intersect", "pq-l2"], "budget": 0.2,
 "cases": {"posting-intersect": "k=2,n=4096,ratio=16/sparse",
           "pq-l2": "n=4096,d=128,m=16/uniform"},
 "max_parallel": 2,
 "builds": [{"name": "native", "dir": "$build",
             "candidates": ["plugins/{target}/portable.so", "plugins/{target}/baseline.so",
                            "plugins/{target}/avx2.so"]}]}
EOF
n=$("$build/kbench" campaign "$tmp/campaign/smoke.json" --list | wc -l)
[ "$n" -ge 6 ] || fail "the smoke campaign has $n trials, expected 6"
"$build/kbench" campaign "$tmp/campaign/smoke.json" --slurm -- --time=5 | tee "$tmp/jobs"
jobs=$(cut -f2 "$tmp/jobs" | paste -sd,)
[ -n "$jobs" ] || fail "kbench campaign --slurm printed no job id"
for _ in $(seq 170); do
  [ -z "$(timeout 5 squeue -h -j "$jobs" 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(timeout 5 squeue -h -j "$jobs" 2>/dev/null)" ] || fail "job $jobs still queued after 170 s"
res="$tmp/campaign/results"
got=$(ls "$res"/*.json 2>/dev/null | wc -l)
[ "$got" -eq "$n" ] || { cat "$res"/slurm-*.out >&2 || true; fail "$got of $n results"; }
"$build/kbench" merge "$res" --ledger "$tmp/results.tsv" --markdown "$tmp/matrix.md" \
  --json "$tmp/merged.json" || fail "kbench merge failed"
echo "array job ids: $(grep -ho '"slurm_job_id": "[^"]*"' "$res"/*.json | cut -d'"' -f4 | sort -t_ -k2n | paste -sd' ')"
cat "$tmp/matrix.md"
# kbench report plots from the merged ledger (gnuplot-nox, which .ci/run installs).
if command -v gnuplot >/dev/null; then
  "$build/kbench" report --target pq-l2 --ledger "$tmp/results.tsv" --plot "$tmp/pq-l2.png" ||
    fail "kbench report could not plot the merged ledger"
  [ -s "$tmp/pq-l2.png" ] || fail "kbench report wrote no plot"
  echo "kbench report: plotted pq-l2 from the merged ledger ($(wc -c <"$tmp/pq-l2.png") bytes)"
fi
echo "slurm-smoke: ok ($n trials in job $jobs)"
