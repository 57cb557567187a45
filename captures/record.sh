#!/usr/bin/env bash
# Record chattcp's example captures from the real Linux TCP stack.
#
# Usage (as root):  sudo ./captures/record.sh [NAME...]
#   With no NAME, records every capture listed in ALL below; otherwise only
#   the named ones (NAME is the file name without .pcap).  Each new capture is
#   checked with tshark (recipe/check.py) and re-recorded (up to $TRIES times)
#   until it tells its story; only then does it replace the file in captures/.
#   Afterwards run ./captures/regen-expected.sh to refresh captures/expected/.
#
# Set-up: two network namespaces joined by a veth pair,
#   client  10.99.0.1 (namespace chattcp-rec-cli, interface veth-cli)
#   server  10.99.0.2 (namespace chattcp-rec-srv, interface veth-srv)
# with TSO/GSO/GRO, scatter-gather and tx checksum offload switched off
# (recipe/offloads.py), gso_max_segs 1, IPv6 off and cubic congestion control
# on the routes.  Every capture is taken with tcpdump on the CLIENT's
# interface (veth-cli), Ethernet link type, default snaplen, filter "tcp".
# Loss and "lost" packets are made with iptables in one namespace (see each
# scenario below).  No traffic leaves the two namespaces.
#
# The SSE, WebSocket and http-keep-alive-gzip-chunked captures use aiohttp
# and websockets (recipe/apps.py) from a virtual environment, $VENV (default
# /tmp/chattcp-rec-venv), which is made from recipe/requirements.txt (PyPI)
# when one of them is recorded and it is missing or holds other versions.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
RECIPE=$HERE/recipe
PY=${PYTHON:-python3}
TRIES=${TRIES:-5}
VENV=${VENV:-/tmp/chattcp-rec-venv}
VPY=$VENV/bin/python

NS_C=chattcp-rec-cli
NS_S=chattcp-rec-srv
IF_C=veth-cli
IF_S=veth-srv
C_IP=10.99.0.1
S_IP=10.99.0.2

ALL=(
    handshake-three-packet-close
    keep-alive
    lost-handshake-ack
    lost-handshake-ack-reset
    four-packet-close
    retransmissions
    zero-window
    connection-refused
    syn-unanswered
    http-keep-alive
    http-header-newline
    http-keep-alive-gzip-chunked
    sse-gzip
    sse-plain
    sse-gzip-buffered
    websocket
    websocket-deflate
)
# Captures whose programs need the virtual environment (aiohttp, websockets).
NEEDS_VENV=(http-keep-alive-gzip-chunked sse-gzip sse-plain sse-gzip-buffered websocket websocket-deflate)
# Captures whose client is curl.
NEEDS_CURL=(http-keep-alive http-keep-alive-gzip-chunked sse-gzip sse-plain sse-gzip-buffered)

WORK=
PIDS=()

log() { printf '%s [record] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    ip netns del "$NS_C" 2>/dev/null || true
    ip netns del "$NS_S" 2>/dev/null || true
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# forget PID: a background process we started has ended (cleanup must not
# signal whatever process may later reuse its number).
forget() {
    local p keep=()
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

in_c() { ip netns exec "$NS_C" "$@"; }
in_s() { ip netns exec "$NS_S" "$@"; }

# --- set-up -------------------------------------------------------------------

preflight() {
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
    local tool
    for tool in ip iptables tcpdump tshark "$PY"; do
        command -v "$tool" >/dev/null || die "$tool not found"
    done
    local name
    for name in "$@"; do
        [[ " ${ALL[*]} " == *" $name "* ]] || die "unknown capture: $name (known: ${ALL[*]})"
    done
    local names=("$@")
    [ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
    for name in "${names[@]}"; do
        if [[ " ${NEEDS_CURL[*]} " == *" $name "* ]]; then
            command -v curl >/dev/null || die "curl not found (needed for $name)"
        fi
    done
    for name in "${names[@]}"; do
        if [[ " ${NEEDS_VENV[*]} " == *" $name "* ]]; then
            ensure_venv
            break
        fi
    done
}

# ensure_venv: $VENV holds exactly the versions in recipe/requirements.txt.
# (Made in the root namespace, before set-up: pip needs the network.)
ensure_venv() {
    local want have line ok=1
    want=$(grep -E '^[A-Za-z0-9_.-]+==' "$RECIPE/requirements.txt")
    have=$("$VPY" -m pip freeze 2>/dev/null || true)
    while read -r line; do
        grep -qixF "$line" <<<"$have" || ok=0
    done <<<"$want"
    [ "$ok" -eq 1 ] && return 0
    log "making the virtual environment $VENV (aiohttp, websockets from PyPI)"
    "$PY" -m venv "$VENV" || die "cannot make $VENV"
    "$VPY" -m pip install -q --disable-pip-version-check -r "$RECIPE/requirements.txt" \
        || die "pip install into $VENV failed"
}

setup() {
    ip netns del "$NS_C" 2>/dev/null || true
    ip netns del "$NS_S" 2>/dev/null || true
    ip netns add "$NS_C"
    ip netns add "$NS_S"
    ip link add "$IF_C" netns "$NS_C" type veth peer name "$IF_S" netns "$NS_S"
    local ns ifc ip
    for ns in "$NS_C" "$NS_S"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
        ip netns exec "$ns" ip link set lo up
    done
    for pair in "$NS_C $IF_C $C_IP" "$NS_S $IF_S $S_IP"; do
        read -r ns ifc ip <<<"$pair"
        ip netns exec "$ns" "$PY" "$RECIPE/offloads.py" "$ifc" >&2
        ip netns exec "$ns" ip link set "$ifc" gso_max_segs 1
        ip netns exec "$ns" ip addr add "$ip/24" dev "$ifc"
        ip netns exec "$ns" ip link set "$ifc" up
        # The host's default is bbr and a namespace cannot change its default;
        # use the usual Linux default, cubic, on the route.
        ip netns exec "$ns" ip route replace 10.99.0.0/24 dev "$ifc" proto kernel \
            scope link src "$ip" congctl cubic
    done
    # Fixed neighbour entries: no ARP exchange in the middle of a story.
    in_c ip neigh replace "$S_IP" lladdr "$(in_s cat /sys/class/net/$IF_S/address)" dev "$IF_C" nud permanent
    in_s ip neigh replace "$C_IP" lladdr "$(in_c cat /sys/class/net/$IF_C/address)" dev "$IF_S" nud permanent
    # Reachability check (before any capture): a connection to a closed port
    # must be refused, not time out.
    in_c "$PY" -c 'import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), timeout=3)
except ConnectionRefusedError:
    sys.exit(0)
sys.exit(1)' "$S_IP" || die "no connectivity between the namespaces"
}

# client_route [OPTION...]: the client's route to the server, with options.
client_route() {
    in_c ip route replace 10.99.0.0/24 dev "$IF_C" proto kernel scope link \
        src "$C_IP" congctl cubic "$@"
}

# --- helpers --------------------------------------------------------------------

TCPDUMP_PID=
start_capture() {
    local pcap=$1
    rm -f "$WORK/tcpdump.err"
    # Started with ip netns exec directly (not the in_c function, which would
    # put a subshell between $! and tcpdump): $! is tcpdump itself.
    ip netns exec "$NS_C" tcpdump -i "$IF_C" -n -U --immediate-mode -Z root -w "$pcap" tcp 2>"$WORK/tcpdump.err" &
    TCPDUMP_PID=$!
    PIDS+=("$TCPDUMP_PID")
    local i
    for i in $(seq 100); do
        grep -q 'listening on' "$WORK/tcpdump.err" 2>/dev/null && return 0
        sleep 0.05
    done
    cat "$WORK/tcpdump.err" >&2
    die "tcpdump did not start"
}

stop_capture() {
    sleep 1  # let the last packets of the story arrive
    kill -INT "$TCPDUMP_PID"
    wait "$TCPDUMP_PID" || true
    forget "$TCPDUMP_PID"
    grep -v 'listening on' "$WORK/tcpdump.err" >&2 || true
}

SERVER_PID=
# start_server NAME [PYTHON SCRIPT]: start NAME's server program (default:
# scenarios.py with $PY) in the server's namespace; wait until it listens.
start_server() {
    local name=$1 py=${2:-$PY} script=${3:-$RECIPE/scenarios.py}
    rm -f "$WORK/ready"
    ip netns exec "$NS_S" env READY_FILE="$WORK/ready" SERVER_IP="$S_IP" WWW_DIR="$WORK/www" \
        "$py" "$script" server "$name" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local i
    for i in $(seq 100); do
        [ -f "$WORK/ready" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "server for $name exited early"
        sleep 0.05
    done
    die "server for $name did not start"
}

wait_server() {
    local i
    for i in $(seq 300); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" || true
        forget "$SERVER_PID"
        die "server did not finish"
    fi
    wait "$SERVER_PID" || die "server failed"
    forget "$SERVER_PID"
}

client() {
    in_c env SERVER_IP="$S_IP" "$@" "$PY" "$RECIPE/scenarios.py" client "$CURRENT"
}

# The same for the programs in apps.py (aiohttp, websockets), with $VPY.
start_app_server() { start_server "$1" "$VPY" "$RECIPE/apps.py"; }
app_client() {
    in_c env SERVER_IP="$S_IP" "$@" "$VPY" "$RECIPE/apps.py" client "$CURRENT"
}

# --- scenarios: each runs while tcpdump records on the client's interface ----------

scenario_handshake-three-packet-close() {
    # Client says HELLO, server answers, client closes; the server closes the
    # moment it reads EOF, so its FIN carries the ACK of the client's FIN.
    start_server "$CURRENT"; client; wait_server
}

scenario_keep-alive() {
    # Client with SO_KEEPALIVE, TCP_KEEPIDLE=15, TCP_KEEPINTVL=15 idles 37 s:
    # two keep-alive probes (15 s, 30 s) and their ACKs, then a normal close.
    start_server "$CURRENT"; client; wait_server
}

scenario_lost-handshake-ack() {
    # The server's firewall drops the client's pure ACKs (its third handshake
    # packet and its answers to the retransmitted SYN-ACKs).  After 4.5 s the
    # client deletes the rule and sends data; that segment's ACK completes
    # the handshake late.
    local rule=(INPUT -p tcp --dport 8003 --tcp-flags ALL ACK -j DROP)
    in_s iptables -I "${rule[@]}"
    start_server "$CURRENT"
    client BEFORE_SEND="ip netns exec $NS_S iptables -D ${rule[*]}"
    wait_server
    in_s iptables -D "${rule[@]}" 2>/dev/null || true
}

scenario_lost-handshake-ack-reset() {
    # As above, but the server gives up on the half-open request
    # (tcp_synack_retries=2: SYN-ACK retransmitted at +1 s and +3 s, request
    # dropped at about +7 s); the client's FIN at +9 s is answered with RST.
    local rule=(INPUT -p tcp --dport 8004 --tcp-flags ALL ACK -j DROP)
    local old
    old=$(in_s sysctl -n net.ipv4.tcp_synack_retries)
    in_s sysctl -qw net.ipv4.tcp_synack_retries=2
    in_s iptables -I "${rule[@]}"
    start_server "$CURRENT"
    client RESET_WAIT=9
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    forget "$SERVER_PID"
    in_s iptables -D "${rule[@]}"
    in_s sysctl -qw net.ipv4.tcp_synack_retries="$old"
}

scenario_four-packet-close() {
    # Server with keep-alive (15 s) answers, idles 17 s (one keep-alive from
    # the server), then closes first; the client ACKs the FIN at once (kernel)
    # and closes 1 s later (application): FIN / ACK / FIN / ACK.
    start_server "$CURRENT"; client; wait_server
}

scenario_retransmissions() {
    # 128 KiB download through 5 % random loss of the server's data segments.
    # The drop is in the client's INPUT chain, i.e. AFTER the capture point:
    # every lost segment is in the capture once, followed by duplicate ACKs
    # with SACK blocks and the retransmission.  The server's side of the link
    # is limited to 20 Mbit/s (htb; $RATE overrides) so that the transfer takes
    # some time and the round-trip time is milliseconds, not microseconds.
    local rule=(INPUT -p tcp --sport 8006 -m length --length 200:65535
                -m statistic --mode random --probability ${LOSS:-0.05} -j DROP)
    in_s tc qdisc add dev "$IF_S" root handle 1: htb default 1
    in_s tc class add dev "$IF_S" parent 1: classid 1:1 htb rate ${RATE:-20mbit} quantum 1514
    in_c iptables -I "${rule[@]}"
    start_server "$CURRENT"; client; wait_server
    in_c iptables -D "${rule[@]}"
    in_s tc qdisc del dev "$IF_S" root
}

scenario_zero-window() {
    # The client (SO_RCVBUF 8192) asks for 48 KB and does not read for 3 s:
    # its window falls to zero, the server sends zero-window probes, then the
    # client reads, announces a window update and the transfer completes.
    # The client's route gets "quickack 1" (no delayed ACKs) for this one:
    # on a veth the RTT is some microseconds, so a 40 ms delayed ACK from the
    # stalled receiver makes the sender fire tail-loss probes (spurious
    # retransmissions) that have nothing to do with the zero window.
    client_route quickack 1
    start_server "$CURRENT"; client; wait_server
    client_route
}

scenario_connection-refused() {
    # Nothing listens on the server's port 8008: SYN answered by RST,ACK.
    client
}

scenario_syn-unanswered() {
    # The server's firewall drops SYNs to port 8009; the client
    # (tcp_syn_retries=2) retries and gives up.
    local rule=(INPUT -p tcp --dport 8009 -j DROP)
    local old
    old=$(in_c sysctl -n net.ipv4.tcp_syn_retries)
    in_c sysctl -qw net.ipv4.tcp_syn_retries=2
    in_s iptables -I "${rule[@]}"
    client
    in_s iptables -D "${rule[@]}"
    in_c sysctl -qw net.ipv4.tcp_syn_retries="$old"
}

scenario_http-keep-alive() {
    # curl fetches three small files over one HTTP/1.1 keep-alive connection
    # from a Python http.server (protocol_version HTTP/1.1), then closes.
    mkdir -p "$WORK/www"
    printf '<!doctype html>\n<title>chattcp</title>\n<p>Hello from http.server.</p>\n' >"$WORK/www/index.html"
    printf 'first file\n' >"$WORK/www/a.txt"
    printf 'second file, a little longer than the first one\n' >"$WORK/www/b.txt"
    start_server "$CURRENT"
    in_c curl -sS --http1.1 -o /dev/null -o /dev/null -o /dev/null \
        "http://$S_IP:8080/" "http://$S_IP:8080/a.txt" "http://$S_IP:8080/b.txt"
    wait_server
}

scenario_http-header-newline() {
    # A raw Python socket client POSTs a request whose X-Note value carries a
    # bare LF ("first line\nsecond part\r\n"), then correct Content-Type and
    # Content-Length and the body.  Python's http.server (3.11) ends the header
    # line at the LF and the header block at "second part" (not a header):
    # Content-Length is lost, it answers 200 to a POST without a body, then
    # reads the body as the next request line, answers with a 400 page and
    # closes.  The 400 page is sent HTTP/0.9 style (no status line, no headers:
    # a one-word request line leaves request_version at HTTP/0.9).  The client
    # reads to EOF and closes.
    start_server "$CURRENT"; client; wait_server
}

scenario_http-keep-alive-gzip-chunked() {
    # curl fetches three resources over one HTTP/1.1 keep-alive connection
    # from aiohttp (recipe/apps.py), then closes: / (HTML, Content-Length),
    # /catalog.json (4.2 KiB of JSON that aiohttp gzips: Content-Encoding gzip
    # and the compressed Content-Length), /progress (chunked: the head at once,
    # then four one-line chunks 0.25 s apart, each in its own segment, then
    # the last chunk).  curl decodes the gzip body (--compressed) and accepts
    # gzip only, as for the SSE captures (with curl's default list aiohttp
    # would pick deflate); the sizes on the wire and decoded go to the log.
    local u=http://$S_IP:8016 got=$WORK/got
    mkdir -p "$got"
    start_app_server "$CURRENT"
    in_c curl -sS --http1.1 --compressed -H 'Accept-Encoding: gzip' \
        -w '    [curl] %{http_code} %{url_effective}: %{size_download} bytes on the wire\n' \
        -o "$got/index.html" -o "$got/catalog.json" -o "$got/progress" \
        "$u/" "$u/catalog.json" "$u/progress" >&2
    wait_server
    wc -c "$got"/* | sed 's/^/    [curl] decoded /' >&2
    rm -rf "$got"
}

# sse_curl: the SSE client, curl, the same for the three SSE captures.  It
# accepts gzip (only: aiohttp would pick deflate from curl's default list),
# decodes with --compressed, prints events as they come (-N); the decoded
# stream goes to the log.
sse_curl() {
    in_c curl -sS --http1.1 -N --compressed -H 'Accept-Encoding: gzip' \
        "http://$S_IP:$1/events" | sed 's/^/    [curl] /' >&2
}

scenario_sse-plain() {
    # aiohttp StreamResponse, text/event-stream, 5 events 0.7 s apart, each
    # written as it happens (one chunk, one segment each), no compression.
    start_app_server "$CURRENT"; sse_curl 8012; wait_server
}

scenario_sse-gzip() {
    # The same stream, gzip-compressed by the handler with a zlib
    # Z_SYNC_FLUSH after each event: binary chunks, one per event and
    # segment, each decodable on arrival.
    start_app_server "$CURRENT"; sse_curl 8011; wait_server
}

scenario_sse-gzip-buffered() {
    # The same stream with aiohttp's own compression (enable_compression()):
    # no flush per write, so only the 10-byte gzip header leaves at once and
    # all five events leave together at the end of the stream.
    start_app_server "$CURRENT"; sse_curl 8013; wait_server
}

scenario_websocket() {
    # websockets client and server, permessage-deflate off: upgrade (101),
    # three masked text messages and their text replies, one binary message,
    # a ping and its pong, close frames both ways (1000, "session over"),
    # then the server closes TCP first.
    start_app_server "$CURRENT"; app_client; wait_server
}

scenario_websocket-deflate() {
    # The same session with permessage-deflate (the websockets default).
    start_app_server "$CURRENT"; app_client; wait_server
}

# --- main -------------------------------------------------------------------------

record() {
    CURRENT=$1
    local attempt pcap=$WORK/$1.pcap
    for attempt in $(seq "$TRIES"); do
        log "$CURRENT: recording (attempt $attempt)"
        rm -f "$pcap"
        start_capture "$pcap"
        "scenario_$CURRENT"
        stop_capture
        if "$PY" "$RECIPE/check.py" "$CURRENT" "$pcap"; then
            cp "$pcap" "$HERE/$CURRENT.pcap"
            log "$CURRENT: ok -> $HERE/$CURRENT.pcap"
            return 0
        fi
        log "$CURRENT: capture does not tell its story; again"
    done
    die "$CURRENT: no good capture after $TRIES attempts"
}

preflight "$@"
WORK=$(mktemp -d)
chmod 755 "$WORK"
setup
if [ $# -eq 0 ]; then set -- "${ALL[@]}"; fi
for name in "$@"; do
    record "$name"
done
log "done; now run $HERE/regen-expected.sh"
