//! The script host: the guide's examples, the reference, the sandbox and
//! the errors a user sees.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chattcp::pipeline::{self, Limits};
use chattcp::scripting::{host::sandbox_engine, values, Handler, Script, ScriptHost, ScriptLimits};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn guide() -> String {
    std::fs::read_to_string(root().join("docs/writing-rules.md")).expect("docs/writing-rules.md")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("scripting-{tag}"));
    // Files of an earlier run must not join this one.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn chattcp(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run chattcp");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_json(script: &Path, captures: &[&str]) -> Value {
    let mut args = vec!["run", "--json", script.to_str().expect("path")];
    args.extend_from_slice(captures);
    let (code, out, err) = chattcp(&args);
    // 1 says a script failed; its error is in the report.
    assert!(code == 0 || code == 1, "{err}");
    serde_json::from_str(&out).expect("JSON report")
}

fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("guide has no section {heading}"));
    let rest = &doc[start + heading.len()..];
    let end = rest
        .find("\n### ")
        .or_else(|| rest.find("\n## "))
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn every_field_the_host_registers_is_in_the_guide() {
    let doc = guide();
    let checks: [(&str, Vec<&str>); 9] = [
        (
            "### Packet",
            values::PACKET_FIELDS.iter().map(|f| f.0).collect(),
        ),
        (
            "### Opened connection",
            values::OPEN_FIELDS.iter().map(|f| f.0).collect(),
        ),
        (
            "### Connection",
            values::CLOSE_FIELDS.iter().map(|f| f.0).collect(),
        ),
        (
            "### Handshake",
            values::HANDSHAKE_FIELDS.iter().map(|f| f.0).collect(),
        ),
        (
            "### Data chunk",
            values::DATA_FIELDS.iter().map(|f| f.0).collect(),
        ),
        (
            "### HTTP message",
            values::HTTP_FIELDS.iter().map(|f| f.0).collect(),
        ),
        (
            "### Server-sent event",
            values::SSE_FIELDS.iter().map(|f| f.0).collect(),
        ),
        (
            "### WebSocket frame",
            values::WS_FRAME_FIELDS.iter().map(|f| f.0).collect(),
        ),
        (
            "### WebSocket message",
            values::WS_MESSAGE_FIELDS.iter().map(|f| f.0).collect(),
        ),
    ];
    for (heading, fields) in checks {
        let text = section(&doc, heading);
        for f in fields {
            assert!(
                text.contains(&format!("`{f}`")),
                "{heading}: field `{f}` is not documented"
            );
        }
    }
    let timeline = serde_json::to_value(chattcp::render::json::TimelineJson(&Default::default()))
        .expect("a timeline serialises");
    let conn = section(&doc, "### Connection");
    for key in timeline.as_object().expect("map").keys() {
        assert!(
            conn.contains(&format!("`{key}`")),
            "timeline key `{key}` is not documented"
        );
    }
    for h in Handler::ALL {
        assert!(
            doc.contains(&format!("`{}(", h.name())),
            "handler {} is not documented",
            h.name()
        );
    }
    for f in [
        "note(",
        "finding(",
        "print(",
        "metric(",
        "fmt_duration(",
        "fmt_bytes(",
        "fmt_flags(",
        "join(",
    ] {
        assert!(doc.contains(&format!("`{f}")), "{f} is not documented");
    }
}

/// The guide's examples, as a reader would copy them.
fn guide_examples() -> Vec<String> {
    let doc = guide();
    doc.split("```rhai\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn the_guides_examples_run_on_the_first_try() {
    let examples = guide_examples();
    assert_eq!(examples.len(), 6);
    let dir = temp_dir("guide");
    let captures = [
        "captures/retransmissions.pcap",
        "captures/http-keep-alive.pcap",
        "captures/syn-unanswered.pcap",
        "captures/zero-window.pcap",
    ];
    let mut reports = Vec::new();
    for (i, code) in examples.iter().enumerate() {
        let path = write(&dir, &format!("example{i}.rhai"), code);
        let report = run_json(&path, &captures);
        for c in report["captures"].as_array().expect("captures") {
            assert_eq!(
                c["errors"],
                serde_json::json!([]),
                "example {i} on {}",
                c["file"]
            );
        }
        reports.push(report);
    }
    // The retransmission counters agree with the analysis.
    assert_eq!(
        reports[0]["captures"][0]["prints"][0],
        "connection 0: 4 retransmissions"
    );
    // The filter example sees only the error responses (none in these).
    assert_eq!(reports[1]["captures"][1]["prints"], serde_json::json!([]));
    let finding = &reports[2]["captures"][0]["findings"][0];
    assert_eq!(finding["id"], "retransmission_count");
    assert_eq!(finding["frames"], serde_json::json!([77, 140, 144, 159]));
    // The line decoder finds the three requests and three responses.
    let lines = reports[4]["captures"][1]["prints"]
        .as_array()
        .expect("prints")
        .clone();
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(lines[2], "#0 c2s: GET /a.txt HTTP/1.1");
    // The per-connection map, forgotten at close, still sees every request.
    assert_eq!(
        reports[5]["captures"][1]["prints"],
        serde_json::json!(["connection 0: 3 requests"])
    );
}

#[test]
fn the_slow_handshake_example_fires_on_a_slow_handshake() {
    let corpus = root().join("../shared/corpus/pcpp-many-protocols.pcap");
    if !corpus.exists() {
        eprintln!(
            "SKIPPED: {} not found (CI has ../shared/corpus)",
            corpus.display()
        );
        return;
    }
    let dir = temp_dir("slow");
    let path = write(&dir, "slow.rhai", &guide_examples()[3]);
    let report = run_json(&path, &[corpus.to_str().expect("path")]);
    let findings = report["captures"][0]["findings"]
        .as_array()
        .expect("findings");
    assert!(!findings.is_empty());
    assert!(findings.iter().all(|f| f["id"] == "slow_handshake"));
}

#[test]
fn this_keeps_state_across_calls_and_starts_fresh_per_capture() {
    let dir = temp_dir("state");
    let path = write(
        &dir,
        "count.rhai",
        "fn init() { this.n = 0; }\nfn on_packet(p) { this.n += 1; }\nfn on_end() { print(this.n); }\n",
    );
    let report = run_json(
        &path,
        &[
            "captures/keep-alive.pcap",
            "captures/connection-refused.pcap",
        ],
    );
    assert_eq!(report["captures"][0]["prints"][0], "14");
    assert_eq!(report["captures"][1]["prints"][0], "2");
}

#[test]
fn events_no_script_handles_never_reach_rhai() {
    let limits = ScriptLimits::default();
    let engine = sandbox_engine(&limits);
    let close_only =
        Script::compile(&engine, "close_only", "test", "fn on_close(c) { }").expect("compiles");
    let scripts = [close_only];
    let mut host = ScriptHost::new(&scripts, limits);
    let file = std::fs::File::open(root().join("captures/retransmissions.pcap")).expect("capture");
    pipeline::run(file, Limits::default(), &mut host).expect("run");
    // 166 packets, one connection: one call, for its summary.
    assert_eq!(host.calls(), 1);
}

#[test]
fn a_finding_is_reported_once_per_id_and_connection() {
    let dir = temp_dir("dedupe");
    let path = write(
        &dir,
        "dup.rhai",
        r#"fn on_packet(p) { finding(#{ id: "x", severity: "info", conn: p.conn, title: "seen" }); }"#,
    );
    let report = run_json(&path, &["captures/keep-alive.pcap"]);
    assert_eq!(
        report["captures"][0]["findings"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn a_malformed_finding_is_a_runtime_error_naming_the_problem() {
    let dir = temp_dir("malformed");
    let path = write(
        &dir,
        "bad_finding.rhai",
        "fn on_close(c) {\n    finding(#{ id: \"x\", severity: \"fatal\", title: \"t\" });\n}\n",
    );
    let report = run_json(&path, &["captures/keep-alive.pcap"]);
    let e = &report["captures"][0]["errors"][0];
    assert_eq!(e["handler"], "on_close");
    assert_eq!(e["line"], 2);
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("\"info\", \"warning\" or \"error\""),
        "{e}"
    );
}

#[test]
fn a_syntax_error_shows_file_line_column_the_line_and_a_caret() {
    let dir = temp_dir("syntax");
    let path = write(
        &dir,
        "broken.rhai",
        "//! title: broken\nfn on_packet(p {\n    print(p.frame);\n}\n",
    );
    let (code, out, err) = chattcp(&[
        "run",
        path.to_str().expect("path"),
        "captures/keep-alive.pcap",
    ]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    let first = err.lines().next().unwrap_or("");
    assert!(first.contains("broken.rhai:2:16:"), "{err}");
    assert!(err.contains("2 | fn on_packet(p {"), "{err}");
    let caret = err
        .lines()
        .find(|l| l.trim_end().ends_with('^'))
        .expect("a caret line");
    let source = err
        .lines()
        .find(|l| l.contains("fn on_packet(p {"))
        .expect("source line");
    assert_eq!(
        caret.find('^'),
        source.find('{'),
        "caret under the column:\n{err}"
    );
}

#[test]
fn a_handler_with_the_wrong_parameters_is_a_compile_error() {
    let dir = temp_dir("arity");
    let path = write(&dir, "arity.rhai", "fn on_close() {\n}\n");
    let (code, _, err) = chattcp(&[
        "run",
        path.to_str().expect("path"),
        "captures/keep-alive.pcap",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("arity.rhai:1:1: `on_close` takes 1 parameter, not 0"),
        "{err}"
    );
}

#[test]
fn a_runtime_error_names_the_script_handler_line_and_frame() {
    let dir = temp_dir("runtime");
    let path = write(
        &dir,
        "oops.rhai",
        "fn on_packet(p) {\n    if p.frame == 5 {\n        let x = p.no_such_field + 1;\n    }\n}\n",
    );
    let (code, out, _) = chattcp(&[
        "run",
        path.to_str().expect("path"),
        "captures/keep-alive.pcap",
    ]);
    assert_eq!(
        code, 1,
        "a failing script is reported, and the status says so"
    );
    assert!(
        out.contains("script error: oops: on_packet failed at line 3 while processing frame 5"),
        "{out}"
    );
    assert!(
        out.contains("3 |         let x = p.no_such_field + 1;"),
        "{out}"
    );
}

/// Runs `bad` (which breaks a limit) beside a well-behaved rule with
/// `diagnose`, and returns the report of keep-alive.pcap and the time taken.
fn diagnose_with(bad: &str) -> (Value, Duration) {
    let dir = temp_dir(&format!("limits-{}", bad.len()));
    write(&dir, "bad.rhai", bad);
    write(
        &dir,
        "good.rhai",
        "fn on_close(c) { finding(#{ id: \"good\", severity: \"info\", conn: c.conn, title: \"still here\" }); }\n",
    );
    let started = Instant::now();
    let (code, out, err) = chattcp(&[
        "diagnose",
        "--json",
        "--rules",
        dir.to_str().expect("path"),
        "captures/keep-alive.pcap",
    ]);
    let took = started.elapsed();
    assert_eq!(code, 1, "a script failed: {err}");
    assert!(err.contains("script bad failed"), "{err}");
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let capture = report["captures"][0].clone();
    let ids: Vec<&str> = capture["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"good"),
        "the other scripts' results stand: {ids:?}"
    );
    assert!(
        ids.contains(&"keep_alive"),
        "built-in diagnoses still run: {ids:?}"
    );
    (capture, took)
}

fn only_error(capture: &Value) -> Value {
    let errors = capture["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["script"], "bad");
    errors[0].clone()
}

#[test]
fn an_endless_loop_is_stopped_within_a_second_with_the_limit_named() {
    let (capture, took) =
        diagnose_with("fn on_packet(p) {\n    loop {\n        let x = 1;\n    }\n}\n");
    let e = only_error(&capture);
    assert_eq!(e["handler"], "on_packet");
    assert_eq!(e["frame"], 1);
    assert_eq!(e["line"], 2, "the line of the loop: {e}");
    assert!(e["message"].as_str().unwrap_or("").contains("limit"), "{e}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn runaway_recursion_is_stopped_at_the_call_depth_limit() {
    let (capture, _) =
        diagnose_with("fn down(n) { down(n + 1) }\nfn on_close(c) {\n    down(0);\n}\n");
    let e = only_error(&capture);
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("nested deeper than the limit of 64"),
        "{e}"
    );
    assert_eq!(e["line"], 1, "{e}");
}

#[test]
fn a_giant_string_is_stopped_at_the_size_limit() {
    let (capture, _) = diagnose_with("fn init() {\n    let s = \"x\";\n    loop { s += s; }\n}\n");
    let e = only_error(&capture);
    assert_eq!(e["handler"], "init");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("length of string over its limit"),
        "{e}"
    );
    assert_eq!(e["line"], 3, "{e}");
}

#[test]
fn a_giant_array_is_stopped_at_the_size_limit() {
    let (capture, _) =
        diagnose_with("fn init() {\n    this.a = [];\n    loop { this.a.push(1); }\n}\n");
    let e = only_error(&capture);
    assert!(e["message"].as_str().unwrap_or("").contains("limit"), "{e}");
}

#[test]
fn a_script_that_throws_in_every_handler_is_stopped_and_named() {
    let (capture, _) = diagnose_with(
        "fn on_packet(p) { throw \"boom\"; }\nfn on_close(c) { throw \"boom\"; }\nfn on_end() { throw \"boom\"; }\n",
    );
    let e = only_error(&capture);
    assert_eq!(e["handler"], "on_packet");
    assert!(e["message"].as_str().unwrap_or("").contains("boom"), "{e}");
}

#[test]
fn scripts_cannot_reach_files() {
    let (capture, _) =
        diagnose_with("fn on_close(c) {\n    import \"/etc/passwd\" as secrets;\n}\n");
    let e = only_error(&capture);
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("module"),
        "{e}"
    );
}

#[test]
fn built_in_scripts_are_listed_and_a_user_directory_overrides_them() {
    let (code, out, _) = chattcp(&["scripts"]);
    assert_eq!(code, 0);
    for id in [
        "handshake_ack_lost",
        "syn_unanswered",
        "connection_refused",
        "retransmissions",
        "zero_window",
        "reset",
        "keep_alive",
        "unclosed",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{out}"));
        assert!(line.contains("diagnosis"), "{line}");
    }
    let dir = temp_dir("override");
    write(
        &dir,
        "keep_alive.rhai",
        "//! title: My keep-alive rule\nfn on_close(c) { }\n",
    );
    write(
        &dir,
        "extra.rhai",
        "//! title: Extra\n//! kind: lesson\nfn on_close(c) { }\n",
    );
    let (_, out, _) = chattcp(&["scripts", "--rules", dir.to_str().expect("path")]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("keep_alive") && l.contains("My keep-alive rule")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("extra") && l.contains("lesson")),
        "{out}"
    );
}

#[test]
fn diagnose_json_has_the_documented_shape_and_an_unusable_file_is_status_2() {
    let dir = temp_dir("shape");
    let junk = write(&dir, "junk.pcap", "not a capture at all");
    let (code, out, err) = chattcp(&[
        "diagnose",
        "--json",
        "captures/syn-unanswered.pcap",
        junk.to_str().expect("path"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("junk.pcap") && err.contains("not a pcap"),
        "{err}"
    );
    let report: Value = serde_json::from_str(&out).expect("JSON");
    let captures = report["captures"].as_array().expect("captures");
    assert_eq!(captures.len(), 2, "the good capture is still reported");
    let first = &captures[0];
    assert_eq!(first["file"], "captures/syn-unanswered.pcap");
    for key in [
        "connections",
        "incomplete_handshakes",
        "connections_with_retransmissions",
        "resets",
        "keep_alives",
    ] {
        assert!(first["stats"][key].is_u64(), "stats.{key}");
    }
    let f = &first["findings"][0];
    for key in [
        "id", "script", "severity", "conn", "frames", "title", "detail",
    ] {
        assert!(!f[key].is_null(), "finding.{key}: {f}");
    }
    assert_eq!(f["id"], "syn_unanswered");
    assert!(captures[1]["problem"]
        .as_str()
        .unwrap_or("")
        .contains("not a pcap"));
}

#[test]
fn the_guides_error_examples_are_what_chattcp_prints() {
    let doc = guide();
    let blocks: Vec<&str> = doc
        .split("```text\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or(""))
        .collect();
    assert_eq!(blocks.len(), 2, "a syntax error and a runtime error");
    let dir = temp_dir("guide-errors");
    let capture = root().join("captures/keep-alive.pcap");
    let run = |source: &str| {
        std::fs::write(dir.join("my-rule.rhai"), source).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
            .current_dir(&dir)
            .args(["run", "my-rule.rhai"])
            .arg(&capture)
            .output()
            .expect("run chattcp");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let syntax = run("fn on_packet(p) {\n    print(p.frame);\n}\nfn on_close(c {\n}\n");
    for line in blocks[0].lines() {
        assert!(
            syntax.contains(line),
            "the guide shows {line:?}; chattcp printed:\n{syntax}"
        );
    }
    let runtime = run("fn on_packet(p) {\n    if p.frame == 12 {\n        nope(p);\n    }\n}\n");
    for line in blocks[1].lines() {
        assert!(
            runtime.contains(line),
            "the guide shows {line:?}; chattcp printed:\n{runtime}"
        );
    }
}

#[test]
fn lessons_can_be_scoped_to_the_connections_a_view_draws() {
    use chattcp::events::{Event, EventSink};
    use chattcp::pipeline::Limits;
    use chattcp::scripting::run::run_scoped;
    use chattcp::scripting::{load_scripts, LessonScope, ScriptLimits};

    struct Nothing;
    impl EventSink for Nothing {
        fn event(&mut self, _: &Event<'_>) -> std::io::Result<()> {
            Ok(())
        }
    }
    let scripts = load_scripts(None, None, &ScriptLimits::default()).expect("built-ins");
    let capture =
        std::fs::read(root().join("tests/data/netcat-two-connections.pcapng")).expect("capture");
    let notes_by_conn = |scope| {
        let (out, _) = run_scoped(
            &capture[..],
            &scripts,
            Limits::default(),
            ScriptLimits::default(),
            None,
            scope,
            &mut Nothing,
        )
        .expect("run");
        let mut conns: Vec<Option<u64>> = out.notes.iter().map(|n| n.conn).collect();
        conns.dedup();
        (conns, out.findings.len())
    };
    let (all, findings_all) = notes_by_conn(LessonScope::All);
    assert!(all.contains(&Some(0)) && all.contains(&Some(1)), "{all:?}");
    let (first, findings_first) = notes_by_conn(LessonScope::Below(1));
    assert_eq!(first, vec![Some(0)]);
    // Diagnoses still see everything.
    assert_eq!(findings_all, findings_first);
    let (second, _) = notes_by_conn(LessonScope::Only(1));
    assert_eq!(second, vec![Some(1)]);
}

/// Runs `script` over `captures` and gives each capture's prints.
fn prints_of(script: &str, captures: &[&str], extra: &[&str]) -> Vec<Vec<String>> {
    let dir = temp_dir("filters");
    let path = write(&dir, "filtered.rhai", script);
    let mut args = vec!["run", "--json"];
    args.extend_from_slice(extra);
    args.push(path.to_str().expect("path"));
    args.extend_from_slice(captures);
    let (code, out, err) = chattcp(&args);
    assert!(code == 0, "{err}{out}");
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    report["captures"]
        .as_array()
        .expect("captures")
        .iter()
        .map(|c| {
            c["prints"]
                .as_array()
                .expect("prints")
                .iter()
                .map(|p| p.as_str().unwrap_or("").to_string())
                .collect()
        })
        .collect()
}

#[test]
fn a_filter_lets_only_the_events_it_admits_reach_the_handler() {
    let captures = [
        "captures/connection-refused.pcap",
        "captures/four-packet-close.pcap",
        "captures/http-keep-alive.pcap",
        "captures/retransmissions.pcap",
    ];
    let script = r#"
        const ON_CLOSE_WHEN = #{ handshake: "refused", "flag_counts.retransmission": true };
        fn on_close(c) { print(`${c.conn} ${c.handshake}`); }
    "#;
    let filtered = prints_of(script, &captures, &[]);
    assert_eq!(
        filtered,
        [vec!["0 refused"], vec![], vec![], vec!["0 complete"]]
    );
    // Ignored, every connection reaches the handler.
    let all = prints_of(script, &captures, &["--no-filters"]);
    assert_eq!(all.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1, 1]);

    // Numbers in a range, bounds, and an array field through its items.
    let script = r#"
        const ON_HTTP_RESPONSE_WHEN = #{ status: 200..=200, ttfb: #{ above: 10.0 } };
        const ON_HTTP_REQUEST_WHEN = #{ anomaly_names: "bare_lf" };
        fn on_http_response(r) { print(`response ${r.index} ${r.status} to ${r.request.uri}`); }
        fn on_http_request(r) { print(`request ${r.index} ${r.anomaly_names}`); }
    "#;
    let seen = prints_of(
        script,
        &[
            "captures/http-keep-alive.pcap",
            "captures/http-header-newline.pcap",
        ],
        &[],
    );
    assert_eq!(
        seen[0],
        [
            "response 0 200 to /",
            "response 1 200 to /a.txt",
            "response 2 200 to /b.txt"
        ]
    );
    // One request of the second capture has a bare LF among its anomalies.
    assert_eq!(
        seen[1],
        [
            r#"request 0 ["invalid_header_byte", "bare_lf", "header_block_ends_early", "content_length_mismatch"]"#,
            "response 0 200 to /notes"
        ]
    );
}

#[test]
fn a_watched_connection_reaches_on_close_and_the_others_do_not() {
    let script = r#"
        const ON_CLOSE_WHEN = #{ watched: true };
        fn on_open(c) { if c.conn == 1 { watch(c.conn); } }
        fn on_close(c) { print(`closed ${c.conn}`); }
    "#;
    let seen = prints_of(script, &["tests/data/netcat-two-connections.pcapng"], &[]);
    assert_eq!(seen, [vec!["closed 1"]]);
    // unwatch takes it back.
    let script = r#"
        const ON_CLOSE_WHEN = #{ watched: true };
        fn on_open(c) { watch(c.conn); unwatch(0); }
        fn on_close(c) { print(`closed ${c.conn}`); }
    "#;
    let seen = prints_of(script, &["tests/data/netcat-two-connections.pcapng"], &[]);
    assert_eq!(seen, [vec!["closed 1"]]);
}

#[test]
fn a_filter_that_names_nothing_stops_its_script_with_the_name() {
    for (script, message) in [
        (
            "const ON_CLOSED_WHEN = #{ handshake: \"refused\" };\nfn on_close(c) { }",
            "`ON_CLOSED_WHEN` names no handler",
        ),
        (
            "const ON_CLOSE_WHEN = #{ handshak: \"refused\" };\nfn on_close(c) { }",
            "on_close's value has no field `handshak`",
        ),
        (
            "const ON_OPEN_WHEN = #{ conn: 0 };\nfn on_close(c) { }",
            "`ON_OPEN_WHEN` filters `on_open`, which the script does not define",
        ),
    ] {
        let dir = temp_dir("bad-filter");
        let path = write(&dir, "bad.rhai", script);
        let report = run_json(&path, &["captures/connection-refused.pcap"]);
        let error = &report["captures"][0]["errors"][0];
        assert_eq!(error["handler"], "top level", "{report}");
        assert_eq!(error["line"], 1, "{report}");
        let text = error["message"].as_str().unwrap_or("");
        assert!(text.contains(message), "{text}");
    }
}

#[test]
fn a_request_no_response_answered_reaches_on_http_unanswered() {
    let corpus = root().join("../shared/corpus");
    if !corpus.exists() {
        eprintln!(
            "SKIPPED: {} not found (CI has ../shared/corpus)",
            corpus.display()
        );
        return;
    }
    let script = r#"
        fn on_http_unanswered(r) { print(`${r.conn} ${r.index} ${r.method} ${r.uri}`); }
    "#;
    let seen = prints_of(
        script,
        &[
            "captures/http-keep-alive.pcap",
            "../shared/corpus/zeek-payload-syn-rawip.pcap",
            "../shared/corpus/zeek-http-te-cl-desync.pcap",
        ],
        &[],
    );
    assert_eq!(
        seen,
        [
            vec![],
            vec!["0 0 GET //index.php?page=../../../etc/passwd"],
            // The smuggled request was answered by nobody either.
            vec!["0 0 POST /", "0 1 GET /smuggled-te-cl"],
        ]
    );
}

/// Every packet of an example capture, analysed, without payloads.
fn packet_records(capture: &str) -> Vec<chattcp::tracking::PacketRecord<'static>> {
    struct Keep(Vec<chattcp::tracking::PacketRecord<'static>>);
    impl chattcp::events::EventSink for Keep {
        fn event(&mut self, event: &chattcp::events::Event<'_>) -> std::io::Result<()> {
            if let chattcp::events::Event::Packet(p) = event {
                self.0.push(p.detached());
            }
            Ok(())
        }
    }
    let file = std::fs::File::open(root().join("captures").join(capture)).expect("capture");
    let mut keep = Keep(Vec::new());
    pipeline::run(file, Limits::default(), &mut keep).expect("run");
    keep.0
}

/// rhai checks a value against the size limits where it is made or set,
/// not a map that grows by index (`this.seen[key] = v`) call after call:
/// the host measures what `this` keeps as it grows, and stops the script.
#[test]
fn a_state_that_grows_call_after_call_is_stopped_at_the_size_limit() {
    use chattcp::events::{Event, EventSink};
    let limits = ScriptLimits {
        max_map: 5_000,
        ..ScriptLimits::default()
    };
    let engine = sandbox_engine(&limits);
    let source = "fn init() { this.seen = #{}; this.n = 0; }\n\
                  fn on_packet(p) {\n    for i in 0..10 { this.seen[`${this.n}-${i}`] = true; }\n    this.n += 1;\n}\n";
    let scripts = [Script::compile(&engine, "grow", "test", source).expect("compiles")];
    let mut host = ScriptHost::new(&scripts, limits);
    let records = packet_records("retransmissions.pcap");
    let mut sent = 0u64;
    // Replayed until the host has had the chance to measure several times.
    while sent < 20_000 {
        for p in &records {
            host.event(&Event::Packet(p)).expect("event");
            sent += 1;
        }
    }
    let calls = host.calls();
    let errors = host.finish().errors;
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e.handler, "on_packet");
    assert!(
        e.message.contains("size of object map over its limit")
            && e.message.contains("in what `this` keeps"),
        "{e:?}"
    );
    // Stopped within a few thousand calls of passing 5,000 entries (500
    // calls), not run to the end.
    assert!(calls < 10_000, "{calls} calls of {sent}");
}

/// Writes to `this` with a dot run by index (state_writes.rs): the values
/// they leave are those the dot would.
#[test]
fn writes_to_this_keep_their_meaning() {
    let dir = temp_dir("state-writes");
    let script = write(
        &dir,
        "writes.rhai",
        "fn init() { this.n = 0; this.s = \"\"; this.m = #{}; this.bits = 1; }\n\
         fn on_packet(p) {\n    this.n += 1;\n    this.s = `${p.frame}`;\n    this.m.last = p.frame;\n    this.bits <<= 1;\n    this.bits %= 1000;\n}\n\
         fn on_end() { print(`${this.n} ${this.s} ${this.m.last} ${this.bits} ${this[\"n\"]}`); }\n",
    );
    let report = run_json(&script, &["captures/keep-alive.pcap"]);
    let packets = packet_records("keep-alive.pcap").len();
    let last = packets;
    let bits = (0..packets).fold(1u64, |b, _| (b << 1) % 1000);
    assert_eq!(
        report["captures"][0]["prints"][0],
        format!("{packets} {last} {last} {bits} {packets}")
    );
}
