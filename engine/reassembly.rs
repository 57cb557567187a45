//! Reassembly of one direction of a TCP connection into in-order bytes.
//!
//! In-order payload is passed on as borrowed slices of the packet, without
//! copying. Retransmitted or overlapping bytes are delivered once (the first
//! copy wins). A segment that arrives ahead of a hole is copied and held
//! until the hole fills. Bytes that will never come (lost before the capture
//! point, cut by the snaplen, or acknowledged by the peer without ever being
//! seen) are delivered as an explicit [`Chunk::Gap`] so that dissectors can
//! resynchronise. Held bytes are capped per direction and across the whole
//! run; when a cap is hit, the hole is given up as a gap and the hit counted.

use std::collections::BTreeMap;

use crate::capture::Timestamp;

/// One piece of a reassembled byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Bytes, starting at `offset` in the stream (0 = first byte after the SYN).
    Data {
        /// Stream offset of the first byte.
        offset: u64,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// `len` bytes at `offset` that the capture does not hold.
    Gap {
        /// Stream offset of the first missing byte.
        offset: u64,
        /// How many bytes are missing.
        len: u64,
    },
    /// Every byte before the sender's FIN was delivered: the direction ended
    /// (a close-delimited HTTP body ends here).
    End {
        /// Stream offset of the FIN.
        offset: u64,
    },
}

/// Where a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Frame that carried the bytes (for a gap: the frame that revealed it).
    pub frame: u64,
    /// Its capture time.
    pub time: Timestamp,
}

/// Limits on buffered out-of-order bytes.
#[derive(Clone, Copy, Debug)]
pub struct ReassemblyLimits {
    /// Memory held out of order for one direction of one connection (bytes
    /// plus a fixed cost per segment held).
    pub per_direction: usize,
    /// Memory held out of order across all connections (counted alike).
    pub total: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            per_direction: 4 << 20,
            total: 64 << 20,
        }
    }
}

/// Bytes held across every reassembler, shared through the run.
#[derive(Debug, Default)]
pub struct Budget {
    held: usize,
    /// Times a cap forced a hole to be given up.
    pub cap_hits: u64,
}

impl Budget {
    /// Bytes currently held.
    pub fn held(&self) -> usize {
        self.held
    }
}

/// What holding one segment costs beyond its bytes (the map entry, the
/// vector and the allocator's share), counted against the caps: a million
/// one-byte segments must not hide a hundred megabytes behind a few
/// hundred kilobytes of payload.
const HELD_OVERHEAD: usize = 96;

#[derive(Debug)]
struct Held {
    bytes: Vec<u8>,
    /// Bytes after `bytes` that were on the wire but not captured.
    missing_tail: u64,
    origin: Origin,
}

/// Counters for one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Bytes delivered as data.
    pub delivered: u64,
    /// Bytes delivered as gaps.
    pub missing: u64,
    /// Gaps delivered.
    pub gaps: u64,
    /// Bytes that repeated bytes already delivered.
    pub duplicate: u64,
    /// Times this direction hit a cap.
    pub cap_hits: u64,
}

/// Reassembles one direction.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// Raw sequence number of the next byte to deliver.
    next_seq: u32,
    /// Stream offset of the next byte to deliver.
    offset: u64,
    started: bool,
    /// Raw sequence number of the FIN, once seen.
    fin_seq: Option<u32>,
    /// [`Chunk::End`] was delivered.
    ended: bool,
    held: BTreeMap<u64, Held>,
    held_bytes: usize,
    /// What happened so far.
    pub stats: DirectionStats,
}

/// Signed distance from `b` to `a` in sequence space.
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl Reassembler {
    /// Stream offset of the next byte expected.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Memory held out of order: the bytes, plus a fixed cost per segment.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Feeds one segment: `seq` raw, `payload` the captured bytes, `wire_len`
    /// the payload length on the wire.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        seq: u32,
        syn: bool,
        fin: bool,
        payload: &[u8],
        wire_len: u32,
        origin: Origin,
        limits: &ReassemblyLimits,
        budget: &mut Budget,
        emit: &mut dyn FnMut(Chunk<'_>, Origin),
    ) {
        self.segment_bytes(
            seq, syn, fin, payload, wire_len, origin, limits, budget, emit,
        );
        self.check_end(origin, emit);
    }

    /// Delivers [`Chunk::End`] once the bytes reach the FIN.
    fn check_end(&mut self, origin: Origin, emit: &mut dyn FnMut(Chunk<'_>, Origin)) {
        if self.ended || !self.started {
            return;
        }
        if self.fin_seq == Some(self.next_seq) {
            self.ended = true;
            emit(
                Chunk::End {
                    offset: self.offset,
                },
                origin,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn segment_bytes<'p>(
        &mut self,
        seq: u32,
        syn: bool,
        fin: bool,
        payload: &'p [u8],
        wire_len: u32,
        origin: Origin,
        limits: &ReassemblyLimits,
        budget: &mut Budget,
        emit: &mut dyn FnMut(Chunk<'_>, Origin),
    ) {
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        if !self.started && (syn || wire_len > 0) {
            self.started = true;
            self.next_seq = data_seq;
        }
        if fin {
            self.fin_seq.get_or_insert(data_seq.wrapping_add(wire_len));
        }
        if wire_len == 0 || !self.started {
            return;
        }
        let ahead = seq_diff(data_seq, self.next_seq);
        let wire = u64::from(wire_len);
        if ahead <= 0 {
            let skip = ahead.unsigned_abs();
            if skip >= wire {
                self.stats.duplicate += wire;
                return;
            }
            self.stats.duplicate += skip;
            self.deliver(payload, wire, skip, origin, emit);
            self.drain(budget, emit);
            return;
        }
        // Ahead of a hole: hold a copy until the hole fills.
        let at = self.offset + ahead as u64;
        if self.held.contains_key(&at) {
            self.stats.duplicate += wire;
            return;
        }
        let take = payload.len().min(wire_len as usize);
        self.held.insert(
            at,
            Held {
                bytes: payload[..take].to_vec(),
                missing_tail: wire - take as u64,
                origin,
            },
        );
        self.held_bytes += take + HELD_OVERHEAD;
        budget.held += take + HELD_OVERHEAD;
        if self.held_bytes > limits.per_direction || budget.held > limits.total {
            self.stats.cap_hits += 1;
            budget.cap_hits += 1;
            self.give_up_first_hole(origin, budget, emit);
        }
    }

    /// The peer acknowledged up to `ack`: bytes before it that were never
    /// seen are lost to the capture, so deliver them as a gap.
    pub fn peer_ack(
        &mut self,
        ack: u32,
        origin: Origin,
        budget: &mut Budget,
        emit: &mut dyn FnMut(Chunk<'_>, Origin),
    ) {
        if !self.started {
            return;
        }
        let mut upto = ack;
        if let Some(fin) = self.fin_seq {
            if seq_diff(upto, fin) > 0 {
                upto = fin;
            }
        }
        let missing = seq_diff(upto, self.next_seq);
        // An ACK far ahead is more likely garbage than 1 GiB of lost bytes.
        if missing <= 0 || missing > (1 << 30) {
            return;
        }
        // Held segments inside the acknowledged range fill part of it.
        let end = self.offset + missing as u64;
        while self.offset < end {
            let next_held = self.held.keys().next().copied();
            match next_held {
                Some(at) if at <= self.offset => self.drain(budget, emit),
                Some(at) if at < end => self.gap(at - self.offset, origin, emit),
                _ => self.gap(end - self.offset, origin, emit),
            }
        }
        self.drain(budget, emit);
        self.check_end(origin, emit);
    }

    /// Delivers everything still held, with gaps for the holes (end of
    /// connection or capture).
    pub fn flush(
        &mut self,
        origin: Origin,
        budget: &mut Budget,
        emit: &mut dyn FnMut(Chunk<'_>, Origin),
    ) {
        while let Some(&at) = self.held.keys().next() {
            if at > self.offset {
                self.gap(at - self.offset, origin, emit);
            }
            self.drain(budget, emit);
        }
        self.check_end(origin, emit);
    }

    fn give_up_first_hole(
        &mut self,
        origin: Origin,
        budget: &mut Budget,
        emit: &mut dyn FnMut(Chunk<'_>, Origin),
    ) {
        if let Some(&at) = self.held.keys().next() {
            if at > self.offset {
                self.gap(at - self.offset, origin, emit);
            }
            self.drain(budget, emit);
        }
    }

    fn gap(&mut self, len: u64, origin: Origin, emit: &mut dyn FnMut(Chunk<'_>, Origin)) {
        if len == 0 {
            return;
        }
        emit(
            Chunk::Gap {
                offset: self.offset,
                len,
            },
            origin,
        );
        self.stats.missing += len;
        self.stats.gaps += 1;
        self.advance(len);
    }

    fn advance(&mut self, len: u64) {
        self.offset += len;
        self.next_seq = self.next_seq.wrapping_add(len as u32);
    }

    /// Delivers `captured` (of a segment `wire` bytes long) from `skip` on.
    fn deliver(
        &mut self,
        captured: &[u8],
        wire: u64,
        skip: u64,
        origin: Origin,
        emit: &mut dyn FnMut(Chunk<'_>, Origin),
    ) {
        let captured_len = (captured.len() as u64).min(wire);
        if skip < captured_len {
            let bytes = &captured[skip as usize..captured_len as usize];
            emit(
                Chunk::Data {
                    offset: self.offset,
                    bytes,
                },
                origin,
            );
            self.stats.delivered += bytes.len() as u64;
            self.advance(bytes.len() as u64);
        }
        let missing = wire - skip.max(captured_len);
        self.gap(missing, origin, emit);
    }

    /// Delivers held segments that now start at or before the next offset.
    fn drain(&mut self, budget: &mut Budget, emit: &mut dyn FnMut(Chunk<'_>, Origin)) {
        while let Some(entry) = self.held.first_entry() {
            let at = *entry.key();
            if at > self.offset {
                break;
            }
            let held = entry.remove();
            self.held_bytes -= held.bytes.len() + HELD_OVERHEAD;
            budget.held = budget.held.saturating_sub(held.bytes.len() + HELD_OVERHEAD);
            let wire = held.bytes.len() as u64 + held.missing_tail;
            let skip = self.offset - at;
            if skip >= wire {
                self.stats.duplicate += wire;
                continue;
            }
            self.stats.duplicate += skip;
            self.deliver(&held.bytes, wire, skip, held.origin, emit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Got {
        D(u64, Vec<u8>),
        G(u64, u64),
        E(u64),
    }

    struct Harness {
        r: Reassembler,
        budget: Budget,
        limits: ReassemblyLimits,
        got: Vec<Got>,
    }

    impl Harness {
        fn new() -> Self {
            Harness {
                r: Reassembler::default(),
                budget: Budget::default(),
                limits: ReassemblyLimits::default(),
                got: Vec::new(),
            }
        }
        fn seg(&mut self, seq: u32, flags: (bool, bool), data: &[u8], wire: u32) {
            let got = &mut self.got;
            self.r.segment(
                seq,
                flags.0,
                flags.1,
                data,
                wire,
                Origin {
                    frame: 1,
                    time: Timestamp(0),
                },
                &self.limits,
                &mut self.budget,
                &mut |c, _| match c {
                    Chunk::Data { offset, bytes } => got.push(Got::D(offset, bytes.to_vec())),
                    Chunk::Gap { offset, len } => got.push(Got::G(offset, len)),
                    Chunk::End { offset } => got.push(Got::E(offset)),
                },
            );
        }
    }

    #[test]
    fn the_fin_ends_the_direction_once_every_byte_before_it_came() {
        let mut h = Harness::new();
        h.seg(99, (true, false), b"", 0);
        // The FIN arrives before the bytes it follows.
        h.seg(103, (false, true), b"", 0);
        assert!(h.got.is_empty());
        h.seg(100, (false, false), b"abc", 3);
        assert_eq!(h.got, vec![Got::D(0, b"abc".to_vec()), Got::E(3)]);
        // A retransmitted FIN does not end it again.
        h.seg(103, (false, true), b"", 0);
        assert_eq!(h.got.len(), 2);
    }

    #[test]
    fn in_order_bytes_pass_through_and_repeats_are_dropped() {
        let mut h = Harness::new();
        h.seg(99, (true, false), b"", 0);
        h.seg(100, (false, false), b"abc", 3);
        h.seg(100, (false, false), b"abc", 3);
        h.seg(102, (false, false), b"cde", 3);
        assert_eq!(
            h.got,
            vec![Got::D(0, b"abc".to_vec()), Got::D(3, b"de".to_vec())]
        );
        assert_eq!(h.r.stats.duplicate, 4);
    }

    #[test]
    fn out_of_order_bytes_wait_for_the_hole() {
        let mut h = Harness::new();
        h.seg(99, (true, false), b"", 0);
        h.seg(103, (false, false), b"def", 3);
        assert!(h.got.is_empty());
        h.seg(100, (false, false), b"abc", 3);
        assert_eq!(
            h.got,
            vec![Got::D(0, b"abc".to_vec()), Got::D(3, b"def".to_vec())]
        );
        assert_eq!(h.r.held_bytes(), 0);
    }

    #[test]
    fn snaplen_cut_bytes_become_a_gap() {
        let mut h = Harness::new();
        h.seg(99, (true, false), b"", 0);
        h.seg(100, (false, false), b"ab", 10);
        assert_eq!(h.got, vec![Got::D(0, b"ab".to_vec()), Got::G(2, 8)]);
    }

    #[test]
    fn an_ack_past_unseen_bytes_delivers_the_gap_and_what_was_held() {
        let mut h = Harness::new();
        h.seg(99, (true, false), b"", 0);
        h.seg(110, (false, false), b"xyz", 3);
        let got = &mut h.got;
        h.r.peer_ack(
            113,
            Origin {
                frame: 2,
                time: Timestamp(0),
            },
            &mut h.budget,
            &mut |c, _| match c {
                Chunk::Data { offset, bytes } => got.push(Got::D(offset, bytes.to_vec())),
                Chunk::Gap { offset, len } => got.push(Got::G(offset, len)),
                Chunk::End { offset } => got.push(Got::E(offset)),
            },
        );
        assert_eq!(h.got, vec![Got::G(0, 10), Got::D(10, b"xyz".to_vec())]);
    }

    #[test]
    fn the_cap_gives_up_a_hole_instead_of_growing() {
        let mut h = Harness::new();
        // Room for one 5-byte segment's cost, not for two.
        h.limits.per_direction = 2 * (5 + HELD_OVERHEAD) - 1;
        h.seg(99, (true, false), b"", 0);
        h.seg(200, (false, false), b"12345", 5);
        h.seg(205, (false, false), b"67890", 5);
        assert_eq!(h.r.stats.cap_hits, 1);
        assert_eq!(h.got[0], Got::G(0, 100));
        assert_eq!(h.r.held_bytes(), 0);
        assert_eq!(h.budget.held(), 0);
    }

    #[test]
    fn tiny_segments_count_their_overhead_against_the_cap() {
        let mut h = Harness::new();
        h.limits.per_direction = 64 << 10;
        h.seg(99, (true, false), b"", 0);
        // 100,000 one-byte segments, last first: all but the first byte wait.
        for i in (1..100_000u32).rev() {
            h.seg(100 + i, (false, false), b"x", 1);
            assert!(h.r.held_bytes() <= h.limits.per_direction);
        }
        assert!(h.r.stats.cap_hits > 0);
        assert!(h.r.held_bytes() <= 64 << 10);
    }

    #[test]
    fn the_fin_is_not_a_missing_byte() {
        let mut h = Harness::new();
        h.seg(99, (true, false), b"", 0);
        h.seg(100, (false, true), b"ab", 2);
        let got = &mut h.got;
        h.r.peer_ack(
            103,
            Origin {
                frame: 2,
                time: Timestamp(0),
            },
            &mut h.budget,
            &mut |c, _| {
                if let Chunk::Gap { offset, len } = c {
                    got.push(Got::G(offset, len))
                }
            },
        );
        assert_eq!(h.got, vec![Got::D(0, b"ab".to_vec()), Got::E(2)]);
    }
}
