#!/usr/bin/env bash
# Runs every fuzz target in turn for SECONDS (default 300) each, seeding the
# corpora from real captures first, and prints each target's last coverage
# line. Stable Rust works through RUSTC_BOOTSTRAP (cargo fuzz passes -Z flags).
# Usage: fuzz/run-all.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-300}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(capture_reader pipeline conversation http event_stream websocket compression script_host)
fi
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build -O
if [ ! -d corpus/pipeline ]; then
    cargo run --release --bin make_seeds -- corpus ../captures/*.pcap ../tests/data/rerecorded/*.pcap \
        $(ls ../../shared/corpus/*.pcap ../../shared/corpus/*.pcapng ../../shared/corpus/*.cap 2>/dev/null || true)
fi
mkdir -p logs
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    # -malloc_limit_mb: one allocation larger than this is a finding (the
    # engine's own bounds are 64 MiB at most). -rss_limit_mb is generous:
    # libFuzzer keeps its corpus in memory and ASan quarantines freed blocks.
    cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -timeout=10 \
        -malloc_limit_mb=256 -rss_limit_mb=2048 \
        -print_final_stats=1 >"logs/$t.log" 2>&1 || echo "$t: FINDING (see fuzz/logs/$t.log and fuzz/artifacts/$t)"
    echo "$t: $(grep -E '^#[0-9]+' "logs/$t.log" | tail -1)"
    grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "logs/$t.log" | tr '\n' ' '
    echo
done
