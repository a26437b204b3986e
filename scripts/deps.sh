#!/usr/bin/env bash
# Installs the Debian 12 packages kbench needs to build and test. Root or sudo.
# Skips apt entirely when everything is already installed.
#   --slurm: also Slurm, munge and gnuplot-nox, which only scripts/slurm-smoke.sh needs
set -euo pipefail
pkgs=(build-essential cmake pkg-config libcmocka-dev libxxhash-dev libffi-dev
      libseccomp-dev libjansson-dev libfaiss-dev libbenchmark-dev libstreamvbyte-dev
      libopenblas-dev)
[ "${1:-}" != --slurm ] || pkgs+=(slurm-wlm munge gnuplot-nox)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "kbench: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
