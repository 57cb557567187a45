//! Bad input: every prefix and random byte flips of real captures, and the
//! classic ways a file can be wrong. No panic, a clear one-line error naming
//! the file and the frame or offset, exit status 0 or 2, and what could be
//! analysed before the damage still reported.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use chattcp::dissect::Dissector;
use chattcp::events::{Event, EventSink};
use chattcp::pipeline::{self, Limits, RunError};
use common::rng::XorShift;

#[derive(Default)]
struct Count {
    packets: u64,
    closed: u64,
    ended: bool,
}

impl EventSink for Count {
    fn event(&mut self, event: &Event<'_>) -> io::Result<()> {
        match event {
            Event::Packet(_) => self.packets += 1,
            Event::Closed(_) => self.closed += 1,
            Event::End(_) => self.ended = true,
            _ => {}
        }
        Ok(())
    }
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// Runs the whole pipeline, dissectors included, on `bytes`; panics
/// propagate to the test.
fn analyse(bytes: &[u8]) -> (Result<(), String>, Count) {
    let mut sink = Dissector::new(Count::default());
    let run = pipeline::run(bytes, Limits::default(), &mut sink);
    let sink = sink.into_inner();
    let result = match run {
        Ok(outcome) => match outcome.damage {
            Some(e) => Err(e.to_string()),
            None => Ok(()),
        },
        Err(RunError::Capture(e)) => Err(e.to_string()),
        Err(e) => panic!("unexpected error: {e}"),
    };
    (result, sink)
}

fn real_captures() -> Vec<PathBuf> {
    let mut v = vec![
        data("tests/data/netcat-two-connections.pcapng"),
        data("tests/data/http-big-endian-nanoseconds.pcap"),
    ];
    let dir = data("captures");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut caps: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
            .collect();
        caps.sort();
        v.extend(caps);
    }
    v
}

#[test]
fn every_prefix_of_real_captures_is_handled() {
    for path in real_captures() {
        let bytes = std::fs::read(&path).expect("read capture");
        let (full, whole) = analyse(&bytes);
        assert!(full.is_ok(), "{}: {full:?}", path.display());
        // Every prefix of a small file; a sample of a large one.
        let step = (bytes.len() / 3000).max(1);
        let mut last_packets = 0;
        for cut in (0..bytes.len()).step_by(step) {
            let (result, count) = analyse(&bytes[..cut]);
            assert!(
                count.ended || result.is_err(),
                "{} cut at {cut}: no end",
                path.display()
            );
            if let Err(msg) = &result {
                assert!(
                    msg.contains("frame")
                        || msg.contains("offset")
                        || msg.contains("empty")
                        || msg.contains("byte"),
                    "{} cut at {cut}: error names no position: {msg}",
                    path.display()
                );
            }
            // A longer prefix never reports fewer packets.
            assert!(
                count.packets >= last_packets,
                "{} cut at {cut}",
                path.display()
            );
            last_packets = count.packets;
        }
        assert!(whole.packets >= last_packets);
    }
}

#[test]
fn random_byte_flips_never_panic() {
    let mut rng = XorShift(0x5eed_cafe_f00d_d00d);
    for path in real_captures() {
        let original = std::fs::read(&path).expect("read capture");
        for _ in 0..300 {
            let mut bytes = original.clone();
            let flips = 1 + (rng.next() % 8) as usize;
            for _ in 0..flips {
                let at = (rng.next() % bytes.len() as u64) as usize;
                bytes[at] ^= 1 << (rng.next() % 8);
            }
            let (result, _) = analyse(&bytes);
            if let Err(msg) = result {
                assert!(!msg.is_empty());
            }
        }
    }
}

fn chattcp(args: &[&str], file: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .args(args)
        .arg(file)
        .output()
        .expect("run chattcp");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bad-input");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

fn pcap_header(link: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&link.to_le_bytes());
    v
}

fn record(v: &mut Vec<u8>, data: &[u8]) {
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
}

/// A raw-IP IPv4/TCP SYN from 10.0.0.1:1234 to 10.0.0.2:80.
fn syn_packet() -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    p.extend_from_slice(&[
        0x04, 0xd2, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    p
}

/// What a damaged run's error must name.
fn names_a_position(stderr: &str) -> bool {
    stderr.contains("frame")
        || stderr.contains("offset")
        || stderr.contains("empty")
        || stderr.contains("starts with bytes")
}

#[test]
fn cut_and_flipped_captures_through_every_command_exit_0_or_2() {
    // The library-level tests above take every prefix; here a sample of
    // prefixes and flips of each example goes through the real commands,
    // scripts and renderers included.
    let mut rng = XorShift(0xfeed_beef_0bad_c0de);
    let commands: [&[&str]; 4] = [
        &["packets"],
        &["conns", "--threads", "2"],
        &["diagnose", "--threads", "1"],
        &["follow", "--conn", "0"],
    ];
    let mut runs = 0;
    for path in real_captures() {
        let original = std::fs::read(&path).expect("read capture");
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut variants = Vec::new();
        for i in 1..=6u64 {
            let cut = (rng.next() % original.len() as u64) as usize;
            variants.push((format!("cut{i}-{name}"), original[..cut].to_vec()));
            let mut flipped = original.clone();
            for _ in 0..1 + rng.next() % 8 {
                let at = (rng.next() % flipped.len() as u64) as usize;
                flipped[at] ^= 1 << (rng.next() % 8);
            }
            variants.push((format!("flip{i}-{name}"), flipped));
        }
        for (variant, bytes) in variants {
            let file = temp_file(&variant, &bytes);
            for args in commands {
                let (code, _, err) = chattcp(args, &file);
                runs += 1;
                assert!(
                    code == 0 || code == 2,
                    "{variant} {args:?}: status {code}\n{err}"
                );
                if code == 2 && !err.contains("no connection 0") {
                    assert!(names_a_position(&err), "{variant} {args:?}: {err}");
                }
                assert!(!err.contains("panicked"), "{variant} {args:?}: {err}");
            }
            let _ = std::fs::remove_file(&file);
        }
    }
    assert!(runs > 500, "{runs} runs");
}

#[test]
fn not_a_capture_is_one_clear_line_and_status_2() {
    let path = temp_file("notes.txt", b"these are my notes, not packets\n");
    let (code, _, err) = chattcp(&["packets"], &path);
    assert_eq!(code, 2);
    assert!(
        err.contains("notes.txt") && err.contains("not a pcap or pcapng"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn an_empty_file_says_so() {
    let path = temp_file("empty.pcap", b"");
    let (code, _, err) = chattcp(&["conns"], &path);
    assert_eq!(code, 2);
    assert!(err.contains("empty.pcap") && err.contains("empty"), "{err}");
}

#[test]
fn a_file_cut_mid_record_is_analysed_up_to_the_cut() {
    let mut file = pcap_header(101);
    record(&mut file, &syn_packet());
    record(&mut file, &syn_packet());
    file.truncate(file.len() - 10);
    let path = temp_file("cut.pcap", &file);
    let (code, out, err) = chattcp(&["packets", "--json"], &path);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "the first packet is still reported");
    assert!(
        err.contains("cut.pcap") && err.contains("frame 2") && err.contains("offset 80"),
        "{err}"
    );
}

#[test]
fn an_absurd_caplen_stops_with_status_2_after_reporting_what_came_before() {
    let mut file = pcap_header(101);
    record(&mut file, &syn_packet());
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&0u32.to_le_bytes());
    file.extend_from_slice(&0xF000_0000u32.to_le_bytes());
    file.extend_from_slice(&0xF000_0000u32.to_le_bytes());
    file.extend_from_slice(&[0; 100]);
    let path = temp_file("huge.pcap", &file);
    let (code, out, err) = chattcp(&["packets", "--json"], &path);
    assert_eq!(code, 2);
    assert_eq!(out.lines().count(), 1);
    assert!(
        err.contains("huge.pcap") && err.contains("frame 2") && err.contains("4026531856 bytes"),
        "{err}"
    );
}

#[test]
fn an_unknown_link_type_is_counted_not_fatal() {
    let mut file = pcap_header(147);
    record(&mut file, &syn_packet());
    let path = temp_file("user0.pcap", &file);
    let (code, out, _) = chattcp(&["conns", "--json"], &path);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 0);
}

#[test]
fn lying_ip_and_tcp_header_lengths_do_not_crash() {
    let mut file = pcap_header(101);
    // IP header length 60 in a 40-byte packet.
    let mut p = syn_packet();
    p[0] = 0x4f;
    record(&mut file, &p);
    // IP total length 65535 in a packet 40 bytes long on the wire: the
    // frame's length bounds it, as in tshark.
    let mut p = syn_packet();
    p[2] = 0xff;
    p[3] = 0xff;
    record(&mut file, &p);
    // TCP data offset 15 words (60 bytes) in a 20-byte header.
    let mut p = syn_packet();
    p[32] = 0xf0;
    record(&mut file, &p);
    // TCP data offset 2 words (8 bytes): below the minimum.
    let mut p = syn_packet();
    p[32] = 0x20;
    record(&mut file, &p);
    let path = temp_file("liars.pcap", &file);
    let (code, out, err) = chattcp(&["packets", "--json"], &path);
    assert_eq!(code, 0, "{err}");
    let lens: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["len"].clone())
        .collect();
    // Frame 1 is skipped (IP header cut); frame 2: 40 - 20 - 20; frame 3:
    // header longer than the segment (no length, as tshark); frame 4: 40 - 20 - 8.
    assert_eq!(
        lens,
        vec![
            serde_json::json!(0),
            serde_json::Value::Null,
            serde_json::json!(12)
        ]
    );
}
