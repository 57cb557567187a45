//! A typed, zero-copy view of a TCP header and its options (RFC 9293 §3.1).
//!
//! The view holds only the header bytes that were captured. A header cut by
//! the snaplen still answers for the fields it holds, and says which parts
//! are missing instead of inventing them.

/// TCP flag bits as laid out in bytes 12-13 of the header (the low 9 bits of
/// the 16-bit word; bit 8 is AE, formerly NS).
pub mod flags {
    /// FIN: no more data from the sender.
    pub const FIN: u16 = 0x001;
    /// SYN: synchronise sequence numbers.
    pub const SYN: u16 = 0x002;
    /// RST: reset the connection.
    pub const RST: u16 = 0x004;
    /// PSH: push function.
    pub const PSH: u16 = 0x008;
    /// ACK: the acknowledgment field is significant.
    pub const ACK: u16 = 0x010;
    /// URG: the urgent pointer is significant.
    pub const URG: u16 = 0x020;
    /// ECE: ECN echo.
    pub const ECE: u16 = 0x040;
    /// CWR: congestion window reduced.
    pub const CWR: u16 = 0x080;
    /// AE: accurate ECN (formerly NS).
    pub const AE: u16 = 0x100;
}

/// Length of a TCP header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// Captured bytes of a TCP header; at least the 16 bytes up to the window.
#[derive(Clone, Copy, Debug)]
pub struct TcpHeader<'a> {
    bytes: &'a [u8],
}

impl<'a> TcpHeader<'a> {
    /// Bytes needed before ports, numbers, flags and window can be read.
    pub const MIN_CAPTURED: usize = 16;

    /// Wraps the captured bytes of a TCP segment (header and whatever
    /// follows). Returns `None` when fewer than 16 bytes were captured.
    pub fn new(captured: &'a [u8]) -> Option<Self> {
        if captured.len() < Self::MIN_CAPTURED {
            return None;
        }
        let header_len = usize::from(captured[12] >> 4) * 4;
        let end = header_len.max(MIN_HEADER_LEN).min(captured.len());
        Some(TcpHeader {
            bytes: &captured[..end],
        })
    }

    fn u16_at(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.bytes[at], self.bytes[at + 1]])
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_be_bytes([
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ])
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.u16_at(0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(2)
    }

    /// Raw sequence number.
    pub fn seq(&self) -> u32 {
        self.u32_at(4)
    }

    /// Raw acknowledgment number.
    pub fn ack(&self) -> u32 {
        self.u32_at(8)
    }

    /// Header length in bytes, as the data offset field claims (may lie).
    pub fn header_len(&self) -> usize {
        usize::from(self.bytes[12] >> 4) * 4
    }

    /// Flag bits (see [`flags`]); the three reserved bits above AE are dropped.
    pub fn flags(&self) -> u16 {
        self.u16_at(12) & 0x01FF
    }

    /// The three reserved bits (RFC 9293), non-zero only in odd traffic.
    pub fn reserved_bits(&self) -> u8 {
        (self.bytes[12] >> 1) & 0x07
    }

    /// The window field, unscaled.
    pub fn window(&self) -> u16 {
        self.u16_at(14)
    }

    /// Checksum, when captured.
    pub fn checksum(&self) -> Option<u16> {
        (self.bytes.len() >= 18).then(|| self.u16_at(16))
    }

    /// Urgent pointer, when captured.
    pub fn urgent_pointer(&self) -> Option<u16> {
        (self.bytes.len() >= 20).then(|| self.u16_at(18))
    }

    /// True when the fixed 20-byte header was captured whole.
    pub fn fixed_part_captured(&self) -> bool {
        self.bytes.len() >= MIN_HEADER_LEN
    }

    /// The captured option bytes (may be fewer than the header claims).
    pub fn option_bytes(&self) -> &'a [u8] {
        if self.bytes.len() > MIN_HEADER_LEN {
            &self.bytes[MIN_HEADER_LEN..]
        } else {
            &[]
        }
    }

    /// Parses the options the header claims, over the bytes captured.
    pub fn options(&self) -> TcpOptions {
        let claimed = self.header_len().saturating_sub(MIN_HEADER_LEN);
        TcpOptions::parse(self.option_bytes(), claimed)
    }
}

/// Up to four SACK blocks, as (left edge, right edge) raw sequence numbers.
pub type SackBlocks = ([(u32, u32); 4], u8);

/// The options of one TCP header, parsed without allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2).
    pub mss: Option<u16>,
    /// Window scale shift as sent (kind 3); values above 14 are used as 14.
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4).
    pub sack_permitted: bool,
    /// SACK blocks (kind 5).
    pub sack: [(u32, u32); 4],
    /// How many entries of `sack` are filled.
    pub sack_count: u8,
    /// Timestamps (kind 8): TSval, TSecr.
    pub timestamps: Option<(u32, u32)>,
    /// A TCP Fast Open option (kind 34, or experimental 254 with magic 0xF989).
    pub fast_open: bool,
    /// An MPTCP option (kind 30) is present.
    pub mptcp: bool,
    /// An option claims a length that does not fit.
    pub malformed: bool,
    /// Parsing ran past the captured bytes: the snaplen cut the options.
    pub cut_by_snaplen: bool,
}

impl TcpOptions {
    /// Walks the options as Wireshark does: EOL and NOP are one byte, every
    /// other option carries a length byte; a bad length ends the walk.
    /// `claimed` is the option length the data offset field gives.
    pub fn parse(captured: &[u8], claimed: usize) -> TcpOptions {
        // Nearly every segment of a connection that negotiated timestamps
        // carries exactly NOP, NOP, timestamps: read those directly.
        if claimed == 12 {
            if let Some(&[1, 1, 8, 10, v0, v1, v2, v3, e0, e1, e2, e3]) = captured.get(..12) {
                return TcpOptions {
                    timestamps: Some((
                        u32::from_be_bytes([v0, v1, v2, v3]),
                        u32::from_be_bytes([e0, e1, e2, e3]),
                    )),
                    ..TcpOptions::default()
                };
            }
        }
        Self::walk(captured, claimed)
    }

    /// The general walk over any options, [`TcpOptions::parse`]'s answer.
    fn walk(captured: &[u8], claimed: usize) -> TcpOptions {
        let mut out = TcpOptions::default();
        let mut at = 0usize;
        let mut eol_seen = false;
        while at < claimed {
            let Some(&kind) = captured.get(at) else {
                out.cut_by_snaplen = true;
                break;
            };
            if eol_seen && kind != 0 {
                break;
            }
            if kind == 0 || kind == 1 {
                eol_seen |= kind == 0;
                at += 1;
                continue;
            }
            if at + 1 >= claimed {
                out.malformed = true;
                break;
            }
            let Some(&len) = captured.get(at + 1) else {
                out.cut_by_snaplen = true;
                break;
            };
            let len = usize::from(len);
            if len < 2 || at + len > claimed {
                out.malformed = true;
                break;
            }
            let Some(body) = captured.get(at + 2..at + len) else {
                out.cut_by_snaplen = true;
                break;
            };
            match (kind, body.len()) {
                (2, 2) => out.mss = Some(u16::from_be_bytes([body[0], body[1]])),
                (3, 1) => out.window_scale = Some(body[0]),
                (4, 0) => out.sack_permitted = true,
                (5, n) if n % 8 == 0 => {
                    for block in body.chunks_exact(8).take(4) {
                        let left = u32::from_be_bytes([block[0], block[1], block[2], block[3]]);
                        let right = u32::from_be_bytes([block[4], block[5], block[6], block[7]]);
                        out.sack[usize::from(out.sack_count)] = (left, right);
                        out.sack_count += 1;
                    }
                }
                (8, 8) => {
                    let val = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                    let ecr = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                    out.timestamps = Some((val, ecr));
                }
                (30, _) => out.mptcp = true,
                (34, _) => out.fast_open = true,
                (254, n) if n >= 2 && body[0] == 0xF9 && body[1] == 0x89 => out.fast_open = true,
                (2..=8, _) => out.malformed = true,
                _ => {}
            }
            at += len;
        }
        out
    }

    /// The SACK blocks that were present.
    pub fn sack_blocks(&self) -> &[(u32, u32)] {
        &self.sack[..usize::from(self.sack_count)]
    }

    /// The window scale shift that takes effect (RFC 7323 caps it at 14).
    pub fn effective_window_scale(&self) -> Option<u8> {
        self.window_scale.map(|s| s.min(14))
    }
}

/// Flag names in the order tcpdump and Wireshark print them.
const FLAG_NAMES: [(u16, &str); 9] = [
    (flags::SYN, "SYN"),
    (flags::FIN, "FIN"),
    (flags::RST, "RST"),
    (flags::PSH, "PSH"),
    (flags::ACK, "ACK"),
    (flags::URG, "URG"),
    (flags::ECE, "ECE"),
    (flags::CWR, "CWR"),
    (flags::AE, "AE"),
];

/// Writes flags as comma-separated names, e.g. `SYN,ACK`; nothing for none.
pub fn write_flag_names(bits: u16, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    let mut first = true;
    for (bit, name) in FLAG_NAMES {
        if bits & bit != 0 {
            if !first {
                out.write_char(',')?;
            }
            out.write_str(name)?;
            first = false;
        }
    }
    Ok(())
}

/// The flag names of `bits`, e.g. `SYN,ACK`.
pub fn flag_names(bits: u16) -> String {
    let mut s = String::with_capacity(16);
    let _ = write_flag_names(bits, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn_with_options() -> Vec<u8> {
        let mut h = vec![
            0x04, 0xd2, 0x00, 0x50, // ports 1234 -> 80
            0x00, 0x00, 0x00, 0x64, // seq 100
            0x00, 0x00, 0x00, 0x00, // ack 0
            0xa0, 0x02, // data offset 10 words, SYN
            0xfa, 0xf0, // window 64240
            0x00, 0x00, 0x00, 0x00,
        ];
        h.extend_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
        h.extend_from_slice(&[4, 2]); // SACK permitted
        h.extend_from_slice(&[8, 10, 0, 0, 0, 1, 0, 0, 0, 0]); // timestamps
        h.extend_from_slice(&[1, 3, 3, 7]); // NOP, window scale 7
        h
    }

    #[test]
    fn the_timestamps_shortcut_answers_as_the_walk() {
        let ts = [1, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
        let cases: [(&[u8], usize); 7] = [
            (&ts, 12),
            (&ts[..11], 12),                              // cut by the snaplen
            (&ts, 16),                                    // the header claims more
            (&ts, 8),                                     // and less
            (&[1, 1, 8, 9, 0, 0, 0, 0, 0, 0, 0, 0], 12),  // a wrong length
            (&[1, 0, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0], 12), // after EOL
            (&[1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2], 12), // SACK, not timestamps
        ];
        for (bytes, claimed) in cases {
            assert_eq!(
                TcpOptions::parse(bytes, claimed),
                TcpOptions::walk(bytes, claimed),
                "{bytes:?} claimed {claimed}"
            );
        }
        assert_eq!(
            TcpOptions::parse(&ts, 12).timestamps,
            Some((0x1122_3344, 0x5566_7788))
        );
    }

    #[test]
    fn reads_fixed_fields() {
        let bytes = syn_with_options();
        let h = TcpHeader::new(&bytes).unwrap();
        assert_eq!(
            (h.src_port(), h.dst_port(), h.seq(), h.ack()),
            (1234, 80, 100, 0)
        );
        assert_eq!(h.header_len(), 40);
        assert_eq!(h.flags(), flags::SYN);
        assert_eq!(h.window(), 64240);
        assert_eq!(flag_names(h.flags() | flags::ACK), "SYN,ACK");
    }

    #[test]
    fn parses_common_syn_options() {
        let bytes = syn_with_options();
        let o = TcpHeader::new(&bytes).unwrap().options();
        assert_eq!(o.mss, Some(1460));
        assert!(o.sack_permitted);
        assert_eq!(o.timestamps, Some((1, 0)));
        assert_eq!(o.window_scale, Some(7));
        assert!(!o.malformed && !o.cut_by_snaplen);
    }

    #[test]
    fn options_cut_by_the_snaplen_are_reported_not_invented() {
        let bytes = syn_with_options();
        let o = TcpHeader::new(&bytes[..30]).unwrap().options();
        assert_eq!(o.mss, Some(1460));
        assert!(o.cut_by_snaplen);
        assert_eq!(o.timestamps, None);
        assert_eq!(o.window_scale, None);
    }

    #[test]
    fn a_lying_option_length_stops_the_walk() {
        let mut bytes = syn_with_options();
        bytes[21] = 40; // MSS claims 40 bytes
        let o = TcpHeader::new(&bytes).unwrap().options();
        assert!(o.malformed);
        assert_eq!(o.mss, None);
    }

    #[test]
    fn window_scale_above_14_is_used_as_14() {
        let o = TcpOptions::parse(&[3, 3, 20, 0], 4);
        assert_eq!(o.window_scale, Some(20));
        assert_eq!(o.effective_window_scale(), Some(14));
    }

    #[test]
    fn too_few_bytes_for_the_window_field_is_no_header() {
        assert!(TcpHeader::new(&[0u8; 15]).is_none());
    }
}
