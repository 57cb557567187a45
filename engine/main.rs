//! The `chattcp` command line: a thin layer over the engine.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use chattcp::events::EventSink;
use chattcp::pipeline::{self, Limits, RunError};
use chattcp::render::json::{JsonKind, JsonLines};
use chattcp::render::text::{TextKind, TextWriter};

/// Read packet captures as conversations between client and server.
#[derive(Parser)]
#[command(name = "chattcp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

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
}

impl LimitArgs {
    fn limits(self) -> Limits {
        let mut l = Limits::default();
        l.reader.max_record_len = self.max_record;
        l.reassembly.per_direction = self.reassembly_per_direction;
        l.reassembly.total = self.reassembly_total;
        l
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
    /// Every TCP connection with its summary.
    Conns {
        /// Capture file (pcap or pcapng), or `-` for standard input.
        file: PathBuf,
        /// JSON Lines: one object per connection.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

/// Exit status for input that cannot be used.
const EXIT_BAD_INPUT: u8 = 2;

fn open(path: &Path) -> anyhow::Result<Box<dyn Read + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::stdin()));
    }
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    Ok(Box::new(io::BufReader::with_capacity(1 << 20, file)))
}

fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
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
    match pipeline::run(source, limits, sink) {
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
    let result = match cli.command {
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
        Command::Conns { file, json, limits } => {
            if json {
                run(
                    &file,
                    limits.limits(),
                    &mut JsonLines::new(out, JsonKind::Conns),
                )
            } else {
                run(
                    &file,
                    limits.limits(),
                    &mut TextWriter::new(out, TextKind::Conns),
                )
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
