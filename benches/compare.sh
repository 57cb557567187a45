#!/usr/bin/env bash
# Is B faster than A? Two commands timed in alternating rounds, on one
# machine, with the ratio taken within each round. See benches/README.md.
#
#   benches/compare.sh [--rounds N] 'command A' 'command B'
#
# Each command runs through bash (so 'VAR=1 chattcp ...' works), its output
# thrown away. Give the same command twice to see this machine's noise.
set -euo pipefail
ROUNDS=10
ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done
if [ ${#ARGS[@]} -ne 2 ]; then
  echo "usage: benches/compare.sh [--rounds N] 'command A' 'command B'" >&2
  exit 2
fi
case $ROUNDS in
  ''|*[!0-9]*) echo "--rounds takes a whole number, not '$ROUNDS'" >&2; exit 2 ;;
esac
if [ "$ROUNDS" -lt 2 ]; then
  echo "--rounds must be at least 2" >&2
  exit 2
fi
if [ ! -x /usr/bin/time ]; then
  echo "/usr/bin/time is missing (apt-get install time)" >&2
  exit 2
fi
command -v python3 >/dev/null || { echo "python3 is missing" >&2; exit 2; }

TIMES=$(mktemp)
trap 'rm -f "$TIMES" "$TIMES.err"' EXIT

# One run of command $2, labelled $1: CPU (user + system), wall, peak RSS.
run() {
  if ! /usr/bin/time -o "$TIMES.err" -f "$1 %U %S %e %M" bash -c "$2" >/dev/null 2>&1; then
    echo "command $1 failed: $2" >&2
    exit 1
  fi
  cat "$TIMES.err" >>"$TIMES"
}

# A warm-up of each, so that both read from the page cache.
run A "${ARGS[0]}"
run B "${ARGS[1]}"
: >"$TIMES"
# A then B, then B then A: whatever drifts over a round (the machine's
# other load, its clock) falls on both alike.
for i in $(seq 1 "$ROUNDS"); do
  if [ $((i % 2)) -eq 1 ]; then
    run A "${ARGS[0]}"; run B "${ARGS[1]}"
  else
    run B "${ARGS[1]}"; run A "${ARGS[0]}"
  fi
done

python3 - "$TIMES" "${ARGS[0]}" "${ARGS[1]}" <<'PY'
import sys
from statistics import median

path, cmd_a, cmd_b = sys.argv[1:4]
runs = {"A": [], "B": []}
for line in open(path):
    label, user, sys_, wall, rss = line.split()
    runs[label].append((float(user) + float(sys_), float(wall), int(rss) / 1024))
a, b = runs["A"], runs["B"]

def spread(values):
    """The middle 80% of values: a range, not a confidence interval."""
    s = sorted(values)
    return s[round(0.1 * (len(s) - 1))], s[round(0.9 * (len(s) - 1))]

print(f"A: {cmd_a}")
print(f"B: {cmd_b}")
print(f"{len(a)} rounds")
print(f"{'':10} {'A median':>9} {'B median':>9} {'B/A (median of rounds)':>24} {'middle 80%':>14} {'B faster':>9}")
for name, k in (("CPU (s)", 0), ("wall (s)", 1)):
    ratios = [y[k] / x[k] for x, y in zip(a, b) if x[k] > 0]
    if not ratios:
        print(f"{name:10} too short to time (0.00 s)")
        continue
    lo, hi = spread(ratios)
    faster = sum(r < 1 for r in ratios)
    print(f"{name:10} {median(x[k] for x in a):9.3f} {median(y[k] for y in b):9.3f} "
          f"{median(ratios):24.3f} {lo:6.3f}-{hi:<7.3f} {faster:>4}/{len(ratios)}")
print(f"{'peak MiB':10} {max(x[2] for x in a):9.1f} {max(y[2] for y in b):9.1f}")
PY
