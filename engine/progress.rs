//! Progress on long runs: a bar on stderr (bytes read of the file, packets,
//! connections, rate), drawn only when someone is watching a terminal.
//!
//! The bar is fed by the event stream itself, so it costs a counter per
//! packet and a redraw a few times a second; with no terminal it costs
//! nothing at all.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{Event, EventSink};

/// Packets between two updates of the bar's counters.
const UPDATE_EVERY: u64 = 1 << 14;

/// The progress of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    bytes: Arc<AtomicU64>,
    packets: u64,
    connections: u64,
}

impl Progress {
    /// A progress display for a file of `total_bytes` (if known); drawn only
    /// when `visible`.
    pub fn new(total_bytes: Option<u64>, visible: bool) -> Self {
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
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            bar,
            bytes: Arc::new(AtomicU64::new(0)),
            packets: 0,
            connections: 0,
        }
    }

    /// Wraps the capture's source so that the bytes read are counted.
    pub fn reader<R: Read>(&self, inner: R) -> CountingReader<R> {
        CountingReader {
            inner,
            bytes: self.bytes.clone(),
        }
    }

    /// A counter of bytes read that can be moved to where the reading is done.
    pub fn counter(&self) -> ByteCounter {
        ByteCounter(self.bytes.clone())
    }

    /// Passes events on to `inner`, counting them for the bar.
    pub fn sink<'a>(&'a mut self, inner: &'a mut dyn EventSink) -> ProgressSink<'a> {
        ProgressSink {
            progress: self,
            inner,
        }
    }

    fn update(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.bytes.load(Ordering::Relaxed));
            bar.set_message(format!(
                "{} packets, {} connections",
                self.packets, self.connections
            ));
        }
    }

    /// Removes the bar (the run ended).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Counts the bytes of the readers it wraps, for a [`Progress`].
#[derive(Clone)]
pub struct ByteCounter(Arc<AtomicU64>);

impl ByteCounter {
    /// Wraps a reader.
    pub fn reader<R: Read>(&self, inner: R) -> CountingReader<R> {
        CountingReader {
            inner,
            bytes: self.0.clone(),
        }
    }
}

/// A reader that counts what passes through it.
pub struct CountingReader<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An event sink that counts packets and connections on the way.
pub struct ProgressSink<'a> {
    progress: &'a mut Progress,
    inner: &'a mut dyn EventSink,
}

impl EventSink for ProgressSink<'_> {
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        match event {
            Event::Packet(_) => {
                self.progress.packets += 1;
                if self.progress.packets % UPDATE_EVERY == 0 {
                    self.progress.update();
                }
            }
            Event::Opened(_) => self.progress.connections += 1,
            Event::End(_) => self.progress.finish(),
            _ => {}
        }
        self.inner.event(event)
    }
}
