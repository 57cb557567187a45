//! The RFC 9293 state of each endpoint, inferred from what the capture shows.
//!
//! A capture shows packets, not states; each packet says something about its
//! sender (what it just did) and about its receiver (what it will do on
//! arrival). The chat view shows the sender's state after sending, as
//! ChatTCP's bubbles do. Arrival is presumed: a packet seen on the wire is
//! taken to reach its receiver, until the receiver's own packets say
//! otherwise (a server that retransmits its SYN-ACK is still in
//! SYN_RECEIVED, whatever the capture point saw of the client's ACK).

use std::fmt;

use crate::decode::flags::{ACK, FIN, RST, SYN};

/// An endpoint's connection state (RFC 9293 §3.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// No connection.
    Closed,
    /// Waiting for a connection request.
    Listen,
    /// SYN sent, waiting for the SYN-ACK.
    SynSent,
    /// SYN received and SYN-ACK sent, waiting for the ACK.
    SynReceived,
    /// Open; data flows both ways.
    Established,
    /// Sent FIN, waiting for its ACK or the peer's FIN.
    FinWait1,
    /// Own FIN acknowledged, waiting for the peer's FIN.
    FinWait2,
    /// Both sides sent FIN before either was acknowledged.
    Closing,
    /// Both FINs acknowledged; waiting out stray segments.
    TimeWait,
    /// The peer closed; this side may still send.
    CloseWait,
    /// Closed after the peer; waiting for the ACK of its own FIN.
    LastAck,
}

impl TcpState {
    /// The conventional upper-case name, e.g. `FIN_WAIT_1`.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynReceived => "SYN_RECEIVED",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::Closing => "CLOSING",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one endpoint is known to have done; its state follows from these facts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Endpoint {
    /// Its initial sequence number, once a SYN from it was seen.
    isn: Option<u32>,
    /// Its SYN has been acknowledged by the peer (reset when it resends a SYN:
    /// an endpoint only repeats its SYN while it waits for that ACK).
    syn_acked_by_peer: bool,
    /// It acknowledged the peer's SYN.
    acked_peer_syn: bool,
    /// Sequence number just past its FIN, once it sent one.
    fin_end: Option<u32>,
    /// Its FIN has been acknowledged.
    fin_acked_by_peer: bool,
    /// It acknowledged the peer's FIN.
    acked_peer_fin: bool,
    /// When it sent its FIN it had already acknowledged the peer's.
    passive_close: bool,
    /// It sent or received a RST.
    reset: bool,
}

fn acks(ack: u32, upto: u32) -> bool {
    (ack.wrapping_sub(upto) as i32) >= 0
}

impl Endpoint {
    /// The state these facts amount to; `peer` is the other endpoint.
    pub fn state(&self, peer: &Endpoint) -> TcpState {
        if self.reset {
            return TcpState::Closed;
        }
        if self.fin_end.is_some() {
            return if self.passive_close {
                if self.fin_acked_by_peer {
                    TcpState::Closed
                } else {
                    TcpState::LastAck
                }
            } else {
                match (self.fin_acked_by_peer, self.acked_peer_fin) {
                    (false, false) => TcpState::FinWait1,
                    (true, false) => TcpState::FinWait2,
                    (false, true) => TcpState::Closing,
                    (true, true) => TcpState::TimeWait,
                }
            };
        }
        if self.acked_peer_fin {
            return TcpState::CloseWait;
        }
        match (self.isn.is_some(), self.acked_peer_syn) {
            (true, true) if self.syn_acked_by_peer => TcpState::Established,
            (true, true) => TcpState::SynReceived,
            (true, false) => TcpState::SynSent,
            (false, true) => TcpState::Established,
            (false, false) if peer.isn.is_some() => TcpState::Listen,
            // Neither SYN was seen: the connection was open before the capture.
            (false, false) => TcpState::Established,
        }
    }
}

/// Applies one segment from `sender` to `receiver` and returns the sender's
/// state after sending it.
pub fn on_segment(
    sender: &mut Endpoint,
    receiver: &mut Endpoint,
    flags: u16,
    seq: u32,
    ack: u32,
    len: u32,
) -> TcpState {
    if flags & RST != 0 {
        sender.reset = true;
        receiver.reset = true;
        return TcpState::Closed;
    }
    if flags & SYN != 0 {
        sender.isn = Some(seq);
        sender.syn_acked_by_peer = false;
    }
    if flags & ACK != 0 {
        if receiver
            .isn
            .is_some_and(|isn| acks(ack, isn.wrapping_add(1)))
        {
            sender.acked_peer_syn = true;
            receiver.syn_acked_by_peer = true;
        }
        if receiver.fin_end.is_some_and(|end| acks(ack, end)) {
            sender.acked_peer_fin = true;
            receiver.fin_acked_by_peer = true;
        }
    }
    if flags & FIN != 0 && sender.fin_end.is_none() {
        let syn = u32::from(flags & SYN != 0);
        sender.fin_end = Some(seq.wrapping_add(len).wrapping_add(1 + syn));
        sender.passive_close = sender.acked_peer_fin;
    }
    sender.state(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcpState::*;

    fn run(steps: &[(bool, u16, u32, u32, u32)]) -> Vec<TcpState> {
        let mut c = Endpoint::default();
        let mut s = Endpoint::default();
        steps
            .iter()
            .map(|&(from_client, flags, seq, ack, len)| {
                if from_client {
                    on_segment(&mut c, &mut s, flags, seq, ack, len)
                } else {
                    on_segment(&mut s, &mut c, flags, seq, ack, len)
                }
            })
            .collect()
    }

    #[test]
    fn handshake_and_four_packet_close() {
        let states = run(&[
            (true, SYN, 100, 0, 0),
            (false, SYN | ACK, 500, 101, 0),
            (true, ACK, 101, 501, 0),
            (false, FIN | ACK, 501, 101, 0),
            (true, ACK, 101, 502, 0),
            (true, FIN | ACK, 101, 502, 0),
            (false, ACK, 502, 102, 0),
        ]);
        assert_eq!(
            states,
            [
                SynSent,
                SynReceived,
                Established,
                FinWait1,
                CloseWait,
                LastAck,
                TimeWait
            ]
        );
    }

    #[test]
    fn three_packet_close_puts_the_passive_side_in_last_ack() {
        let states = run(&[
            (true, SYN, 100, 0, 0),
            (false, SYN | ACK, 500, 101, 0),
            (true, ACK, 101, 501, 0),
            (true, FIN | ACK, 101, 501, 0),
            (false, FIN | ACK, 501, 102, 0),
            (true, ACK, 102, 502, 0),
        ]);
        assert_eq!(states[3..], [FinWait1, LastAck, TimeWait]);
    }

    #[test]
    fn simultaneous_close_passes_through_closing() {
        let states = run(&[
            (true, SYN, 100, 0, 0),
            (false, SYN | ACK, 500, 101, 0),
            (true, ACK, 101, 501, 0),
            (true, FIN | ACK, 101, 501, 0),
            (false, FIN | ACK, 501, 101, 0),
            (true, ACK, 102, 502, 0),
            (false, ACK, 502, 102, 0),
        ]);
        assert_eq!(states[3..], [FinWait1, FinWait1, Closing, TimeWait]);
    }

    #[test]
    fn a_retransmitted_syn_ack_shows_the_server_still_waiting() {
        let states = run(&[
            (true, SYN, 100, 0, 0),
            (false, SYN | ACK, 500, 101, 0),
            (true, ACK, 101, 501, 0),
            (false, SYN | ACK, 500, 101, 0),
            (true, ACK, 101, 501, 0),
            (true, FIN | ACK, 101, 501, 0),
            (false, RST, 501, 0, 0),
        ]);
        assert_eq!(states[3..], [SynReceived, Established, FinWait1, Closed]);
    }

    #[test]
    fn mid_stream_traffic_is_established() {
        let states = run(&[(false, ACK, 9, 9, 10), (true, ACK, 9, 19, 0)]);
        assert_eq!(states, [Established, Established]);
    }
}
