//! `chattcp follow`: one connection as the application saw it, like
//! Wireshark's Follow Stream but decoded: HTTP messages with their headers
//! and decoded bodies, event-stream events with their arrival times,
//! WebSocket messages. `--raw` shows the reassembled bytes as sent instead.
//! Output is written as the events pass, so a long capture streams.

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use super::app::{app_json, escaped, follow_http, follow_http_head, follow_text, hex, is_text};
use crate::capture::Timestamp;
use crate::dissect::http::starts_http;
use crate::dissect::AppEvent;
use crate::events::{DataChunk, Event, EventSink};
use crate::reassembly::Chunk;

/// How to show the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowMode {
    /// Decoded where a dissector applies, raw bytes elsewhere.
    Decoded,
    /// The bytes as sent.
    Raw,
}

/// Writes one connection's conversation as the events pass.
pub struct FollowWriter<W: Write> {
    out: W,
    conn: u64,
    mode: FollowMode,
    json: bool,
    start: Option<Timestamp>,
    found: bool,
    /// Decided by the connection's first bytes: a dissector reads them.
    dissected: Option<bool>,
    /// HTTP heads already printed: (direction, index).
    heads: std::collections::HashSet<(&'static str, u64)>,
}

impl<W: Write> FollowWriter<W> {
    /// Follows connection `conn`.
    pub fn new(out: W, conn: u64, mode: FollowMode, json: bool) -> Self {
        FollowWriter {
            out,
            conn,
            mode,
            json,
            start: None,
            found: false,
            dissected: None,
            heads: std::collections::HashSet::new(),
        }
    }

    /// Whether the connection was in the capture.
    pub fn found(&self) -> bool {
        self.found
    }

    fn start(&self) -> Timestamp {
        self.start.unwrap_or(Timestamp(0))
    }

    fn line(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")
    }

    fn data(&mut self, d: &DataChunk<'_>) -> io::Result<()> {
        if let (None, Chunk::Data { bytes, .. }) = (self.dissected, d.chunk) {
            self.dissected = Some(self.mode == FollowMode::Decoded && starts_http(bytes, d.dir));
        }
        if self.dissected == Some(true) {
            return Ok(());
        }
        let time = d.time.since(self.start()) as f64 / 1e9;
        let who = if d.dir.name() == "c2s" {
            "client → server"
        } else {
            "server → client"
        };
        if self.json {
            let mut m = Map::new();
            m.insert("type".into(), json!("data"));
            m.insert("conn".into(), json!(d.conn));
            m.insert("dir".into(), json!(d.dir.name()));
            m.insert("frame".into(), json!(d.frame));
            m.insert("time".into(), json!(time));
            match d.chunk {
                Chunk::Data { offset, bytes } => {
                    m.insert("offset".into(), json!(offset));
                    m.insert("len".into(), json!(bytes.len()));
                    if is_text(bytes) {
                        m.insert("text".into(), json!(String::from_utf8_lossy(bytes)));
                    } else {
                        m.insert("hex".into(), json!(hex(bytes)));
                    }
                }
                Chunk::Gap { offset, len } => {
                    m.insert("offset".into(), json!(offset));
                    m.insert("gap".into(), json!(len));
                }
                Chunk::End { offset } => {
                    m.insert("offset".into(), json!(offset));
                    m.insert("end".into(), json!(true));
                }
            }
            return self.line(&Value::Object(m));
        }
        match d.chunk {
            Chunk::Data { bytes, .. } => {
                writeln!(
                    self.out,
                    "{who}  frame {}  {time:.6} s  {} bytes",
                    d.frame,
                    bytes.len()
                )?;
                if is_text(bytes) {
                    for line in String::from_utf8_lossy(bytes).split_inclusive('\n') {
                        writeln!(self.out, "    {}", escaped(line.as_bytes(), 10_000))?;
                    }
                } else {
                    for row in bytes.chunks(32) {
                        writeln!(self.out, "    {}", hex(row))?;
                    }
                }
            }
            Chunk::Gap { len, .. } => {
                writeln!(
                    self.out,
                    "{who}  frame {}  {time:.6} s  [{len} bytes not in the capture]",
                    d.frame
                )?;
            }
            Chunk::End { .. } => {
                writeln!(
                    self.out,
                    "{who}  frame {}  {time:.6} s  [FIN: no more bytes]",
                    d.frame
                )?;
            }
        }
        Ok(())
    }

    fn app(&mut self, e: &AppEvent) -> io::Result<()> {
        // A request left unanswered was followed when it came.
        if self.mode == FollowMode::Raw || matches!(e, AppEvent::HttpUnanswered(_)) {
            return Ok(());
        }
        if self.json {
            let v = app_json(e, self.start());
            return self.line(&v);
        }
        let text = match e {
            AppEvent::HttpHead(m) => {
                self.heads.insert((m.dir.name(), m.index));
                follow_http_head(m, self.start())
            }
            AppEvent::Http(m) => {
                let printed = self.heads.remove(&(m.dir.name(), m.index));
                follow_http(m, self.start(), !printed)
            }
            _ => follow_text(e, self.start()),
        };
        if !text.is_empty() {
            self.out.write_all(text.as_bytes())?;
            if !matches!(e, AppEvent::Sse(_) | AppEvent::HttpHead(_)) {
                self.out.write_all(b"\n")?;
            }
        }
        Ok(())
    }
}

impl<W: Write> EventSink for FollowWriter<W> {
    fn event(&mut self, event: &Event<'_>) -> io::Result<()> {
        match event {
            Event::Packet(p) => {
                self.start
                    .get_or_insert(Timestamp(p.time.nanos() - p.rel_time_ns));
            }
            Event::Opened(info) if info.conn == self.conn => {
                self.found = true;
                if !self.json {
                    writeln!(
                        self.out,
                        "connection {}: client {} → server {}\n",
                        info.conn, info.client, info.server
                    )?;
                }
            }
            Event::Data(d) if d.conn == self.conn => self.data(d)?,
            Event::App(e) if e.conn() == self.conn => self.app(e)?,
            Event::Closed(s) if s.conn == self.conn && !self.json => {
                writeln!(
                    self.out,
                    "(connection {} ended: {} packets, {} bytes from the client, {} from the server)",
                    s.conn,
                    s.packets[0] + s.packets[1],
                    s.bytes[0],
                    s.bytes[1]
                )?;
            }
            Event::End(_) => self.out.flush()?,
            _ => {}
        }
        Ok(())
    }
}
