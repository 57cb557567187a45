//! The cost of a rhai `on_packet` handler: packets per second through the
//! script host, with the capture already decoded and analysed (so the
//! figure is the host's alone).

/// The binary's allocator (engine/main.rs): the figures are the shipped
/// program's, not the system allocator's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use chattcp::events::{Event, EventSink};
use chattcp::pipeline::{self, Limits};
use chattcp::scripting::{host::sandbox_engine, Script, ScriptHost, ScriptLimits};
use chattcp::tracking::PacketRecord;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Every packet of a capture, analysed, without payloads.
struct Keep(Vec<PacketRecord<'static>>);

impl EventSink for Keep {
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        if let Event::Packet(p) = event {
            self.0.push(p.detached());
        }
        Ok(())
    }
}

fn records() -> Vec<PacketRecord<'static>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/retransmissions.pcap");
    let file = std::fs::File::open(path).expect("capture");
    let mut keep = Keep(Vec::new());
    pipeline::run(file, Limits::default(), &mut keep).expect("run");
    keep.0
}

fn on_packet(c: &mut Criterion) {
    let records = records();
    let limits = ScriptLimits::default();
    let engine = sandbox_engine(&limits);
    let cases = [
        ("empty_handler", "fn on_packet(p) { }"),
        ("count_in_this", "fn init() { this.n = 0; }\nfn on_packet(p) { this.n += 1; }"),
        (
            "read_fields",
            "fn init() { this.bytes = 0; }\nfn on_packet(p) { if p.has(\"retransmission\") || p.len > 1000 { this.bytes += p.len; } }",
        ),
    ];
    let mut group = c.benchmark_group("on_packet");
    group.throughput(Throughput::Elements(records.len() as u64));
    for (name, source) in cases {
        let scripts = [Script::compile(&engine, name, "bench", source).expect("compiles")];
        group.bench_function(name, |b| {
            let mut host = ScriptHost::new(&scripts, limits);
            b.iter(|| {
                for r in &records {
                    host.event(&Event::Packet(r)).expect("event");
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, on_packet);
criterion_main!(benches);
