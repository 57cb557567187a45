//! Each case where tshark's reading is wrong (docs/analysis.md, "insight"):
//! tshark's flags stay in `analysis`, the better reading is in `insight`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn packets(capture: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .args(["packets", "--json"])
        .arg(capture)
        .output()
        .expect("run chattcp");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn frame(all: &[Value], n: u64) -> &Value {
    all.iter().find(|p| p["frame"] == n).expect("frame present")
}

fn corpus(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} not found (CI has ../shared/corpus)",
            p.display()
        );
        None
    }
}

#[test]
fn linux_zero_window_probes_are_probes_not_keep_alives() {
    let Some(path) = corpus("cs-tcp-zerowindow-dead.pcapng") else {
        return;
    };
    let all = packets(&path);
    for n in [3, 5, 7] {
        let p = frame(&all, n);
        assert_eq!(names(&p["analysis"]), ["keep_alive"], "frame {n}");
        assert_eq!(names(&p["insight"]), ["zero_window_probe"], "frame {n}");
    }
    for n in [4, 6, 8] {
        let p = frame(&all, n);
        assert!(
            names(&p["insight"]).contains(&"zero_window_probe_ack".to_string()),
            "frame {n}"
        );
    }
    // The zero window itself is what tshark says it is.
    assert!(names(&frame(&all, 2)["insight"]).is_empty());
}

#[test]
fn our_own_linux_capture_shows_the_same_probes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/zero-window.pcap");
    let all = packets(&path);
    for n in [32, 34, 35] {
        let p = frame(&all, n);
        assert_eq!(names(&p["analysis"]), ["keep_alive"], "frame {n}");
        assert_eq!(names(&p["insight"]), ["zero_window_probe"], "frame {n}");
    }
    for n in [33, 36] {
        let p = frame(&all, n);
        assert_eq!(names(&p["analysis"]), ["zero_window"], "frame {n}");
        assert_eq!(names(&p["insight"]), ["zero_window_probe_ack"], "frame {n}");
    }
    let probes = all
        .iter()
        .filter(|p| names(&p["insight"]).contains(&"zero_window_probe".to_string()))
        .count();
    assert_eq!(probes, 3);
}

#[test]
fn a_fast_retransmission_without_duplicate_acks_is_named() {
    let Some(path) = corpus("zeek-tcp-reassembly.pcap") else {
        return;
    };
    let all = packets(&path);
    for n in [8, 10, 12] {
        let p = frame(&all, n);
        assert!(names(&p["analysis"]).contains(&"fast_retransmission".to_string()));
        assert_eq!(
            names(&p["insight"]),
            ["retransmission_without_duplicate_acks"],
            "frame {n}"
        );
    }
}

#[test]
fn a_packet_captured_twice_is_not_a_retransmission() {
    let Some(path) = corpus("zeek-ssh-dups.pcap") else {
        return;
    };
    let all = packets(&path);
    // Frames 4-7: one segment captured four times at the same instant.
    assert!(names(&frame(&all, 4)["insight"]).is_empty());
    for n in [5, 6, 7] {
        let p = frame(&all, n);
        assert!(
            names(&p["analysis"]).contains(&"retransmission".to_string()),
            "frame {n}"
        );
        assert_eq!(names(&p["insight"]), ["duplicate_capture"], "frame {n}");
    }
    let copies = all
        .iter()
        .filter(|p| names(&p["insight"]).contains(&"duplicate_capture".to_string()))
        .count();
    assert_eq!(copies, 166);
}

#[test]
fn a_real_retransmission_is_not_a_duplicate_capture() {
    let Some(path) = corpus("cs-tcp-retransmissions.pcapng") else {
        return;
    };
    let all = packets(&path);
    let retransmissions: Vec<&Value> = all
        .iter()
        .filter(|p| names(&p["analysis"]).contains(&"retransmission".to_string()))
        .collect();
    assert_eq!(retransmissions.len(), 5);
    assert!(retransmissions
        .iter()
        .all(|p| names(&p["insight"]).is_empty()));
}

/// IPv4 + TCP from 10.0.0.1:40000 to 10.0.0.2:80 (or back), with a 12-byte
/// timestamp option block.
fn segment(from_client: bool, flags: u8, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sport, dport) = if from_client {
        ([10, 0, 0, 1], [10, 0, 0, 2], 40000u16, 80u16)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 80, 40000)
    };
    let total = 20 + 32 + payload.len();
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ack.to_be_bytes());
    p.extend_from_slice(&[0x80, flags, 0xff, 0xff, 0, 0, 0, 0]);
    p.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 1]);
    p.extend_from_slice(payload);
    p
}

#[test]
fn flags_hidden_by_a_snaplen_cut_in_the_options_are_said_to_be_hidden() {
    let mut file = Vec::new();
    file.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    file.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    file.extend_from_slice(&65535u32.to_le_bytes());
    file.extend_from_slice(&101u32.to_le_bytes());
    let mut add = |ts: u32, bytes: &[u8], caplen: usize| {
        file.extend_from_slice(&ts.to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes());
        file.extend_from_slice(&(caplen as u32).to_le_bytes());
        file.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        file.extend_from_slice(&bytes[..caplen]);
    };
    let syn = segment(true, 0x02, 1000, 0, b"");
    let syn_ack = segment(false, 0x12, 5000, 1001, b"");
    let ack = segment(true, 0x10, 1001, 5001, b"");
    let data = segment(true, 0x18, 1001, 5001, b"hello");
    add(1, &syn, syn.len());
    add(1, &syn_ack, syn_ack.len());
    add(1, &ack, ack.len());
    add(1, &data, data.len());
    // The same data again one second later, captured with a 46-byte
    // snaplen: 20 bytes of IP, 20 of TCP, 6 of the 12 option bytes.
    add(2, &data, 46);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("insight");
    // Files of an earlier run must not join this one.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("hidden.pcap");
    std::fs::write(&path, &file).expect("write");
    let all = packets(&path);
    let p = frame(&all, 5);
    assert_eq!(p["len"], 5, "the length still comes from the IP header");
    assert!(
        names(&p["analysis"]).is_empty(),
        "tshark prints no flags here"
    );
    assert_eq!(names(&p["insight"]), ["analysis_hidden_by_snaplen"]);
    assert_eq!(p["options"]["cut_by_snaplen"], true);
}
