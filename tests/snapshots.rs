//! Reviewed snapshots of what users read: the text views and the JSON lines.
//! A change of output shows as a diff in `snapshots/` to review
//! (`cargo insta review`), never to accept blindly.

use std::path::PathBuf;
use std::process::Command;

fn run(args: &[&str]) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .current_dir(&root)
        .args(args)
        .output()
        .expect("run chattcp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

macro_rules! snapshot {
    ($name:literal, $args:expr) => {
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, run(&$args));
        });
    };
}

#[test]
fn packets_text_of_two_netcat_connections() {
    snapshot!(
        "packets-netcat-two-connections",
        ["packets", "tests/data/netcat-two-connections.pcapng"]
    );
}

#[test]
fn conns_text_of_two_netcat_connections() {
    snapshot!(
        "conns-netcat-two-connections",
        ["conns", "tests/data/netcat-two-connections.pcapng"]
    );
}

#[test]
fn packets_json_of_a_big_endian_nanosecond_capture() {
    snapshot!(
        "packets-json-http-big-endian-nanoseconds",
        [
            "packets",
            "--json",
            "tests/data/http-big-endian-nanoseconds.pcap"
        ]
    );
}

#[test]
fn conns_json_of_a_big_endian_nanosecond_capture() {
    snapshot!(
        "conns-json-http-big-endian-nanoseconds",
        [
            "conns",
            "--json",
            "tests/data/http-big-endian-nanoseconds.pcap"
        ]
    );
}

/// Every example capture, without anyone listing it: its chat with
/// commentary, its packets and its connection summaries. A capture dropped
/// into `captures/` fails here until its snapshots are reviewed.
#[test]
fn every_example_capture() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(root.join("captures"))
        .expect("captures/")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for name in names {
        let stem = name.trim_end_matches(".pcap").to_string();
        let path = format!("captures/{name}");
        if !root.join(format!("snapshots/chat-{stem}.snap")).exists() {
            eprintln!(
                "\n{path} is a new example capture: its chat, packets, conns and diagnose \
                 snapshots do not exist yet. Run `cargo insta review` (cargo install \
                 cargo-insta), read each new snapshot as a learner would, and accept it.\n"
            );
        }
        insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(
                format!("chat-{stem}"),
                run(&["chat", "--commentary", "--color", "never", &path])
            );
            insta::assert_snapshot!(format!("conns-{stem}"), run(&["conns", &path]));
            insta::assert_snapshot!(format!("packets-{stem}"), run(&["packets", &path]));
        });
    }
}
