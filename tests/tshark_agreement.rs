//! `chattcp packets --json` against tshark 4.0, packet by packet.
//!
//! tshark's per-packet analysis of each capture is kept as a TSV beside it
//! (`captures/expected/`, and `../shared/corpus/expected/` for the public
//! corpus), made by the `regen-expected.sh` scripts, so this test needs no
//! tshark. For every TCP frame tshark reports, chattcp must report the same
//! connection number, relative seq and ack, length, and set of analysis
//! flags; and it must report no TCP frame that tshark does not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The analysis columns of the TSVs, in order, as `tcp.analysis.NAME`.
const FLAGS: [&str; 14] = [
    "retransmission",
    "fast_retransmission",
    "spurious_retransmission",
    "out_of_order",
    "lost_segment",
    "ack_lost_segment",
    "keep_alive",
    "keep_alive_ack",
    "duplicate_ack",
    "zero_window",
    "zero_window_probe",
    "zero_window_probe_ack",
    "window_update",
    "window_full",
];

#[derive(Debug, PartialEq, Eq)]
struct Reading {
    conn: u64,
    seq: u64,
    ack: u64,
    len: Option<u64>,
    analysis: BTreeSet<String>,
}

fn tshark_readings(tsv: &Path) -> BTreeMap<u64, Reading> {
    let text = std::fs::read_to_string(tsv).unwrap_or_default();
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return BTreeMap::new();
    };
    let cols: Vec<&str> = header.split('\t').collect();
    let col = |name: &str| cols.iter().position(|c| *c == name).expect(name);
    let (frame, stream, seq, ack, len) = (
        col("frame.number"),
        col("tcp.stream"),
        col("tcp.seq"),
        col("tcp.ack"),
        col("tcp.len"),
    );
    let flag_cols: Vec<(usize, &str)> = FLAGS
        .iter()
        .map(|f| (col(&format!("tcp.analysis.{f}")), *f))
        .collect();
    let mut out = BTreeMap::new();
    for line in lines {
        let c: Vec<&str> = line.split('\t').collect();
        // tshark lists frames whose TCP header it could not read with an
        // empty stream; chattcp skips those frames.
        if c.get(stream).is_none_or(|s| s.is_empty()) {
            continue;
        }
        let num = |i: usize| c[i].parse::<u64>().expect("number");
        let reading = Reading {
            conn: num(stream),
            seq: num(seq),
            ack: num(ack),
            len: c[len].parse().ok(),
            analysis: flag_cols
                .iter()
                .filter(|(i, _)| !c.get(*i).unwrap_or(&"").is_empty())
                .map(|(_, f)| f.to_string())
                .collect(),
        };
        out.insert(num(frame), reading);
    }
    out
}

fn chattcp_readings(capture: &Path) -> BTreeMap<u64, Reading> {
    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .args(["packets", "--json"])
        .arg(capture)
        .output()
        .expect("run chattcp");
    let mut readings = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        let analysis = v["analysis"]
            .as_array()
            .expect("analysis array")
            .iter()
            .filter_map(|f| f.as_str())
            // tshark's TSV has no column for it; it is checked elsewhere.
            .filter(|f| *f != "reused_ports")
            .map(str::to_string)
            .collect();
        readings.insert(
            v["frame"].as_u64().expect("frame"),
            Reading {
                conn: v["conn"].as_u64().expect("conn"),
                seq: v["seq"].as_u64().expect("seq"),
                ack: v["ack"].as_u64().expect("ack"),
                len: v["len"].as_u64(),
                analysis,
            },
        );
    }
    readings
}

/// Compares every capture of `dir` with its TSV; returns (packets, failures).
fn compare_dir(dir: &Path) -> (usize, usize, Vec<String>) {
    let mut captures: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read capture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng" | "cap")
            )
        })
        .collect();
    captures.sort();
    let mut packets = 0;
    let mut files = 0;
    let mut failures = Vec::new();
    for capture in captures {
        let stem = capture.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let tsv = dir.join("expected").join(format!("{stem}.tsv"));
        if !tsv.exists() {
            failures.push(format!("{}: no expected/{stem}.tsv", capture.display()));
            continue;
        }
        files += 1;
        let want = tshark_readings(&tsv);
        let got = chattcp_readings(&capture);
        packets += want.len();
        let frames: BTreeSet<u64> = want.keys().chain(got.keys()).copied().collect();
        let bad: Vec<String> = frames
            .into_iter()
            .filter(|f| want.get(f) != got.get(f))
            .take(5)
            .map(|f| {
                format!(
                    "  frame {f}: tshark {:?}\n           chattcp {:?}",
                    want.get(&f),
                    got.get(&f)
                )
            })
            .collect();
        if !bad.is_empty() {
            failures.push(format!("{}:\n{}", capture.display(), bad.join("\n")));
        }
    }
    (files, packets, failures)
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn agrees_with_tshark_on_our_captures() {
    let (files, packets, failures) = compare_dir(&manifest_dir().join("captures"));
    assert!(files > 0, "no captures found in captures/");
    assert!(
        failures.is_empty(),
        "chattcp disagrees with tshark:\n{}",
        failures.join("\n")
    );
    eprintln!("captures/: {files} files, {packets} TCP packets agree with tshark");
}

#[test]
fn agrees_with_tshark_inside_tunnels() {
    // A VXLAN overlay recording: tshark decodes UDP port 4789 as VXLAN by
    // default and analyses the inner TCP; so does chattcp.
    let (files, packets, failures) = compare_dir(&manifest_dir().join("tests/data/tunnels"));
    assert!(
        files > 0 && packets > 100,
        "{files} files, {packets} packets"
    );
    assert!(
        failures.is_empty(),
        "chattcp disagrees with tshark:\n{}",
        failures.join("\n")
    );
}

#[test]
fn agrees_with_tshark_on_the_public_corpus() {
    let corpus = manifest_dir().join("../shared/corpus");
    if !corpus.join("expected").is_dir() {
        eprintln!(
            "SKIPPED: {} not found; the corpus comparison runs where ../shared/corpus exists (CI has it)",
            corpus.display()
        );
        return;
    }
    let (files, packets, failures) = compare_dir(&corpus);
    assert!(
        failures.is_empty(),
        "chattcp disagrees with tshark:\n{}",
        failures.join("\n")
    );
    assert!(
        packets > 10_000,
        "expected the whole corpus, saw {packets} packets"
    );
    eprintln!("corpus: {files} files, {packets} TCP packets agree with tshark");
}
