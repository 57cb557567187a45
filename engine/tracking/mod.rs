//! TCP tracking: connections, Wireshark's analysis, states, summaries and
//! reassembly, turned into the event stream.
//!
//! [`Tracker::process`] takes one decoded segment and emits its events. It
//! follows the order of Wireshark's `dissect_tcp()` step by step (conversation
//! lookup and port reuse, base sequence numbers, sequence analysis,
//! completeness, iRTT, options), because the agreement with tshark depends
//! on that order as much as on the rules themselves.

pub mod analysis;
mod slots;
pub mod state;
pub mod summary;
pub mod zeek;

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;

use crate::capture::Timestamp;
use crate::decode::flags::{ACK, FIN, RST, SYN};
use crate::decode::{TcpOptions, TcpSegment};
use crate::events::{DataChunk, Event, EventSink, Handshake};
use crate::reassembly::{Budget, Origin, Reassembler, ReassemblyLimits};
pub use analysis::Flag;
use analysis::{AnalysisFlags, FlowAnalysis, SegmentAnalysis, SegmentFacts, WindowScale};
use slots::Slots;
pub use state::TcpState;
use summary::SummaryBuilder;
pub use summary::{
    CloseStyle, ConnectionSummary, FrameTime, HandshakeOutcome, SummaryLists, Timeline, ZeroWindow,
};

/// An address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// IP address.
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    /// `1.2.3.4:80`, or `[::1]:80` for IPv6.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// Which way a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client to the server.
    ClientToServer,
    /// From the server to the client.
    ServerToClient,
}

impl Direction {
    /// `c2s` or `s2c`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::ClientToServer => "c2s",
            Direction::ServerToClient => "s2c",
        }
    }

    /// 0 for client to server, 1 for server to client.
    pub fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }

    /// The role that sends in this direction.
    pub fn sender(self) -> Role {
        match self {
            Direction::ClientToServer => Role::Client,
            Direction::ServerToClient => Role::Server,
        }
    }
}

/// A side of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that opened (or, mid-stream, is taken to have opened).
    Client,
    /// The other side.
    Server,
}

impl Role {
    /// `client` or `server`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }

    /// The other side.
    pub fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }

    /// 0 for the client, 1 for the server.
    pub fn index(self) -> usize {
        match self {
            Role::Client => 0,
            Role::Server => 1,
        }
    }
}

/// How the client and server were told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleEvidence {
    /// The client sent the first SYN without ACK.
    Syn,
    /// The server sent the first SYN-ACK.
    SynAck,
    /// No handshake seen: the side on a service port (below 32768, or below
    /// 1024) facing an ephemeral one is the server.
    Ports,
    /// No handshake and no telling port: the first packet's sender is the client.
    FirstPacket,
}

impl RoleEvidence {
    /// A stable name.
    pub fn name(self) -> &'static str {
        match self {
            RoleEvidence::Syn => "syn",
            RoleEvidence::SynAck => "syn_ack",
            RoleEvidence::Ports => "ports",
            RoleEvidence::FirstPacket => "first_packet",
        }
    }
}

/// What is known of a connection when it opens.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionInfo {
    /// Connection number, from 0 in order of first appearance (tshark's `tcp.stream`).
    pub conn: u64,
    /// The client's address.
    pub client: Endpoint,
    /// The server's address.
    pub server: Endpoint,
    /// How the roles were decided.
    pub roles: RoleEvidence,
    /// The frame that opened it.
    pub first_frame: u64,
    /// Its time.
    pub start: Timestamp,
    /// A new SYN reused the 4-tuple of an earlier connection.
    pub reused_ports: bool,
}

/// A reading of a packet that differs from tshark's, where tshark is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insight {
    /// A 0-byte segment one below the next sequence number sent into a zero
    /// window: Linux's zero-window probe, which tshark 4.0 calls keep-alive.
    ZeroWindowProbe,
    /// The answer to such a probe, which tshark 4.0 calls keep-alive ACK.
    ZeroWindowProbeAck,
    /// The TCP options were cut by the snaplen: tshark stops before it
    /// reports this packet's analysis flags; `analysis` is empty to agree.
    AnalysisHiddenBySnaplen,
    /// The same IPv4 packet (same identification, numbers, flags and
    /// window) captured twice: tshark calls the copy a retransmission, but
    /// the sender sent it once.
    DuplicateCapture,
    /// tshark calls this a fast retransmission, but no duplicate ACKs came
    /// before it: its duplicate-ACK counter was left at -1 (unsigned) by an
    /// "ACKed unseen segment". It is a plain retransmission.
    RetransmissionWithoutDuplicateAcks,
}

impl Insight {
    /// Every insight.
    pub const ALL: [Insight; 5] = [
        Insight::ZeroWindowProbe,
        Insight::ZeroWindowProbeAck,
        Insight::AnalysisHiddenBySnaplen,
        Insight::DuplicateCapture,
        Insight::RetransmissionWithoutDuplicateAcks,
    ];

    /// A stable name.
    pub fn name(self) -> &'static str {
        match self {
            Insight::ZeroWindowProbe => "zero_window_probe",
            Insight::ZeroWindowProbeAck => "zero_window_probe_ack",
            Insight::AnalysisHiddenBySnaplen => "analysis_hidden_by_snaplen",
            Insight::DuplicateCapture => "duplicate_capture",
            Insight::RetransmissionWithoutDuplicateAcks => "retransmission_without_duplicate_acks",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Insight::ZeroWindowProbe => 1,
            Insight::ZeroWindowProbeAck => 2,
            Insight::AnalysisHiddenBySnaplen => 4,
            Insight::DuplicateCapture => 8,
            Insight::RetransmissionWithoutDuplicateAcks => 16,
        }
    }
}

/// A set of [`Insight`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Insights(u8);

impl Insights {
    /// Adds one.
    pub fn set(&mut self, i: Insight) {
        self.0 |= i.bit();
    }

    /// Whether `i` is present.
    pub fn has(self, i: Insight) -> bool {
        self.0 & i.bit() != 0
    }

    /// The insights present.
    pub fn iter(self) -> impl Iterator<Item = Insight> {
        Insight::ALL.into_iter().filter(move |i| self.has(*i))
    }

    /// True when there are none.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Everything known about one TCP packet after analysis.
#[derive(Clone, Copy, Debug)]
pub struct PacketRecord<'a> {
    /// Frame number in the file.
    pub frame: u64,
    /// Capture time.
    pub time: Timestamp,
    /// Nanoseconds since the first frame of the file.
    pub rel_time_ns: i64,
    /// Connection number (tshark's `tcp.stream`).
    pub conn: u64,
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// Client to server or back.
    pub dir: Direction,
    /// TCP flag bits.
    pub flags: u16,
    /// Raw sequence number.
    pub seq_raw: u32,
    /// Raw acknowledgment field.
    pub ack_raw: u32,
    /// Relative sequence number, as tshark shows it.
    pub seq: u32,
    /// Relative acknowledgment number when ACK is set, else the raw field (as tshark).
    pub ack: u32,
    /// Relative sequence number after this segment (SYN and FIN count one).
    pub next_seq: Option<u32>,
    /// Payload length on the wire (`tcp.len`); `None` when unknowable.
    pub len: Option<u32>,
    /// Payload bytes the capture holds.
    pub payload: &'a [u8],
    /// How many payload bytes the capture holds (kept when the payload is not).
    pub captured_len: u32,
    /// Payload bytes on the wire that the capture lacks.
    pub missing: u32,
    /// Window field as sent.
    pub win_raw: u16,
    /// Window after scaling (`tcp.window_size`).
    pub win: u64,
    /// The scaling shift applied, when known.
    pub win_shift: Option<u8>,
    /// TCP header length claimed.
    pub header_len: u8,
    /// Parsed options.
    pub options: TcpOptions,
    /// The sender's TCP state after sending this packet.
    pub state: TcpState,
    /// The sender's TCP state before this packet, as its own previous packet
    /// showed it (CLOSED before a first SYN, LISTEN before a first SYN-ACK).
    pub state_before: TcpState,
    /// Analysis flags as tshark reports them.
    pub analysis: AnalysisFlags,
    /// The analysis details (duplicate-ACK number, acked frame, RTO, ...).
    pub details: SegmentAnalysis,
    /// The connection's initial RTT as known at this packet.
    pub irtt_ns: Option<i64>,
    /// Better readings where tshark's is wrong.
    pub insight: Insights,
    /// Wireshark's `tcp.completeness` as tshark prints it at this packet
    /// (the value before this packet).
    pub completeness_before: u8,
    /// A header quoted in an ICMP error, not a packet of the connection:
    /// it is numbered and filed as tshark files it, and changes nothing else.
    pub in_icmp_error: bool,
}

impl PacketRecord<'_> {
    /// The same record without the payload bytes, free of the packet's lifetime.
    pub fn detached(&self) -> PacketRecord<'static> {
        PacketRecord {
            frame: self.frame,
            time: self.time,
            rel_time_ns: self.rel_time_ns,
            conn: self.conn,
            src: self.src,
            dst: self.dst,
            dir: self.dir,
            flags: self.flags,
            seq_raw: self.seq_raw,
            ack_raw: self.ack_raw,
            seq: self.seq,
            ack: self.ack,
            next_seq: self.next_seq,
            len: self.len,
            payload: &[],
            captured_len: self.captured_len,
            missing: self.missing,
            win_raw: self.win_raw,
            win: self.win,
            win_shift: self.win_shift,
            header_len: self.header_len,
            options: self.options,
            state: self.state,
            state_before: self.state_before,
            analysis: self.analysis,
            details: self.details,
            irtt_ns: self.irtt_ns,
            insight: self.insight,
            completeness_before: self.completeness_before,
            in_icmp_error: self.in_icmp_error,
        }
    }
}

/// Counters for a whole run.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    /// Frames read.
    pub frames: u64,
    /// TCP packets analysed.
    pub tcp_packets: u64,
    /// Frames skipped, by reason name.
    pub skipped: Vec<(&'static str, u64)>,
    /// Connections seen.
    pub connections: u64,
    /// First frame's time.
    pub start: Option<Timestamp>,
    /// Last frame's time.
    pub end: Option<Timestamp>,
    /// Times a reassembly buffer cap was hit.
    pub reassembly_cap_hits: u64,
    /// Connections evicted because too many were open at once.
    pub evicted: u64,
    /// Finished connections summarised before their close delay ended,
    /// because too many were open at once (they are still remembered).
    pub rushed: u64,
    /// IP datagrams rebuilt from fragments.
    pub ip_reassembled: u64,
    /// Problems met (the capture cut short, say), as text.
    pub warnings: Vec<String>,
}

/// How long a finished connection stays quiet before its summary, by
/// default: 2 s of capture time.
pub const DEFAULT_CLOSE_DELAY_NS: i64 = 2_000_000_000;

/// Limits and switches for tracking.
#[derive(Clone, Copy, Debug)]
pub struct TrackerConfig {
    /// Reassembly buffer caps.
    pub reassembly: ReassemblyLimits,
    /// Nanoseconds of capture time a finished connection stays quiet before
    /// its summary is emitted (`--close-delay`): long enough for a late
    /// packet (a retransmitted FIN, a connection going on after a reset) to
    /// count in it. Each finished connection holds its state that long: on
    /// a capture of thousands of short connections a second, that is about
    /// half the peak memory and up to a third of the time (docs/analysis.md).
    pub close_delay_ns: i64,
    /// Seconds of capture time after which a summarised connection is
    /// forgotten; a packet on its 4-tuple after that opens a new connection.
    pub forget_after_secs: i64,
    /// Summarised connections remembered at most; beyond it the
    /// longest-finished are forgotten first, so memory stays bounded however
    /// many connections a capture holds.
    pub max_finished: usize,
    /// Connections open (not yet summarised) at most. Beyond it the least
    /// recently active is summarised early and forgotten (an eviction,
    /// counted and reported), so a flood of half-open connections cannot
    /// exhaust memory.
    pub max_open: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            reassembly: ReassemblyLimits::default(),
            close_delay_ns: DEFAULT_CLOSE_DELAY_NS,
            forget_after_secs: 600,
            max_finished: 200_000,
            max_open: 50_000,
        }
    }
}

/// A connection due for a step at a time: (when, connection number, slot),
/// taken out in that order so that what is due at a given time does not
/// depend on which other connections share the table (a shard of a parallel
/// run sees the same as a single thread).
type Due = (Timestamp, u64, usize);

/// A min-queue of [`Due`] entries. Packets come in time order, and so do
/// nearly all entries: those go to a FIFO, which costs nothing to keep in
/// order; the few that come out of order (a capture whose clock steps back,
/// a connection queued again) go to a heap. Taking the least of the two
/// heads gives exactly a priority queue's order, without the heap's cache
/// misses on tens of thousands of entries.
#[derive(Default)]
struct DueQueue {
    in_order: VecDeque<Due>,
    out_of_order: BinaryHeap<std::cmp::Reverse<Due>>,
}

impl DueQueue {
    fn push(&mut self, due: Due) {
        match self.in_order.back() {
            Some(last) if *last > due => self.out_of_order.push(std::cmp::Reverse(due)),
            _ => self.in_order.push_back(due),
        }
    }

    fn peek(&self) -> Option<Due> {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(a), Some(std::cmp::Reverse(b))) => Some(*a.min(b)),
            (Some(a), None) => Some(*a),
            (None, Some(std::cmp::Reverse(b))) => Some(*b),
            (None, None) => None,
        }
    }

    fn pop(&mut self) -> Option<Due> {
        let from_heap = match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(a), Some(std::cmp::Reverse(b))) => b < a,
            (None, Some(_)) => true,
            _ => false,
        };
        if from_heap {
            self.out_of_order.pop().map(|std::cmp::Reverse(d)| d)
        } else {
            self.in_order.pop_front()
        }
    }

    fn len(&self) -> usize {
        self.in_order.len() + self.out_of_order.len()
    }
}

/// Pops the next entry of `queue` whose connection has been quiet for
/// `quiet_ns` by `now`; a connection active since its entry was queued is
/// queued again for later.
fn next_quiet(
    queue: &mut DueQueue,
    conns: &Slots<Connection>,
    now: Timestamp,
    quiet_ns: i64,
) -> Option<usize> {
    while let Some((due, id, slot)) = queue.peek() {
        if now < due {
            return None;
        }
        queue.pop();
        let Some(conn) = conns[slot].as_ref().filter(|c| c.info.conn == id) else {
            continue;
        };
        let ready = Timestamp(conn.last_seen.nanos().saturating_add(quiet_ns));
        if now < ready {
            queue.push((ready, id, slot));
            continue;
        }
        return Some(slot);
    }
    None
}

/// One tracked connection.
struct Connection {
    info: ConnectionInfo,
    /// The first packet's sender; analysis flow 0 is the direction from it.
    a: Endpoint,
    client_is_a: bool,
    flows: [FlowAnalysis; 2],
    ts_mru_syn: Timestamp,
    ts_first_rtt: i64,
    completeness: u8,
    endpoints: [state::Endpoint; 2],
    /// Time of the latest packet.
    last_seen: Timestamp,
    /// Queued for its summary once it has been closed and quiet long enough.
    close_queued: bool,
    /// Summary and reassembly; gone once the summary was emitted. What stays
    /// (the analysis state, a few hundred bytes) keeps late packets of the
    /// connection numbered and analysed as tshark would.
    detail: Option<Box<Detail>>,
    /// Per flow: the last packet, to spot one captured twice.
    last_packet: [Option<PacketIdentity>; 2],
    /// Per flow: the last packet was a Linux zero-window probe.
    last_was_probe: [bool; 2],
    /// Per role: the state its latest packet showed.
    shown_state: [Option<TcpState>; 2],
    /// A packet came since the eviction clock last passed (second chance).
    touched: bool,
}

/// Relative numbers of one packet and its analysis.
struct Numbers {
    seq: u32,
    ack: u32,
    next_seq: Option<u32>,
    details: SegmentAnalysis,
}

/// The parts of a connection needed only until its summary is out.
struct Detail {
    reassembly: [Reassembler; 2],
    summary: SummaryBuilder,
}

/// What makes two captured packets the same packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PacketIdentity {
    time: Timestamp,
    ip_id: u16,
    seq: u32,
    ack: u32,
    len: u32,
    flags: u16,
    window: u16,
}

impl Connection {
    /// A new connection; `spare` is the box of a summarised connection's
    /// detail, reused to spare the allocator a large block per connection.
    fn new(
        info: ConnectionInfo,
        a: Endpoint,
        client_is_a: bool,
        flipped: bool,
        spare: Option<Box<Detail>>,
    ) -> Self {
        let detail = match spare {
            Some(mut boxed) => {
                boxed.reassembly = [Reassembler::default(), Reassembler::default()];
                boxed.summary.reset(flipped);
                boxed
            }
            None => Box::new(Detail {
                reassembly: [Reassembler::default(), Reassembler::default()],
                summary: SummaryBuilder::new(flipped),
            }),
        };
        Connection {
            info,
            a,
            client_is_a,
            flows: [FlowAnalysis::default(), FlowAnalysis::default()],
            ts_mru_syn: Timestamp(0),
            ts_first_rtt: 0,
            completeness: 0,
            endpoints: [state::Endpoint::default(), state::Endpoint::default()],
            last_seen: info.start,
            close_queued: false,
            detail: Some(detail),
            last_packet: [None; 2],
            last_was_probe: [false; 2],
            shown_state: [None; 2],
            touched: true,
        }
    }

    /// Flow index (0 = from `a`) of a packet sent by `src`.
    fn flow_of(&self, src: &Endpoint) -> usize {
        usize::from(*src != self.a)
    }

    /// Both endpoints are done: reset, or both FINs sent and acknowledged.
    fn finished(&self) -> bool {
        let done = |s: TcpState| matches!(s, TcpState::Closed | TcpState::TimeWait);
        done(self.endpoints[0].state(&self.endpoints[1]))
            && done(self.endpoints[1].state(&self.endpoints[0]))
    }

    /// Relative numbers and Wireshark's sequence analysis, as `dissect_tcp()`
    /// does them: set each direction's base, analyse, subtract the bases.
    /// A segment of unknown length is not analysed and keeps raw numbers.
    fn analyse_sequence(&mut self, fwd_ix: usize, seg: &SegmentFacts, len_known: bool) -> Numbers {
        if !len_known {
            return Numbers {
                seq: seg.seq,
                ack: seg.ack,
                next_seq: None,
                details: SegmentAnalysis::default(),
            };
        }
        let irtt = self.ts_first_rtt;
        let (fwd, rev) = pair_mut(&mut self.flows, fwd_ix);
        if !fwd.base_set {
            // Relative numbers start at 1 even when the SYN was not captured.
            fwd.base_seq = if seg.flags & SYN != 0 {
                fwd.base_from_syn = Some(seg.flags & ACK != 0);
                seg.seq
            } else {
                seg.seq.wrapping_sub(1)
            };
            fwd.base_set = true;
        }
        if !rev.base_set && seg.flags & ACK != 0 {
            rev.base_seq = seg.ack.wrapping_sub(1);
            rev.base_set = true;
        }
        let details = analysis::analyze_segment(fwd, rev, seg, irtt);
        let seq = seg.seq.wrapping_sub(fwd.base_seq);
        let ack = if seg.flags & ACK != 0 {
            seg.ack.wrapping_sub(rev.base_seq)
        } else {
            seg.ack
        };
        let syn_fin = u32::from(seg.flags & (SYN | FIN) != 0);
        Numbers {
            seq,
            ack,
            next_seq: Some(seq.wrapping_add(seg.len).wrapping_add(syn_fin)),
            details,
        }
    }

    /// Completeness, the SYN and FIN marks and iRTT, updated after the
    /// analysis as Wireshark updates them.
    fn bookkeeping(&mut self, fwd_ix: usize, flags: u16, is_new: bool, len: u32, time: Timestamp) {
        // A pure SYN counts only when it opens the conversation; the first
        // packet of a conversation adds nothing else.
        if is_new {
            if flags & (SYN | ACK) == SYN {
                self.completeness |= 1;
                if len > 0 {
                    self.completeness |= 8;
                }
            }
        } else {
            if flags & (SYN | ACK) == SYN | ACK {
                self.completeness |= 2;
            }
            if flags & (SYN | ACK) == ACK {
                self.completeness |= if len > 0 { 8 } else { 4 };
            }
            if flags & (FIN | ACK) == FIN | ACK {
                self.completeness |= 16;
            }
            if flags & RST != 0 {
                self.completeness |= 32;
            }
        }
        if flags & SYN != 0 {
            if flags & ACK == 0 {
                self.ts_mru_syn = time;
            }
            self.flows[fwd_ix].is_first_ack = true;
        }
        if flags & FIN != 0 && !self.flows[1 - fwd_ix].closing_initiator {
            self.flows[fwd_ix].closing_initiator = true;
        }
        if flags & (SYN | ACK) == ACK {
            // iRTT: the most recent SYN to the first pure ACK (a zero
            // interval reads as "unknown", as in Wireshark).
            if self.ts_mru_syn.nanos() != 0 && self.ts_first_rtt == 0 {
                self.ts_first_rtt = time.since(self.ts_mru_syn);
            }
            self.flows[fwd_ix].is_first_ack = false;
        }
    }

    /// Reads the options after the analysis, as Wireshark does. Returns
    /// whether Wireshark gets as far as printing the analysis flags: a
    /// snaplen cut in the header or options ends its dissection first.
    fn read_options(
        &mut self,
        fwd_ix: usize,
        flags: u16,
        fixed_part: bool,
        options: &TcpOptions,
    ) -> bool {
        if !fixed_part {
            return false;
        }
        let (fwd, rev) = pair_mut(&mut self.flows, fwd_ix);
        if let Some(ws) = options.effective_window_scale() {
            fwd.win_scale = WindowScale::Shift(ws);
        }
        fwd.store_sack(options.sack_blocks());
        if options.cut_by_snaplen {
            return false;
        }
        if flags & SYN != 0 {
            // A SYN without the option means no scaling either way; a
            // SYN-ACK with it after a SYN without it means none too.
            if fwd.win_scale == WindowScale::Unknown {
                fwd.win_scale = WindowScale::NotUsed;
                rev.win_scale = WindowScale::NotUsed;
            } else if flags & ACK != 0 && rev.win_scale == WindowScale::NotUsed {
                fwd.win_scale = WindowScale::NotUsed;
            }
        }
        true
    }

    /// Where tshark's reading is wrong, what the packet really is.
    fn insights(
        &mut self,
        fwd_ix: usize,
        seg: &TcpSegment<'_>,
        facts: &SegmentFacts,
        analysis_flags: AnalysisFlags,
        reported: AnalysisFlags,
        details: &SegmentAnalysis,
    ) -> Insights {
        let mut insight = Insights::default();
        let probe = analysis_flags.has(Flag::KeepAlive) && self.flows[1 - fwd_ix].window == 0;
        if probe {
            insight.set(Insight::ZeroWindowProbe);
        }
        if self.last_was_probe[1 - fwd_ix]
            && seg.payload_len == Some(0)
            && facts.flags & (SYN | FIN | RST) == 0
            && facts.window == 0
        {
            insight.set(Insight::ZeroWindowProbeAck);
        }
        self.last_was_probe[fwd_ix] = probe;
        if details.fast_retransmission_without_dup_acks && reported.has(Flag::FastRetransmission) {
            insight.set(Insight::RetransmissionWithoutDuplicateAcks);
        }
        let identity = seg.ip_id.map(|ip_id| PacketIdentity {
            time: facts.time,
            ip_id,
            seq: facts.seq,
            ack: facts.ack,
            len: facts.len,
            flags: facts.flags,
            window: facts.window as u16,
        });
        // An identification of 0 is what some stacks put in every DF
        // packet: then only a copy with the very same timestamp is a copy.
        let same_packet = match (identity, self.last_packet[fwd_ix]) {
            (Some(now), Some(before)) => {
                let key = |p: PacketIdentity| (p.ip_id, p.seq, p.ack, p.len, p.flags, p.window);
                key(now) == key(before) && (now.ip_id != 0 || now.time == before.time)
            }
            _ => false,
        };
        if same_packet && reported.has(Flag::Retransmission) {
            insight.set(Insight::DuplicateCapture);
        }
        self.last_packet[fwd_ix] = identity;
        insight
    }

    fn dir_of_flow(&self, flow: usize) -> Direction {
        if (flow == 0) == self.client_is_a {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        }
    }
}

/// An unordered pair of endpoints: one key for both directions.
///
/// Plain integers rather than two `Endpoint`s: comparing and hashing
/// `IpAddr` enums field by field cost more than the lookup itself, and this
/// runs for every packet. `v6` keeps an IPv4 address apart from the IPv6
/// address with the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ConnKey {
    /// Each address as two words (not a `u128`, whose 16-byte alignment
    /// would make every table entry a quarter larger).
    addr: [[u64; 2]; 2],
    port: [u16; 2],
    v6: [bool; 2],
}

impl std::hash::Hash for ConnKey {
    /// Two words for the hasher, where the derived hash would feed it six
    /// fields (an IPv4 endpoint fits a word exactly).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for side in 0..2 {
            let [lo, hi] = self.addr[side];
            let word = (lo ^ hi.rotate_left(17))
                ^ (u64::from(self.port[side]) << 32)
                ^ (u64::from(self.v6[side]) << 48);
            state.write_u64(word);
        }
    }
}

impl ConnKey {
    fn new(a: Endpoint, b: Endpoint) -> Self {
        fn bits(e: &Endpoint) -> (bool, u128, u16) {
            match e.ip {
                IpAddr::V4(v4) => (false, u128::from(u32::from(v4)), e.port),
                IpAddr::V6(v6) => (true, u128::from(v6), e.port),
            }
        }
        let (x, y) = (bits(&a), bits(&b));
        // Any fixed order will do, as long as both directions agree.
        let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
        let words = |v: u128| [v as u64, (v >> 64) as u64];
        ConnKey {
            addr: [words(lo.1), words(hi.1)],
            port: [lo.2, hi.2],
            v6: [lo.0, hi.0],
        }
    }
}

/// Splits borrows of the two flows: (sending, receiving).
fn pair_mut<T>(pair: &mut [T; 2], first: usize) -> (&mut T, &mut T) {
    let [x, y] = pair;
    if first == 0 {
        (x, y)
    } else {
        (y, x)
    }
}

/// Follows every TCP connection of a capture.
pub struct Tracker {
    config: TrackerConfig,
    conns: Slots<Connection>,
    free: Vec<usize>,
    /// Flow keys come from the network: a seeded hash (foldhash) keeps
    /// lookups fast without letting crafted keys collide on purpose.
    index: HashMap<ConnKey, usize, foldhash::fast::RandomState>,
    /// Finished connections waiting for their summary.
    summary_due: DueQueue,
    /// Summarised connections waiting to be forgotten.
    forget_due: DueQueue,
    /// Connections whose summaries are due now, in connection order.
    due_now: Vec<(u64, usize)>,
    /// Open connections in order of opening, for eviction: (number, slot).
    open_order: std::collections::VecDeque<(u64, usize)>,
    /// Connections open, not yet summarised.
    live: usize,
    /// Connections evicted to respect `max_open`.
    evicted: u64,
    /// Finished connections summarised before their close delay ended.
    rushed: u64,
    next_id: u64,
    budget: Budget,
    capture_start: Option<Timestamp>,
    packets: u64,
    /// Boxes of summarised connections' details, for new connections.
    // The boxes are the point: each becomes a connection's detail as it is.
    #[allow(clippy::vec_box)]
    spare_details: Vec<Box<Detail>>,
    /// Buffers of summarised connections' unacknowledged-segment lists.
    spare_segments: Vec<analysis::SegmentBuffer>,
}

/// Spare segment buffers kept at most (two per connection).
const MAX_SPARE_SEGMENT_BUFFERS: usize = 128;

/// Spare detail boxes kept at most: a few are enough for connections
/// that come and go; more would only hold memory.
const MAX_SPARE_DETAILS: usize = 64;

/// Which side of a connection the ports suggest is the server.
fn roles_by_ports(src: &Endpoint, dst: &Endpoint) -> (bool, RoleEvidence) {
    let (s, d) = (src.port, dst.port);
    let service = |p: u16, other: u16| (p < 32768 && other >= 32768) || (p < 1024 && other >= 1024);
    if service(d, s) {
        (true, RoleEvidence::Ports)
    } else if service(s, d) {
        (false, RoleEvidence::Ports)
    } else {
        (true, RoleEvidence::FirstPacket)
    }
}

impl Tracker {
    /// A tracker with no connections.
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            conns: Slots::default(),
            free: Vec::new(),
            index: HashMap::default(),
            summary_due: DueQueue::default(),
            forget_due: DueQueue::default(),
            due_now: Vec::new(),
            open_order: std::collections::VecDeque::new(),
            live: 0,
            evicted: 0,
            rushed: 0,
            next_id: 0,
            budget: Budget::default(),
            capture_start: None,
            packets: 0,
            spare_details: Vec::new(),
            spare_segments: Vec::new(),
        }
    }

    /// Sets the time "time" fields count from (the file's first frame).
    pub fn set_capture_start(&mut self, start: Timestamp) {
        self.capture_start.get_or_insert(start);
    }

    /// Connections evicted because too many were open at once.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Finished connections summarised before their close delay ended,
    /// because too many were open at once.
    pub fn rushed(&self) -> u64 {
        self.rushed
    }

    /// Makes room for a connection at `now`. A finished connection only
    /// waits out its close delay, in case a late packet comes: the one that
    /// finished first is summarised now instead, and remembered as after
    /// its wait, so that a late packet still gets its number and analysis
    /// and a SYN on its 4-tuple the `reused_ports` flag. With none waiting,
    /// the open connection least recently active is summarised early and
    /// forgotten (a clock sweep: a connection with a packet since the last
    /// pass gets a second chance). Returns false when no room can be made.
    fn evict_one(&mut self, now: Timestamp, sink: &mut dyn EventSink) -> std::io::Result<bool> {
        while let Some((_, id, slot)) = self.summary_due.pop() {
            let waiting = self.conns[slot]
                .as_ref()
                .is_some_and(|c| c.info.conn == id && c.detail.is_some());
            if waiting {
                self.summarise(slot, sink)?;
                self.remember(slot, now);
                self.rushed += 1;
                return Ok(true);
            }
        }
        let mut budget = 2 * self.open_order.len() + 1;
        while let Some((id, slot)) = self.open_order.pop_front() {
            budget -= 1;
            let Some(conn) = self.conns[slot].as_mut().filter(|c| c.info.conn == id) else {
                continue;
            };
            if conn.detail.is_none() {
                continue;
            }
            if conn.touched && budget > 0 {
                conn.touched = false;
                self.open_order.push_back((id, slot));
                continue;
            }
            self.summarise(slot, sink)?;
            self.forget(slot);
            self.evicted += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// Connections seen so far.
    pub fn connections(&self) -> u64 {
        self.next_id
    }

    /// TCP packets analysed so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Reassembly cap hits so far.
    pub fn reassembly_cap_hits(&self) -> u64 {
        self.budget.cap_hits
    }

    fn open(
        &mut self,
        src: Endpoint,
        dst: Endpoint,
        flags: u16,
        at: Origin,
        reused_ports: bool,
        sink: &mut dyn EventSink,
    ) -> std::io::Result<usize> {
        let (client_is_a, roles) = match flags & (SYN | ACK) {
            SYN => (true, RoleEvidence::Syn),
            f if f == SYN | ACK => (false, RoleEvidence::SynAck),
            _ => roles_by_ports(&src, &dst),
        };
        let (client, server) = if client_is_a { (src, dst) } else { (dst, src) };
        let info = ConnectionInfo {
            conn: self.next_id,
            client,
            server,
            roles,
            first_frame: at.frame,
            start: at.time,
            reused_ports,
        };
        while self.live >= self.config.max_open {
            if !self.evict_one(at.time, sink)? {
                break;
            }
        }
        self.next_id += 1;
        let spare = self.spare_details.pop();
        let mut conn = Connection::new(info, src, client_is_a, !client_is_a, spare);
        for flow in &mut conn.flows {
            if let Some(buffer) = self.spare_segments.pop() {
                flow.reuse(buffer);
            }
        }
        let slot = match self.free.pop() {
            Some(free) => free,
            None => self.conns.push_empty(),
        };
        self.conns[slot] = Some(conn);
        self.index.insert(ConnKey::new(src, dst), slot);
        self.live += 1;
        self.open_order.push_back((info.conn, slot));
        if self.open_order.len() > 2 * self.live + 1024 {
            // Drop the entries of connections summarised since.
            let conns = &self.conns;
            self.open_order.retain(|&(id, slot)| {
                conns[slot]
                    .as_ref()
                    .is_some_and(|c| c.info.conn == id && c.detail.is_some())
            });
        }
        sink.event(&Event::Opened(&info))?;
        Ok(slot)
    }

    /// Analyses one TCP segment of frame `frame` and emits its events.
    pub fn process(
        &mut self,
        frame: u64,
        time: Timestamp,
        seg: &TcpSegment<'_>,
        sink: &mut dyn EventSink,
    ) -> std::io::Result<()> {
        self.packets += 1;
        let capture_start = *self.capture_start.get_or_insert(time);
        self.retire_due(time, sink)?;
        let h = seg.header;
        let src = Endpoint {
            ip: seg.src,
            port: h.src_port(),
        };
        let dst = Endpoint {
            ip: seg.dst,
            port: h.dst_port(),
        };
        let flags = h.flags();
        let seq = h.seq();
        let ack = h.ack();
        let raw_window = h.window();
        let pure_syn = flags & (SYN | ACK) == SYN;

        // Conversation lookup: the latest connection on this 4-tuple.
        let key = ConnKey::new(src, dst);
        let mut is_new = false;
        let mut slot = match self.index.get(&key) {
            Some(&slot) => slot,
            None => {
                is_new = true;
                self.open(src, dst, flags, Origin { frame, time }, false, sink)?
            }
        };

        let mut reused = false;
        {
            let Some(conn) = self.conns[slot].as_mut() else {
                return Ok(());
            };
            let fwd = conn.flow_of(&src);
            // A SYN with a new ISN on a known 4-tuple starts a new connection
            // (Wireshark issue 15097); the same ISN is the same SYN again.
            if pure_syn && conn.flows[fwd].base_set {
                if seq != conn.flows[fwd].base_seq {
                    reused = true;
                } else {
                    conn.flows[fwd].restore_nextseq();
                }
            }
        }
        if reused {
            self.summarise(slot, sink)?;
            self.forget(slot);
            slot = self.open(src, dst, flags, Origin { frame, time }, true, sink)?;
        }

        let reassembly_limits = self.config.reassembly;
        let summary_after = self.close_delay_ns();
        let budget = &mut self.budget;
        let summary_due = &mut self.summary_due;
        let Some(conn) = self.conns[slot].as_mut() else {
            return Ok(());
        };
        if reused {
            conn.completeness = 1;
        }
        let fwd_ix = conn.flow_of(&src);
        let dir = conn.dir_of_flow(fwd_ix);
        let mut analysis_flags = AnalysisFlags::NONE;
        if reused {
            analysis_flags.set(Flag::ReusedPorts);
        }
        {
            let fwd = &mut conn.flows[fwd_ix];
            // A SYN-ACK with a new ISN re-bases its direction (issue 16944).
            if flags & (SYN | ACK) == SYN | ACK && fwd.base_set && seq != fwd.base_seq {
                fwd.base_seq = seq;
                analysis_flags.set(Flag::ReusedPorts);
            }
            fwd.clear_sack();
        }
        let completeness_before = conn.completeness;
        let facts = SegmentFacts {
            frame,
            time,
            seq,
            ack,
            len: seg.payload_len.unwrap_or(0),
            flags,
            window: u32::from(raw_window),
        };
        let numbers = conn.analyse_sequence(fwd_ix, &facts, seg.payload_len.is_some());
        let mut details = numbers.details;
        analysis_flags.0 |= details.flags.0;
        details.flags = analysis_flags;

        let win_shift = if flags & SYN == 0 {
            conn.flows[fwd_ix].shift()
        } else {
            None
        };
        let win = u64::from(raw_window) << win_shift.unwrap_or(0);

        let header_len = h.header_len();
        let options = h.options();
        // Wireshark gives up on a header shorter than 20 bytes right after
        // the analysis: no completeness, no SYN/FIN bookkeeping, no options.
        let shown = header_len >= 20 && {
            conn.bookkeeping(fwd_ix, flags, is_new, facts.len, time);
            conn.read_options(fwd_ix, flags, h.fixed_part_captured(), &options)
        };
        let reported = if shown {
            analysis_flags.as_reported()
        } else {
            AnalysisFlags::NONE
        };
        let mut insight = if seg.in_icmp_error {
            Insights::default()
        } else {
            conn.insights(fwd_ix, seg, &facts, analysis_flags, reported, &details)
        };
        if !shown && !analysis_flags.is_empty() && seg.payload_len.is_some() && header_len >= 20 {
            insight.set(Insight::AnalysisHiddenBySnaplen);
        }

        let len = seg.payload_len;
        let wire_len = len.unwrap_or(0);
        let (state_before, state) = {
            // "Before" is what the sender's own previous packet showed: a
            // side's state is best known from what it sends (a server that
            // resends its SYN-ACK is in SYN_RECEIVED, whatever it was
            // presumed to have received since).
            let shown = conn.shown_state[dir.index()];
            let (sender, receiver) = pair_mut(&mut conn.endpoints, dir.index());
            let before = match shown {
                Some(s) => s,
                None if flags & (SYN | ACK) == SYN => TcpState::Closed,
                None if flags & SYN != 0 => TcpState::Listen,
                None => sender.state(receiver),
            };
            let after = if seg.in_icmp_error {
                sender.state(receiver)
            } else {
                state::on_segment(sender, receiver, flags, seq, ack, wire_len)
            };
            (before, after)
        };
        if !seg.in_icmp_error {
            conn.shown_state[dir.index()] = Some(state);
        }
        let irtt_ns = (conn.ts_first_rtt != 0).then_some(conn.ts_first_rtt);
        let record = PacketRecord {
            frame,
            time,
            rel_time_ns: time.since(capture_start),
            conn: conn.info.conn,
            src,
            dst,
            dir,
            flags,
            seq_raw: seq,
            ack_raw: ack,
            seq: numbers.seq,
            ack: numbers.ack,
            next_seq: numbers.next_seq,
            len,
            payload: seg.payload,
            captured_len: seg.payload.len() as u32,
            missing: seg.missing_bytes(),
            win_raw: raw_window,
            win,
            win_shift,
            header_len: header_len as u8,
            options,
            state,
            state_before,
            analysis: reported,
            details,
            irtt_ns,
            insight,
            completeness_before,
            in_icmp_error: seg.in_icmp_error,
        };
        if seg.in_icmp_error {
            return sink.event(&Event::Packet(&record));
        }
        conn.last_seen = time;
        conn.touched = true;
        let handshake = match conn.detail.as_mut() {
            Some(d) => d.summary.packet(&record, conn.info.conn),
            None => None,
        };
        sink.event(&Event::Packet(&record))?;
        if let Some(hs) = handshake {
            let event = Handshake { irtt_ns, ..hs };
            sink.event(&Event::Handshake(&event))?;
        }
        if !conn.close_queued && conn.detail.is_some() && conn.finished() {
            conn.close_queued = true;
            summary_due.push((
                Timestamp(time.nanos().saturating_add(summary_after)),
                conn.info.conn,
                slot,
            ));
        }
        let Some(detail) = conn.detail.as_deref_mut() else {
            return Ok(());
        };

        // Reassembly: the sender's bytes, then what the ACK says of the peer's.
        let conn_id = conn.info.conn;
        let mut emit_error = None;
        let origin = Origin { frame, time };
        let summary = &mut detail.summary;
        let mut emit = |chunk: crate::reassembly::Chunk<'_>, from: Origin, d: Direction| {
            if let crate::reassembly::Chunk::Gap { .. } = chunk {
                summary.gap(d);
            }
            if emit_error.is_none() {
                let data = DataChunk {
                    conn: conn_id,
                    dir: d,
                    chunk,
                    frame: from.frame,
                    time: from.time,
                };
                if let Err(e) = sink.event(&Event::Data(&data)) {
                    emit_error = Some(e);
                }
            }
        };
        let send_ix = dir.index();
        if flags & RST == 0 {
            detail.reassembly[send_ix].segment(
                seq,
                flags & SYN != 0,
                flags & FIN != 0,
                seg.payload,
                wire_len,
                origin,
                &reassembly_limits,
                budget,
                &mut |c, o| emit(c, o, dir),
            );
            if flags & ACK != 0 {
                let back = if dir == Direction::ClientToServer {
                    Direction::ServerToClient
                } else {
                    Direction::ClientToServer
                };
                detail.reassembly[1 - send_ix]
                    .peer_ack(ack, origin, budget, &mut |c, o| emit(c, o, back));
            }
        }
        if let Some(e) = emit_error {
            return Err(e);
        }
        Ok(())
    }

    fn close_delay_ns(&self) -> i64 {
        self.config.close_delay_ns.max(0)
    }

    /// How long a summarised connection is remembered once quiet.
    fn forget_after_ns(&self) -> i64 {
        self.config.forget_after_secs.saturating_mul(1_000_000_000)
    }

    /// Time passes without a packet for this table (a packet of another
    /// shard): retires what is due, exactly as a packet at `now` would.
    pub fn tick(&mut self, now: Timestamp, sink: &mut dyn EventSink) -> std::io::Result<()> {
        self.retire_due(now, sink)
    }

    /// Whether a summary or a forgetting is due by `now`: what [`Tracker::tick`]
    /// would do anything for.
    #[inline]
    pub fn due(&self, now: Timestamp) -> bool {
        let due = |q: &DueQueue| q.peek().is_some_and(|(at, _, _)| at <= now);
        due(&self.summary_due) || due(&self.forget_due)
    }

    /// Emits the summaries that are due and forgets connections long quiet.
    fn retire_due(&mut self, now: Timestamp, sink: &mut dyn EventSink) -> std::io::Result<()> {
        // Nearly always nothing is due: say so before any other work, as
        // this runs for every packet (a parallel run's for every worker).
        if !self.due(now) {
            return Ok(());
        }
        let quiet = self.close_delay_ns();
        // Everything due now, summarised in connection order: the order
        // then does not depend on when each connection was queued.
        let mut due = std::mem::take(&mut self.due_now);
        while let Some(slot) = next_quiet(&mut self.summary_due, &self.conns, now, quiet) {
            if let Some(conn) = &self.conns[slot] {
                due.push((conn.info.conn, slot));
            }
        }
        due.sort_unstable();
        for &(_, slot) in &due {
            self.summarise(slot, sink)?;
            self.remember(slot, now);
        }
        due.clear();
        self.due_now = due;
        let forget_after = self.forget_after_ns();
        while let Some(slot) = next_quiet(&mut self.forget_due, &self.conns, now, forget_after) {
            self.forget(slot);
        }
        Ok(())
    }

    /// Keeps the connection in `slot`, summarised at `now`, for its late
    /// packets: until it has been quiet for `forget_after_secs`, or until
    /// `max_finished` others were summarised after it.
    fn remember(&mut self, slot: usize, now: Timestamp) {
        if let Some(conn) = &self.conns[slot] {
            let at = Timestamp(now.nanos().saturating_add(self.forget_after_ns()));
            self.forget_due.push((at, conn.info.conn, slot));
        }
        while self.forget_due.len() > self.config.max_finished {
            if let Some((_, old_id, old_slot)) = self.forget_due.pop() {
                if self.conns[old_slot]
                    .as_ref()
                    .is_some_and(|c| c.info.conn == old_id)
                {
                    self.forget(old_slot);
                }
            }
        }
    }

    /// Drops the connection in `slot` from the table.
    fn forget(&mut self, slot: usize) {
        if let Some(conn) = self.conns[slot].take() {
            let key = ConnKey::new(conn.info.client, conn.info.server);
            if self.index.get(&key) == Some(&slot) {
                self.index.remove(&key);
            }
            self.free.push(slot);
        }
    }

    /// Emits the summary of the connection in `slot` (if not yet emitted)
    /// and drops what only the summary needed.
    fn summarise(&mut self, slot: usize, sink: &mut dyn EventSink) -> std::io::Result<()> {
        let Some(conn) = self.conns[slot].as_mut() else {
            return Ok(());
        };
        let Some(mut detail) = conn.detail.take() else {
            return Ok(());
        };
        self.live = self.live.saturating_sub(1);
        for flow in &mut conn.flows {
            if let Some(buffer) = flow.shrink() {
                if self.spare_segments.len() < MAX_SPARE_SEGMENT_BUFFERS {
                    self.spare_segments.push(buffer);
                }
            }
        }
        let origin = Origin {
            frame: detail.summary.last_frame(),
            time: detail.summary.last_time(),
        };
        let conn_id = conn.info.conn;
        let mut result = Ok(());
        for (ix, d) in [Direction::ClientToServer, Direction::ServerToClient]
            .into_iter()
            .enumerate()
        {
            let summary = &mut detail.summary;
            detail.reassembly[ix].flush(origin, &mut self.budget, &mut |chunk, from| {
                if let crate::reassembly::Chunk::Gap { .. } = chunk {
                    summary.gap(d);
                }
                if result.is_ok() {
                    let data = DataChunk {
                        conn: conn_id,
                        dir: d,
                        chunk,
                        frame: from.frame,
                        time: from.time,
                    };
                    result = sink.event(&Event::Data(&data));
                }
            });
        }
        result?;
        let irtt = (conn.ts_first_rtt != 0).then_some(conn.ts_first_rtt);
        let capture_start = self.capture_start.unwrap_or(conn.info.start);
        let summary = detail.summary.finish(
            &conn.info,
            conn.completeness,
            irtt,
            [
                conn.endpoints[0].state(&conn.endpoints[1]),
                conn.endpoints[1].state(&conn.endpoints[0]),
            ],
            [detail.reassembly[0].stats, detail.reassembly[1].stats],
            capture_start,
        );
        let back = sink.closed_owned(summary)?;
        if self.spare_details.len() < MAX_SPARE_DETAILS {
            if let Some(lists) = back {
                detail.summary.recycle(lists);
            }
            self.spare_details.push(detail);
        }
        Ok(())
    }

    /// Ends the capture: every connection still tracked is summarised, in
    /// connection order.
    pub fn finish(&mut self, sink: &mut dyn EventSink) -> std::io::Result<()> {
        let mut slots: Vec<(u64, usize)> = self
            .conns
            .iter()
            .enumerate()
            .filter_map(|(slot, c)| c.as_ref().map(|c| (c.info.conn, slot)))
            .collect();
        slots.sort_unstable();
        for (_, slot) in slots {
            self.summarise(slot, sink)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
