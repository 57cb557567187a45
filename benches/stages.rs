//! The pipeline stage by stage, on real captures held in memory, so that a
//! regression shows where it is. Cumulative: reading records, then
//! decoding headers, then TCP tracking (Wireshark's analysis, states,
//! reassembly), then the whole pipeline with dissection. Alone, with their
//! input prepared beforehand: reassembly (each direction's segments put
//! back in order) and the dissectors (HTTP, gzip, event streams, WebSocket
//! fed the reassembled bytes). `benches/script_host.rs` measures the script
//! host.

/// The binary's allocator (engine/main.rs): the figures are the shipped
/// program's, not the system allocator's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use chattcp::capture::Timestamp;
use chattcp::capture::{CaptureReader, ReaderLimits};
use chattcp::decode::flags::{ACK, FIN, RST, SYN};
use chattcp::decode::ip::DefragLimits;
use chattcp::decode::Decoder;
use chattcp::dissect::{DecodeLimits, Dissector};
use chattcp::events::{DataChunk, Event, EventSink};
use chattcp::pipeline::{self, Limits};
use chattcp::reassembly::{Budget, Chunk, Origin, Reassembler, ReassemblyLimits};
use chattcp::tracking::{ConnectionSummary, Direction, RunSummary, Tracker, TrackerConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn capture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name);
    std::fs::read(path).expect("capture")
}

/// Counts events; keeps nothing.
#[derive(Default)]
struct Count(u64);

impl EventSink for Count {
    fn event(&mut self, _: &Event<'_>) -> std::io::Result<()> {
        self.0 += 1;
        Ok(())
    }
}

/// One packet as reassembly takes it, from tracking's analysis of it.
struct SegmentInput {
    conn: u64,
    /// The sender: 0 for the client.
    from: usize,
    seq: u32,
    ack: u32,
    flags: u16,
    payload: Vec<u8>,
    wire_len: u32,
    origin: Origin,
}

/// A reassembled chunk, owned.
enum OwnedChunk {
    Data { offset: u64, bytes: Vec<u8> },
    Gap { offset: u64, len: u64 },
    End { offset: u64 },
}

/// What the dissectors take from tracking, in order: reassembled bytes,
/// summaries and the end.
enum DissectorInput {
    Data {
        conn: u64,
        dir: Direction,
        chunk: OwnedChunk,
        frame: u64,
        time: Timestamp,
    },
    Closed(Box<ConnectionSummary>),
    End(RunSummary),
}

/// Keeps what reassembly and the dissectors are fed in a run.
#[derive(Default)]
struct Inputs {
    segments: Vec<SegmentInput>,
    dissector: Vec<DissectorInput>,
}

impl EventSink for Inputs {
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        match event {
            Event::Packet(p) if !p.in_icmp_error => self.segments.push(SegmentInput {
                conn: p.conn,
                from: p.dir.index(),
                seq: p.seq_raw,
                ack: p.ack_raw,
                flags: p.flags,
                payload: p.payload.to_vec(),
                wire_len: p.len.unwrap_or(0),
                origin: Origin {
                    frame: p.frame,
                    time: p.time,
                },
            }),
            Event::Data(d) => self.dissector.push(DissectorInput::Data {
                conn: d.conn,
                dir: d.dir,
                chunk: match d.chunk {
                    Chunk::Data { offset, bytes } => OwnedChunk::Data {
                        offset,
                        bytes: bytes.to_vec(),
                    },
                    Chunk::Gap { offset, len } => OwnedChunk::Gap { offset, len },
                    Chunk::End { offset } => OwnedChunk::End { offset },
                },
                frame: d.frame,
                time: d.time,
            }),
            Event::Closed(c) => self
                .dissector
                .push(DissectorInput::Closed(Box::new((*c).clone()))),
            Event::End(e) => self.dissector.push(DissectorInput::End((*e).clone())),
            _ => {}
        }
        Ok(())
    }
}

/// Feeds every segment to its direction's reassembler, as tracking does
/// (the sender's bytes, then the ACK of the peer's); returns the bytes
/// delivered.
fn reassemble(segments: &[SegmentInput]) -> u64 {
    let limits = ReassemblyLimits::default();
    let mut budget = Budget::default();
    let mut conns: Vec<[Reassembler; 2]> = Vec::new();
    let mut delivered = 0u64;
    let mut count = |chunk: Chunk<'_>, _: Origin| {
        if let Chunk::Data { bytes, .. } = chunk {
            delivered += bytes.len() as u64;
        }
    };
    for s in segments {
        let conn = s.conn as usize;
        while conns.len() <= conn {
            conns.push([Reassembler::default(), Reassembler::default()]);
        }
        if s.flags & RST != 0 {
            continue;
        }
        let pair = &mut conns[conn];
        pair[s.from].segment(
            s.seq,
            s.flags & SYN != 0,
            s.flags & FIN != 0,
            &s.payload,
            s.wire_len,
            s.origin,
            &limits,
            &mut budget,
            &mut count,
        );
        if s.flags & ACK != 0 {
            pair[1 - s.from].peer_ack(s.ack, s.origin, &mut budget, &mut count);
        }
    }
    for pair in &mut conns {
        for r in pair {
            r.flush(
                Origin {
                    frame: 0,
                    time: Timestamp(0),
                },
                &mut budget,
                &mut count,
            );
        }
    }
    delivered
}

/// Feeds the dissectors what tracking gave them in a run; returns the
/// events they sent on.
fn dissect(inputs: &[DissectorInput], limits: DecodeLimits) -> u64 {
    let mut dissector = Dissector::with_limits(Count::default(), limits);
    for input in inputs {
        let result = match input {
            DissectorInput::Data {
                conn,
                dir,
                chunk,
                frame,
                time,
            } => {
                let chunk = match chunk {
                    OwnedChunk::Data { offset, bytes } => Chunk::Data {
                        offset: *offset,
                        bytes,
                    },
                    OwnedChunk::Gap { offset, len } => Chunk::Gap {
                        offset: *offset,
                        len: *len,
                    },
                    OwnedChunk::End { offset } => Chunk::End { offset: *offset },
                };
                dissector.event(&Event::Data(&DataChunk {
                    conn: *conn,
                    dir: *dir,
                    chunk,
                    frame: *frame,
                    time: *time,
                }))
            }
            DissectorInput::Closed(summary) => dissector.event(&Event::Closed(summary)),
            DissectorInput::End(end) => dissector.event(&Event::End(end)),
        };
        result.expect("sink");
    }
    dissector.into_inner().0
}

/// The first 8 MiB of the benchmark's many.pcap (`$BENCH_DATA_DIR`, by
/// default /var/tmp/chattcp-bench), if it was recorded: 29,699
/// frames, 2,646 connections. Its last record is cut short, which the
/// reader reports as the end.
fn many_head() -> Option<(String, Vec<u8>)> {
    use std::io::Read;
    let dir = std::env::var("BENCH_DATA_DIR").unwrap_or_else(|_| "/var/tmp/chattcp-bench".into());
    let file = std::fs::File::open(PathBuf::from(dir).join("many.pcap")).ok()?;
    let mut bytes = Vec::new();
    file.take(8 << 20).read_to_end(&mut bytes).ok()?;
    Some(("many_head".to_string(), bytes))
}

fn frames_of(bytes: &[u8]) -> u64 {
    let mut reader = CaptureReader::new(bytes, ReaderLimits::default()).expect("reader");
    let mut n = 0;
    while let Ok(Some(_)) = reader.next_frame() {
        n += 1;
    }
    n
}

fn stages(c: &mut Criterion) {
    // A bulk download with loss, and HTTP with gzip and chunked bodies;
    // and, once `benches/run.sh` has recorded it, the start of many.pcap:
    // thousands of short HTTP connections, where tracking and dissection
    // cost the most per frame.
    let mut inputs: Vec<(String, Vec<u8>)> =
        ["retransmissions.pcap", "http-keep-alive-gzip-chunked.pcap"]
            .iter()
            .map(|name| (name.trim_end_matches(".pcap").to_string(), capture(name)))
            .collect();
    inputs.extend(many_head());
    for (name, bytes) in inputs {
        let frames = frames_of(&bytes);
        let mut inputs = Inputs::default();
        pipeline::run(&bytes[..], Limits::default(), &mut inputs).expect("run");
        // The harness must feed reassembly as tracking does, or its figure
        // measures something else: both deliver the same bytes.
        let tracked: u64 = inputs
            .dissector
            .iter()
            .map(|i| match i {
                DissectorInput::Data {
                    chunk: OwnedChunk::Data { bytes, .. },
                    ..
                } => bytes.len() as u64,
                _ => 0,
            })
            .sum();
        assert_eq!(
            reassemble(&inputs.segments),
            tracked,
            "{name}: reassembly alone"
        );
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(frames));
        group.bench_function("read", |b| {
            b.iter(|| {
                let mut reader =
                    CaptureReader::new(&bytes[..], ReaderLimits::default()).expect("reader");
                let mut n = 0u64;
                while let Ok(Some(f)) = reader.next_frame() {
                    n += f.data.len() as u64;
                }
                n
            })
        });
        group.bench_function("read_decode", |b| {
            b.iter(|| {
                let mut reader =
                    CaptureReader::new(&bytes[..], ReaderLimits::default()).expect("reader");
                let mut decoder = Decoder::new(DefragLimits::default());
                let mut n = 0u64;
                while let Ok(Some(f)) = reader.next_frame() {
                    if let Ok(seg) = decoder.decode(&f) {
                        n += seg.payload.len() as u64;
                    }
                }
                n
            })
        });
        group.bench_function("read_decode_track", |b| {
            b.iter(|| {
                let mut reader =
                    CaptureReader::new(&bytes[..], ReaderLimits::default()).expect("reader");
                let mut decoder = Decoder::new(DefragLimits::default());
                let mut tracker = Tracker::new(TrackerConfig::default());
                let mut sink = Count::default();
                while let Ok(Some(f)) = reader.next_frame() {
                    if let Ok(seg) = decoder.decode(&f) {
                        tracker
                            .process(f.number, f.timestamp, &seg, &mut sink)
                            .expect("sink");
                    }
                }
                tracker.finish(&mut sink).expect("sink");
                sink.0
            })
        });
        group.bench_function("pipeline_dissect", |b| {
            b.iter(|| {
                let mut sink = Dissector::new(Count::default());
                pipeline::run(&bytes[..], Limits::default(), &mut sink).expect("run");
                sink.into_inner().0
            })
        });
        // Per frame too, so that the figures compare with the stages above.
        group.bench_function("reassembly_alone", |b| {
            b.iter(|| reassemble(&inputs.segments))
        });
        // As `diagnose` and `run` dissect when no script reads a body:
        // bodies decoded, not kept (so a compressed body seen before need
        // not be inflated again), no head announced before its body.
        let scripts_alone = DecodeLimits {
            body_kept: 0,
            announce_heads: false,
            ..DecodeLimits::default()
        };
        group.bench_function("dissect_alone", |b| {
            b.iter(|| dissect(&inputs.dissector, scripts_alone))
        });
        // As the chat and follow views dissect: bodies kept, heads announced.
        group.bench_function("dissect_alone_bodies_kept", |b| {
            b.iter(|| dissect(&inputs.dissector, DecodeLimits::default()))
        });
        group.finish();
    }
}

criterion_group!(benches, stages);
criterion_main!(benches);
