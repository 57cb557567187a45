//! Packet decoding: from a captured frame to a TCP segment.
//!
//! [`Decoder::decode`] strips the link layer ([`link`]), reads IPv4 or IPv6
//! and reassembles fragments ([`ip`]), and returns a [`TcpSegment`] that
//! borrows its header and payload from the frame (or, for a reassembled
//! datagram, from the decoder). Nothing is copied per packet.

pub mod ip;
pub mod link;
pub mod tcp;

use std::net::IpAddr;

use crate::capture::Frame;
pub use tcp::{flags, TcpHeader, TcpOptions};

/// A TCP segment as captured.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The header view (at least 16 bytes captured).
    pub header: TcpHeader<'a>,
    /// Captured payload bytes (fewer than `payload_len` when the snaplen cut them).
    pub payload: &'a [u8],
    /// Payload length on the wire, from the IP header; `None` when it cannot
    /// be known: the header claims more bytes than the datagram holds, or the
    /// segment is the first piece of a fragmented datagram.
    pub payload_len: Option<u32>,
    /// Outermost VLAN id.
    pub vlan: Option<u16>,
    /// IPv4 identification of the datagram.
    pub ip_id: Option<u16>,
    /// The header is quoted inside an ICMP error (destination unreachable,
    /// time exceeded, ...): not a packet of the connection, but Wireshark
    /// still files it under one, so chattcp does too.
    pub in_icmp_error: bool,
}

impl TcpSegment<'_> {
    /// Payload bytes on the wire that the capture does not hold.
    pub fn missing_bytes(&self) -> u32 {
        self.payload_len
            .unwrap_or(0)
            .saturating_sub(self.payload.len() as u32)
    }
}

/// Why a frame yields no TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// The link type is not one chattcp decodes.
    UnsupportedLinkType,
    /// Not an IP packet (ARP, LLDP, ...).
    NotIp,
    /// IP, but not TCP (UDP, ICMP, ...).
    NotTcp,
    /// A fragment held until its datagram is complete.
    FragmentHeld,
    /// A later fragment of a datagram that could not be reassembled.
    FragmentUnusable,
    /// The headers were cut by the snaplen before the TCP window field.
    HeadersCut,
    /// An impossible IP header.
    MalformedIp,
}

impl Skip {
    /// A stable name, for counters in reports.
    pub fn name(self) -> &'static str {
        match self {
            Skip::UnsupportedLinkType => "unsupported_link_type",
            Skip::NotIp => "not_ip",
            Skip::NotTcp => "not_tcp",
            Skip::FragmentHeld => "fragment_held",
            Skip::FragmentUnusable => "fragment_unusable",
            Skip::HeadersCut => "headers_cut",
            Skip::MalformedIp => "malformed_ip",
        }
    }
}

/// Turns frames into TCP segments.
pub struct Decoder {
    defrag: ip::Defragmenter,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(ip::DefragLimits::default())
    }
}

impl Decoder {
    /// A decoder with the given fragment reassembly limits.
    pub fn new(limits: ip::DefragLimits) -> Self {
        Decoder {
            defrag: ip::Defragmenter::new(limits),
        }
    }

    /// Fragment reassembly counters.
    pub fn defrag_stats(&self) -> ip::DefragStats {
        self.defrag.stats
    }

    /// Decodes one frame.
    pub fn decode<'a>(&'a mut self, frame: &Frame<'a>) -> Result<TcpSegment<'a>, Skip> {
        self.decode_link(
            frame.link_type,
            frame.data,
            frame.original_len as usize,
            frame.timestamp,
            0,
        )
    }

    /// Decodes a link-layer frame; `depth` counts the tunnels around it.
    fn decode_link<'a>(
        &'a mut self,
        link_type: crate::capture::LinkType,
        data: &'a [u8],
        reported_len: usize,
        timestamp: crate::capture::Timestamp,
        depth: u8,
    ) -> Result<TcpSegment<'a>, Skip> {
        if link_type == crate::capture::LinkType::ETHERNET {
            if let Some(done) = plain_ethernet_ipv4_tcp(data, reported_len) {
                return done;
            }
        }
        let net = link::network_layer(link_type, data, reported_len).map_err(|e| match e {
            link::LinkSkip::UnsupportedLinkType => Skip::UnsupportedLinkType,
            link::LinkSkip::NotIp => Skip::NotIp,
            link::LinkSkip::Truncated => Skip::HeadersCut,
        })?;
        let packet = ip::parse(net.bytes, net.reported_len).map_err(|e| match e {
            ip::IpProblem::Truncated => Skip::HeadersCut,
            ip::IpProblem::Malformed => Skip::MalformedIp,
        })?;
        if packet.protocol != 6 {
            if packet.fragment.is_none() && depth < MAX_TUNNELS {
                if let Some(inner) = vxlan_payload(&packet) {
                    // Like Wireshark, a tunnelled frame's TCP is analysed
                    // as if it were on the wire (the VNI is not part of
                    // the connection's key).
                    let len = inner.len();
                    return self.decode_link(
                        crate::capture::LinkType::ETHERNET,
                        inner,
                        len,
                        timestamp,
                        depth + 1,
                    );
                }
            }
            if packet.fragment.is_none() {
                if let Some(quoted) = quoted_tcp(&packet) {
                    return Ok(TcpSegment {
                        vlan: net.vlan,
                        ..quoted
                    });
                }
            }
            if packet.fragment.is_some_and(|f| f.offset > 0) {
                // Later fragments do not say what they carry; count them as
                // held so that a UDP fragment is not mistaken for TCP.
                self.defrag.add(&packet, timestamp);
            }
            return Err(Skip::NotTcp);
        }
        let (bytes, wire_len) = match packet.fragment {
            None => (packet.payload, Some(packet.payload_len)),
            Some(frag) => {
                let src = packet.src;
                let dst = packet.dst;
                let first_piece = (packet.payload, frag.offset == 0);
                match self.defrag.add(&packet, timestamp) {
                    Some(whole) => {
                        let len = whole.len();
                        return segment(src, dst, whole, Some(len), net.vlan, packet.ip_id);
                    }
                    None if first_piece.1 && first_piece.0.len() < packet.payload_len => {
                        // A cut first fragment cannot be reassembled; like
                        // Wireshark, read its TCP header with no known length.
                        (first_piece.0, None)
                    }
                    None => {
                        return Err(if frag.offset == 0 || frag.more {
                            Skip::FragmentHeld
                        } else {
                            Skip::FragmentUnusable
                        })
                    }
                }
            }
        };
        segment(
            packet.src,
            packet.dst,
            bytes,
            wire_len,
            net.vlan,
            packet.ip_id,
        )
    }
}

/// The common case decoded directly: Ethernet II without tags, IPv4 with a
/// sane header, not a fragment, carrying TCP. `None` for anything else (and
/// for a header the general path would reject), which the general path
/// decodes: the result is the same as its, at a fraction of the cost, for
/// the frames that are nearly all of a capture.
fn plain_ethernet_ipv4_tcp(data: &[u8], wire_len: usize) -> Option<Result<TcpSegment<'_>, Skip>> {
    const ETHERTYPE_IPV4: u16 = 0x0800;
    let ether_type = u16::from_be_bytes([*data.get(12)?, *data.get(13)?]);
    if ether_type != ETHERTYPE_IPV4 {
        return None;
    }
    let bytes = &data[14..];
    let reported_len = wire_len.max(data.len()).saturating_sub(14);
    let header = bytes.get(..20)?;
    let (version, ihl) = (header[0] >> 4, header[0] & 0x0F);
    let header_len = usize::from(ihl) * 4;
    let flags_offset = u16::from_be_bytes([header[6], header[7]]);
    // More fragments, or a fragment offset: the general path's reassembly.
    let fragment = flags_offset & 0x3FFF != 0;
    if version != 4 || ihl < 5 || header_len > bytes.len() || fragment || header[9] != 6 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let datagram_len = if total == 0 {
        // Wireshark presumes TCP segmentation offload.
        reported_len
    } else if total < header_len {
        return None;
    } else {
        total.min(reported_len)
    };
    let captured_end = datagram_len.min(bytes.len());
    let payload = bytes.get(header_len..captured_end).unwrap_or(&[]);
    let addr = |at: usize| {
        IpAddr::V4(std::net::Ipv4Addr::new(
            header[at],
            header[at + 1],
            header[at + 2],
            header[at + 3],
        ))
    };
    Some(segment(
        addr(12),
        addr(16),
        payload,
        Some(datagram_len.saturating_sub(header_len)),
        None,
        Some(u16::from_be_bytes([header[4], header[5]])),
    ))
}

/// Tunnels opened around one frame at most (VXLAN in VXLAN...).
const MAX_TUNNELS: u8 = 4;

/// UDP port of VXLAN (RFC 7348), which Wireshark decodes by default.
const VXLAN_PORT: u16 = 4789;

/// The Ethernet frame inside a VXLAN datagram, if `packet` is one (UDP to
/// port 4789, the I flag set).
fn vxlan_payload<'a>(packet: &ip::IpPacket<'a>) -> Option<&'a [u8]> {
    if packet.protocol != 17 {
        return None;
    }
    let udp = packet.payload;
    let dst_port = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let vxlan = udp.get(8..16)?;
    if dst_port != VXLAN_PORT || vxlan[0] & 0x08 == 0 {
        return None;
    }
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    let end = udp_len.clamp(16, udp.len());
    udp.get(16..end)
}

fn segment(
    src: IpAddr,
    dst: IpAddr,
    bytes: &[u8],
    wire_len: Option<usize>,
    vlan: Option<u16>,
    ip_id: Option<u16>,
) -> Result<TcpSegment<'_>, Skip> {
    let header = TcpHeader::new(bytes).ok_or(Skip::HeadersCut)?;
    let header_len = header.header_len();
    let payload_len = wire_len.and_then(|len| {
        // Wireshark computes no length when the header claims more than the
        // segment holds; with a header length below 20 it still does.
        len.checked_sub(header_len).map(|l| l as u32)
    });
    let start = header_len.max(tcp::MIN_HEADER_LEN);
    let payload_end = match payload_len {
        Some(l) => (header_len + l as usize).min(bytes.len()),
        None => bytes.len(),
    };
    let payload = bytes.get(start..payload_end).unwrap_or(&[]);
    Ok(TcpSegment {
        src,
        dst,
        header,
        payload,
        payload_len,
        vlan,
        ip_id,
        in_icmp_error: false,
    })
}

/// ICMP types whose body quotes the datagram that caused the error.
fn quotes_a_datagram(protocol: u8, icmp_type: u8) -> bool {
    match protocol {
        // Destination unreachable, source quench, redirect, time exceeded,
        // parameter problem.
        1 => matches!(icmp_type, 3 | 4 | 5 | 11 | 12),
        // Destination unreachable, packet too big, time exceeded, parameter problem.
        58 => matches!(icmp_type, 1..=4),
        _ => false,
    }
}

/// The TCP header quoted in an ICMP error, if there is one with at least
/// the 16 bytes Wireshark needs to file it under a conversation.
fn quoted_tcp<'a>(packet: &ip::IpPacket<'a>) -> Option<TcpSegment<'a>> {
    let icmp = packet.payload;
    if !quotes_a_datagram(packet.protocol, *icmp.first()?) {
        return None;
    }
    let inner_bytes = icmp.get(8..)?;
    let inner = ip::parse(inner_bytes, inner_bytes.len()).ok()?;
    if inner.protocol != 6 || inner.fragment.is_some_and(|f| f.offset > 0) {
        return None;
    }
    // The quoted datagram is usually cut short: read its TCP header from
    // whatever bytes follow the IP header.
    let header_start =
        (inner.payload.as_ptr() as usize).saturating_sub(inner_bytes.as_ptr() as usize);
    let header = TcpHeader::new(inner_bytes.get(header_start..)?)?;
    Some(TcpSegment {
        src: inner.src,
        dst: inner.dst,
        header,
        payload: &[],
        payload_len: None,
        vlan: None,
        ip_id: inner.ip_id,
        in_icmp_error: true,
    })
}
