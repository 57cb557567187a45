//! The `chattcp` command line: a thin layer over the engine.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

/// mimalloc instead of glibc's malloc: dissection allocates and frees small
/// objects per message, and the sharded runs free on another thread than
/// the one that allocated, where glibc's arenas pay most.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

use chattcp::dissect::Dissector;
use chattcp::events::EventSink;
use chattcp::parallel::WorkerRendering;
use chattcp::pipeline::{self, Limits, RunError};
use chattcp::progress::Progress;
use chattcp::render::chat::{render as render_chat, ChatCollector, ChatOptions};
use chattcp::render::follow::{FollowMode, FollowWriter};
use chattcp::render::html::{
    self, CaptureInput, HtmlCollector, LessonIntro, ReportLimits, ReportOptions,
};
use chattcp::render::json::{JsonKind, JsonLines};
use chattcp::render::report;
use chattcp::render::text::{TextKind, TextWriter};
use chattcp::scripting::run::{analyse_all, expand_inputs, run_scoped, run_with, CaptureReport};
use chattcp::scripting::{
    example_captures, load_file, load_scripts, load_with_rules, Kind, LessonScope, Script,
    ScriptLimits,
};

/// Read packet captures as conversations between client and server.
#[derive(Parser)]
#[command(name = "chattcp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

const START_HERE: &str = "chattcp reads packet captures as a chat between client and server.

Start here:
  chattcp lessons              the example captures, each telling one TCP story
  chattcp lesson keep-alive    one of them, as a chat with commentary
  chattcp chat FILE            your own capture as a chat (--commentary to explain)
  chattcp diagnose FILE        what went wrong in it
  chattcp report FILE -o F     all of it as one HTML page to open in a browser
  chattcp --help               every command
";

#[derive(clap::Args, Clone, Copy)]
struct LimitArgs {
    /// Largest capture record accepted, in bytes.
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES")]
    max_record: usize,
    /// Out-of-order bytes held per connection direction before a hole is given up.
    #[arg(long, default_value_t = 4 << 20, value_name = "BYTES")]
    reassembly_per_direction: usize,
    /// Out-of-order bytes held across all connections.
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    reassembly_total: usize,
    /// Connections open at once; beyond it the least recently active is
    /// summarised early (a SYN flood cannot exhaust memory).
    #[arg(long, default_value_t = 50_000, value_name = "N")]
    max_connections: usize,
    /// Seconds of capture time a finished connection stays quiet before its
    /// summary: late packets within it (a retransmitted FIN, a connection
    /// going on after a reset) count in the summary. 0 summarises at once:
    /// faster and leaner on captures of many short connections, but such
    /// packets are then left out of it.
    #[arg(long, default_value = "2", value_name = "SECS", value_parser = parse_close_delay)]
    close_delay: i64,
    /// Bytes decoded at most from one compressed body or WebSocket message.
    #[arg(long, default_value_t = 64 << 20, value_name = "BYTES")]
    max_decoded: u64,
    /// Decoded bytes per compressed byte at most (past the first MiB): a
    /// decompression bomb stops here.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_decode_ratio: u64,
    /// Findings of one kind kept per capture; the rest are counted.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_findings: usize,
    /// Scripts: ignore their filters (`ON_CLOSE_WHEN`, ...) and call every
    /// handler on every event. Slower; the findings must not change.
    #[arg(long)]
    no_filters: bool,
}

/// The longest `--close-delay`: an hour of capture time.
const MAX_CLOSE_DELAY_SECS: f64 = 3600.0;

/// `--close-delay`: seconds (a fraction allowed), as nanoseconds.
fn parse_close_delay(text: &str) -> Result<i64, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite())
        .ok_or_else(|| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=MAX_CLOSE_DELAY_SECS).contains(&secs) {
        return Err(format!(
            "{text} s is out of range: from 0 to {MAX_CLOSE_DELAY_SECS} s"
        ));
    }
    Ok((secs * 1e9).round() as i64)
}

impl LimitArgs {
    fn limits(self) -> Limits {
        let mut l = Limits::default();
        l.reader.max_record_len = self.max_record;
        l.reassembly.per_direction = self.reassembly_per_direction;
        l.reassembly.total = self.reassembly_total;
        l.max_open = self.max_connections.max(1);
        l.close_delay_ns = self.close_delay;
        l.decode.max_decoded = self.max_decoded;
        l.decode.max_ratio = self.max_decode_ratio.max(1);
        l
    }

    fn script_limits(self) -> ScriptLimits {
        ScriptLimits {
            max_findings: self.max_findings,
            use_filters: !self.no_filters,
            ..ScriptLimits::default()
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Every TCP packet, analysed as Wireshark does (a line, or a JSON object, each).
    Packets {
        /// Capture file (pcap or pcapng), or `-` for standard input.
        file: PathBuf,
        /// JSON Lines: one object per TCP packet.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Runs one rhai script over captures (see docs/writing-rules.md).
    Run {
        /// The script (`.rhai`).
        script: PathBuf,
        /// Capture files, or directories of captures.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `{"captures": [...]}` with the prints, notes, findings, metrics and errors.
        #[arg(long)]
        json: bool,
        /// Threads (default: all cores). Several captures are analysed at
        /// once; threads left over shard each capture's connections among
        /// them, or, when a script reads every packet or byte and N is given,
        /// split its scripts among them. The report is the same.
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Runs every built-in diagnosis (and your rules) over captures.
    Diagnose {
        /// Capture files, or directories of captures.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A directory of `.rhai` rules to add (a rule named like a built-in replaces it).
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// `{"captures": [{"file", "stats", "findings": [...]}]}`.
        #[arg(long)]
        json: bool,
        /// Threads (default: all cores). Several captures are analysed at
        /// once; threads left over shard each capture's connections among
        /// them, or, when a script reads every packet or byte and N is given,
        /// split its scripts among them. The report is the same.
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Each connection as a conversation: client on the left, server on the right.
    Chat {
        /// Capture file (pcap or pcapng), or `-` for standard input.
        file: PathBuf,
        /// Only this connection.
        #[arg(long, value_name = "N")]
        conn: Option<u64>,
        /// Explain every packet (the lessons' commentary).
        #[arg(long)]
        commentary: bool,
        /// Packets shown per connection at most.
        #[arg(long, default_value_t = 2000, value_name = "N")]
        max_packets: usize,
        /// A directory of `.rhai` scripts to add (lessons and diagnoses).
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// Colour: auto (on a terminal, unless NO_COLOR is set), always or never.
        #[arg(long, default_value = "auto", value_name = "WHEN")]
        color: ColorChoice,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Lists the example captures and what each one teaches.
    Lessons,
    /// Shows an example capture as a chat, with its lesson (works from any directory).
    Lesson {
        /// The example's name (see `chattcp lessons`).
        name: String,
        /// Colour: auto (on a terminal, unless NO_COLOR is set), always or never.
        #[arg(long, default_value = "auto", value_name = "WHEN")]
        color: ColorChoice,
        /// Write the lesson as one self-contained HTML page (see `report`).
        #[arg(long)]
        html: bool,
        /// With --html: the file to write (default: standard output).
        #[arg(short = 'o', long = "output", value_name = "FILE", requires = "html")]
        output: Option<PathBuf>,
    },
    /// One self-contained HTML page to open in a browser: statistics, the
    /// connection list, and per connection its chat, ladder diagram,
    /// time-sequence graph and findings.
    Report {
        /// Capture files, or directories of captures.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The HTML file to write (`-` for standard output).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Connections drawn in full per capture; the others are listed with
        /// their summary.
        #[arg(long, default_value_t = ReportLimits::default().full_connections, value_name = "N")]
        full: usize,
        /// Packets drawn per connection.
        #[arg(long, default_value_t = ReportLimits::default().max_packets, value_name = "N")]
        max_packets: usize,
        /// Packets drawn per capture at most, all connections together.
        #[arg(long, default_value_t = ReportLimits::default().total_packets, value_name = "N")]
        total_packets: usize,
        /// Draw only this connection in full (the others are listed).
        #[arg(long, value_name = "N")]
        conn: Option<u64>,
        /// Run only the diagnoses, not the lessons: no commentary, but several
        /// times faster on a large capture.
        #[arg(long)]
        no_commentary: bool,
        /// A directory of `.rhai` scripts to add (lessons and diagnoses).
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Lists the scripts: name, kind, title.
    Scripts {
        /// A directory of `.rhai` rules to add to the built-in ones.
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
    /// One connection as the application saw it: HTTP messages, event-stream
    /// events and WebSocket messages, decoded (like Wireshark's Follow Stream).
    Follow {
        /// Capture file (pcap or pcapng), or `-` for standard input.
        file: PathBuf,
        /// The connection (its number in `chattcp conns`).
        #[arg(long, value_name = "N")]
        conn: u64,
        /// The reassembled bytes as sent, not decoded.
        #[arg(long)]
        raw: bool,
        /// JSON Lines: one object per message, event or chunk of bytes.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Every TCP connection with its summary.
    Conns {
        /// Capture files (pcap or pcapng), directories of them, or `-` for
        /// standard input. Several are read at once (up to `--threads`) and
        /// listed in the order given: in text under a `== FILE` line, in
        /// JSON with a `"file"` field in each object.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// JSON Lines: one object per connection.
        #[arg(long)]
        json: bool,
        /// Worker threads, connections sharded among them (default: all
        /// cores; the output is the same with any number).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// TCP alone: no application lines (HTTP, bodies, anomalies,
        /// event streams, WebSocket), so no dissection; faster on captures
        /// of many short connections. In JSON, `app` is then null.
        #[arg(long)]
        tcp_only: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

/// Exit status for input that cannot be used.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when a script failed while running (its error is in the report).
const EXIT_SCRIPT_FAILED: u8 = 1;

fn open(path: &Path) -> anyhow::Result<Box<dyn Read + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::stdin()));
    }
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    // No BufReader: the capture reader keeps its own buffer and reads into
    // it in large blocks; another buffer in front only adds a copy.
    Ok(Box::new(file))
}

fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}

/// A progress display for reading `path`: shown when stderr is a terminal
/// and the output goes elsewhere (or comes only at the end), so that the
/// bar never mixes with what is printed.
fn progress_for(path: &Path, output_at_end: bool) -> Progress {
    let watching = io::stderr().is_terminal() && (output_at_end || !io::stdout().is_terminal());
    let size = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    Progress::new(size, watching && path.as_os_str() != "-")
}

fn run(path: &Path, limits: Limits, sink: &mut dyn EventSink) -> anyhow::Result<ExitCode> {
    let name = display_name(path);
    let source = match open(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chattcp: {e:#}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let mut progress = progress_for(path, false);
    let source = progress.reader(source);
    let result = progress.with_sink(sink, |sink| pipeline::run(source, limits, sink));
    progress.finish();
    outcome_code(&name, result)
}

/// `conns` of one capture: like [`run`], dissected for overviews when
/// `app`, with connections sharded across `threads` workers when the input
/// is a file (standard input can be read only once).
fn run_parallel(
    path: &Path,
    limits: Limits,
    threads: usize,
    app: bool,
    rendering: Option<WorkerRendering>,
    sink: &mut dyn EventSink,
) -> anyhow::Result<ExitCode> {
    if threads <= 1 || path.as_os_str() == "-" {
        if app {
            let mut dissector = conns_dissector(sink, limits, rendering);
            return run(path, limits, &mut dissector);
        }
        return run(path, limits, sink);
    }
    let name = display_name(path);
    if let Err(e) = File::open(path) {
        eprintln!("chattcp: {}: cannot open: {e}", path.display());
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    let progress = progress_for(path, false);
    let counter = progress.counter();
    let result = run_counted(path, limits, threads, app, rendering, &counter, sink);
    progress.finish();
    outcome_code(&name, result)
}

/// `conns`'s dissector on one thread, for overviews: the text (which
/// takes `rendering`) keeps each connection's application lines until its
/// summary, in place of its overview, so it takes overviews as soon as
/// they are final; the JSON just before each summary.
fn conns_dissector<S: EventSink>(
    sink: S,
    limits: Limits,
    rendering: Option<WorkerRendering>,
) -> Dissector<S> {
    let dissector = Dissector::with_limits(sink, limits.decode);
    if rendering.is_some() {
        dissector.with_overviews_when_final()
    } else {
        dissector.with_overviews()
    }
}

/// `conns`'s text, rendered by the worker threads of a sharded run (the
/// text writer takes blocks so: [`EventSink::closed_rendered`]).
const CONNS_TEXT: WorkerRendering = WorkerRendering {
    summary: chattcp::render::text::conn_block_body,
    overview: chattcp::render::text::overview_lines,
};

/// `limits` for `conns`: every connection dissected for its overview
/// (`Event::Overview`), bodies decoded (their decoded length is shown)
/// but not kept, and no heads announced (nothing shows them).
fn for_conns(mut limits: Limits) -> Limits {
    limits.decode.body_kept = 0;
    limits.decode.announce_heads = false;
    limits
}

/// Runs `conns` over the capture file at `path`, its connections sharded
/// across `threads` workers (one: no sharding), dissected for their
/// overviews when `app`, counting its bytes read, packets and connections
/// in `counter`. With
/// `rendering` (the text, whose sink takes blocks rendered), the workers
/// render each connection's block.
fn run_counted(
    path: &Path,
    limits: Limits,
    threads: usize,
    app: bool,
    rendering: Option<WorkerRendering>,
    counter: &chattcp::progress::ProgressCounter,
    sink: &mut dyn EventSink,
) -> Result<chattcp::pipeline::RunOutcome, RunError> {
    // Only the first worker's reading is counted: every worker reads it all.
    let first = std::sync::atomic::AtomicBool::new(true);
    let open = || -> io::Result<Box<dyn Read + Send>> {
        let file = File::open(path)?;
        if first.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return Ok(Box::new(counter.reader(file)));
        }
        Ok(Box::new(file))
    };
    if threads > 1 {
        let overviews = app.then_some(chattcp::dissect::AppKinds::OVERVIEW);
        return chattcp::parallel::run_sharded(
            open,
            limits,
            threads,
            overviews,
            rendering,
            Some(counter),
            sink,
        );
    }
    match open() {
        Ok(file) => counter.with_sink(sink, |sink| {
            if app {
                pipeline::run(file, limits, &mut conns_dissector(sink, limits, rendering))
            } else {
                pipeline::run(file, limits, sink)
            }
        }),
        Err(e) => Err(RunError::Capture(chattcp::capture::CaptureError::Io(e))),
    }
}

/// What a capture's worker sends the printing thread: its output, piece by
/// piece, then how the run ended.
enum Piece {
    Bytes(Vec<u8>),
    Done(Result<chattcp::pipeline::RunOutcome, RunError>),
}

/// Output of one capture's run, sent on in pieces of [`PIECE`] bytes.
struct PieceWriter {
    to: std::sync::mpsc::SyncSender<Piece>,
    buf: Vec<u8>,
}

/// Bytes of output sent at once.
const PIECE: usize = 64 << 10;
/// Pieces of a capture's output waiting to be printed, at most: a worker
/// whose capture's turn has not come waits, so that memory stays bounded
/// whatever the outputs weigh (the `--json` of many.pcap is 400 MB).
const PIECES_WAITING: usize = 8;

impl Write for PieceWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= PIECE {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE));
        self.to
            .send(Piece::Bytes(piece))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "output closed"))
    }
}

/// `conns` over several captures: up to `threads` read at once (threads
/// left over shard each capture's connections), each listed whole, in the
/// order given, as `conns` lists one.
fn conns_of_files(
    paths: &[PathBuf],
    json: bool,
    limits: Limits,
    threads: usize,
    app: bool,
    mut out: impl Write,
) -> anyhow::Result<ExitCode> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::sync_channel;
    use std::sync::Mutex;

    let workers = threads.clamp(1, paths.len());
    let per_capture = (threads / workers).max(1);
    // Each capture's sender is taken by the one worker that reads it, so
    // that it is the only sender: should that worker die without a word,
    // its capture's queue closes and the printing thread says so instead
    // of waiting for ever.
    let (senders, receivers): (Vec<_>, Vec<_>) = paths
        .iter()
        .map(|_| sync_channel::<Piece>(PIECES_WAITING))
        .map(|(tx, rx)| (Mutex::new(Some(tx)), rx))
        .unzip();
    let total: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let watching = io::stderr().is_terminal() && !io::stdout().is_terminal();
    let progress = Progress::new(Some(total), watching);
    let counter = progress.counter();
    let next = AtomicUsize::new(0);
    let mut code = 0u8;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some(path), Some(slot)) = (paths.get(i), senders.get(i)) else {
                    break;
                };
                let Some(to) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() else {
                    continue;
                };
                let mut writer = PieceWriter {
                    to: to.clone(),
                    buf: Vec::with_capacity(PIECE),
                };
                let result = {
                    let mut sink: Box<dyn EventSink + '_> = if json {
                        Box::new(
                            JsonLines::new(&mut writer, JsonKind::Conns)
                                .naming_file(display_name(path)),
                        )
                    } else {
                        Box::new(TextWriter::new(&mut writer, TextKind::Conns))
                    };
                    let rendering = (!json).then_some(CONNS_TEXT);
                    run_counted(
                        path,
                        limits,
                        per_capture,
                        app,
                        rendering,
                        &counter,
                        sink.as_mut(),
                    )
                };
                let _ = writer.flush();
                // The printing thread gone (output closed): nothing to say.
                let _ = to.send(Piece::Done(result));
            });
        }
        // The receivers belong to this closure: should it return early (the
        // output closed), they go with it, and workers waiting to send
        // stop instead of waiting for ever.
        for (i, (path, pieces)) in paths.iter().zip(receivers).enumerate() {
            let name = display_name(path);
            if !json {
                let gap = if i == 0 { "" } else { "\n" };
                if !printed(out.write_all(format!("{gap}== {name}\n").as_bytes()))? {
                    return Ok(());
                }
            }
            loop {
                match pieces.recv() {
                    Ok(Piece::Bytes(bytes)) => {
                        if !printed(out.write_all(&bytes))? {
                            return Ok(());
                        }
                    }
                    Ok(Piece::Done(result)) => {
                        if !printed(out.flush())? {
                            return Ok(());
                        }
                        code = code.max(file_status(path, &name, result)?);
                        break;
                    }
                    Err(_) => anyhow::bail!("{name}: the thread reading it stopped"),
                }
            }
        }
        Ok(())
    })?;
    progress.finish();
    Ok(ExitCode::from(code))
}

/// Whether output went out: false when its reader went away (`| head`),
/// which ends the run quietly.
fn printed(written: io::Result<()>) -> anyhow::Result<bool> {
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        other => other.context("output").map(|()| true),
    }
}

/// The exit status one capture of several calls for (its warnings and
/// errors said on the way), as `conns` of that capture alone would end.
fn file_status(
    path: &Path,
    name: &str,
    result: Result<chattcp::pipeline::RunOutcome, RunError>,
) -> anyhow::Result<u8> {
    if let Err(RunError::Capture(chattcp::capture::CaptureError::Io(e))) = &result {
        if matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
        ) {
            eprintln!("chattcp: {}: cannot open: {e}", path.display());
            return Ok(EXIT_BAD_INPUT);
        }
    }
    Ok(if outcome_code(name, result)? == ExitCode::SUCCESS {
        0
    } else {
        EXIT_BAD_INPUT
    })
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// What to draw as a chat, and how.
struct ChatRun<'a> {
    name: &'a str,
    scripts: &'a [Script],
    options: ChatOptions,
    only: Option<u64>,
    max_packets: usize,
    limits: Limits,
    /// The lesson the user asked for.
    chosen: Option<&'a str>,
}

/// Draws `source` as a chat with the given scripts' notes and findings.
fn chat(
    run: ChatRun<'_>,
    source: Box<dyn Read + Send>,
    mut progress: Progress,
) -> anyhow::Result<ExitCode> {
    let ChatRun {
        name,
        scripts,
        options,
        only,
        max_packets,
        limits,
        chosen,
    } = run;
    let mut collector = ChatCollector::new(only, max_packets);
    let source = progress.reader(source);
    let result = progress.with_sink(&mut collector, |sink| {
        run_with(
            source,
            scripts,
            limits,
            ScriptLimits::default(),
            chosen,
            sink,
        )
    });
    progress.finish();
    match result {
        Ok((output, outcome)) => {
            let text = render_chat(&collector, &output, &options);
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes()).context("output")?;
            out.flush().context("output")?;
            for w in &outcome.summary.warnings {
                eprintln!("chattcp: {name}: warning: {w}");
            }
            if let Some(c) = only {
                if collector.is_empty() {
                    eprintln!("chattcp: {name}: no connection {c}");
                    return Ok(ExitCode::from(EXIT_BAD_INPUT));
                }
            }
            if outcome.damage.is_some() {
                return Ok(ExitCode::from(EXIT_BAD_INPUT));
            }
            if !output.errors.is_empty() {
                return Ok(ExitCode::from(EXIT_SCRIPT_FAILED));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => outcome_code(name, Err(e)),
    }
}

/// One capture to put in an HTML report.
enum ReportSource {
    /// A file (opened when its turn comes).
    File(PathBuf),
    /// An example capture, by name.
    Example(String, &'static [u8]),
}

/// Runs `scripts` over each source and writes one HTML page to `output`
/// (`-`: standard output).
fn html_report(
    sources: Vec<ReportSource>,
    scripts: &[Script],
    limits: Limits,
    report_limits: ReportLimits,
    options: &ReportOptions,
    output: &Path,
) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    let mut captures = Vec::new();
    for src in sources {
        let mut collector = HtmlCollector::new(report_limits);
        let mut problems = Vec::new();
        let mut script_output = Default::default();
        let (name, opened, mut progress) = match src {
            ReportSource::File(path) => (
                display_name(&path),
                open(&path).map_err(|e| format!("{e:#}")),
                progress_for(&path, true),
            ),
            ReportSource::Example(name, bytes) => (
                name,
                Ok(Box::new(bytes) as Box<dyn Read + Send>),
                Progress::new(None, false),
            ),
        };
        match opened {
            Err(e) => {
                eprintln!("chattcp: {e}");
                problems.push(e);
                code = ExitCode::from(EXIT_BAD_INPUT);
            }
            Ok(source) => {
                let source = progress.reader(source);
                // Commentary only where the page draws bubbles: on a big
                // capture the lessons would otherwise explain every packet.
                let lessons = match report_limits.only {
                    Some(c) => LessonScope::Only(c),
                    None => LessonScope::Below(report_limits.full_connections as u64),
                };
                let result = progress.with_sink(&mut collector, |sink| {
                    run_scoped(
                        source,
                        scripts,
                        limits,
                        ScriptLimits::default(),
                        options.chosen.as_deref(),
                        lessons,
                        sink,
                    )
                });
                progress.finish();
                match result {
                    Ok((out, outcome)) => {
                        for w in &outcome.summary.warnings {
                            eprintln!("chattcp: {name}: warning: {w}");
                        }
                        if let Some(d) = outcome.damage {
                            eprintln!("chattcp: {name}: {d}");
                            problems.push(d.to_string());
                            code = ExitCode::from(EXIT_BAD_INPUT);
                        }
                        for e in &out.errors {
                            eprintln!(
                                "chattcp: {}: script {} failed: {}",
                                name, e.script, e.message
                            );
                            if code == ExitCode::SUCCESS {
                                code = ExitCode::from(EXIT_SCRIPT_FAILED);
                            }
                        }
                        script_output = out;
                    }
                    Err(RunError::Capture(e)) => {
                        eprintln!("chattcp: {name}: {e}");
                        problems.push(e.to_string());
                        code = ExitCode::from(EXIT_BAD_INPUT);
                    }
                    Err(e) => return Err(e).context("reading the capture"),
                }
            }
        }
        captures.push(CaptureInput {
            name,
            collector,
            output: script_output,
            problems,
        });
    }
    if let Some(c) = report_limits.only {
        if !captures.iter().any(|cap| cap.collector.has(c)) {
            eprintln!("chattcp: no connection {c} (`chattcp conns FILE` lists them)");
            code = ExitCode::from(EXIT_BAD_INPUT);
        }
    }
    let page = html::render(&captures, options)?;
    if output.as_os_str() == "-" {
        let mut out = io::stdout().lock();
        match out.write_all(page.as_bytes()).and_then(|_| out.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            other => other.context("output")?,
        }
    } else {
        std::fs::write(output, page.as_bytes())
            .with_context(|| format!("{}: cannot write", output.display()))?;
        let conns: usize = captures.iter().map(|c| c.collector.connections()).sum();
        let full: usize = captures
            .iter()
            .map(|c| c.collector.full_connections())
            .sum();
        let size = match page.len() {
            n if n < 1_000_000 => format!("{} kB", n.div_ceil(1000)),
            n => format!("{:.1} MB", n as f64 / 1e6),
        };
        eprintln!(
            "chattcp: wrote {} ({size}; {} connection{}, {} drawn in full)",
            output.display(),
            conns,
            if conns == 1 { "" } else { "s" },
            full
        );
    }
    Ok(code)
}

/// The lesson written for example `name`, if any.
fn lesson_for<'a>(scripts: &'a [Script], name: &str) -> Option<&'a Script> {
    scripts
        .iter()
        .find(|s| s.meta.kind == Kind::Lesson && s.meta.captures.iter().any(|c| c == name))
}

fn threads(n: Option<usize>) -> usize {
    n.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs scripts over captures and prints the report.
fn run_scripts(
    scripts: &[Script],
    files: &[PathBuf],
    limits: Limits,
    script_limits: ScriptLimits,
    threads: Option<usize>,
    render: impl Fn(&[CaptureReport]) -> String,
) -> anyhow::Result<ExitCode> {
    let paths = match expand_inputs(files) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("chattcp: {e}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    if paths.is_empty() {
        eprintln!(
            "chattcp: no captures (.pcap, .pcapng, .cap) in {}",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    // Splitting a capture's scripts among threads costs a connection table
    // per thread: only when asked for.
    // The report comes at the end: a bar over all the captures' bytes
    // meanwhile, when someone watches a terminal.
    let total: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
        .sum();
    let progress = Progress::new(Some(total), io::stderr().is_terminal());
    let counter = progress.counter();
    let reports = analyse_all(
        &paths,
        scripts,
        limits,
        script_limits,
        self::threads(threads),
        threads.is_some(),
        Some(&counter),
    );
    progress.finish();
    let mut out = io::stdout().lock();
    out.write_all(render(&reports).as_bytes())
        .context("output")?;
    out.flush().context("output")?;
    let mut code = ExitCode::SUCCESS;
    for r in &reports {
        for e in &r.output.errors {
            eprintln!(
                "chattcp: {}: script {} failed: {}",
                r.file, e.script, e.message
            );
            code = ExitCode::from(EXIT_SCRIPT_FAILED);
        }
    }
    for r in &reports {
        for w in &r.warnings {
            eprintln!("chattcp: warning: {w}");
        }
        if let Some(p) = &r.problem {
            eprintln!("chattcp: {p}");
            code = ExitCode::from(EXIT_BAD_INPUT);
        }
    }
    Ok(code)
}

/// Says a run's warnings and problem, and gives its exit status.
fn outcome_code(
    name: &str,
    result: Result<chattcp::pipeline::RunOutcome, RunError>,
) -> anyhow::Result<ExitCode> {
    match result {
        Ok(outcome) => {
            for w in &outcome.summary.warnings {
                eprintln!("chattcp: {name}: warning: {w}");
            }
            if outcome.damage.is_some() {
                return Ok(ExitCode::from(EXIT_BAD_INPUT));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(RunError::Capture(e)) => {
            eprintln!("chattcp: {name}: {e}");
            Ok(ExitCode::from(EXIT_BAD_INPUT))
        }
        Err(RunError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("output"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let live = !stdout.is_terminal();
    let out = BufWriter::with_capacity(64 << 10, stdout.lock());
    let Some(command) = cli.command else {
        print!("{START_HERE}");
        return ExitCode::SUCCESS;
    };
    let result = match command {
        Command::Packets { file, json, limits } => {
            // Reading a pipe is watching live traffic: print each packet as it comes.
            let flush_each = file.as_os_str() == "-";
            if json {
                let mut w = JsonLines::new(out, JsonKind::Packets);
                w.flush_each = flush_each;
                run(&file, limits.limits(), &mut w)
            } else {
                let mut w = TextWriter::new(out, TextKind::Packets);
                w.flush_each = flush_each || !live;
                run(&file, limits.limits(), &mut w)
            }
        }
        Command::Run {
            script,
            files,
            json,
            threads: n,
            limits,
        } => match load_file(&script, &ScriptLimits::default()) {
            Ok(s) => run_scripts(
                &[s],
                &files,
                limits.limits(),
                limits.script_limits(),
                n,
                |r| {
                    if json {
                        format!("{}\n", report::run_json(r))
                    } else {
                        report::run_text(r)
                    }
                },
            ),
            Err(e) => {
                eprintln!("chattcp: {e}");
                Ok(ExitCode::from(EXIT_BAD_INPUT))
            }
        },
        Command::Diagnose {
            files,
            rules,
            json,
            threads: n,
            limits,
        } => match load_with_rules(
            Some(Kind::Diagnosis),
            rules.as_deref(),
            &ScriptLimits::default(),
        ) {
            Ok(mut scripts) => {
                for s in scripts
                    .iter()
                    .filter(|s| s.meta.kind == Kind::Lesson && s.origin != "built-in")
                {
                    eprintln!(
                        "chattcp: {}: a lesson, not a diagnosis: run it with `chattcp run` or `chattcp chat --commentary`",
                        s.origin
                    );
                }
                scripts.retain(|s| s.meta.kind == Kind::Diagnosis);
                run_scripts(
                    &scripts,
                    &files,
                    limits.limits(),
                    limits.script_limits(),
                    n,
                    |r| {
                        if json {
                            format!("{}\n", report::diagnose_json(r))
                        } else {
                            report::diagnose_text(r)
                        }
                    },
                )
            }
            Err(e) => {
                eprintln!("chattcp: {e}");
                Ok(ExitCode::from(EXIT_BAD_INPUT))
            }
        },
        Command::Chat {
            file,
            conn,
            commentary,
            max_packets,
            rules,
            color,
            limits,
        } => match load_scripts(None, rules.as_deref(), &ScriptLimits::default()) {
            Ok(scripts) => {
                let options = ChatOptions {
                    commentary,
                    color: color.enabled(),
                    lessons: scripts
                        .iter()
                        .filter(|s| s.meta.kind == Kind::Lesson)
                        .map(|s| s.name.clone())
                        .collect(),
                    chosen: None,
                };
                // Without commentary no lesson needs to run.
                let scripts: Vec<Script> = scripts
                    .into_iter()
                    .filter(|s| commentary || s.meta.kind == Kind::Diagnosis)
                    .collect();
                match open(&file) {
                    Ok(source) => chat(
                        ChatRun {
                            name: &display_name(&file),
                            scripts: &scripts,
                            options,
                            only: conn,
                            max_packets,
                            limits: limits.limits(),
                            chosen: None,
                        },
                        source,
                        progress_for(&file, true),
                    ),
                    Err(e) => {
                        eprintln!("chattcp: {e:#}");
                        Ok(ExitCode::from(EXIT_BAD_INPUT))
                    }
                }
            }
            Err(e) => {
                eprintln!("chattcp: {e}");
                Ok(ExitCode::from(EXIT_BAD_INPUT))
            }
        },
        Command::Lessons => {
            match load_scripts(Some(Kind::Lesson), None, &ScriptLimits::default()) {
                Ok(lessons) => {
                    let mut out = io::stdout().lock();
                    let mut text = String::new();
                    for (name, _) in example_captures() {
                        let summary = lesson_for(&lessons, name)
                            .map_or("(no lesson yet)", |l| l.meta.summary.as_str());
                        text.push_str(&format!("{name}\n"));
                        for line in chattcp::render::chat::wrap(summary, 74) {
                            text.push_str(&format!("    {line}\n"));
                        }
                    }
                    text.push_str("\nchattcp lesson NAME shows one as a chat with commentary.\n");
                    out.write_all(text.as_bytes())
                        .context("output")
                        .map(|_| ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("chattcp: {e}");
                    Ok(ExitCode::from(EXIT_BAD_INPUT))
                }
            }
        }
        Command::Lesson {
            name,
            color,
            html: as_html,
            output,
        } => {
            let name = name.trim_end_matches(".pcap");
            match example_captures().iter().find(|(n, _)| *n == name) {
                None => {
                    let names: Vec<&str> = example_captures().iter().map(|(n, _)| *n).collect();
                    eprintln!(
                        "chattcp: no example called `{name}`; the examples are: {}",
                        names.join(", ")
                    );
                    Ok(ExitCode::from(EXIT_BAD_INPUT))
                }
                Some((_, bytes)) => match load_scripts(None, None, &ScriptLimits::default()) {
                    Ok(scripts) if as_html => {
                        let lesson = lesson_for(&scripts, name);
                        let chosen = lesson.map(|s| s.name.clone());
                        let intro = LessonIntro {
                            name: name.to_string(),
                            title: lesson
                                .map_or_else(|| name.to_string(), |l| l.meta.title.clone()),
                            summary: lesson.map_or(String::new(), |l| l.meta.summary.clone()),
                        };
                        let options = ReportOptions {
                            title: format!("chattcp lesson: {}", intro.title),
                            lesson: Some(intro),
                            lessons: scripts
                                .iter()
                                .filter(|s| s.meta.kind == Kind::Lesson)
                                .map(|s| s.name.clone())
                                .collect(),
                            chosen,
                            commentary_on: true,
                        };
                        html_report(
                            vec![ReportSource::Example(format!("{name}.pcap"), bytes)],
                            &scripts,
                            Limits::default(),
                            ReportLimits::default(),
                            &options,
                            output.as_deref().unwrap_or(Path::new("-")),
                        )
                    }
                    Ok(scripts) => {
                        let chosen = lesson_for(&scripts, name).map(|s| s.name.clone());
                        let options = ChatOptions {
                            commentary: true,
                            color: color.enabled(),
                            lessons: scripts
                                .iter()
                                .filter(|s| s.meta.kind == Kind::Lesson)
                                .map(|s| s.name.clone())
                                .collect(),
                            chosen: chosen.clone(),
                        };
                        chat(
                            ChatRun {
                                name,
                                scripts: &scripts,
                                options,
                                only: None,
                                max_packets: 2000,
                                limits: Limits::default(),
                                chosen: chosen.as_deref(),
                            },
                            Box::new(*bytes),
                            Progress::new(None, false),
                        )
                    }
                    Err(e) => {
                        eprintln!("chattcp: {e}");
                        Ok(ExitCode::from(EXIT_BAD_INPUT))
                    }
                },
            }
        }
        Command::Report {
            files,
            output,
            full,
            max_packets,
            total_packets,
            conn,
            no_commentary,
            rules,
            limits,
        } => match load_scripts(None, rules.as_deref(), &ScriptLimits::default()) {
            Ok(mut scripts) => match expand_inputs(&files) {
                Ok(paths) if paths.is_empty() => {
                    eprintln!(
                        "chattcp: no captures (.pcap, .pcapng, .cap) in the directories given"
                    );
                    Ok(ExitCode::from(EXIT_BAD_INPUT))
                }
                Ok(paths) => {
                    if no_commentary {
                        scripts.retain(|s| s.meta.kind == Kind::Diagnosis);
                    }
                    let title = match paths.as_slice() {
                        [one] => format!("chattcp report: {}", display_name(one)),
                        many => format!("chattcp report: {} captures", many.len()),
                    };
                    let options = ReportOptions {
                        title,
                        lesson: None,
                        lessons: scripts
                            .iter()
                            .filter(|s| s.meta.kind == Kind::Lesson)
                            .map(|s| s.name.clone())
                            .collect(),
                        chosen: None,
                        commentary_on: false,
                    };
                    let sources = paths.into_iter().map(ReportSource::File).collect();
                    let report_limits = ReportLimits {
                        full_connections: full,
                        max_packets,
                        total_packets,
                        only: conn,
                        ..ReportLimits::default()
                    };
                    html_report(
                        sources,
                        &scripts,
                        limits.limits(),
                        report_limits,
                        &options,
                        &output,
                    )
                }
                Err(e) => {
                    eprintln!("chattcp: {e}");
                    Ok(ExitCode::from(EXIT_BAD_INPUT))
                }
            },
            Err(e) => {
                eprintln!("chattcp: {e}");
                Ok(ExitCode::from(EXIT_BAD_INPUT))
            }
        },
        Command::Scripts { rules } => {
            match load_scripts(None, rules.as_deref(), &ScriptLimits::default()) {
                Ok(scripts) => {
                    let mut out = io::stdout().lock();
                    let width = scripts.iter().map(|s| s.name.len()).max().unwrap_or(4);
                    let mut result = Ok(ExitCode::SUCCESS);
                    for s in &scripts {
                        let origin = if s.origin == "built-in" {
                            String::new()
                        } else {
                            format!("  ({})", s.origin)
                        };
                        if let Err(e) = writeln!(
                            out,
                            "{:<width$}  {:<9}  {}{}",
                            s.name,
                            s.meta.kind.name(),
                            s.meta.title,
                            origin
                        ) {
                            result = Err(e).context("output");
                            break;
                        }
                    }
                    result
                }
                Err(e) => {
                    eprintln!("chattcp: {e}");
                    Ok(ExitCode::from(EXIT_BAD_INPUT))
                }
            }
        }
        Command::Follow {
            file,
            conn,
            raw,
            json,
            limits,
        } => {
            let mode = if raw {
                FollowMode::Raw
            } else {
                FollowMode::Decoded
            };
            let mut dissector = Dissector::with_limits(
                FollowWriter::new(out, conn, mode, json),
                limits.limits().decode,
            )
            .only(conn);
            match run(&file, limits.limits(), &mut dissector) {
                Ok(code) if code == ExitCode::SUCCESS && !dissector.inner().found() => {
                    eprintln!(
                        "chattcp: {}: no connection {conn} (`chattcp conns` lists them)",
                        display_name(&file)
                    );
                    Ok(ExitCode::from(EXIT_BAD_INPUT))
                }
                other => other,
            }
        }
        Command::Conns {
            files,
            json,
            threads: n,
            tcp_only,
            limits,
        } => {
            // Files pass as given (`-` too); directories give their captures.
            let paths = match expand_inputs(&files) {
                Ok(paths) if !paths.is_empty() => paths,
                Ok(_) => {
                    eprintln!(
                        "chattcp: no captures (.pcap, .pcapng, .cap) in the directories given"
                    );
                    return ExitCode::from(EXIT_BAD_INPUT);
                }
                Err(e) => {
                    eprintln!("chattcp: {e}");
                    return ExitCode::from(EXIT_BAD_INPUT);
                }
            };
            let limits = for_conns(limits.limits());
            if let [path] = paths.as_slice() {
                let mut sink: Box<dyn EventSink> = if json {
                    Box::new(JsonLines::new(out, JsonKind::Conns))
                } else {
                    Box::new(TextWriter::new(out, TextKind::Conns))
                };
                let rendering = (!json).then_some(CONNS_TEXT);
                run_parallel(
                    path,
                    limits,
                    threads(n),
                    !tcp_only,
                    rendering,
                    sink.as_mut(),
                )
            } else {
                conns_of_files(&paths, json, limits, threads(n), !tcp_only, out)
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io::stderr(), "chattcp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
