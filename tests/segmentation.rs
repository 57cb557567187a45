//! The application dissectors must not care where TCP cut the stream.
//!
//! Real streams (the example captures and a few corpus files) are taken as
//! the pipeline reassembled them, then re-cut at random points and fed to a
//! [`Dissector`] again, for many seeds of a small deterministic PRNG. What
//! is compared, precisely:
//!
//! - Only the bytes of one direction are re-cut. The order between the
//!   directions is kept: the stream is a sequence of *turns* (what one side
//!   sent before the other spoke again, as delivered by the pipeline) and a
//!   segment never spans two turns; a gap or a FIN stays where it was, as a
//!   chunk of its own.
//! - Every application event must be the same, in the same order, field for
//!   field, except the positions: the [`At`] fields (`first`, `head_end`,
//!   `last`, `readable`, `arrived`) and what is computed from them
//!   (`ttfb_ns`, `held_back_ns`, `decodable_on_arrival`).
//! - The positions are checked too, against a run that feeds every byte as
//!   a segment of its own: that run tells which byte each position is (the
//!   byte whose arrival made the thing happen); in any other cut, the
//!   position must be the segment that holds that byte, and the derived
//!   values must follow from those segments. One position is by definition
//!   a property of the segments rather than of a byte: `arrived` of an
//!   event in a compressed stream (the first segment with compressed bytes
//!   since one whose text ended at an event boundary); it must lie between
//!   the first segment and the one of the event's first text, and
//!   `held_back_ns` and `decodable_on_arrival` must follow from it.
//!
//! Also here: decompression bombs through the public API.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chattcp::capture::Timestamp;
use chattcp::dissect::http::HttpConn;
use chattcp::dissect::{AppEvent, At, DecodeLimits, Dissector};
use chattcp::events::{DataChunk, Event, EventSink};
use chattcp::pipeline::{self, Limits};
use chattcp::reassembly::Chunk;
use chattcp::tracking::{Direction, RunSummary};

// ---------------------------------------------------------------------------
// Memory accounting, per thread (tests run in parallel threads).

struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn track(delta: i64) {
    // `try_with`: the thread's slots may be gone while it shuts down.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as i64);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as i64));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as i64);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as i64 - layout.size() as i64);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Starts measuring this thread's peak of live heap bytes; returns the base.
fn peak_reset() -> i64 {
    let live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(live));
    live
}

/// Peak live heap bytes of this thread above `base` since [`peak_reset`].
fn peak_since(base: i64) -> i64 {
    PEAK.with(Cell::get) - base
}

// ---------------------------------------------------------------------------
// A deterministic PRNG (SplitMix64).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

// ---------------------------------------------------------------------------
// Streams as the pipeline reassembled them.

/// One element of a direction's stream.
#[derive(Clone, Debug)]
enum Piece {
    Data(Vec<u8>),
    Gap(u64),
    End,
}

/// A run of elements from one side, before the other side spoke again.
#[derive(Clone, Debug)]
struct Turn {
    dir: Direction,
    pieces: Vec<Piece>,
}

/// Records each connection's turns.
#[derive(Default)]
struct Recorder {
    conns: BTreeMap<u64, Vec<Turn>>,
    /// Connections the dissector found something in.
    app: std::collections::BTreeSet<u64>,
}

impl EventSink for Recorder {
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        match event {
            Event::Data(d) => {
                let piece = match d.chunk {
                    Chunk::Data { bytes, .. } => Piece::Data(bytes.to_vec()),
                    Chunk::Gap { len, .. } => Piece::Gap(len),
                    Chunk::End { .. } => Piece::End,
                };
                let turns = self.conns.entry(d.conn).or_default();
                match turns.last_mut() {
                    Some(t) if t.dir == d.dir => match (t.pieces.last_mut(), piece) {
                        (Some(Piece::Data(bytes)), Piece::Data(more)) => bytes.extend(more),
                        (_, piece) => t.pieces.push(piece),
                    },
                    _ => turns.push(Turn {
                        dir: d.dir,
                        pieces: vec![piece],
                    }),
                }
            }
            Event::App(app) => {
                self.app.insert(app.conn());
            }
            _ => {}
        }
        Ok(())
    }
}

/// The connections of `capture` that carry HTTP or WebSocket, as turns.
fn streams(capture: &Path) -> Vec<(u64, Vec<Turn>)> {
    let file = std::fs::File::open(capture).expect("open capture");
    let mut sink = Dissector::new(Recorder::default());
    pipeline::run(std::io::BufReader::new(file), Limits::default(), &mut sink).expect("run");
    let rec = sink.into_inner();
    rec.conns
        .into_iter()
        .filter(|(conn, _)| rec.app.contains(conn))
        .collect()
}

// ---------------------------------------------------------------------------
// Feeding a cut.

/// What a segment fed held: bytes `start..end` of a direction's data, or
/// the `n`-th gap or FIN of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    Bytes(usize, u64, u64),
    Mark(usize),
}

/// A cut: every segment fed, in order (its frame number is its index + 1).
struct Cut {
    segments: Vec<Held>,
    events: Vec<AppEvent>,
}

impl Cut {
    /// The frame of the segment holding byte `offset` of direction `dir`,
    /// or mark `n`.
    fn frame_of(&self, held: Held) -> u64 {
        let i = self.segments.iter().position(|s| match (*s, held) {
            (Held::Bytes(d, a, b), Held::Bytes(e, x, _)) => d == e && a <= x && x < b,
            (Held::Mark(n), Held::Mark(m)) => n == m,
            _ => false,
        });
        i.map_or(0, |i| i as u64 + 1)
    }
}

#[derive(Default)]
struct Collect(Vec<AppEvent>);

impl EventSink for Collect {
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        if let Event::App(app) = event {
            self.0.push((*app).clone());
        }
        Ok(())
    }
}

fn time_of(frame: u64) -> Timestamp {
    Timestamp(frame as i64 * 1000)
}

/// Feeds connection `conn`'s turns cut by `len` (the length of the next
/// segment, given what is left of a run of data).
fn feed(conn: u64, turns: &[Turn], len: &mut dyn FnMut(u64) -> u64) -> Cut {
    let mut dissector = Dissector::new(Collect::default());
    let mut segments = Vec::new();
    let mut offsets = [0u64; 2];
    let mut marks = 0;
    let send =
        |dissector: &mut Dissector<Collect>, frame: usize, dir: Direction, chunk: Chunk<'_>| {
            let frame = frame as u64;
            let d = DataChunk {
                conn,
                dir,
                chunk,
                frame,
                time: time_of(frame),
            };
            dissector.event(&Event::Data(&d)).expect("event");
        };
    for turn in turns {
        let d = turn.dir.index();
        for piece in &turn.pieces {
            match piece {
                Piece::Data(bytes) => {
                    let mut at = 0usize;
                    while at < bytes.len() {
                        let left = (bytes.len() - at) as u64;
                        let n = len(left).clamp(1, left) as usize;
                        let offset = offsets[d];
                        segments.push(Held::Bytes(d, offset, offset + n as u64));
                        send(
                            &mut dissector,
                            segments.len(),
                            turn.dir,
                            Chunk::Data {
                                offset,
                                bytes: &bytes[at..at + n],
                            },
                        );
                        offsets[d] += n as u64;
                        at += n;
                    }
                }
                Piece::Gap(gap) => {
                    segments.push(Held::Mark(marks));
                    marks += 1;
                    send(
                        &mut dissector,
                        segments.len(),
                        turn.dir,
                        Chunk::Gap {
                            offset: offsets[d],
                            len: *gap,
                        },
                    );
                    offsets[d] += gap;
                }
                Piece::End => {
                    segments.push(Held::Mark(marks));
                    marks += 1;
                    send(
                        &mut dissector,
                        segments.len(),
                        turn.dir,
                        Chunk::End { offset: offsets[d] },
                    );
                }
            }
        }
    }
    dissector
        .event(&Event::End(&RunSummary::default()))
        .expect("end");
    Cut {
        segments,
        events: dissector.into_inner().0,
    }
}

// ---------------------------------------------------------------------------
// Events without positions, and their positions.

const ZERO: At = At {
    frame: 0,
    time: Timestamp(0),
};

/// The positions of an event: its At fields, then derived values in
/// nanoseconds (ttfb; held back) or 0/1 (decodable on arrival).
struct Positions {
    at: Vec<At>,
    /// An event of a compressed stream: its `arrived` is not a byte's.
    compressed_sse: bool,
    ttfb_ns: Option<i64>,
    held_back_ns: Option<i64>,
    decodable_on_arrival: Option<bool>,
    body_first: Option<At>,
    quiet_before_ns: Option<i64>,
}

/// The event as text with its positions zeroed, and the positions.
fn split_event(e: &AppEvent) -> (String, Positions) {
    let mut e = e.clone();
    let mut p = Positions {
        at: Vec::new(),
        compressed_sse: false,
        ttfb_ns: None,
        held_back_ns: None,
        decodable_on_arrival: None,
        body_first: None,
        quiet_before_ns: None,
    };
    match &mut e {
        AppEvent::Http(m) | AppEvent::HttpHead(m) | AppEvent::HttpUnanswered(m) => {
            let m = std::sync::Arc::make_mut(m);
            // The request a response answers is compared as its own event.
            m.request = None;
            for at in [&mut m.first, &mut m.head_end, &mut m.last] {
                p.at.push(std::mem::replace(at, ZERO));
            }
            p.ttfb_ns = m.ttfb_ns.take();
            // Where the first body byte is: a segment, checked to lie
            // within the message.
            p.body_first = m.body_first.take();
        }
        AppEvent::Sse(s) => {
            p.compressed_sse = s.compressed;
            for at in [&mut s.first, &mut s.readable, &mut s.arrived] {
                p.at.push(std::mem::replace(at, ZERO));
            }
            p.held_back_ns = Some(std::mem::take(&mut s.held_back_ns));
            p.decodable_on_arrival = Some(std::mem::take(&mut s.decodable_on_arrival));
            // Time since the stream last showed something: a property of
            // the segments; checked to be no more than since the head.
            p.quiet_before_ns = Some(std::mem::take(&mut s.quiet_before_ns));
        }
        AppEvent::WsFrame(f) => {
            for at in [&mut f.first, &mut f.last] {
                p.at.push(std::mem::replace(at, ZERO));
            }
        }
        AppEvent::WsMessage(m) => {
            for at in [&mut m.first, &mut m.last] {
                p.at.push(std::mem::replace(at, ZERO));
            }
        }
    }
    (format!("{e:?}"), p)
}

/// Compares a cut with the unsplit run (content) and the byte-by-byte run
/// (positions); returns the differences.
fn check(name: &str, unsplit: &Cut, bytewise: &Cut, cut: &Cut) -> Vec<String> {
    let mut bad = Vec::new();
    if cut.events.len() != unsplit.events.len() {
        bad.push(format!(
            "{name}: {} events, unsplit {}",
            cut.events.len(),
            unsplit.events.len()
        ));
    }
    // Where a position of the bytewise run is in this cut.
    let map = |at: At| -> u64 {
        if at.frame == 0 {
            return 0;
        }
        match bytewise.segments.get(at.frame as usize - 1) {
            Some(held) => cut.frame_of(*held),
            None => u64::MAX,
        }
    };
    for (i, ((u, b), c)) in unsplit
        .events
        .iter()
        .zip(&bytewise.events)
        .zip(&cut.events)
        .enumerate()
    {
        let (uc, _) = split_event(u);
        let (cc, cp) = split_event(c);
        if uc != cc {
            bad.push(format!(
                "{name}: event {i} differs\n  unsplit {uc}\n  cut     {cc}"
            ));
            break;
        }
        let (_, bp) = split_event(b);
        let mut want: Vec<u64> = bp.at.iter().map(|a| map(*a)).collect();
        let got: Vec<u64> = cp.at.iter().map(|a| a.frame).collect();
        if cp.compressed_sse {
            // `arrived` of a compressed stream is the first segment with
            // compressed bytes since one whose text ended at an event
            // boundary: a property of the segments, not of a byte. It is
            // never after the segment of the event's first text.
            let arrived = got[2];
            if (1..=got[0]).contains(&arrived) {
                want[2] = arrived;
            }
        }
        let times_ok = cp.at.iter().all(|a| a.time == time_of(a.frame));
        let ttfb = bp.ttfb_ns.map(|t| {
            let first = bp.at[0];
            let request_end = At {
                frame: (first.frame as i64 - t / 1000) as u64,
                time: ZERO.time,
            };
            (map(first) as i64 - map(request_end) as i64) * 1000
        });
        let (held, decodable) = match (bp.held_back_ns, &want[..]) {
            (Some(_), [_, readable, arrived]) => (
                Some((*readable as i64 - *arrived as i64) * 1000),
                Some(readable == arrived),
            ),
            _ => (None, None),
        };
        let body_first_ok = cp
            .body_first
            .is_none_or(|b| b.frame >= got[0] && got.get(2).is_none_or(|last| b.frame <= *last))
            && cp.body_first.is_some() == bp.body_first.is_some();
        let quiet_ok = cp
            .quiet_before_ns
            .is_none_or(|q| q >= 0 && q <= cp.at[1].time.nanos());
        if want != got
            || !times_ok
            || !body_first_ok
            || !quiet_ok
            || ttfb != cp.ttfb_ns
            || held != cp.held_back_ns
            || decodable != cp.decodable_on_arrival
        {
            bad.push(format!(
                "{name}: event {i} positions: frames {got:?} want {want:?}, ttfb {:?} want {ttfb:?}, held back {:?} want {held:?}, decodable {:?} want {decodable:?}\n  {cc}",
                cp.ttfb_ns, cp.held_back_ns, cp.decodable_on_arrival
            ));
            break;
        }
    }
    bad
}

// ---------------------------------------------------------------------------

const SEEDS: u64 = 200;

/// Segment length bounds a seed picks from: byte by byte up to whole turns.
const MAX_LEN: [u64; 12] = [1, 2, 3, 4, 7, 13, 31, 100, 536, 1460, 9000, u64::MAX];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Re-cuts every HTTP / WebSocket connection of `capture`; returns
/// (connections, events per run, failures).
fn recut(capture: &Path) -> (usize, usize, Vec<String>) {
    let stem = capture.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
    let mut failures = Vec::new();
    let mut events = 0;
    let conns = streams(capture);
    for (conn, turns) in &conns {
        let unsplit = feed(*conn, turns, &mut |left| left);
        let bytewise = feed(*conn, turns, &mut |_| 1);
        events += unsplit.events.len();
        let name = format!("{stem} conn {conn} bytewise");
        failures.extend(check(&name, &unsplit, &bytewise, &bytewise));
        for seed in 0..SEEDS {
            let mut rng = Rng(seed ^ 0x5eed_0000 ^ (*conn << 20));
            let max = MAX_LEN[rng.below(MAX_LEN.len() as u64) as usize];
            let cut = feed(*conn, turns, &mut |left| {
                if max == u64::MAX {
                    left
                } else {
                    1 + rng.below(max)
                }
            });
            let name = format!("{stem} conn {conn} seed {seed} (segments up to {max} bytes)");
            let bad = check(&name, &unsplit, &bytewise, &cut);
            if !bad.is_empty() {
                failures.extend(bad);
                break;
            }
        }
    }
    (conns.len(), events, failures)
}

fn recut_all(captures: &[PathBuf]) {
    let mut failures = Vec::new();
    for capture in captures {
        let (conns, events, bad) = recut(capture);
        assert!(events > 0, "{}: no application events", capture.display());
        eprintln!(
            "{}: {conns} connections, {events} application events, {SEEDS} cuts each",
            capture.display()
        );
        failures.extend(bad);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn example_streams_cut_anywhere_give_the_same_events() {
    let captures: Vec<PathBuf> = [
        "http-keep-alive",
        "http-header-newline",
        "sse-gzip",
        "sse-gzip-buffered",
        "sse-plain",
        "websocket",
        "websocket-deflate",
    ]
    .iter()
    .map(|n| root().join("captures").join(format!("{n}.pcap")))
    .collect();
    recut_all(&captures);
}

#[test]
fn corpus_streams_cut_anywhere_give_the_same_events() {
    let corpus = root().join("../shared/corpus");
    if !corpus.is_dir() {
        eprintln!("SKIPPED: {} not found (CI has it)", corpus.display());
        return;
    }
    let captures: Vec<PathBuf> = [
        "wiki-http-chunked-gzip.pcap",
        "zeek-http-persistent-5req.pcap",
        "zeek-http-100-continue.pcap",
        "zeek-http-deflate-no-zlib-header.pcap",
        "suricata-http-pipelined-2req.pcap",
        "zeek-http-te-cl-desync.pcap",
        "zeek-websocket-jupyter.pcap",
        "suricata-websocket-permessage-deflate.pcap",
        "suricata-websocket-control-frag.pcap",
        "zeek-websocket-two-binary-fragments.pcap",
        "zeek-websocket-fragmented-http-reply.pcap",
        "pcap2har-websocket-segmented.pcap",
    ]
    .iter()
    .map(|n| corpus.join(n))
    .collect();
    recut_all(&captures);
}

// ---------------------------------------------------------------------------
// Decompression bombs.

#[path = "common/bombs.rs"]
mod bombs;
use bombs::{deflate_zeros, gzip_zeros};

/// 10 GB of zeros.
const BOMB: u64 = 10_000_000_000;

#[test]
fn the_zero_streams_are_what_they_claim() {
    // The same construction, small enough to decode here: exactly `n` zeros
    // and a valid gzip trailer.
    for n in [0u64, 1, 5 << 20, (7 << 20) + 12345] {
        let mut gz = Vec::new();
        gzip_zeros(n, &mut |b| gz.extend_from_slice(b));
        let mut out = Vec::new();
        let mut d = flate2::write::GzDecoder::new(&mut out);
        d.write_all(&gz).expect("valid gzip");
        d.finish().expect("valid trailer");
        assert_eq!(out.len() as u64, n);
        assert!(out.iter().all(|b| *b == 0));
    }
}

fn at(frame: u64) -> At {
    At {
        frame,
        time: time_of(frame),
    }
}

/// Limits to try a bomb with: the defaults (the ratio bound, 1000x past
/// 1 MiB, trips first on zeros), and the size bound alone.
fn bomb_limits() -> [(DecodeLimits, &'static str); 2] {
    let default = DecodeLimits::default();
    let size_only = DecodeLimits {
        max_ratio: u64::MAX,
        ..default
    };
    [(default, "ratio"), (size_only, "size")]
}

/// What a stopped decoding must look like: the limit anomaly, and for the
/// size bound exactly `max_decoded` bytes out.
fn check_stop(what: &str, anomaly: &str, decoded: u64, limits: &DecodeLimits, bound: &str) {
    assert!(anomaly.starts_with("decoding_limit"), "{what}: {anomaly}");
    assert!(decoded <= limits.max_decoded, "{what}: decoded {decoded}");
    match bound {
        "size" => {
            assert_eq!(decoded, limits.max_decoded, "{what}");
            assert!(anomaly.contains("more than"), "{what}: {anomaly}");
        }
        _ => assert!(anomaly.contains("compressed"), "{what}: {anomaly}"),
    }
}

/// A response with a 10 GB-decoding gzip body, in 64 KiB segments, straight
/// into an [`HttpConn`].
fn gzip_bomb(limits: DecodeLimits, bound: &str, content_type: &str) {
    let mut conn = HttpConn::new(0, limits);
    let mut out = Vec::new();
    // The body's length, to frame it.
    let mut wire = 0u64;
    gzip_zeros(BOMB, &mut |b| wire += b.len() as u64);
    let base = peak_reset();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Encoding: gzip\r\nContent-Length: {wire}\r\n\r\n"
    );
    let s2c = Direction::ServerToClient;
    conn.data(s2c, 0, head.as_bytes(), at(1), &mut out);
    let mut offset = head.len() as u64;
    let mut frame = 1;
    let mut pending = Vec::new();
    gzip_zeros(BOMB, &mut |b| {
        pending.extend_from_slice(b);
        while pending.len() >= 65536 {
            frame += 1;
            conn.data(s2c, offset, &pending[..65536], at(frame), &mut out);
            offset += 65536;
            pending.drain(..65536);
        }
    });
    frame += 1;
    conn.data(s2c, offset, &pending, at(frame), &mut out);
    let peak = peak_since(base);
    let msg = out
        .iter()
        .find_map(|e| match e {
            AppEvent::Http(m) => Some(m),
            _ => None,
        })
        .expect("the response ends");
    assert!(msg.complete, "the framing still ends the message");
    assert_eq!(msg.body_wire_len, wire);
    let anomaly = msg
        .anomalies
        .iter()
        .find(|a| a.name == "decoding_limit")
        .map(|a| a.detail.as_str())
        .unwrap_or("no decoding_limit");
    check_stop(
        "gzip",
        &format!("decoding_limit: {anomaly}"),
        msg.body_decoded_len,
        &limits,
        bound,
    );
    assert!(msg.body.len() <= chattcp::dissect::http::MAX_BODY_KEPT);
    assert!(peak < 8 << 20, "peak heap {peak} bytes");
    eprintln!(
        "gzip bomb, {content_type}, {bound} bound: {wire} wire bytes for {BOMB} decoded; stopped after {} ({anomaly}), peak heap {} KiB",
        msg.body_decoded_len,
        peak >> 10
    );
}

#[test]
fn a_gzip_bomb_stops_at_the_limit_in_bounded_memory() {
    for (limits, bound) in bomb_limits() {
        gzip_bomb(limits, bound, "text/plain");
    }
    // An event stream's text goes through the event parser too.
    let (limits, bound) = bomb_limits()[0];
    gzip_bomb(limits, bound, "text/event-stream");
}

/// One permessage-deflate message inflating to 10 GB, through a
/// [`Dissector`] that saw the upgrade.
fn deflate_bomb(limits: DecodeLimits, bound: &str) {
    let mut dissector = Dissector::with_limits(Collect::default(), limits);
    let mut frame = 0;
    let mut offsets = [0u64; 2];
    let mut send = |d: &mut Dissector<Collect>, dir: Direction, bytes: &[u8]| {
        frame += 1;
        let chunk = DataChunk {
            conn: 0,
            dir,
            chunk: Chunk::Data {
                offset: offsets[dir.index()],
                bytes,
            },
            frame,
            time: time_of(frame),
        };
        offsets[dir.index()] += bytes.len() as u64;
        d.event(&Event::Data(&chunk)).expect("event");
    };
    let (c2s, s2c) = (Direction::ClientToServer, Direction::ServerToClient);
    send(
        &mut dissector,
        c2s,
        b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    );
    send(
        &mut dissector,
        s2c,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
          Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    );
    // One binary message, compressed (RSV1), from the server: the deflate
    // stream of 10 GB of zeros (RFC 7692 drops only a trailing 00 00 ff ff).
    let mut payload_len = 0u64;
    deflate_zeros(BOMB, &mut |b| payload_len += b.len() as u64);
    let base = peak_reset();
    let mut header = vec![0x80 | 0x40 | 0x02, 127];
    header.extend_from_slice(&payload_len.to_be_bytes());
    send(&mut dissector, s2c, &header);
    let mut pending = Vec::new();
    deflate_zeros(BOMB, &mut |b| {
        pending.extend_from_slice(b);
        while pending.len() >= 65536 {
            send(&mut dissector, s2c, &pending[..65536]);
            pending.drain(..65536);
        }
    });
    send(&mut dissector, s2c, &pending);
    let peak = peak_since(base);
    dissector
        .event(&Event::End(&RunSummary::default()))
        .expect("end");
    let events = dissector.into_inner().0;
    let msg = events
        .iter()
        .find_map(|e| match e {
            AppEvent::WsMessage(m) if m.opcode == 2 => Some(m),
            _ => None,
        })
        .expect("the message ends");
    assert!(msg.compressed);
    assert!(
        msg.anomalies.iter().all(|a| a != "interrupted"),
        "{:?}",
        msg.anomalies
    );
    assert_eq!(msg.wire_len, payload_len);
    let anomaly = msg
        .anomalies
        .iter()
        .find(|a| a.starts_with("decoding_limit"))
        .map(String::as_str)
        .unwrap_or("no decoding_limit");
    check_stop("permessage-deflate", anomaly, msg.len, &limits, bound);
    assert!(msg.data.len() <= chattcp::dissect::websocket::MAX_MESSAGE_KEPT);
    assert!(peak < 8 << 20, "peak heap {peak} bytes");
    eprintln!(
        "permessage-deflate bomb, {bound} bound: {payload_len} wire bytes for {BOMB} inflated; stopped after {} ({anomaly}), peak heap {} KiB",
        msg.len,
        peak >> 10
    );
}

#[test]
fn a_permessage_deflate_bomb_stops_at_the_limit_in_bounded_memory() {
    for (limits, bound) in bomb_limits() {
        deflate_bomb(limits, bound);
    }
}
