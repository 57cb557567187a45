//! Wireshark's TCP sequence analysis, rule for rule.
//!
//! This is `tcp_analyze_sequence_number()` of Wireshark 4.0 (packet-tcp.c),
//! kept in its check order so that every packet gets the same
//! `tcp.analysis.*` flags as tshark 4.0. Each rule below names its Wireshark
//! counterpart; `../shared/reference/anchors.md` §2 states them in prose.
//! Numbers are raw (absolute) sequence numbers, compared modulo 2^32; like
//! Wireshark, a `nextseq` or `lastack` of 0 means "not seen yet".

use crate::capture::Timestamp;
use crate::decode::flags::{ACK, FIN, PSH, RST, SYN};

/// One analysis flag, as a bit in [`AnalysisFlags`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Flag {
    /// `tcp.analysis.retransmission`: data (or SYN/FIN) that does not advance
    /// the sequence space. Also set for fast and spurious retransmissions,
    /// as tshark reports them.
    Retransmission = 1 << 0,
    /// `tcp.analysis.fast_retransmission`: after two or more duplicate ACKs.
    FastRetransmission = 1 << 1,
    /// `tcp.analysis.spurious_retransmission`: data the receiver had already ACKed.
    SpuriousRetransmission = 1 << 2,
    /// `tcp.analysis.out_of_order`: arrives soon after a higher sequence number.
    OutOfOrder = 1 << 3,
    /// `tcp.analysis.lost_segment`: a sequence gap before this segment.
    LostSegment = 1 << 4,
    /// `tcp.analysis.ack_lost_segment`: acknowledges bytes never captured.
    AckLostSegment = 1 << 5,
    /// `tcp.analysis.keep_alive`: 0 or 1 byte at next expected − 1.
    KeepAlive = 1 << 6,
    /// `tcp.analysis.keep_alive_ack`: answers a keep-alive.
    KeepAliveAck = 1 << 7,
    /// `tcp.analysis.duplicate_ack`: repeats the previous ACK.
    DuplicateAck = 1 << 8,
    /// `tcp.analysis.zero_window`: advertises a zero receive window.
    ZeroWindow = 1 << 9,
    /// `tcp.analysis.zero_window_probe`: one byte into a zero window.
    ZeroWindowProbe = 1 << 10,
    /// `tcp.analysis.zero_window_probe_ack`: answers a zero-window probe.
    ZeroWindowProbeAck = 1 << 11,
    /// `tcp.analysis.window_update`: only the window changed.
    WindowUpdate = 1 << 12,
    /// `tcp.analysis.window_full`: fills the receiver's advertised window.
    WindowFull = 1 << 13,
    /// `tcp.analysis.reused_ports`: a new SYN on a 4-tuple already in use.
    ReusedPorts = 1 << 14,
}

impl Flag {
    /// Every flag, in the order the JSON lists them.
    pub const ALL: [Flag; 15] = [
        Flag::Retransmission,
        Flag::FastRetransmission,
        Flag::SpuriousRetransmission,
        Flag::OutOfOrder,
        Flag::LostSegment,
        Flag::AckLostSegment,
        Flag::KeepAlive,
        Flag::KeepAliveAck,
        Flag::DuplicateAck,
        Flag::ZeroWindow,
        Flag::ZeroWindowProbe,
        Flag::ZeroWindowProbeAck,
        Flag::WindowUpdate,
        Flag::WindowFull,
        Flag::ReusedPorts,
    ];

    /// The stable name, Wireshark's field name without `tcp.analysis.`.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Retransmission => "retransmission",
            Flag::FastRetransmission => "fast_retransmission",
            Flag::SpuriousRetransmission => "spurious_retransmission",
            Flag::OutOfOrder => "out_of_order",
            Flag::LostSegment => "lost_segment",
            Flag::AckLostSegment => "ack_lost_segment",
            Flag::KeepAlive => "keep_alive",
            Flag::KeepAliveAck => "keep_alive_ack",
            Flag::DuplicateAck => "duplicate_ack",
            Flag::ZeroWindow => "zero_window",
            Flag::ZeroWindowProbe => "zero_window_probe",
            Flag::ZeroWindowProbeAck => "zero_window_probe_ack",
            Flag::WindowUpdate => "window_update",
            Flag::WindowFull => "window_full",
            Flag::ReusedPorts => "reused_ports",
        }
    }

    /// Looks a flag up by its stable name.
    pub fn from_name(name: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A set of [`Flag`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AnalysisFlags(pub u32);

impl AnalysisFlags {
    /// No flags.
    pub const NONE: AnalysisFlags = AnalysisFlags(0);

    /// Whether `flag` is set.
    pub fn has(self, flag: Flag) -> bool {
        self.0 & flag as u32 != 0
    }

    /// Sets `flag`.
    pub fn set(&mut self, flag: Flag) {
        self.0 |= flag as u32;
    }

    /// True when no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags that are set, in [`Flag::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.into_iter().filter(move |f| self.has(*f))
    }

    /// The flags as tshark reports them: a fast or spurious retransmission is
    /// a retransmission too (tshark adds that expert item to both).
    pub fn as_reported(self) -> AnalysisFlags {
        let mut out = self;
        if self.has(Flag::FastRetransmission) || self.has(Flag::SpuriousRetransmission) {
            out.set(Flag::Retransmission);
        }
        out
    }
}

/// Wireshark's limit on remembered unacknowledged segments per direction.
pub const MAX_UNACKED_SEGMENTS: usize = 10_000;

/// An empty buffer for a flow's unacknowledged segments, passed from a
/// summarised connection to a new one: most connections need one, and
/// allocating and freeing it for each costs more than the analysis.
#[derive(Debug)]
pub struct SegmentBuffer(Vec<Unacked>);

/// A segment sent but not yet acknowledged.
#[derive(Clone, Copy, Debug)]
struct Unacked {
    frame: u64,
    seq: u32,
    nextseq: u32,
    time: Timestamp,
}

/// Window scale knowledge for one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowScale {
    /// No SYN option seen yet (Wireshark's -1).
    Unknown,
    /// The handshake showed scaling is not used (Wireshark's -2).
    NotUsed,
    /// Shift count in effect.
    Shift(u8),
}

/// Sequence-analysis state of one direction (Wireshark's `tcp_flow_t` plus
/// its `tcp_analyze_seq_flow_info_t`).
#[derive(Clone, Debug)]
pub struct FlowAnalysis {
    /// Raw sequence number that relative number 0 maps to.
    pub base_seq: u32,
    /// Whether `base_seq` is set.
    pub base_set: bool,
    /// A pure SYN (`Some(false)`) or a SYN-ACK (`Some(true)`) set the base.
    pub base_from_syn: Option<bool>,
    /// What is known of this direction's window scaling.
    pub win_scale: WindowScale,
    /// Last raw window advertised (u32::MAX before any).
    pub window: u32,
    /// No pure ACK sent since this direction's SYN (the window of such a
    /// packet is not scaled when testing "window full").
    pub is_first_ack: bool,
    nextseq: u32,
    nextseq_frame: u64,
    nextseq_time: Timestamp,
    maxseqtobeacked: u32,
    lastack: u32,
    lastack_time: Timestamp,
    lastnondupack: u64,
    /// Unsigned as in Wireshark: its -1 ("ACKed unseen segment already
    /// reported") is u32::MAX, which also passes the `>= 2` fast
    /// retransmission test.
    dupacknum: u32,
    lastsegmentflags: AnalysisFlags,
    /// Unacked segments, oldest first.
    segments: Vec<Unacked>,
    valid_bif: bool,
    push_bytes_sent: u32,
    push_set_last: bool,
    /// SACK blocks of this direction's latest segment (Wireshark keeps at most 3).
    sack: [(u32, u32); 3],
    sack_count: u8,
    /// This direction sent the first FIN.
    pub closing_initiator: bool,
}

impl Default for FlowAnalysis {
    fn default() -> Self {
        FlowAnalysis {
            base_seq: 0,
            base_set: false,
            base_from_syn: None,
            win_scale: WindowScale::Unknown,
            window: u32::MAX,
            is_first_ack: false,
            nextseq: 0,
            nextseq_frame: 0,
            nextseq_time: Timestamp(0),
            maxseqtobeacked: 0,
            lastack: 0,
            lastack_time: Timestamp(0),
            lastnondupack: 0,
            dupacknum: 0,
            lastsegmentflags: AnalysisFlags::NONE,
            segments: Vec::new(),
            valid_bif: true,
            push_bytes_sent: 0,
            push_set_last: false,
            sack: [(0, 0); 3],
            sack_count: 0,
            closing_initiator: false,
        }
    }
}

impl FlowAnalysis {
    /// The next sequence number expected (raw), 0 when unknown.
    pub fn next_seq(&self) -> u32 {
        self.nextseq
    }

    /// The last acknowledgment number sent in this direction (raw).
    pub fn last_ack(&self) -> u32 {
        self.lastack
    }

    /// Shift applied to this direction's advertised windows, if known.
    pub fn shift(&self) -> Option<u8> {
        match self.win_scale {
            WindowScale::Shift(s) => Some(s),
            _ => None,
        }
    }

    /// Records the SACK blocks of this direction's latest segment.
    pub fn store_sack(&mut self, blocks: &[(u32, u32)]) {
        let n = blocks.len().min(3);
        self.sack[..n].copy_from_slice(&blocks[..n]);
        self.sack_count = n as u8;
    }

    /// Forgets SACK blocks (done at the start of each segment).
    pub fn clear_sack(&mut self) {
        self.sack_count = 0;
    }

    /// Releases memory kept for segments no longer expected to matter. An
    /// empty list's buffer is handed back, for another flow to reuse.
    pub fn shrink(&mut self) -> Option<SegmentBuffer> {
        if self.segments.is_empty() && self.segments.capacity() > 0 {
            return Some(SegmentBuffer(std::mem::take(&mut self.segments)));
        }
        self.segments.shrink_to_fit();
        None
    }

    /// Gives this (new) flow an empty buffer for its unacknowledged
    /// segments, from a flow that no longer needs one.
    pub fn reuse(&mut self, buffer: SegmentBuffer) {
        if self.segments.capacity() == 0 {
            self.segments = buffer.0;
            self.segments.clear();
        }
    }

    /// Restores `nextseq` after a SYN repeated with the same ISN
    /// (Wireshark issue 17616).
    pub fn restore_nextseq(&mut self) {
        self.nextseq = self.maxseqtobeacked;
    }
}

/// One segment, as the analysis sees it.
#[derive(Clone, Copy, Debug)]
pub struct SegmentFacts {
    /// Frame number.
    pub frame: u64,
    /// Capture time.
    pub time: Timestamp,
    /// Raw sequence number.
    pub seq: u32,
    /// Raw acknowledgment field (whether or not ACK is set).
    pub ack: u32,
    /// Payload length on the wire.
    pub len: u32,
    /// TCP flag bits.
    pub flags: u16,
    /// Raw window field.
    pub window: u32,
}

/// What the analysis found about one segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentAnalysis {
    /// The flags raised, before [`AnalysisFlags::as_reported`].
    pub flags: AnalysisFlags,
    /// Running duplicate-ACK number (1 for the first duplicate).
    pub dup_ack_num: u32,
    /// The frame whose ACK this one repeats.
    pub dup_ack_frame: u64,
    /// The frame this segment acknowledges exactly (`tcp.analysis.acks_frame`).
    pub acks_frame: u64,
    /// Time since that frame, in nanoseconds (`tcp.analysis.ack_rtt`).
    pub ack_rtt_ns: i64,
    /// For a retransmission: time since the original, in nanoseconds.
    pub rto_ns: i64,
    /// For a retransmission: the frame taken as the original.
    pub rto_frame: u64,
    /// Bytes sent and not yet acknowledged after this segment.
    pub bytes_in_flight: u32,
    /// Bytes sent since the last PSH.
    pub push_bytes_sent: u32,
    /// A fast retransmission raised only because Wireshark's duplicate-ACK
    /// counter held its "ACKed unseen segment" mark (-1 in an unsigned
    /// field), not because duplicate ACKs were seen.
    pub fast_retransmission_without_dup_acks: bool,
}

#[inline]
fn gt_seq(x: u32, y: u32) -> bool {
    (y.wrapping_sub(x) as i32) < 0
}

#[inline]
fn lt_seq(x: u32, y: u32) -> bool {
    (x.wrapping_sub(y) as i32) < 0
}

#[inline]
fn le_seq(x: u32, y: u32) -> bool {
    (x.wrapping_sub(y) as i32) <= 0
}

/// Runs Wireshark's rules on one segment. `fwd` is the sending direction,
/// `rev` the other; `irtt_ns` is the connection's initial RTT so far (0 when
/// unknown), the out-of-order threshold.
pub fn analyze_segment(
    fwd: &mut FlowAnalysis,
    rev: &mut FlowAnalysis,
    seg: &SegmentFacts,
    irtt_ns: i64,
) -> SegmentAnalysis {
    let mut ta = SegmentAnalysis::default();
    let SegmentFacts {
        frame,
        time,
        seq,
        ack,
        len: seglen,
        flags,
        window,
    } = *seg;
    let syn_fin_rst = flags & (SYN | FIN | RST) != 0;

    if flags & ACK != 0 {
        rev.valid_bif = true;
    }

    'fwd: {
        // ZERO WINDOW PROBE: one byte at nextseq into a zero window. Skips
        // the other forward checks.
        if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
            ta.flags.set(Flag::ZeroWindowProbe);
            break 'fwd;
        }

        // ZERO WINDOW: window 0 on a segment without SYN/FIN/RST.
        if window == 0 && !syn_fin_rst {
            ta.flags.set(Flag::ZeroWindow);
        }

        // LOST SEGMENT: beyond nextseq (RSTs are not checked).
        if fwd.nextseq != 0 && gt_seq(seq, fwd.nextseq) && flags & RST == 0 {
            ta.flags.set(Flag::LostSegment);
            fwd.valid_bif = false;
        }

        // KEEP ALIVE: 0 or 1 byte at nextseq - 1.
        if seglen <= 1 && seq == fwd.nextseq.wrapping_sub(1) && !syn_fin_rst {
            ta.flags.set(Flag::KeepAlive);
        }

        // WINDOW UPDATE: nothing but a new window.
        if seglen == 0
            && window != 0
            && window != fwd.window
            && seq == fwd.nextseq
            && ack == fwd.lastack
            && !syn_fin_rst
        {
            ta.flags.set(Flag::WindowUpdate);
        }

        // WINDOW FULL: the data reaches the edge of the receiver's window.
        if seglen > 0 && rev.win_scale != WindowScale::Unknown && !syn_fin_rst {
            let shift = if rev.is_first_ack {
                0
            } else {
                match rev.win_scale {
                    WindowScale::Shift(s) => u32::from(s),
                    _ => 0,
                }
            };
            let edge = rev.lastack.wrapping_add(rev.window.wrapping_shl(shift));
            if seq.wrapping_add(seglen) == edge {
                ta.flags.set(Flag::WindowFull);
            }
        }

        let repeats_ack = seglen == 0 && seq == fwd.nextseq && ack == fwd.lastack && !syn_fin_rst;

        // KEEP ALIVE ACK: repeats the ACK right after a keep-alive.
        if repeats_ack
            && window != 0
            && window == fwd.window
            && rev.lastsegmentflags.has(Flag::KeepAlive)
        {
            ta.flags.set(Flag::KeepAliveAck);
            break 'fwd;
        }

        // ZERO WINDOW PROBE ACK: repeats the zero window after a probe.
        if repeats_ack
            && window == 0
            && window == fwd.window
            && rev.lastsegmentflags.has(Flag::ZeroWindowProbe)
        {
            ta.flags.set(Flag::ZeroWindowProbeAck);
            break 'fwd;
        }

        // DUPLICATE ACK: same window, seq and ack, no data.
        if repeats_ack && window != 0 && window == fwd.window {
            fwd.dupacknum = if fwd.dupacknum == u32::MAX {
                1
            } else {
                fwd.dupacknum.wrapping_add(1)
            };
            ta.flags.set(Flag::DuplicateAck);
            ta.dup_ack_num = fwd.dupacknum;
            ta.dup_ack_frame = fwd.lastnondupack;
        }
    }

    // finished_fwd: a new ACK number resets the duplicate count.
    if ack != fwd.lastack {
        fwd.lastnondupack = frame;
        fwd.dupacknum = 0;
    }

    // ACKED LOST PACKET: acknowledges beyond what the other side was seen to send.
    if rev.maxseqtobeacked != 0 && gt_seq(ack, rev.maxseqtobeacked) && flags & ACK != 0 {
        if lt_seq(rev.maxseqtobeacked, rev.nextseq) {
            rev.maxseqtobeacked = rev.nextseq;
            ta.flags.set(Flag::AckLostSegment);
        } else {
            if rev.dupacknum == 0 {
                ta.flags.set(Flag::AckLostSegment);
            }
            rev.dupacknum = u32::MAX;
        }
    }

    // RETRANSMISSION / FAST RETRANSMISSION / OUT-OF-ORDER: data, SYN or FIN
    // that does not advance the sequence space. Never for keep-alives.
    if (seglen > 0 || flags & (SYN | FIN) != 0) && !ta.flags.has(Flag::KeepAlive) {
        let mut seq_not_advanced = fwd.nextseq != 0 && lt_seq(seq, fwd.nextseq);
        // After a zero-window probe, new data starts one byte early.
        if seglen > 1 && fwd.nextseq.wrapping_sub(1) == seq {
            seq_not_advanced = false;
        }
        'family: {
            // SPURIOUS: the receiver had already acknowledged all of it.
            if seglen > 0 && rev.lastack != 0 && le_seq(seq.wrapping_add(seglen), rev.lastack) {
                ta.flags.set(Flag::SpuriousRetransmission);
                break 'family;
            }
            // FAST RETRANSMISSION (checked first: tcp_fastrt_precedence is on
            // by default): two or more duplicate ACKs for this seq, within 20 ms.
            // Wireshark holds the interval unsigned, so time running backwards
            // never counts as "within".
            let since_dup = time.since(rev.lastack_time) as u64;
            if seq_not_advanced
                && rev.dupacknum >= 2
                && rev.lastack == seq
                && since_dup < 20_000_000
            {
                ta.flags.set(Flag::FastRetransmission);
                ta.fast_retransmission_without_dup_acks = rev.dupacknum == u32::MAX;
                break 'family;
            }
            // OUT-OF-ORDER: soon after the highest segment (iRTT, else 3 ms).
            let since_high = time.since(fwd.nextseq_time) as u64;
            let threshold = if irtt_ns == 0 {
                3_000_000
            } else {
                irtt_ns as u64
            };
            let syn_fin = u32::from(flags & (SYN | FIN) != 0);
            if seq_not_advanced
                && since_high < threshold
                && fwd.nextseq != seq.wrapping_add(seglen).wrapping_add(syn_fin)
            {
                ta.flags.set(Flag::OutOfOrder);
                break 'family;
            }
            if seq_not_advanced {
                ta.flags.set(Flag::Retransmission);
                // RTO measured from the oldest unacked segment, else from the
                // segment that last advanced nextseq.
                match fwd.segments.first() {
                    Some(oldest) => {
                        ta.rto_ns = time.since(oldest.time);
                        ta.rto_frame = oldest.frame;
                    }
                    None => {
                        ta.rto_ns = time.since(fwd.nextseq_time);
                        ta.rto_frame = fwd.nextseq_frame;
                    }
                }
            }
        }
    }

    // Bookkeeping.
    let mut nextseq = seq.wrapping_add(seglen);
    if flags & (SYN | FIN) != 0 {
        nextseq = nextseq.wrapping_add(1);
    }
    if (seglen > 0 || flags & (SYN | FIN) != 0) && fwd.segments.len() < MAX_UNACKED_SEGMENTS {
        fwd.segments.push(Unacked {
            frame,
            seq,
            nextseq,
            time,
        });
    } else {
        // Wireshark only adds the SYN/FIN byte for segments it lists.
        nextseq = seq.wrapping_add(seglen);
    }

    let zwp = ta.flags.has(Flag::ZeroWindowProbe);
    if (gt_seq(nextseq, fwd.nextseq) || fwd.nextseq == 0) && !zwp {
        fwd.nextseq = nextseq;
        fwd.nextseq_frame = frame;
        fwd.nextseq_time = time;
    }
    if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == 0) && !zwp {
        fwd.maxseqtobeacked = fwd.nextseq;
    }

    fwd.window = window;
    fwd.lastack = ack;
    fwd.lastack_time = time;
    fwd.lastsegmentflags = ta.flags;

    // Drop the other direction's segments this ACK covers; an exact match
    // names the acknowledged frame and the ACK's round-trip time. Newest
    // first, as Wireshark walks its list, so the oldest exact match wins.
    let mut i = rev.segments.len();
    while i > 0 {
        i -= 1;
        let ual = rev.segments[i];
        if ack == ual.nextseq {
            ta.acks_frame = ual.frame;
            ta.ack_rtt_ns = time.since(ual.time);
        } else if gt_seq(ack, ual.seq) && le_seq(ack, ual.nextseq) {
            rev.segments[i].seq = ack;
            continue;
        } else if gt_seq(ual.nextseq, ack) {
            continue;
        }
        rev.segments.remove(i);
    }

    // Bytes in flight, from the payloads still unacked (Wireshark's default).
    if seglen != 0 && fwd.valid_bif {
        if let Some(first) = fwd.segments.last() {
            let base = fwd.base_seq;
            let mut first_seq = first.seq.wrapping_sub(base);
            let mut last_seq = first.nextseq.wrapping_sub(base);
            for s in &fwd.segments {
                last_seq = last_seq.max(s.nextseq.wrapping_sub(base));
                first_seq = first_seq.min(s.seq.wrapping_sub(base));
            }
            let mut in_flight = last_seq.wrapping_sub(first_seq);
            let delivered = rev.sack[..usize::from(rev.sack_count)]
                .iter()
                .fold(0u32, |acc, (l, r)| acc.wrapping_add(r.wrapping_sub(*l)));
            in_flight = in_flight.wrapping_sub(delivered);
            if in_flight > 0 && in_flight < 2_000_000_000 {
                ta.bytes_in_flight = in_flight;
                if flags & (SYN | FIN) != 0 {
                    ta.bytes_in_flight -= 1;
                }
            }
            let push = flags & PSH != 0;
            if push && !fwd.push_set_last {
                fwd.push_bytes_sent = fwd.push_bytes_sent.wrapping_add(seglen);
                fwd.push_set_last = true;
            } else if push || fwd.push_set_last {
                fwd.push_bytes_sent = seglen;
                fwd.push_set_last = push;
            } else {
                fwd.push_bytes_sent = fwd.push_bytes_sent.wrapping_add(seglen);
            }
            ta.push_bytes_sent = fwd.push_bytes_sent;
        }
    }

    ta
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(
        frame: u64,
        ms: i64,
        seq: u32,
        ack: u32,
        len: u32,
        flags: u16,
        window: u32,
    ) -> SegmentFacts {
        SegmentFacts {
            frame,
            time: Timestamp(ms * 1_000_000),
            seq,
            ack,
            len,
            flags,
            window,
        }
    }

    /// A client (a) and server (b) after a handshake: a's ISN 1000, b's 5000.
    fn established() -> (FlowAnalysis, FlowAnalysis) {
        let mut a = FlowAnalysis::default();
        let mut b = FlowAnalysis::default();
        analyze_segment(&mut a, &mut b, &seg(1, 0, 1000, 0, 0, SYN, 64240), 0);
        analyze_segment(
            &mut b,
            &mut a,
            &seg(2, 10, 5000, 1001, 0, SYN | ACK, 65160),
            0,
        );
        analyze_segment(
            &mut a,
            &mut b,
            &seg(3, 20, 1001, 5001, 0, ACK, 502),
            20_000_000,
        );
        (a, b)
    }

    #[test]
    fn a_clean_handshake_raises_nothing_and_acks_the_syn() {
        let mut a = FlowAnalysis::default();
        let mut b = FlowAnalysis::default();
        let r1 = analyze_segment(&mut a, &mut b, &seg(1, 0, 1000, 0, 0, SYN, 64240), 0);
        let r2 = analyze_segment(
            &mut b,
            &mut a,
            &seg(2, 10, 5000, 1001, 0, SYN | ACK, 65160),
            0,
        );
        assert!(r1.flags.is_empty() && r2.flags.is_empty());
        assert_eq!((r2.acks_frame, r2.ack_rtt_ns), (1, 10_000_000));
    }

    #[test]
    fn resent_data_is_a_retransmission_with_its_rto() {
        let (mut a, mut b) = established();
        analyze_segment(
            &mut a,
            &mut b,
            &seg(4, 30, 1001, 5001, 100, ACK | PSH, 502),
            20_000_000,
        );
        let r = analyze_segment(
            &mut a,
            &mut b,
            &seg(5, 250, 1001, 5001, 100, ACK | PSH, 502),
            20_000_000,
        );
        assert!(r.flags.has(Flag::Retransmission));
        assert_eq!((r.rto_frame, r.rto_ns), (4, 220_000_000));
    }

    #[test]
    fn data_already_acked_is_spurious_and_reported_as_a_retransmission_too() {
        let (mut a, mut b) = established();
        analyze_segment(
            &mut a,
            &mut b,
            &seg(4, 30, 1001, 5001, 100, ACK, 502),
            20_000_000,
        );
        analyze_segment(
            &mut b,
            &mut a,
            &seg(5, 40, 5001, 1101, 0, ACK, 509),
            20_000_000,
        );
        let r = analyze_segment(
            &mut a,
            &mut b,
            &seg(6, 300, 1001, 5001, 100, ACK, 502),
            20_000_000,
        );
        assert!(r.flags.has(Flag::SpuriousRetransmission));
        assert!(!r.flags.has(Flag::Retransmission));
        assert!(r.flags.as_reported().has(Flag::Retransmission));
    }

    #[test]
    fn a_gap_is_a_lost_segment_and_acking_into_it_is_ack_lost_segment() {
        let (mut a, mut b) = established();
        let r = analyze_segment(
            &mut a,
            &mut b,
            &seg(4, 30, 1201, 5001, 100, ACK, 502),
            20_000_000,
        );
        assert!(r.flags.has(Flag::LostSegment));
        let (mut a2, mut b2) = established();
        analyze_segment(
            &mut a2,
            &mut b2,
            &seg(4, 30, 1001, 5001, 100, ACK, 502),
            20_000_000,
        );
        let r = analyze_segment(
            &mut b2,
            &mut a2,
            &seg(5, 40, 5001, 1301, 0, ACK, 509),
            20_000_000,
        );
        assert!(r.flags.has(Flag::AckLostSegment));
    }

    #[test]
    fn three_dup_acks_then_a_quick_resend_is_a_fast_retransmission() {
        let (mut a, mut b) = established();
        for (i, s) in [1001u32, 1101, 1201, 1301].iter().enumerate() {
            analyze_segment(
                &mut a,
                &mut b,
                &seg(4 + i as u64, 30, *s, 5001, 100, ACK, 502),
                20_000_000,
            );
        }
        analyze_segment(
            &mut b,
            &mut a,
            &seg(8, 40, 5001, 1101, 0, ACK, 509),
            20_000_000,
        );
        let d1 = analyze_segment(
            &mut b,
            &mut a,
            &seg(9, 41, 5001, 1101, 0, ACK, 509),
            20_000_000,
        );
        let d2 = analyze_segment(
            &mut b,
            &mut a,
            &seg(10, 42, 5001, 1101, 0, ACK, 509),
            20_000_000,
        );
        assert!(d1.flags.has(Flag::DuplicateAck) && d2.flags.has(Flag::DuplicateAck));
        assert_eq!((d2.dup_ack_num, d2.dup_ack_frame), (2, 8));
        let r = analyze_segment(
            &mut a,
            &mut b,
            &seg(11, 43, 1101, 5001, 100, ACK, 502),
            20_000_000,
        );
        assert!(r.flags.has(Flag::FastRetransmission), "{:?}", r.flags);
    }

    #[test]
    fn keep_alive_and_its_ack_are_not_duplicates() {
        let (mut a, mut b) = established();
        let k = analyze_segment(
            &mut a,
            &mut b,
            &seg(4, 15_000, 1000, 5001, 0, ACK, 502),
            20_000_000,
        );
        assert_eq!(k.flags.iter().collect::<Vec<_>>(), vec![Flag::KeepAlive]);
        let ka = analyze_segment(
            &mut b,
            &mut a,
            &seg(5, 15_001, 5001, 1001, 0, ACK, 65160),
            20_000_000,
        );
        assert!(ka.flags.has(Flag::KeepAliveAck));
        assert!(!ka.flags.has(Flag::DuplicateAck));
    }

    #[test]
    fn zero_window_then_probe_then_probe_ack() {
        let (mut a, mut b) = established();
        let z = analyze_segment(
            &mut b,
            &mut a,
            &seg(4, 30, 5001, 1001, 0, ACK, 0),
            20_000_000,
        );
        assert!(z.flags.has(Flag::ZeroWindow));
        let p = analyze_segment(
            &mut a,
            &mut b,
            &seg(5, 40, 1001, 5001, 1, ACK, 502),
            20_000_000,
        );
        assert_eq!(
            p.flags.iter().collect::<Vec<_>>(),
            vec![Flag::ZeroWindowProbe]
        );
        let pa = analyze_segment(
            &mut b,
            &mut a,
            &seg(6, 41, 5001, 1001, 0, ACK, 0),
            20_000_000,
        );
        assert!(pa.flags.has(Flag::ZeroWindowProbeAck) && pa.flags.has(Flag::ZeroWindow));
        let u = analyze_segment(
            &mut b,
            &mut a,
            &seg(7, 90, 5001, 1001, 0, ACK, 509),
            20_000_000,
        );
        assert!(u.flags.has(Flag::WindowUpdate));
    }

    #[test]
    fn a_resend_soon_after_a_higher_segment_is_out_of_order() {
        let (mut a, mut b) = established();
        analyze_segment(
            &mut a,
            &mut b,
            &seg(4, 30, 1101, 5001, 100, ACK, 502),
            20_000_000,
        );
        let r = analyze_segment(
            &mut a,
            &mut b,
            &seg(5, 31, 1001, 5001, 100, ACK, 502),
            20_000_000,
        );
        assert!(r.flags.has(Flag::LostSegment) || r.flags.has(Flag::OutOfOrder));
        assert!(r.flags.has(Flag::OutOfOrder));
    }
}
