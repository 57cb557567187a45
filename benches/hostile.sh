#!/usr/bin/env bash
# Linear time on hostile captures: writes each generated capture of
# tests/hostile.rs at scale 1 and scale 4 (examples/hostile_captures.rs), runs
# chattcp conns, diagnose and follow on both, and prints the time ratio (about
# 4 when the time is linear; 16 would be quadratic) and the peak RSS.
# Usage: benches/hostile.sh [DIR]   (default /var/tmp/chattcp-hostile)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/var/tmp/chattcp-hostile}
cargo build --release --quiet --bin chattcp --example hostile_captures
bin=target/release/chattcp
for s in 1 4; do
    [ -f "$dir/s$s/refused-connections.pcap" ] || target/release/examples/hostile_captures "$dir/s$s" "$s"
done
measure() { # prints "seconds peak_kib"
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f "%e %M" "$@" >/dev/null 2>/tmp/chattcp-hostile-time || true
        tail -1 /tmp/chattcp-hostile-time
    else
        local t0 t1
        t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s.%N)
        echo "$(echo "$t1 - $t0" | bc) 0"
    fi
}
printf '%-36s %-9s %9s %9s %7s %9s\n' capture command "scale 1" "scale 4" ratio "peak MiB"
for f in "$dir"/s1/*.pcap; do
    name=$(basename "$f")
    for cmd in "conns --threads 1" "diagnose --threads 1" "follow --conn 0"; do
        read -r t1 _ < <(measure $bin $cmd "$dir/s1/$name")
        read -r t4 m4 < <(measure $bin $cmd "$dir/s4/$name")
        ratio=$(awk -v a="$t1" -v b="$t4" 'BEGIN { if (a > 0) printf "%.1f", b / a; else print "-" }')
        printf '%-36s %-9s %8.2fs %8.2fs %7s %9d\n' "$name" "${cmd%% *}" "$t1" "$t4" "$ratio" $((m4 / 1024))
    done
done
