//! Running scripts over captures: one capture per worker thread, results in
//! the order the captures were given.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::host::{LessonScope, ScriptHost, ScriptLimits};
use super::output::ScriptOutput;
use super::script::{Handler, Script};
use crate::conn_table::{ConnTable, Slot};
use crate::dissect::Dissector;
use crate::events::{Event, EventSink};
use crate::pipeline::{self, Limits, RunError};
use crate::progress::ProgressCounter;
use crate::tracking::{Endpoint, Flag, HandshakeOutcome};

/// The statistics a diagnosis report starts with, as ChatTCP's pane does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// TCP packets.
    pub packets: u64,
    /// Connections.
    pub connections: u64,
    /// Connections whose handshake was seen to start but not complete
    /// (unanswered SYN, refused, SYN-ACK unanswered, final ACK lost).
    pub incomplete_handshakes: u64,
    /// Connections with at least one retransmission.
    pub with_retransmissions: u64,
    /// Connections ended by a RST.
    pub resets: u64,
    /// Keep-alive packets (Linux zero-window probes, which tshark calls
    /// keep-alives, not counted).
    pub keep_alives: u64,
}

/// `client > server` of each connection, by number, to head the findings.
///
/// Kept for every connection up to [`ConnLabels::MAX_KEPT`]; beyond, only
/// for connections with a finding (so a SYN flood's million connections do
/// not cost a million strings).
#[derive(Clone, Debug, Default)]
pub struct ConnLabels {
    /// Open connections' endpoints, by number: numbers come in order, so
    /// a window, not a hash (see `conn_table`).
    open: ConnTable<(Endpoint, Endpoint)>,
    /// Closed connections' endpoints, in order of closing.
    kept: Vec<(u64, (Endpoint, Endpoint))>,
    /// `kept` is out of order of number (connections close in about the
    /// order they opened; `settle` sorts them): looked up by a scan, not by
    /// halving.
    kept_unsorted: bool,
}

impl ConnLabels {
    /// Labels kept whether or not a connection has findings.
    pub const MAX_KEPT: usize = 100_000;

    /// The label of connection `conn`, if kept.
    pub fn get(&self, conn: u64) -> Option<String> {
        let kept = if !self.kept_unsorted {
            self.kept
                .binary_search_by_key(&conn, |(c, _)| *c)
                .ok()
                .map(|i| &self.kept[i].1)
        } else {
            self.kept.iter().find(|(c, _)| *c == conn).map(|(_, l)| l)
        };
        kept.or_else(|| self.open.get(conn))
            .map(|(client, server)| format!("{client} > {server}"))
    }

    fn opened(&mut self, c: &crate::tracking::ConnectionInfo) {
        // The endpoints, not their text: most labels are never read.
        *self.open.slot(c.conn) = Slot::Live((c.client, c.server));
    }

    /// Takes the labels another group of scripts kept.
    fn join(&mut self, other: ConnLabels) {
        self.kept.extend(other.kept);
        self.kept_unsorted = true;
        self.settle();
        for (conn, label) in other.open.into_live() {
            *self.open.slot(conn) = Slot::Live(label);
        }
    }

    /// Puts the kept labels in order of number, for lookups.
    fn settle(&mut self) {
        if self.kept_unsorted {
            self.kept.sort_by_key(|(c, _)| *c);
            self.kept.dedup_by_key(|(c, _)| *c);
            self.kept_unsorted = false;
        }
    }

    /// Connection `conn` closed; `wanted` when it has findings.
    fn closed(&mut self, conn: u64, wanted: bool) {
        if let Slot::Live(label) = self.open.close(conn) {
            if wanted || self.kept.len() < Self::MAX_KEPT {
                if self.kept.last().is_some_and(|(last, _)| *last >= conn) {
                    self.kept_unsorted = true;
                }
                self.kept.push((conn, label));
            }
        }
    }
}

impl EventSink for CaptureStats {
    fn event(&mut self, event: &Event<'_>) -> io::Result<()> {
        match event {
            Event::Packet(_) => self.packets += 1,
            Event::Closed(c) => {
                self.connections += 1;
                if !matches!(
                    c.handshake,
                    HandshakeOutcome::Complete | HandshakeOutcome::StartedBeforeCapture
                ) {
                    self.incomplete_handshakes += 1;
                }
                if c.count(Flag::Retransmission) > 0 {
                    self.with_retransmissions += 1;
                }
                if c.reset_by.is_some() {
                    self.resets += 1;
                }
                self.keep_alives += c.keep_alives;
            }
            _ => {}
        }
        Ok(())
    }
}

/// What running the scripts over one capture gave.
#[derive(Clone, Debug)]
pub struct CaptureReport {
    /// The capture, as given.
    pub file: String,
    /// The summary statistics.
    pub stats: CaptureStats,
    /// Each connection's endpoints.
    pub labels: ConnLabels,
    /// What the scripts produced.
    pub output: ScriptOutput,
    /// Why the capture could not be used (or stopped early), if so.
    pub problem: Option<String>,
    /// Warnings (a file cut short, ...).
    pub warnings: Vec<String>,
}

impl CaptureReport {
    /// True when the capture was unusable or damaged.
    pub fn failed(&self) -> bool {
        self.problem.is_some()
    }
}

struct Both<'a, 's> {
    stats: &'a mut CaptureStats,
    labels: &'a mut ConnLabels,
    host: &'a mut ScriptHost<'s>,
}

impl Both<'_, '_> {
    /// `event`, with its summary when the sender shares one (see
    /// `EventSink::closed_shared`).
    fn deliver(
        &mut self,
        event: &Event<'_>,
        shared: Option<&std::sync::Arc<crate::tracking::ConnectionSummary>>,
    ) -> io::Result<()> {
        self.stats.event(event)?;
        if let Event::Opened(c) = event {
            self.labels.opened(c);
        }
        match shared {
            Some(summary) => self.host.closed_shared(summary)?,
            None => self.host.event(event)?,
        }
        if let Event::Closed(c) = event {
            self.labels.closed(c.conn, self.host.has_findings(c.conn));
        }
        Ok(())
    }
}

impl EventSink for Both<'_, '_> {
    fn event(&mut self, event: &Event<'_>) -> io::Result<()> {
        self.deliver(event, None)
    }

    fn closed_shared(
        &mut self,
        summary: &std::sync::Arc<crate::tracking::ConnectionSummary>,
    ) -> io::Result<()> {
        self.deliver(&Event::Closed(summary), Some(summary))
    }
}

struct WithExtra<'a, 's> {
    host: &'a mut ScriptHost<'s>,
    extra: &'a mut dyn EventSink,
}

impl EventSink for WithExtra<'_, '_> {
    fn event(&mut self, event: &Event<'_>) -> io::Result<()> {
        self.extra.event(event)?;
        self.host.event(event)
    }
}

/// Runs `scripts` over a capture read from `source`, feeding `extra` the same
/// events (a view that draws them, say). `chosen` names the lesson asked for.
pub fn run_with(
    source: impl std::io::Read + Send,
    scripts: &[Script],
    limits: Limits,
    script_limits: ScriptLimits,
    chosen: Option<&str>,
    extra: &mut dyn EventSink,
) -> Result<(ScriptOutput, pipeline::RunOutcome), RunError> {
    run_scoped(
        source,
        scripts,
        limits,
        script_limits,
        chosen,
        LessonScope::All,
        extra,
    )
}

/// [`run_with`], the lessons commenting only on the connections in
/// `lessons` (a view that draws a few connections of a big capture).
pub fn run_scoped(
    source: impl std::io::Read + Send,
    scripts: &[Script],
    limits: Limits,
    script_limits: ScriptLimits,
    chosen: Option<&str>,
    lessons: LessonScope,
    extra: &mut dyn EventSink,
) -> Result<(ScriptOutput, pipeline::RunOutcome), RunError> {
    let mut host = ScriptHost::with_chosen(scripts, script_limits, chosen);
    host.set_lesson_scope(lessons);
    let mut dissector = Dissector::with_limits(
        WithExtra {
            host: &mut host,
            extra,
        },
        limits.decode,
    );
    let outcome = pipeline::run(source, limits, &mut dissector)?;
    drop(dissector);
    Ok((host.finish(), outcome))
}

/// Runs `scripts` over one capture.
pub fn analyse(
    path: &Path,
    scripts: &[Script],
    limits: Limits,
    script_limits: ScriptLimits,
) -> CaptureReport {
    analyse_split(path, scripts, limits, script_limits, 1, false, None)
}

/// Opens a capture, its bytes counted by `progress` when given (a progress bar).
fn open_counted(
    path: &Path,
    progress: Option<&ProgressCounter>,
) -> io::Result<Box<dyn Read + Send>> {
    // No BufReader: the capture reader keeps its own buffer and reads into
    // it in large blocks; another buffer in front only adds a copy.
    let file = File::open(path)?;
    Ok(match progress {
        Some(counter) => Box::new(counter.reader(file)),
        None => Box::new(file),
    })
}

/// Runs `scripts` over one capture on up to `threads` threads, giving what
/// one thread gives, byte for byte. When no script reads every packet or
/// every byte, the capture's connections are sharded across the threads
/// ([`crate::parallel::run_sharded`]: tracking, reassembly and dissection in
/// parallel, the scripts on this thread); otherwise the scripts are split
/// into groups, each reading the capture on its own thread
/// ([`ScriptOutput::merge`]) when `split_scripts`, which pays when the
/// scripts cost more than reading and dissecting the capture again (each
/// thread holds its own connection table: only when asked for). `progress`
/// counts the bytes read, the packets and the connections, once, for a
/// progress bar.
pub fn analyse_split(
    path: &Path,
    scripts: &[Script],
    limits: Limits,
    script_limits: ScriptLimits,
    threads: usize,
    split_scripts: bool,
    progress: Option<&ProgressCounter>,
) -> CaptureReport {
    let every_packet = scripts
        .iter()
        .any(|s| s.handles(Handler::Packet) || s.handles(Handler::Data));
    if threads > 1 && !every_packet {
        let host = ScriptHost::with_offset(scripts, script_limits, None, 0);
        let limits = for_scripts_alone(scripts, limits);
        return analyse_sharded(path, host, limits, threads, progress);
    }
    let groups = if split_scripts {
        threads.clamp(1, scripts.len().max(1))
    } else {
        1
    };
    if groups == 1 {
        return analyse_group(path, scripts, 0, limits, script_limits, progress);
    }
    let size = scripts.len().div_ceil(groups);
    // Two groups or more: `size` is less than the scripts' count.
    let (first, rest) = scripts.split_at(size.min(scripts.len()));
    let mut reports: Vec<CaptureReport> = std::thread::scope(|s| {
        // Every group reads the whole capture: the first one counts, on
        // this thread (which has its scripts compiled already).
        let handles: Vec<_> = rest
            .chunks(size)
            .enumerate()
            .map(|(g, chunk)| {
                let offset = (g + 1) * size;
                s.spawn(move || analyse_group(path, chunk, offset, limits, script_limits, None))
            })
            .collect();
        let mut reports = vec![analyse_group(
            path,
            first,
            0,
            limits,
            script_limits,
            progress,
        )];
        reports.extend(handles.into_iter().filter_map(|h| h.join().ok()));
        reports
    });
    let outputs: Vec<ScriptOutput> = reports
        .iter_mut()
        .map(|r| std::mem::take(&mut r.output))
        .collect();
    let mut labels = ConnLabels::default();
    for r in &mut reports {
        labels.join(std::mem::take(&mut r.labels));
    }
    // Every group read the same capture: its statistics, warnings and
    // problem are the same; the first group's stand for all.
    let mut report = reports.swap_remove(0);
    report.output = ScriptOutput::merge(outputs);
    report.labels = labels;
    report
}

/// Feeds a host from a capture sharded across `threads` workers.
fn analyse_sharded(
    path: &Path,
    mut host: ScriptHost<'_>,
    limits: Limits,
    threads: usize,
    progress: Option<&ProgressCounter>,
) -> CaptureReport {
    let file = path.display().to_string();
    let mut report = CaptureReport::empty(&file);
    // The values' times count from the capture's first frame; no packet
    // event crosses from the workers to say when that was.
    let first = File::open(path)
        .map_err(|e| e.to_string())
        .and_then(|f| {
            crate::capture::CaptureReader::new(BufReader::new(f), limits.reader)
                .map_err(|e| e.to_string())
        })
        .map(|mut r| r.next_frame().ok().flatten().map(|f| f.timestamp));
    // A capture that cannot be read says so in the run itself.
    if let Ok(Some(start)) = first {
        host.set_capture_start(start);
    }
    // Every worker reads the whole capture: the first one opened counts its
    // bytes (each counts its own packets and connections).
    let first_open = std::sync::atomic::AtomicBool::new(true);
    let open = || {
        let counted = progress.filter(|_| first_open.swap(false, Ordering::Relaxed));
        open_counted(path, counted)
    };
    // Only the application events some script handles cross from the
    // workers (the host would pass over the others).
    let apps = host.app_kinds();
    let mut sink = Both {
        stats: &mut report.stats,
        labels: &mut report.labels,
        host: &mut host,
    };
    let result =
        crate::parallel::run_sharded(open, limits, threads, Some(apps), None, progress, &mut sink);
    report.finish_run(&file, result);
    // Packets are not sent across: the workers counted them.
    report.output = host.finish();
    report
}

impl CaptureReport {
    /// The report on `file` before anything was read.
    fn empty(file: &str) -> Self {
        CaptureReport {
            file: file.to_string(),
            stats: CaptureStats::default(),
            labels: ConnLabels::default(),
            output: ScriptOutput::default(),
            problem: None,
            warnings: Vec::new(),
        }
    }

    /// Takes the run's warnings and problem into the report.
    fn finish_run(&mut self, file: &str, result: Result<pipeline::RunOutcome, RunError>) {
        self.labels.settle();
        match result {
            Ok(outcome) => {
                if self.stats.packets == 0 {
                    self.stats.packets = outcome.summary.tcp_packets;
                }
                self.warnings = outcome
                    .summary
                    .warnings
                    .iter()
                    .map(|w| format!("{file}: {w}"))
                    .collect();
                if let Some(d) = outcome.damage {
                    self.problem = Some(format!("{file}: {d}"));
                }
            }
            Err(RunError::Capture(e)) => self.problem = Some(format!("{file}: {e}")),
            Err(RunError::Output(e)) => self.problem = Some(format!("{file}: {e}")),
        }
    }
}

/// `limits` for a run of `scripts` alone: HTTP bodies decoded but not kept
/// when no script reads them, and no `HttpHead` events (no handler takes
/// them).
fn for_scripts_alone(scripts: &[Script], mut limits: Limits) -> Limits {
    if !scripts.iter().any(|s| s.reads_body) {
        limits.decode.body_kept = 0;
    }
    limits.decode.announce_heads = false;
    limits
}

/// Runs one group of scripts, at `offset` in the full list, over a capture.
fn analyse_group(
    path: &Path,
    scripts: &[Script],
    offset: usize,
    limits: Limits,
    script_limits: ScriptLimits,
    progress: Option<&ProgressCounter>,
) -> CaptureReport {
    let file = path.display().to_string();
    let mut report = CaptureReport::empty(&file);
    let source = match open_counted(path, progress) {
        Ok(f) => f,
        Err(e) => {
            report.problem = Some(format!("{file}: cannot open: {e}"));
            return report;
        }
    };
    let limits = for_scripts_alone(scripts, limits);
    let mut host = ScriptHost::with_offset(scripts, script_limits, None, offset);
    let mut sink = Dissector::with_limits(
        Both {
            stats: &mut report.stats,
            labels: &mut report.labels,
            host: &mut host,
        },
        limits.decode,
    );
    let result = match progress {
        Some(counter) => counter.with_sink(&mut sink, |sink| pipeline::run(source, limits, sink)),
        None => pipeline::run(source, limits, &mut sink),
    };
    drop(sink);
    report.finish_run(&file, result);
    report.output = host.finish();
    report
}

/// Expands directories into the captures they hold (`.pcap`, `.pcapng`,
/// `.cap`, sorted by name); files are kept as given.
pub fn expand_inputs(inputs: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(
                            p.extension().and_then(|e| e.to_str()),
                            Some("pcap" | "pcapng" | "cap")
                        )
                })
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

/// Runs `scripts` over every capture, `threads` at a time; the reports come
/// back in the order of `paths`, whatever order the workers finish in.
/// Threads left over (fewer captures than threads) shard each capture's
/// connections among them, or, with `split_scripts`, split its scripts
/// when they read every packet (see [`analyse_split`]).
pub fn analyse_all(
    paths: &[PathBuf],
    scripts: &[Script],
    limits: Limits,
    script_limits: ScriptLimits,
    threads: usize,
    split_scripts: bool,
    progress: Option<&ProgressCounter>,
) -> Vec<CaptureReport> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<CaptureReport>>> = Mutex::new(vec![None; paths.len()]);
    let workers = threads.clamp(1, paths.len().max(1));
    // Threads left over when there are fewer captures than threads go to
    // sharding each capture's connections (or, asked for, to splitting its
    // scripts when they read every packet).
    let per_capture = (threads / workers).max(1);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(path) = paths.get(i) else {
            break;
        };
        let report = analyse_split(
            path,
            scripts,
            limits,
            script_limits,
            per_capture,
            split_scripts,
            progress,
        );
        let mut r = results.lock().unwrap_or_else(|p| p.into_inner());
        r[i] = Some(report);
    };
    // This thread is one of the workers: it compiled the scripts when it
    // loaded them, and a thread compiles each script it runs (see
    // `Script::code`), so one worker fewer to spawn is one compilation
    // fewer.
    std::thread::scope(|s| {
        for _ in 1..workers {
            s.spawn(work);
        }
        work();
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::tracking::{ConnectionInfo, RoleEvidence};

    fn info(conn: u64) -> ConnectionInfo {
        let at = |port| Endpoint {
            ip: std::net::IpAddr::from([10, 0, 0, 1]),
            port,
        };
        ConnectionInfo {
            conn,
            client: at(40_000 + conn as u16),
            server: at(80),
            roles: RoleEvidence::Syn,
            first_frame: conn + 1,
            start: Timestamp(0),
            reused_ports: false,
        }
    }

    #[test]
    fn labels_of_connections_closed_out_of_order_are_found_before_and_after_settling() {
        let mut labels = ConnLabels::default();
        for conn in 0..4 {
            labels.opened(&info(conn));
        }
        for conn in [2, 0, 3] {
            labels.closed(conn, false);
        }
        let label = |conn: u64| format!("10.0.0.1:{} > 10.0.0.1:80", 40_000 + conn);
        // Unsorted: found by a scan; still open: found in the window.
        assert_eq!(labels.get(0), Some(label(0)));
        assert_eq!(labels.get(1), Some(label(1)));
        labels.settle();
        for conn in 0..4 {
            assert_eq!(labels.get(conn), Some(label(conn)), "{conn}");
        }
        assert_eq!(labels.get(4), None);
    }
}
