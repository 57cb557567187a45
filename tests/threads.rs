//! Sharding connections across threads changes nothing in the output:
//! `conns` (text and JSON) is byte for byte the same with 1, 2, 3 and 8
//! threads, on every example capture and corpus file, port reuse and
//! summaries retired mid-capture included. `diagnose` is the same whether
//! a capture's connections are sharded (its scripts read no packet or byte
//! stream) or its scripts split among threads (one does).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Everything `chattcp COMMAND --threads N PATH [--json]` says, and how it ends.
fn chattcp(command: &str, path: &Path, threads: usize, json: bool) -> Vec<u8> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chattcp"));
    cmd.arg(command)
        .arg("--threads")
        .arg(threads.to_string())
        .arg(path);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run chattcp");
    let mut all = out.stdout;
    all.extend_from_slice(&out.stderr);
    all.extend_from_slice(format!("exit {:?}", out.status.code()).as_bytes());
    all
}

fn captures_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn conns_is_the_same_on_any_number_of_threads() {
    let mut files = captures_in(&root().join("captures"));
    files.extend(captures_in(&root().join("tests/data")));
    let corpus = captures_in(&root().join("../shared/corpus"));
    if corpus.is_empty() {
        eprintln!("SKIPPED the corpus: ../shared/corpus not found (CI has it)");
    }
    files.extend(corpus);
    assert!(files.len() >= 17);
    // Hundreds of short HTTP connections: hundreds of connections'
    // application lines wait for their summaries at once.
    files.push(root().join("benches/pgo-train.pcap"));
    let mut compared = 0;
    for path in &files {
        for json in [false, true] {
            let one = chattcp("conns", path, 1, json);
            for threads in [2, 3, 8] {
                assert!(
                    one == chattcp("conns", path, threads, json),
                    "{}: --threads {threads}{} differs from one thread",
                    path.display(),
                    if json { " --json" } else { "" }
                );
                compared += 1;
            }
        }
    }
    eprintln!("{} files, {compared} comparisons", files.len());
}

#[test]
fn diagnose_is_the_same_on_any_number_of_threads() {
    let mut files = captures_in(&root().join("captures"));
    files.extend(captures_in(&root().join("tests/data")));
    files.extend(captures_in(&root().join("tests/data/rerecorded")));
    let corpus = captures_in(&root().join("../shared/corpus"));
    if corpus.is_empty() {
        eprintln!("SKIPPED the corpus: ../shared/corpus not found (CI has it)");
    }
    files.extend(corpus);
    let mut with_findings = 0;
    for path in &files {
        for json in [false, true] {
            let one = chattcp("diagnose", path, 1, json);
            if !json && !String::from_utf8_lossy(&one).contains("no findings") {
                with_findings += 1;
            }
            for threads in [2, 5] {
                assert!(
                    one == chattcp("diagnose", path, threads, json),
                    "{}: diagnose --threads {threads}{} differs from one thread",
                    path.display(),
                    if json { " --json" } else { "" }
                );
            }
        }
    }
    assert!(
        with_findings >= 20,
        "{with_findings} captures with findings"
    );
}

/// `COMMAND ARGS... --threads N FILES...` run, all it says and its status.
fn chattcp_args(args: &[&str], threads: usize, files: &[PathBuf]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .args(args)
        .arg("--threads")
        .arg(threads.to_string())
        .args(files)
        .output()
        .expect("run chattcp");
    let mut all = out.stdout;
    all.extend_from_slice(&out.stderr);
    all.extend_from_slice(format!("exit {:?}", out.status.code()).as_bytes());
    all
}

fn every_capture() -> Vec<PathBuf> {
    let mut files = captures_in(&root().join("captures"));
    files.extend(captures_in(&root().join("tests/data")));
    files.extend(captures_in(&root().join("../shared/corpus")));
    files
}

/// A rule that reads every packet cannot be sharded: its scripts are split
/// among the threads instead, and the report is the same.
#[test]
fn diagnose_with_a_packet_rule_is_the_same_on_any_number_of_threads() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("threads");
    // Files of an earlier run must not join this one.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("big_packets.rhai"),
        "fn on_packet(p) { if p.len > 1400 { finding(#{ id: \"big\", severity: \"info\", conn: p.conn, title: `${p.len}` }); } }",
    )
    .expect("rule");
    let rules = dir.to_str().expect("path");
    for path in every_capture() {
        let files = [path.clone()];
        let one = chattcp_args(&["diagnose", "--json", "--rules", rules], 1, &files);
        for threads in [2, 5] {
            assert!(
                one == chattcp_args(&["diagnose", "--json", "--rules", rules], threads, &files),
                "{}: --threads {threads} differs",
                path.display()
            );
        }
    }
}

/// Sharded, the connection numbers of HTTP messages, of the requests they
/// answer and of unanswered requests are the single run's.
#[test]
fn http_values_are_numbered_alike_when_sharded() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("threads-http");
    // Files of an earlier run must not join this one.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let script = dir.join("numbers.rhai");
    std::fs::write(
        &script,
        r#"
        fn on_http_response(r) {
            let q = if r.request == () { "-" } else { `${r.request.conn}/${r.request.index}` };
            print(`response ${r.conn}/${r.index} answers ${q} at ${r.first_time}`);
        }
        fn on_http_unanswered(r) { print(`unanswered ${r.conn}/${r.index} ${r.last_time}`); }
        fn on_close(c) { print(`close ${c.conn}`); }
        "#,
    )
    .expect("script");
    let script = script.to_str().expect("path");
    let mut printed = 0;
    for path in every_capture() {
        let files = [path.clone()];
        let one = chattcp_args(&["run", "--json", script], 1, &files);
        printed += String::from_utf8_lossy(&one).matches("response ").count();
        for threads in [2, 3] {
            assert!(
                one == chattcp_args(&["run", "--json", script], threads, &files),
                "{}: --threads {threads} differs",
                path.display()
            );
        }
    }
    assert!(printed >= 10, "{printed} responses");
}

/// `conns` over several captures lists each as `conns` lists it alone, in
/// the order given, whatever the threads: under a `== FILE` line in text,
/// with a leading `"file"` field in JSON. A capture that cannot be opened
/// is said so, the others are still listed, and the status says it.
#[test]
fn conns_of_several_captures_lists_each_as_alone_in_order() {
    let files = every_capture();
    assert!(files.len() >= 17);
    // A damaged capture's status (2) is the run's; what could be read of
    // it is listed all the same.
    let status = std::cell::Cell::new(0);
    let alone = |path: &Path, json: bool| -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chattcp"));
        cmd.arg("conns").arg(path);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("run chattcp");
        status.set(status.get().max(out.status.code().expect("a status")));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let mut text = String::new();
    let mut json = String::new();
    for (i, path) in files.iter().enumerate() {
        let name = path.display().to_string();
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&format!("== {name}\n{}", alone(path, false)));
        for line in alone(path, true).lines() {
            let rest = line.strip_prefix('{').expect("an object");
            json.push_str(&format!("{{\"file\":{name:?},{rest}\n"));
        }
    }
    for threads in [1, 2, 5, 64] {
        let out = |extra: &[&str]| {
            let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
                .arg("conns")
                .args(extra)
                .arg("--threads")
                .arg(threads.to_string())
                .args(&files)
                .output()
                .expect("run chattcp");
            assert_eq!(out.status.code(), Some(status.get()), "--threads {threads}");
            String::from_utf8(out.stdout).expect("utf-8")
        };
        assert!(out(&[]) == text, "text, --threads {threads}");
        assert!(out(&["--json"]) == json, "JSON, --threads {threads}");
    }

    let missing = root().join("captures/no-such-capture.pcap");
    let (first, second) = (alone(&files[0], false), alone(&files[1], false));
    let some = [files[0].clone(), missing.clone(), files[1].clone()];
    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .args(["conns", "--threads", "2"])
        .args(&some)
        .output()
        .expect("run chattcp");
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&first) && stdout.contains(&second));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: cannot open", missing.display())),
        "{stderr}"
    );
}

/// `conns --tcp-only` skips the dissectors: the same TCP lines, without
/// the application ones (and `app` null in JSON), on one thread or more.
#[test]
fn conns_tcp_only_drops_the_application_lines_alone() {
    const APP_LINES: [&str; 5] = [
        "     http      ",
        "     bodies    ",
        "     anomalies ",
        "     events    ",
        "     websocket ",
    ];
    let mut with_app = 0;
    for path in every_capture() {
        let one = std::slice::from_ref(&path);
        for threads in [1, 2] {
            let full = chattcp_args(&["conns"], threads, one);
            let tcp = chattcp_args(&["conns", "--tcp-only"], threads, one);
            let full = String::from_utf8_lossy(&full);
            let kept: String = full
                .split_inclusive('\n')
                .filter(|l| !APP_LINES.iter().any(|p| l.starts_with(p)))
                .collect();
            if kept.len() < full.len() {
                with_app += 1;
            }
            assert_eq!(kept, String::from_utf8_lossy(&tcp), "{}", path.display());
            let json = chattcp_args(&["conns", "--json", "--tcp-only"], threads, one);
            for line in String::from_utf8_lossy(&json)
                .lines()
                .filter(|l| l.starts_with('{'))
            {
                assert!(
                    line.ends_with(",\"app\":null}"),
                    "{}: {line}",
                    path.display()
                );
            }
        }
    }
    // The examples alone have nine connections with application lines.
    assert!(with_app >= 18, "{with_app}");
}
