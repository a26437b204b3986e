#!/bin/sh
# campaign.sh BUILD_DIR: `kbench campaign` splits a manifest's trials into
# shards (each trial in exactly one, the same way every time), a rerun skips
# the trials whose result is complete, and `kbench merge` writes the same
# files however often the same results are merged, and leaves out (and
# names) a result judged by another oracle digest than its target's others.
# Two cheap trials on one small case keep it to seconds.
set -eu
build=$(cd "$1" && pwd)
k=$build/kbench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
cd "$tmp"

# ---- shards: a matrix of 2 targets x 2 candidates x 2 repeats, listed only
cat >matrix.json <<EOF
{"out": "res", "targets": ["posting-intersect", "pq-l2"], "repeats": 2,
 "builds": [{"name": "b", "dir": "$build",
             "candidates": ["plugins/{target}/portable.so", "plugins/{target}/baseline.so"],
             "constraint": "avx512f", "partition": "fast"}], "max_parallel": 3}
EOF
"$k" campaign --help | grep -q -- "--shard I/N" || fail "kbench campaign --help says nothing of --shard"
"$k" merge --help | grep -q -- "--markdown FILE" || fail "kbench merge --help says nothing of --markdown"
"$k" campaign matrix.json --list | cut -f2 | sort >all
[ "$(wc -l <all)" -eq 8 ] || fail "the matrix has $(wc -l <all) trials, expected 8"
for n in 1 3 8 11; do
    : >union
    i=0
    while [ $i -lt $n ]; do
        "$k" campaign matrix.json --list --shard $i/$n | cut -f2 >>union
        i=$((i + 1))
    done
    sort union >union.s
    cmp -s all union.s || fail "the $n shards do not hold every trial exactly once"
done
"$k" campaign matrix.json --list --shard 1/3 >a
"$k" campaign matrix.json --list --shard 1/3 >b
cmp -s a b || fail "--shard 1/3 listed different trials twice"
SLURM_ARRAY_TASK_ID=1 "$k" campaign matrix.json --list --shard auto/3 >c
cmp -s a c || fail "--shard auto/3 with SLURM_ARRAY_TASK_ID=1 is not shard 1/3"
JOB_COMPLETION_INDEX=1 "$k" campaign matrix.json --list --shard auto/3 >c
cmp -s a c || fail "--shard auto/3 with JOB_COMPLETION_INDEX=1 is not shard 1/3"
rc=0
"$k" campaign matrix.json --list --shard 3/3 2>err || rc=$?
[ $rc -eq 64 ] && grep -q -- "--shard" err || fail "--shard 3/3 was not refused (rc $rc)"
echo '{"targets": ["pq-l2"], "candidate": ["x.so"]}' >typo.json
rc=0
"$k" campaign typo.json --list --out res 2>err || rc=$?
[ $rc -eq 64 ] && grep -q '"candidate"' err || fail "an unknown manifest member was not named"

# ---- --slurm: the script of one array, submitted by a stand-in sbatch
mkdir bin
printf '#!/bin/sh\necho "$@" >"%s/sbatch.args"\necho "42;cluster"\n' "$tmp" >bin/sbatch
chmod +x bin/sbatch
PATH="$tmp/bin:$PATH" "$k" campaign matrix.json --slurm -- --time=5 >slurm.out ||
    fail "--slurm failed: $(cat slurm.out)"
[ "$(cut -f2 slurm.out)" = 42 ] || fail "--slurm did not print the job id: $(cat slurm.out)"
grep -q -- '--time=5' sbatch.args || fail "the sbatch options were not passed: $(cat sbatch.args)"
sb=res/campaign-b.sbatch
for want in '#SBATCH --array=0-7%3' '#SBATCH --exclusive' '#SBATCH --constraint=avx512f' \
    '#SBATCH --partition=fast' '--shard "$SLURM_ARRAY_TASK_ID/8"' "--build 'b'"; do
    grep -qF -- "$want" $sb || fail "the sbatch script lacks $want: $(cat $sb)"
done
rm -rf res

# ---- resume: two trials, then a rerun that runs none
cat >small.json <<EOF
{"out": "res", "targets": ["posting-intersect"], "budget": 0.1,
 "cases": "k=2,n=4096,ratio=16/sparse",
 "builds": [{"name": "b", "dir": "$build",
             "candidates": ["plugins/{target}/portable.so", "plugins/{target}/baseline.so"]}]}
EOF
SLURM_ARRAY_JOB_ID=7 SLURM_ARRAY_TASK_ID=3 "$k" campaign small.json >run1 || fail "the campaign failed: $(cat run1)"
[ "$(grep -c '^ran' run1)" -eq 2 ] || fail "expected 2 trials run: $(cat run1)"
[ "$(ls res | wc -l)" -eq 2 ] || fail "expected 2 result files: $(ls res)"
cat res/*.json | cksum >sum1
"$k" campaign small.json >run2
grep -q '^ran' run2 && fail "a rerun ran a trial again: $(cat run2)"
[ "$(grep -c '^done' run2)" -eq 2 ] || fail "a rerun did not find both results: $(cat run2)"
cat res/*.json | cksum >sum2
cmp -s sum1 sum2 || fail "a rerun changed the results"
grep -q '"node"' res/*portable*.json && grep -q '"kbench_version"' res/*portable*.json ||
    fail "a result lacks the node or the kbench version"
grep -q '"slurm_job_id": "7_3"' res/*portable*.json || fail "a result lacks slurm_job_id 7_3"
# a result cut short (as if written by something else than the rename) is run again
f=$(ls res/*baseline*.json)
head -c 100 "$f" >cut && mv cut "$f"
"$k" campaign small.json >run3
[ "$(grep -c '^ran' run3)" -eq 1 ] || fail "a cut result was not run again: $(cat run3)"

# ---- merge: twice, and with a copy of every result, writes the same files
"$k" merge res --ledger l1 --markdown m1 --json j1 -q || fail "merge failed"
"$k" merge res --ledger l2 --markdown m2 --json j2 -q
mkdir copy && cp res/*.json copy/
"$k" merge res copy --ledger l3 --markdown m3 --json j3 -q
for x in l m j; do
    cmp -s ${x}1 ${x}2 && cmp -s ${x}1 ${x}3 || fail "merging the same results again changed $x"
done
[ "$(head -1 l1 | cut -f1)" = timestamp ] || fail "the ledger has no header"
[ "$(wc -l <l1)" -eq 3 ] || fail "the ledger should hold 2 trials: $(cat l1)"
grep -q 'portable.so' m1 || fail "the matrix lacks the portable row: $(cat m1)"
"$k" log --ledger l1 >log || fail "kbench log cannot read the merged ledger: $(cat log)"

# ---- merge: a result of another oracle digest is named and left out
mkdir other
f=$(ls res/*portable*.json)
sed -e 's/"oracle_digest": "[0-9a-f]*"/"oracle_digest": "00000000deadbeef"/' \
    -e 's/portable.so#0/portable.so#7/' "$f" >other/odd.json
rc=0
"$k" merge res other --ledger l4 --json j4 -q 2>err || rc=$?
[ $rc -eq 1 ] || fail "a digest mismatch exited $rc, expected 1"
grep -q 'other/odd.json' err && grep -q '00000000deadbeef' err ||
    fail "the mismatch was not named: $(cat err)"
cmp -s l1 l4 || fail "the mismatched result was mixed into the ledger"
grep -q '"left_out": \[\]' j4 && fail "the JSON does not list the result left out"
echo ok
