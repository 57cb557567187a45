//! Server-sent events (`text/event-stream`), parsed as the HTML standard's
//! "event stream interpretation" says: lines end at CRLF, LF or CR; a blank
//! line dispatches the event; `event`, `data` (joined by LF), `id` and
//! `retry` fields; lines starting with `:` are comments; an event cut by the
//! end of the stream is dropped.
//!
//! The parser is fed the decoded body as it becomes readable. For a
//! compressed stream that is when the decompressor lets the bytes out, which
//! can be long after they arrived: each event says when its compressed
//! bytes started arriving and when it could be read.

use super::compression::Encoding;
use super::{AppEvent, At};

/// Bytes kept of one line or of one event's data; more is cut and flagged.
const MAX_FIELD: usize = 1 << 20;
/// Comment lines kept per event.
const MAX_COMMENTS: usize = 16;
/// U+FEFF in UTF-8.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// Connection number.
    pub conn: u64,
    /// Index of the HTTP response (among the server's messages) that carries the stream.
    pub response: u64,
    /// Index of the event in its stream, from 0.
    pub index: u64,
    /// The event type (`message` when no `event:` field was given).
    pub event: String,
    /// The data lines joined by LF.
    pub data: String,
    /// The last event ID after this event (the `id:` field, kept across events).
    pub id: Option<String>,
    /// A `retry:` field in this event, milliseconds.
    pub retry: Option<u64>,
    /// Comment lines of this event (after the `:`).
    pub comments: Vec<String>,
    /// When its first byte could be read.
    pub first: At,
    /// When its final blank line could be read: when a client could dispatch it.
    pub readable: At,
    /// When the wire bytes that held it started arriving: for a compressed
    /// stream, the first compressed bytes that had not yet produced text.
    pub arrived: At,
    /// The stream was compressed.
    pub compressed: bool,
    /// The event could be read from the segment that brought its bytes.
    pub decodable_on_arrival: bool,
    /// How long its bytes were on the wire before they could be read, ns.
    pub held_back_ns: i64,
    /// Data beyond what is kept was dropped.
    pub truncated: bool,
    /// How long the stream showed a client nothing before this event became
    /// readable: since the previous event (or the response head), ns. Events
    /// made readable by the same segment share it: a burst after a silence
    /// is what a compressor that holds events back looks like on the wire.
    pub quiet_before_ns: i64,
}

/// An event stream being read.
#[derive(Debug)]
pub struct SseParser {
    conn: u64,
    response: u64,
    compressed: bool,
    /// A coding chattcp cannot decode: the stream cannot be read.
    unreadable: bool,
    line: Vec<u8>,
    after_cr: bool,
    at_start: bool,
    /// Bytes of a byte order mark seen at the start.
    bom_seen: usize,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
    retry: Option<u64>,
    comments: Vec<String>,
    truncated: bool,
    /// First byte of the event being read.
    event_first: Option<At>,
    /// Compressed bytes arrived at this point and have not all become text.
    pending_since: Option<At>,
    /// When the event being read started arriving on the wire.
    event_arrived: Option<At>,
    /// The segment that last let a client see something (the response head,
    /// then each segment that completed events), and the one before it.
    last_progress: At,
    progress_before: At,
    count: u64,
}

impl SseParser {
    /// A parser for the stream of response `response` on connection `conn`,
    /// compressed with `encoding` if any, whose head ended at `start`.
    pub fn new(conn: u64, response: u64, encoding: Option<Encoding>, start: At) -> Self {
        SseParser {
            conn,
            response,
            compressed: encoding.is_some_and(|e| e != Encoding::Identity),
            unreadable: encoding.is_some_and(|e| e != Encoding::Identity && !e.decodable()),
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            bom_seen: 0,
            event: String::new(),
            data: String::new(),
            has_data: false,
            last_id: None,
            retry: None,
            comments: Vec::new(),
            truncated: false,
            event_first: None,
            pending_since: None,
            event_arrived: None,
            last_progress: start,
            progress_before: start,
            count: 0,
        }
    }

    /// The stream turned out to be compressed (magic bytes, no header).
    pub fn set_compressed(&mut self) {
        self.compressed = true;
    }

    /// Events dispatched so far.
    pub fn events(&self) -> u64 {
        self.count
    }

    /// Body bytes arrived: `wire_len` bytes on the wire at `at`, of which
    /// `decoded` is the text they (and earlier bytes) let out.
    pub fn feed_decoded(
        &mut self,
        wire_len: usize,
        decoded: &[u8],
        at: At,
        out: &mut Vec<AppEvent>,
    ) {
        self.wire(wire_len, at);
        self.text(decoded, at, out);
        self.settle(!decoded.is_empty());
    }

    /// The first step of [`SseParser::feed_decoded`] in pieces: `wire_len`
    /// body bytes arrived at `at`.
    pub(crate) fn wire(&mut self, wire_len: usize, at: At) {
        if self.compressed && !self.unreadable && wire_len > 0 && self.pending_since.is_none() {
            self.pending_since = Some(at);
        }
    }

    /// The second step, as often as needed: text they let out.
    pub(crate) fn text(&mut self, decoded: &[u8], at: At, out: &mut Vec<AppEvent>) {
        if self.unreadable {
            return;
        }
        let arrived_with = if self.compressed {
            self.pending_since.unwrap_or(at)
        } else {
            at
        };
        let mut rest = decoded;
        // A byte order mark opening the stream is dropped, even when it
        // comes in pieces.
        while self.at_start && !rest.is_empty() {
            if rest[0] == BOM[self.bom_seen] {
                self.bom_seen += 1;
                rest = &rest[1..];
                self.at_start = self.bom_seen < BOM.len();
            } else {
                // Not a BOM after all: what looked like one is text.
                self.at_start = false;
                for &b in &BOM[..self.bom_seen] {
                    self.byte(b, at, arrived_with, out);
                }
            }
        }
        for &b in rest {
            self.byte(b, at, arrived_with, out);
        }
    }

    fn byte(&mut self, b: u8, at: At, arrived_with: At, out: &mut Vec<AppEvent>) {
        if self.event_first.is_none() {
            self.event_first = Some(at);
            self.event_arrived = Some(arrived_with);
        }
        match b {
            b'\n' if self.after_cr => self.after_cr = false,
            b'\n' | b'\r' => {
                self.after_cr = b == b'\r';
                self.end_line(at, out);
            }
            _ => {
                self.after_cr = false;
                if self.line.len() < MAX_FIELD {
                    self.line.push(b);
                } else {
                    self.truncated = true;
                }
            }
        }
    }

    /// The last step: whether any text came out of these bytes.
    pub(crate) fn settle(&mut self, decoded_any: bool) {
        // Everything that arrived became text up to an event boundary: no
        // compressed bytes are known to be waiting.
        if decoded_any && self.line.is_empty() && self.event_first.is_none() {
            self.pending_since = None;
        }
    }

    fn end_line(&mut self, at: At, out: &mut Vec<AppEvent>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(at, out);
            return;
        }
        let text = String::from_utf8_lossy(&line);
        if let Some(comment) = text.strip_prefix(':') {
            if self.comments.len() < MAX_COMMENTS {
                self.comments
                    .push(comment.strip_prefix(' ').unwrap_or(comment).to_string());
            }
            return;
        }
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.data.len() + value.len() < MAX_FIELD {
                    self.data.push_str(value);
                    self.data.push('\n');
                } else {
                    self.truncated = true;
                }
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, at: At, out: &mut Vec<AppEvent>) {
        let first = self.event_first.take().unwrap_or(at);
        let arrived = self.event_arrived.take().unwrap_or(first);
        if !self.has_data {
            // The standard: no data, no event (the type and data are reset).
            self.event.clear();
            self.retry = None;
            self.comments.clear();
            self.truncated = false;
            return;
        }
        if at.frame != self.last_progress.frame {
            self.progress_before = self.last_progress;
            self.last_progress = at;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let event = if self.event.is_empty() {
            "message".to_string()
        } else {
            std::mem::take(&mut self.event)
        };
        out.push(AppEvent::Sse(Box::new(SseEvent {
            conn: self.conn,
            response: self.response,
            index: self.count,
            event,
            data: std::mem::take(&mut self.data),
            id: self.last_id.clone(),
            retry: self.retry.take(),
            comments: std::mem::take(&mut self.comments),
            first,
            readable: at,
            arrived,
            compressed: self.compressed,
            decodable_on_arrival: arrived.frame == at.frame,
            held_back_ns: at.time.since(arrived.time),
            truncated: std::mem::take(&mut self.truncated),
            quiet_before_ns: at.time.since(self.progress_before.time),
        })));
        self.has_data = false;
        self.count += 1;
    }

    /// The stream ended: an event without its blank line is dropped, as the
    /// standard says.
    pub fn finish(&mut self, _at: At, _out: &mut Vec<AppEvent>) {
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.event_first = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;

    fn at(frame: u64) -> At {
        At {
            frame,
            time: Timestamp(frame as i64 * 1_000_000),
        }
    }

    fn events(out: &[AppEvent]) -> Vec<&SseEvent> {
        out.iter()
            .filter_map(|e| match e {
                AppEvent::Sse(s) => Some(&**s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn fields_follow_the_html_standard() {
        let mut p = SseParser::new(0, 0, None, at(0));
        let mut out = Vec::new();
        let text = b"\xef\xbb\xbf: hello\nevent: tick\ndata: a\ndata:b\nid: 7\nretry: 300\n\ndata\n\nevent: x\n\nretry: x1\ndata: c\r\n\r";
        p.feed_decoded(text.len(), text, at(1), &mut out);
        let ev = events(&out);
        assert_eq!(ev.len(), 3);
        assert_eq!(
            (ev[0].event.as_str(), ev[0].data.as_str()),
            ("tick", "a\nb")
        );
        assert_eq!(ev[0].id.as_deref(), Some("7"));
        assert_eq!(ev[0].retry, Some(300));
        assert_eq!(ev[0].comments, vec!["hello".to_string()]);
        // `data` with no colon is an empty data line; the id is kept.
        assert_eq!((ev[1].event.as_str(), ev[1].data.as_str()), ("message", ""));
        assert_eq!(ev[1].id.as_deref(), Some("7"));
        // An event with no data is not dispatched; a bad retry is ignored; CR ends lines.
        assert_eq!(
            (ev[2].event.as_str(), ev[2].data.as_str(), ev[2].retry),
            ("message", "c", None)
        );
    }

    #[test]
    fn a_cr_lf_split_across_chunks_is_one_line_end() {
        let mut p = SseParser::new(0, 0, None, at(0));
        let mut out = Vec::new();
        p.feed_decoded(8, b"data: a\r", at(1), &mut out);
        p.feed_decoded(3, b"\n\r\n", at(2), &mut out);
        let ev = events(&out);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data, "a");
        assert_eq!((ev[0].first.frame, ev[0].readable.frame), (1, 2));
    }

    #[test]
    fn an_event_cut_by_the_end_is_dropped() {
        let mut p = SseParser::new(0, 0, None, at(0));
        let mut out = Vec::new();
        p.feed_decoded(8, b"data: a\n", at(1), &mut out);
        p.finish(at(2), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn compressed_bytes_that_produce_nothing_hold_the_events_back() {
        let mut p = SseParser::new(0, 0, Some(Encoding::Gzip), at(0));
        let mut out = Vec::new();
        // A gzip header arrives and yields no text; everything comes later.
        p.feed_decoded(10, b"", at(8), &mut out);
        p.feed_decoded(100, b"data: 1\n\ndata: 2\n\n", at(10), &mut out);
        let ev = events(&out);
        assert_eq!(ev.len(), 2);
        for e in &ev {
            assert!(e.compressed);
            assert!(!e.decodable_on_arrival);
            assert_eq!(e.arrived.frame, 8);
            assert_eq!(e.readable.frame, 10);
            assert_eq!(e.held_back_ns, 2_000_000);
        }
        // Flushed per event: readable on arrival.
        p.feed_decoded(20, b"data: 3\n\n", at(12), &mut out);
        let ev = events(&out);
        assert!(ev[2].decodable_on_arrival);
        assert_eq!(ev[2].held_back_ns, 0);
    }

    #[test]
    fn a_byte_order_mark_in_pieces_is_dropped() {
        let mut p = SseParser::new(0, 0, None, at(0));
        let mut out = Vec::new();
        for (i, piece) in [&b"\xef"[..], b"\xbb", b"\xbfdata: x\n\n"]
            .iter()
            .enumerate()
        {
            p.feed_decoded(piece.len(), piece, at(i as u64 + 1), &mut out);
        }
        let ev = events(&out);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data, "x");
        assert_eq!(ev[0].first.frame, 3);
    }

    #[test]
    fn a_stream_in_an_undecodable_coding_yields_no_events() {
        let mut p = SseParser::new(0, 0, Some(Encoding::Brotli), at(0));
        let mut out = Vec::new();
        p.feed_decoded(9, b"data: 1\n\n", at(1), &mut out);
        assert!(out.is_empty());
    }
}
