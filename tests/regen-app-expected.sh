#!/bin/sh
# Regenerate tests/expected-app/<name>.tsv: tshark's reading of every HTTP
# message and WebSocket frame in captures/*.pcap and ../shared/corpus/*.pcap*
# (and *.cap), for tests/app_agreement.rs: HTTP over TCP only (chattcp
# reads TCP; SSDP's HTTP over UDP is left out).  <name> is the capture's file name
# without its extension; a file where tshark finds no HTTP message and no
# WebSocket frame gets no TSV (and a stale one is removed).
#
# Reference output: TShark 4.0.17 (Debian 12 package), default preferences
# (an empty personal configuration, no -d: HTTP is found on its registered
# ports and by its TCP heuristic, which is on by default; PDUs spanning
# segments are reassembled; bodies de-chunked and decompressed; WebSocket
# permessage-deflate inflated) with ONE change:
#
#   -o tcp.reassemble_out_of_order:TRUE
#     By default tshark leaves a segment that arrives after a hole out of
#     PDU reassembly, and so never dissects a message whose bytes came out
#     of order, or whose hole was filled by a segment it labels a
#     retransmission (pcpp-many-protocols frames 2599 and 3014,
#     zeek-http-206-example-b frame 953: the bytes are all in the capture);
#     it also dissects the payload of a retransmitted segment a second time
#     (arkime-wireshark-retrans frames 42 and 86 repeat 41 and 85). The
#     receiving TCP, and chattcp's reassembly, put every byte in order
#     once: with this preference tshark does too.
#
# One line per PDU, in tshark's order, with a header line:
#   frame      the frame where tshark dissected the PDU (for a message that
#              spans segments, the one that completed it)
#   stream     tcp.stream
#   pdu        http | websocket
#   http.request.method http.request.uri http.response.code
#   http.content_length_header
#   websocket.fin websocket.rsv websocket.opcode websocket.mask
#   websocket.payload_length   the real length: payload_length_ext_16 or
#              payload_length_ext_64 when the 7-bit field says 126 or 127
#   websocket.payload.text     unmasked (and inflated) text of a text message,
#              on the frame that completes it
#   websocket.payload.close.status_code websocket.payload.close.reason
#   websocket.payload.ping websocket.payload.pong   hex
#   data.data  hex: a binary message's payload, which tshark hands to its
#              `data` dissector, on the frame that completes it
# Empty means tshark shows no such field for that PDU.  Strings are as tshark
# prints them in -T fields output (cut at a NUL, invalid UTF-8 as U+FFFD,
# BS TAB LF FF CR as \b \t \n \f \r, every other character as it is).
#
# How several PDUs in one frame are kept apart: tshark -T fields prints one
# line per frame; with -E occurrence=a and an aggregator each field lists
# its values of all the frame's PDUs in order.  A field every PDU of its kind
# has (method, uri, code; fin, rsv, opcode, mask, payload_length) lines up
# one to one.  ext_16 and ext_64 belong to the PDUs whose 7-bit length is 126
# and 127.  Another field that not every PDU has (Content-Length, text,
# close code and reason, ping, pong) is placed with display filters using the
# layer operator (FIELD#k: present in the k-th http / websocket layer of the
# frame).  data.data belongs to the `data` layer, not to websocket: its values
# go, in order, to the PDUs that end a message (FIN set, opcode continuation
# or binary) and carry no text.  Whenever the counts do not add up the script
# stops with an error rather than guess.
#
# Usage: tests/regen-app-expected.sh       (from anywhere)
#        TSHARK=/path/to/tshark tests/regen-app-expected.sh
set -u
cd "$(dirname "$0")/.." || exit 1
TSHARK=${TSHARK:-tshark}
CORPUS=../shared/corpus
OUT=tests/expected-app

# An empty personal configuration: user preferences cannot change the output.
cfg=$(mktemp -d)
trap 'rm -rf "$cfg"' EXIT
trap 'exit 130' INT TERM
WIRESHARK_CONFIG_DIR=$cfg
export WIRESHARK_CONFIG_DIR

files=$(ls captures/*.pcap captures/*.pcapng captures/*.cap \
    "$CORPUS"/*.pcap "$CORPUS"/*.pcapng "$CORPUS"/*.cap 2>/dev/null)
dups=$(for f in $files; do b=${f##*/}; echo "${b%.*}"; done | sort | uniq -d)
if [ -n "$dups" ]; then
    echo "error: captures share a base name (expected-app/<name>.tsv would collide): $dups" >&2
    exit 1
fi

mkdir -p "$OUT"
# The aggregator: form feed. In -T fields output tshark 4.0 writes BS, TAB,
# LF, FF and CR inside a string as \b \t \n \f \r (and every other byte as
# it is), so a raw FF cannot be part of a value.
US=$(printf '\f')
PREFS='-o tcp.reassemble_out_of_order:TRUE' # see above
written=0
for f in $files; do
    b=${f##*/}
    name=${b%.*}
    out=$OUT/$name.tsv
    raw=$(mktemp)
    "$TSHARK" -n -r "$f" $PREFS \
        -Y 'tcp and (http.request or http.response or websocket)' \
        -T fields -E separator=/t -E occurrence=a -E aggregator="$US" \
        -e frame.number -e tcp.stream \
        -e http.request.method -e http.request.uri -e http.response.code \
        -e http.content_length_header \
        -e websocket.fin -e websocket.rsv -e websocket.opcode -e websocket.mask \
        -e websocket.payload_length -e websocket.payload_length_ext_16 \
        -e websocket.payload_length_ext_64 -e websocket.payload.text \
        -e websocket.payload.close.status_code -e websocket.payload.close.reason \
        -e websocket.payload.ping -e websocket.payload.pong -e data.data \
        > "$raw" 2> /dev/null
    # tshark's exit status is not checked: for a file cut short or damaged
    # it fails after printing the frames it read, which are kept.
    if [ ! -s "$raw" ]; then
        rm -f "$raw" "$out"
        continue
    fi
    if ! awk -F '\t' -v OFS='\t' -v US="$US" -v tshark="$TSHARK $PREFS" -v file="$f" '
    # Which of the frame`s n layers of a protocol hold `field`: sets has[k].
    function layers(frame, field, n, has,    k, cmd, line, found) {
        found = 0
        for (k = 1; k <= n; k++) {
            has[k] = 0
            cmd = tshark " -n -r \"" file "\" -Y \"frame.number == " frame " && " field "#" k "\" -T fields -e frame.number 2>/dev/null"
            line = ""
            cmd | getline line
            close(cmd)
            if (line != "") { has[k] = 1; found++ }
        }
        return found
    }
    # Spreads the values of an optional field over the frame`s n PDUs.
    function spread(frame, field, vals, n, dest,    v, nv, has, k, i) {
        for (k = 1; k <= n; k++) dest[k] = ""
        nv = (vals == "") ? 0 : split(vals, v, US)
        if (nv == 0) return
        if (nv == n) { for (k = 1; k <= n; k++) dest[k] = v[k]; return }
        if (layers(frame, field, n, has) != nv) fail(frame, field " values do not match its layers")
        i = 0
        for (k = 1; k <= n; k++) if (has[k]) dest[k] = v[++i]
    }
    function fail(frame, why) {
        printf "error: %s frame %s: %s\n", file, frame, why > "/dev/stderr"
        bad = 1
        exit 1
    }
    BEGIN {
        print "frame", "stream", "pdu", "http.request.method", "http.request.uri",
            "http.response.code", "http.content_length_header", "websocket.fin",
            "websocket.rsv", "websocket.opcode", "websocket.mask", "websocket.payload_length",
            "websocket.payload.text", "websocket.payload.close.status_code",
            "websocket.payload.close.reason", "websocket.payload.ping",
            "websocket.payload.pong", "data.data"
    }
    {
        frame = $1; stream = $2
        nm = ($3 == "") ? 0 : split($3, method, US)
        nu = ($4 == "") ? 0 : split($4, uri, US)
        nc = ($5 == "") ? 0 : split($5, code, US)
        if (nm != nu) fail(frame, "methods and URIs do not pair")
        if (nm > 0 && nc > 0) fail(frame, "requests and responses in one frame")
        nh = nm + nc
        spread(frame, "http.content_length_header", $6, nh, cl)
        for (k = 1; k <= nh; k++) {
            if (nm > 0) print frame, stream, "http", method[k], uri[k], "", cl[k], "", "", "", "", "", "", "", "", "", "", ""
            else print frame, stream, "http", "", "", code[k], cl[k], "", "", "", "", "", "", "", "", "", "", ""
        }
        nw = ($9 == "") ? 0 : split($9, op, US)
        if (nw == 0) next
        if (split($7, fin, US) != nw || split($8, rsv, US) != nw || split($10, mask, US) != nw || split($11, plen, US) != nw)
            fail(frame, "websocket header fields do not line up")
        n16 = ($12 == "") ? 0 : split($12, e16, US)
        n64 = ($13 == "") ? 0 : split($13, e64, US)
        i16 = 0; i64 = 0
        for (k = 1; k <= nw; k++) {
            if (plen[k] == 126) plen[k] = e16[++i16]
            else if (plen[k] == 127) plen[k] = e64[++i64]
        }
        if (i16 != n16 || i64 != n64) fail(frame, "extended lengths do not line up")
        spread(frame, "websocket.payload.text", $14, nw, text)
        spread(frame, "websocket.payload.close.status_code", $15, nw, ccode)
        spread(frame, "websocket.payload.close.reason", $16, nw, creason)
        spread(frame, "websocket.payload.ping", $17, nw, ping)
        spread(frame, "websocket.payload.pong", $18, nw, pong)
        nd = ($19 == "") ? 0 : split($19, dv, US)
        id = 0
        for (k = 1; k <= nw; k++) {
            data[k] = ""
            if (id < nd && fin[k] == 1 && (op[k] == 0 || op[k] == 2) && text[k] == "") data[k] = dv[++id]
        }
        if (id != nd) fail(frame, "data.data values do not match the binary messages ending here")
        for (k = 1; k <= nw; k++)
            print frame, stream, "websocket", "", "", "", "", fin[k], rsv[k], op[k], mask[k], plen[k], text[k], ccode[k], creason[k], ping[k], pong[k], data[k]
    }' "$raw" > "$out"; then
        rm -f "$raw" "$out"
        exit 1
    fi
    rm -f "$raw"
    written=$((written + 1))
done
echo "wrote $written files in $OUT"
