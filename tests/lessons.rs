//! Lessons tell each recording's own truth: every scenario's key facts are
//! checked in the lesson output of the example capture and of an
//! independent recording of the same scenario (`tests/data/rerecorded/`).
//! The expected facts are read from chattcp's analysis of the same file
//! (`packets --json`, `conns --json`, `follow --json`), so a lesson that
//! repeated text written for one recording would fail on the other.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn chattcp(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .args(args)
        .output()
        .expect("run chattcp");
    assert!(
        out.status.success(),
        "chattcp {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn json_lines(args: &[&str]) -> Vec<Value> {
    chattcp(args)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// The lesson view, with line wrapping undone so that phrases can be found
/// whole.
fn lesson(path: &str) -> String {
    let text = chattcp(&["chat", "--commentary", "--color", "never", path]);
    let mut flat = String::new();
    for line in text.lines() {
        let l = line.trim().trim_start_matches('»').trim();
        flat.push_str(l);
        flat.push(' ');
    }
    flat
}

fn findings(path: &str) -> Vec<Value> {
    let report: Value =
        serde_json::from_str(&chattcp(&["diagnose", "--json", path])).expect("JSON");
    report["captures"][0]["findings"]
        .as_array()
        .expect("findings")
        .clone()
}

/// chattcp's `fmt_duration`, as the lessons print times.
fn duration(secs: f64) -> String {
    let a = secs.abs();
    if a < 1e-3 {
        format!("{:.0} µs", secs * 1e6)
    } else if a < 1.0 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{secs:.3} s")
    }
}

fn both(name: &str) -> [String; 2] {
    [
        format!("captures/{name}.pcap"),
        format!("tests/data/rerecorded/{name}.pcap"),
    ]
}

fn assert_has(text: &str, phrase: &str, path: &str) {
    assert!(
        text.contains(phrase),
        "{path}: the lesson does not say {phrase:?}\n{text}"
    );
}

fn frames_where(packets: &[Value], test: impl Fn(&Value) -> bool) -> Vec<u64> {
    packets
        .iter()
        .filter(|p| test(p))
        .filter_map(|p| p["frame"].as_u64())
        .collect()
}

fn has_flag(p: &Value, flag: &str) -> bool {
    p["analysis"]
        .as_array()
        .is_some_and(|a| a.iter().any(|f| f == flag))
}

#[test]
fn the_three_packet_close_and_why() {
    for path in both("handshake-three-packet-close") {
        let text = lesson(&path);
        let conn = &json_lines(&["conns", "--json", &path])[0];
        assert_eq!(conn["close"], "three_packet", "{path}");
        let packets = json_lines(&["packets", "--json", &path]);
        let fins = frames_where(&packets, |p| {
            p["flags"].as_str().is_some_and(|f| f.contains("FIN"))
        });
        assert_eq!(fins.len(), 2, "{path}");
        assert_has(&text, "closed in three packets", &path);
        assert_has(&text, &format!("FIN in frame {}", fins[0]), &path);
        assert_has(&text, &format!("one packet (frame {})", fins[1]), &path);
        assert_has(&text, "does two jobs", &path);
        assert_has(&text, "the ACK rides on the FIN", &path);
    }
}

#[test]
fn the_measured_keep_alive_interval_and_what_a_probe_looks_like() {
    for path in both("keep-alive") {
        let text = lesson(&path);
        let conn = &json_lines(&["conns", "--json", &path])[0];
        let intervals: Vec<String> = conn["keep_alive_intervals"]
            .as_array()
            .expect("intervals")
            .iter()
            .map(|v| duration(v.as_f64().expect("seconds")))
            .collect();
        assert_eq!(intervals.len(), 2, "{path}");
        assert_has(
            &text,
            &format!("Idle time before each probe: {}", intervals.join(", ")),
            &path,
        );
        let packets = json_lines(&["packets", "--json", &path]);
        let probe = packets
            .iter()
            .find(|p| has_flag(p, "keep_alive"))
            .expect("a keep-alive");
        let seq = probe["seq"].as_u64().expect("seq");
        assert_has(
            &text,
            &format!(
                "frame {}: seq {seq}, while the next byte would be {}",
                probe["frame"],
                seq + 1
            ),
            &path,
        );
        assert_has(&text, "About 15 s", &path);
    }
}

#[test]
fn the_syn_ack_retransmissions_and_how_the_connection_ended() {
    for name in ["lost-handshake-ack", "lost-handshake-ack-reset"] {
        for path in both(name) {
            let text = lesson(&path);
            let packets = json_lines(&["packets", "--json", &path]);
            let resent = frames_where(&packets, |p| {
                p["flags"] == "SYN,ACK" && has_flag(p, "retransmission")
            });
            assert!(!resent.is_empty(), "{path}");
            let list: Vec<String> = resent.iter().map(u64::to_string).collect();
            assert_has(
                &text,
                &format!(
                    "resent its SYN-ACK {} time(s) (frames {})",
                    resent.len(),
                    list.join(", ")
                ),
                &path,
            );
            let rst = frames_where(&packets, |p| {
                p["flags"].as_str().is_some_and(|f| f.contains("RST"))
            });
            match rst.first() {
                Some(f) => assert_has(&text, &format!("answered with RST (frame {f})"), &path),
                None => assert_has(&text, "completed the handshake late", &path),
            }
        }
    }
}

#[test]
fn the_bare_lf_and_the_content_length_mismatch() {
    for path in both("http-header-newline") {
        let text = lesson(&path);
        let events = json_lines(&["follow", &path, "--conn", "0", "--json"]);
        let request = events
            .iter()
            .find(|e| e["type"] == "http_request")
            .expect("a request");
        let bad = request["strict_headers"]
            .as_array()
            .expect("both readings of the head")
            .iter()
            .find(|h| h["raw"].as_str().is_some_and(|r| r.contains('\n')))
            .expect("a header holding the bare LF");
        let declared = request["strict_headers"]
            .as_array()
            .and_then(|hs| hs.iter().find(|h| h["name"] == "Content-Length"))
            .and_then(|h| h["value"].as_str())
            .expect("Content-Length");
        assert_has(
            &text,
            &format!("Look at its header {}", bad["name"].as_str().expect("name")),
            &path,
        );
        assert_has(&text, "a bare LF", &path);
        assert_has(
            &text,
            &format!("Content-Length says {declared} bytes"),
            &path,
        );
        assert_has(&text, "never sees Content-Length", &path);
        let found = findings(&path);
        let ids: Vec<&str> = found.iter().filter_map(|f| f["id"].as_str()).collect();
        assert!(ids.contains(&"http_header_newline"), "{path}: {ids:?}");
    }
}

#[test]
fn the_compressed_event_stream() {
    for path in both("sse-gzip-buffered") {
        let text = lesson(&path);
        let events: Vec<Value> = json_lines(&["follow", &path, "--conn", "0", "--json"])
            .into_iter()
            .filter(|e| e["type"] == "sse_event")
            .collect();
        assert!(!events.is_empty(), "{path}");
        // The compressor held every event: they became readable in one
        // segment, after a silence as long as the stream.
        let frame = &events[0]["frame"];
        assert!(events.iter().all(|e| &e["frame"] == frame), "{path}");
        let quiet = events[0]["quiet_before"].as_f64().expect("quiet_before");
        assert!(quiet > 1.0, "{path}: {quiet}");
        assert_has(&text, "It was compressed (gzip)", &path);
        assert_has(
            &text,
            &format!(
                "{n} of {n} events arrived in bursts, held back by the compressor for up to {}",
                duration(quiet),
                n = events.len()
            ),
            &path,
        );
        let found = findings(&path);
        let f = found
            .iter()
            .find(|f| f["id"] == "sse_compressed")
            .expect("sse_compressed");
        assert_eq!(f["severity"], "warning", "{path}");
    }
    for path in both("sse-gzip") {
        let text = lesson(&path);
        assert_has(
            &text,
            "Every event was flushed out of the compressor",
            &path,
        );
        let found = findings(&path);
        let f = found
            .iter()
            .find(|f| f["id"] == "sse_compressed")
            .expect("sse_compressed");
        assert_eq!(f["severity"], "info", "{path}");
    }
    for path in both("sse-plain") {
        let text = lesson(&path);
        assert_has(&text, "It was not compressed", &path);
        assert!(
            findings(&path).iter().all(|f| f["id"] != "sse_compressed"),
            "{path}"
        );
    }
}

#[test]
fn the_websocket_conversation() {
    for name in ["websocket", "websocket-deflate"] {
        for path in both(name) {
            let text = lesson(&path);
            let events = json_lines(&["follow", &path, "--conn", "0", "--json"]);
            let count = |kind: &str| {
                events
                    .iter()
                    .filter(|e| e["type"] == "ws_message" && e["opcode_name"] == kind)
                    .count()
            };
            assert_has(
                &text,
                &format!(
                    "then {} text and {} binary message(s), {} ping(s) and {} pong(s)",
                    count("text"),
                    count("binary"),
                    count("ping"),
                    count("pong")
                ),
                &path,
            );
            assert_has(&text, "and it matches", &path);
            let compressed = events
                .iter()
                .filter(|e| e["type"] == "ws_message" && e["compressed"] == true)
                .count();
            if name == "websocket-deflate" {
                assert!(compressed > 0, "{path}");
                assert_has(
                    &text,
                    &format!("{compressed} message(s) were compressed with permessage-deflate"),
                    &path,
                );
            } else {
                assert_eq!(compressed, 0, "{path}");
            }
        }
    }
}

#[test]
fn the_seed_diagnoses_stay_silent_on_their_well_formed_twins() {
    for path in both("http-keep-alive")
        .into_iter()
        .chain(both("sse-plain"))
        .chain(both("websocket"))
    {
        let ids: Vec<String> = findings(&path)
            .iter()
            .filter_map(|f| f["id"].as_str().map(str::to_string))
            .collect();
        assert!(
            !ids.iter()
                .any(|i| i == "http_header_newline" || i == "sse_compressed"),
            "{path}: {ids:?}"
        );
    }
}

#[test]
fn keep_alive_with_a_gzip_and_a_chunked_response() {
    for path in both("http-keep-alive-gzip-chunked") {
        let text = lesson(&path);
        let events = json_lines(&["follow", &path, "--conn", "0", "--json"]);
        let responses: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "http_response")
            .collect();
        assert_eq!(responses.len(), 3, "{path}");
        let gzip = responses
            .iter()
            .find(|r| r["content_encoding"] == "gzip")
            .expect("a gzip response");
        assert_has(
            &text,
            &format!(
                "those {} bytes on the wire decode to {} bytes",
                gzip["body_wire_len"], gzip["body_decoded_len"]
            ),
            &path,
        );
        let chunked = responses
            .iter()
            .find(|r| r["transfer_encoding"] == "chunked")
            .expect("a chunked response");
        assert_has(
            &text,
            &format!(
                "Its body is chunked ({} bytes with the chunk framing)",
                chunked["body_wire_len"]
            ),
            &path,
        );
        assert_has(&text, "carried 3 HTTP requests and 3 responses", &path);
    }
}
