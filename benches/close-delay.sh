#!/usr/bin/env bash
# What the close delay buys, and what it costs. See benches/README.md.
#
#   benches/close-delay.sh [--chattcp BIN] [--delays '0 0.1 0.25 0.5 1 2']
#                          [--rounds N --time FILE [--with-tshark]] [FILE|DIR...]
#
# For each delay: how many connections of the captures get a summary
# (`conns --json`) other than the one an unbounded wait gives, and, with
# --rounds N, `conns`'s median time on the --time capture (and, with
# --with-tshark, how many times faster than `tshark -q -z conv,tcp` there,
# timed in the same rounds).
set -euo pipefail
# The build benches/run.sh times (profile-guided), else the plain dist one.
if [ -z "${CHATTCP:-}" ]; then
  CHATTCP=target/pgo-use/dist/chattcp
  [ -x "$CHATTCP" ] || CHATTCP=target/dist/chattcp
fi
DELAYS="0 0.1 0.25 0.5 1 2"
ROUNDS=0
TIMED=""
TSHARK=0
FILES=()
while [ $# -gt 0 ]; do
  case $1 in
    --chattcp) CHATTCP=$2; shift ;;
    --delays) DELAYS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --time) TIMED=$2; shift ;;
    --with-tshark) TSHARK=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) FILES+=("$1") ;;
  esac
  shift
done
case $ROUNDS in
  ''|*[!0-9]*) echo "--rounds takes a whole number, not '$ROUNDS'" >&2; exit 2 ;;
esac
if [ ${#FILES[@]} -eq 0 ] && [ -z "$TIMED" ]; then
  echo "usage: benches/close-delay.sh [--chattcp BIN] [--delays '0 0.5 2'] [--rounds N --time FILE [--with-tshark]] [FILE|DIR...]" >&2
  exit 2
fi
if [ "$ROUNDS" -gt 0 ] && [ -z "$TIMED" ]; then
  echo "--rounds needs --time FILE: the capture to time" >&2
  exit 2
fi
if [ "$ROUNDS" -eq 0 ] && [ -n "$TIMED" ]; then
  echo "--time needs --rounds N: how many rounds to time" >&2
  exit 2
fi
[ -x "$CHATTCP" ] || { echo "no chattcp binary at $CHATTCP (build with: cargo build --profile dist, or give --chattcp)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is missing" >&2; exit 2; }
if [ "$TSHARK" -eq 1 ] && ! command -v tshark >/dev/null; then
  echo "--with-tshark: tshark is missing (apt-get install tshark)" >&2
  exit 2
fi
if [ "$ROUNDS" -gt 0 ] && [ ! -x /usr/bin/time ]; then
  echo "/usr/bin/time is missing (apt-get install time)" >&2
  exit 2
fi

exec python3 - "$CHATTCP" "$DELAYS" "$ROUNDS" "$TIMED" "$TSHARK" "${FILES[@]}" <<'PY'
import hashlib, os, statistics, subprocess, sys

chattcp, delays, rounds, timed = sys.argv[1], sys.argv[2].split(), int(sys.argv[3]), sys.argv[4]
with_tshark, paths = sys.argv[5] == "1", sys.argv[6:]
# The longest wait chattcp takes, with no limit on connections held
# meanwhile: every late packet, however late, counts in its summary (as
# in tshark's conversations, which never end).
UNBOUNDED = ["--close-delay", "3600", "--max-connections", "100000000"]

def captures(path):
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            if name.endswith((".pcap", ".pcapng", ".cap")):
                yield os.path.join(path, name)
    else:
        yield path

def summaries(path, options):
    run = subprocess.Popen([chattcp, "conns", "--json", *options, path],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    # Keyed by number, since the order of JSON lines follows the
    # summaries' making, which the delay moves; a digest of each line
    # keeps a big capture's summaries in a few MiB.
    got = {}
    for line in run.stdout:
        number = int(line[len(b'{"conn":'):line.index(b",")])
        got[number] = hashlib.blake2b(line, digest_size=16).digest()
    if run.wait() != 0 and not got:
        return None  # a file chattcp refuses: nothing to compare
    return got

files = [f for p in paths for f in captures(p)]
if files:
    changed = {d: 0 for d in delays}
    where = {d: [] for d in delays}
    total = 0
    refused = []
    for f in files:
        reference = summaries(f, UNBOUNDED)
        if reference is None:
            refused.append(os.path.basename(f))
            continue
        total += len(reference)
        for d in delays:
            got = summaries(f, ["--close-delay", d])
            n = sum(1 for c, s in reference.items() if got.get(c) != s)
            n += sum(1 for c in got if c not in reference)
            changed[d] += n
            if n:
                where[d].append(f"{os.path.basename(f)} ({n})")
    print(f"{len(files) - len(refused)} captures, {total} connections: summaries other than an unbounded wait's")
    if refused:
        print(f"(not read, chattcp refuses them: {', '.join(refused)})")
    print(f"{'delay (s)':>10}  {'changed':>7}  where")
    for d in delays:
        print(f"{d:>10}  {changed[d]:>7}  {', '.join(where[d]) or '-'}")

if rounds:
    def timed_run(command):
        # /usr/bin/time, a small process, forks the command: its peak is
        # then the command's own, not this script's.
        run = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", *command],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0:
            sys.exit(f"{' '.join(command)} failed: {run.stderr.strip()}")
        wall, user, system, rss = map(float, run.stderr.split()[-4:])
        return wall, user + system, rss / 1024
    def once(d):
        return timed_run([chattcp, "conns", "--close-delay", d, timed])
    tshark = ["tshark", "-q", "-z", "conv,tcp", "-r", timed]
    for d in delays:
        once(d)  # from the page cache, like every timed run
    runs = {d: [] for d in delays}
    tshark_walls = []
    for i in range(rounds):
        if with_tshark:
            tshark_walls.append(timed_run(tshark)[0])
        # Each round in another order, so that a drift of the machine's
        # speed falls on every delay alike.
        order = delays[i % len(delays):] + delays[:i % len(delays)]
        for d in order:
            runs[d].append(once(d))
    print(f"\n`conns` on {timed}, medians of {rounds} rounds")
    if with_tshark:
        tshark_wall = statistics.median(tshark_walls)
        print(f"(tshark -q -z conv,tcp: {tshark_wall:.3f} s; by round: "
              + ", ".join(f"{w:.2f}" for w in tshark_walls) + ")")
    print(f"{'delay (s)':>10}  {'wall (s)':>8}  {'CPU (s)':>7}  {'peak MiB':>8}"
          + ("  x tshark" if with_tshark else ""))
    for d in delays:
        wall, cpu, rss = (statistics.median(x) for x in zip(*runs[d]))
        ratio = "" if not with_tshark else f"  {tshark_wall / wall:>8.2f}" if wall > 0 else f"  {'-':>8}"
        print(f"{d:>10}  {wall:>8.3f}  {cpu:>7.3f}  {rss:>8.1f}{ratio}")
PY
