//! Sharding connections across threads changes nothing in the output:
//! `conns` (text and JSON) is byte for byte the same with 1, 2, 3 and 8
//! threads, on every example capture and corpus file, port reuse and
//! summaries retired mid-capture included. Splitting the scripts of
//! `diagnose` among threads changes nothing either.

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
