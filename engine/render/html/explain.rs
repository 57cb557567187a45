//! What each thing on the page means, in a sentence a beginner can read:
//! the tooltips of TCP flags, analysis flags, states and tags.

use std::collections::BTreeMap;

use crate::decode::flags::{ACK, AE, CWR, ECE, FIN, PSH, RST, SYN, URG};
use crate::tracking::{Flag, Insight, TcpState};

/// The TCP header flags in the order people read them (SYN,ACK not ACK,SYN),
/// each with its name and what it asks of the receiver.
pub const TCP_FLAGS: [(u16, &str, &str); 9] = [
    (
        SYN,
        "SYN",
        "SYN (synchronise): asks to open a connection and carries the sender's initial \
         sequence number. It takes up one sequence number, as if it were one byte.",
    ),
    (
        FIN,
        "FIN",
        "FIN (finish): the sender has no more data to send. It can still receive. \
         It takes up one sequence number, as if it were one byte.",
    ),
    (
        RST,
        "RST",
        "RST (reset): abort the connection now. Nothing more is sent on it and \
         data not yet delivered is thrown away.",
    ),
    (
        PSH,
        "PSH",
        "PSH (push): deliver this data to the application now instead of waiting \
         for more; senders set it on the last segment of a write.",
    ),
    (
        ACK,
        "ACK",
        "ACK (acknowledgement): the ack number is valid. It names the next byte the \
         sender expects from the other side, so every byte before it has arrived.",
    ),
    (
        URG,
        "URG",
        "URG (urgent): the urgent pointer is valid. Almost never used today.",
    ),
    (
        ECE,
        "ECE",
        "ECE (ECN echo): on a SYN, offers Explicit Congestion Notification; later, \
         tells the sender that a router marked a packet as congested.",
    ),
    (
        CWR,
        "CWR",
        "CWR (congestion window reduced): the sender slowed down after an ECN echo.",
    ),
    (
        AE,
        "AE",
        "AE (accurate ECN, formerly NS): part of the accurate ECN counter.",
    ),
];

/// The names of the flags set in `bits`.
pub fn tcp_flags(bits: u16) -> Vec<&'static str> {
    TCP_FLAGS
        .iter()
        .filter(|(bit, _, _)| bits & bit != 0)
        .map(|(_, name, _)| *name)
        .collect()
}

/// Every explanation a bubble can point to, by key: `f:SYN` (a TCP flag),
/// `a:retransmission` (an analysis flag), `i:duplicate_capture` (an
/// insight), `s:ESTABLISHED` (a state), `n:seq` (a field). The page holds
/// it once; a bubble names the key, which keeps a long chat small.
pub fn glossary() -> BTreeMap<String, &'static str> {
    let mut g = BTreeMap::new();
    for (_, name, tip) in TCP_FLAGS {
        g.insert(format!("f:{name}"), tip);
    }
    for f in Flag::ALL {
        g.insert(format!("a:{}", f.name()), analysis(f));
    }
    for i in Insight::ALL {
        g.insert(format!("i:{}", i.name()), insight(i));
    }
    for s in [
        TcpState::Closed,
        TcpState::Listen,
        TcpState::SynSent,
        TcpState::SynReceived,
        TcpState::Established,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::Closing,
        TcpState::TimeWait,
        TcpState::CloseWait,
        TcpState::LastAck,
    ] {
        g.insert(format!("s:{}", s.name()), state(s));
    }
    for (key, tip) in FIELDS {
        g.insert(format!("n:{key}"), tip);
    }
    g
}

/// The numbers of a bubble.
const FIELDS: [(&str, &str); 4] = [
    (
        "seq",
        "Sequence number of the packet's first byte, counted from this side's \
         first (as Wireshark shows it): where this data sits in the stream.",
    ),
    (
        "ack",
        "Acknowledgement number: the next byte expected from the other side. \
         Every byte before it has arrived.",
    ),
    ("len", "Bytes of data in this packet (the TCP payload)."),
    (
        "win",
        "Receive window: how many more bytes the sender of this packet can take \
         in right now. Zero means: stop sending.",
    ),
];

/// What an analysis flag means and why it matters.
pub fn analysis(flag: Flag) -> &'static str {
    match flag {
        Flag::Retransmission => {
            "Retransmission: these bytes were sent before. The sender got no \
             acknowledgement in time (its retransmission timer ran out), so it \
             sends them again. Usually a sign that a packet was lost."
        }
        Flag::FastRetransmission => {
            "Fast retransmission: the receiver repeated the same ACK several times \
             (duplicate ACKs), telling the sender a segment is missing; the sender \
             resends it at once instead of waiting for its timer."
        }
        Flag::SpuriousRetransmission => {
            "Spurious retransmission: sent again although the receiver had already \
             acknowledged these bytes. The original was not lost, only slow."
        }
        Flag::OutOfOrder => {
            "Out of order: this segment arrived after one with a higher sequence \
             number. The network reordered them, or it fills a hole."
        }
        Flag::LostSegment => {
            "Previous segment not captured: the sequence numbers jump, so bytes \
             before this segment are missing from the capture (lost on the way, or \
             missed by the capture)."
        }
        Flag::AckLostSegment => {
            "ACKed unseen segment: this acknowledges bytes the capture never saw. \
             The capture missed them, the receiver did not."
        }
        Flag::KeepAlive => {
            "Keep-alive: a probe with the sequence number one below the next byte, \
             sent after a long silence to check that the peer is still there. \
             The peer answers with an ACK."
        }
        Flag::KeepAliveAck => "Keep-alive ACK: the answer to a keep-alive probe.",
        Flag::DuplicateAck => {
            "Duplicate ACK: the same acknowledgement number again. The receiver \
             got a segment but is still missing an earlier one; three of these make \
             the sender retransmit at once (fast retransmission)."
        }
        Flag::ZeroWindow => {
            "Zero window: the receiver's buffer is full, it advertises a window of \
             0 bytes. The sender must stop sending until the window opens again."
        }
        Flag::ZeroWindowProbe => {
            "Zero-window probe: one byte sent into a closed window, to learn when \
             the receiver has room again."
        }
        Flag::ZeroWindowProbeAck => "Zero-window probe ACK: the answer to a zero-window probe.",
        Flag::WindowUpdate => {
            "Window update: nothing new but a larger receive window: the \
             receiver's application read data and made room."
        }
        Flag::WindowFull => {
            "Window full: this segment fills the receiver's advertised window; \
             the sender cannot send more until an ACK opens it."
        }
        Flag::ReusedPorts => {
            "Port numbers reused: a new SYN on the same addresses and ports as an \
             earlier connection."
        }
    }
}

/// What one of chattcp's own readings means.
pub fn insight(i: Insight) -> &'static str {
    match i {
        Insight::ZeroWindowProbe => {
            "Linux probes a zero window with an empty segment one below the next \
             byte; Wireshark calls it a keep-alive, but it is a zero-window probe."
        }
        Insight::ZeroWindowProbeAck => "The answer to such a zero-window probe.",
        Insight::DuplicateCapture => {
            "The same packet (same IP identification, numbers and window) captured \
             twice: the sender sent it once, so it is not a retransmission."
        }
        Insight::RetransmissionWithoutDuplicateAcks => {
            "No duplicate ACKs came before it, so it is a plain retransmission, \
             not a fast one."
        }
        Insight::AnalysisHiddenBySnaplen => {
            "The capture cut this packet's TCP options short (snap length), so \
             its analysis cannot be shown."
        }
    }
}

/// What an endpoint in `state` is doing.
pub fn state(state: TcpState) -> &'static str {
    match state {
        TcpState::Closed => "CLOSED: no connection.",
        TcpState::Listen => "LISTEN: waiting for a connection request.",
        TcpState::SynSent => "SYN_SENT: sent a SYN, waiting for the SYN-ACK.",
        TcpState::SynReceived => {
            "SYN_RECEIVED: got a SYN and answered SYN-ACK, waiting for the final ACK \
             of the handshake."
        }
        TcpState::Established => "ESTABLISHED: the connection is open; data flows both ways.",
        TcpState::FinWait1 => {
            "FIN_WAIT_1: sent FIN, waiting for its ACK (or the other side's FIN)."
        }
        TcpState::FinWait2 => {
            "FIN_WAIT_2: its FIN was acknowledged; waiting for the other side's FIN."
        }
        TcpState::Closing => "CLOSING: both sides sent FIN before either was acknowledged.",
        TcpState::TimeWait => {
            "TIME_WAIT: both FINs acknowledged; waits a while so that stray packets \
             of this connection die out."
        }
        TcpState::CloseWait => {
            "CLOSE_WAIT: the other side closed; this side may still send, and will \
             close when its application does."
        }
        TcpState::LastAck => {
            "LAST_ACK: closed after the other side; waiting for the ACK of its own FIN."
        }
    }
}
