//! `--close-delay`: how long a finished connection stays quiet before its
//! summary. The default (2 s) keeps late packets in the summary; 0 trades
//! them for speed and memory. Either way the packets keep their connection
//! and their analysis, and the output is the same on any number of threads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chattcp(args: &[&str], path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .args(args)
        .arg(path)
        .output()
        .expect("run chattcp")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "chattcp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A real capture where a connection goes on after a reset: the reset
/// (0.23 s) finishes it, and its next packets come 1.03 s later.
#[test]
fn the_delay_decides_whether_a_connection_going_on_after_a_reset_is_one() {
    let path = root().join("../shared/corpus/zeek-rst-inject-rae.pcap");
    if !path.exists() {
        eprintln!("SKIPPED: ../shared/corpus not found (CI has it)");
        return;
    }
    let waited = stdout(&chattcp(&["conns", "--threads", "1"], &path));
    assert!(
        waited.contains("sent      client 4 packets 175 bytes, server 5 packets 0 bytes")
            && waited.contains("opened    complete"),
        "{waited}"
    );
    let at_once = stdout(&chattcp(
        &["conns", "--threads", "1", "--close-delay", "0"],
        &path,
    ));
    assert!(
        at_once.contains("sent      client 1 packets 0 bytes, server 1 packets 0 bytes")
            && at_once.contains("opened    refused"),
        "{at_once}"
    );
    // The packets after the summary are still the connection's, analysed.
    let packets = stdout(&chattcp(
        &["packets", "--json", "--close-delay", "0"],
        &path,
    ));
    let default_packets = stdout(&chattcp(&["packets", "--json"], &path));
    assert_eq!(packets, default_packets);
}

/// Real ab/nginx traffic, 157 short connections: the same output with 1, 2
/// and 3 threads at any delay, and with no delay the same summaries (ab's
/// connections close cleanly, with no late packet).
#[test]
fn no_delay_is_the_same_on_any_number_of_threads() {
    let path = root().join("tests/data/ab-nginx-first-1000-frames.pcap");
    for delay in ["0", "0.25"] {
        for json in [false, true] {
            let mut args = vec!["conns", "--close-delay", delay, "--threads", "1"];
            if json {
                args.push("--json");
            }
            let one = stdout(&chattcp(&args, &path));
            for threads in ["2", "3"] {
                let mut args = args.clone();
                args[4] = threads;
                assert_eq!(
                    one,
                    stdout(&chattcp(&args, &path)),
                    "--close-delay {delay}, {threads} threads, json {json}"
                );
            }
        }
    }
    // The delay changes when summaries come, not what they say.
    let waited = stdout(&chattcp(&["conns", "--threads", "1"], &path));
    let at_once = stdout(&chattcp(
        &["conns", "--threads", "1", "--close-delay", "0"],
        &path,
    ));
    let sorted = |text: &str| {
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        lines.join("\n")
    };
    assert_eq!(sorted(&waited), sorted(&at_once));
}

#[test]
fn a_bad_delay_is_refused_with_the_reason() {
    let path = root().join("captures/http-keep-alive.pcap");
    for (value, reason) in [
        ("-1", "out of range"),
        ("3601", "out of range"),
        ("abc", "is not a number of seconds"),
        ("nan", "is not a number of seconds"),
        ("inf", "is not a number of seconds"),
    ] {
        let out = chattcp(&["conns", &format!("--close-delay={value}")], &path);
        assert_eq!(out.status.code(), Some(2), "{value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--close-delay") && err.contains(reason),
            "{value}: {err}"
        );
    }
}

/// The flag's default, as `--help` gives it, is the library's.
#[test]
fn the_default_in_the_help_is_the_trackers() {
    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .args(["conns", "--help"])
        .output()
        .expect("run chattcp");
    let help = String::from_utf8_lossy(&out.stdout);
    let secs = chattcp::tracking::DEFAULT_CLOSE_DELAY_NS as f64 / 1e9;
    let entry = help
        .split("--close-delay <SECS>")
        .nth(1)
        .expect("--close-delay in the help");
    assert!(
        entry
            .split("--")
            .next()
            .is_some_and(|e| e.contains(&format!("[default: {secs}]"))),
        "{entry}"
    );
}
