//! Link layers: from a frame's first byte to the start of its IP header.
//!
//! Ethernet and VLAN tags go through etherparse; the small fixed headers it
//! does not know, or knows too strictly (Linux cooked v1 and v2, BSD/OpenBSD
//! loopback, PPPoE sessions, NFLOG), are read here.

use etherparse::{Ethernet2Slice, SingleVlanSlice};

use crate::capture::LinkType;

/// Where the network layer of a frame starts.
#[derive(Clone, Copy, Debug)]
pub struct NetworkLayer<'a> {
    /// The captured bytes from the IP header on.
    pub bytes: &'a [u8],
    /// How many bytes the packet had on the wire from the IP header on.
    pub reported_len: usize,
    /// Outermost VLAN id, if tagged.
    pub vlan: Option<u16>,
}

/// Why a frame carries no IP packet we can follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkSkip {
    /// A link type chattcp does not decode.
    UnsupportedLinkType,
    /// A link-layer payload that is not IPv4 or IPv6 (ARP, LLDP, ...).
    NotIp,
    /// The link-layer header was cut short.
    Truncated,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const NFULA_PAYLOAD: u16 = 9;
const ARPHRD_NETLINK: u16 = 824;
const ARPHRD_IPGRE: u16 = 778;

/// Strips the link layer of `data` (captured bytes of a frame whose wire
/// length is `wire_len`).
pub fn network_layer(
    link: LinkType,
    data: &[u8],
    wire_len: usize,
) -> Result<NetworkLayer<'_>, LinkSkip> {
    let wire_len = wire_len.max(data.len());
    fn ip(bytes: &[u8], reported_len: usize) -> NetworkLayer<'_> {
        NetworkLayer {
            bytes,
            reported_len,
            vlan: None,
        }
    }
    match link {
        LinkType::ETHERNET => {
            let eth =
                Ethernet2Slice::from_slice_without_fcs(data).map_err(|_| LinkSkip::Truncated)?;
            ether_payload(
                eth.ether_type().0,
                eth.payload_slice(),
                wire_len.saturating_sub(14),
                None,
            )
        }
        LinkType::LINUX_SLL => {
            // packet type (2), ARPHRD type (2), address length (2), address
            // (8), protocol (2). etherparse rejects the ARPHRD types it does
            // not list (PPP, say), so the fixed header is read here.
            if data.len() < 16 {
                return Err(LinkSkip::Truncated);
            }
            let hatype = u16::from_be_bytes([data[2], data[3]]);
            if hatype == ARPHRD_NETLINK || hatype == ARPHRD_IPGRE {
                return Err(LinkSkip::NotIp);
            }
            let proto = u16::from_be_bytes([data[14], data[15]]);
            ether_payload(proto, &data[16..], wire_len.saturating_sub(16), None)
        }
        LinkType::LINUX_SLL2 => {
            // protocol (2), reserved (2), ifindex (4), hatype (2), pkttype (1),
            // addr len (1), address (8).
            if data.len() < 20 {
                return Err(LinkSkip::Truncated);
            }
            let proto = u16::from_be_bytes([data[0], data[1]]);
            ether_payload(proto, &data[20..], wire_len.saturating_sub(20), None)
        }
        LinkType::RAW | LinkType::RAW_ALT => match data.first().map(|b| b >> 4) {
            Some(4) | Some(6) => Ok(ip(data, wire_len)),
            Some(_) => Err(LinkSkip::NotIp),
            None => Err(LinkSkip::Truncated),
        },
        LinkType::IPV4 | LinkType::IPV6 => Ok(ip(data, wire_len)),
        LinkType::NULL | LinkType::LOOP => {
            if data.len() < 4 {
                return Err(LinkSkip::Truncated);
            }
            let raw = [data[0], data[1], data[2], data[3]];
            // NULL is in the capturing host's byte order; LOOP is big endian.
            // A family fits in 16 bits, so the order that gives a small
            // number is the right one.
            let family = if link == LinkType::LOOP {
                u32::from_be_bytes(raw)
            } else {
                let le = u32::from_le_bytes(raw);
                if le <= 0xFFFF {
                    le
                } else {
                    u32::from_be_bytes(raw)
                }
            };
            match family {
                // AF_INET everywhere; AF_INET6 on NetBSD/OpenBSD, FreeBSD,
                // macOS, Linux and Windows.
                2 | 24 | 28 | 30 | 10 | 23 => Ok(ip(&data[4..], wire_len.saturating_sub(4))),
                _ => Err(LinkSkip::NotIp),
            }
        }
        LinkType::NFLOG => nflog_payload(data),
        _ => Err(LinkSkip::UnsupportedLinkType),
    }
}

/// Follows VLAN tags and PPPoE sessions down to an IP header.
fn ether_payload(
    mut ether_type: u16,
    mut data: &[u8],
    mut reported: usize,
    mut vlan: Option<u16>,
) -> Result<NetworkLayer<'_>, LinkSkip> {
    // Bounded: each round consumes a header; a frame cannot nest forever.
    for _ in 0..8 {
        match ether_type {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {
                return Ok(NetworkLayer {
                    bytes: data,
                    reported_len: reported,
                    vlan,
                })
            }
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                let tag = SingleVlanSlice::from_slice(data).map_err(|_| LinkSkip::Truncated)?;
                vlan.get_or_insert(tag.vlan_identifier().value());
                ether_type = tag.ether_type().0;
                data = tag.payload_slice();
                reported = reported.saturating_sub(4);
            }
            ETHERTYPE_PPPOE_SESSION => {
                // version/type, code, session id (2), length (2), PPP protocol (2).
                if data.len() < 8 {
                    return Err(LinkSkip::Truncated);
                }
                let ppp = u16::from_be_bytes([data[6], data[7]]);
                ether_type = match ppp {
                    PPP_IPV4 => ETHERTYPE_IPV4,
                    PPP_IPV6 => ETHERTYPE_IPV6,
                    _ => return Err(LinkSkip::NotIp),
                };
                // The PPPoE length (which counts the PPP protocol field)
                // bounds the payload, as Wireshark reads it.
                let pppoe_len = usize::from(u16::from_be_bytes([data[4], data[5]]));
                data = &data[8..];
                reported = reported.saturating_sub(8).min(pppoe_len.saturating_sub(2));
            }
            _ => return Err(LinkSkip::NotIp),
        }
    }
    Err(LinkSkip::NotIp)
}

/// An NFLOG message: a 4-byte header, then TLVs (length and type in host byte
/// order, padded to 4 bytes); the packet is the NFULA_PAYLOAD TLV.
fn nflog_payload(data: &[u8]) -> Result<NetworkLayer<'_>, LinkSkip> {
    if data.len() < 4 {
        return Err(LinkSkip::Truncated);
    }
    let family = data[0];
    let mut at = 4usize;
    while at + 4 <= data.len() {
        let len = usize::from(u16::from_le_bytes([data[at], data[at + 1]]));
        let kind = u16::from_le_bytes([data[at + 2], data[at + 3]]) & 0x7FFF;
        if len < 4 {
            return Err(LinkSkip::Truncated);
        }
        if kind == NFULA_PAYLOAD {
            let end = (at + len).min(data.len());
            return match family {
                2 | 10 => Ok(NetworkLayer {
                    bytes: &data[at + 4..end],
                    reported_len: len - 4,
                    vlan: None,
                }),
                _ => Err(LinkSkip::NotIp),
            };
        }
        at += (len + 3) & !3;
    }
    Err(LinkSkip::NotIp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_with_two_vlan_tags_reaches_ip() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 20]);
        let n = network_layer(LinkType::ETHERNET, &f, f.len()).unwrap();
        assert_eq!(n.bytes, &[0x45, 0, 0, 20]);
        assert_eq!(n.vlan, Some(100));
        assert_eq!(n.reported_len, 4);
    }

    #[test]
    fn pppoe_session_reaches_ip() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x00, 0x01, 0x00, 0x06, 0x00, 0x21]);
        f.extend_from_slice(&[0x45, 1, 2, 3]);
        let n = network_layer(LinkType::ETHERNET, &f, f.len()).unwrap();
        assert_eq!(n.bytes, &[0x45, 1, 2, 3]);
    }

    #[test]
    fn bsd_loopback_in_either_byte_order() {
        let le = [2u8, 0, 0, 0, 0x45];
        let be = [0u8, 0, 0, 30, 0x60];
        assert_eq!(
            network_layer(LinkType::NULL, &le, 5).unwrap().bytes,
            &[0x45]
        );
        assert_eq!(
            network_layer(LinkType::NULL, &be, 5).unwrap().bytes,
            &[0x60]
        );
        assert_eq!(
            network_layer(LinkType::LOOP, &be, 5).unwrap().bytes,
            &[0x60]
        );
    }

    #[test]
    fn arp_is_not_ip_and_unknown_links_are_named() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x06, 0, 0]);
        assert_eq!(
            network_layer(LinkType::ETHERNET, &f, 16).unwrap_err(),
            LinkSkip::NotIp
        );
        assert_eq!(
            network_layer(LinkType(147), &f, 16).unwrap_err(),
            LinkSkip::UnsupportedLinkType
        );
    }

    #[test]
    fn nflog_payload_tlv_is_found() {
        let mut f = vec![2u8, 0, 0, 0];
        f.extend_from_slice(&[8, 0, 1, 0, 0, 0, 0, 0]); // some TLV, 8 bytes
        f.extend_from_slice(&[8, 0, 9, 0, 0x45, 0, 0, 4]); // payload TLV
        let n = network_layer(LinkType::NFLOG, &f, f.len()).unwrap();
        assert_eq!(n.bytes, &[0x45, 0, 0, 4]);
        assert_eq!(n.reported_len, 4);
    }
}
