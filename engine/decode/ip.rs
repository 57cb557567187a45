//! IPv4 and IPv6, parsed by etherparse, and fragment reassembly.
//!
//! Lengths follow Wireshark's rules so that a TCP segment's length agrees
//! with tshark's `tcp.len`: the IP header's length field wins over the
//! captured bytes (a snaplen cut marks bytes missing, it does not shorten the
//! segment); a zero IPv4 total length is taken as TCP segmentation offload
//! and replaced by the frame's length; Ethernet padding after the datagram is
//! dropped.

use std::collections::HashMap;
use std::net::IpAddr;

use etherparse::defrag::IpDefragBuf;
use etherparse::{IpFragOffset, IpNumber, LaxIpSlice};

use crate::capture::Timestamp;

/// The part of an IP datagram chattcp needs.
#[derive(Clone, Copy, Debug)]
pub struct IpPacket<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The protocol carried (6 for TCP).
    pub protocol: u8,
    /// Captured payload bytes.
    pub payload: &'a [u8],
    /// Payload length on the wire.
    pub payload_len: usize,
    /// Fragment facts, when this datagram is one fragment of a larger one.
    pub fragment: Option<Fragment>,
    /// IPv4 identification (None for IPv6), to tell a packet captured
    /// twice from a retransmission.
    pub ip_id: Option<u16>,
}

/// Where a fragment belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// IPv4 identification or IPv6 fragment identification.
    pub id: u32,
    /// Offset of this fragment's data in the whole payload, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
}

/// Why an IP packet could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpProblem {
    /// The IP header itself was cut by the snaplen.
    Truncated,
    /// A header field is impossible (version, header length, total length).
    Malformed,
}

/// Parses the IP header at the start of `bytes`; `reported_len` is how long
/// the datagram area was on the wire (from the frame's original length).
pub fn parse(bytes: &[u8], reported_len: usize) -> Result<IpPacket<'_>, IpProblem> {
    let (slice, _ext_err) = LaxIpSlice::from_slice(bytes).map_err(|e| match e {
        etherparse::err::ip::LaxHeaderSliceError::Len(_) => IpProblem::Truncated,
        etherparse::err::ip::LaxHeaderSliceError::Content(_) => IpProblem::Malformed,
    })?;
    match slice {
        LaxIpSlice::Ipv4(v4) => {
            let header = v4.header();
            let header_len = usize::from(header.ihl()) * 4;
            let total = usize::from(header.total_len());
            let datagram_len = if total == 0 {
                // Wireshark presumes TCP segmentation offload.
                reported_len
            } else if total < header_len {
                return Err(IpProblem::Malformed);
            } else {
                total.min(reported_len)
            };
            let captured_end = datagram_len.min(bytes.len());
            let payload = bytes.get(header_len..captured_end).unwrap_or(&[]);
            let fragment = header.is_fragmenting_payload().then(|| Fragment {
                id: u32::from(header.identification()),
                offset: u32::from(header.fragments_offset().value()) * 8,
                more: header.more_fragments(),
            });
            Ok(IpPacket {
                src: IpAddr::V4(header.source_addr()),
                dst: IpAddr::V4(header.destination_addr()),
                protocol: v4.payload().ip_number.0,
                payload,
                payload_len: datagram_len.saturating_sub(header_len),
                fragment,
                ip_id: Some(header.identification()),
            })
        }
        LaxIpSlice::Ipv6(v6) => {
            let header = v6.header();
            let payload_field = usize::from(header.payload_length());
            let datagram_len = if payload_field == 0 {
                // Jumbogram or offloaded segment: the frame says how long.
                reported_len
            } else {
                (40 + payload_field).min(reported_len)
            };
            let inner = v6.payload();
            let start = (inner.payload.as_ptr() as usize).saturating_sub(bytes.as_ptr() as usize);
            let captured_end = datagram_len.min(bytes.len()).max(start);
            let payload = bytes.get(start..captured_end).unwrap_or(&[]);
            let exts = v6.extensions();
            let fragment = exts
                .first_header()
                .and_then(|first| ipv6_fragment(first.0, exts.slice()));
            Ok(IpPacket {
                src: IpAddr::V6(header.source_addr()),
                dst: IpAddr::V6(header.destination_addr()),
                protocol: inner.ip_number.0,
                payload,
                payload_len: datagram_len.saturating_sub(start),
                fragment,
                ip_id: None,
            })
        }
    }
}

/// The Fragment header among IPv6 extension headers, walked with bounds
/// checks. etherparse's own iterator (0.18) trusts the lengths of a slice
/// that its lax parser may have cut short, and reads past it (found by
/// mutating a capture: a second hop-by-hop header crashed a worker thread).
fn ipv6_fragment(first: u8, mut exts: &[u8]) -> Option<Fragment> {
    const HOP_BY_HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const AUTH: u8 = 51;
    const DEST_OPTIONS: u8 = 60;
    let mut next = first;
    // Each header is 8 bytes or more: the loop ends with the bytes.
    while exts.len() >= 8 {
        let len = match next {
            HOP_BY_HOP | ROUTING | DEST_OPTIONS => (usize::from(exts[1]) + 1) * 8,
            AUTH => (usize::from(exts[1]) + 2) * 4,
            FRAGMENT => {
                let field = u16::from_be_bytes([exts[2], exts[3]]);
                let id = u32::from_be_bytes([exts[4], exts[5], exts[6], exts[7]]);
                let more = field & 1 == 1;
                let offset = u32::from(field >> 3) * 8;
                return (offset != 0 || more).then_some(Fragment { id, offset, more });
            }
            _ => return None,
        };
        next = exts[0];
        exts = exts.get(len..)?;
    }
    None
}

/// Limits on fragment reassembly.
#[derive(Clone, Copy, Debug)]
pub struct DefragLimits {
    /// Datagrams being reassembled at once; the oldest is dropped beyond it.
    pub max_pending: usize,
    /// Bytes held across all pending datagrams.
    pub max_bytes: usize,
    /// A datagram not completed within this many seconds of capture time is dropped.
    pub timeout_secs: i64,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_pending: 1024,
            max_bytes: 8 << 20,
            timeout_secs: 60,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragmentKey {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    id: u32,
}

struct Pending {
    buf: IpDefragBuf,
    first_seen: Timestamp,
    bytes: usize,
}

/// Counters of fragment handling, for the run summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefragStats {
    /// Fragments received.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Datagrams dropped by a limit or a timeout.
    pub dropped: u64,
    /// Fragments that could not be added (overlaps, bad lengths, cut data).
    pub rejected: u64,
}

/// Reassembles fragmented IP datagrams in bounded memory.
pub struct Defragmenter {
    limits: DefragLimits,
    pending: HashMap<FragmentKey, Pending>,
    held_bytes: usize,
    /// The last datagram completed, lent out by [`Defragmenter::add`].
    done: Vec<u8>,
    spare: Vec<Vec<u8>>,
    /// What happened so far.
    pub stats: DefragStats,
}

impl Defragmenter {
    /// An empty reassembler.
    pub fn new(limits: DefragLimits) -> Self {
        Defragmenter {
            limits,
            pending: HashMap::new(),
            held_bytes: 0,
            done: Vec::new(),
            spare: Vec::new(),
            stats: DefragStats::default(),
        }
    }

    /// Adds a fragment. Returns the whole payload when this fragment
    /// completes its datagram.
    pub fn add(&mut self, packet: &IpPacket<'_>, now: Timestamp) -> Option<&[u8]> {
        let frag = packet.fragment?;
        self.stats.fragments += 1;
        // Wireshark reassembles only fragments it holds whole.
        if packet.payload.len() < packet.payload_len {
            self.stats.rejected += 1;
            return None;
        }
        self.expire(now);
        let key = FragmentKey {
            src: packet.src,
            dst: packet.dst,
            protocol: packet.protocol,
            id: frag.id,
        };
        if !self.pending.contains_key(&key) {
            if self.pending.len() >= self.limits.max_pending {
                self.drop_oldest();
            }
            let data = self.spare.pop().unwrap_or_default();
            self.pending.insert(
                key,
                Pending {
                    buf: IpDefragBuf::new(IpNumber(packet.protocol), data, Vec::new()),
                    first_seen: now,
                    bytes: 0,
                },
            );
        }
        let offset_units = u16::try_from(frag.offset / 8).ok()?;
        let offset = IpFragOffset::try_new(offset_units).ok()?;
        let entry = self.pending.get_mut(&key)?;
        if entry.buf.add(offset, frag.more, packet.payload).is_err() {
            self.stats.rejected += 1;
            self.remove(&key);
            return None;
        }
        entry.bytes += packet.payload.len();
        self.held_bytes += packet.payload.len();
        if entry.buf.is_complete() {
            let pending = self.remove(&key)?;
            let (data, _) = pending.buf.take_bufs();
            let old = std::mem::replace(&mut self.done, data);
            self.spare.push(old);
            self.stats.reassembled += 1;
            return Some(&self.done);
        }
        while self.held_bytes > self.limits.max_bytes && !self.pending.is_empty() {
            self.drop_oldest();
        }
        None
    }

    fn remove(&mut self, key: &FragmentKey) -> Option<Pending> {
        let p = self.pending.remove(key)?;
        self.held_bytes = self.held_bytes.saturating_sub(p.bytes);
        Some(p)
    }

    fn drop_oldest(&mut self) {
        let oldest = self
            .pending
            .iter()
            .min_by_key(|(_, p)| p.first_seen)
            .map(|(k, _)| *k);
        if let Some(k) = oldest {
            self.remove(&k);
            self.stats.dropped += 1;
        }
    }

    fn expire(&mut self, now: Timestamp) {
        let limit = self.limits.timeout_secs.saturating_mul(1_000_000_000);
        if self.pending.is_empty() {
            return;
        }
        let stale: Vec<FragmentKey> = self
            .pending
            .iter()
            .filter(|(_, p)| now.since(p.first_seen) > limit)
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            self.remove(&k);
            self.stats.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ipv6_fragment_header_is_found_behind_other_extensions() {
        // Destination options (8 bytes, next: fragment), then a fragment at
        // offset 1448 with more to come, id 0x01020304.
        let exts = [44, 0, 1, 4, 0, 0, 0, 0, 6, 0, 0x05, 0xa9, 1, 2, 3, 4];
        let f = ipv6_fragment(60, &exts).expect("fragment");
        assert_eq!((f.id, f.offset, f.more), (0x0102_0304, 1448, true));
        // An atomic fragment (offset 0, no more) fragments nothing.
        let atomic = [6, 0, 0, 0, 1, 2, 3, 4];
        assert!(ipv6_fragment(44, &atomic).is_none());
    }

    #[test]
    fn ipv6_extension_lengths_past_the_bytes_end_the_walk() {
        // A hop-by-hop header claiming 2 KiB, and two hop-by-hop headers in
        // a row cut short: no fragment, no read past the slice.
        assert!(ipv6_fragment(0, &[44, 255, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(ipv6_fragment(0, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(ipv6_fragment(44, &[6, 0, 0]).is_none());
    }

    fn ipv4(total_len: u16, flags_frag: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![
            0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        v[2..4].copy_from_slice(&total_len.to_be_bytes());
        v[6..8].copy_from_slice(&flags_frag.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut d = ipv4(24, 0, &[1, 2, 3, 4]);
        d.extend_from_slice(&[0; 6]);
        let p = parse(&d, d.len()).unwrap();
        assert_eq!(p.payload, &[1, 2, 3, 4]);
        assert_eq!(p.payload_len, 4);
    }

    #[test]
    fn a_snaplen_cut_keeps_the_length_from_the_header() {
        let d = ipv4(1500, 0, &[1, 2, 3, 4]);
        let p = parse(&d, 1500).unwrap();
        assert_eq!(p.payload.len(), 4);
        assert_eq!(p.payload_len, 1480);
    }

    #[test]
    fn zero_total_length_is_offload() {
        let d = ipv4(0, 0, &[9; 100]);
        let p = parse(&d, d.len()).unwrap();
        assert_eq!(p.payload_len, 100);
    }

    #[test]
    fn two_fragments_make_one_datagram() {
        let mut defrag = Defragmenter::new(DefragLimits::default());
        let first = ipv4(28, 0x2000, &[1; 8]);
        let second = ipv4(24, 1, &[2; 4]);
        let p1 = parse(&first, first.len()).unwrap();
        assert!(defrag.add(&p1, Timestamp(0)).is_none());
        let p2 = parse(&second, second.len()).unwrap();
        let whole = defrag.add(&p2, Timestamp(1)).unwrap().to_vec();
        assert_eq!(whole, [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
    }

    #[test]
    fn pending_datagrams_are_bounded() {
        let mut defrag = Defragmenter::new(DefragLimits {
            max_pending: 4,
            ..DefragLimits::default()
        });
        for id in 0..100u16 {
            let mut d = ipv4(28, 0x2000, &[0; 8]);
            d[4..6].copy_from_slice(&id.to_be_bytes());
            let p = parse(&d, d.len()).unwrap();
            defrag.add(&p, Timestamp(i64::from(id)));
        }
        assert_eq!(defrag.pending.len(), 4);
        assert_eq!(defrag.stats.dropped, 96);
    }
}
