//! Parallel runs: connections sharded across worker threads by a symmetric
//! flow hash, with output identical to a single thread's.
//!
//! Every worker reads and decodes the whole capture (reading is the cheap
//! part), tracks and dissects only its shard's connections, and lets the
//! other packets' times drive its retirement, so that each connection is
//! summarised at the same frame as in a single run. The workers' events
//! are merged back in frame order: at one frame, the summaries retired then
//! (from every shard, in connection order), then the events of that frame's
//! packet. Connection numbers are given in the merge, in order of first
//! appearance, exactly as a single run (and tshark) numbers them.
//!
//! What crosses between threads is what per-connection consumers need:
//! openings, handshakes, the application events of the kinds the consumer
//! takes, summaries and the end; for `conns`'s text, each connection's
//! block rendered by its worker in place of its summary. A consumer that
//! needs every packet or every byte (`on_packet`, `on_data`) runs on one
//! thread.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use crate::capture::CaptureError;
use crate::conn_table::{ConnTable, ShortBytes, Slot};
use crate::dissect::{AppEvent, AppKinds, AppOverview, Dissector};
use crate::events::{Event, EventSink, Handshake, AT_END};
use crate::pipeline::{self, Limits, RunError, RunOutcome, Shard};
use crate::progress::ProgressCounter;
use crate::tracking::{ConnectionInfo, ConnectionSummary, RunSummary, SummaryLists};

/// How worker threads render each connection's block themselves, for a
/// sink that takes them so ([`EventSink::closed_rendered`]): `conns`'s
/// text. A summary and its overview are about 1,500 bytes, its block a
/// few hundred: rendered where the summary is made, while it is still in
/// that core's cache, a connection's block is all that crosses to the
/// merging thread, and the rendering is shared among the workers. (Not
/// the JSON: at about 2 KB a line on many.pcap, more than the summary and
/// overview, it was no faster rendered in the workers, and held more
/// memory.)
#[derive(Clone, Copy, Debug)]
pub struct WorkerRendering {
    /// A connection's block, all but its number, appended to the text.
    pub summary: fn(&ConnectionSummary, &mut Vec<u8>),
    /// Its application lines, appended after the block.
    pub overview: fn(&AppOverview, &mut Vec<u8>),
}

/// Units sent in one message between a worker and the merge. Each message
/// may wake the merge, and on two cores a wake-up takes a core from a
/// worker: with 256, `run` on many.pcap switched threads 5,400-6,000
/// times, with 1,024 about 1,400 (a batch of units is 32 KiB).
const BATCH: usize = 1024;
/// Batches in flight per worker: bounds memory whatever the capture.
const IN_FLIGHT: usize = 4;
/// Bytes of application events and rendered blocks a batch holds at most
/// (and one unit more): a message may hold a head of 64 KiB read three
/// ways, or a kept body of 1 MiB, and BATCH of those would be gigabytes.
/// With a batch being built and one being merged, a worker's events in
/// flight stay under (IN_FLIGHT + 2) x 4 MiB, plus a unit per batch.
const BATCH_WEIGHT: usize = 4 << 20;

/// What one worker reports of one frame, or of the end. What a unit
/// carries besides (an opening, a handshake, application events) travels
/// in its [`Batch`]'s vectors, in the order of the units.
enum Unit {
    /// A summary retired at `frame`, after `apps` application events
    /// flushed just before it, and its connection's overview if it has one.
    Retired {
        frame: u64,
        apps: u32,
        overview: bool,
        summary: Arc<ConnectionSummary>,
    },
    /// A summary retired at `frame`, rendered by the worker
    /// ([`WorkerRendering`]): its `len` bytes of text are next in the
    /// batch's `text`.
    RetiredText {
        frame: u64,
        conn: u64,
        apps: u32,
        len: u32,
    },
    /// The worker's packet at `frame`: whether it opened a connection and
    /// completed a handshake, and how many application events the
    /// dissectors found in it.
    Packet {
        frame: u64,
        conn: u64,
        opened: bool,
        handshake: bool,
        apps: u32,
    },
    /// The worker is done.
    End(Box<Result<RunOutcome, RunError>>),
}

/// What a worker sends at once: units in frame order, and what they carry
/// in vectors of their own, in the same order. A batch goes back and forth
/// between its worker and the merge, so that no unit allocates: openings
/// and handshakes used to be boxed and each packet's events put in a
/// vector of their own, five allocations per connection made by the worker
/// and freed by the merge (the costliest kind of free: to another
/// thread's heap).
#[derive(Default)]
struct Batch {
    units: Vec<Unit>,
    opened: Vec<ConnectionInfo>,
    handshakes: Vec<Handshake>,
    apps: Vec<AppEvent>,
    /// Overviews, copied in: a few hundred bytes each, read by the merge
    /// in order from one block instead of one allocation each.
    overviews: Vec<AppOverview>,
    /// On the way back: the lists of summaries the merge is done with (and
    /// nothing else holds), which the worker's tracker fills again. A
    /// summary's lists (its Zeek history, its SYN times) were three more
    /// allocations per connection freed by the merge.
    lists: Vec<SummaryLists>,
    /// The blocks of the `RetiredText` units, one after the other.
    text: Vec<u8>,
}

impl Batch {
    fn with_capacity(units: usize) -> Self {
        Batch {
            units: Vec::with_capacity(units),
            ..Batch::default()
        }
    }
}

impl Unit {
    fn frame(&self) -> u64 {
        match self {
            Unit::Retired { frame, .. }
            | Unit::RetiredText { frame, .. }
            | Unit::Packet { frame, .. } => *frame,
            Unit::End(_) => AT_END,
        }
    }
}

/// Collects a worker's events into units.
struct Collect {
    out: SyncSender<Batch>,
    /// Emptied batches coming back from the merge: a batch is tens of
    /// kilobytes, too large to allocate afresh each time.
    spent: Receiver<Batch>,
    batch: Batch,
    /// The frame being processed.
    frame: u64,
    /// The frame's packet was seen: what follows belongs to its unit.
    in_packet: bool,
    /// Its connection (the worker's own number).
    packet_conn: u64,
    /// What the frame's packet carries so far: its unit is made when the
    /// next frame starts, if it carries anything.
    opened: Option<ConnectionInfo>,
    handshake: Option<Handshake>,
    packet_apps: Vec<AppEvent>,
    /// Application events flushed before a summary.
    apps: Vec<AppEvent>,
    /// The overview lent just before a summary, when the consumer takes
    /// them ([`AppKinds::OVERVIEW`]).
    overview: Option<AppOverview>,
    /// Summaries' lists back from the merge, for the tracker to reuse.
    spare_lists: Vec<SummaryLists>,
    /// The kinds the merge's consumer takes: the others are dropped here,
    /// on the thread that made them, and never cross.
    deliver: AppKinds,
    /// Bytes of the application events collected since the last batch
    /// was sent.
    weight: usize,
    /// Summaries rendered here, when the merge's sink takes them so.
    rendering: Option<WorkerRendering>,
    /// The application lines of overviews lent before their summaries,
    /// by connection: they end the connection's block.
    app_text: ConnTable<ShortBytes>,
    /// Where an overview is rendered before it is kept.
    scratch: Vec<u8>,
}

impl Collect {
    /// A collector sending its batches to `out`, reusing those that come
    /// back on `spent`, and keeping the application events of the kinds
    /// in `deliver`; one of `shards` workers, which share the bound of one
    /// thread's application lines waiting for their summaries.
    fn new(
        out: SyncSender<Batch>,
        spent: Receiver<Batch>,
        deliver: AppKinds,
        rendering: Option<WorkerRendering>,
        shards: usize,
    ) -> Self {
        Collect {
            out,
            spent,
            batch: Batch::with_capacity(BATCH),
            frame: 0,
            in_packet: false,
            packet_conn: 0,
            opened: None,
            handshake: None,
            packet_apps: Vec::new(),
            apps: Vec::new(),
            overview: None,
            spare_lists: Vec::new(),
            deliver,
            weight: 0,
            rendering,
            app_text: ConnTable::with_window((ShortBytes::WINDOW / shards.max(1)).max(1 << 10)),
            scratch: Vec::new(),
        }
    }

    /// Adds `unit`, whose opening, handshake and events are already in the
    /// batch's vectors.
    fn push(&mut self, unit: Unit) -> std::io::Result<()> {
        self.batch.units.push(unit);
        if self.batch.units.len() >= BATCH || self.weight >= BATCH_WEIGHT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.batch.units.is_empty() {
            return Ok(());
        }
        self.weight = 0;
        let mut fresh = self
            .spent
            .try_recv()
            .unwrap_or_else(|_| Batch::with_capacity(BATCH));
        if self.spare_lists.len() < BATCH {
            self.spare_lists.append(&mut fresh.lists);
        }
        fresh.lists.clear();
        let batch = std::mem::replace(&mut self.batch, fresh);
        self.out
            .send(batch)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "merge stopped"))
    }

    /// Moves the application events flushed before a summary into the
    /// batch; says how many.
    fn take_flushed_apps(&mut self) -> u32 {
        let apps = self.apps.len() as u32;
        self.batch.apps.append(&mut self.apps);
        apps
    }

    /// A summary retired now, after the application events flushed
    /// before it.
    fn retire(&mut self, summary: Arc<ConnectionSummary>) -> std::io::Result<()> {
        let apps = self.take_flushed_apps();
        let overview = stash(&mut self.overview, &mut self.batch.overviews);
        self.push(Unit::Retired {
            frame: self.frame,
            apps,
            overview,
            summary,
        })
    }

    /// A summary retired now, rendered here (with the application lines
    /// of its overview, lent before it), after the application events
    /// flushed before it.
    fn retire_rendered(
        &mut self,
        render: WorkerRendering,
        summary: &ConnectionSummary,
    ) -> std::io::Result<()> {
        let start = self.batch.text.len();
        (render.summary)(summary, &mut self.batch.text);
        if let Slot::Live(lines) = self.app_text.close(summary.conn) {
            self.batch.text.extend_from_slice(lines.as_bytes());
        }
        let len = self.batch.text.len() - start;
        self.weight += len;
        let apps = self.take_flushed_apps();
        self.push(Unit::RetiredText {
            frame: self.frame,
            conn: summary.conn,
            apps,
            len: len as u32,
        })
    }

    /// Sends the current packet's unit, if it carries anything.
    fn close_packet(&mut self) -> std::io::Result<()> {
        if self.opened.is_none() && self.handshake.is_none() && self.packet_apps.is_empty() {
            return Ok(());
        }
        let opened = stash(&mut self.opened, &mut self.batch.opened);
        let handshake = stash(&mut self.handshake, &mut self.batch.handshakes);
        let apps = self.packet_apps.len() as u32;
        self.batch.apps.append(&mut self.packet_apps);
        self.push(Unit::Packet {
            frame: self.frame,
            conn: self.packet_conn,
            opened,
            handshake,
            apps,
        })
    }
}

/// Moves what `pending` holds to the end of `batch`; says whether it held
/// anything.
fn stash<T>(pending: &mut Option<T>, batch: &mut Vec<T>) -> bool {
    pending.take().map(|item| batch.push(item)).is_some()
}

impl EventSink for Collect {
    fn closed_owned(
        &mut self,
        mut summary: ConnectionSummary,
    ) -> std::io::Result<Option<SummaryLists>> {
        if let Some(render) = self.rendering {
            self.retire_rendered(render, &summary)?;
            // Done with here: its lists go straight back to the tracker.
            return Ok(Some(summary.take_lists()));
        }
        self.retire(Arc::new(summary))?;
        Ok(self.spare_lists.pop())
    }

    fn app_owned(&mut self, app: AppEvent) -> std::io::Result<()> {
        if !self.deliver.takes(&app) {
            return Ok(());
        }
        self.weight += app.weight();
        if self.in_packet {
            self.packet_apps.push(app);
        } else {
            self.apps.push(app);
        }
        Ok(())
    }

    fn frame_start(&mut self, frame: u64) {
        // A failed send ends the run at the next event anyway.
        let _ = self.close_packet();
        self.frame = frame;
        self.in_packet = false;
    }

    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        match event {
            Event::Opened(info) => {
                self.in_packet = true;
                self.packet_conn = info.conn;
                self.opened = Some(**info);
            }
            Event::Packet(p) => {
                self.in_packet = true;
                self.packet_conn = p.conn;
            }
            // A sink that takes rendered blocks (`conns`'s text) has no
            // use for handshakes: they would be a third of the units.
            Event::Handshake(h) if self.rendering.is_none() => self.handshake = Some(**h),
            Event::Handshake(_) => {}
            Event::App(app) if self.deliver.takes(app) => self.app_owned((*app).clone())?,
            Event::App(_) => {}
            Event::Overview(o) if self.deliver.contains(AppKinds::OVERVIEW) => {
                if let Some(render) = self.rendering {
                    self.scratch.clear();
                    (render.overview)(o, &mut self.scratch);
                    *self.app_text.slot(o.conn) = Slot::Live(ShortBytes::new(&self.scratch));
                } else {
                    self.overview = Some((*o).clone());
                }
            }
            Event::Overview(_) => {}
            Event::Closed(summary) => match self.rendering {
                Some(render) => self.retire_rendered(render, summary)?,
                None => self.retire(Arc::new((*summary).clone()))?,
            },
            Event::End(_) => self.close_packet()?,
            Event::Data(_) => {}
        }
        Ok(())
    }
}

/// Runs one shard of a capture on this thread, sending units to `out`.
fn work<R: Read + Send>(
    source: R,
    limits: Limits,
    shard: Shard,
    job: WorkerJob,
    out: SyncSender<Batch>,
    spent: Receiver<Batch>,
) {
    let WorkerJob {
        dissect,
        rendering,
        progress,
    } = job;
    let collect = Collect::new(
        out.clone(),
        spent,
        dissect.unwrap_or(AppKinds::NONE),
        rendering,
        shard.count,
    );
    // The worker's own packets and connections, counted where they are
    // (none of its packets crosses to the merge).
    let run = |sink: &mut dyn EventSink| match &progress {
        Some(counter) => counter.with_sink(sink, |sink| {
            pipeline::run_shard(source, limits, sink, Some(shard))
        }),
        None => pipeline::run_shard(source, limits, sink, Some(shard)),
    };
    let (result, mut collect) = if dissect.is_some() {
        let mut worker = Dissector::with_limits(collect, limits.decode);
        if dissect.is_some_and(|kinds| kinds.contains(AppKinds::OVERVIEW)) {
            // Rendered here, a connection's application lines are kept
            // until its summary, in place of its overview.
            worker = if rendering.is_some() {
                worker.with_overviews_when_final()
            } else {
                worker.with_overviews()
            };
        }
        let result = run(&mut worker);
        (result, worker.into_inner())
    } else {
        let mut collect = collect;
        let result = run(&mut collect);
        (result, collect)
    };
    let _ = collect.close_packet();
    let _ = collect.flush();
    let _ = out.send(Batch {
        units: vec![Unit::End(Box::new(result))],
        ..Batch::default()
    });
}

/// What a worker does besides tracking its share of the connections.
struct WorkerJob {
    /// The application events to find (every connection is dissected).
    dissect: Option<AppKinds>,
    /// Renders each connection's block itself.
    rendering: Option<WorkerRendering>,
    /// Counts its packets and connections for a progress bar.
    progress: Option<ProgressCounter>,
}

/// What each of `shards` workers may hold, so that together they hold no
/// more than one thread would: the run's bounds on memory stand whatever
/// `--threads` says.
fn worker_limits(limits: Limits, shards: usize) -> Limits {
    let shards = shards.max(1);
    let mut per_worker = limits;
    // A share of the reassembly budget, but room for one direction's
    // buffer at least, or no worker could reassemble anything.
    per_worker.reassembly.total =
        (limits.reassembly.total / shards).max(limits.reassembly.per_direction);
    // A share of the connection table: open connections, and finished ones
    // remembered for their late packets.
    per_worker.max_open = (limits.max_open / shards).max(1);
    per_worker.max_finished = (limits.max_finished / shards).max(1);
    per_worker
}

/// Runs a capture on `shards` worker threads, opening it once per worker
/// with `open`, and sends the merged events to `sink`: openings,
/// handshakes, summaries and the end, in the order and with the connection
/// numbers of a single run, and, when `dissect` is given, the application
/// events of the kinds it names. Packet and data events are not sent;
/// with `progress` (and its bar drawn), the workers count their packets
/// and connections there.
///
/// With `dissect`, every connection is dissected, whatever kinds are
/// named: the kinds not named are dropped by the worker that found them
/// (freed on the thread that allocated them, and nothing handed over).
///
/// With `rendering`, the workers render each summary and its overview
/// themselves, and `sink` gets them as blocks
/// ([`EventSink::closed_rendered`]) instead of `Closed` and `Overview`
/// events, and no `Handshake` events.
pub fn run_sharded<R, F>(
    open: F,
    limits: Limits,
    shards: usize,
    dissect: Option<AppKinds>,
    rendering: Option<WorkerRendering>,
    progress: Option<&ProgressCounter>,
    sink: &mut dyn EventSink,
) -> Result<RunOutcome, RunError>
where
    R: Read + Send,
    F: Fn() -> std::io::Result<R> + Sync,
{
    let shards = shards.max(1);
    let per_worker = worker_limits(limits, shards);
    std::thread::scope(|scope| {
        let mut inputs = Vec::with_capacity(shards);
        for index in 0..shards {
            let (tx, rx) = sync_channel::<Batch>(IN_FLIGHT);
            // Never blocks the merge: at most the batches in flight come back.
            let (spent_tx, spent_rx) = sync_channel::<Batch>(IN_FLIGHT + 2);
            let source = open().map_err(|e| RunError::Capture(CaptureError::Io(e)))?;
            let job = WorkerJob {
                dissect,
                rendering,
                progress: progress.cloned(),
            };
            scope.spawn(move || {
                work(
                    source,
                    per_worker,
                    Shard {
                        index,
                        count: shards,
                    },
                    job,
                    tx,
                    spent_rx,
                )
            });
            inputs.push(Input {
                rx,
                spent: spent_tx,
                queue: VecDeque::new(),
                opened: VecDeque::new(),
                handshakes: VecDeque::new(),
                apps: VecDeque::new(),
                overviews: VecDeque::new(),
                text: Vec::new(),
                text_at: 0,
                done_lists: Vec::new(),
                done: false,
                numbers: ConnTable::default(),
            });
        }
        // A response's request is numbered with it only when the request's
        // own event does not cross (see `renumber_app`).
        let requests_cross = dissect.is_some_and(|k| k.contains(AppKinds::HTTP_REQUEST));
        merge(inputs, sink, !requests_cross)
    })
}

struct Input {
    rx: Receiver<Batch>,
    /// Where emptied batches go back to the worker, for reuse.
    spent: SyncSender<Batch>,
    /// The units of the batch being merged, and what they carry, taken
    /// from the front as the units are.
    queue: VecDeque<Unit>,
    opened: VecDeque<ConnectionInfo>,
    handshakes: VecDeque<Handshake>,
    apps: VecDeque<AppEvent>,
    overviews: VecDeque<AppOverview>,
    /// The batch's rendered blocks, and where the next one starts.
    text: Vec<u8>,
    text_at: usize,
    /// The lists of summaries delivered and held by nothing else, to go
    /// back with the emptied batch.
    done_lists: Vec<SummaryLists>,
    done: bool,
    /// The run's number of each of the worker's open connections, by the
    /// worker's own number: a worker numbers its connections in order of
    /// appearance, as the run does, so they form a sliding window.
    numbers: ConnTable<u64>,
}

impl Input {
    /// The next unit, waiting for the worker if needed.
    #[inline]
    fn head(&mut self) -> Option<&Unit> {
        if self.queue.is_empty() && !self.done {
            self.refill();
        }
        self.queue.front()
    }

    /// Waits for the worker's next batch.
    #[cold]
    fn refill(&mut self) {
        match self.rx.recv() {
            Ok(batch) => {
                // The batch becomes the queues as it is (no copy), and
                // the emptied queues go back to the worker.
                fn swap<T>(queue: &mut VecDeque<T>, fresh: Vec<T>) -> Vec<T> {
                    let mut spent = Vec::from(std::mem::replace(queue, VecDeque::from(fresh)));
                    spent.clear();
                    spent
                }
                let mut text = std::mem::replace(&mut self.text, batch.text);
                text.clear();
                self.text_at = 0;
                let spent = Batch {
                    units: swap(&mut self.queue, batch.units),
                    opened: swap(&mut self.opened, batch.opened),
                    handshakes: swap(&mut self.handshakes, batch.handshakes),
                    apps: swap(&mut self.apps, batch.apps),
                    overviews: swap(&mut self.overviews, batch.overviews),
                    lists: std::mem::take(&mut self.done_lists),
                    text,
                };
                // A full return channel or a finished worker: dropped.
                let _ = self.spent.try_send(spent);
            }
            Err(_) => self.done = true,
        }
    }
}

/// A summary retired at the frame being merged, waiting for the others
/// retired then (summaries go out in connection order).
struct Retiring {
    /// The run's number of its connection.
    number: u64,
    /// Its application events, in `retired_apps`.
    apps: std::ops::Range<usize>,
    /// Its overview, in `retired_overviews`.
    overview: Option<usize>,
    summary: Retired,
    /// The input it came from, which its lists go back to.
    input: usize,
}

/// A retired connection's summary, as its worker sent it.
enum Retired {
    Summary(Arc<ConnectionSummary>),
    /// Rendered: the worker's number of its connection, and its block in
    /// `retired_text`.
    Text(u64, std::ops::Range<usize>),
}

/// Takes `input`'s next unit, a retired summary, numbered as the run
/// numbers it; its application events and overview go to the end of
/// `apps` and `overviews`.
fn take_retired(
    input: &mut Input,
    w: usize,
    apps: &mut Vec<AppEvent>,
    overviews: &mut Vec<AppOverview>,
    text: &mut Vec<u8>,
) -> Option<Retiring> {
    let (count, overview, mut summary) = match input.queue.pop_front() {
        Some(Unit::Retired {
            apps,
            overview,
            summary,
            ..
        }) => (apps, overview, Retired::Summary(summary)),
        Some(Unit::RetiredText {
            conn, apps, len, ..
        }) => {
            // The worker put the block in the batch with its unit.
            let block = input
                .text
                .get(input.text_at..input.text_at + len as usize)
                .unwrap_or_default();
            input.text_at += block.len();
            let start = text.len();
            text.extend_from_slice(block);
            (apps, false, Retired::Text(conn, start..text.len()))
        }
        _ => return None,
    };
    let conn = match &summary {
        Retired::Summary(s) => s.conn,
        Retired::Text(conn, _) => *conn,
    };
    let number = match input.numbers.close(conn) {
        Slot::Live(number) => number,
        _ => conn,
    };
    if let Retired::Summary(s) = &mut summary {
        // Not shared yet: numbered in place.
        Arc::make_mut(s).conn = number;
    }
    let overview = overview
        .then(|| input.overviews.pop_front())
        .flatten()
        .map(|mut o| {
            o.conn = number;
            overviews.push(o);
            overviews.len() - 1
        });
    Some(Retiring {
        number,
        apps: take(&mut input.apps, count, apps),
        overview,
        summary,
        input: w,
    })
}

/// Moves the next `count` events of `from` to the end of `to`; returns
/// where they are there.
fn take(
    from: &mut VecDeque<AppEvent>,
    count: u32,
    to: &mut Vec<AppEvent>,
) -> std::ops::Range<usize> {
    // The worker put them in the batch with their unit.
    debug_assert!(count as usize <= from.len());
    let start = to.len();
    to.extend(from.drain(..(count as usize).min(from.len())));
    start..to.len()
}

/// Gives `app` the run's number `conn`, and, with `with_request`, the
/// request a response answers too.
fn renumber_app(app: &mut AppEvent, conn: u64, with_request: bool) {
    match app {
        // Shared with the worker's request queue or a response: numbered in
        // place, not copied.
        AppEvent::Http(m) | AppEvent::HttpHead(m) | AppEvent::HttpUnanswered(m) => {
            m.conn.set(conn);
            // A response's `request` is a message of the same connection,
            // shared with the request's own event, which numbers it when
            // it crosses (a request's event always comes before its
            // response's). When requests do not cross (a consumer of
            // responses alone), it is numbered here; otherwise it is left
            // alone, as reading it would cost a cache line per response.
            // tests/threads.rs checks r.request.conn.
            if with_request {
                if let Some(request) = &m.request {
                    request.conn.set(conn);
                }
            }
        }
        AppEvent::Sse(e) => e.conn = conn,
        AppEvent::WsFrame(f) => f.conn = conn,
        AppEvent::WsMessage(m) => m.conn = conn,
    }
}

fn merge(
    mut inputs: Vec<Input>,
    sink: &mut dyn EventSink,
    number_requests: bool,
) -> Result<RunOutcome, RunError> {
    let mut next_number = 0u64;
    let mut retired: Vec<Retiring> = Vec::new();
    let mut retired_apps: Vec<AppEvent> = Vec::new();
    let mut retired_overviews: Vec<AppOverview> = Vec::new();
    let mut retired_text: Vec<u8> = Vec::new();
    let mut ends: Vec<Option<Result<RunOutcome, RunError>>> =
        (0..inputs.len()).map(|_| None).collect();
    loop {
        // The earliest frame any worker still has to report.
        let mut frame = None::<u64>;
        for input in inputs.iter_mut() {
            if let Some(u) = input.head() {
                let f = u.frame();
                if !matches!(u, Unit::End(_)) {
                    frame = Some(frame.map_or(f, |m: u64| m.min(f)));
                }
            }
        }
        let Some(frame) = frame else {
            break;
        };
        // Summaries retired at this frame, from every shard, in order of
        // number. At the end of the capture every connection still open
        // retires at once; each shard sends those in order of number (the
        // tracker's `finish`), so they are merged as they come, one at a
        // time, instead of all being held first: that held every open
        // connection's summary (and overview) at once.
        let at_end = frame == AT_END;
        let mut last_at_end = None::<u64>;
        loop {
            if at_end {
                let mut next: Option<(u64, usize)> = None;
                for (w, input) in inputs.iter_mut().enumerate() {
                    let conn = match input.head() {
                        Some(Unit::Retired {
                            frame: f, summary, ..
                        }) if *f == frame => summary.conn,
                        Some(Unit::RetiredText { frame: f, conn, .. }) if *f == frame => *conn,
                        _ => continue,
                    };
                    let number = input.numbers.get(conn).copied().unwrap_or(conn);
                    if next.is_none_or(|(n, _)| number < n) {
                        next = Some((number, w));
                    }
                }
                let Some((number, w)) = next else {
                    break;
                };
                // What merging as they come relies on.
                debug_assert!(
                    last_at_end.is_none_or(|l| number > l),
                    "a shard's summaries at the end out of order"
                );
                last_at_end = Some(number);
                retired.extend(take_retired(
                    &mut inputs[w],
                    w,
                    &mut retired_apps,
                    &mut retired_overviews,
                    &mut retired_text,
                ));
            } else {
                for (w, input) in inputs.iter_mut().enumerate() {
                    while matches!(
                        input.head(),
                        Some(Unit::Retired { frame: f, .. } | Unit::RetiredText { frame: f, .. })
                            if *f == frame
                    ) {
                        retired.extend(take_retired(
                            input,
                            w,
                            &mut retired_apps,
                            &mut retired_overviews,
                            &mut retired_text,
                        ));
                    }
                }
                if retired.len() > 1 {
                    retired.sort_unstable_by_key(|r| r.number);
                }
            }
            for mut r in retired.drain(..) {
                for app in &mut retired_apps[r.apps] {
                    renumber_app(app, r.number, number_requests);
                    sink.event(&Event::App(app))?;
                }
                if let Some(o) = r.overview.and_then(|i| retired_overviews.get(i)) {
                    sink.event(&Event::Overview(o))?;
                }
                match &mut r.summary {
                    Retired::Summary(summary) => {
                        sink.closed_shared(summary)?;
                        // Held by nothing else: its lists go back to be
                        // filled again.
                        if let Some(summary) = Arc::get_mut(summary) {
                            inputs[r.input].done_lists.push(summary.take_lists());
                        }
                    }
                    Retired::Text(_, block) => {
                        sink.closed_rendered(r.number, &retired_text[block.clone()])?
                    }
                }
            }
            retired_apps.clear();
            retired_overviews.clear();
            retired_text.clear();
            if !at_end {
                break;
            }
        }
        // The frame's packet, from the one shard that owns it.
        for input in inputs.iter_mut() {
            if !matches!(input.head(), Some(Unit::Packet { frame: f, .. }) if *f == frame) {
                continue;
            }
            if let Some(Unit::Packet {
                conn,
                opened,
                handshake,
                apps,
                ..
            }) = input.queue.pop_front()
            {
                if let Some(mut info) = opened.then(|| input.opened.pop_front()).flatten() {
                    *input.numbers.slot(conn) = Slot::Live(next_number);
                    info.conn = next_number;
                    next_number += 1;
                    sink.event(&Event::Opened(&info))?;
                }
                let number = input.numbers.get(conn).copied().unwrap_or(conn);
                if let Some(mut h) = handshake.then(|| input.handshakes.pop_front()).flatten() {
                    h.conn = number;
                    sink.event(&Event::Handshake(&h))?;
                }
                for _ in 0..apps {
                    if let Some(mut app) = input.apps.pop_front() {
                        renumber_app(&mut app, number, number_requests);
                        sink.event(&Event::App(&app))?;
                    }
                }
            }
            break;
        }
    }
    for (w, input) in inputs.iter_mut().enumerate() {
        if let Some(Unit::End(result)) = input.queue.pop_front() {
            ends[w] = Some(*result);
        }
    }
    // The workers saw the same frames: the first one's reading stands for
    // all (warnings, damage); counts of what each tracked add up.
    let mut outcome: Option<RunOutcome> = None;
    for end in ends.into_iter().flatten() {
        let end = end?;
        match outcome.as_mut() {
            None => outcome = Some(end),
            Some(o) => {
                o.summary.tcp_packets += end.summary.tcp_packets;
                o.summary.connections += end.summary.connections;
                o.summary.reassembly_cap_hits += end.summary.reassembly_cap_hits;
                o.summary.evicted += end.summary.evicted;
                o.summary.rushed += end.summary.rushed;
            }
        }
    }
    let mut outcome = outcome.unwrap_or(RunOutcome {
        summary: RunSummary::default(),
        damage: None,
    });
    // Each worker counted its own evictions: say the totals once.
    let evicted = outcome.summary.evicted;
    let rushed = outcome.summary.rushed;
    outcome
        .summary
        .warnings
        .retain(|w| !w.contains("--max-connections"));
    if rushed > 0 {
        outcome.summary.warnings.push(format!(
            "{rushed} finished connections were summarised before their close delay ended because too many were open at once (--max-connections, shared among the threads); a late packet of theirs keeps its connection but counts in no summary"
        ));
    }
    if evicted > 0 {
        outcome.summary.warnings.push(format!(
            "{evicted} connections were summarised early and forgotten because too many were open at once (--max-connections, shared among the threads); later packets of theirs start new connections"
        ));
    }
    sink.event(&Event::End(&outcome.summary))?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A collector of every kind, with its channels.
    fn collect() -> (Collect, Receiver<Batch>) {
        let (out, rx) = sync_channel(IN_FLIGHT);
        let (_spent_tx, spent) = sync_channel(1);
        let mut collect = Collect::new(out, spent, AppKinds::ALL, None, 1);
        collect.in_packet = true;
        (collect, rx)
    }

    fn event_of(bytes: usize) -> AppEvent {
        AppEvent::Sse(Box::new(crate::dissect::SseEvent {
            conn: 0,
            response: 0,
            index: 0,
            event: "message".into(),
            data: "x".repeat(bytes),
            id: None,
            retry: None,
            comments: Vec::new(),
            first: crate::dissect::At {
                frame: 1,
                time: crate::capture::Timestamp(0),
            },
            readable: crate::dissect::At {
                frame: 1,
                time: crate::capture::Timestamp(0),
            },
            arrived: crate::dissect::At {
                frame: 1,
                time: crate::capture::Timestamp(0),
            },
            compressed: false,
            decodable_on_arrival: true,
            held_back_ns: 0,
            truncated: false,
            quiet_before_ns: 0,
        }))
    }

    #[test]
    fn a_batch_goes_when_its_events_weigh_too_much_whatever_their_count() {
        let (mut c, rx) = collect();
        // Small events: a batch goes at BATCH units (a packet's unit is
        // sent when the next frame starts).
        for frame in 1..=BATCH as u64 {
            c.frame_start(frame);
            c.in_packet = true;
            c.app_owned(event_of(10)).expect("sent");
        }
        assert!(rx.try_recv().is_err(), "sent before {BATCH} units");
        c.frame_start(BATCH as u64 + 1);
        assert_eq!(rx.try_recv().map(|b| b.units.len()).ok(), Some(BATCH));
        // Heavy ones: one of a quarter of the cap each, so the fourth sends.
        for frame in 0..4u64 {
            c.frame_start(10_000 + frame);
            c.in_packet = true;
            c.app_owned(event_of(BATCH_WEIGHT / 4)).expect("sent");
        }
        c.frame_start(20_000);
        assert_eq!(rx.try_recv().map(|b| b.units.len()).ok(), Some(4));
    }

    #[test]
    fn the_workers_share_the_bounds_of_one_thread() {
        let whole = Limits::default();
        for shards in [1, 2, 3, 7, 64] {
            let each = worker_limits(whole, shards);
            assert!(each.max_open * shards <= whole.max_open, "{shards}");
            assert!(each.max_finished * shards <= whole.max_finished, "{shards}");
            // The reassembly budget too, down to one direction's buffer
            // per worker: 1 MiB each of 64 threads would cut short a
            // direction that one thread reassembles whole, and the output
            // would depend on the threads.
            let floor = whole.reassembly.per_direction * shards;
            assert!(
                each.reassembly.total * shards <= whole.reassembly.total.max(floor),
                "{shards}"
            );
            // Shared out, not lost: a remainder smaller than the threads at most.
            assert!(whole.max_finished - each.max_finished * shards < shards);
            assert!(whole.max_open - each.max_open * shards < shards);
        }
        // However many threads, each keeps room to work.
        let tight = Limits {
            max_open: 3,
            max_finished: 3,
            ..Limits::default()
        };
        let each = worker_limits(tight, 8);
        assert_eq!((each.max_open, each.max_finished), (1, 1));
        assert!(each.reassembly.total >= tight.reassembly.per_direction);
    }

    /// A sink that takes everything and keeps nothing.
    struct Ignore;

    impl EventSink for Ignore {
        fn event(&mut self, _event: &Event<'_>) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_workers_count_every_packet_and_connection_for_the_progress_bar() {
        // Their packets never cross to the thread that owns the bar, and
        // their openings cross in batches: they count both themselves.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/ab-nginx-first-1000-frames.pcap"
        );
        for (shards, dissect) in [(2, None), (3, Some(AppKinds::OVERVIEW))] {
            let progress = crate::progress::Progress::new(None, true);
            let counter = progress.counter();
            let outcome = run_sharded(
                || std::fs::File::open(path),
                Limits::default(),
                shards,
                dissect,
                None,
                Some(&counter),
                &mut Ignore,
            )
            .expect("run");
            let summary = &outcome.summary;
            assert!(summary.connections > 50, "{}", summary.connections);
            assert_eq!(counter.packets(), summary.tcp_packets, "{shards} threads");
            assert_eq!(
                counter.connections(),
                summary.connections,
                "{shards} threads"
            );
        }
    }

    #[test]
    fn a_unit_fits_half_a_cache_line() {
        // A batch holds BATCH units, and each crosses to the merging core.
        assert!(
            std::mem::size_of::<super::Unit>() <= 32,
            "{}",
            std::mem::size_of::<super::Unit>()
        );
    }
}
