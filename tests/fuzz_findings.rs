//! Inputs that fuzzing or the mutation campaign found to break chattcp, kept
//! so they never break it again. Each runs through every command, on one
//! and on several threads (worker threads have smaller stacks).

use std::path::PathBuf;
use std::process::Command;

fn finding(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/findings")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn chattcp(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .args(args)
        .output()
        .expect("run chattcp");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every command, on one thread and on four: status 0 or 2, no panic.
fn survives(name: &str) {
    let file = finding(name);
    for args in [
        vec!["packets", &file],
        vec!["conns", "--threads", "1", &file],
        vec!["conns", "--threads", "4", &file],
        vec!["diagnose", "--threads", "1", &file],
        vec!["follow", "--conn", "0", &file],
    ] {
        let (code, _, err) = chattcp(&args);
        assert!(code == 0 || code == 2, "{args:?}: status {code}\n{err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// The mutation campaign (examples/mutate_captures.rs) on a pcapng from
/// libpcap's tests: an IPv6 packet whose hop-by-hop header is followed by
/// another hop-by-hop header. etherparse's lax parser stops at the second,
/// and its extension iterator then read past the bytes it had kept:
/// undefined behaviour that overflowed a worker thread's stack.
#[test]
fn ipv6_repeated_hop_by_hop_header() {
    survives("ipv6-repeated-hop-by-hop.pcapng");
    let (_, out, _) = chattcp(&[
        "conns",
        "--threads",
        "4",
        &finding("ipv6-repeated-hop-by-hop.pcapng"),
    ]);
    assert!(out.contains("of 1 frames"), "{out}");
}

/// The `pipeline` fuzz target found the same over-read independently
/// (AddressSanitizer: heap-buffer-overflow in etherparse's
/// `Ipv6RawExtHeaderSlice::from_slice_unchecked`), in a 165-byte pcap.
#[test]
fn fuzzed_ipv6_extension_over_read() {
    survives("fuzz-pipeline-ipv6-extension-overread.pcap");
}
