//! Writes pcap files of Ethernet/IPv4/TCP frames, for captures made up by
//! tests, benchmarks and fuzz targets (hostile ones above all). Shared by
//! path (`#[path]`) so that there is one writer.

use std::io::{self, Write};

/// An endpoint: IPv4 address and port.
pub type Endpoint = ([u8; 4], u16);

/// TCP flag bits.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// One TCP segment to write.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// Raw sequence number.
    pub seq: u32,
    /// Raw acknowledgement number.
    pub ack: u32,
    /// Flag bits ([`flags`]).
    pub flags: u8,
    /// Receive window.
    pub window: u16,
    /// Payload.
    pub payload: &'a [u8],
}

/// The pcap file header: microsecond times, Ethernet, snaplen 65535.
pub fn pcap_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&65535u32.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h
}

/// Writes one frame carrying `seg`, captured at `micros` microseconds.
pub fn write_segment(out: &mut impl Write, micros: u64, seg: &Segment<'_>) -> io::Result<()> {
    let ip_len = 20 + 20 + seg.payload.len();
    let frame_len = (14 + ip_len) as u32;
    let mut head = [0u8; 16 + 14 + 40];
    head[0..4].copy_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
    head[4..8].copy_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
    head[8..12].copy_from_slice(&frame_len.to_le_bytes());
    head[12..16].copy_from_slice(&frame_len.to_le_bytes());
    head[16..30].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
    let ip = &mut head[30..50];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len.min(65535) as u16).to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&seg.src.0);
    ip[16..20].copy_from_slice(&seg.dst.0);
    let sum = checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let tcp = &mut head[50..70];
    tcp[0..2].copy_from_slice(&seg.src.1.to_be_bytes());
    tcp[2..4].copy_from_slice(&seg.dst.1.to_be_bytes());
    tcp[4..8].copy_from_slice(&seg.seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&seg.ack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = seg.flags;
    tcp[14..16].copy_from_slice(&seg.window.to_be_bytes());
    out.write_all(&head)?;
    out.write_all(seg.payload)
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        sum += u32::from(pair[0]) << 8 | pair.get(1).map_or(0, |b| u32::from(*b));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
