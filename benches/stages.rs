//! The pipeline stage by stage, on real captures held in memory, so that a
//! regression shows where it is: reading records, decoding headers, TCP
//! tracking (Wireshark's analysis, states, reassembly), HTTP dissection,
//! and the whole pipeline. `benches/script_host.rs` measures the script host.

/// The binary's allocator (engine/main.rs): the figures are the shipped
/// program's, not the system allocator's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use chattcp::capture::{CaptureReader, ReaderLimits};
use chattcp::decode::ip::DefragLimits;
use chattcp::decode::Decoder;
use chattcp::dissect::Dissector;
use chattcp::events::{Event, EventSink};
use chattcp::pipeline::{self, Limits};
use chattcp::tracking::{Tracker, TrackerConfig};
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

fn frames_of(bytes: &[u8]) -> u64 {
    let mut reader = CaptureReader::new(bytes, ReaderLimits::default()).expect("reader");
    let mut n = 0;
    while let Ok(Some(_)) = reader.next_frame() {
        n += 1;
    }
    n
}

fn stages(c: &mut Criterion) {
    // A bulk download with loss, and HTTP with gzip and chunked bodies.
    for name in ["retransmissions.pcap", "http-keep-alive-gzip-chunked.pcap"] {
        let bytes = capture(name);
        let frames = frames_of(&bytes);
        let mut group = c.benchmark_group(name.trim_end_matches(".pcap"));
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
        group.finish();
    }
}

criterion_group!(benches, stages);
criterion_main!(benches);
