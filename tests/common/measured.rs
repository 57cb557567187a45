//! Runs a program as a child with a hang guard and measures its peak
//! memory as the kernel counts it (`wait4`'s rusage of that one child).
//! Shared by the hostile-input tests and the mutation campaign example.
//!
//! The kernel carries the parent's own peak RSS into a spawned child's
//! count, so the parent must keep its memory small (read outputs through
//! [`head_and_tail`], generate captures streaming).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a child run ended.
pub struct Measured {
    /// Exit status, or minus the signal that killed it.
    pub status: i32,
    /// Killed by the hang guard.
    pub hung: bool,
    /// Peak resident memory, KiB.
    pub peak_rss_kib: i64,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// The start and end of standard output (see [`head_and_tail`]).
    pub stdout: String,
    /// The start and end of standard error.
    pub stderr: String,
}

/// The first MiB and the last 64 KiB of a file, read without holding more.
pub fn head_and_tail(path: &Path) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let mut head = Vec::new();
    let _ = (&mut f).take(1 << 20).read_to_end(&mut head);
    let mut text = String::from_utf8_lossy(&head).into_owned();
    if len > (1 << 20) + (64 << 10) {
        let mut tail = Vec::new();
        if f.seek(SeekFrom::End(-(64 << 10))).is_ok() && f.read_to_end(&mut tail).is_ok() {
            text.push_str("\n[…]\n");
            text.push_str(&String::from_utf8_lossy(&tail));
        }
    }
    text
}

/// Runs `program args`, its outputs going to `scratch`.out/.err (removed
/// after), killing it after `hang`.
pub fn run(program: &Path, args: &[&str], scratch: &Path, hang: Duration) -> io::Result<Measured> {
    let out_path = scratch.with_extension("out");
    let err_path = scratch.with_extension("err");
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?)
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if start.elapsed() > hang {
                    // SAFETY: signalling our own child, not yet reaped.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        })
    };
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data, filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waiting for our own child; std has not reaped it.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let hung = watchdog.join().unwrap_or(false);
    // Reaped above: std must not wait for it again.
    std::mem::forget(child.stdin.take());
    std::mem::forget(child);
    let read = |p: &Path| {
        let text = head_and_tail(p);
        let _ = std::fs::remove_file(p);
        text
    };
    Ok(Measured {
        status: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -libc::WTERMSIG(status)
        },
        hung,
        peak_rss_kib: usage.ru_maxrss,
        elapsed,
        stdout: read(&out_path),
        stderr: read(&err_path),
    })
}
