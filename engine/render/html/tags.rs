//! The tags of the connection list: what kind of story each connection
//! tells, read from its summary and from what the dissectors found in it.

use crate::tracking::{CloseStyle, ConnectionSummary, Flag, HandshakeOutcome};

/// What the application dissectors found in a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppKinds {
    /// At least one HTTP message.
    pub http: bool,
    /// At least one WebSocket message.
    pub websocket: bool,
    /// At least one server-sent event.
    pub event_stream: bool,
}

/// One tag of the connection list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tag {
    /// The handshake was not seen: the connection was open before the capture.
    StartedBeforeCapture,
    /// The SYN got no answer.
    SynUnanswered,
    /// The SYN was answered by a RST.
    Refused,
    /// The handshake started but did not complete as it should.
    IncompleteHandshake,
    /// At least one retransmission.
    Retransmissions,
    /// Duplicate ACKs.
    DuplicateAcks,
    /// Segments arrived out of order, or the capture missed some.
    OutOfOrder,
    /// The receive window was zero at some point.
    ZeroWindow,
    /// Keep-alive probes.
    KeepAlive,
    /// Closed with FIN, FIN-ACK, ACK.
    ThreePacketClose,
    /// Closed with FIN, ACK, FIN, ACK.
    FourPacketClose,
    /// Both sides sent FIN at once.
    SimultaneousClose,
    /// Only one side sent FIN.
    HalfClosed,
    /// Ended by a RST.
    Reset,
    /// Still open when the capture ended.
    StillOpen,
    /// HTTP messages.
    Http,
    /// WebSocket messages.
    WebSocket,
    /// Server-sent events.
    EventStream,
}

impl Tag {
    /// Every tag, in the order [`tags`] gives them; a tag's index here is
    /// its bit in the connection list's data.
    pub const ALL: [Tag; 18] = [
        Tag::StartedBeforeCapture,
        Tag::SynUnanswered,
        Tag::Refused,
        Tag::IncompleteHandshake,
        Tag::Retransmissions,
        Tag::DuplicateAcks,
        Tag::OutOfOrder,
        Tag::ZeroWindow,
        Tag::KeepAlive,
        Tag::ThreePacketClose,
        Tag::FourPacketClose,
        Tag::SimultaneousClose,
        Tag::HalfClosed,
        Tag::Reset,
        Tag::StillOpen,
        Tag::Http,
        Tag::WebSocket,
        Tag::EventStream,
    ];

    /// Its bit in the connection list's data.
    pub fn bit(self) -> u32 {
        let i = Tag::ALL.iter().position(|t| *t == self).unwrap_or(0);
        1 << i
    }

    /// The words shown in the list (and searched).
    pub fn label(self) -> &'static str {
        match self {
            Tag::StartedBeforeCapture => "started before capture",
            Tag::SynUnanswered => "SYN unanswered",
            Tag::Refused => "refused",
            Tag::IncompleteHandshake => "incomplete handshake",
            Tag::Retransmissions => "retransmissions",
            Tag::DuplicateAcks => "duplicate ACKs",
            Tag::OutOfOrder => "out of order",
            Tag::ZeroWindow => "zero window",
            Tag::KeepAlive => "keep-alive",
            Tag::ThreePacketClose => "3-packet close",
            Tag::FourPacketClose => "4-packet close",
            Tag::SimultaneousClose => "simultaneous close",
            Tag::HalfClosed => "half-closed",
            Tag::Reset => "reset",
            Tag::StillOpen => "still open",
            Tag::Http => "HTTP",
            Tag::WebSocket => "WebSocket",
            Tag::EventStream => "event stream",
        }
    }

    /// The colour family of the tag: `bad`, `warn`, `app` or `ok`.
    pub fn tone(self) -> &'static str {
        match self {
            Tag::SynUnanswered
            | Tag::Refused
            | Tag::IncompleteHandshake
            | Tag::Retransmissions
            | Tag::Reset => "bad",
            Tag::DuplicateAcks | Tag::OutOfOrder | Tag::ZeroWindow | Tag::HalfClosed => "warn",
            Tag::Http | Tag::WebSocket | Tag::EventStream => "app",
            Tag::StartedBeforeCapture
            | Tag::KeepAlive
            | Tag::ThreePacketClose
            | Tag::FourPacketClose
            | Tag::SimultaneousClose
            | Tag::StillOpen => "ok",
        }
    }

    /// What the tag means.
    pub fn tip(self) -> &'static str {
        match self {
            Tag::StartedBeforeCapture => {
                "No SYN in the capture: the connection was already open when the capture started."
            }
            Tag::SynUnanswered => {
                "The client's SYN got no answer: dropped by a firewall, or nothing there."
            }
            Tag::Refused => "The server answered the SYN with RST: nothing listens on that port.",
            Tag::IncompleteHandshake => {
                "The three-way handshake started but did not complete normally."
            }
            Tag::Retransmissions => "Some data was sent twice: packets were lost or late.",
            Tag::DuplicateAcks => {
                "The receiver repeated an ACK: it is missing a segment and says so."
            }
            Tag::OutOfOrder => "Segments arrived out of order, or the capture missed some of them.",
            Tag::ZeroWindow => "A receiver's buffer filled up: it told the sender to stop.",
            Tag::KeepAlive => "Keep-alive probes checked an idle connection.",
            Tag::ThreePacketClose => {
                "Closed in three packets: FIN, then FIN+ACK (the ACK rides on the \
                 second FIN), then ACK."
            }
            Tag::FourPacketClose => {
                "Closed in four packets: FIN, ACK, then the other side's FIN and its ACK."
            }
            Tag::SimultaneousClose => "Both sides sent FIN before receiving the other's.",
            Tag::HalfClosed => "Only one side sent FIN: the other side never closed.",
            Tag::Reset => "A RST ended the connection abruptly.",
            Tag::StillOpen => "The connection was still open when the capture ended.",
            Tag::Http => "Carries HTTP requests and responses.",
            Tag::WebSocket => "Upgraded to WebSocket: framed messages both ways.",
            Tag::EventStream => "Carries server-sent events (text/event-stream).",
        }
    }
}

/// The tags of a connection, in a stable order (handshake, trouble, close,
/// application).
pub fn tags(s: &ConnectionSummary, app: AppKinds) -> Vec<Tag> {
    let mut out = Vec::new();
    match s.handshake {
        HandshakeOutcome::Complete => {}
        HandshakeOutcome::StartedBeforeCapture => out.push(Tag::StartedBeforeCapture),
        HandshakeOutcome::SynUnanswered => out.push(Tag::SynUnanswered),
        HandshakeOutcome::Refused => out.push(Tag::Refused),
        HandshakeOutcome::FinalAckLost | HandshakeOutcome::SynAckUnanswered => {
            out.push(Tag::IncompleteHandshake)
        }
    }
    if s.count(Flag::Retransmission) > 0 {
        out.push(Tag::Retransmissions);
    }
    if s.count(Flag::DuplicateAck) > 0 {
        out.push(Tag::DuplicateAcks);
    }
    if s.count(Flag::OutOfOrder) + s.count(Flag::LostSegment) > 0 {
        out.push(Tag::OutOfOrder);
    }
    if s.count(Flag::ZeroWindow) > 0 {
        out.push(Tag::ZeroWindow);
    }
    if s.keep_alives > 0 {
        out.push(Tag::KeepAlive);
    }
    match s.close {
        CloseStyle::ThreePacket => out.push(Tag::ThreePacketClose),
        CloseStyle::FourPacket => out.push(Tag::FourPacketClose),
        CloseStyle::Simultaneous => out.push(Tag::SimultaneousClose),
        CloseStyle::HalfClosed => out.push(Tag::HalfClosed),
        CloseStyle::Open => out.push(Tag::StillOpen),
        CloseStyle::Reset | CloseStyle::NeverEstablished => {}
    }
    // A refused connection is ended by a RST too: the tag says so, so that
    // a search for "reset" finds it.
    if s.reset_by.is_some() || s.close == CloseStyle::Reset {
        out.push(Tag::Reset);
    }
    if app.http {
        out.push(Tag::Http);
    }
    if app.websocket {
        out.push(Tag::WebSocket);
    }
    if app.event_stream {
        out.push(Tag::EventStream);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_has_its_own_bit_and_label() {
        let mut bits = 0u32;
        for t in Tag::ALL {
            assert_eq!(bits & t.bit(), 0, "{t:?}");
            bits |= t.bit();
        }
        let mut labels: Vec<&str> = Tag::ALL.iter().map(|t| t.label()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), Tag::ALL.len());
    }
}
