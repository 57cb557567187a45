//! The hot path allocates nothing per packet: once a connection is under
//! way, each of its packets is decoded, analysed (Wireshark's sequence
//! analysis), reassembled and dissected (an HTTP body framed by its
//! Content-Length) without a heap allocation. A connection allocates when
//! it opens, when a message starts, and a few times as a buffer grows; so a
//! download ten times longer makes no more allocations than a short one.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;

use chattcp::dissect::{AppEvent, Dissector};
use chattcp::events::{Event, EventSink};
use chattcp::pipeline::{self, Limits};
use common::hostile::{Conversation, MSS};

/// Counts this thread's allocations (tests run in parallel threads).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the thread's slot may be gone while it shuts down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What came out of a run: enough to know the whole download went through.
#[derive(Default)]
struct Tally {
    packets: u64,
    data_bytes: u64,
    response_body: u64,
}

impl EventSink for Tally {
    fn event(&mut self, event: &Event<'_>) -> io::Result<()> {
        match event {
            Event::Packet(_) => self.packets += 1,
            Event::Data(d) => {
                if let chattcp::reassembly::Chunk::Data { bytes, .. } = d.chunk {
                    self.data_bytes += bytes.len() as u64;
                }
            }
            Event::App(AppEvent::Http(m)) if m.method().is_none() => {
                self.response_body += m.body_decoded_len;
            }
            _ => {}
        }
        Ok(())
    }
}

/// One HTTP download of `body` with `coding` (a Content-Encoding, if any),
/// sent in full segments, the client acknowledging every second segment
/// (as Linux's delayed ACK does).
fn download(body: &[u8], coding: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut c = Conversation::open(&mut out).expect("handshake");
    c.send(0, b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    c.ack(1).expect("ack");
    let coding = coding.map_or(String::new(), |c| format!("Content-Encoding: {c}\r\n"));
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{coding}Content-Length: {}\r\n\r\n",
        body.len()
    );
    c.send(1, head.as_bytes()).expect("head");
    for (i, segment) in body.chunks(MSS).enumerate() {
        c.send(1, segment).expect("body");
        if i % 2 == 1 {
            c.ack(0).expect("ack");
        }
    }
    out
}

/// `len` bytes of text that compresses about as well as prose.
fn text(len: usize) -> Vec<u8> {
    let mut rng = common::rng::XorShift(0x9e37_79b9_7f4a_7c15);
    (0..len).map(|_| b"etaoin shrdlu"[rng.below(13)]).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("compress")
}

/// Allocations made by decoding, tracking and dissecting `capture` on
/// this thread, and what the run saw.
fn allocations(capture: &[u8]) -> (u64, Tally) {
    let mut dissector = Dissector::new(Tally::default());
    let before = ALLOCATIONS.with(Cell::get);
    pipeline::run(capture, Limits::default(), &mut dissector).expect("run");
    let made = ALLOCATIONS.with(Cell::get) - before;
    (made, dissector.into_inner())
}

#[test]
fn a_download_ten_times_longer_makes_no_more_allocations() {
    let (short, s) = allocations(&download(&vec![b'x'; 1_000 * MSS], None));
    let (long, l) = allocations(&download(&vec![b'x'; 10_000 * MSS], None));
    // The whole body went through reassembly and HTTP in both runs.
    assert_eq!(s.response_body, 1_000 * MSS as u64);
    assert_eq!(l.response_body, 10_000 * MSS as u64);
    assert!(l.data_bytes > 10_000 * MSS as u64);
    let more_packets = l.packets - s.packets;
    assert_eq!(more_packets, 9_000 + 4_500);
    assert!(
        long <= short,
        "{} more allocations for {more_packets} more packets ({short} for the short download, {long} for the long one)",
        long.saturating_sub(short)
    );
}

#[test]
fn a_gzip_download_ten_times_longer_makes_no_more_allocations() {
    let (short_text, long_text) = (text(1_000 * MSS), text(10_000 * MSS));
    let (short, s) = allocations(&download(&gzip(&short_text), Some("gzip")));
    let (long, l) = allocations(&download(&gzip(&long_text), Some("gzip")));
    // Every byte was inflated in both runs.
    assert_eq!(s.response_body, short_text.len() as u64);
    assert_eq!(l.response_body, long_text.len() as u64);
    let more_packets = l.packets - s.packets;
    assert!(more_packets > 4_000, "{more_packets}");
    assert!(
        long <= short,
        "{} more allocations for {more_packets} more packets ({short} for the short download, {long} for the long one)",
        long.saturating_sub(short)
    );
}
