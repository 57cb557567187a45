//! Connection summaries: how the connection opened and closed, who closed
//! it, and what happened in between, built packet by packet.

use super::analysis::Flag;
use super::zeek::{Repeated, ZeekTracker};
use super::{ConnectionInfo, Direction, Endpoint, PacketRecord, Role, RoleEvidence, TcpState};
use crate::capture::Timestamp;
use crate::decode::flags::{ACK, FIN, RST, SYN};
use crate::events::Handshake;
use crate::reassembly::DirectionStats;

/// How the three-way handshake went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeOutcome {
    /// SYN, SYN-ACK and the client's ACK were seen.
    Complete,
    /// The client's SYN got no answer.
    SynUnanswered,
    /// The server answered the SYN with RST.
    Refused,
    /// The server retransmitted its SYN-ACK after the client's ACK: it never
    /// received that ACK.
    FinalAckLost,
    /// The SYN-ACK was never acknowledged.
    SynAckUnanswered,
    /// No SYN was captured: the connection was open before the capture.
    StartedBeforeCapture,
}

impl HandshakeOutcome {
    /// A stable name.
    pub fn name(self) -> &'static str {
        match self {
            HandshakeOutcome::Complete => "complete",
            HandshakeOutcome::SynUnanswered => "syn_unanswered",
            HandshakeOutcome::Refused => "refused",
            HandshakeOutcome::FinalAckLost => "final_ack_lost",
            HandshakeOutcome::SynAckUnanswered => "synack_unanswered",
            HandshakeOutcome::StartedBeforeCapture => "started_before_capture",
        }
    }
}

/// How the connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseStyle {
    /// FIN, ACK, FIN, ACK: the passive side acknowledged the first FIN on its own.
    FourPacket,
    /// FIN, FIN-ACK, ACK: the ACK of the first FIN rode on the second FIN.
    ThreePacket,
    /// Both sides sent FIN before receiving the other's.
    Simultaneous,
    /// A RST ended it.
    Reset,
    /// Only one side sent FIN.
    HalfClosed,
    /// Still open when the capture ended.
    Open,
    /// The handshake never completed and nothing closed it: an unanswered
    /// SYN the client gave up on, say.
    NeverEstablished,
}

impl CloseStyle {
    /// A stable name.
    pub fn name(self) -> &'static str {
        match self {
            CloseStyle::FourPacket => "four_packet",
            CloseStyle::ThreePacket => "three_packet",
            CloseStyle::Simultaneous => "simultaneous",
            CloseStyle::Reset => "reset",
            CloseStyle::HalfClosed => "half_closed",
            CloseStyle::Open => "open",
            CloseStyle::NeverEstablished => "never_established",
        }
    }
}

/// Wireshark's label for a `tcp.completeness` value.
pub fn completeness_label(value: u8) -> String {
    match completeness_name(value) {
        Some(name) => name.into(),
        None => format!("Incomplete ({value})"),
    }
}

/// [`completeness_label`] for the values Wireshark names, without
/// allocating; `None` for the others.
pub fn completeness_name(value: u8) -> Option<&'static str> {
    Some(match value {
        1 => "Incomplete, SYN_SENT",
        3 => "Incomplete, CLIENT_ESTABLISHED",
        7 => "Incomplete, ESTABLISHED",
        15 => "Incomplete, DATA",
        31 | 47 | 63 => "Complete, WITH_DATA",
        23 | 39 | 55 => "Complete, NO_DATA",
        _ => return None,
    })
}

/// A frame and its time (nanoseconds since the capture's first frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTime {
    /// Frame number.
    pub frame: u64,
    /// Nanoseconds since the first frame of the capture.
    pub time_ns: i64,
}

/// Zero-window episodes of one side (the side advertising the zero window).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZeroWindow {
    /// The first zero-window packet.
    pub first: Option<FrameTime>,
    /// Times the window went to zero.
    pub episodes: u64,
    /// Total time the window stayed at zero, nanoseconds (until the capture
    /// ended, for an episode still open).
    pub stalled_ns: i64,
    /// The window was still zero at the end of the capture.
    pub still_zero: bool,
    /// Zero-window probes the other side sent into it (Linux's 0-byte probes
    /// included).
    pub probes: u64,
    open_since: Option<i64>,
}

/// Most SYNs or SYN-ACKs remembered per connection.
pub const MAX_HANDSHAKE_FRAMES: usize = 16;

/// The heap-allocated lists of a [`ConnectionSummary`], taken out of one that
/// was delivered so that a [`SummaryBuilder`] fills them again for a later
/// connection instead of allocating its own.
#[derive(Debug, Default)]
pub struct SummaryLists {
    history: String,
    keep_alive_intervals_ns: Vec<i64>,
    syns: Vec<FrameTime>,
    syn_acks: Vec<FrameTime>,
    retransmissions: Vec<FrameTime>,
}

impl ConnectionSummary {
    /// Bytes its lists hold on the heap (what a copy of it allocates).
    pub fn heap_bytes(&self) -> usize {
        self.history.len()
            + std::mem::size_of::<i64>() * self.keep_alive_intervals_ns.len()
            + std::mem::size_of::<FrameTime>()
                * (self.timeline.syns.len()
                    + self.timeline.syn_acks.len()
                    + self.timeline.retransmissions.len())
    }

    /// Takes its lists out, leaving them empty.
    pub fn take_lists(&mut self) -> SummaryLists {
        SummaryLists {
            history: std::mem::take(&mut self.history),
            keep_alive_intervals_ns: std::mem::take(&mut self.keep_alive_intervals_ns),
            syns: std::mem::take(&mut self.timeline.syns),
            syn_acks: std::mem::take(&mut self.timeline.syn_acks),
            retransmissions: std::mem::take(&mut self.timeline.retransmissions),
        }
    }
}

/// When the milestones of a connection happened, for diagnoses and lessons.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// The client's SYNs (first and retransmissions; at most 16).
    pub syns: Vec<FrameTime>,
    /// The server's SYN-ACKs (at most 16).
    pub syn_acks: Vec<FrameTime>,
    /// The client's ACK of the SYN-ACK.
    pub final_ack: Option<FrameTime>,
    /// The first server packet acknowledging client data or FIN: proof the
    /// server had the connection established.
    pub server_acked_data: Option<FrameTime>,
    /// Each side's first FIN: [client, server].
    pub fins: [Option<FrameTime>; 2],
    /// The packet that acknowledged each side's FIN: [client's, server's].
    pub fin_acks: [Option<FrameTime>; 2],
    /// The first RST.
    pub reset: Option<FrameTime>,
    /// The state of the side that sent the RST as its own packets last
    /// showed it (before the RST), or as inferred when it had sent nothing.
    pub reset_state: Option<TcpState>,
    /// Data bytes each side had sent and not seen acknowledged when the RST
    /// came: [client, server].
    pub unacked_at_reset: [u64; 2],
    /// The longest retransmission timeout: the retransmission and its RTO in ns.
    pub worst_rto: Option<(FrameTime, i64)>,
    /// The first retransmissions of any kind (at most 16).
    pub retransmissions: Vec<FrameTime>,
    /// Zero windows advertised by [client, server].
    pub zero_window: [ZeroWindow; 2],
    /// Keep-alives sent by [client, server].
    pub keep_alives: [u64; 2],
    /// Idle time before each side's first keep-alive, ns.
    pub first_keep_alive_idle: [Option<i64>; 2],
}

/// Everything chattcp says about a finished connection.
#[derive(Clone, Debug)]
pub struct ConnectionSummary {
    /// Connection number (tshark's `tcp.stream`).
    pub conn: u64,
    /// The client.
    pub client: Endpoint,
    /// The server.
    pub server: Endpoint,
    /// How the roles were decided.
    pub roles: RoleEvidence,
    /// First and last frame.
    pub first_frame: u64,
    /// Last frame.
    pub last_frame: u64,
    /// Time of the first packet.
    pub start: Timestamp,
    /// Time of the last packet.
    pub end: Timestamp,
    /// Nanoseconds from the capture's first frame to `start`.
    pub start_rel_ns: i64,
    /// Nanoseconds from the capture's first frame to `end`.
    pub end_rel_ns: i64,
    /// Packets client→server and server→client.
    pub packets: [u64; 2],
    /// Payload bytes on the wire, client→server and server→client.
    pub bytes: [u64; 2],
    /// How the handshake went.
    pub handshake: HandshakeOutcome,
    /// How it closed.
    pub close: CloseStyle,
    /// The side that closed first (first FIN or RST).
    pub closed_by: Option<Role>,
    /// The side that sent the first RST.
    pub reset_by: Option<Role>,
    /// What the RST followed, e.g. `syn`, `data`, `fin`.
    pub reset_after: Option<&'static str>,
    /// Wireshark's `tcp.completeness`, after the last packet.
    pub completeness: u8,
    /// Zeek's `conn_state`.
    pub conn_state: &'static str,
    /// Zeek's history string.
    pub history: String,
    /// Initial RTT (SYN to first ACK), nanoseconds.
    pub irtt_ns: Option<i64>,
    /// Packets carrying each analysis flag, indexed like [`Flag::ALL`].
    pub flag_counts: [u64; 15],
    /// Idle time before each keep-alive, nanoseconds (at most 64 kept).
    pub keep_alive_intervals_ns: Vec<i64>,
    /// Keep-alives sent.
    pub keep_alives: u64,
    /// States after the last packet: [client, server].
    pub final_states: [TcpState; 2],
    /// Reassembly counters: [client→server, server→client].
    pub reassembly: [DirectionStats; 2],
    /// When things happened.
    pub timeline: Timeline,
}

impl ConnectionSummary {
    /// Count of one flag.
    pub fn count(&self, flag: Flag) -> u64 {
        Flag::ALL
            .iter()
            .position(|f| *f == flag)
            .map_or(0, |i| self.flag_counts[i])
    }

    /// Duration in nanoseconds.
    pub fn duration_ns(&self) -> i64 {
        self.end.since(self.start)
    }
}

const MAX_INTERVALS: usize = 64;

/// Builds a [`ConnectionSummary`] as packets pass.
#[derive(Clone, Debug)]
pub struct SummaryBuilder {
    zeek: ZeekTracker,
    first_frame: u64,
    last_frame: u64,
    start: Option<Timestamp>,
    end: Timestamp,
    packets: [u64; 2],
    bytes: [u64; 2],
    flag_counts: [u64; 15],
    /// Frames of the client's first SYN and the server's first SYN-ACK.
    syn_frame: Option<u64>,
    syn_ack_frame: Option<u64>,
    server_isn: Option<u32>,
    /// Frame of the client's ACK of the SYN-ACK.
    final_ack_frame: Option<u64>,
    syn_ack_after_final_ack: bool,
    refused: bool,
    /// Per role: frame and end sequence of its first FIN.
    fin: [Option<(u64, u32)>; 2],
    /// Per role: the frame of the other side that acknowledged its FIN,
    /// and whether that frame carried a FIN itself.
    fin_acked: [Option<(u64, bool)>; 2],
    rst: Option<(Role, u64)>,
    reset_after: Option<&'static str>,
    saw_data: bool,
    last_sent: [Option<Timestamp>; 2],
    keep_alive_intervals: Vec<i64>,
    keep_alives: u64,
    timeline: Timeline,
    /// Per role: highest sequence number sent (past SYN/FIN), and highest
    /// acknowledgment received from the peer.
    sent_end: [Option<u32>; 2],
    acked: [Option<u32>; 2],
    client_isn: Option<u32>,
}

impl SummaryBuilder {
    /// A builder; `flipped` when the client is not the first packet's sender.
    pub fn new(flipped: bool) -> Self {
        SummaryBuilder {
            zeek: ZeekTracker::new(flipped),
            first_frame: 0,
            last_frame: 0,
            start: None,
            end: Timestamp(0),
            packets: [0; 2],
            bytes: [0; 2],
            flag_counts: [0; 15],
            syn_frame: None,
            syn_ack_frame: None,
            server_isn: None,
            final_ack_frame: None,
            syn_ack_after_final_ack: false,
            refused: false,
            fin: [None; 2],
            fin_acked: [None; 2],
            rst: None,
            reset_after: None,
            saw_data: false,
            last_sent: [None; 2],
            keep_alive_intervals: Vec::new(),
            keep_alives: 0,
            timeline: Timeline::default(),
            sent_end: [None; 2],
            acked: [None; 2],
            client_isn: None,
        }
    }

    /// Takes back the lists of a summary a builder made, once it has been
    /// delivered, for [`SummaryBuilder::reset`] to reuse.
    pub fn recycle(&mut self, lists: SummaryLists) {
        self.timeline.syns = lists.syns;
        self.timeline.syn_acks = lists.syn_acks;
        self.timeline.retransmissions = lists.retransmissions;
        self.keep_alive_intervals = lists.keep_alive_intervals_ns;
        self.zeek.reuse_history(lists.history);
    }

    /// Starts over as [`SummaryBuilder::new`] would, keeping the buffers of
    /// its lists: most connections fill the same few, and allocating them
    /// for each costs more than filling them.
    pub fn reset(&mut self, flipped: bool) {
        let mut syns = std::mem::take(&mut self.timeline.syns);
        let mut syn_acks = std::mem::take(&mut self.timeline.syn_acks);
        let mut retransmissions = std::mem::take(&mut self.timeline.retransmissions);
        let mut keep_alive = std::mem::take(&mut self.keep_alive_intervals);
        let history = self.zeek.take_history();
        *self = SummaryBuilder::new(flipped);
        syns.clear();
        syn_acks.clear();
        retransmissions.clear();
        keep_alive.clear();
        self.timeline.syns = syns;
        self.timeline.syn_acks = syn_acks;
        self.timeline.retransmissions = retransmissions;
        self.keep_alive_intervals = keep_alive;
        self.zeek.reuse_history(history);
    }

    /// Frame of the last packet.
    pub fn last_frame(&self) -> u64 {
        self.last_frame
    }

    /// Time of the last packet.
    pub fn last_time(&self) -> Timestamp {
        self.end
    }

    /// A reassembly gap in direction `dir`.
    pub fn gap(&mut self, dir: Direction) {
        self.zeek
            .repeated(dir == Direction::ClientToServer, Repeated::Gap);
    }

    /// Accounts one packet; returns the handshake when this packet completes it.
    pub fn packet(&mut self, p: &PacketRecord<'_>, conn: u64) -> Option<Handshake> {
        let d = p.dir.index();
        let role = p.dir.sender();
        let from_client = role == Role::Client;
        if self.start.is_none() {
            self.start = Some(p.time);
            self.first_frame = p.frame;
        }
        self.last_frame = p.frame;
        self.end = p.time;
        self.packets[d] += 1;
        let len = p.len.unwrap_or(0);
        self.bytes[d] += u64::from(len);
        // Most packets carry no flag: skip the walk over all fifteen.
        if !p.analysis.is_empty() {
            for (i, flag) in Flag::ALL.iter().enumerate() {
                if p.analysis.has(*flag) {
                    self.flag_counts[i] += 1;
                }
            }
        }

        let flags = p.flags;
        self.zeek.segment(from_client, flags, p.seq_raw, len);
        if len > 0 && p.analysis.has(Flag::Retransmission) {
            self.zeek.repeated(from_client, Repeated::Retransmission);
        }
        if p.analysis.has(Flag::ZeroWindow) {
            self.zeek.repeated(from_client, Repeated::ZeroWindow);
        }

        if p.analysis.has(Flag::KeepAlive) && !p.insight.has(super::Insight::ZeroWindowProbe) {
            self.keep_alives += 1;
            self.timeline.keep_alives[d] += 1;
            if let Some(prev) = self.last_sent[d] {
                let idle = p.time.since(prev);
                self.timeline.first_keep_alive_idle[d].get_or_insert(idle);
                if self.keep_alive_intervals.len() < MAX_INTERVALS {
                    self.keep_alive_intervals.push(idle);
                }
            }
        }
        self.last_sent[d] = Some(p.time);

        let mut handshake = None;
        match (flags & (SYN | ACK), from_client) {
            (SYN, true) => {
                self.syn_frame.get_or_insert(p.frame);
            }
            (f, false) if f == SYN | ACK => {
                self.syn_ack_frame.get_or_insert(p.frame);
                self.server_isn.get_or_insert(p.seq_raw);
                if self.final_ack_frame.is_some() {
                    self.syn_ack_after_final_ack = true;
                }
            }
            (ACK, true) => {
                let acks_syn_ack = self
                    .server_isn
                    .is_some_and(|isn| p.ack_raw == isn.wrapping_add(1));
                if acks_syn_ack && self.final_ack_frame.is_none() && flags & RST == 0 {
                    self.final_ack_frame = Some(p.frame);
                    handshake = Some(Handshake {
                        conn,
                        frame: p.frame,
                        time: p.time,
                        syn_frame: self.syn_frame.unwrap_or(0),
                        syn_ack_frame: self.syn_ack_frame.unwrap_or(0),
                        irtt_ns: None,
                    });
                }
            }
            _ => {}
        }

        // Acknowledgment of the other side's FIN.
        let peer = role.peer().index();
        if flags & ACK != 0 && self.fin_acked[peer].is_none() {
            if let Some((_, end)) = self.fin[peer] {
                if (p.ack_raw.wrapping_sub(end) as i32) >= 0 {
                    self.fin_acked[peer] = Some((p.frame, flags & FIN != 0));
                }
            }
        }
        if flags & FIN != 0 && self.fin[role.index()].is_none() {
            let syn = u32::from(flags & SYN != 0);
            let end = p.seq_raw.wrapping_add(len).wrapping_add(1 + syn);
            self.fin[role.index()] = Some((p.frame, end));
        }
        if flags & RST != 0 && self.rst.is_none() {
            self.rst = Some((role, p.frame));
            self.reset_after = Some(if self.fin.iter().any(Option::is_some) {
                "fin"
            } else if self.saw_data {
                "data"
            } else if self.final_ack_frame.is_some() {
                "handshake"
            } else if self.syn_ack_frame.is_some() {
                "syn_ack"
            } else if self.syn_frame.is_some() {
                "syn"
            } else {
                "nothing"
            });
            if !from_client && self.syn_frame.is_some() && self.syn_ack_frame.is_none() {
                self.refused = true;
            }
        }
        if len > 0 {
            self.saw_data = true;
        }
        let at = FrameTime {
            frame: p.frame,
            time_ns: p.rel_time_ns,
        };
        self.track_timeline(p, role, at);
        handshake
    }

    fn track_timeline(&mut self, p: &PacketRecord<'_>, role: Role, at: FrameTime) {
        let r = role.index();
        let flags = p.flags;
        let t = &mut self.timeline;
        match (flags & (SYN | ACK), role) {
            (SYN, Role::Client) => {
                self.client_isn.get_or_insert(p.seq_raw);
                if t.syns.len() < MAX_HANDSHAKE_FRAMES {
                    t.syns.push(at);
                }
            }
            (f, Role::Server) if f == SYN | ACK && t.syn_acks.len() < MAX_HANDSHAKE_FRAMES => {
                t.syn_acks.push(at);
            }
            _ => {}
        }
        if t.final_ack.is_none() && self.final_ack_frame == Some(p.frame) {
            t.final_ack = Some(at);
        }
        // The server acknowledging more than the client's SYN: it holds the
        // connection as established.
        if role == Role::Server
            && flags & ACK != 0
            && flags & SYN == 0
            && t.server_acked_data.is_none()
        {
            if let Some(isn) = self.client_isn {
                if (p.ack_raw.wrapping_sub(isn.wrapping_add(1)) as i32) > 0 {
                    t.server_acked_data = Some(at);
                }
            }
        }
        if flags & FIN != 0 && t.fins[r].is_none() {
            t.fins[r] = Some(at);
        }
        let peer = role.peer().index();
        if t.fin_acks[peer].is_none()
            && self.fin_acked[peer].is_some_and(|(frame, _)| frame == p.frame)
        {
            t.fin_acks[peer] = Some(at);
        }
        if flags & RST != 0 && t.reset.is_none() {
            t.reset = Some(at);
            t.reset_state = Some(p.state_before);
            for side in 0..2 {
                if let (Some(sent), Some(acked)) = (self.sent_end[side], self.acked[side]) {
                    let out = sent.wrapping_sub(acked) as i32;
                    if out > 0 {
                        t.unacked_at_reset[side] = out as u64;
                    }
                }
            }
        }
        if p.analysis.has(Flag::Retransmission) && t.retransmissions.len() < MAX_HANDSHAKE_FRAMES {
            t.retransmissions.push(at);
        }
        let worst = t.worst_rto.map_or(0, |(_, rto)| rto);
        if p.analysis.has(Flag::Retransmission) && p.details.rto_ns > worst {
            t.worst_rto = Some((at, p.details.rto_ns));
        }
        // Zero windows, by the side advertising them; probes from the other.
        let zw = &mut t.zero_window[r];
        if flags & (SYN | FIN | RST) == 0 {
            if p.win_raw == 0 {
                if zw.open_since.is_none() {
                    zw.open_since = Some(at.time_ns);
                    zw.episodes += 1;
                    zw.first.get_or_insert(at);
                }
            } else if let Some(since) = zw.open_since.take() {
                zw.stalled_ns = zw.stalled_ns.saturating_add(at.time_ns - since);
            }
        }
        if p.analysis.has(Flag::ZeroWindowProbe) || p.insight.has(super::Insight::ZeroWindowProbe) {
            t.zero_window[role.peer().index()].probes += 1;
        }
        // Outstanding bytes, for the state at a reset.
        if !p.in_icmp_error {
            // Data only: an unacknowledged FIN is not unacknowledged data.
            let end = p.seq_raw.wrapping_add(p.len.unwrap_or(0));
            let higher = |cur: Option<u32>, v: u32| match cur {
                Some(c) if (v.wrapping_sub(c) as i32) <= 0 => Some(c),
                _ => Some(v),
            };
            self.sent_end[r] = higher(self.sent_end[r], end);
            if flags & ACK != 0 {
                let peer = role.peer().index();
                self.acked[peer] = higher(self.acked[peer], p.ack_raw);
            }
        }
    }

    fn handshake(&self) -> HandshakeOutcome {
        match (self.syn_frame, self.syn_ack_frame, self.final_ack_frame) {
            (None, None, _) => HandshakeOutcome::StartedBeforeCapture,
            (Some(_), None, _) if self.refused => HandshakeOutcome::Refused,
            (Some(_), None, _) => HandshakeOutcome::SynUnanswered,
            (_, Some(_), Some(_)) if self.syn_ack_after_final_ack => HandshakeOutcome::FinalAckLost,
            (_, Some(_), Some(_)) => HandshakeOutcome::Complete,
            (_, Some(_), None) => HandshakeOutcome::SynAckUnanswered,
        }
    }

    fn close(&self) -> (CloseStyle, Option<Role>) {
        let first_fin = match (self.fin[0], self.fin[1]) {
            (Some((a, _)), Some((b, _))) => Some(if a <= b { Role::Client } else { Role::Server }),
            (Some(_), None) => Some(Role::Client),
            (None, Some(_)) => Some(Role::Server),
            (None, None) => None,
        };
        let first_fin_frame = first_fin.and_then(|r| self.fin[r.index()]).map(|f| f.0);
        let closed_by = match (self.rst, first_fin, first_fin_frame) {
            (Some((r, rf)), Some(f), Some(ff)) => Some(if rf < ff { r } else { f }),
            (Some((r, _)), _, _) => Some(r),
            (None, f, _) => f,
        };
        let both = self.fin[0].zip(self.fin[1]);
        if let Some((_, rst_frame)) = self.rst {
            let second_fin = both.map(|(a, b)| a.0.max(b.0));
            if second_fin.is_none_or(|s| rst_frame < s) {
                return (CloseStyle::Reset, closed_by);
            }
        }
        let style = match (first_fin, both) {
            (Some(first), Some(_)) => {
                let second = first.peer();
                let second_fin_frame = self.fin[second.index()].map_or(0, |f| f.0);
                match self.fin_acked[first.index()] {
                    Some((frame, true)) if frame == second_fin_frame => CloseStyle::ThreePacket,
                    Some((frame, _)) if frame < second_fin_frame => CloseStyle::FourPacket,
                    _ => CloseStyle::Simultaneous,
                }
            }
            (Some(_), None) => CloseStyle::HalfClosed,
            _ if matches!(
                self.handshake(),
                HandshakeOutcome::SynUnanswered | HandshakeOutcome::SynAckUnanswered
            ) =>
            {
                CloseStyle::NeverEstablished
            }
            _ => CloseStyle::Open,
        };
        (style, closed_by)
    }

    /// The finished summary. Its lists and history are moved out, not
    /// copied: the builder is spent afterwards.
    pub fn finish(
        &mut self,
        info: &ConnectionInfo,
        completeness: u8,
        irtt_ns: Option<i64>,
        final_states: [TcpState; 2],
        reassembly: [DirectionStats; 2],
        capture_start: Timestamp,
    ) -> ConnectionSummary {
        let (close, closed_by) = self.close();
        let start = self.start.unwrap_or(info.start);
        // The verdict reads the history: before the history is moved out.
        let conn_state = self.zeek.conn_state();
        let history = self.zeek.take_history();
        let mut timeline = std::mem::take(&mut self.timeline);
        let end_ns = self.end.since(capture_start);
        for zw in &mut timeline.zero_window {
            if let Some(since) = zw.open_since.take() {
                zw.stalled_ns = zw.stalled_ns.saturating_add(end_ns - since);
                zw.still_zero = true;
            }
        }
        ConnectionSummary {
            conn: info.conn,
            client: info.client,
            server: info.server,
            roles: info.roles,
            first_frame: self.first_frame,
            last_frame: self.last_frame,
            start,
            end: self.end,
            start_rel_ns: start.since(capture_start),
            end_rel_ns: self.end.since(capture_start),
            packets: self.packets,
            bytes: self.bytes,
            handshake: self.handshake(),
            close,
            closed_by,
            reset_by: self.rst.map(|r| r.0),
            reset_after: self.reset_after,
            completeness,
            conn_state,
            history,
            irtt_ns,
            flag_counts: self.flag_counts,
            keep_alive_intervals_ns: std::mem::take(&mut self.keep_alive_intervals),
            keep_alives: self.keep_alives,
            final_states,
            reassembly,
            timeline,
        }
    }
}
