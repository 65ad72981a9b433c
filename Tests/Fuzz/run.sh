#!/usr/bin/env bash
# nvmegate's fuzz targets: libFuzzer with AddressSanitizer, one binary for all targets.
#
#   Tests/Fuzz/run.sh --list           the target names, one a line
#   Tests/Fuzz/run.sh NAME SECONDS     build (incrementally), then fuzz NAME for SECONDS;
#                                      exits non-zero on any finding (crash, broken
#                                      invariant, memory error, leak, timeout, out of memory)
#
# The committed seeds (Corpus/NAME; for `policy`, the shipped Policies/) are read, never
# written; what the run learns goes to .build/corpus/NAME and findings to .build/findings/
# (both ignored by git). Reproduce a finding with: Tests/Fuzz/.build/release/nvmegate-fuzz NAME FILE
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
targets=(decide ioctl policy emulator ranges wire)

if [ "${1:-}" = "--list" ]; then
    printf '%s\n' "${targets[@]}"
    exit 0
fi
if [ $# -ne 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]] || ! printf '%s\n' "${targets[@]}" | grep -qx -- "$1"; then
    echo "usage: $0 --list | NAME SECONDS   (NAME: ${targets[*]})" >&2
    exit 2
fi
name="$1" seconds="$2"

# libFuzzer without its main (the binary's main picks the target), from the toolchain's clang.
swiftc="$(readlink -f "$(command -v swiftc)")"
fuzzer="$(ls "$(dirname "$swiftc")"/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-"$(uname -m)".a | head -1)"
coverage=edge,indirect-calls,trace-cmp,inline-8bit-counters,pc-table
swift build -c release --package-path "$here" --scratch-path "$here/.build" \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage="$coverage" \
    -Xcxx -fsanitize=address -Xcxx -fsanitize-coverage=inline-8bit-counters,pc-table,trace-cmp \
    -Xlinker --whole-archive -Xlinker "$fuzzer" -Xlinker --no-whole-archive -Xlinker -lstdc++ \
    2>&1 | grep -v "Cannot export local symbol" >&2

corpus="$here/.build/corpus/$name" findings="$here/.build/findings"
mkdir -p "$corpus" "$findings"
options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
         -artifact_prefix="$findings/$name-")
[ -f "$here/Corpus/$name.dict" ] && options+=(-dict="$here/Corpus/$name.dict")
# TOMLKit leaks what its C++ bridge hands to Swift (about 1.5 KB a parse): over ten minutes of
# `policy` that is gigabytes, which is the library's leak, not an input's.
[ "$name" = policy ] && options+=(-rss_limit_mb=8192)
# Leaks count as findings, except the policy parser library's own (see the file).
export LSAN_OPTIONS="suppressions=$root/.ci/lsan-suppressions.txt:print_suppressions=0"
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=1"
# libFuzzer reports a crash itself; Swift's backtracer would only get in its way.
export SWIFT_BACKTRACE=enable=no
# The seeds: Corpus/NAME (the policy target's are the shipped Policies/ instead).
if [ "$name" = policy ]; then seeds=("$root/Policies"); else seeds=("$here/Corpus/$name"); fi
[ -d "${seeds[0]}" ] || { echo "$0: no seeds at ${seeds[0]}" >&2; exit 2; }
exec "$here/.build/release/nvmegate-fuzz" "$name" "${options[@]}" "$corpus" "${seeds[@]}"
