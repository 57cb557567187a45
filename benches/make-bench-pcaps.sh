#!/usr/bin/env bash
# (Copied from the reference recipe ../shared/bench/make-bench-pcaps.sh so that anyone can
# record the benchmark captures from this repository; benches/run.sh calls it.)
#
# make-bench-pcaps.sh -- build benchmark pcaps for the TCP pcap analysis engine
# from REAL traffic of real programs (nginx server; ab / curl clients) sent
# between two network namespaces that this script creates and removes.
#
#   bulk.pcap   ~1.0 GiB  ~715k pkts: 4 long keep-alive HTTP/1.1 connections
#                         (curl), 2 x 120 MiB downloads each, MTU-sized segments
#   many.pcap   ~410 MiB  ~1.83M pkts, ~190k short HTTP connections, no keep-alive:
#                         ab 150k x small page (HTTP/1.0), ab 20k x gzip'd 16 KiB
#                         HTML page, curl 20k x HTTP/1.1 "Connection: close"
#                         gzip'd JSON endpoint; 4-tuples get reused (64k ports)
#   lossy.pcap  ~330 MiB  ~285k pkts: 3 x 96 MiB downloads through a userspace
#                         netem stand-in (1% loss, 1 ms delay, 1% reorder)
#   train.pcap  ~3 MiB:   the three above in small, recorded apart from them: 500
#                         short connections (the same three clients, in 5 rounds
#                         0.8 s apart), 2 x 512 KiB over one keep-alive
#                         connection, 1 MiB through the netem stand-in. (Added
#                         for chattcp: the training capture of
#                         benches/pgo-build.sh, kept in the repository as
#                         benches/pgo-train.pcap; never a benchmark capture.)
# Each NAME.pcap gets NAME.info (capinfos, tcpdump drop counts, #conversations,
# tcp.analysis counts, sha256), NAME.clients.log and NAME.tcpdump.log.
# Exact bytes differ per run (timing, ISNs, ports); counts are stable.
# If tcpdump reports kernel drops, the capture is redone with more throttling
# (nginx per-connection limit_rate for bulk/lossy, lower concurrency for many).
#
# Usage:  make-bench-pcaps.sh [--force] [bulk] [many] [lossy] [train]
#         (no names = bulk, many and lossy; existing, valid outputs are kept unless --force)
# Env:    BENCH_DATA_DIR (default /var/tmp/chattcp-bench) -- keep it outside any git repo.
#
# Network: namespaces b88srv (10.88.0.1) and b88cli (10.88.0.2) joined by the
# veth pair b88s/b88c.  Nothing is sent anywhere else.  On the veth ends
# TSO/GSO/GRO/LRO and TX checksum offload are off, so every captured segment
# is <= MTU (1500) and carries a valid checksum.  Capture: tcpdump on b88c
# (client side = receiver side of the bulk data), -s 0 -B 262144, pinned to
# CPU 0 while nginx + clients are pinned to CPU 1 (so the capture keeps up).
#
# Loss/delay/reorder: this kernel has no sch_netem, so "tc qdisc netem" is not
# available.  Instead an iptables NFQUEUE rule in the server namespace hands
# every server->client segment of port 8080 to a tiny C program (mini-netem,
# built below against libnetfilter_queue) that applies netem's semantics:
# drop with p=1%; otherwise send immediately with p=1% (netem "reorder": it
# overtakes the delayed ones), else hold for 1 ms.  NFQUEUE verdicts are
# asynchronous, so TCP sees genuine wire loss (unlike an OUTPUT-chain DROP,
# which returns a local error to TCP), and NFQUEUE splits GSO super-packets,
# so decisions are per wire segment.  PRNG seed is fixed (reproducible
# decision sequence; timing still varies run to run).
#
# Everything this script starts is tracked by PID and stopped on exit;
# the namespaces (and with them veths, iptables rules, sysctls) are deleted.
set -Eeuo pipefail

OUT_DIR=${BENCH_DATA_DIR:-/var/tmp/chattcp-bench}
WORK=$OUT_DIR/.work
NS_S=b88srv; NS_C=b88cli
IF_S=b88s;   IF_C=b88c
SRV=10.88.0.1; CLI=10.88.0.2
PORT=80; LOSSY_PORT=8080
CAP_CPU=0; LOAD_CPU=1
NFQ_NUM=88

FORCE=0; TARGETS=()
for a in "$@"; do
  case $a in
    --force) FORCE=1 ;;
    bulk|many|lossy|train) TARGETS+=("$a") ;;
    -h|--help) sed -n '2,53p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(bulk many lossy)

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (namespaces, tcpdump)"
if git -C "$(dirname "$(realpath -m "$OUT_DIR")")" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  die "$OUT_DIR is inside a git work tree"
fi

need() { command -v "$1" >/dev/null 2>&1; }
install_deps() {
  local pkgs=()
  need nginx    || pkgs+=(nginx-light)
  need ab       || pkgs+=(apache2-utils)
  need ethtool  || pkgs+=(ethtool)
  need tcpdump  || pkgs+=(tcpdump)
  need capinfos || pkgs+=(tshark)
  need curl     || pkgs+=(curl)
  need openssl  || pkgs+=(openssl)
  need gcc      || pkgs+=(gcc)
  need iptables || pkgs+=(iptables)
  [ -f /usr/include/libnetfilter_queue/libnetfilter_queue.h ] || pkgs+=(libnetfilter-queue-dev)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing: ${pkgs[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkgs[@]}" >/dev/null
  fi
}

# ---------------------------------------------------------------- cleanup ---
PIDS=()
ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
teardown_net() {
  local ns
  for ns in "$NS_C" "$NS_S"; do
    if ns_exists "$ns"; then
      # stray processes of an earlier aborted run of THIS script, by PID
      local p; for p in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done
      sleep 0.5
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
  ip link del "$IF_S" 2>/dev/null || true
}
cleanup() {
  local rc=$? p
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do
    p=${PIDS[i]}; kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  teardown_net
  rm -f "$OUT_DIR"/.*.pcap.part "$OUT_DIR"/.*.pcap.part.log
  [ $rc -ne 0 ] && log "exited with status $rc (cleaned up)"
  exit $rc
}
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  trap cleanup EXIT
  trap 'exit 130' INT TERM
fi

# ---------------------------------------------------------------- content ---
mk_random() {  # deterministic incompressible file: AES-128-CTR keystream
  local f=$1 mib=$2 key=$3
  local want=$((mib*1024*1024))
  [ -f "$f" ] && [ "$(stat -c %s "$f")" -eq $want ] && return 0
  head -c $want /dev/zero | openssl enc -aes-128-ctr -nosalt -K "$key" -iv 00000000000000000000000000000000 > "$f.tmp"
  mv "$f.tmp" "$f"
}
make_content() {
  mkdir -p "$WORK/www" "$WORK/tmp"
  chmod 755 "$OUT_DIR" "$WORK" "$WORK/www"
  mk_random "$WORK/www/big1.bin" 120 0123456789abcdef0123456789abcdef
  mk_random "$WORK/www/big2.bin" 120 fedcba9876543210fedcba9876543210
  mk_random "$WORK/www/big3.bin"  96 00112233445566778899aabbccddeeff
  python3 - "$WORK/www" <<'PY'
import random, sys, os
d = sys.argv[1]
r = random.Random(88)
words = ("tcp segment window ack sequence retransmit handshake stream packet "
         "capture latency throughput buffer socket header payload kernel "
         "network congestion timer reorder duplicate analysis engine").split()
def para(n): return " ".join(r.choice(words) for _ in range(n)).capitalize() + "."
# small.html: ~1 KiB
body = "<!doctype html><html><head><title>bench88 small</title></head><body><h1>small</h1><p>" \
       + para(120) + "</p></body></html>\n"
body = body[:1000] + "\n"
open(os.path.join(d, "small.html"), "w").write(body)
# page.html: ~16 KiB compressible HTML (gzip'd on the wire when asked)
parts = ["<!doctype html><html><head><title>bench88 page</title></head><body>"]
i = 0
while sum(map(len, parts)) < 16 * 1024:
    parts.append('<div class="row" id="r%d"><h2>Item %d</h2><p>%s</p></div>\n' % (i, i, para(30)))
    i += 1
parts.append("</body></html>\n")
open(os.path.join(d, "page.html"), "w").write("".join(parts))
PY
  cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
user root;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $WORK/tmp/body;
  proxy_temp_path $WORK/tmp/proxy;
  fastcgi_temp_path $WORK/tmp/fastcgi;
  uwsgi_temp_path $WORK/tmp/uwsgi;
  scgi_temp_path $WORK/tmp/scgi;
  types { text/html html; application/octet-stream bin; application/json json; }
  default_type application/octet-stream;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 65s; keepalive_requests 100000;
  gzip on; gzip_http_version 1.0; gzip_comp_level 5; gzip_min_length 256;
  gzip_types application/json;  # text/html is always included gzip_vary on;
  server {
    listen $SRV:$PORT backlog=8192;
    listen $SRV:$LOSSY_PORT backlog=1024;
    server_name bench88;
    root $WORK/www;
    # per-connection rate cap, adjustable by the client: ?rate=40m (0 = none)
    set \$rate 0;
    if (\$arg_rate) { set \$rate \$arg_rate; }
    limit_rate \$rate;
    # small dynamic "API" endpoint (JSON, gzip'd when the client accepts it)
    location = /api {
      default_type application/json;
      return 200 '{"id":"\$arg_id","request_id":"\$request_id","time":\$msec,"server":"bench88","items":[{"k":"alpha","v":1},{"k":"beta","v":2},{"k":"gamma","v":3},{"k":"delta","v":4},{"k":"epsilon","v":5},{"k":"zeta","v":6},{"k":"eta","v":7},{"k":"theta","v":8},{"k":"iota","v":9},{"k":"kappa","v":10}],"note":"bench88 api response padding padding padding padding padding"}\n';
    }
  }
}
EOF
}

build_mini_netem() {
  local src=$WORK/mini-netem.c bin=$WORK/mini-netem
  cat > "$src.new" <<'C'
/* mini-netem: netem-like loss / constant delay / reorder on an NFQUEUE.
 * usage: mini-netem QUEUE LOSS_PCT DELAY_US REORDER_PCT SEED
 * netem semantics: drop w.p. LOSS; else send now w.p. REORDER (overtakes the
 * delayed packets); else hold DELAY_US.  Prints counters to stderr on SIGTERM. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <poll.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define CAP (1u << 20)
static struct { uint32_t id; uint64_t due; } ring[CAP];
static uint32_t head, tail;
static uint64_t s0 = 0x9E3779B97F4A7C15ull, s1;
static double loss, reorder;
static uint64_t delay_ns;
static unsigned long n_total, n_drop, n_now, n_delay, n_full, n_enobufs;
static volatile sig_atomic_t stop;
static struct nfq_q_handle *qh;

static uint64_t now_ns(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}
static double urand(void) { /* xorshift128+ */
  uint64_t x = s0, y = s1; s0 = y; x ^= x << 23;
  s1 = x ^ y ^ (x >> 17) ^ (y >> 26);
  return ((s1 + y) >> 11) * (1.0 / 9007199254740992.0);
}
static int cb(struct nfq_q_handle *q, struct nfgenmsg *m, struct nfq_data *d, void *u) {
  (void)m; (void)u;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(d);
  if (!ph) return 0;
  uint32_t id = ntohl(ph->packet_id);
  n_total++;
  if (urand() < loss) { n_drop++; return nfq_set_verdict(q, id, NF_DROP, 0, NULL); }
  if (delay_ns == 0 || urand() < reorder) { n_now++; return nfq_set_verdict(q, id, NF_ACCEPT, 0, NULL); }
  if (((tail + 1) & (CAP - 1)) == head) { n_full++; return nfq_set_verdict(q, id, NF_ACCEPT, 0, NULL); }
  ring[tail].id = id; ring[tail].due = now_ns() + delay_ns;
  tail = (tail + 1) & (CAP - 1); n_delay++;
  return 0;
}
static void flush_due(int all) {
  uint64_t t = now_ns();
  while (head != tail && (all || ring[head].due <= t)) {
    nfq_set_verdict(qh, ring[head].id, NF_ACCEPT, 0, NULL);
    head = (head + 1) & (CAP - 1);
  }
}
static void on_sig(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
  if (argc != 6) { fprintf(stderr, "usage: %s QUEUE LOSS_PCT DELAY_US REORDER_PCT SEED\n", argv[0]); return 2; }
  int qnum = atoi(argv[1]);
  loss = atof(argv[2]) / 100.0; delay_ns = strtoull(argv[3], 0, 10) * 1000ull;
  reorder = atof(argv[4]) / 100.0; s1 = strtoull(argv[5], 0, 10) * 0xBF58476D1CE4E5B9ull + 1;
  for (int i = 0; i < 64; i++) urand();
  struct sigaction sa = { .sa_handler = on_sig }; sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL); sigaction(SIGINT, &sa, NULL);
  struct nfq_handle *h = nfq_open();
  if (!h) { perror("nfq_open"); return 1; }
  if (nfq_bind_pf(h, AF_INET) < 0) { perror("nfq_bind_pf"); return 1; }
  qh = nfq_create_queue(h, qnum, &cb, NULL);
  if (!qh) { perror("nfq_create_queue"); return 1; }
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) { perror("nfq_set_mode"); return 1; }
  nfq_set_queue_maxlen(qh, 262144);
  nfnl_rcvbufsiz(nfq_nfnlh(h), 64u << 20);
  int fd = nfq_fd(h);
  printf("ready queue=%d loss=%.3f delay_us=%llu reorder=%.3f\n", qnum, loss,
         (unsigned long long)(delay_ns / 1000), reorder);
  fflush(stdout);
  static char buf[1 << 16] __attribute__((aligned));
  while (!stop) {
    struct timespec ts = { 0, 100000000 };
    if (head != tail) {
      uint64_t t = now_ns(), due = ring[head].due;
      uint64_t w = due > t ? due - t : 0;
      ts.tv_sec = w / 1000000000ull; ts.tv_nsec = w % 1000000000ull;
    }
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = ppoll(&p, 1, &ts, NULL);
    if (r > 0 && (p.revents & POLLIN)) {
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) { nfq_handle_packet(h, buf, (int)n); flush_due(0); continue; }
        if (n < 0 && errno == ENOBUFS) { n_enobufs++; continue; }
        break;
      }
    }
    flush_due(0);
  }
  flush_due(1);
  fprintf(stderr, "mini-netem: total=%lu dropped=%lu sent_now(reordered)=%lu delayed=%lu ring_full=%lu enobufs=%lu\n",
          n_total, n_drop, n_now, n_delay, n_full, n_enobufs);
  nfq_destroy_queue(qh); nfq_close(h);
  return 0;
}
C
  if [ ! -x "$bin" ] || ! cmp -s "$src.new" "$src"; then
    mv "$src.new" "$src"
    gcc -O2 -Wall -o "$bin" "$src" -lnetfilter_queue -lnfnetlink
  else
    rm -f "$src.new"
  fi
}

# ---------------------------------------------------------------- network ---
setup_net() {
  teardown_net
  ip -o addr show | grep -q ' 10\.88\.0\.' && die "10.88.0.0/24 already in use in the root namespace"
  ip netns add "$NS_S"
  ip netns add "$NS_C"
  ip link add "$IF_S" type veth peer name "$IF_C"
  ip link set "$IF_S" netns "$NS_S"
  ip link set "$IF_C" netns "$NS_C"
  ip -n "$NS_S" addr add "$SRV/24" dev "$IF_S"
  ip -n "$NS_C" addr add "$CLI/24" dev "$IF_C"
  local ns dev
  for ns in "$NS_S" "$NS_C"; do
    ip -n "$ns" link set lo up
    [ "$ns" = "$NS_S" ] && dev=$IF_S || dev=$IF_C
    ip -n "$ns" link set "$dev" mtu 1500 up
    ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off >/dev/null
    ip netns exec "$ns" ethtool -K "$dev" lro off >/dev/null 2>&1 || true
  done
  ip netns exec "$NS_S" sysctl -qw net.core.somaxconn=8192 net.ipv4.tcp_max_syn_backlog=8192
  ip netns exec "$NS_C" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
}

start_nginx() {
  ip netns exec "$NS_S" nginx -t -q -c "$WORK/nginx.conf" -g 'daemon off;'
  ip netns exec "$NS_S" taskset -c $LOAD_CPU nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
  NGINX_PID=$!; PIDS+=("$NGINX_PID")
  local i
  for i in $(seq 50); do
    ip netns exec "$NS_C" curl -s -o /dev/null "http://$SRV:$PORT/small.html" && return 0
    sleep 0.1
  done
  die "nginx did not come up (link or config problem): $(cat "$WORK/nginx-error.log" 2>/dev/null)"
}

# ---------------------------------------------------------------- capture ---
CAP_PID=
start_capture() {  # $1 = output file (.part)
  local f=$1
  rm -f "$f" "$f.log"
  ip netns exec "$NS_C" taskset -c $CAP_CPU tcpdump -i "$IF_C" -n -s 0 -B 262144 -Z root \
    -w "$f" "tcp and host $SRV and host $CLI" 2> "$f.log" &
  CAP_PID=$!; PIDS+=("$CAP_PID")
  local i
  for i in $(seq 100); do grep -q 'listening on' "$f.log" && { sleep 0.3; return 0; }; sleep 0.1; done
  die "tcpdump did not start: $(cat "$f.log")"
}
stop_capture() {  # prints "captured received dropped"
  local f=$1
  sleep 2   # let FIN/ACK exchanges finish
  kill -INT "$CAP_PID"; wait "$CAP_PID" || true
  local cap rcv drop
  cap=$(grep -o '[0-9]\+ packets captured' "$f.log" | awk '{print $1}')
  rcv=$(grep -o '[0-9]\+ packets received by filter' "$f.log" | awk '{print $1}')
  drop=$(grep -o '[0-9]\+ packets dropped by kernel' "$f.log" | awk '{print $1}')
  [ -n "$cap" ] || cap=$(capinfos -c -M "$f" | awk '/Number of packets/{print $NF}')
  echo "${cap:-?} ${rcv:-?} ${drop:-?}"
}

# ---------------------------------------------------------------- traffic ---
run_bulk() {  # $1 = per-connection rate cap for nginx limit_rate (0 = none)
  local rate=$1 i pids=() rc=0
  for i in 1 2 3 4; do
    # one curl = one TCP connection reused (keep-alive) for two large files
    ip netns exec "$NS_C" taskset -c $LOAD_CPU curl -sS -o /dev/null -o /dev/null \
      -w 'conn '"$i"' http=%{http_code} bytes=%{size_download} reused_conns=%{num_connects} t=%{time_total}s\n' \
      "http://$SRV:$PORT/big1.bin?rate=$rate&c=$i" "http://$SRV:$PORT/big2.bin?rate=$rate&c=$i" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  return $rc
}
clear_client_logs() {
  : > "$WORK/ab-small.log"; : > "$WORK/ab-gzip.log"; : > "$WORK/curl-api.log"; : > "$WORK/curl-api.err"
}
# The three clients of short connections, at once; their outputs are
# appended to the logs.  $1 = concurrency per client, $2 $3 $4 = requests of
# each: small page, gzip'd page, JSON endpoint.
short_clients() {
  local c=$1 pids=() rc=0 p
  # HTTP/1.0 without keep-alive, small static page
  ip netns exec "$NS_C" taskset -c $LOAD_CPU ab -q -r -n "$2" -c "$c" \
    "http://$SRV:$PORT/small.html" >> "$WORK/ab-small.log" 2>&1 &
  pids+=($!)
  # gzip'd 16 KiB HTML page, no keep-alive
  ip netns exec "$NS_C" taskset -c $LOAD_CPU ab -q -r -n "$3" -c "$c" -H 'Accept-Encoding: gzip' \
    "http://$SRV:$PORT/page.html" >> "$WORK/ab-gzip.log" 2>&1 &
  pids+=($!)
  # HTTP/1.1 with Connection: close to the JSON endpoint, gzip (curl --compressed)
  ip netns exec "$NS_C" taskset -c $LOAD_CPU curl -sS --no-progress-meter --parallel --parallel-max "$c" \
    --compressed -H 'Connection: close' -w '%{http_code} %{size_download}\n' -o /dev/null \
    "http://$SRV:$PORT/api?id=[1-$4]" >> "$WORK/curl-api.log" 2>> "$WORK/curl-api.err" &
  pids+=($!)
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}
run_many() {  # $1 = concurrency per client
  local rc=0
  clear_client_logs
  short_clients "$1" 150000 20000 20000 || rc=1
  echo "== ab small.html (HTTP/1.0, no keep-alive)"; cat "$WORK/ab-small.log"
  echo "== ab page.html gzip (HTTP/1.0, no keep-alive)"; cat "$WORK/ab-gzip.log"
  echo "== curl /api (HTTP/1.1, Connection: close, --compressed): status, decoded size -> count"
  sort "$WORK/curl-api.log" | uniq -c; cat "$WORK/curl-api.err"
  [ "$(grep -c '^200 ' "$WORK/curl-api.log")" -eq 20000 ] || rc=1
  grep -q '^Failed requests: *0$' "$WORK/ab-small.log" || rc=1
  grep -q '^Failed requests: *0$' "$WORK/ab-gzip.log" || rc=1
  return $rc
}
MN_PID=
netem_on() {  # server->client segments of $LOSSY_PORT through mini-netem
  ip netns exec "$NS_S" "$WORK/mini-netem" $NFQ_NUM 1 1000 1 88 > "$WORK/mini-netem.out" 2> "$WORK/mini-netem.log" &
  MN_PID=$!; PIDS+=("$MN_PID")
  for i in $(seq 50); do grep -q ready "$WORK/mini-netem.out" && break; sleep 0.1; done
  grep -q ready "$WORK/mini-netem.out" || die "mini-netem did not start: $(cat "$WORK/mini-netem.log")"
  ip netns exec "$NS_S" iptables -w -A OUTPUT -p tcp -s "$SRV" --sport $LOSSY_PORT -d "$CLI" \
    -j NFQUEUE --queue-num $NFQ_NUM
}
netem_off() {
  sleep 2
  ip netns exec "$NS_S" iptables -w -D OUTPUT -p tcp -s "$SRV" --sport $LOSSY_PORT -d "$CLI" \
    -j NFQUEUE --queue-num $NFQ_NUM
  kill -TERM "$MN_PID"; wait "$MN_PID" || true
  cat "$WORK/mini-netem.log"
}
run_lossy() {  # $1 = unused knob (rate cap)
  local rate=$1 i pids=() rc=0
  netem_on
  for i in 1 2 3; do
    ip netns exec "$NS_C" taskset -c $LOAD_CPU curl -sS -o /dev/null \
      -w 'conn '"$i"' http=%{http_code} bytes=%{size_download} t=%{time_total}s\n' \
      "http://$SRV:$LOSSY_PORT/big3.bin?rate=$rate&c=$i" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  netem_off
  return $rc
}
run_train() {  # $1 = concurrency per client
  local rc=0 round
  clear_client_logs
  # Short connections in 5 rounds 0.8 s apart, so that the capture spans
  # more than the 2 s a finished connection waits for its summary.
  for round in 1 2 3 4 5; do
    short_clients "$1" 80 10 10 || rc=1
    sleep 0.8
  done
  # one keep-alive connection, two downloads of 512 KiB (range requests)
  ip netns exec "$NS_C" taskset -c $LOAD_CPU curl -sS -r 0-524287 -o /dev/null -o /dev/null \
    -w 'conn 1 http=%{http_code} bytes=%{size_download} reused_conns=%{num_connects} t=%{time_total}s\n' \
    "http://$SRV:$PORT/big1.bin" "http://$SRV:$PORT/big2.bin" || rc=1
  netem_on
  ip netns exec "$NS_C" taskset -c $LOAD_CPU curl -sS -r 0-1048575 -o /dev/null \
    -w 'conn 2 http=%{http_code} bytes=%{size_download} t=%{time_total}s\n' \
    "http://$SRV:$LOSSY_PORT/big3.bin" || rc=1
  netem_off
  grep -E '^(Complete|Failed) requests' "$WORK/ab-small.log" "$WORK/ab-gzip.log"
  sort "$WORK/curl-api.log" | uniq -c; cat "$WORK/curl-api.err"
  [ "$(grep -c '^200 ' "$WORK/curl-api.log")" -eq 50 ] || rc=1
  [ "$(grep -c '^Failed requests: *0$' "$WORK/ab-small.log")" -eq 5 ] || rc=1
  [ "$(grep -c '^Failed requests: *0$' "$WORK/ab-gzip.log")" -eq 5 ] || rc=1
  return $rc
}

# ------------------------------------------------------------------ build ---
valid_pcap() { [ -s "$1" ] && capinfos -c "$1" >/dev/null 2>&1; }

describe() {  # write $OUT_DIR/NAME.info
  local name=$1 f=$OUT_DIR/$1.pcap info=$OUT_DIR/$1.info stats=$2
  log "$name: verifying (capinfos, SYN count, tshark conv,tcp, analysis flags)"
  {
    echo "# $name.pcap -- generated $(date -u +%FT%TZ) by make-bench-pcaps.sh"
    echo "tcpdump: captured/received_by_filter/dropped_by_kernel = $stats"
    echo
    capinfos -M "$f"
    echo
    echo "pure SYNs (connection attempts): $(tcpdump -nr "$f" 'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn' 2>/dev/null | wc -l)"
    # TCP reassembly off: with it on, tshark reassembles every HTTP body and is
    # super-linear on 100+ MiB bodies; sequence analysis does not depend on it.
    tshark -r "$f" -q -o tcp.desegment_tcp_streams:FALSE -z conv,tcp \
      -z 'io,stat,0,tcp.analysis.flags,tcp.analysis.retransmission,tcp.analysis.fast_retransmission,tcp.analysis.spurious_retransmission,tcp.analysis.duplicate_ack,tcp.analysis.out_of_order,tcp.analysis.lost_segment,tcp.analysis.ack_lost_segment,tcp.analysis.zero_window,tcp.analysis.window_full,tcp.analysis.reused_ports' \
      > "$info.tshark" 2>/dev/null
    echo "tshark conv,tcp rows (TCP conversations): $(grep -c '<->' "$info.tshark")"
    echo "tshark tcp.analysis frame counts (io,stat, whole file):"
    sed -n '/IO Statistics/,/^=====/p' "$info.tshark"
    rm -f "$info.tshark"
    echo "sha256: $(sha256sum "$f" | cut -d' ' -f1)"
  } > "$info.tmp"
  mv "$info.tmp" "$info"
  cat "$info" >&2
}

build_one() {
  local name=$1 f=$OUT_DIR/$1.pcap part=$OUT_DIR/.$1.pcap.part
  # attempt knobs, from fastest to most throttled: bulk/lossy = nginx per-connection
  # rate cap (bytes/s, 0 = unlimited); many = client concurrency
  local knobs
  case $name in
    bulk)  knobs="0 60m 25m" ;;
    many)  knobs="50 20 8" ;;
    lossy) knobs="0 20m 8m" ;;
    train) knobs="10 4" ;;
  esac
  local k stats drop
  for k in $knobs; do
    log "$name: capturing (knob=$k)"
    start_capture "$part"
    case $name in
      bulk)  run_bulk "$k" ;;
      many)  run_many "$k" ;;
      lossy) run_lossy "$k" ;;
      train) run_train "$k" ;;
    esac > "$OUT_DIR/$name.clients.log" 2>&1 || { cat "$OUT_DIR/$name.clients.log" >&2; die "$name: client reported errors"; }
    grep -E '^conn |^Complete requests|^Failed requests|^Document Length|^ *[0-9]+ 200 |mini-netem:' "$OUT_DIR/$name.clients.log" >&2 || true
    stats=$(stop_capture "$part")
    drop=$(echo "$stats" | awk '{print $3}')
    log "$name: tcpdump captured/received/dropped = $stats"
    if [ "$drop" = 0 ]; then break; fi
    log "$name: kernel dropped $drop packets -- retrying with more throttling"
  done
  [ "$drop" = 0 ] || log "WARNING: $name still has $drop kernel drops at the most throttled setting"
  mv "$part" "$f"; mv "$part.log" "$OUT_DIR/$name.tcpdump.log"
  chmod 644 "$f"
  describe "$name" "$stats"
}

main() {
  local t todo=()
  for t in "${TARGETS[@]}"; do
    if [ $FORCE -eq 0 ] && valid_pcap "$OUT_DIR/$t.pcap" && [ -s "$OUT_DIR/$t.info" ]; then
      log "$t.pcap exists and is valid -- skipping (use --force to rebuild)"
    else
      todo+=("$t")
    fi
  done
  if [ ${#todo[@]} -gt 0 ]; then
    install_deps
    mkdir -p "$OUT_DIR" "$WORK"
    make_content
    build_mini_netem
    setup_net
    start_nginx
    for t in "${todo[@]}"; do build_one "$t"; done
  fi
  log "done: $(ls -l "$OUT_DIR"/*.pcap | awk '{print $5, $9}' | tr '\n' ' ')"
}
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then main; fi
