#!/bin/sh
# readme-isa.sh README.md -- every README example that runs a kernel built for
# one instruction set says which CPU it needs: a command that trials,
# verifies, watches or serves avx512.so carries "needs AVX-512", avx2.so
# "needs AVX2", on its line or its backslash-continued lines. (`info` and
# `pick` run on any CPU: they name what is missing.) The old name simd.so
# must not appear at all.
set -eu
readme=${1:?usage: readme-isa.sh README.md}
awk '
    /\\$/ { cmd = cmd substr($0, 1, length($0) - 1) " "; if (!start) start = NR; next }
    {
        line = cmd $0; at = start ? start : NR; cmd = ""; start = 0
        if (line ~ /simd\.so/) { printf "README.md:%d: names simd.so, which no longer exists: name avx512.so\n", at; bad = 1 }
        if (line !~ /kbench (trial|verify|watch|serve)/) next
        if (line ~ /avx512\.so/ && line !~ /needs AVX-512/) {
            printf "README.md:%d: runs avx512.so without saying it needs AVX-512: add \"(needs AVX-512)\"\n", at; bad = 1
        }
        if (line ~ /avx2\.so/ && line !~ /needs AVX2/) {
            printf "README.md:%d: runs avx2.so without saying it needs AVX2: add \"(needs AVX2)\"\n", at; bad = 1
        }
    }
    END { exit bad }
' "$readme"
