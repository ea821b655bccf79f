#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and
# runs each for SECONDS (default 10) from a seed corpus made of the packet
# fixtures in tests/fixtures. Exits non-zero when a target finds a crash; the
# input that did it is left in build-fuzz/artifacts/.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     TARGET: fuzz_dns, fuzz_demux (default: both)
#
# The corpus a run grows is kept in build-fuzz/corpus/TARGET and used by the
# next run: scripts/test runs a few seconds each, `tests/fuzz/run.sh 600` longer.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${1:-10}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 64; }
shift $(($# ? 1 : 0))
targets=("$@")
((${#targets[@]})) || targets=(fuzz_dns fuzz_demux)
build=${OUTPOST_FUZZ_BUILD:-$root/build-fuzz}
fixtures=$root/tests/fixtures

command -v clang++ >/dev/null || { echo "fuzz: needs clang++ (scripts/setup installs it)" >&2; exit 1; }
mkdir -p "$build"
cmake -S "$root/tests/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ >"$build/cmake.log" 2>&1 ||
  { cat "$build/cmake.log" >&2; exit 1; }
ninja -C "$build" -j2 "${targets[@]}" >/dev/null

# hex_to_bin FILE: a fixture's bytes (pairs of hex digits, '#' comments).
hex_to_bin() { sed 's/#.*//' "$1" | xxd -r -p; }

# Seeds: DNS messages for fuzz_dns; for fuzz_demux every IP datagram fixture,
# bare and behind an Ethernet header (IPv4 ethertype).
make_seeds() {
  local dir=$build/seeds/$1 f base
  rm -rf "$dir"; mkdir -p "$dir"
  case $1 in
    fuzz_dns)
      for f in "$fixtures"/dns_*.hex; do hex_to_bin "$f" >"$dir/$(basename "$f" .hex)"; done ;;
    fuzz_demux)
      for f in "$fixtures"/*.hex; do
        base=$(basename "$f" .hex)
        [[ $base == dns_* ]] && continue
        hex_to_bin "$f" >"$dir/$base"
        { printf '020000000001020000000002''0800' | xxd -r -p; hex_to_bin "$f"; } >"$dir/$base.eth"
      done ;;
  esac
}

status=0
for target in "${targets[@]}"; do
  make_seeds "$target"
  mkdir -p "$build/corpus/$target" "$build/artifacts"
  log=$build/$target.log
  echo "fuzz: $target for ${seconds}s"
  if "$build/$target" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$build/artifacts/$target-" "$build/corpus/$target" "$build/seeds/$target" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb):' "$log" |
      sed 's/^stat::/  /'
    echo "  corpus: $(ls "$build/corpus/$target" | wc -l) inputs"
  else
    status=1
    echo "fuzz: $target FAILED (log: $log)"
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
  fi
done
exit $status
