//! Progress on long runs: a bar on stderr (bytes read of the file, packets,
//! connections, rate), drawn only when someone is watching a terminal.
//!
//! The bar is fed by counters: bytes as they are read, packets and
//! connections from the event stream (a local count per packet, shared every
//! 16,384), drawn four times a second by a thread of its own; with no
//! terminal nothing is drawn. Where a run is spread over threads, each
//! counts where its work is done ([`ProgressCounter`]): a sharded run's
//! workers count their own packets and connections, which never cross to
//! the thread that owns the bar.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{Event, EventSink};

/// Packets counted locally between two additions to the shared count.
const UPDATE_EVERY: u64 = 1 << 14;

/// Counters shared by the run and the bar's drawing thread.
#[derive(Default)]
struct Counters {
    bytes: AtomicU64,
    packets: AtomicU64,
    connections: AtomicU64,
    done: AtomicBool,
    /// A bar is drawn: counting packets and connections is worth its cost.
    watched: bool,
}

/// The progress of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    counters: Arc<Counters>,
}

impl Progress {
    /// A progress display for a file of `total_bytes` (if known); drawn only
    /// when `visible`. A thread redraws it four times a second from the
    /// counters, so that it moves whatever events reach this thread (a
    /// sharded run sends no packet events across).
    pub fn new(total_bytes: Option<u64>, visible: bool) -> Self {
        let counters = Arc::new(Counters {
            watched: visible,
            ..Counters::default()
        });
        let bar = visible.then(|| {
            let bar = match total_bytes {
                Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            };
            let template = if total_bytes.is_some() {
                "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} (eta {eta})"
            } else {
                "{spinner} {bytes} {binary_bytes_per_sec} {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            let (drawn, seen) = (bar.clone(), counters.clone());
            std::thread::spawn(move || {
                while !seen.done.load(Ordering::Relaxed) {
                    draw(&drawn, &seen);
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
            bar
        });
        Progress { bar, counters }
    }

    /// Wraps the capture's source so that the bytes read are counted.
    pub fn reader<R: Read>(&self, inner: R) -> CountingReader<R> {
        self.counter().reader(inner)
    }

    /// A handle on the counters that can be moved to where the reading and
    /// the tracking are done.
    pub fn counter(&self) -> ProgressCounter {
        ProgressCounter(self.counters.clone())
    }

    /// Passes the run's events on to `inner`, counting them for the bar;
    /// their end ends the bar's drawing.
    pub fn sink<'a>(&'a mut self, inner: &'a mut dyn EventSink) -> ProgressSink<'a> {
        ProgressSink::new(&self.counters, inner, true)
    }

    /// Runs `run` with `inner`, through [`Progress::sink`] when a bar is
    /// drawn. Without a bar, counting is only cost: a call and a match more
    /// for every event (1.2% of `conns --threads 1` on many.pcap).
    pub fn with_sink<T>(
        &mut self,
        inner: &mut dyn EventSink,
        run: impl FnOnce(&mut dyn EventSink) -> T,
    ) -> T {
        counted(&self.counters, true, inner, run)
    }

    /// Removes the bar (the run ended).
    pub fn finish(&self) {
        self.counters.done.store(true, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn draw(bar: &ProgressBar, c: &Counters) {
    bar.set_position(c.bytes.load(Ordering::Relaxed));
    let packets = c.packets.load(Ordering::Relaxed);
    let connections = c.connections.load(Ordering::Relaxed);
    bar.set_message(match (packets, connections) {
        (0, 0) => String::new(),
        (0, _) => format!("{connections} connections"),
        _ => format!("{packets} packets, {connections} connections"),
    });
}

/// Counts, for a [`Progress`], the bytes of the readers it wraps and the
/// packets and connections of the sinks it wraps.
#[derive(Clone)]
pub struct ProgressCounter(Arc<Counters>);

impl ProgressCounter {
    /// Wraps a reader.
    pub fn reader<R: Read>(&self, inner: R) -> CountingReader<R> {
        CountingReader {
            inner,
            counters: self.0.clone(),
        }
    }

    /// Passes one thread's events on to `inner`, counting its packets and
    /// connections; its end is that thread's, not the run's.
    pub fn sink<'a>(&'a self, inner: &'a mut dyn EventSink) -> ProgressSink<'a> {
        ProgressSink::new(&self.0, inner, false)
    }

    /// Runs `run` with `inner`, through [`ProgressCounter::sink`] when a
    /// bar is drawn (as [`Progress::with_sink`]).
    pub fn with_sink<T>(
        &self,
        inner: &mut dyn EventSink,
        run: impl FnOnce(&mut dyn EventSink) -> T,
    ) -> T {
        counted(&self.0, false, inner, run)
    }

    /// Packets counted so far (a thread's last 16,384 at most still its own).
    pub fn packets(&self) -> u64 {
        self.0.packets.load(Ordering::Relaxed)
    }

    /// Connections counted so far.
    pub fn connections(&self) -> u64 {
        self.0.connections.load(Ordering::Relaxed)
    }
}

/// Runs `run` with `inner`, counted in `counters` (as [`ProgressSink`]
/// with `ends_run`) only when a bar is drawn.
fn counted<T>(
    counters: &Counters,
    ends_run: bool,
    inner: &mut dyn EventSink,
    run: impl FnOnce(&mut dyn EventSink) -> T,
) -> T {
    if counters.watched {
        run(&mut ProgressSink::new(counters, inner, ends_run))
    } else {
        run(inner)
    }
}

/// A reader that counts what passes through it.
pub struct CountingReader<R> {
    inner: R,
    counters: Arc<Counters>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An event sink that counts packets and connections on the way.
pub struct ProgressSink<'a> {
    counters: &'a Counters,
    inner: &'a mut dyn EventSink,
    /// Packets not yet added to the shared count.
    packets: u64,
    /// The end of these events is the end of the run (not of one thread's
    /// share of it): the bar stops being drawn.
    ends_run: bool,
}

impl<'a> ProgressSink<'a> {
    fn new(counters: &'a Counters, inner: &'a mut dyn EventSink, ends_run: bool) -> Self {
        ProgressSink {
            counters,
            inner,
            packets: 0,
            ends_run,
        }
    }
}

impl EventSink for ProgressSink<'_> {
    fn frame_start(&mut self, frame: u64) {
        self.inner.frame_start(frame);
    }

    fn closed_rendered(&mut self, conn: u64, block: &[u8]) -> std::io::Result<()> {
        self.inner.closed_rendered(conn, block)
    }

    // What is handed over or shared goes on as it came: through `event`
    // (the default) it would reach `inner` as a copy to make.
    fn closed_shared(
        &mut self,
        summary: &Arc<crate::tracking::ConnectionSummary>,
    ) -> std::io::Result<()> {
        self.inner.closed_shared(summary)
    }

    fn closed_owned(
        &mut self,
        summary: crate::tracking::ConnectionSummary,
    ) -> std::io::Result<Option<crate::tracking::SummaryLists>> {
        self.inner.closed_owned(summary)
    }

    fn app_owned(&mut self, app: crate::dissect::AppEvent) -> std::io::Result<()> {
        self.inner.app_owned(app)
    }

    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        match event {
            Event::Packet(_) => {
                self.packets += 1;
                if self.packets == UPDATE_EVERY {
                    self.counters
                        .packets
                        .fetch_add(self.packets, Ordering::Relaxed);
                    self.packets = 0;
                }
            }
            Event::Opened(_) => {
                self.counters.connections.fetch_add(1, Ordering::Relaxed);
            }
            Event::End(_) => {
                self.counters
                    .packets
                    .fetch_add(self.packets, Ordering::Relaxed);
                self.packets = 0;
                if self.ends_run {
                    self.counters.done.store(true, Ordering::Relaxed);
                }
            }
            _ => {}
        }
        self.inner.event(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ignore;

    impl EventSink for Ignore {
        fn event(&mut self, _event: &Event<'_>) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Takes summaries handed over, and says so.
    #[derive(Default)]
    struct TakesOwned {
        owned: usize,
        copied: usize,
    }

    impl EventSink for TakesOwned {
        fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
            if matches!(event, Event::Closed(_)) {
                self.copied += 1;
            }
            Ok(())
        }

        fn closed_owned(
            &mut self,
            _summary: crate::tracking::ConnectionSummary,
        ) -> std::io::Result<Option<crate::tracking::SummaryLists>> {
            self.owned += 1;
            Ok(None)
        }
    }

    #[test]
    fn counting_hands_summaries_over_as_they_came() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/http-keep-alive.pcap");
        let progress = Progress::new(None, false);
        let counter = progress.counter();
        let mut inner = TakesOwned::default();
        let file = std::fs::File::open(path).expect("capture");
        let limits = crate::pipeline::Limits::default();
        crate::pipeline::run(file, limits, &mut counter.sink(&mut inner)).expect("run");
        assert_eq!((inner.owned, inner.copied), (1, 0));
        assert_eq!(counter.connections(), 1);
    }

    /// Counts the events it is given.
    #[derive(Default)]
    struct CountsEvents(u64);

    impl EventSink for CountsEvents {
        fn event(&mut self, _event: &Event<'_>) -> std::io::Result<()> {
            self.0 += 1;
            Ok(())
        }
    }

    #[test]
    fn events_are_counted_only_for_a_bar_and_always_passed_on() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/http-keep-alive.pcap");
        let mut seen = Vec::new();
        for watched in [true, false] {
            // Drawn or not, but with no terminal to draw on.
            let mut progress = Progress {
                bar: None,
                counters: Arc::new(Counters {
                    watched,
                    ..Counters::default()
                }),
            };
            let mut inner = CountsEvents::default();
            let file = std::fs::File::open(path).expect("capture");
            let limits = crate::pipeline::Limits::default();
            progress
                .with_sink(&mut inner, |sink| crate::pipeline::run(file, limits, sink))
                .expect("run");
            let counter = progress.counter();
            seen.push((inner.0, counter.packets(), counter.connections()));
        }
        let (events, packets, connections) = seen[0];
        assert!(events > packets && packets > 0, "{seen:?}");
        assert_eq!(connections, 1);
        assert_eq!(seen[1], (events, 0, 0));
    }

    #[test]
    fn a_thread_ending_its_share_does_not_end_the_run() {
        let progress = Progress::new(None, false);
        let counter = progress.counter();
        let summary = crate::tracking::RunSummary::default();
        let mut inner = Ignore;
        let mut worker = counter.sink(&mut inner);
        worker.packets = 5;
        worker.event(&Event::End(&summary)).expect("passed on");
        // Its last packets are counted at its end, and the bar goes on.
        assert_eq!(counter.packets(), 5);
        assert!(!progress.counters.done.load(Ordering::Relaxed));
        let mut whole_run = Progress::new(None, false);
        let mut whole = whole_run.sink(&mut inner);
        whole.event(&Event::End(&summary)).expect("passed on");
        assert!(whole.counters.done.load(Ordering::Relaxed));
    }

    #[test]
    fn the_bar_follows_the_bytes_read_whatever_events_come() {
        // A sharded run sends no packet events to the thread that owns the
        // bar: its position must still come from the bytes read.
        let progress = Progress::new(Some(1000), false);
        let mut read = progress.reader(&[7u8; 600][..]);
        let mut buf = [0u8; 1000];
        let n = read.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 600);
        let bar = ProgressBar::hidden();
        draw(&bar, &progress.counters);
        assert_eq!(bar.position(), 600);
        assert_eq!(bar.message(), "");
        progress
            .counters
            .connections
            .fetch_add(3, Ordering::Relaxed);
        draw(&bar, &progress.counters);
        assert_eq!(bar.message(), "3 connections");
    }
}
