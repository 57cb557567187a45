#!/bin/sh
# Regenerate expected/<name>.tsv (tshark's per-packet TCP analysis) for every
# capture in this directory (chattcp's own example captures, see README.md).
# <name> is the capture's file name without its extension (.pcap, .pcapng or
# .cap).
#
# The tshark command line and options are EXACTLY those of the shared
# corpus's regen-expected.sh (../../shared/corpus/regen-expected.sh): empty
# personal configuration, relative sequence numbers, sequence analysis on, the
# same -e fields in the same order, -Y tcp, a header line.  The reference
# output was produced with TShark 4.0.17 (Debian 12 package).  Other tshark
# versions may differ in details of TCP analysis.
#
# expected/_tshark-status.tsv records tshark's exit status and first error
# line for every file.
#
# Usage: ./regen-expected.sh            (from anywhere)
#        TSHARK=/path/to/tshark ./regen-expected.sh
set -u
cd "$(dirname "$0")" || exit 1
TSHARK=${TSHARK:-tshark}

# Use an empty personal configuration so that user preferences cannot change
# the output.
cfg=$(mktemp -d)
trap 'rm -rf "$cfg"' EXIT
trap 'exit 130' INT TERM
WIRESHARK_CONFIG_DIR=$cfg
export WIRESHARK_CONFIG_DIR

dups=$(ls *.pcap *.pcapng *.cap 2>/dev/null | sed 's/\.[^.]*$//' | sort | uniq -d)
if [ -n "$dups" ]; then
    echo "error: captures share a base name (expected/<name>.tsv would collide): $dups" >&2
    exit 1
fi

mkdir -p expected
status=expected/_tshark-status.tsv
printf 'file\ttshark_exit\ttshark_error\n' > "$status"

for f in *.pcap *.pcapng *.cap; do
    [ -f "$f" ] || continue
    name=${f%.*}
    out=expected/$name.tsv
    err=$(mktemp)
    "$TSHARK" -n -r "$f" \
        -o tcp.relative_sequence_numbers:TRUE \
        -o tcp.analyze_sequence_numbers:TRUE \
        -T fields -E header=y -E separator=/t \
        -e frame.number -e tcp.stream -e tcp.flags.str -e tcp.seq -e tcp.ack -e tcp.len \
        -e tcp.analysis.retransmission -e tcp.analysis.fast_retransmission \
        -e tcp.analysis.spurious_retransmission -e tcp.analysis.out_of_order \
        -e tcp.analysis.lost_segment -e tcp.analysis.ack_lost_segment \
        -e tcp.analysis.keep_alive -e tcp.analysis.keep_alive_ack \
        -e tcp.analysis.duplicate_ack -e tcp.analysis.zero_window -e tcp.analysis.zero_window_probe -e tcp.analysis.zero_window_probe_ack \
        -e tcp.analysis.window_update -e tcp.analysis.window_full \
        -e tcp.completeness \
        -Y tcp > "$out" 2> "$err"
    rc=$?
    msg=$(grep -v 'Running as user' "$err" | tr '\n' ' ' | sed 's/[[:space:]]*$//' | tr '\t' ' ')
    rm -f "$err"
    printf '%s\t%s\t%s\n' "$f" "$rc" "$msg" >> "$status"
done
echo "wrote $(ls expected/*.tsv | grep -vc _tshark-status) expected files; see $status"
