//! Hostile captures, generated here (not committed): a million half-open
//! connections, a million refused ones, sequence jumps of gigabytes,
//! millions of tiny out-of-order segments, decompression bombs, lengths
//! that cannot be true, a header block that never ends, a 4 GiB record.
//! Each runs through the real binary; each must finish, keep its peak
//! memory (measured by the kernel, per child, with wait4) under 256 MiB,
//! and say which limit it hit. That the time grows linearly is measured by
//! `benches/hostile.sh`, not here.

mod common;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{hostile, measured};

/// Peak memory allowed to any run.
const MAX_RSS_MIB: i64 = 256;
/// A run that takes longer has hung (generous: CI machines are slow; this
/// is a hang guard, not a speed test).
const HANG: Duration = Duration::from_secs(300);

/// Writes one hostile capture.
type Generator = fn(&mut BufWriter<File>) -> io::Result<()>;

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
    peak_rss_mib: i64,
}

fn temp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hostile");
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// Writes a generated capture to a temporary file.
fn capture(name: &str, make: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) -> PathBuf {
    let path = temp(name);
    let mut out = BufWriter::new(File::create(&path).expect("create capture"));
    make(&mut out).expect("write capture");
    out.flush().expect("flush capture");
    path
}

/// Runs chattcp with `args` then `file`, keeping the start and end of its
/// outputs, and measures its peak RSS.
fn chattcp(args: &[&str], file: &Path) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    let file_arg = file.to_string_lossy();
    all.push(&file_arg);
    let scratch = temp(&file.file_name().unwrap_or_default().to_string_lossy());
    let m = measured::run(
        Path::new(env!("CARGO_BIN_EXE_chattcp")),
        &all,
        &scratch,
        HANG,
    )
    .expect("run chattcp");
    assert!(
        !m.hung,
        "chattcp {args:?} {} hung (killed after {HANG:?})",
        file.display()
    );
    let run = Run {
        status: m.status,
        stdout: m.stdout,
        stderr: m.stderr,
        peak_rss_mib: m.peak_rss_kib / 1024,
    };
    eprintln!(
        "chattcp {} {}: status {}, peak RSS {} MiB",
        args.join(" "),
        file.file_name().unwrap_or_default().to_string_lossy(),
        run.status,
        run.peak_rss_mib
    );
    assert!(
        run.peak_rss_mib < MAX_RSS_MIB,
        "chattcp {args:?} {}: peak RSS {} MiB",
        file.display(),
        run.peak_rss_mib
    );
    assert!(
        run.status == 0 || run.status == 2,
        "chattcp {args:?} {}: status {}\n{}",
        file.display(),
        run.status,
        run.stderr
    );
    run
}

#[test]
fn a_million_half_open_connections_are_evicted_and_counted() {
    let file = capture("syn-flood.pcap", |o| hostile::syn_flood(o, 1_000_000));
    let run = chattcp(&["conns", "--threads", "1"], &file);
    assert_eq!(run.status, 0);
    assert!(
        run.stderr.contains(
            "950000 connections were summarised early and forgotten because more than 50000 were open at once (--max-connections)"
        ),
        "{}",
        run.stderr
    );
    // The limit is the user's to set, and shared among threads.
    let run = chattcp(
        &["conns", "--threads", "2", "--max-connections", "10000"],
        &file,
    );
    assert!(
        run.stderr
            .contains("990000 connections were summarised early"),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_million_refused_connections_are_remembered_within_bounds() {
    // Each connection finishes (a RST), so each is summarised and then
    // remembered for its late packets: at most 200,000, shared among the
    // threads. With no close delay none waits, so none is evicted, and what
    // is measured is what the remembered ones hold. Remembering them all,
    // as a million per thread allowed, took 978 MiB.
    let file = capture("refused.pcap", |o| {
        hostile::refused_connections(o, 1_000_000)
    });
    for threads in ["1", "2"] {
        let run = chattcp(
            &["conns", "--threads", threads, "--close-delay", "0"],
            &file,
        );
        assert_eq!(run.status, 0, "{}", run.stderr);
        assert!(
            run.stdout
                .contains("1000000 connections, 2000000 TCP packets of 2000000 frames"),
            "{}",
            run.stdout
        );
        assert!(!run.stderr.contains("evicted") && !run.stderr.contains("summarised early"));
    }
    let _ = std::fs::remove_file(&file);
}

#[test]
fn diagnosing_a_syn_flood_keeps_a_bounded_report() {
    let file = capture("syn-flood-diagnose.pcap", |o| {
        hostile::syn_flood(o, 200_000)
    });
    let run = chattcp(&["diagnose", "--threads", "1"], &file);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("200000 connections: 200000 incomplete handshakes"),
        "{}",
        &run.stdout[..200.min(run.stdout.len())]
    );
    assert!(
        run.stdout.contains("199000 more [syn_unanswered] findings not shown: 1000 of one kind are kept per capture (--max-findings)"),
        "{}",
        &run.stdout[run.stdout.len().saturating_sub(2000)..]
    );
    assert!(
        run.stderr.contains("were summarised early"),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn gigabyte_sequence_jumps_leave_holes_not_memory() {
    let file = capture("sequence-jumps.pcap", |o| {
        hostile::sequence_jumps(o, 100_000)
    });
    let run = chattcp(&["conns", "--json", "--threads", "1"], &file);
    assert_eq!(run.status, 0);
    let conn: serde_json::Value =
        serde_json::from_str(run.stdout.lines().next().unwrap_or("{}")).expect("json");
    // The jumps that land ahead (half the 512 MiB ones; the 3 GiB ones
    // land behind, as old data) were acknowledged: terabytes of gaps,
    // reported, not held.
    let missing = conn["missing_c2s"].as_u64().unwrap_or(0);
    assert!(missing >= 10_000 * (512 << 20), "{conn}");
    let run = chattcp(&["follow", "--conn", "0"], &file);
    assert_eq!(run.status, 0);
    let run = chattcp(&["diagnose", "--threads", "1"], &file);
    assert!(
        run.stdout.contains("gap(s) in the sequence numbers"),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn millions_of_tiny_out_of_order_segments_hit_the_reassembly_cap() {
    let file = capture("tiny-out-of-order.pcap", |o| {
        hostile::tiny_out_of_order(o, 1 << 21)
    });
    let run = chattcp(&["conns", "--threads", "1"], &file);
    assert_eq!(run.status, 0);
    assert!(
        run.stderr.contains("reassembly buffers hit their cap")
            && run.stderr.contains("those holes were given up as gaps"),
        "{}",
        run.stderr
    );
    let run = chattcp(&["follow", "--conn", "0", "--raw"], &file);
    assert_eq!(run.status, 0);
    let _ = std::fs::remove_file(&file);
}

/// `follow` shows the decoding limit as an anomaly, `diagnose` as a
/// `protocol_limits` finding.
fn decoding_stops_and_says_so(file: &Path) {
    let run = chattcp(&["follow", "--conn", "0"], file);
    assert!(run.stdout.contains("! decoding_limit:"), "{}", run.stdout);
    let run = chattcp(&["diagnose", "--threads", "1"], file);
    assert!(
        run.stdout.contains("[protocol_limits]") && run.stdout.contains("decoding_limit"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_gzip_bomb_in_an_http_body_stops_at_the_decoding_limit() {
    let file = capture("http-gzip-bomb.pcap", |o| {
        hostile::http_gzip_bomb(o, 10_000_000_000)
    });
    decoding_stops_and_says_so(&file);
    // The bound is the user's to set.
    let run = chattcp(
        &[
            "follow",
            "--conn",
            "0",
            "--max-decoded",
            "1000000",
            "--max-decode-ratio",
            "100000000",
        ],
        &file,
    );
    assert!(
        run.stdout
            .contains("! decoding_limit: decoded more than 1000000 bytes"),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_permessage_deflate_bomb_stops_at_the_decoding_limit() {
    let file = capture("websocket-deflate-bomb.pcap", |o| {
        hostile::websocket_deflate_bomb(o, 10_000_000_000)
    });
    decoding_stops_and_says_so(&file);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn a_websocket_frame_claiming_2_to_the_63_bytes_is_not_believed() {
    for (name, claimed) in [
        ("ws-len-max.pcap", (1u64 << 63) - 1),
        ("ws-len-top-bit.pcap", u64::MAX),
    ] {
        let file = capture(name, |o| {
            hostile::websocket_huge_frame(o, claimed, 5_000_000)
        });
        let run = chattcp(&["follow", "--conn", "0"], &file);
        assert_eq!(run.status, 0);
        assert!(run.stdout.contains("WebSocket binary"), "{}", run.stdout);
        if claimed >> 63 == 1 {
            assert!(run.stdout.contains("invalid_length"), "{}", run.stdout);
        }
        let run = chattcp(&["diagnose", "--threads", "1"], &file);
        assert_eq!(run.status, 0);
        let _ = std::fs::remove_file(&file);
    }
}

#[test]
fn impossible_http_lengths_are_named() {
    let cases: [(&str, Generator, &str); 3] = [
        (
            "http-chunk-overflow.pcap",
            |o| hostile::http_chunk_overflow(o, 5_000_000),
            "invalid_chunk_size",
        ),
        (
            "http-content-length-overflow.pcap",
            |o| hostile::http_content_length_overflow(o, 5_000_000),
            "invalid_content_length",
        ),
        (
            "http-endless-headers.pcap",
            |o| hostile::http_endless_headers(o, 1_000_000),
            "header_block_too_large",
        ),
    ];
    for (name, make, anomaly) in cases {
        let file = capture(name, make);
        let run = chattcp(&["follow", "--conn", "0"], &file);
        assert!(
            run.stdout.contains(&format!("! {anomaly}")),
            "{name}: {}",
            &run.stdout[..run.stdout.len().min(3000)]
        );
        let run = chattcp(&["diagnose", "--threads", "1"], &file);
        assert!(
            run.stdout.contains("[protocol_limits]") && run.stdout.contains(anomaly),
            "{name}: {}",
            run.stdout
        );
        let _ = std::fs::remove_file(&file);
    }
}

#[test]
fn a_record_claiming_4_gib_stops_the_read_after_reporting_what_came_before() {
    let file = capture("huge-caplen.pcap", hostile::huge_caplen);
    for args in [
        &["conns", "--threads", "1"][..],
        &["packets"],
        &["diagnose"],
        &["follow", "--conn", "0"],
    ] {
        let run = chattcp(args, &file);
        assert_eq!(run.status, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("frame 5") || run.stderr.contains("offset"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.peak_rss_mib < 64, "{args:?}: {} MiB", run.peak_rss_mib);
    }
    // The four frames before the damage are all reported.
    let run = chattcp(&["packets"], &file);
    let frames: Vec<&str> = run
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(frames, ["1", "2", "3", "4"], "{}", run.stdout);
    let _ = std::fs::remove_file(&file);
}
