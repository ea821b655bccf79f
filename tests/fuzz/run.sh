#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and
# runs each for SECONDS (default 10), one after the other, from three corpus
# directories: the inputs a run grows (build-fuzz/corpus/TARGET, kept for
# the next run, not in the repo), the minimised corpus kept in the repo
# (tests/fuzz/corpus/TARGET) and seeds made here from tests/fixtures and
# config/ (build-fuzz/seeds/TARGET). Exits non-zero when a target finds a
# crash, a timeout (an input that takes OUTPOST_FUZZ_TIMEOUT seconds, 30 by
# default: generous, for a machine whose other builds starve a niced run; the
# config loader's largest inputs take 2 s under ASan by themselves) or a leak;
# the input that did it is left in build-fuzz/artifacts/.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]   run each TARGET (default: all) SECONDS
#   tests/fuzz/run.sh --merge [TARGET...]     minimise what the runs grew, with the
#                                             repo's corpus and the seeds, into
#                                             tests/fuzz/corpus/TARGET (inputs over
#                                             16 KiB are left out)
#
# Targets: fuzz_dns fuzz_dns_tcp fuzz_demux fuzz_engine fuzz_config fuzz_asn
# fuzz_values fuzz_report. scripts/test runs a few seconds each; a long run is
# `nice -n 19 tests/fuzz/run.sh 600 TARGET`, then `tests/fuzz/run.sh --merge TARGET`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
all=(fuzz_dns fuzz_dns_tcp fuzz_demux fuzz_engine fuzz_config fuzz_asn fuzz_values fuzz_report)
usage() { echo "usage: $0 [SECONDS] [TARGET...] | $0 --merge [TARGET...]" >&2; exit 64; }
merge=0
seconds=10
if [[ ${1:-} == --merge ]]; then
  merge=1
  shift
elif [[ ${1:-} =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do [[ " ${all[*]} " == *" $t "* ]] || usage; done
build=${OUTPOST_FUZZ_BUILD:-$root/build-fuzz}
fixtures=$root/tests/fixtures
kept=$root/tests/fuzz/corpus
max_kept_bytes=16384

# The longest input each target is given: a whole datagram (or TCP stream
# piece) for the packet targets, less for the text parsers, so runs stay fast.
max_len() {
  case $1 in
    fuzz_dns | fuzz_dns_tcp | fuzz_demux | fuzz_engine) echo 65535 ;;
    fuzz_config | fuzz_asn | fuzz_report) echo 65536 ;;
    fuzz_values) echo 4096 ;;
  esac
}

command -v clang++ >/dev/null || { echo "fuzz: needs clang++ (scripts/setup installs it)" >&2; exit 1; }
mkdir -p "$build"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root/tests/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >"$build/cmake.log" 2>&1 ||
  { cat "$build/cmake.log" >&2; exit 1; }
ninja -C "$build" -j2 "${targets[@]}" >"$build/ninja.log" 2>&1 || { tail -30 "$build/ninja.log" >&2; exit 1; }

# The fixtures' bytes, once: build-fuzz/fixtures/NAME (pairs of hex digits, '#' comments).
bins=$build/fixtures
mkdir -p "$bins"
for f in "$fixtures"/*.hex; do
  b=${f##*/}
  b=$bins/${b%.hex}
  [[ $b -nt $f ]] || sed 's/#.*//' "$f" | xxd -r -p >"$b"
done
# byte N...: each N as one byte; be16 N: N as two bytes, big-endian (no subshells: seeds are many).
byte() {
  local hex n
  for n in "$@"; do
    printf -v hex '\\x%02x' $((n & 255))
    printf "$hex"
  done
}
be16() { byte $(($1 >> 8)) "$1"; }
packet_fixtures() { for f in "$bins"/*; do [[ ${f##*/} == dns_* ]] || echo "$f"; done; }

make_seeds() {
  local dir=$build/seeds/$1 f base n op which i
  rm -rf "$dir"; mkdir -p "$dir"
  case $1 in
    fuzz_dns)
      cp "$bins"/dns_* "$dir/" ;;
    fuzz_dns_tcp)
      # Byte 0: how many one-byte cut sizes follow; then the stream.
      for f in "$bins"/dns_*; do
        base=${f##*/}
        n=$(stat -c %s "$f")
        { byte 0; be16 "$n"; cat "$f"; } >"$dir/$base.whole"
        { byte 3 1 7 64; be16 "$n"; cat "$f"; be16 "$n"; cat "$f"; } >"$dir/$base.two"
        { byte 1 200; be16 "$((n + 40))"; cat "$f"; } >"$dir/$base.short"
      done
      { byte 2 1 1; be16 0; be16 0; be16 2; printf 'ab'; } >"$dir/empty_messages" ;;
    fuzz_demux)
      # Every IP datagram fixture, bare and behind an Ethernet header of its family.
      for f in $(packet_fixtures); do
        base=${f##*/}
        cp "$f" "$dir/$base"
        if [[ $(head -c1 "$f" | xxd -p) == 6* ]]; then n=0x86dd; else n=0x0800; fi
        { byte 2 0 0 0 0 1 2 0 0 0 0 2; be16 $n; cat "$f"; } >"$dir/$base.eth"
      done ;;
    fuzz_engine)
      # Records of 4 bytes (op, which, offset, patch length) and the patch:
      # each built frame about each datagram sent, from each sender; the
      # packet fixtures as raw frames; a clock step.
      for op in 1 2 3 4 5 6 7 9; do
        for which in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
          for i in 0 16 32 48; do byte "$op" $((which + i)) 1 0; done >"$dir/op$op-$which"
        done
      done
      for f in $(packet_fixtures); do
        n=$(stat -c %s "$f")
        ((n <= 255)) || continue
        { byte 0 0 0 "$n"; cat "$f"; byte 8 60 0 0; } >"$dir/raw-${f##*/}"
      done ;;
    fuzz_config)
      for f in "$root"/config/example.yaml "$root"/config/testdata/*.yaml; do cp "$f" "$dir/"; done ;;
    fuzz_asn)
      # Byte 0: even a table, odd a names file; 2 small bounds.
      for f in "$fixtures"/asn_small.txt "$fixtures"/netlab-pfx2as.txt; do
        { byte 0; cat "$f"; } >"$dir/$(basename "$f")"
        { byte 2; cat "$f"; } >"$dir/$(basename "$f").small"
      done
      { byte 1; cat "$fixtures"/asn_names_small.json; } >"$dir/names.json"
      { byte 3; cat "$fixtures"/asn_names_small.json; } >"$dir/names.json.small" ;;
    fuzz_report)
      # Records of every type the report reads, whole and cut short.
      cp "$fixtures"/report_records.jsonl "$dir/"
      head -c 1500 "$fixtures"/report_records.jsonl >"$dir/cut.jsonl" ;;
    fuzz_values)
      # Byte 0 mod 5: duration, size, probe method, a config field (byte 0 / 5 picks it), a command line.
      i=0
      for v in 500ms 1.5s 2562047h 1e-10s 0.000000001s 8760h 90s; do { byte 0; printf %s "$v"; } >"$dir/d$((i++))"; done
      for v in 1048576 512KiB 64MiB 2GiB 18446744073709551615 17179869183GiB; do
        { byte 1; printf %s "$v"; } >"$dir/s$((i++))"
      done
      for v in icmp dns tcp:443 tcp_connect:80 tcp:0443 tcp:65536; do { byte 2; printf %s "$v"; } >"$dir/m$((i++))"; done
      for which in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
        for v in 1000 1e-10 30s 0.5 2147483647; do { byte $((3 + 5 * which)); printf %s "$v"; } >"$dir/c$((i++))"; done
      done
      { byte 4; printf '%s\0' --count 1000 --parallel 2147483647 -W 2s --for 2562047h | head -c -1; } >"$dir/cli1"
      { byte 4; printf '%s\0' -c -1 --timeout=90s --for=2562047h | head -c -1; } >"$dir/cli2" ;;
  esac
}

# The seeds are made again only when a fixture, a config example or this script changed.
seeds_fresh() {
  local stamp=$build/seeds/$1.stamp
  [[ -e $stamp ]] && [[ -z $(find "$fixtures" "$root/config/testdata" "$root/config/example.yaml" \
    "${BASH_SOURCE[0]}" -newer "$stamp" -print -quit) ]]
}

stats() {
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb):' "$1" |
    sed 's/^stat::/  /'
}

status=0
for target in "${targets[@]}"; do
  seeds_fresh "$target" || { make_seeds "$target" && touch "$build/seeds/$target.stamp"; }
  mkdir -p "$build/corpus/$target" "$build/artifacts" "$kept/$target"
  if ((merge)); then
    fresh=$(mktemp -d "$build/merge-$target.XXXXXX")
    echo "fuzz: merging $target into tests/fuzz/corpus/$target"
    if "$build/$target" -merge=1 -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
        "$fresh" "$kept/$target" "$build/corpus/$target" "$build/seeds/$target" >"$build/$target.merge.log" 2>&1; then
      find "$fresh" -type f -size +"$max_kept_bytes"c -delete
      rm -rf "$kept/$target"
      mv "$fresh" "$kept/$target"
      chmod 755 "$kept/$target"
      echo "  kept: $(ls "$kept/$target" | wc -l) inputs, $(du -sk "$kept/$target" | cut -f1) KiB"
    else
      rm -rf "$fresh"
      status=1
      echo "fuzz: merging $target FAILED (log: $build/$target.merge.log)"
    fi
    continue
  fi
  log=$build/$target.log
  echo "fuzz: $target for ${seconds}s"
  if "$build/$target" -max_total_time="$seconds" -max_len="$(max_len "$target")" -print_final_stats=1 -timeout="${OUTPOST_FUZZ_TIMEOUT:-30}" \
      -rss_limit_mb=2048 -artifact_prefix="$build/artifacts/$target-" \
      "$build/corpus/$target" "$kept/$target" "$build/seeds/$target" >"$log" 2>&1; then
    stats "$log"
    echo "  corpus: $(ls "$build/corpus/$target" | wc -l) inputs grown, $(ls "$kept/$target" | wc -l) kept"
  else
    status=1
    echo "fuzz: $target FAILED (log: $log)"
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
  fi
done
exit $status
