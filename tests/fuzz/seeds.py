#!/usr/bin/env python3
"""Writes the generated seed inputs of tests/fuzz/corpus/{desc,spec,ledger,state,json}.

Each harness decodes its input with the byte layout its .c file describes;
these seeds are well-formed examples of that layout (a valid descriptor, a
valid spec, a real ledger...) plus one of each way to be wrong, so the
fuzzer starts deep instead of rediscovering the magic numbers. The elf
corpus is real .so files and the rest of the json corpus is real
`kbench trial --json` output; both were copied in, not generated.

usage: tests/fuzz/seeds.py [CORPUS_DIR]   (default: next to this file)
Files it writes are named gen-*; it never touches the others (crash
regressions, copied files, what a fuzz run added).
"""
import json
import os
import struct
import sys

MAGIC = 0x4C50424B


def u8(v):
    return struct.pack("<B", v)


def u16(v):
    return struct.pack("<H", v)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def f64(v):
    return struct.pack("<d", v)


def fstr(s):
    """fz_str: a length byte, then the bytes."""
    b = s.encode("latin-1") if isinstance(s, str) else s
    return u8(len(b)) + b


def mstr(s):
    """maybe_str: a selector byte (0 = NULL), then fz_str."""
    return u8(0) if s is None else u8(1) + fstr(s)


# ---- fuzz_desc ---------------------------------------------------------------
def plugin(magic=None, major=None, minor=0, size=80, target="pq-l2", name="avx512",
           version="1.0", cpu=0, fns=0x0F):
    sel = (1 if magic is None else 0) | (2 if major is None else 0)
    b = u8(0) + u8(sel)
    if magic is not None:
        b += u32(magic)
    if major is not None:
        b += u16(major)
    b += u16(minor)
    b += u8(size) if size < 0xF0 else u8(0xFF) + u32(size)
    b += u32(0)  # flags
    b += mstr(target) + mstr(name) + mstr(version) + u64(cpu) + u8(fns)
    return b


def wire(magic=MAGIC, major=1, minor=0, size=80, verify=1, cpu=0, target=b"pq-l2",
         name=b"avx512", version=b"1.0"):
    def field(s):
        return (s + b"\0" * 64)[:64]
    return (u8(1) + u32(magic) + u16(major) + u16(minor) + u32(size) + u32(verify) + u64(cpu)
            + field(target) + field(name) + field(version))


def desc_seeds():
    return {
        "valid": plugin(),
        "valid-no-verify": plugin(fns=0x0B, version=None),
        "newer-minor": plugin(minor=3, size=120),
        "huge-struct-size": plugin(size=0xFFFFFFF0),
        "struct-too-small": plugin(size=72),
        "header-only": plugin(size=12),
        "bad-magic": plugin(magic=0x12345678),
        "wrong-major": plugin(major=2),
        "null-target": plugin(target=None),
        "empty-name": plugin(name=""),
        "long-name": plugin(name="n" * 70),
        "name-63": plugin(name="n" * 63),
        "name-64": plugin(name="n" * 64),
        "unprintable": plugin(name="av\x1b[2Jx"),
        "high-bit": plugin(target="pq\xe9l2"),
        "null-run": plugin(fns=0x0D),
        "wire-valid": wire(),
        "wire-unterminated": wire(name=b"x" * 64),
        "wire-unprintable": wire(target=b"pq\nl2"),
        "wire-bad-magic": wire(magic=0),
    }


# ---- fuzz_spec ----------------------------------------------------------------
def spec(name="pq-l2", description="PQ asymmetric distances", upstream="faiss 1.7.4",
         params=("n", "d", "m"),
         buffers=(("codebook", 7, 1, 0), ("codes", 1, 2, 0), ("query", 7, 2, 0),
                  ("dist", 7, 3, 0)),
         cases=(("n=1024/uniform", 1, (1024, 128, 16), (4096, 16384, 128, 1024)),
                ("n=65536/clustered", 0, (65536, 128, 16), (4096, 1048576, 128, 65536))),
         rel_tol=1e-5, sel_extra=0, raw_header=None, shapes=None):
    # sel bits: 1 magic, 2 major, 4 struct_size, 8 flags=0, 16 generate, 32 rel_tol=0
    sel = (1 | 2 | 4 | 8 | 16) | sel_extra
    # raw_header: (sel, bytes before abi_minor, bytes after it), see the harness
    b = u8(sel if raw_header is None else raw_header[0])
    if raw_header is not None:
        b += raw_header[1]
    b += u16(0)  # abi_minor
    if raw_header is not None:
        b += raw_header[2]
    if not (sel & 32) and raw_header is None:
        b += f64(rel_tol)
    b += mstr(name) + mstr(description) + mstr(upstream)
    b += u8(len(params)) + u8(0) + b"".join(mstr(p) for p in params)
    b += u8(len(buffers)) + u8(0)
    for bn, dt, role, fl in buffers:
        b += mstr(bn) + u8(dt) + u8(role) + u8(fl)
    b += u8(len(cases)) + u8(0)
    for cn, fl, ps, lens in cases:
        b += mstr(cn) + u8(fl)
        b += bytes((list(ps) + [0] * 8)[:8]) if all(p < 256 for p in ps) else bytes(8)
        for i in range(8):
            v = lens[i] if i < len(lens) else 1
            b += u8(v) if v < 0xF0 else u8(0xFF) + u64(v)
        b += u8(0)  # bytes/flops per call: defaults
    if shapes is not None:
        # ABI 1.1: (sel, ranges as (min, max, multiple_of, flags), distributions,
        # max_case_bytes < 2^16, the shape string parsed against the spec)
        ssel, ranges, dists, cap, text = shapes
        b += u8(ssel)
        for lo, hi, mult, fl in ranges:
            b += u8(lo & 0xFF) + u8(0) + u8(hi - lo) + u8(mult) + u8(fl)
        b += u8(len(dists)) + b"".join(mstr(d) for d in dists)
        b += u8(0) + u16(cap) + fstr(text)
    return b


def spec_seeds():
    pi_bufs = (("lists", 3, 2, 0), ("lengths", 3, 2, 0), ("out", 3, 3, 1))
    return {
        "valid-pq": spec(),
        "valid-variable-output": spec(name="posting-intersect", params=("k", "n"),
                                      buffers=pi_bufs,
                                      cases=(("k=2/dense", 1, (2, 200), (400, 2, 200)),)),
        "no-call-input": spec(buffers=(("a", 7, 1, 0), ("out", 7, 3, 0))),
        "no-output": spec(buffers=(("a", 7, 2, 0),)),
        "roles-out-of-order": spec(buffers=(("q", 7, 2, 0), ("cb", 7, 1, 0),
                                            ("out", 7, 3, 0))),
        "variable-input": spec(buffers=(("q", 7, 2, 1), ("out", 7, 3, 0))),
        "bad-dtype": spec(buffers=(("q", 9, 2, 0), ("out", 7, 3, 0))),
        "dup-param": spec(params=("n", "n")),
        "dup-buffer": spec(buffers=(("q", 7, 2, 0), ("q", 7, 3, 0))),
        "dup-case": spec(cases=(("a", 1, (1,), (1, 1, 1, 1)), ("a", 1, (1,), (1, 1, 1, 1)))),
        "zero-length": spec(cases=(("a", 1, (1,), (0, 1, 1, 1)),)),
        "huge-length": spec(cases=(("a", 1, (1,), (1, 2 ** 40 + 1, 1, 1)),)),
        "bad-name": spec(name="PQ L2"),
        "null-description": spec(description=None),
        "newline-description": spec(description="two\nlines"),
        "null-param-name": spec(params=("n", None)),
        "nine-params": spec(params=tuple("abcdefghi")),
        "nan-tol": spec(rel_tol=float("nan")),
        "bad-magic": spec(raw_header=(0x3E, u32(0xDEADBEEF), b"")),
        "small-struct": spec(raw_header=(0x3B, b"", u8(40))),
        "shape-valid": spec(shapes=(1, ((1, 200, 1, 0), (1, 64, 1, 0), (1, 16, 1, 2)),
                                    ("uniform", "clustered"), 60000,
                                    "m=4,n=100,d=8/uniform")),
        "shape-default-left-out": spec(shapes=(1, ((1, 200, 1, 0), (1, 64, 1, 0), (0, 16, 1, 2)),
                                               ("uniform",), 60000, "n=100,d=8/uniform")),
        "shape-out-of-range": spec(shapes=(1, ((1, 200, 1, 0), (1, 64, 4, 1), (1, 16, 1, 0)),
                                           ("uniform",), 60000, "n=0,d=8,m=4/uniform")),
        "shape-over-cap": spec(shapes=(1, ((1, 200, 1, 0), (1, 64, 1, 0), (1, 16, 1, 0)),
                                       ("uniform",), 100, "n=200,d=8,m=4/uniform")),
        "shape-no-shape-fn": spec(shapes=(9, ((1, 200, 1, 0), (1, 64, 1, 0), (1, 16, 1, 0)),
                                          ("uniform",), 100, "n=2,d=8,m=4/uniform")),
    }


# ---- fuzz_ledger --------------------------------------------------------------
HEADER = ("timestamp\ttarget\tcandidate\tdigest\toracle_digest\tcommit\tstatus\tgeomean_ratio"
          "\tci90_low\tci90_high\tworst_ratio\ttrial_seconds\tdescription\n")
LINE = ("2026-01-02T03:04:05Z\tpq-l2\tbuild/plugins/pq-l2/avx512.so\t0123456789abcdef\t"
        "fedcba9876543210\tn/a\tkeep\t0.5012\t0.4900\t0.5100\t0.6000\t2.100\tfirst try\n")
BEST_LINE = LINE.replace("first try", "[vs best 0123456789abcdef; oracle_ratio 0.4500] again")


def ledger(mode, old, desc="fuzz", cand="x.so", target="pq-l2", status=0,
           ratios=(0.9, 0.85, 0.95, 1.1, 1.5)):
    b = u8(mode) + fstr(desc) + fstr(cand) + fstr(target) + u8(status)
    b += b"".join(f64(r) for r in ratios)
    return b + (old.encode("latin-1") if isinstance(old, str) else old)


def ledger_seeds():
    return {
        "new-file": ledger(0, ""),
        "header-only": ledger(1, ""),
        "two-lines": ledger(3, LINE + BEST_LINE),
        "incomplete-last-line": ledger(1, LINE[:-20]),
        "not-a-ledger": ledger(0, "#!/bin/sh\necho hi\n"),
        "header-no-newline": ledger(0, HEADER[:-1]),
        "short-line": ledger(1, "a\tb\tc\n\n\t\n"),
        "tabs-in-description": ledger(1, LINE, desc="a\tb\nc\rd\x1b[2J"),
        "nan-ratios": ledger(1, "", status=1, ratios=(float("nan"), float("inf"),
                                                      -float("inf"), 0.0, float("nan"))),
        "rejected": ledger(1, LINE, status=6),
        "nul-in-file": ledger(1, "a\0b\tc\n"),
        "long-description": ledger(1, LINE, desc="d" * 255, cand="/" + "c" * 254),
    }


# ---- fuzz_state -----------------------------------------------------------------
MACHINE = ("calibrated: 2026-01-02T03:04:05Z\nbw_l1_gbps: 200.00\nbw_l2_gbps: 100.00\n"
           "bw_l3_gbps: 50.00\nbw_dram_gbps: 20.00\nl1_bytes: 49152\nl2_bytes: 1048576\n"
           "l3_bytes: 33554432\ndram_bytes: 1073741824\npeak_gflops: 90.00\n")
NOISE = ("calibrated: 2026-01-02T03:04:05Z\nnoise_pct: 1.234\naa_geomean_min: 0.9900\n"
         "aa_geomean_max: 1.0100\naa_trials: 20\n")
BEST = ("# kbench best-so-far of fz; written by `kbench trial --against best`, do not edit\n"
        "target\tfz\ndigest\t85497d51eee76924\noracle_digest\t29f5415b87c5c123\n"
        "oracle_ratio\t0.440760\nsource\tplugins/fz/portable.so\nledger\t" + LINE)


def state_seeds():
    return {
        "machine": u8(0) + MACHINE.encode(),
        "noise": u8(0x7C) + NOISE.encode(),
        "best-matching": u8(2) + BEST.encode(),
        "best-other-so": u8(1) + BEST.encode(),
        "best-no-so": u8(0) + BEST.encode(),
        "all-in-one": u8(0x22) + (MACHINE + NOISE + BEST).encode(),
        "nan-inf": u8(4) + b"bw_l1_gbps: nan\nnoise_pct: inf\npeak_gflops: 1e999\n",
        "long-lines": u8(8) + b"calibrated: " + b"x" * 600 + b"\nnoise_pct:" + b" " * 300 + b"1\n",
        "no-value": u8(0) + b"noise_pct:\ncalibrated:\ndigest\t\n",
        "garbage": u8(2) + bytes(range(256)),
    }


# ---- fuzz_json -------------------------------------------------------------------
def json_seeds():
    base = {"kbench": {"status": "discard", "target": "pq-l2", "candidate": "a.so",
                       "reason": "slower", "geomean_ratio": 1.1, "ci90_low": 1.0,
                       "ci90_high": 1.2, "seed": "0x00000000000000ff",
                       "cases": [{"name": "n=1/u", "samples": 10, "calls_per_batch": 4,
                                  "cand_ns_per_call": 5.5, "base_ns_per_call": 5.0,
                                  "ratio": 1.1}]}}
    hostile = json.loads(json.dumps(base))
    hostile["kbench"].update({"status": "keep", "reason": "a\nb\tc\u001b[2J",
                              "candidate": "\u00e9\u4e2d" * 200, "worst_case": "x\ny",
                              "oracle_ratio": 0.5, "oracle_ratio_source": "measured",
                              "best": {"against": "best", "digest": "0123456789abcdef",
                                       "promoted": True, "note": "n\no\u0001"}})
    many = json.loads(json.dumps(base))
    many["kbench"]["cases"] = [{"name": "c%d" % i, "samples": -1, "calls_per_batch": 1e300}
                               for i in range(70)]
    bad = {"kbench": {"status": 3}}
    return {
        "minimal": json.dumps(base).encode(),
        "hostile-strings": json.dumps(hostile).encode(),
        "seventy-cases": json.dumps(many).encode(),
        "status-not-string": json.dumps(bad).encode(),
        "no-kbench": b'{"error": "x", "exit_code": 64}',
        "case-without-name": b'{"kbench":{"status":"keep","cases":[{},1,null]}}',
    }


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "corpus")
    for harness, seeds in (("desc", desc_seeds()), ("spec", spec_seeds()),
                           ("ledger", ledger_seeds()), ("state", state_seeds()),
                           ("json", json_seeds())):
        d = os.path.join(root, harness)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, "gen-" + name), "wb") as f:
                f.write(data)
        print("%s: %d seeds" % (d, len(seeds)))


if __name__ == "__main__":
    main()
