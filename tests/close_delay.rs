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

/// `conns`'s text takes each connection's overview as soon as it is final
/// (both directions ended) and keeps only its application lines through
/// the close delay: the text is the one made from overviews lent just
/// before each summary, while many overviews wait at once.
#[test]
fn overviews_lent_when_final_give_the_same_text() {
    use chattcp::dissect::Dissector;
    use chattcp::events::{Event, EventSink};
    use chattcp::pipeline::{self, Limits};
    use chattcp::render::text::{TextKind, TextWriter};
    use std::collections::HashSet;

    /// The text writer, counting overviews lent and not yet summarised.
    struct Waiting<'a> {
        text: TextWriter<&'a mut Vec<u8>>,
        lent: HashSet<u64>,
        most: usize,
        overviews: usize,
    }
    impl EventSink for Waiting<'_> {
        fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
            match event {
                Event::Overview(o) => {
                    assert!(self.lent.insert(o.conn), "overview {} lent twice", o.conn);
                    self.overviews += 1;
                    self.most = self.most.max(self.lent.len());
                }
                Event::Closed(c) => {
                    self.lent.remove(&c.conn);
                }
                _ => {}
            }
            self.text.event(event)
        }
    }

    let path = root().join("benches/pgo-train.pcap");
    let run = |when_final: bool| {
        let mut out = Vec::new();
        let mut sink = Waiting {
            text: TextWriter::new(&mut out, TextKind::Conns),
            lent: HashSet::new(),
            most: 0,
            overviews: 0,
        };
        let limits = Limits::default();
        let dissector = Dissector::with_limits(&mut sink, limits.decode);
        let mut dissector = if when_final {
            dissector.with_overviews_when_final()
        } else {
            dissector.with_overviews()
        };
        let file = std::fs::File::open(&path).expect("benches/pgo-train.pcap");
        pipeline::run(file, limits, &mut dissector).expect("a run");
        let (most, overviews) = (sink.most, sink.overviews);
        drop(sink);
        (out, most, overviews)
    };
    let (before_summary, most_before, overviews) = run(false);
    let (when_final, most_when_final, overviews_when_final) = run(true);
    assert_eq!(overviews, overviews_when_final);
    assert!(overviews > 400, "{overviews} overviews");
    assert_eq!(most_before, 1, "lent just before each summary");
    assert!(
        most_when_final > 100,
        "{most_when_final} overviews waiting at most"
    );
    assert!(
        String::from_utf8_lossy(&when_final).contains("     http      1 request (GET "),
        "application lines in the text"
    );
    assert!(before_summary == when_final, "the same text either way");
}
