//! One pass over a capture: read, decode, track, emit events.

use std::io::Read;

use crate::capture::{CaptureError, CaptureReader, ReaderLimits};
use crate::decode::ip::DefragLimits;
use crate::decode::{Decoder, Skip};
use crate::events::{Event, EventSink};
use crate::reassembly::ReassemblyLimits;
use crate::tracking::{RunSummary, Tracker, TrackerConfig};

/// Every limit of a run, in one place.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Capture reading.
    pub reader: ReaderLimits,
    /// IP fragment reassembly.
    pub defrag: DefragLimits,
    /// TCP reassembly.
    pub reassembly: ReassemblyLimits,
    /// Finished connections remembered (for late packets and port reuse)
    /// before the longest-finished are forgotten.
    pub max_finished: usize,
    /// Connections open at once at most (see [`TrackerConfig::max_open`]).
    pub max_open: usize,
    /// Capture time a finished connection stays quiet before its summary,
    /// in nanoseconds (see [`TrackerConfig::close_delay_ns`]).
    pub close_delay_ns: i64,
    /// Bounds on decoding compressed bodies and messages (used by the
    /// application dissectors downstream).
    pub decode: crate::dissect::DecodeLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            reader: ReaderLimits::default(),
            defrag: DefragLimits::default(),
            reassembly: ReassemblyLimits::default(),
            max_finished: TrackerConfig::default().max_finished,
            max_open: TrackerConfig::default().max_open,
            close_delay_ns: TrackerConfig::default().close_delay_ns,
            decode: crate::dissect::DecodeLimits::default(),
        }
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    /// What was analysed.
    pub summary: RunSummary,
    /// A damaged record that stopped reading early; everything before it
    /// was analysed and reported.
    pub damage: Option<CaptureError>,
}

/// Why a run could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The capture could not be opened (not a capture, empty, unsupported).
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The output could not be written.
    #[error("writing output failed: {0}")]
    Output(#[from] std::io::Error),
}

const SKIPS: [Skip; 7] = [
    Skip::UnsupportedLinkType,
    Skip::NotIp,
    Skip::NotTcp,
    Skip::FragmentHeld,
    Skip::FragmentUnusable,
    Skip::HeadersCut,
    Skip::MalformedIp,
];

/// One of `count` shards of a parallel run: the connections whose symmetric
/// flow hash falls in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl Shard {
    /// Whether a segment's connection belongs to this shard. Both directions
    /// hash alike, and the hash is fixed, so every worker agrees.
    pub fn owns(&self, seg: &crate::decode::TcpSegment<'_>) -> bool {
        // Each endpoint mixed on its own and the two added: symmetric
        // without ordering them, and a few multiplications instead of a
        // generic hash of two enum tuples, on every packet of every worker.
        fn mix(ip: std::net::IpAddr, port: u16) -> u64 {
            let word = match ip {
                std::net::IpAddr::V4(a) => u64::from(u32::from(a)),
                std::net::IpAddr::V6(a) => {
                    let bits = u128::from(a);
                    (bits as u64) ^ ((bits >> 64) as u64).rotate_left(29) ^ (1 << 63)
                }
            } ^ (u64::from(port) << 32);
            let x = word.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            x ^ (x >> 29)
        }
        let h = mix(seg.src, seg.header.src_port())
            .wrapping_add(mix(seg.dst, seg.header.dst_port()))
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let h = h ^ (h >> 32);
        // The hash scaled to the shard count (a multiplication, where `%`
        // is a division on every packet).
        ((u128::from(h) * self.count as u128) >> 64) as usize == self.index
    }
}

/// Reads a whole capture from `source` and sends its events to `sink`.
pub fn run<R: Read + Send>(
    source: R,
    limits: Limits,
    sink: &mut dyn EventSink,
) -> Result<RunOutcome, RunError> {
    run_shard(source, limits, sink, None)
}

/// Like [`run`], for the connections of one shard only: the other packets
/// are read and decoded (their times drive retirement, so that every shard
/// retires connections when a single run would), but not tracked.
pub fn run_shard<R: Read + Send>(
    source: R,
    limits: Limits,
    sink: &mut dyn EventSink,
    shard: Option<Shard>,
) -> Result<RunOutcome, RunError> {
    let mut reader = CaptureReader::new(source, limits.reader)?;
    let mut decoder = Decoder::new(limits.defrag);
    let mut tracker = Tracker::new(TrackerConfig {
        reassembly: limits.reassembly,
        max_finished: limits.max_finished,
        max_open: limits.max_open,
        close_delay_ns: limits.close_delay_ns,
        ..TrackerConfig::default()
    });
    let mut summary = RunSummary::default();
    let mut skipped = [0u64; SKIPS.len()];
    let mut damage = None;
    loop {
        let frame = match reader.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) if e.is_truncation() => {
                summary.warnings.push(e.to_string());
                break;
            }
            Err(e) => {
                damage = Some(e);
                break;
            }
        };
        summary.frames += 1;
        summary.start.get_or_insert(frame.timestamp);
        summary.end = Some(frame.timestamp);
        tracker.set_capture_start(frame.timestamp);
        match decoder.decode(&frame) {
            Ok(segment) if shard.is_none_or(|s| s.owns(&segment)) => {
                sink.frame_start(frame.number);
                tracker.process(frame.number, frame.timestamp, &segment, sink)?
            }
            // Another shard's packet: only its time matters here, and
            // nearly always nothing is due by it.
            Ok(_) if tracker.due(frame.timestamp) => {
                sink.frame_start(frame.number);
                tracker.tick(frame.timestamp, sink)?
            }
            Ok(_) => {}
            Err(skip) => {
                if let Some(i) = SKIPS.iter().position(|s| *s == skip) {
                    skipped[i] += 1;
                }
            }
        }
    }
    sink.frame_start(crate::events::AT_END);
    tracker.finish(sink)?;
    summary.tcp_packets = tracker.packets();
    summary.connections = tracker.connections();
    summary.reassembly_cap_hits = tracker.reassembly_cap_hits();
    summary.evicted = tracker.evicted();
    summary.rushed = tracker.rushed();
    summary.ip_reassembled = decoder.defrag_stats().reassembled;
    summary.skipped = SKIPS
        .iter()
        .zip(skipped)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| (s.name(), n))
        .collect();
    if summary.reassembly_cap_hits > 0 {
        summary.warnings.push(format!(
            "reassembly buffers hit their cap {} times; those holes were given up as gaps",
            summary.reassembly_cap_hits
        ));
    }
    if summary.rushed > 0 {
        summary.warnings.push(format!(
            "{} finished connections were summarised before their close delay ended because more than {} were open at once (--max-connections); a late packet of theirs keeps its connection but counts in no summary",
            summary.rushed, limits.max_open
        ));
    }
    if summary.evicted > 0 {
        summary.warnings.push(format!(
            "{} connections were summarised early and forgotten because more than {} were open at once (--max-connections); later packets of theirs start new connections",
            summary.evicted, limits.max_open
        ));
    }
    if let Some(e) = &damage {
        summary.warnings.push(e.to_string());
    }
    sink.event(&Event::End(&summary))?;
    Ok(RunOutcome { summary, damage })
}
