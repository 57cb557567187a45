//! Writes the seed corpora of the fuzz targets from real captures:
//! `make_seeds OUT_DIR CAPTURE...`. Raw captures seed the reader and the
//! pipeline; each connection's reassembled streams (in the order their bytes
//! arrived) seed HTTP; the bytes after a WebSocket handshake seed WebSocket;
//! event-stream bodies and gzip bodies seed their parsers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chattcp::events::{Event, EventSink};
use chattcp::pipeline::{self, Limits};
use chattcp::reassembly::Chunk;
use chattcp::tracking::Direction;
use chattcp_fuzz::{encode_turn, Turn};

/// Each connection's steps: (side, bytes or gap length, ended).
#[derive(Default)]
struct Streams {
    conns: BTreeMap<u64, Vec<(Direction, Result<Vec<u8>, u64>)>>,
}

impl EventSink for Streams {
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        if let Event::Data(d) = event {
            let steps = self.conns.entry(d.conn).or_default();
            match d.chunk {
                Chunk::Data { bytes, .. } => steps.push((d.dir, Ok(bytes.to_vec()))),
                Chunk::Gap { len, .. } => steps.push((d.dir, Err(len))),
                _ => {}
            }
        }
        Ok(())
    }
}

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() || bytes.len() > 1 << 20 {
        return Ok(());
    }
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn side_bytes(steps: &[(Direction, Result<Vec<u8>, u64>)], dir: Direction) -> Vec<u8> {
    let mut all = Vec::new();
    for (d, step) in steps {
        if let (true, Ok(b)) = (*d == dir, step) {
            all.extend_from_slice(b);
        }
    }
    all
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn main() -> std::io::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let Some((out, captures)) = args.split_first() else {
        eprintln!("usage: make_seeds OUT_DIR CAPTURE...");
        std::process::exit(2);
    };
    for capture in captures {
        let Ok(bytes) = std::fs::read(capture) else {
            continue;
        };
        let name = capture
            .file_name()
            .map_or("capture".into(), |n| n.to_string_lossy().into_owned());
        write(out, "capture_reader", &name, &bytes)?;
        write(out, "pipeline", &name, &bytes)?;
        let mut streams = Streams::default();
        if pipeline::run(&bytes[..], Limits::default(), &mut streams).is_err() {
            continue;
        }
        for (conn, steps) in &streams.conns {
            let mut turns = Vec::new();
            for (d, step) in steps {
                match step {
                    Ok(b) => encode_turn(&mut turns, &Turn::Data(*d, b)),
                    Err(len) => encode_turn(&mut turns, &Turn::Gap(*d, *len)),
                }
            }
            let seed = format!("{name}-{conn}");
            let client = side_bytes(steps, Direction::ClientToServer);
            let server = side_bytes(steps, Direction::ServerToClient);
            if find(&client, b"HTTP/1.").is_some() {
                write(out, "http", &seed, &turns)?;
            }
            if let (Some(_), Some(c), Some(s)) = (
                find(&client, b"Upgrade: websocket").or(find(&client, b"upgrade: websocket")),
                find(&client, b"\r\n\r\n"),
                find(&server, b"\r\n\r\n"),
            ) {
                let deflate = find(&server, b"permessage-deflate").is_some();
                let mut ws = vec![u8::from(deflate)];
                encode_turn(
                    &mut ws,
                    &Turn::Data(Direction::ClientToServer, &client[c + 4..]),
                );
                encode_turn(
                    &mut ws,
                    &Turn::Data(Direction::ServerToClient, &server[s + 4..]),
                );
                write(out, "websocket", &seed, &ws)?;
            }
            if let (Some(_), Some(s)) = (
                find(&server, b"text/event-stream"),
                find(&server, b"\r\n\r\n"),
            ) {
                let mut sse = Vec::new();
                encode_turn(&mut sse, &Turn::Data(Direction::ServerToClient, &server[s + 4..]));
                write(out, "event_stream", &seed, &sse)?;
            }
            if let Some(g) = find(&server, &[0x1f, 0x8b, 0x08]) {
                let mut gz = vec![0x20];
                gz.extend_from_slice(&server[g..]);
                write(out, "compression", &seed, &gz)?;
            }
        }
    }
    Ok(())
}
