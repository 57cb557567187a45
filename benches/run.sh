#!/usr/bin/env bash
# End-to-end benchmark: chattcp against the read floor and its peers, on the
# three benchmark captures, in one run, on one machine. See benches/README.md.
#
#   benches/run.sh [--runs N] [--with-tshark] [--no-script-host] [--no-pgo] [bulk] [many] [lossy]
#
# chattcp is built by benches/pgo-build.sh (the `dist` profile, optimised
# with a training run's profile); --no-pgo measures the plain `dist` build.
#
# Captures come from $BENCH_DATA_DIR (default /var/tmp/chattcp-bench); a
# missing one is recorded first with benches/make-bench-pcaps.sh (root).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${BENCH_DATA_DIR:-/var/tmp/chattcp-bench}
OUT=${BENCH_OUT:-$ROOT/target/bench}
RUNS=3
TSHARK=0
SCRIPT_HOST=1
PGO=1
FILES=()
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift ;;
    --with-tshark) TSHARK=1 ;;
    --no-script-host) SCRIPT_HOST=0 ;;
    --no-pgo) PGO=0 ;;
    bulk|many|lossy) FILES+=("$1") ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
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

# The distributed build: Cargo.toml's `dist` profile (whole-program
# optimisation), and with profile-guided optimisation unless --no-pgo.
if [ "$PGO" = 1 ]; then
  BUILD="dist profile + PGO (benches/pgo-build.sh, trained on captures/ and benches/pgo-train.pcap)"
  rc=0
  BIN=$("$ROOT/benches/pgo-build.sh") || rc=$?
  if [ "$rc" = 3 ]; then
    echo "no profile-guided build (above); measuring the plain dist build" >&2
    PGO=0
  elif [ "$rc" != 0 ]; then
    exit "$rc"
  fi
fi
if [ "$PGO" = 0 ]; then
  BUILD="dist profile, no PGO"
  (cd "$ROOT" && cargo build --profile dist -q)
  BIN=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")/dist/chattcp
fi
mkdir -p "$OUT"

for f in "${FILES[@]}"; do
  pcap=$DATA/$f.pcap
  if [ ! -s "$pcap" ]; then
    echo "== recording $f.pcap (benches/make-bench-pcaps.sh, needs root)" >&2
    BENCH_DATA_DIR=$DATA "$ROOT/benches/make-bench-pcaps.sh" "$f"
  fi
done

# The commands timed on capture $1, in `cmds` (the warm-up's in `warm`);
# `tshark_rounds` says whether tshark runs in every round.
commands_for() {
  local f=$1 pcap=$DATA/$1.pcap
  cmds=(-n "read floor (tcpdump -r F -w /dev/null)" "tcpdump -r $pcap -w /dev/null 2>/dev/null"
        -n "chattcp conns" "$BIN conns $pcap > /dev/null"
        -n "chattcp conns --threads 1" "$BIN conns --threads 1 $pcap > /dev/null"
        -n "chattcp conns --tcp-only" "$BIN conns --tcp-only $pcap > /dev/null"
        -n "chattcp conns --json" "$BIN conns --json $pcap > /dev/null"
        -n "chattcp conns --close-delay 0" "$BIN conns --close-delay 0 $pcap > /dev/null"
        -n "chattcp run dissect_only.rhai" "$BIN run $ROOT/benches/dissect_only.rhai $pcap > /dev/null"
        -n "chattcp diagnose" "$BIN diagnose $pcap > /dev/null"
        -n "chattcp diagnose --threads 1" "$BIN diagnose --threads 1 $pcap > /dev/null"
        -n "chattcp follow --conn 0" "$BIN follow $pcap --conn 0 > /dev/null")
  need tcptrace && cmds+=(-n "tcptrace -n" "tcptrace -n $pcap > /dev/null")
  need tcpflow && mkdir -p "$OUT/tcpflow" && cmds+=(-n "tcpflow -c" "tcpflow -c -o $OUT/tcpflow -r $pcap > /dev/null")
  warm=("${cmds[@]}")
  # tshark takes minutes per file (18 on bulk): below 512 MiB it runs in
  # every round like the others, so that its ratio is paired too; above,
  # once, after the rounds.
  tshark_rounds=0
  if [ "$TSHARK" = 1 ] && need tshark && [ "$(stat -c %s "$pcap")" -lt $((512 << 20)) ]; then
    tshark_rounds=1
    cmds+=(-n "tshark -q -z conv,tcp" "tshark -q -z conv,tcp -r $pcap > /dev/null")
  fi
}

# One warm-up run per capture brings the files into the page cache for
# every command alike.
for f in "${FILES[@]}"; do
  commands_for "$f"
  echo "== $f.pcap ($(du -h "$DATA/$f.pcap" | cut -f1))" >&2
  rm -f "$OUT/$f".round*.json
  hyperfine -N --runs 1 "${warm[@]}" >/dev/null 2>&1 || hyperfine --runs 1 "${warm[@]}" >/dev/null
done
# Then rounds: each round runs every command of a capture once, in turn,
# so that a machine slowing down or speeding up (a shared host's
# neighbours) moves all commands alike; the ratios are taken within each
# round. The captures take turns round by round, so that each capture's
# rounds are spread over the whole run: this machine's slow stretches last
# minutes, and when one capture's rounds ran back to back, one stretch could
# take most of them (many.pcap's five rounds took 2.5 minutes).
for round in $(seq 1 "$RUNS"); do
  for f in "${FILES[@]}"; do
    commands_for "$f"
    echo "== $f.pcap, round $round of $RUNS" >&2
    hyperfine -N --runs 1 --export-json "$OUT/$f.round$round.json" "${cmds[@]}" >/dev/null 2>&1 \
      || hyperfine --runs 1 --export-json "$OUT/$f.round$round.json" "${cmds[@]}" >/dev/null
  done
done
for f in "${FILES[@]}"; do
  pcap=$DATA/$f.pcap
  commands_for "$f"
  rm -f "$OUT/$f.tshark.time" "$OUT/$f.tshark.rss"
  if [ "$tshark_rounds" = 1 ]; then
    # Its peak memory, from one more run.
    /usr/bin/time -f "%M" -o "$OUT/$f.tshark.rss" tshark -q -z conv,tcp -r "$pcap" >/dev/null 2>&1 || true
  elif [ "$TSHARK" = 1 ] && need tshark; then
    # One run, the file already cached; its wall time and peak memory
    # from the same run.
    echo "== $f.pcap, tshark once" >&2
    /usr/bin/time -f "%e %M" -o "$OUT/$f.tshark.time" tshark -q -z conv,tcp -r "$pcap" >/dev/null 2>&1 || true
  fi
  for c in conns diagnose; do
    /usr/bin/time -f "%M" -o "$OUT/$f.$c.rss" "$BIN" $c "$pcap" >/dev/null
  done
  /usr/bin/time -f "%M" -o "$OUT/$f.diagnose1.rss" "$BIN" diagnose --threads 1 "$pcap" >/dev/null
  /usr/bin/time -f "%M" -o "$OUT/$f.json.rss" "$BIN" conns --json "$pcap" >/dev/null
  /usr/bin/time -f "%M" -o "$OUT/$f.nodelay.rss" "$BIN" conns --close-delay 0 "$pcap" >/dev/null
done

echo "chattcp: $BIN, $BUILD"
python3 - "$OUT" "$RUNS" "${FILES[@]}" <<'PY'
import json, sys, os
from statistics import median
out, runs, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print(f"{'capture':8} {'command':34} {'median s':>9} {'x floor':>8} {'vs chattcp conns':>17}")
for f in files:
    # Each round: every command once. Times per command across rounds, and
    # ratios within a round (both commands ran under the same conditions).
    rounds = []
    for r in range(1, runs + 1):
        res = json.load(open(os.path.join(out, f"{f}.round{r}.json")))["results"]
        rounds.append({x["command"]: x["times"][0] for x in res})
    names = list(rounds[0])
    floor_name = next(k for k in names if k.startswith("read floor"))
    med = {k: median(r[k] for r in rounds) for k in names}
    ratio = lambda a, b: median(r[a] / r[b] for r in rounds)
    t = os.path.join(out, f + ".tshark.time")
    tshark_rss = None
    if os.path.exists(t) and open(t).read().split():
        secs, rss = open(t).read().split()[-2:]
        tshark_rss = int(rss)
    t_rss = os.path.join(out, f + ".tshark.rss")
    if os.path.exists(t_rss) and open(t_rss).read().split():
        tshark_rss = int(open(t_rss).read().split()[-1])
        secs = None
    conns = "chattcp conns"
    for k in names:
        vs = ""
        if not k.startswith("chattcp"):
            q = ratio(k, conns)
            vs = f"{q:.2f}x slower" if q >= 1 else f"{1 / q:.2f}x faster"
        print(f"{f:8} {k:34} {med[k]:9.3f} {ratio(k, floor_name):8.2f} {vs:>17}")
    if tshark_rss and secs is not None:
        secs = float(secs)
        print(f"{f:8} {'tshark -q -z conv,tcp (one run)':34} {secs:9.3f} {secs / med[floor_name]:8.2f} {f'{secs / med[conns]:.2f}x slower':>17}")
    for c, label in (("conns", "chattcp conns"), ("json", "chattcp conns --json"), ("nodelay", "chattcp conns --close-delay 0"), ("diagnose", "chattcp diagnose"), ("diagnose1", "chattcp diagnose --threads 1")):
        p = os.path.join(out, f"{f}.{c}.rss")
        if os.path.exists(p):
            print(f"{f:8} {'peak RSS ' + label:34} {int(open(p).read().split()[-1]) / 1024:8.1f} MiB")
    if tshark_rss:
        print(f"{f:8} {'peak RSS tshark':34} {tshark_rss / 1024:8.1f} MiB")
    pairs = (
        ("speed-up of --threads (all cores)", "chattcp conns --threads 1", conns),
        ("conns / conns --tcp-only", conns, "chattcp conns --tcp-only"),
        ("conns --json / conns", "chattcp conns --json", conns),
        ("conns / conns --close-delay 0", conns, "chattcp conns --close-delay 0"),
        ("diagnose / conns", "chattcp diagnose", conns),
        ("diagnose / dissection alone", "chattcp diagnose", "chattcp run dissect_only.rhai"),
        ("speed-up of diagnose --threads", "chattcp diagnose --threads 1", "chattcp diagnose"),
    )
    for label, a, b in pairs:
        if a in med and b in med:
            print(f"{f:8} {label:34} {ratio(a, b):9.2f}")
PY

# The script host's own figures, in the same run and build: packets per
# second through a rhai `on_packet` handler, and events per second through
# `on_http_response` and `on_close` (benches/script_host.rs, built like the
# binary above). One process per round, `--runs` rounds: the machine's slow
# stretches last seconds to minutes and take a whole process's figures down
# with them, so one process's figure alone says more about the machine than
# about the host. Printed: the median over the rounds, then the range.
if [ "$SCRIPT_HOST" = 1 ]; then
  bench=(bench -q --profile dist --bench script_host -- --noplot)
  host_out=$OUT/script-host.txt
  : >"$host_out"
  for round in $(seq 1 "$RUNS"); do
    if [ "$PGO" = 1 ]; then
      "$ROOT/benches/pgo-build.sh" --cargo "${bench[@]}" 2>/dev/null
    else
      (cd "$ROOT" && cargo "${bench[@]}" 2>/dev/null)
    fi \
      | awk -v round="$round" '/^on_[a-z_]*\// { name = $1 } /thrpt:/ && name { print round, name, $4, $5; name = "" }' >>"$host_out"
  done
  if [ ! -s "$host_out" ]; then
    # Its build's and its own errors are not shown above.
    echo "script host: no figures (run 'benches/pgo-build.sh --cargo bench --profile dist --bench script_host' to see why)" >&2
  fi
  python3 - "$host_out" <<'PY'
import statistics, sys
scale = {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9}
figures = {}
for line in open(sys.argv[1]):
    _, name, value, unit = line.split()
    figures.setdefault(name, []).append(float(value) * scale[unit])
def short(v):
    return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.0f} K"
for name, values in figures.items():
    what = "packets/s" if name.startswith("on_packet") else "events/s"
    spread = f"({short(min(values))}-{short(max(values))}, {len(values)} rounds)"
    print(f"{'script':8} {name:34} {short(statistics.median(values)):>9} {what} {spread}")
PY
fi
