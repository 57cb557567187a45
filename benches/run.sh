#!/usr/bin/env bash
# End-to-end benchmark: chattcp against the read floor and its peers, on the
# three benchmark captures, in one run, on one machine. See benches/README.md.
#
#   benches/run.sh [--runs N] [--with-tshark] [bulk] [many] [lossy]
#
# Captures come from $BENCH_DATA_DIR (default /var/tmp/chattcp-bench); a
# missing one is recorded first with benches/make-bench-pcaps.sh (root).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${BENCH_DATA_DIR:-/var/tmp/chattcp-bench}
OUT=${BENCH_OUT:-$ROOT/target/bench}
RUNS=3
TSHARK=0
FILES=()
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --with-tshark) TSHARK=1 ;;
    bulk|many|lossy) FILES+=("$1") ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[ ${#FILES[@]} -eq 0 ] && FILES=(bulk many lossy)

need() { command -v "$1" >/dev/null 2>&1; }
missing=()
for tool in hyperfine tcpdump tcptrace tcpflow; do need "$tool" || missing+=("$tool"); done
if [ "$TSHARK" = 1 ] && ! need tshark; then missing+=(tshark); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
  else
    echo "missing: ${missing[*]} (apt-get install them, or run as root)" >&2
  fi
fi

(cd "$ROOT" && cargo build --release -q)
BIN=$ROOT/target/release/chattcp
mkdir -p "$OUT"

for f in "${FILES[@]}"; do
  pcap=$DATA/$f.pcap
  if [ ! -s "$pcap" ]; then
    echo "== recording $f.pcap (benches/make-bench-pcaps.sh, needs root)" >&2
    BENCH_DATA_DIR=$DATA "$ROOT/benches/make-bench-pcaps.sh" "$f"
  fi
done

for f in "${FILES[@]}"; do
  pcap=$DATA/$f.pcap
  cmds=(-n "read floor (tcpdump -r F -w /dev/null)" "tcpdump -r $pcap -w /dev/null 2>/dev/null"
        -n "chattcp conns" "$BIN conns $pcap > /dev/null"
        -n "chattcp conns --threads 1" "$BIN conns --threads 1 $pcap > /dev/null"
        -n "chattcp run dissect_only.rhai" "$BIN run $ROOT/benches/dissect_only.rhai $pcap > /dev/null"
        -n "chattcp diagnose" "$BIN diagnose $pcap > /dev/null"
        -n "chattcp diagnose --threads 1" "$BIN diagnose --threads 1 $pcap > /dev/null"
        -n "chattcp follow --conn 0" "$BIN follow $pcap --conn 0 > /dev/null")
  need tcptrace && cmds+=(-n "tcptrace -n" "tcptrace -n $pcap > /dev/null")
  need tcpflow && mkdir -p "$OUT/tcpflow" && cmds+=(-n "tcpflow -c" "tcpflow -c -o $OUT/tcpflow -r $pcap > /dev/null")
  echo "== $f.pcap ($(du -h "$pcap" | cut -f1))" >&2
  # One warm-up run brings the file into the page cache for every command alike.
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$OUT/$f.json" "${cmds[@]}" >/dev/null 2>&1 \
    || hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/$f.json" "${cmds[@]}" >/dev/null
  rm -f "$OUT/$f.tshark.time"
  if [ "$TSHARK" = 1 ] && need tshark; then
    # Minutes per file (680 s on bulk): one run, the file already cached;
    # its wall time and peak memory from the same run.
    /usr/bin/time -f "%e %M" -o "$OUT/$f.tshark.time" tshark -q -z conv,tcp -r "$pcap" >/dev/null 2>&1 || true
  fi
  for c in conns diagnose; do
    /usr/bin/time -f "%M" -o "$OUT/$f.$c.rss" "$BIN" $c "$pcap" >/dev/null
  done
  /usr/bin/time -f "%M" -o "$OUT/$f.diagnose1.rss" "$BIN" diagnose --threads 1 "$pcap" >/dev/null
done

python3 - "$OUT" "${FILES[@]}" <<'PY'
import json, sys, os
out, files = sys.argv[1], sys.argv[2:]
print(f"{'capture':8} {'command':34} {'median s':>9} {'x floor':>8} {'vs chattcp conns':>17}")
for f in files:
    res = json.load(open(os.path.join(out, f + ".json")))["results"]
    t = os.path.join(out, f + ".tshark.time")
    tshark_rss = None
    if os.path.exists(t) and open(t).read().split():
        secs, rss = open(t).read().split()[-2:]
        res.append({"command": "tshark -q -z conv,tcp (one run)", "median": float(secs)})
        tshark_rss = int(rss)
    med = {r["command"]: r["median"] for r in res}
    floor = next(v for k, v in med.items() if k.startswith("read floor"))
    conns = med.get("chattcp conns")
    for k, v in med.items():
        vs = "" if k.startswith("chattcp") or conns is None else f"{v / conns:.2f}x slower" if v >= conns else f"{conns / v:.2f}x faster"
        print(f"{f:8} {k:34} {v:9.3f} {v / floor:8.2f} {vs:>17}")
    for c, label in (("conns", "chattcp conns"), ("diagnose", "chattcp diagnose"), ("diagnose1", "chattcp diagnose --threads 1")):
        p = os.path.join(out, f"{f}.{c}.rss")
        if os.path.exists(p):
            print(f"{f:8} {'peak RSS ' + label:34} {int(open(p).read().split()[-1]) / 1024:8.1f} MiB")
    if tshark_rss:
        print(f"{f:8} {'peak RSS tshark':34} {tshark_rss / 1024:8.1f} MiB")
    one = med.get("chattcp conns --threads 1")
    if one and conns:
        print(f"{f:8} {'speed-up of --threads (all cores)':34} {one / conns:9.2f}")
    d = med.get("chattcp diagnose")
    if d and conns:
        print(f"{f:8} {'diagnose / conns':34} {d / conns:9.2f}")
    dis = med.get("chattcp run dissect_only.rhai")
    if d and dis:
        print(f"{f:8} {'diagnose / dissection alone':34} {d / dis:9.2f}")
    d1 = med.get("chattcp diagnose --threads 1")
    if d and d1:
        print(f"{f:8} {'speed-up of diagnose --threads':34} {d1 / d:9.2f}")
PY
