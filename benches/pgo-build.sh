#!/usr/bin/env bash
# The fastest build of chattcp: the `dist` profile, optimised with the
# profile of a training run (profile-guided optimisation, PGO). See
# benches/README.md, "The profile-guided build".
#
#   benches/pgo-build.sh                 builds, then prints the binary's path
#   benches/pgo-build.sh --cargo ARGS    builds, then runs `cargo ARGS` with the
#                                        same profile (e.g. `bench --profile dist
#                                        --bench script_host`)
#
# 1. An instrumented build (target/pgo-generate) counts, as it runs, how often
#    each branch and call is taken.
# 2. It runs over the example captures of captures/ and over
#    benches/pgo-train.pcap (real traffic of the benchmark's three kinds,
#    recorded apart from its captures by `make-bench-pcaps.sh train`, 3.4 MB):
#    every command, and the handlers of benches/pgo-train.rhai.
# 3. llvm-profdata merges the counts; the build of target/pgo-use is
#    optimised with them (hot paths laid out straight, cold ones moved away,
#    inlining by use).
# Training runs again only when the instrumented binary changed. Needs
# llvm-profdata of rustc's LLVM version: $LLVM_PROFDATA, rustup's llvm-tools,
# or llvm-profdata-N on the PATH (installed with apt-get when run as root).
# Exits 3, having built nothing, when there is none.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")
CARGO_ARGS=()
if [ "${1:-}" = --cargo ]; then
  shift
  CARGO_ARGS=("$@")
elif [ $# -gt 0 ]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
STATE=$TARGET/pgo
GEN_DIR=$TARGET/pgo-generate
USE_DIR=$TARGET/pgo-use
cd "$ROOT"

llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
host=$(rustc -vV | sed -n 's/^host: //p')
matches() { "$1" --version 2>/dev/null | grep -q "LLVM version $llvm_major\."; }
find_profdata() {
  local c
  for c in "${LLVM_PROFDATA:-}" \
    "$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata" \
    "$(command -v "llvm-profdata-$llvm_major" || true)" \
    "$(command -v llvm-profdata || true)"; do
    if [ -n "$c" ] && [ -x "$c" ] && matches "$c"; then
      echo "$c"
      return 0
    fi
  done
  return 1
}
if ! profdata=$(find_profdata); then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    # A fresh machine's package lists may be empty.
    apt-cache show "llvm-$llvm_major" >/dev/null 2>&1 || apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "llvm-$llvm_major" >/dev/null 2>&1 || true
  fi
  if ! profdata=$(find_profdata) && command -v rustup >/dev/null; then
    rustup component add llvm-tools >/dev/null 2>&1 || true
  fi
  if ! profdata=$(find_profdata); then
    echo "pgo-build: no llvm-profdata of LLVM $llvm_major (rustc's); install llvm-$llvm_major," \
      "or run 'rustup component add llvm-tools', or set LLVM_PROFDATA" >&2
    exit 3
  fi
fi

mkdir -p "$STATE"
RAW=$STATE/raw
echo "pgo-build: instrumented build ($GEN_DIR)" >&2
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$RAW" CARGO_TARGET_DIR=$GEN_DIR \
  cargo build -q --profile dist
gen=$GEN_DIR/dist/chattcp

stamp=$(sha256sum "$gen" | cut -c1-16)
if [ "$(cat "$STATE/trained-on" 2>/dev/null)" != "$stamp" ] || ! ls "$STATE"/chattcp-*.profdata >/dev/null 2>&1; then
  echo "pgo-build: training on captures/ and benches/pgo-train.pcap" >&2
  rm -rf "$RAW"
  # Every command, so that none is laid out for a path it never takes; each
  # capture alone too, as users open them. Findings make some exit 1.
  train() { "$gen" "$@" >/dev/null 2>&1 || [ $? -eq 1 ]; }
  inputs=(captures benches/pgo-train.pcap)
  for threads in 1 2; do
    train conns --threads $threads "${inputs[@]}"
    train diagnose --threads $threads "${inputs[@]}"
    train run --threads $threads benches/pgo-train.rhai "${inputs[@]}"
  done
  train conns --json "${inputs[@]}"
  train conns --tcp-only "${inputs[@]}"
  train conns --close-delay 0 "${inputs[@]}"
  train run benches/dissect_only.rhai "${inputs[@]}"
  for f in captures/*.pcap benches/pgo-train.pcap; do
    train packets "$f"
    train packets --json "$f"
    train chat "$f"
    train follow --conn 0 "$f"
  done
  train report "${inputs[@]}" -o -
  merged=$STATE/merged.profdata
  "$profdata" merge -o "$merged" "$RAW"
  rm -rf "$RAW"
  rm -f "$STATE"/chattcp-*.profdata
  # The name carries the content, so that new counts make cargo rebuild.
  mv "$merged" "$STATE/chattcp-$(sha256sum "$merged" | cut -c1-16).profdata"
  echo "$stamp" > "$STATE/trained-on"
fi
profile=$(ls "$STATE"/chattcp-*.profdata)

echo "pgo-build: optimised build ($USE_DIR)" >&2
export RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$profile" CARGO_TARGET_DIR=$USE_DIR
cargo build -q --profile dist
if [ ${#CARGO_ARGS[@]} -gt 0 ]; then
  exec cargo "${CARGO_ARGS[@]}"
fi
echo "$USE_DIR/dist/chattcp"
