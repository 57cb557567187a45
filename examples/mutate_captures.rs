//! The mutation campaign: cut and damaged variants of real captures run
//! through `packets`, `conns`, `diagnose` and `follow`, each under a hang
//! guard with its peak memory measured.
//!
//! `cargo run --release --example mutate_captures -- [--variants N] DIR_OR_FILE...`
//! (uses `target/release/chattcp`; build it first). Variants per capture:
//! prefix cuts, random bit flips, a duplicated run of bytes, a zeroed run,
//! and a record length field rewritten. Prints one line per finding (a
//! panic, a signal, a hang, an exit status other than 0 or 2, an error that
//! names no position, memory over 256 MiB) and a summary.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[path = "../tests/common/mod.rs"]
mod common;

use common::measured;
use common::rng::XorShift;

const COMMANDS: [&[&str]; 4] = [
    &["packets"],
    &["conns"],
    &["diagnose", "--threads", "1"],
    &["follow", "--conn", "0"],
];
const HANG: Duration = Duration::from_secs(60);
const MAX_RSS_KIB: i64 = 256 << 10;

fn mutate(original: &[u8], kind: usize, rng: &mut XorShift) -> Vec<u8> {
    let mut v = original.to_vec();
    match kind % 5 {
        0 => v.truncate(rng.below(v.len())),
        1 => {
            for _ in 0..1 + rng.below(16) {
                let at = rng.below(v.len());
                v[at] ^= 1 << rng.below(8);
            }
        }
        2 => {
            let at = rng.below(v.len());
            let len = rng.below(4096).min(v.len() - at);
            let run = v[at..at + len].to_vec();
            let to = rng.below(v.len());
            v.splice(to..to, run);
        }
        3 => {
            let at = rng.below(v.len());
            let len = rng.below(512).min(v.len() - at);
            v[at..at + len].fill(0);
        }
        _ => {
            // A 32-bit field anywhere past the file header set to a large
            // or small length: record and block lengths are what readers
            // trust most.
            if v.len() > 32 {
                let at = 24 + rng.below(v.len() - 28);
                let value: u32 = match rng.below(3) {
                    0 => u32::MAX - rng.below(1000) as u32,
                    1 => rng.below(64) as u32,
                    _ => 0x0100_0000 + rng.below(1 << 20) as u32,
                };
                v[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
        }
    }
    v
}

fn captures(args: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for a in args {
        if a.is_dir() {
            if let Ok(entries) = std::fs::read_dir(a) {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        let n = p.to_string_lossy();
                        n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".cap")
                    })
                    .collect();
                files.sort();
                out.extend(files);
            }
        } else {
            out.push(a.clone());
        }
    }
    out
}

fn names_a_position(stderr: &str) -> bool {
    ["frame", "offset", "empty", "starts with", "no connection"]
        .iter()
        .any(|w| stderr.contains(w))
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut variants = 40;
    if let Some(i) = args.iter().position(|a| a == "--variants") {
        variants = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(40);
        args.drain(i..(i + 2).min(args.len()));
    }
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/chattcp");
    let files = captures(&args.iter().map(PathBuf::from).collect::<Vec<_>>());
    if files.is_empty() {
        eprintln!("usage: mutate_captures [--variants N] DIR_OR_FILE...");
        std::process::exit(2);
    }
    let scratch = std::env::temp_dir().join(format!("chattcp-mutate-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&scratch);
    let jobs: Vec<(PathBuf, usize)> = files
        .iter()
        .flat_map(|f| (0..variants).map(move |v| (f.clone(), v)))
        .collect();
    let next = AtomicUsize::new(0);
    let runs = AtomicU64::new(0);
    let status_2 = AtomicU64::new(0);
    let peak = AtomicU64::new(0);
    let slowest = Mutex::new((Duration::ZERO, String::new()));
    let findings = Mutex::new(Vec::<String>::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for t in 0..threads {
            let (jobs, next, runs, status_2, peak, slowest, findings, bin, scratch) = (
                &jobs, &next, &runs, &status_2, &peak, &slowest, &findings, &bin, &scratch,
            );
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((file, v)) = jobs.get(i) else { break };
                let Ok(original) = std::fs::read(file) else {
                    continue;
                };
                if original.is_empty() {
                    continue;
                }
                let mut rng = XorShift(
                    0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
                );
                let bytes = mutate(&original, *v, &mut rng);
                let name = format!(
                    "{}-v{v}",
                    file.file_name().unwrap_or_default().to_string_lossy()
                );
                let path = scratch.join(format!("t{t}-{name}"));
                if std::fs::write(&path, &bytes).is_err() {
                    continue;
                }
                let path_arg = path.to_string_lossy().into_owned();
                for cmd in COMMANDS {
                    let mut all: Vec<&str> = cmd.to_vec();
                    all.push(&path_arg);
                    let Ok(m) = measured::run(bin, &all, &path.with_extension("run"), HANG) else {
                        continue;
                    };
                    runs.fetch_add(1, Ordering::Relaxed);
                    peak.fetch_max(m.peak_rss_kib as u64, Ordering::Relaxed);
                    {
                        let mut s = slowest.lock().unwrap_or_else(|p| p.into_inner());
                        if m.elapsed > s.0 {
                            *s = (m.elapsed, format!("{} {name}", cmd.join(" ")));
                        }
                    }
                    let what = format!("{} {name}", cmd.join(" "));
                    let mut problem = None;
                    if m.hung {
                        problem = Some("hung".to_string());
                    } else if m.stderr.contains("panicked") || m.status == 101 {
                        problem = Some(format!(
                            "panic: {}",
                            m.stderr.lines().take(3).collect::<Vec<_>>().join(" | ")
                        ));
                    } else if m.status < 0 {
                        problem = Some(format!("killed by signal {}", -m.status));
                    } else if m.status != 0 && m.status != 2 {
                        problem = Some(format!("status {}", m.status));
                    } else if m.status == 2 && !names_a_position(&m.stderr) {
                        problem = Some(format!("error names no position: {}", m.stderr.trim()));
                    } else if m.peak_rss_kib > MAX_RSS_KIB {
                        problem = Some(format!("peak RSS {} MiB", m.peak_rss_kib / 1024));
                    }
                    if m.status == 2 {
                        status_2.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(p) = problem {
                        let keep = scratch.join(format!("finding-{name}"));
                        let _ = std::fs::copy(&path, &keep);
                        let line = format!("FINDING {what}: {p} (kept as {})", keep.display());
                        println!("{line}");
                        findings
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(line);
                    }
                }
                let _ = std::fs::remove_file(&path);
            });
        }
    });
    let findings = findings.into_inner().unwrap_or_default();
    let (slow, slow_what) = slowest.into_inner().unwrap_or_default();
    println!(
        "{} captures, {} variants, {} runs ({} commands each): {} ended with status 2, {} findings; peak RSS {} MiB; slowest {:.2} s ({slow_what})",
        files.len(),
        jobs.len(),
        runs.load(Ordering::Relaxed),
        COMMANDS.len(),
        status_2.load(Ordering::Relaxed),
        findings.len(),
        peak.load(Ordering::Relaxed) / 1024,
        slow.as_secs_f64(),
    );
    if !findings.is_empty() {
        std::process::exit(1);
    }
}
