//! The cost of rhai handlers: events per second through the script host,
//! with the capture already decoded, analysed and dissected (so the figure
//! is the host's alone): `on_packet` for every packet, and the handlers of
//! the events the diagnoses take (`on_http_response`, `on_close`).

/// The binary's allocator (engine/main.rs): the figures are the shipped
/// program's, not the system allocator's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use chattcp::dissect::{AppEvent, DecodeLimits, Dissector};
use chattcp::events::{Event, EventSink};
use chattcp::pipeline::{self, Limits};
use chattcp::scripting::{host::sandbox_engine, Script, ScriptHost, ScriptLimits};
use chattcp::tracking::{ConnectionSummary, Direction, PacketRecord};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

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

/// The application events and summaries of a run.
#[derive(Default)]
struct KeepApps {
    apps: Vec<AppEvent>,
    summaries: Vec<ConnectionSummary>,
}

impl EventSink for KeepApps {
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        match event {
            Event::App(app) => self.apps.push((*app).clone()),
            Event::Closed(c) => self.summaries.push((*c).clone()),
            _ => {}
        }
        Ok(())
    }
}

/// The HTTP messages and summaries of the example captures of HTTP, as
/// `diagnose` dissects them (bodies not kept).
fn app_events() -> KeepApps {
    let mut keep = Dissector::with_limits(
        KeepApps::default(),
        DecodeLimits {
            body_kept: 0,
            announce_heads: false,
            ..DecodeLimits::default()
        },
    );
    for name in [
        "http-keep-alive.pcap",
        "http-keep-alive-gzip-chunked.pcap",
        "http-header-newline.pcap",
    ] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("captures")
            .join(name);
        let file = std::fs::File::open(path).expect("capture");
        pipeline::run(file, Limits::default(), &mut keep).expect("run");
    }
    keep.into_inner()
}

/// A handler that fails stops being called, and would be measured doing
/// nothing: the figures count only if every call succeeded.
fn ran_cleanly(host: ScriptHost<'_>) {
    assert!(host.calls() > 0, "the handler was never called");
    let errors = host.finish().errors;
    assert!(errors.is_empty(), "the handler failed: {errors:?}");
}

/// Benchmarks each handler of `cases` (name, source) in `group`: every
/// event of `events` through the script host, per iteration.
fn handlers(
    group: &mut BenchmarkGroup<'_, WallTime>,
    cases: &[(&str, &str)],
    events: &[Event<'_>],
) {
    let limits = ScriptLimits::default();
    let engine = sandbox_engine(&limits);
    group.throughput(Throughput::Elements(events.len() as u64));
    for (name, source) in cases {
        let scripts = [Script::compile(&engine, name, "bench", source).expect("compiles")];
        group.bench_function(*name, |b| {
            let mut host = ScriptHost::new(&scripts, limits);
            b.iter(|| {
                for event in events {
                    host.event(event).expect("event");
                }
            });
            ran_cleanly(host);
        });
    }
}

/// Per event of the kinds diagnoses take: a handler that counts, and one
/// that reads fields (what a diagnosis does first).
fn per_event(c: &mut Criterion) {
    let kept = app_events();
    let responses: Vec<Event<'_>> = kept
        .apps
        .iter()
        .filter(|a| matches!(a, AppEvent::Http(m) if m.dir == Direction::ServerToClient))
        .map(Event::App)
        .collect();
    let mut group = c.benchmark_group("on_http_response");
    handlers(
        &mut group,
        &[
            ("count_in_this", "fn init() { this.n = 0; }\nfn on_http_response(r) { this.n += 1; }"),
            (
                "read_fields",
                "fn init() { this.n = 0; }\nfn on_http_response(r) { if r.status >= 400 || r.ttfb > 1.0 || r.content_type == \"text/event-stream\" { this.n += 1; } }",
            ),
        ],
        &responses,
    );
    group.finish();

    let closes: Vec<Event<'_>> = kept.summaries.iter().map(Event::Closed).collect();
    let mut group = c.benchmark_group("on_close");
    handlers(
        &mut group,
        &[
            ("count_in_this", "fn init() { this.n = 0; }\nfn on_close(c) { this.n += 1; }"),
            (
                "read_fields",
                "fn init() { this.n = 0; }\nfn on_close(c) { if c.reset_by != () || c.packets > 100 || c.handshake != \"complete\" { this.n += 1; } }",
            ),
        ],
        &closes,
    );
    group.finish();
}

fn on_packet(c: &mut Criterion) {
    let records = records();
    let packets: Vec<Event<'_>> = records.iter().map(Event::Packet).collect();
    let mut group = c.benchmark_group("on_packet");
    handlers(
        &mut group,
        &[
            ("empty_handler", "fn on_packet(p) { }"),
            ("count_in_this", "fn init() { this.n = 0; }\nfn on_packet(p) { this.n += 1; }"),
            // The same count beside 10,000 remembered entries (a map keyed
            // by connection): it used to walk them all at every `+=`.
            (
                "count_beside_10k_entries",
                "fn init() { this.seen = #{}; for i in 0..10000 { this.seen[`${i}`] = true; } this.n = 0; }\nfn on_packet(p) { this.n += 1; }",
            ),
            (
                "read_fields",
                "fn init() { this.bytes = 0; }\nfn on_packet(p) { if p.has(\"retransmission\") || p.len > 1000 { this.bytes += p.len; } }",
            ),
        ],
        &packets,
    );
    group.finish();
}

criterion_group!(benches, on_packet, per_event);
criterion_main!(benches);
