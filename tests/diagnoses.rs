//! Each built-in diagnosis fires on a real capture of its scenario and stays
//! silent on a clean handshake-and-close capture; the reports are reviewed
//! snapshots.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn diagnose(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .arg("diagnose")
        .args(args)
        .output()
        .expect("run chattcp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn finding_ids(capture: &str) -> BTreeSet<String> {
    let report: serde_json::Value =
        serde_json::from_str(&diagnose(&["--json", capture])).expect("JSON");
    let c = &report["captures"][0];
    assert_eq!(
        c["errors"],
        serde_json::json!([]),
        "{capture}: a built-in script failed"
    );
    c["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["id"].as_str().map(str::to_string))
        .collect()
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_diagnosis_fires_on_its_scenario() {
    let cases: [(&str, &[&str]); 12] = [
        (
            "captures/lost-handshake-ack.pcap",
            &["handshake_ack_lost", "retransmissions"],
        ),
        (
            "captures/lost-handshake-ack-reset.pcap",
            &["handshake_ack_lost", "retransmissions", "reset"],
        ),
        ("captures/syn-unanswered.pcap", &["syn_unanswered"]),
        ("captures/connection-refused.pcap", &["connection_refused"]),
        ("captures/retransmissions.pcap", &["retransmissions"]),
        ("captures/zero-window.pcap", &["zero_window"]),
        ("captures/keep-alive.pcap", &["keep_alive"]),
        ("captures/four-packet-close.pcap", &["keep_alive"]),
        ("tests/data/http-big-endian-nanoseconds.pcap", &["unclosed"]),
        (
            "captures/http-header-newline.pcap",
            &["http_header_newline"],
        ),
        ("captures/sse-gzip-buffered.pcap", &["sse_compressed"]),
        ("captures/sse-gzip.pcap", &["sse_compressed"]),
    ];
    for (capture, expected) in cases {
        assert_eq!(finding_ids(capture), ids(expected), "{capture}");
    }
}

#[test]
fn a_clean_handshake_and_close_has_no_findings() {
    for capture in [
        "captures/handshake-three-packet-close.pcap",
        "captures/http-keep-alive.pcap",
        "captures/sse-plain.pcap",
        "captures/websocket.pcap",
        "captures/websocket-deflate.pcap",
    ] {
        assert!(finding_ids(capture).is_empty(), "{capture}");
    }
}

#[test]
fn the_reports_read_as_reviewed() {
    let mut names: Vec<String> =
        std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures"))
            .expect("captures/")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".pcap"))
            .collect();
    names.sort();
    for name in names {
        let report = diagnose(&[&format!("captures/{name}")]);
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(format!("diagnose-{}", name.trim_end_matches(".pcap")), report);
        });
    }
}

#[test]
fn several_captures_come_back_in_the_order_given() {
    let report: serde_json::Value = serde_json::from_str(&diagnose(&[
        "--json",
        "--threads",
        "4",
        "captures/zero-window.pcap",
        "captures/connection-refused.pcap",
        "captures/keep-alive.pcap",
    ]))
    .expect("JSON");
    let files: Vec<&str> = report["captures"]
        .as_array()
        .expect("captures")
        .iter()
        .filter_map(|c| c["file"].as_str())
        .collect();
    assert_eq!(
        files,
        [
            "captures/zero-window.pcap",
            "captures/connection-refused.pcap",
            "captures/keep-alive.pcap"
        ]
    );
}

#[test]
fn a_directory_is_every_capture_in_it_sorted() {
    let report: serde_json::Value =
        serde_json::from_str(&diagnose(&["--json", "captures"])).expect("JSON");
    let files: Vec<String> = report["captures"]
        .as_array()
        .expect("captures")
        .iter()
        .filter_map(|c| c["file"].as_str().map(str::to_string))
        .collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
    let on_disk = std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures"))
        .expect("captures/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap"))
        .count();
    assert_eq!(files.len(), on_disk);
}

/// Every capture the tests know: the examples, the re-recordings, the test
/// data and, where present, the shared corpus.
fn every_capture() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![
        root.join("captures"),
        root.join("tests/data"),
        root.join("tests/data/rerecorded"),
        root.join("tests/data/tunnels"),
        root.join("tests/data/findings"),
    ];
    let corpus = root.join("../shared/corpus");
    if corpus.exists() {
        dirs.push(corpus);
    } else {
        eprintln!("SKIPPED: the shared corpus (CI has ../shared/corpus)");
    }
    let mut files = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("pcap" | "pcapng" | "cap")
            ) {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// A filter (`ON_CLOSE_WHEN`, ...) only saves calls: every built-in
/// diagnosis reports the same with its filters ignored, on every capture.
#[test]
fn the_built_in_filters_drop_nothing_a_diagnosis_reports() {
    let files = every_capture();
    assert!(files.len() >= 30, "{} captures", files.len());
    let run = |extra: &[&str], f: &PathBuf| {
        let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
            .arg("diagnose")
            .arg("--json")
            .args(extra)
            .arg(f)
            .output()
            .expect("run chattcp");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut findings = 0;
    for f in &files {
        let filtered = run(&[], f);
        let unfiltered = run(&["--no-filters"], f);
        assert_eq!(filtered, unfiltered, "{}", f.display());
        findings += filtered.matches("\"id\":").count();
    }
    // The comparison means something only if there were findings to lose.
    assert!(findings >= 20, "{findings} findings");
}
