//! A TCP header quoted in an ICMP error is filed under a connection as tshark
//! files it (it can even open one, and so shift every later `tcp.stream`
//! number), without being taken for a packet of that connection.

use std::process::Command;

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum >> 16) + (sum & 0xffff);
    }
    !(sum as u16)
}

fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 1, 0x40, 0, 64, protocol, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let sum = checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t
}

#[test]
fn a_quoted_header_opens_a_conversation_as_in_tshark() {
    let (a, b, c, router) = ([10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3], [10, 0, 0, 254]);
    let mut icmp = vec![3, 1, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&ipv4(a, c, 6, &tcp(2000, 443, 500, 0, 0x02)));
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let packets = [
        ipv4(a, b, 6, &tcp(1000, 80, 100, 0, 0x02)),
        ipv4(router, a, 1, &icmp),
        ipv4(b, a, 6, &tcp(80, 1000, 900, 101, 0x12)),
        ipv4(a, c, 6, &tcp(3000, 443, 700, 0, 0x02)),
    ];
    let mut file = Vec::new();
    file.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    file.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    file.extend_from_slice(&65535u32.to_le_bytes());
    file.extend_from_slice(&101u32.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        file.extend_from_slice(&1u32.to_le_bytes());
        file.extend_from_slice(&(i as u32).to_le_bytes());
        file.extend_from_slice(&(p.len() as u32).to_le_bytes());
        file.extend_from_slice(&(p.len() as u32).to_le_bytes());
        file.extend_from_slice(p);
    }
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("icmp");
    // Files of an earlier run must not join this one.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("icmp.pcap");
    std::fs::write(&path, &file).expect("write");

    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .args(["packets", "--json"])
        .arg(&path)
        .output()
        .expect("run chattcp");
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    // tshark 4.0.17 on the same bytes: frame/tcp.stream 1/0, 2/1, 3/0, 4/2;
    // frame 2's seq is the raw 500 and it has no tcp.len.
    let conns: Vec<u64> = rows
        .iter()
        .map(|r| r["conn"].as_u64().expect("conn"))
        .collect();
    assert_eq!(conns, [0, 1, 0, 2]);
    assert_eq!(rows[1]["in_icmp_error"], true);
    assert_eq!(
        (rows[1]["seq"].as_u64(), rows[1]["len"].is_null()),
        (Some(500), true)
    );
    assert!(rows[0].get("in_icmp_error").is_none());

    let out = Command::new(env!("CARGO_BIN_EXE_chattcp"))
        .args(["conns", "--json"])
        .arg(&path)
        .output()
        .expect("run chattcp");
    let summaries: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(summaries.len(), 3);
    assert_eq!(
        summaries[1]["packets"], 0,
        "a quoted header is not a packet of its connection"
    );
}
