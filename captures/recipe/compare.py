#!/usr/bin/env python3
"""Compare chattcp's per-packet analysis with tshark's expected TSVs.

Usage: compare.py [--chattcp PATH] [CAPTURE...]
  (default: every captures/*.pcap with an expected/NAME.tsv; chattcp from
   target/release/chattcp)

For every TCP frame: conn == tcp.stream, seq == tcp.seq, ack == tcp.ack,
len == tcp.len, and the set of chattcp's "analysis" names (without
"reused_ports") == the set of non-empty tcp.analysis.* columns.  Prints every
disagreement; exits 1 if there is any.
"""
import argparse
import csv
import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent.parent  # captures/
ROOT = HERE.parent


def tsv_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chattcp", default=str(ROOT / "target/release/chattcp"))
    ap.add_argument("captures", nargs="*")
    args = ap.parse_args()
    caps = [pathlib.Path(c) for c in args.captures] or sorted(HERE.glob("*.pcap"))
    total = 0
    for cap in caps:
        tsv = HERE / "expected" / (cap.stem + ".tsv")
        if not tsv.exists():
            print(f"{cap.name}: no {tsv}")
            continue
        want = {int(r["frame.number"]): r for r in tsv_rows(tsv)}
        out = subprocess.run([args.chattcp, "packets", "--json", str(cap)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{cap.name}: chattcp exit {out.returncode}: {out.stderr.strip()}")
            total += 1
            continue
        got = {}
        for line in out.stdout.splitlines():
            if line.strip():
                o = json.loads(line)
                got[o["frame"]] = o
        diffs = []
        for frame in sorted(set(want) | set(got)):
            w, g = want.get(frame), got.get(frame)
            if w is None or g is None:
                diffs.append(f"frame {frame}: only in {'chattcp' if w is None else 'tshark'}")
                continue
            for mine, theirs in (("conn", "tcp.stream"), ("seq", "tcp.seq"),
                                 ("ack", "tcp.ack"), ("len", "tcp.len")):
                tv = int(w[theirs]) if w[theirs] != "" else 0
                if g.get(mine) != tv:
                    diffs.append(f"frame {frame}: {mine}: chattcp {g.get(mine)} tshark {theirs}={w[theirs]!r}")
            tflags = {k[len("tcp.analysis."):] for k, v in w.items()
                      if k.startswith("tcp.analysis.") and v}
            cflags = set(g.get("analysis", [])) - {"reused_ports"}
            if tflags != cflags:
                diffs.append(f"frame {frame}: analysis: chattcp {sorted(cflags)} tshark {sorted(tflags)}")
        print(f"{cap.name}: {len(want)} tshark frames, {len(got)} chattcp frames, "
              f"{len(diffs)} disagreement(s)")
        for d in diffs:
            print("   ", d)
        total += len(diffs)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
