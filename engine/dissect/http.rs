//! HTTP/1.0 and 1.1 over reassembled streams: requests and responses paired
//! in order, bodies by Content-Length, chunked coding or connection close,
//! content codings decoded, and the anomalies that make parsers disagree.
//!
//! Heads are parsed with httparse. Where a head holds a bare LF (a `\n`
//! without `\r`), httparse (like most servers) takes it as a line end; the
//! CRLF-only reading of RFC 9112 can see something else, so both readings are
//! kept and compared. Message boundaries follow the lenient reading, which is
//! what the peer most likely did.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use super::compression::{ContentDecoder, DecodeLimits, DecodeStop, Encoding};
use super::sse::SseParser;
use super::{AppEvent, At};
use crate::tracking::Direction;

/// A header, as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The name (a common one spelt the usual way is not copied).
    pub name: Cow<'static, str>,
    /// The value, as text (invalid UTF-8 replaced, surrounding whitespace
    /// removed).
    pub value: String,
    /// The value's bytes, kept apart only when they differ from `value`'s:
    /// most values are their bytes, and a head holds a dozen headers.
    raw: Option<Vec<u8>>,
}

impl Header {
    /// A header named `name` whose value's bytes are `raw`.
    pub fn new(name: &[u8], raw: &[u8]) -> Header {
        let value = header_value(raw).into_owned();
        let raw = (value.as_bytes() != raw).then(|| raw.to_vec());
        Header {
            name: header_name(name),
            value,
            raw,
        }
    }

    /// The value's bytes, exactly as sent.
    pub fn raw(&self) -> &[u8] {
        self.raw.as_deref().unwrap_or(self.value.as_bytes())
    }

    /// Adds a folded continuation line to the value.
    fn fold(&mut self, line: &[u8]) {
        let mut raw = self.raw().to_vec();
        raw.extend_from_slice(line);
        self.value = String::from_utf8_lossy(&raw).trim().to_string();
        self.raw = (self.value.as_bytes() != raw).then_some(raw);
    }
}

/// A header value's text: its bytes read as UTF-8, trimmed. Values are
/// nearly always ASCII: checking that is one fast pass, where a lossy
/// reading walks the bytes in chunks.
fn header_value(raw: &[u8]) -> Cow<'_, str> {
    if nothing_to_trim(raw) {
        if let Ok(text) = std::str::from_utf8(raw) {
            return Cow::Borrowed(text);
        }
    }
    match std::str::from_utf8(raw) {
        Ok(text) => Cow::Borrowed(text.trim()),
        Err(_) => Cow::Owned(String::from_utf8_lossy(raw).trim().to_string()),
    }
}

/// Whether a value's ends are visible ASCII, so trimming takes nothing
/// (httparse has removed the spaces around a value already).
fn nothing_to_trim(raw: &[u8]) -> bool {
    let visible = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_graphic());
    visible(raw.first()) && visible(raw.last())
}

/// The length of `header_value(raw)`, without making it when the value is
/// ASCII with visible ends (it is then `raw` itself).
fn header_value_len(raw: &[u8]) -> usize {
    if nothing_to_trim(raw) && raw.is_ascii() {
        raw.len()
    } else {
        header_value(raw).len()
    }
}

/// A header's name: the common ones as constants, spelt as they are sent.
fn header_name(name: &[u8]) -> Cow<'static, str> {
    let common = match name {
        b"Host" => "Host",
        b"User-Agent" => "User-Agent",
        b"Accept" => "Accept",
        b"Accept-Encoding" => "Accept-Encoding",
        b"Accept-Language" => "Accept-Language",
        b"Accept-Ranges" => "Accept-Ranges",
        b"Connection" => "Connection",
        b"Content-Type" => "Content-Type",
        b"Content-Length" => "Content-Length",
        b"Content-Encoding" => "Content-Encoding",
        b"Transfer-Encoding" => "Transfer-Encoding",
        b"Date" => "Date",
        b"Server" => "Server",
        b"Last-Modified" => "Last-Modified",
        b"ETag" => "ETag",
        b"Cache-Control" => "Cache-Control",
        b"Vary" => "Vary",
        b"Location" => "Location",
        b"Cookie" => "Cookie",
        b"Set-Cookie" => "Set-Cookie",
        b"Referer" => "Referer",
        b"Origin" => "Origin",
        b"Upgrade" => "Upgrade",
        b"Expires" => "Expires",
        b"Keep-Alive" => "Keep-Alive",
        b"Pragma" => "Pragma",
        _ => return Cow::Owned(String::from_utf8_lossy(name).into_owned()),
    };
    Cow::Borrowed(common)
}

/// Something in a message that parsers can read differently, or that broke it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// Stable name: `bare_lf`, `header_block_ends_early`, `content_length_mismatch`,
    /// `duplicate_content_length`, `content_length_with_chunked`, `obs_fold`,
    /// `invalid_header_byte`, `unparsable`, `invalid_content_length`,
    /// `invalid_chunk_size`, `header_block_too_large`, `decoding_failed`,
    /// `decoding_limit`, `gzip_without_content_encoding`, `undecoded_encoding`,
    /// `bytes_missing`, `incomplete`.
    pub name: &'static str,
    /// Offset in the message's bytes, where it applies.
    pub offset: Option<u64>,
    /// What exactly.
    pub detail: String,
}

/// Request or response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    /// A request.
    Request {
        /// The method, e.g. `GET`.
        method: Cow<'static, str>,
        /// The request target.
        uri: String,
    },
    /// A response.
    Response {
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: Cow<'static, str>,
    },
}

/// A message's connection number. A parallel run numbers connections
/// when it merges its threads' events, after the message was made and
/// shared (a request is held by its response too): the number is set in
/// place, through every reference, instead of copying the message.
pub struct ConnNumber(std::sync::atomic::AtomicU64);

impl ConnNumber {
    /// Connection number `n`.
    pub fn new(n: u64) -> Self {
        ConnNumber(std::sync::atomic::AtomicU64::new(n))
    }

    /// The number.
    pub fn get(&self) -> u64 {
        // Relaxed: one thread at a time writes it (the dissector when it
        // makes the message, then the merge), and the message passes from
        // one to the other through a channel, which orders memory.
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Renumbers the connection, for every holder of the message.
    pub fn set(&self, n: u64) {
        self.0.store(n, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clone for ConnNumber {
    fn clone(&self) -> Self {
        ConnNumber::new(self.get())
    }
}

impl std::fmt::Debug for ConnNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl PartialEq<u64> for ConnNumber {
    fn eq(&self, other: &u64) -> bool {
        self.get() == *other
    }
}

/// One HTTP message, complete (or cut by the end of the connection).
#[derive(Clone, Debug)]
pub struct HttpMessage {
    /// Connection number.
    pub conn: ConnNumber,
    /// Requests go client to server, responses back.
    pub dir: Direction,
    /// Index among the messages of this direction, from 0.
    pub index: u64,
    /// Request line or status line.
    pub start: StartLine,
    /// `HTTP/1.1`, `HTTP/1.0`, ...
    pub version: Cow<'static, str>,
    /// Headers in order (the reading used to frame the message): see
    /// [`HttpMessage::headers`].
    headers: OnceLock<Vec<Header>>,
    /// The headers are httparse's reading of `raw_head`, made on first need.
    headers_from_head: bool,
    /// Roughly the bytes the headers hold, known before they are made.
    headers_weight: usize,
    /// With a bare LF in the head: the CRLF-only reading of the headers.
    pub strict_headers: Option<Vec<Header>>,
    /// With a bare LF in the head: the reading that takes LF as a line end.
    pub lenient_headers: Option<Vec<Header>>,
    /// The head exactly as sent (bounded).
    pub raw_head: Vec<u8>,
    /// `Content-Type`, if any.
    pub content_type: Option<Cow<'static, str>>,
    /// `Transfer-Encoding`, if any.
    pub transfer_encoding: Option<String>,
    /// `Content-Encoding`, if any (or the one recognised from magic bytes).
    pub content_encoding: Option<String>,
    /// `Content-Length`, if one valid value was sent.
    pub content_length: Option<u64>,
    /// Body bytes on the wire (chunk framing included).
    pub body_wire_len: u64,
    /// Body bytes after removing chunking and content coding.
    pub body_decoded_len: u64,
    /// The decoded body, at most [`MAX_BODY_KEPT`] bytes.
    pub body: Vec<u8>,
    /// The decoded body was longer than what is kept.
    pub body_truncated: bool,
    /// Where the first body byte arrived, if any did.
    pub body_first: Option<At>,
    /// First byte of the message.
    pub first: At,
    /// Last byte of the head.
    pub head_end: At,
    /// Last byte of the message.
    pub last: At,
    /// For a response: time from the end of its request to its first byte, ns.
    pub ttfb_ns: Option<i64>,
    /// For a response: the index of the request it answers.
    pub answers: Option<u64>,
    /// For a response: the request it answers, when it was read and kept
    /// (see [`REQUESTS_KEPT`]); for an answer the parser could not pair, an
    /// unreadable request of the same index.
    pub request: Option<Arc<HttpMessage>>,
    /// `Upgrade` protocol, for a request or a 101 response.
    pub upgrade: Option<String>,
    /// For a 101 to WebSocket: whether Sec-WebSocket-Accept matches the key.
    pub websocket_accept_valid: Option<bool>,
    /// What went wrong or is ambiguous.
    pub anomalies: Vec<Anomaly>,
    /// The message ended as its framing says (not cut by the connection's end).
    pub complete: bool,
}

impl HttpMessage {
    /// Roughly the bytes it holds, for budgets.
    pub fn weight(&self) -> usize {
        std::mem::size_of::<HttpMessage>()
            + self.raw_head.len()
            + self.body.len()
            + self.start_line_len()
            + self.headers_weight
            + self.strict_headers.as_deref().map_or(0, list_weight)
            + self.lenient_headers.as_deref().map_or(0, list_weight)
    }

    fn start_line_len(&self) -> usize {
        match &self.start {
            StartLine::Request { method, uri } => method.len() + uri.len(),
            StartLine::Response { reason, .. } => reason.len(),
        }
    }

    /// Whether its Content-Type says an event stream (see [`is_event_stream`]).
    pub fn is_event_stream(&self) -> bool {
        self.content_type.as_deref().is_some_and(is_event_stream)
    }

    /// The request method, for a request.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code, for a response.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// Headers in order (the reading used to frame the message). A head
    /// httparse accepted is read again here, on first need: most messages
    /// are never asked for theirs, and a dozen strings each cost more than
    /// the parse.
    pub fn headers(&self) -> &[Header] {
        self.headers.get_or_init(|| {
            if self.headers_from_head {
                read_parsed_headers(&self.raw_head, self.dir)
            } else {
                Vec::new()
            }
        })
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Whether anomaly `name` is present.
    pub fn has_anomaly(&self, name: &str) -> bool {
        self.anomalies.iter().any(|a| a.name == name)
    }

    /// The start line as text, e.g. `GET / HTTP/1.1` or `HTTP/1.1 200 OK`.
    pub fn start_line(&self) -> String {
        match &self.start {
            StartLine::Request { method, uri } => format!("{method} {uri} {}", self.version),
            StartLine::Response { status, reason } => format!("{} {status} {reason}", self.version),
        }
    }
}

/// Decoded body bytes kept per message.
pub const MAX_BODY_KEPT: usize = 1 << 20;
/// Bytes of requests kept, across all connections, while they wait for
/// their responses (so that a response can say what it answers and a
/// request left unanswered can be reported at the end). Past it a request
/// is still paired, but not kept.
pub const REQUESTS_KEPT: usize = 32 << 20;
/// Requests waiting for a response on one connection; past it the oldest
/// is given up (a stream of requests no server answers).
const MAX_PENDING: usize = 1024;
/// A head longer than this never ends.
pub const MAX_HEAD: usize = 64 << 10;
/// Headers parsed per head at most.
const MAX_HEADERS: usize = 128;

/// How a body ends.
#[derive(Clone, Debug)]
enum Framing {
    None,
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

/// The chunked coding, byte by byte.
#[derive(Clone, Debug)]
enum Chunked {
    Size {
        digits: u64,
        value: u64,
        in_ext: bool,
    },
    SizeLf,
    Data(u64),
    DataCr,
    DataLf,
    Trailer {
        line_len: u64,
    },
    TrailerLf {
        empty: bool,
    },
    Done,
    Broken,
}

/// What a chunked step made of one byte.
enum ChunkByte {
    /// Framing.
    Frame,
    /// Payload.
    Data,
    /// The message ends after this byte.
    End,
    /// The framing is broken.
    Broken(String),
}

impl Chunked {
    fn start() -> Chunked {
        Chunked::Size {
            digits: 0,
            value: 0,
            in_ext: false,
        }
    }

    /// Advances by one byte (payload bytes are handled in runs by the caller).
    fn step(&mut self, b: u8) -> ChunkByte {
        use Chunked::*;
        match self {
            Size {
                digits,
                value,
                in_ext,
            } => match b {
                b'\r' => {
                    *self = SizeLf;
                    ChunkByte::Frame
                }
                b'\n' => self.size_done(),
                _ if *in_ext => ChunkByte::Frame,
                b';' | b' ' | b'\t' => {
                    *in_ext = true;
                    ChunkByte::Frame
                }
                _ => match (b as char).to_digit(16) {
                    Some(d) => {
                        *digits += 1;
                        if *digits > 16 {
                            *self = Broken;
                            return ChunkByte::Broken("a chunk size longer than 64 bits".into());
                        }
                        *value = (*value << 4) | u64::from(d);
                        ChunkByte::Frame
                    }
                    None => {
                        *self = Broken;
                        ChunkByte::Broken(format!("byte {b:#04x} in a chunk size"))
                    }
                },
            },
            SizeLf => {
                if b == b'\n' {
                    self.size_done()
                } else {
                    *self = Broken;
                    ChunkByte::Broken("a chunk size line not ended by CRLF".into())
                }
            }
            Data(_) => ChunkByte::Data,
            DataCr => {
                *self = if b == b'\r' {
                    DataLf
                } else if b == b'\n' {
                    Chunked::start()
                } else {
                    Broken
                };
                match self {
                    Broken => ChunkByte::Broken("chunk data not followed by CRLF".into()),
                    _ => ChunkByte::Frame,
                }
            }
            DataLf => {
                if b == b'\n' {
                    *self = Chunked::start();
                    ChunkByte::Frame
                } else {
                    *self = Broken;
                    ChunkByte::Broken("chunk data not followed by CRLF".into())
                }
            }
            Trailer { line_len } => match b {
                b'\r' => {
                    *self = TrailerLf {
                        empty: *line_len == 0,
                    };
                    ChunkByte::Frame
                }
                b'\n' => {
                    if *line_len == 0 {
                        *self = Done;
                        ChunkByte::End
                    } else {
                        *line_len = 0;
                        ChunkByte::Frame
                    }
                }
                _ => {
                    *line_len += 1;
                    if *line_len > MAX_HEAD as u64 {
                        *self = Broken;
                        return ChunkByte::Broken("a trailer line that never ends".into());
                    }
                    ChunkByte::Frame
                }
            },
            TrailerLf { empty } => {
                if b == b'\n' {
                    if *empty {
                        *self = Done;
                        ChunkByte::End
                    } else {
                        *self = Trailer { line_len: 0 };
                        ChunkByte::Frame
                    }
                } else {
                    *self = Broken;
                    ChunkByte::Broken("a trailer line not ended by CRLF".into())
                }
            }
            Done | Broken => ChunkByte::Frame,
        }
    }

    fn size_done(&mut self) -> ChunkByte {
        let (digits, value) = match self {
            Chunked::Size { digits, value, .. } => (*digits, *value),
            Chunked::SizeLf => (1, 0),
            _ => (0, 0),
        };
        // SizeLf lost the value; it is kept in `pending_size` by the caller.
        let _ = digits;
        if value == 0 {
            *self = Chunked::Trailer { line_len: 0 };
        } else {
            *self = Chunked::Data(value);
        }
        ChunkByte::Frame
    }
}

/// A message being read.
struct Reading {
    /// Boxed: the message is large, and the reading state moves with it.
    msg: Box<HttpMessage>,
    framing: Framing,
    /// Boxed, as the event-stream parser: few messages need them, and the
    /// reading state moves with every message.
    decoder: Option<Box<ContentDecoder>>,
    sse: Option<Box<SseParser>>,
    /// The chunk size read before its CRLF.
    pending_size: Option<u64>,
    /// Body bytes seen, to sniff the coding.
    sniffed: bool,
    decode_limits: DecodeLimits,
}

/// One direction's parser.
struct Half {
    dir: Direction,
    head: Vec<u8>,
    reading: Option<Reading>,
    /// Stop parsing: garbage, an upgrade, or a broken frame.
    raw: bool,
    count: u64,
    /// Stream offset of the first byte in `head`.
    head_offset: u64,
    head_first: Option<At>,
    /// Bytes went missing between messages or inside one: what follows is
    /// read as HTTP again only from a chunk that starts like a message.
    resync: bool,
    /// A head with a bare LF, waiting for the bytes that tell where a
    /// CRLF-only reader ends it.
    deferred: Option<Deferred>,
}

/// A head with a bare LF whose CRLF-only end is not known yet: it is read
/// once the bytes that follow hold a CRLF CRLF (or [`MAX_HEAD`] of them),
/// or the other side speaks, or the direction ends or loses bytes, so that
/// both readings come out the same however the segments were cut.
struct Deferred {
    head: Vec<u8>,
    /// Where the head ended.
    at: At,
    /// The bytes that followed, as they came: (offset, bytes, where).
    pieces: Vec<(u64, Vec<u8>, At)>,
    /// The same bytes in one buffer.
    after: Vec<u8>,
}

/// The decoder of a body: one that may skip inflating a stream it has seen
/// before when the decoded bytes are neither kept nor read as events.
fn body_decoder(
    encoding: Encoding,
    limits: DecodeLimits,
    event_stream: bool,
) -> Box<ContentDecoder> {
    Box::new(if limits.body_kept == 0 && !event_stream {
        ContentDecoder::remembering(encoding, limits)
    } else {
        ContentDecoder::new(encoding, limits)
    })
}

/// Where `head` has an LF without its CR: the first such LF after the
/// first byte, else an LF that starts the head.
fn bare_lf_at(head: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', head)
        .find(|&i| i > 0 && head[i - 1] != b'\r')
        .or_else(|| (head.first() == Some(&b'\n')).then_some(0))
}

/// Notes on `msg` why decoding its body stopped, if it did.
fn decoding_outcome(msg: &mut HttpMessage, result: Result<(), DecodeStop>) {
    match result {
        Ok(()) => {}
        Err(DecodeStop::Invalid(why)) => msg.anomalies.push(Anomaly {
            name: "decoding_failed",
            offset: Some(msg.body_wire_len),
            detail: why,
        }),
        Err(DecodeStop::Limit(why)) => msg.anomalies.push(Anomaly {
            name: "decoding_limit",
            offset: Some(msg.body_wire_len),
            detail: why,
        }),
    }
}

/// The version of a head httparse read (it reads 1.0 and 1.1 only).
fn http_version(minor: Option<u8>) -> Cow<'static, str> {
    match minor.unwrap_or(1) {
        0 => Cow::Borrowed("HTTP/1.0"),
        1 => Cow::Borrowed("HTTP/1.1"),
        n => Cow::Owned(format!("HTTP/1.{n}")),
    }
}

/// Whether `head` has a line that ends with LF alone.
fn has_bare_lf(head: &[u8]) -> bool {
    bare_lf_at(head).is_some()
}

/// Whether `head` ends a line with CRLF.
fn uses_crlf(head: &[u8]) -> bool {
    memchr::memmem::find(head, b"\r\n").is_some()
}

/// Whether `bytes` hold an empty line in CRLF-only reading.
fn has_crlf_crlf(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"\r\n\r\n").is_some()
}

/// Whether the CRLF-only end of `head` needs more bytes than `after`: the
/// head mixes CRLF and bare LF line ends, and no CRLF CRLF ends it in what
/// is known. (A head with LF line ends only has no CRLF-only reading to
/// wait for.)
fn strict_end_unknown(head: &[u8], bare_lf: bool, after: &[u8]) -> bool {
    if after.len() >= MAX_HEAD || !bare_lf || !uses_crlf(head) || has_crlf_crlf(head) {
        return false;
    }
    let mut joined = head[head.len().saturating_sub(3)..].to_vec();
    joined.extend_from_slice(after);
    !has_crlf_crlf(&joined)
}

/// A request waiting for its response.
#[derive(Clone, Debug)]
struct Pending {
    index: u64,
    /// A HEAD request: its response has no body, whatever it says.
    is_head: bool,
    end: At,
    websocket_key: Option<String>,
    /// The request, once read, if kept (with its weight in the budget).
    message: Option<(Arc<HttpMessage>, usize)>,
    /// An unreadable response came: it is taken to answer this request,
    /// which is not reported as unanswered (the pairing is unchanged).
    answered_unreadably: bool,
}

/// HTTP on one connection.
pub struct HttpConn {
    conn: u64,
    halves: [Half; 2],
    pending: VecDeque<Pending>,
    limits: DecodeLimits,
    /// Bytes of requests kept by all connections (see [`REQUESTS_KEPT`]).
    kept: Arc<AtomicUsize>,
    /// The latest request that could not be read as HTTP (it is never
    /// paired; an unpaired answer of the same index may be its answer).
    last_unreadable: Option<Arc<HttpMessage>>,
    /// Set once a 101 switched the connection to WebSocket:
    /// (extensions header of the response).
    pub switched_to_websocket: Option<Option<String>>,
    /// Bytes that followed the 101 (or were sent after the upgrade request)
    /// in the same chunk: the new protocol's first bytes.
    after_upgrade: Vec<(Direction, Vec<u8>)>,
}

impl Drop for HttpConn {
    /// Gives the kept requests' bytes back to the shared budget.
    fn drop(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            self.release(p);
        }
    }
}

/// Whether a chunk that starts a connection's data begins an HTTP message:
/// a whole method and a space, or `HTTP/1.`.
pub fn starts_http(bytes: &[u8], dir: Direction) -> bool {
    match dir {
        Direction::ServerToClient => bytes.starts_with(b"HTTP/1."),
        Direction::ClientToServer => METHODS.iter().any(|m| bytes.starts_with(m)),
    }
}

/// Bytes [`starts_http`] needs at most to tell.
pub const START_MAX: usize = 8;

/// Whether `bytes` could be the first bytes of what [`starts_http`] takes,
/// cut short: more bytes will tell.
pub fn may_start_http(bytes: &[u8], dir: Direction) -> bool {
    match dir {
        Direction::ServerToClient => b"HTTP/1.".starts_with(bytes),
        Direction::ClientToServer => METHODS.iter().any(|m| m.starts_with(bytes)),
    }
}

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// Whether `bytes` start like an HTTP message of direction `dir` (or are
/// the first bytes of such a start, cut short).
pub fn looks_like_http(bytes: &[u8], dir: Direction) -> bool {
    match dir {
        Direction::ServerToClient => bytes.starts_with(b"HTTP/") || b"HTTP/".starts_with(bytes),
        Direction::ClientToServer => METHODS
            .iter()
            .any(|m| bytes.starts_with(m) || m.starts_with(bytes)),
    }
}

/// What httparse reads of a head it accepts.
struct ParsedHead<'h, 'b> {
    start: StartLine,
    version: Cow<'static, str>,
    headers: &'h [httparse::Header<'b>],
}

/// Methods, reason phrases and media types most messages use: held as
/// constants, so that a message costs no allocation for them.
const COMMON_METHODS: &[&str] = &[
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];
const REASONS: &[&str] = &[
    "OK",
    "Not Found",
    "Not Modified",
    "Moved Permanently",
    "Found",
    "No Content",
    "Partial Content",
    "Switching Protocols",
    "Continue",
    "Created",
    "Accepted",
    "See Other",
    "Temporary Redirect",
    "Permanent Redirect",
    "Bad Request",
    "Unauthorized",
    "Forbidden",
    "Method Not Allowed",
    "Too Many Requests",
    "Internal Server Error",
    "Bad Gateway",
    "Service Unavailable",
    "Gateway Timeout",
];
const MEDIA_TYPES: &[&str] = &[
    "text/html",
    "text/html; charset=utf-8",
    "text/html; charset=UTF-8",
    "text/plain",
    "text/plain; charset=utf-8",
    "text/css",
    "text/javascript",
    "text/event-stream",
    "application/json",
    "application/json; charset=utf-8",
    "application/javascript",
    "application/octet-stream",
    "image/png",
    "image/jpeg",
];

/// `value` as one of the constants in `table` when it is one (exactly:
/// its bytes are kept as they came), else as its own copy.
fn common(value: &str, table: &[&'static str]) -> Cow<'static, str> {
    match table.iter().find(|c| **c == value) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(value.to_string()),
    }
}

/// httparse's reading of `head`, or `None` if it refuses it. `slots` is
/// left uninitialised by callers: httparse writes only the headers it
/// reads, where an initialised array costs 4 KiB of stores per head.
fn parse_head<'h, 'b>(
    head: &'b [u8],
    dir: Direction,
    slots: &'h mut [std::mem::MaybeUninit<httparse::Header<'b>>],
) -> Option<ParsedHead<'h, 'b>> {
    match dir {
        Direction::ClientToServer => {
            let mut req = httparse::Request::new(&mut []);
            match req.parse_with_uninit_headers(head, slots) {
                Ok(httparse::Status::Complete(_)) => Some(ParsedHead {
                    start: StartLine::Request {
                        method: common(req.method.unwrap_or(""), COMMON_METHODS),
                        uri: req.path.unwrap_or("").to_string(),
                    },
                    version: http_version(req.version),
                    headers: &*std::mem::take(&mut req.headers),
                }),
                _ => None,
            }
        }
        Direction::ServerToClient => {
            let mut resp = httparse::Response::new(&mut []);
            match response_config().parse_response_with_uninit_headers(&mut resp, head, slots) {
                Ok(httparse::Status::Complete(_)) => Some(ParsedHead {
                    start: StartLine::Response {
                        status: resp.code.unwrap_or(0),
                        reason: common(resp.reason.unwrap_or(""), REASONS),
                    },
                    version: http_version(resp.version),
                    headers: &*std::mem::take(&mut resp.headers),
                }),
                _ => None,
            }
        }
    }
}

/// httparse's reading of a head's headers, as `start_message` read it.
fn read_parsed_headers(head: &[u8], dir: Direction) -> Vec<Header> {
    let mut slots = [std::mem::MaybeUninit::uninit(); MAX_HEADERS];
    parse_head(head, dir, &mut slots).map_or_else(Vec::new, |read| header_list(read.headers))
}

/// How responses are parsed. RFC 9112 5.1: whitespace between a field name
/// and its colon gets a request rejected, but a response's field is read
/// (a proxy removes the whitespace): clients read it.
fn response_config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config.allow_spaces_after_header_name_in_responses(true);
    config
}

/// The bytes a header list holds, for budgets.
fn list_weight(headers: &[Header]) -> usize {
    headers
        .iter()
        .map(|h| h.name.len() + h.value.len() + 48)
        .sum()
}

fn header_list(headers: &[httparse::Header<'_>]) -> Vec<Header> {
    headers
        .iter()
        .map(|h| Header::new(h.name.as_bytes(), h.value))
        .collect()
}

/// Splits a head into lines taking LF as the line end (a CR before it is
/// dropped), the way lenient parsers do. Stops at the first line that is not
/// a header; returns the headers, whether that happened, and where.
fn lenient_lines(head: &[u8]) -> (Vec<Header>, Option<usize>) {
    let mut headers: Vec<Header> = Vec::new();
    let mut at = match head.iter().position(|b| *b == b'\n') {
        Some(i) => i + 1,
        None => return (headers, None),
    };
    while at < head.len() {
        let end = head[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(head.len(), |i| at + i);
        let mut line = &head[at..end];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.is_empty() {
            return (headers, None);
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(last) = headers.last_mut() {
                last.fold(line);
            }
        } else {
            match line.iter().position(|b| *b == b':') {
                Some(colon) if !line[..colon].iter().any(|b| b.is_ascii_whitespace()) => {
                    headers.push(Header::new(&line[..colon], &line[colon + 1..]));
                }
                _ => return (headers, Some(at)),
            }
        }
        at = end + 1;
    }
    (headers, None)
}

/// The CRLF-only reading: lines end only at CRLF; a lone LF stays inside a value.
fn strict_lines(head: &[u8]) -> Vec<Header> {
    let mut headers = Vec::new();
    let mut parts = head.split(|b| *b == b'\n').peekable();
    // Re-join pieces whose LF had no CR before it.
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut current = Vec::new();
    while let Some(piece) = parts.next() {
        current.extend_from_slice(piece);
        if current.last() == Some(&b'\r') || parts.peek().is_none() {
            if current.last() == Some(&b'\r') {
                current.pop();
            }
            lines.push(std::mem::take(&mut current));
        } else {
            current.push(b'\n');
        }
    }
    for line in lines.into_iter().skip(1) {
        if line.is_empty() {
            break;
        }
        if let Some(colon) = line.iter().position(|b| *b == b':') {
            headers.push(Header::new(&line[..colon], &line[colon + 1..]));
        }
    }
    headers
}

/// Reads a start line the lenient way: `METHOD TARGET HTTP/x` or
/// `HTTP/x STATUS REASON`; gives it and the version.
fn read_start_line(line: &str, dir: Direction) -> Option<(StartLine, String)> {
    let mut words = line.splitn(3, ' ');
    let (a, b, c) = (
        words.next().unwrap_or(""),
        words.next().unwrap_or(""),
        words.next().unwrap_or(""),
    );
    match dir {
        Direction::ClientToServer if !a.is_empty() && !b.is_empty() && c.starts_with("HTTP/") => {
            Some((
                StartLine::Request {
                    method: common(a, COMMON_METHODS),
                    uri: b.to_string(),
                },
                c.to_string(),
            ))
        }
        Direction::ServerToClient if a.starts_with("HTTP/") => b.parse().ok().map(|status| {
            (
                StartLine::Response {
                    status,
                    reason: common(c, REASONS),
                },
                a.to_string(),
            )
        }),
        _ => None,
    }
}

/// The first header line of a head with whitespace between its name and
/// the colon: that name.
fn space_before_colon(head: &[u8]) -> Option<String> {
    head.split(|b| *b == b'\n').skip(1).find_map(|line| {
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return None; // a folded continuation
        }
        let colon = line.iter().position(|b| *b == b':')?;
        let name = &line[..colon];
        let trimmed = name.trim_ascii_end();
        (trimmed.len() < name.len() && !trimmed.is_empty())
            .then(|| String::from_utf8_lossy(trimmed).into_owned())
    })
}

/// The first header name httparse read with whitespace between it and its
/// colon: `space_before_colon` for a head httparse accepted, from where
/// each name ends instead of from every byte.
fn spaced_before_colon(head: &[u8], headers: &[httparse::Header<'_>]) -> Option<String> {
    let start = head.as_ptr() as usize;
    headers.iter().find_map(|h| {
        let end = (h.name.as_ptr() as usize).checked_sub(start)? + h.name.len();
        (head.get(end).is_some_and(|b| *b != b':') && !h.name.is_empty())
            .then(|| h.name.to_string())
    })
}

/// Whether a Content-Type value names an event stream: `text/event-stream`
/// in any case, parameters allowed.
pub fn is_event_stream(content_type: &str) -> bool {
    content_type
        .as_bytes()
        .get(..17)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"text/event-stream"))
}

/// The first value of each header that framing and the dissectors read,
/// found in one pass over a head's headers (most heads have none of the
/// rarer ones).
#[derive(Default)]
struct KnownHeaders<'h> {
    content_length: Option<Cow<'h, str>>,
    /// How many Content-Length headers there are.
    content_lengths: usize,
    /// A Transfer-Encoding header lists `chunked`.
    chunked: bool,
    transfer_encoding: Option<Cow<'h, str>>,
    content_encoding: Option<Cow<'h, str>>,
    content_type: Option<Cow<'h, str>>,
    upgrade: Option<Cow<'h, str>>,
    websocket_key: Option<Cow<'h, str>>,
    websocket_accept: Option<Cow<'h, str>>,
    websocket_extensions: Option<Cow<'h, str>>,
}

impl<'h> KnownHeaders<'h> {
    /// Notes header `name`, reading its value only if it is one of ours.
    fn note(&mut self, name: &str, value: impl FnOnce() -> Cow<'h, str>) {
        fn first<'h>(slot: &mut Option<Cow<'h, str>>, value: impl FnOnce() -> Cow<'h, str>) {
            if slot.is_none() {
                *slot = Some(value());
            }
        }
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        // By length first: most names are none of these.
        match name.len() {
            7 if is("upgrade") => first(&mut self.upgrade, value),
            12 if is("content-type") => first(&mut self.content_type, value),
            14 if is("content-length") => {
                self.content_lengths += 1;
                first(&mut self.content_length, value);
            }
            16 if is("content-encoding") => first(&mut self.content_encoding, value),
            17 if is("transfer-encoding") => {
                let value = value();
                self.chunked |= value
                    .split(',')
                    .any(|c| c.trim().eq_ignore_ascii_case("chunked"));
                if self.transfer_encoding.is_none() {
                    self.transfer_encoding = Some(value);
                }
            }
            17 if is("sec-websocket-key") => first(&mut self.websocket_key, value),
            20 if is("sec-websocket-accept") => first(&mut self.websocket_accept, value),
            24 if is("sec-websocket-extensions") => first(&mut self.websocket_extensions, value),
            _ => {}
        }
    }
}

/// Where the head ends: just past the first empty line, taking LF or CRLF
/// as line ends (a lenient reader's end; the CRLF-only end can lie later).
/// `buf[..known]` is known to hold no end: the search starts there, so a
/// head that comes a byte at a time is not scanned again and again.
fn head_end(buf: &[u8], known: usize) -> Option<usize> {
    // An empty line is an LF followed by LF or CR LF (the first LF ends the
    // start line, so any such pair comes after it).
    let from = known.saturating_sub(2);
    memchr::memchr_iter(b'\n', buf.get(from..)?).find_map(|i| {
        let i = from + i;
        match (buf.get(i + 1), buf.get(i + 2)) {
            (Some(b'\n'), _) => Some(i + 2),
            (Some(b'\r'), Some(b'\n')) => Some(i + 3),
            _ => None,
        }
    })
}

/// `head_end(buf, 0)`, with `bare_lf_at` of the head it ends, in one pass
/// over the LFs (most heads arrive whole). No bare LF is looked for when no
/// head ends in `buf`.
fn scan_head(buf: &[u8]) -> (Option<usize>, Option<usize>) {
    let mut bare = None;
    for i in memchr::memchr_iter(b'\n', buf) {
        if bare.is_none() && i > 0 && buf[i - 1] != b'\r' {
            bare = Some(i);
        }
        let end = match (buf.get(i + 1), buf.get(i + 2)) {
            (Some(b'\n'), _) => {
                // The empty line's own LF follows an LF: bare.
                bare = bare.or(Some(i + 1));
                i + 2
            }
            (Some(b'\r'), Some(b'\n')) => i + 3,
            _ => continue,
        };
        let bare = bare.or_else(|| (buf.first() == Some(&b'\n')).then_some(0));
        return (Some(end), bare);
    }
    (None, None)
}

impl HttpConn {
    /// HTTP state for connection `conn`.
    pub fn new(conn: u64, limits: DecodeLimits) -> Self {
        Self::sharing(conn, limits, Arc::default())
    }

    /// HTTP state for connection `conn`, keeping requests within the
    /// budget `kept` that all connections of a capture share.
    pub fn sharing(conn: u64, limits: DecodeLimits, kept: Arc<AtomicUsize>) -> Self {
        let half = |dir| Half {
            dir,
            head: Vec::new(),
            reading: None,
            raw: false,
            count: 0,
            head_offset: 0,
            head_first: None,
            resync: false,
            deferred: None,
        };
        HttpConn {
            conn,
            halves: [
                half(Direction::ClientToServer),
                half(Direction::ServerToClient),
            ],
            pending: VecDeque::new(),
            limits,
            kept,
            last_unreadable: None,
            switched_to_websocket: None,
            after_upgrade: Vec::new(),
        }
    }

    /// Takes the bytes that followed the switch to WebSocket.
    pub fn take_after_upgrade(&mut self) -> Vec<(Direction, Vec<u8>)> {
        std::mem::take(&mut self.after_upgrade)
    }

    /// Bytes of one direction, in order, at stream `offset`.
    pub fn data(
        &mut self,
        dir: Direction,
        offset: u64,
        mut bytes: &[u8],
        at: At,
        out: &mut Vec<AppEvent>,
    ) {
        let d = dir.index();
        // The other side spoke: a head of its that waits for more bytes is
        // read with what it has.
        self.resolve(1 - d, out);
        if let Some(deferred) = self.halves[d].deferred.as_mut() {
            deferred.pieces.push((offset, bytes.to_vec(), at));
            deferred.after.extend_from_slice(bytes);
            let bare_lf = has_bare_lf(&deferred.head);
            if !strict_end_unknown(&deferred.head, bare_lf, &deferred.after) {
                self.resolve(d, out);
            }
            return;
        }
        let mut offset = offset;
        while !bytes.is_empty() && !self.halves[d].raw {
            if self.halves[d].reading.is_some() {
                let used = self.body(d, bytes, at, out);
                bytes = &bytes[used..];
                offset += used as u64;
                continue;
            }
            // Reading a head.
            let half = &mut self.halves[d];
            if half.head.is_empty() {
                half.head_offset = offset;
                half.head_first = Some(at);
                if !looks_like_http(bytes, dir) && (half.count == 0 || half.resync) {
                    // Not the start of a message (a capture that began
                    // mid-body, or the rest of a message cut by a gap):
                    // wait for a chunk that starts one.
                    half.head_first = None;
                    return;
                }
                half.resync = false;
            }
            let room = MAX_HEAD + 1 - half.head.len().min(MAX_HEAD + 1);
            let take = bytes.len().min(room);
            let before = half.head.len();
            // A bare LF, when the head was scanned for it with its end.
            let mut scanned_bare_lf = None;
            let end = if before == 0 {
                // Most heads start and end in one chunk: found in place,
                // only the head is copied, not the body behind it.
                let (end, bare_lf) = scan_head(&bytes[..take]);
                scanned_bare_lf = end.map(|_| bare_lf);
                half.head.extend_from_slice(&bytes[..end.unwrap_or(take)]);
                end
            } else {
                half.head.extend_from_slice(&bytes[..take]);
                head_end(&half.head, before)
            };
            match end {
                Some(end) => {
                    let used = end - before;
                    bytes = &bytes[used..];
                    offset += used as u64;
                    // The buffer goes with the message: a connection
                    // waiting between messages holds no head capacity.
                    let mut head = std::mem::take(&mut half.head);
                    head.truncate(end);
                    // What follows `end` in the buffer was put back via `bytes`.
                    // Found once: the head's reading needs it too.
                    let bare_lf = scanned_bare_lf.unwrap_or_else(|| bare_lf_at(&head));
                    if strict_end_unknown(&head, bare_lf.is_some(), bytes) {
                        let pieces = if bytes.is_empty() {
                            Vec::new()
                        } else {
                            vec![(offset, bytes.to_vec(), at)]
                        };
                        half.deferred = Some(Deferred {
                            head,
                            at,
                            pieces,
                            after: bytes.to_vec(),
                        });
                        return;
                    }
                    self.start_message(d, head, bare_lf, bytes, at, out);
                }
                None if half.head.len() > MAX_HEAD => {
                    half.raw = true;
                    let first = half.head_first.unwrap_or(at);
                    let msg = self.cut_head(
                        d,
                        first,
                        at,
                        "header_block_too_large",
                        format!("no end of headers in {MAX_HEAD} bytes"),
                    );
                    self.emit(msg, out);
                    return;
                }
                None => {
                    bytes = &bytes[take..];
                    offset += take as u64;
                }
            }
        }
        if self.switched_to_websocket.is_some() && !bytes.is_empty() {
            // All of them: they are the next protocol's first bytes.
            self.after_upgrade.push((dir, bytes.to_vec()));
        }
        let _ = offset;
    }

    /// Reads the head of direction `d` that waited for more bytes, with
    /// the bytes it has, then the bytes themselves.
    fn resolve(&mut self, d: usize, out: &mut Vec<AppEvent>) {
        let Some(deferred) = self.halves[d].deferred.take() else {
            return;
        };
        let dir = self.halves[d].dir;
        let bare_lf = bare_lf_at(&deferred.head);
        self.start_message(d, deferred.head, bare_lf, &deferred.after, deferred.at, out);
        for (offset, bytes, at) in deferred.pieces {
            self.data(dir, offset, &bytes, at, out);
        }
    }

    /// Sends a finished message on, keeping a request for its response.
    fn emit(&mut self, msg: impl Into<Arc<HttpMessage>>, out: &mut Vec<AppEvent>) {
        // A boxed message moves into its Arc in one copy.
        let msg: Arc<HttpMessage> = msg.into();
        let readable = !msg.version.is_empty();
        match msg.dir {
            Direction::ClientToServer if !readable => self.last_unreadable = Some(msg.clone()),
            Direction::ClientToServer => {
                if let Some(p) = self.pending.iter_mut().find(|p| p.index == msg.index) {
                    let weight = msg.weight();
                    let budget = &self.kept;
                    if p.message.is_none()
                        && budget.fetch_add(weight, Ordering::Relaxed) + weight <= REQUESTS_KEPT
                    {
                        p.message = Some((msg.clone(), weight));
                    } else if p.message.is_none() {
                        budget.fetch_sub(weight, Ordering::Relaxed);
                    }
                }
            }
            Direction::ServerToClient if !readable => {
                // "An answer HTTP cannot read still answers the oldest request."
                if let Some(p) = self.pending.iter_mut().find(|p| !p.answered_unreadably) {
                    p.answered_unreadably = true;
                }
            }
            Direction::ServerToClient => {}
        }
        out.push(AppEvent::Http(msg));
    }

    /// Takes the request the next response answers off the queue.
    fn answered(&mut self) {
        if let Some(p) = self.pending.pop_front() {
            self.release(p);
        }
    }

    fn release(&self, p: Pending) {
        if let Some((_, weight)) = p.message {
            self.kept.fetch_sub(weight, Ordering::Relaxed);
        }
    }

    fn push_pending(&mut self, p: Pending) {
        if self.pending.len() >= MAX_PENDING {
            self.answered();
        }
        self.pending.push_back(p);
    }

    /// What a response with `answers` (or, unpaired, at `index`) answers.
    fn request_for(&self, answers: Option<u64>, index: u64) -> Option<Arc<HttpMessage>> {
        match answers {
            Some(i) => self
                .pending
                .iter()
                .find(|p| p.index == i)
                .and_then(|p| p.message.as_ref().map(|(m, _)| m.clone())),
            None => self
                .last_unreadable
                .as_ref()
                .filter(|m| m.index == index)
                .cloned(),
        }
    }

    /// The requests no response answered, once the connection ended:
    /// those read and kept, as [`AppEvent::HttpUnanswered`].
    pub fn unanswered(&mut self, out: &mut Vec<AppEvent>) {
        while let Some(p) = self.pending.pop_front() {
            if let (false, Some((m, _))) = (p.answered_unreadably, p.message.as_ref()) {
                out.push(AppEvent::HttpUnanswered(m.clone()));
            }
            self.release(p);
        }
        self.last_unreadable = None;
    }

    fn broken(
        &mut self,
        d: usize,
        first: At,
        last: At,
        name: &'static str,
        detail: String,
    ) -> HttpMessage {
        let half = &mut self.halves[d];
        let index = half.count;
        half.count += 1;
        let head = std::mem::take(&mut half.head);
        HttpMessage {
            conn: ConnNumber::new(self.conn),
            dir: half.dir,
            index,
            start: match half.dir {
                Direction::ClientToServer => StartLine::Request {
                    method: Cow::Borrowed(""),
                    uri: String::new(),
                },
                Direction::ServerToClient => StartLine::Response {
                    status: 0,
                    reason: Cow::Borrowed(""),
                },
            },
            version: Cow::Borrowed(""),
            headers: OnceLock::from(Vec::new()),
            headers_from_head: false,
            headers_weight: 0,
            strict_headers: None,
            lenient_headers: None,
            raw_head: head.into_iter().take(4096).collect(),
            content_type: None,
            transfer_encoding: None,
            content_encoding: None,
            content_length: None,
            body_wire_len: 0,
            body_decoded_len: 0,
            body: Vec::new(),
            body_truncated: false,
            body_first: None,
            first,
            head_end: last,
            last,
            ttfb_ns: None,
            answers: None,
            request: None,
            upgrade: None,
            websocket_accept_valid: None,
            anomalies: vec![Anomaly {
                name,
                offset: None,
                detail,
            }],
            complete: false,
        }
    }

    /// A head that will never end (cut by a gap or by the connection's end,
    /// or too long): the message as far as it can be read, with its start
    /// line and whole header lines when the start line is there.
    fn cut_head(
        &mut self,
        d: usize,
        first: At,
        last: At,
        name: &'static str,
        detail: String,
    ) -> HttpMessage {
        let dir = self.halves[d].dir;
        let head = self.halves[d].head.clone();
        let mut msg = self.broken(d, first, last, name, detail);
        let Some(line_end) = head.iter().position(|b| *b == b'\n') else {
            return msg;
        };
        let line = String::from_utf8_lossy(&head[..line_end])
            .trim_end_matches('\r')
            .to_string();
        let Some((start, version)) = read_start_line(&line, dir) else {
            return msg;
        };
        let whole = head.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let headers = lenient_lines(&head[..whole]).0;
        let mut known = KnownHeaders::default();
        for h in &headers {
            known.note(&h.name, || Cow::Borrowed(h.value.as_str()));
        }
        msg.content_type = known.content_type.map(|t| common(&t, MEDIA_TYPES));
        msg.transfer_encoding = known.transfer_encoding.map(Cow::into_owned);
        msg.content_encoding = known.content_encoding.map(Cow::into_owned);
        msg.upgrade = known.upgrade.map(Cow::into_owned);
        msg.content_length = known.content_length.and_then(|v| v.parse().ok());
        msg.headers_weight = list_weight(&headers);
        msg.headers = OnceLock::from(headers);
        match &start {
            StartLine::Request { method, .. } => self.push_pending(Pending {
                index: msg.index,
                is_head: method.eq_ignore_ascii_case("HEAD"),
                end: last,
                websocket_key: None,
                message: None,
                answered_unreadably: false,
            }),
            StartLine::Response { status, .. } => {
                if let Some(p) = self.pending.front() {
                    msg.answers = Some(p.index);
                    msg.ttfb_ns = Some(first.time.since(p.end.time));
                }
                msg.request = self.request_for(msg.answers, msg.index);
                if *status >= 200 || *status == 101 {
                    self.answered();
                }
            }
        }
        msg.start = start;
        msg.version = version.into();
        msg
    }

    /// A complete head: parse it and decide how the body is framed.
    /// `bare_lf` is `bare_lf_at(&head)`.
    fn start_message(
        &mut self,
        d: usize,
        head: Vec<u8>,
        bare_lf: Option<usize>,
        after: &[u8],
        at: At,
        out: &mut Vec<AppEvent>,
    ) {
        let dir = self.halves[d].dir;
        let first = self.halves[d].head_first.unwrap_or(at);
        let mut anomalies = Vec::new();
        // Left uninitialised (see `parse_head`).
        let mut uninit = [std::mem::MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
        let mut start = None;
        let mut version: Cow<'static, str> = Cow::Borrowed("");
        let mut headers = Vec::new();
        // A response's header name followed by whitespace before its colon
        // (httparse reads it in responses).
        let mut spaced_name = None;
        // The headers httparse read, when it accepted the head.
        let mut parsed: &[httparse::Header<'_>] = &[];
        let parse_ok = match parse_head(&head, dir, &mut uninit) {
            Some(read) => {
                start = Some(read.start);
                version = read.version;
                parsed = read.headers;
                if dir == Direction::ServerToClient {
                    spaced_name = spaced_before_colon(&head, parsed);
                }
                true
            }
            None => false,
        };
        if !parse_ok {
            // httparse refuses the head: read the start line and the headers
            // the way a lenient server would, and say why.
            let line_end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
            let line = String::from_utf8_lossy(&head[..line_end])
                .trim_end_matches('\r')
                .to_string();
            if let Some((line, v)) = read_start_line(&line, dir) {
                start = Some(line);
                version = v.into();
            }
            let (lenient, stop) = lenient_lines(&head);
            headers = lenient;
            if let Some(stop) = stop {
                anomalies.push(Anomaly {
                    name: "invalid_header_byte",
                    offset: Some(stop as u64),
                    detail: format!(
                        "{:?} is not a header line",
                        String::from_utf8_lossy(
                            &head[stop..head[stop..]
                                .iter()
                                .position(|b| *b == b'\n')
                                .map_or(head.len(), |i| stop + i)]
                        )
                        .trim_end_matches('\r')
                    ),
                });
            }
        }
        let Some(start) = start else {
            // Not an HTTP message: the rest of this direction is left alone.
            self.halves[d].raw = true;
            let mut msg = self.broken(
                d,
                first,
                at,
                "unparsable",
                format!(
                    "{:?} is not an HTTP {}",
                    String::from_utf8_lossy(&head[..head.len().min(60)]),
                    if dir == Direction::ClientToServer {
                        "request"
                    } else {
                        "response"
                    }
                ),
            );
            msg.raw_head = head.into_iter().take(4096).collect();
            self.emit(msg, out);
            return;
        };

        let (mut strict_headers, mut lenient_headers) = (None, None);
        if let Some(pos) = bare_lf {
            anomalies.push(Anomaly {
                name: "bare_lf",
                offset: Some(pos as u64),
                detail: format!("a line ends with LF alone (no CR) at byte {pos} of the head"),
            });
            // The CRLF-only reading runs to the first CRLF CRLF, which may lie
            // past the lenient end: look at what followed (a head whose
            // reading waited for it, see `Deferred`). A head with no CRLF
            // at all has no line a CRLF-only reader can end: it reads none.
            let mut whole = head.clone();
            if uses_crlf(&head) {
                whole.extend_from_slice(&after[..after.len().min(MAX_HEAD)]);
            }
            let strict_end = whole
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 4);
            let strict = strict_lines(&whole[..strict_end.unwrap_or(whole.len())]);
            let (lenient, stop) = lenient_lines(&head);
            let lost: Vec<String> = strict
                .iter()
                .filter(|s| !lenient.iter().any(|l| l.name.eq_ignore_ascii_case(&s.name)))
                .map(|s| s.name.to_string())
                .collect();
            let ends_early = strict_end.is_some_and(|e| e > head.len());
            if stop.is_some() || ends_early {
                let how = if ends_early {
                    "the bare LF makes an empty line, so a reader that takes LF as a line end ends the headers there and reads what follows as body".to_string()
                } else {
                    let line_end = stop
                        .and_then(|s| head[s..].iter().position(|b| *b == b'\n').map(|i| s + i))
                        .unwrap_or(head.len());
                    format!(
                        "after the bare LF, {:?} is not a header line: a reader that takes LF as a line end stops reading headers there and takes the rest of the block as body",
                        String::from_utf8_lossy(&head[stop.unwrap_or(0)..line_end]).trim_end_matches('\r')
                    )
                };
                anomalies.push(Anomaly {
                    name: "header_block_ends_early",
                    offset: stop.map(|s| s as u64).or(Some(head.len() as u64)),
                    detail: if lost.is_empty() {
                        how
                    } else {
                        format!("{how}; it never sees {}", lost.join(", "))
                    },
                });
            }
            let length_of = |hs: &[Header]| {
                hs.iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| h.value.parse::<u64>().ok())
            };
            let (strict_len, lenient_len) = (length_of(&strict), length_of(&lenient));
            if let Some(declared) = strict_len {
                // Body bytes each reader expects after its end of the headers.
                let lenient_expects = match (lenient_len, dir) {
                    (Some(n), _) => Some(n),
                    (None, Direction::ClientToServer) => Some(0),
                    (None, Direction::ServerToClient) => None,
                };
                let early_bytes = strict_end.map_or(0, |e| e.saturating_sub(head.len()) as u64);
                let lenient_sees = declared + early_bytes;
                if lenient_expects != Some(lenient_sees) {
                    anomalies.push(Anomaly {
                        name: "content_length_mismatch",
                        offset: None,
                        detail: format!(
                            "Content-Length says {declared} bytes (a CRLF-only reader's headers); a reader that takes the bare LF as a line end {}, but {lenient_sees} bytes follow its end of the headers{}",
                            match lenient_expects {
                                Some(n) if lenient_len.is_some() => format!("expects {n}"),
                                Some(n) => format!("never sees Content-Length and expects {n}"),
                                None => "never sees Content-Length and reads until the close".to_string(),
                            },
                            if lenient_expects.is_some_and(|n| n < lenient_sees) { ": the rest is read as the next message" } else { "" }
                        ),
                    });
                }
            }
            strict_headers = Some(strict);
            lenient_headers = Some(lenient);
        }
        // What httparse accepts holds no control byte in a value, no folded
        // line and no other whitespace before a colon than what it reported:
        // the head is searched for them only when httparse refused it.
        for h in headers.iter().filter(|_| !parse_ok) {
            if h.raw()
                .iter()
                .any(|b| *b == 0 || (*b < 0x20 && *b != b'\t'))
            {
                anomalies.push(Anomaly {
                    name: "invalid_header_byte",
                    offset: None,
                    detail: format!("header {} holds a control byte", h.name),
                });
            }
        }
        if !parse_ok {
            spaced_name = space_before_colon(&head);
        }
        if dir == Direction::ServerToClient {
            if let Some(name) = spaced_name {
                anomalies.push(Anomaly {
                    name: "invalid_header_byte",
                    offset: None,
                    detail: format!(
                        "whitespace between header name {name:?} and its colon: a server must reject that in a request (RFC 9112); in a response clients read the field"
                    ),
                });
            }
        }
        let mut lines = head.split(|b| *b == b'\n').skip(1);
        if !parse_ok && lines.any(|l| l.first().is_some_and(|b| *b == b' ' || *b == b'\t')) {
            anomalies.push(Anomaly {
                name: "obs_fold",
                offset: None,
                detail:
                    "a header continues on a line starting with a space (obsolete line folding)"
                        .into(),
            });
        }

        // The values read here come from httparse's slices, not from
        // headers made for the message: those are made on first need.
        // Only the values asked for are read as text.
        let (parsed, read): (&[httparse::Header<'_>], &[Header]) = if parse_ok {
            (parsed, &[])
        } else {
            (&[], &headers)
        };
        let headers_weight: usize = parsed
            .iter()
            .map(|h| h.name.len() + header_value_len(h.value) + 48)
            .chain(read.iter().map(|h| h.name.len() + h.value.len() + 48))
            .sum();
        let mut known = KnownHeaders::default();
        for h in parsed {
            known.note(h.name, || header_value(h.value));
        }
        for h in read {
            known.note(&h.name, || Cow::Borrowed(h.value.as_str()));
        }
        let chunked = known.chunked;
        let mut content_length = None;
        if known.content_lengths > 1 {
            // Rare: every value, for the anomaly.
            let lengths: Vec<Cow<'_, str>> = parsed
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| header_value(h.value))
                .chain(
                    read.iter()
                        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .map(|h| Cow::Borrowed(h.value.as_str())),
                )
                .collect();
            let distinct: std::collections::BTreeSet<&str> = lengths.iter().map(|v| &**v).collect();
            anomalies.push(Anomaly {
                name: "duplicate_content_length",
                offset: None,
                detail: format!(
                    "{} Content-Length headers: {}",
                    lengths.len(),
                    lengths.join(", ")
                ),
            });
            if distinct.len() == 1 {
                content_length = lengths[0].parse::<u64>().ok();
            }
        } else if let Some(v) = known.content_length.as_ref() {
            match v.parse::<u64>() {
                Ok(n) => content_length = Some(n),
                Err(_) => anomalies.push(Anomaly {
                    name: "invalid_content_length",
                    offset: None,
                    detail: format!("Content-Length {v:?} is not a length"),
                }),
            }
        }
        if chunked && known.content_lengths > 0 {
            anomalies.push(Anomaly {
                name: "content_length_with_chunked",
                offset: None,
                detail: "both Transfer-Encoding: chunked and Content-Length: the chunked coding wins (RFC 9112), a request smuggling risk".into(),
            });
        }

        let index = self.halves[d].count;
        self.halves[d].count += 1;
        let mut answers = None;
        let mut ttfb_ns = None;
        let mut request_is_head = false;
        let mut websocket_key = None;
        if dir == Direction::ServerToClient {
            if let Some(p) = self.pending.front() {
                answers = Some(p.index);
                ttfb_ns = Some(first.time.since(p.end.time));
                request_is_head = p.is_head;
                websocket_key = p.websocket_key.clone();
            }
        }
        let status = match &start {
            StartLine::Response { status, .. } => Some(*status),
            _ => None,
        };
        // 1xx responses (100-continue, ...) do not answer the request; a 101
        // ends HTTP on this connection.
        let request = match dir {
            Direction::ServerToClient => self.request_for(answers, index),
            Direction::ClientToServer => None,
        };
        if status.is_some_and(|s| s >= 200 || s == 101) {
            self.answered();
        }
        let framing = match (dir, status) {
            (Direction::ServerToClient, Some(s))
                if request_is_head || (100..200).contains(&s) || s == 204 || s == 304 =>
            {
                Framing::None
            }
            _ if chunked => Framing::Chunked(Chunked::start()),
            _ if content_length == Some(0) => Framing::None,
            _ if content_length.is_some() => Framing::Length(content_length.unwrap_or(0)),
            (Direction::ClientToServer, _) => Framing::None,
            (Direction::ServerToClient, _) => Framing::UntilClose,
        };
        let content_encoding = known.content_encoding.map(Cow::into_owned);
        let content_type = known.content_type.map(|t| common(&t, MEDIA_TYPES));
        let upgrade = known.upgrade.map(Cow::into_owned);
        let transfer_encoding = known.transfer_encoding.map(Cow::into_owned);
        let request_key = (dir == Direction::ClientToServer)
            .then(|| known.websocket_key.map(Cow::into_owned))
            .flatten();
        let mut websocket_accept_valid = None;
        if status == Some(101)
            && upgrade
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        {
            let accept = known.websocket_accept;
            websocket_accept_valid = match (websocket_key.as_deref(), accept.as_deref()) {
                (Some(key), Some(accept)) => {
                    Some(tungstenite::handshake::derive_accept_key(key.as_bytes()) == accept)
                }
                _ => None,
            };
            self.switched_to_websocket = Some(known.websocket_extensions.map(Cow::into_owned));
        }
        let encoding = content_encoding.as_deref().map(Encoding::from_header);
        let is_sse = content_type.as_deref().is_some_and(is_event_stream);
        let mut msg = Box::new(HttpMessage {
            conn: ConnNumber::new(self.conn),
            dir,
            index,
            start,
            version,
            headers_from_head: parse_ok && head.len() <= MAX_HEAD,
            headers: if parse_ok {
                if head.len() <= MAX_HEAD {
                    OnceLock::new()
                } else {
                    OnceLock::from(read_parsed_headers(&head, dir))
                }
            } else {
                OnceLock::from(headers)
            },
            headers_weight,
            strict_headers,
            lenient_headers,
            // The head itself, not a copy: nothing reads it after this.
            raw_head: {
                let mut head = head;
                head.truncate(MAX_HEAD);
                head
            },
            content_type,
            transfer_encoding,
            content_encoding,
            content_length,
            body_wire_len: 0,
            body_decoded_len: 0,
            body: Vec::new(),
            body_truncated: false,
            body_first: None,
            first,
            head_end: at,
            last: at,
            ttfb_ns,
            answers,
            request,
            upgrade,
            websocket_accept_valid,
            anomalies,
            complete: false,
        });
        let decoder = match encoding {
            Some(e) if e.decodable() => Some(body_decoder(e, self.limits, is_sse)),
            Some(Encoding::Identity) | None => None,
            Some(e) => {
                msg.anomalies.push(Anomaly {
                    name: "undecoded_encoding",
                    offset: None,
                    detail: format!(
                        "Content-Encoding {} is recognised but not decoded",
                        e.name()
                    ),
                });
                None
            }
        };
        if dir == Direction::ClientToServer {
            let websocket_key = request_key;
            self.push_pending(Pending {
                index,
                is_head: msg.method().is_some_and(|m| m.eq_ignore_ascii_case("HEAD")),
                end: at,
                websocket_key,
                message: None,
                answered_unreadably: false,
            });
        }
        let upgraded = status == Some(101);
        let reading = Reading {
            msg,
            framing,
            decoder,
            sse: is_sse.then(|| {
                Box::new(SseParser::new(
                    self.conn,
                    index,
                    encoding.filter(|e| *e != Encoding::Identity),
                    at,
                ))
            }),
            pending_size: None,
            sniffed: false,
            decode_limits: self.limits,
        };
        if self.limits.announce_heads && !matches!(reading.framing, Framing::None) {
            // A body follows: say what is coming (a stream's events arrive
            // long before the message ends).
            out.push(AppEvent::HttpHead(Arc::new((*reading.msg).clone())));
        }
        self.halves[d].reading = Some(reading);
        if matches!(
            self.halves[d].reading.as_ref().map(|r| &r.framing),
            Some(Framing::None)
        ) {
            self.finish(d, at, true, out);
        }
        if upgraded {
            // What follows a 101 is another protocol.
            self.halves[d].raw = true;
            self.halves[0].raw = true;
        }
    }

    /// Feeds body bytes to the message being read; returns how many it took.
    fn body(&mut self, d: usize, bytes: &[u8], at: At, out: &mut Vec<AppEvent>) -> usize {
        let Some(r) = self.halves[d].reading.as_mut() else {
            return 0;
        };
        let mut used = 0;
        let mut ended = false;
        match &mut r.framing {
            Framing::None => {
                ended = true;
            }
            Framing::Length(remaining) => {
                let take = (*remaining).min(bytes.len() as u64) as usize;
                *remaining -= take as u64;
                used = take;
                ended = *remaining == 0;
                Self::payload(r, &bytes[..take], at, out);
            }
            Framing::UntilClose => {
                used = bytes.len();
                Self::payload(r, bytes, at, out);
            }
            Framing::Chunked(_) => {
                while used < bytes.len() {
                    let Framing::Chunked(state) = &mut r.framing else {
                        break;
                    };
                    if let Chunked::Data(left) = state {
                        let take = (*left).min((bytes.len() - used) as u64) as usize;
                        *left -= take as u64;
                        if *left == 0 {
                            *state = Chunked::DataCr;
                        }
                        let piece = &bytes[used..used + take];
                        used += take;
                        r.msg.body_wire_len += take as u64;
                        Self::payload(r, piece, at, out);
                        continue;
                    }
                    let b = bytes[used];
                    used += 1;
                    r.msg.body_wire_len += 1;
                    // Keep the size when a CR comes before its LF.
                    if let Chunked::Size { value, .. } = state {
                        if b == b'\r' {
                            r.pending_size = Some(*value);
                        }
                    }
                    let was_size_lf = matches!(state, Chunked::SizeLf);
                    let step = state.step(b);
                    if was_size_lf && b == b'\n' {
                        let size = r.pending_size.take().unwrap_or(0);
                        *state = if size == 0 {
                            Chunked::Trailer { line_len: 0 }
                        } else {
                            Chunked::Data(size)
                        };
                    }
                    match step {
                        ChunkByte::End => {
                            ended = true;
                            break;
                        }
                        ChunkByte::Broken(why) => {
                            r.msg.anomalies.push(Anomaly {
                                name: "invalid_chunk_size",
                                offset: Some(r.msg.body_wire_len),
                                detail: why,
                            });
                            self.halves[d].raw = true;
                            self.finish(d, at, false, out);
                            return bytes.len();
                        }
                        _ => {}
                    }
                }
            }
        }
        if let Some(r) = self.halves[d].reading.as_mut() {
            r.msg.last = at;
        }
        if ended {
            self.finish(d, at, true, out);
        }
        used
    }

    /// Payload bytes (chunking removed): count, decode, keep, feed SSE.
    fn payload(r: &mut Reading, bytes: &[u8], at: At, out: &mut Vec<AppEvent>) {
        if bytes.is_empty() {
            return;
        }
        r.msg.body_first.get_or_insert(at);
        if !matches!(r.framing, Framing::Chunked(_)) {
            r.msg.body_wire_len += bytes.len() as u64;
        }
        if !r.sniffed {
            r.sniffed = true;
            if r.decoder.is_none() && r.msg.content_encoding.is_none() {
                if let Some(e) = Encoding::sniff(bytes) {
                    r.msg.anomalies.push(Anomaly {
                        name: "gzip_without_content_encoding",
                        offset: Some(0),
                        detail: format!(
                            "the body starts with {} magic bytes but no Content-Encoding says so",
                            e.name()
                        ),
                    });
                    r.msg.content_encoding = Some(format!("{} (from magic bytes)", e.name()));
                    if let Some(sse) = r.sse.as_mut() {
                        sse.set_compressed();
                    }
                    if e.decodable() {
                        r.decoder = Some(body_decoder(e, r.decode_limits, r.sse.is_some()));
                    }
                }
            }
        }
        let msg = &mut r.msg;
        let sse = &mut r.sse;
        let kept = r.decode_limits.body_kept.min(MAX_BODY_KEPT);
        let mut keep = |decoded: &[u8]| {
            let room = kept.saturating_sub(msg.body.len());
            if decoded.len() > room {
                msg.body_truncated = true;
            }
            msg.body
                .extend_from_slice(&decoded[..decoded.len().min(room)]);
        };
        match r.decoder.as_mut() {
            Some(decoder) => {
                // Decoded text goes on as it comes out: a bomb's output is
                // never held whole.
                let result = match sse.as_mut() {
                    Some(sse) => {
                        // Only compressed data counts as arrived: a gzip
                        // header sent early says the stream began, no more.
                        let data_before = decoder.data_in();
                        let mut decoded_any = false;
                        let result = decoder.feed(bytes, &mut |b| {
                            keep(b);
                            decoded_any |= !b.is_empty();
                            sse.text(b, at, out);
                        });
                        sse.wire((decoder.data_in() - data_before) as usize, at);
                        // Bytes ending in a flush marker (an empty stored
                        // block, `00 00 ff ff`) leave nothing undecoded.
                        let flushed = bytes.ends_with(&[0x00, 0x00, 0xff, 0xff]);
                        sse.settle(decoded_any || flushed);
                        result
                    }
                    None => decoder.feed(bytes, &mut keep),
                };
                msg.body_decoded_len = decoder.total_out();
                decoding_outcome(msg, result);
            }
            None => {
                keep(bytes);
                msg.body_decoded_len += bytes.len() as u64;
                if let Some(sse) = sse.as_mut() {
                    sse.feed_decoded(bytes.len(), bytes, at, out);
                }
            }
        }
    }

    /// Ends the message being read in direction `d`.
    fn finish(&mut self, d: usize, at: At, complete: bool, out: &mut Vec<AppEvent>) {
        let Some(mut r) = self.halves[d].reading.take() else {
            return;
        };
        if let Some(decoder) = r.decoder.as_mut() {
            // Nothing is kept of a body whose decoder can be left behind
            // (see `body_decoder`): only the counts change.
            let result = decoder.end(&mut |_| {});
            r.msg.body_decoded_len = decoder.total_out();
            decoding_outcome(&mut r.msg, result);
        }
        r.msg.last = at;
        r.msg.complete = complete;
        if !complete {
            if let Framing::Length(left) = r.framing {
                if left > 0 {
                    r.msg.anomalies.push(Anomaly {
                        name: "content_length_mismatch",
                        offset: None,
                        detail: format!(
                            "Content-Length says {} bytes; the connection ended after {}",
                            r.msg.content_length.unwrap_or(0),
                            r.msg.body_wire_len
                        ),
                    });
                }
            } else if matches!(r.framing, Framing::Chunked(_)) {
                r.msg.anomalies.push(Anomaly {
                    name: "incomplete",
                    offset: None,
                    detail: "the chunked body ended without its last chunk".into(),
                });
            }
        }
        if let Some(sse) = r.sse.as_mut() {
            sse.finish(at, out);
        }
        if r.msg.dir == Direction::ClientToServer {
            // The response's wait starts at the request's last byte.
            if let Some(p) = self.pending.iter_mut().find(|p| p.index == r.msg.index) {
                p.end = r.msg.last;
            }
        }
        self.emit(r.msg, out);
    }

    /// Bytes the capture does not hold: the message being read is cut.
    pub fn gap(&mut self, dir: Direction, len: u64, at: At, out: &mut Vec<AppEvent>) {
        let d = dir.index();
        self.resolve(d, out);
        if let Some(r) = self.halves[d].reading.as_mut() {
            r.msg.anomalies.push(Anomaly {
                name: "bytes_missing",
                offset: Some(r.msg.body_wire_len),
                detail: format!("{len} bytes were not captured"),
            });
            match &mut r.framing {
                Framing::Length(left) if *left >= len => {
                    *left -= len;
                    r.msg.body_wire_len += len;
                    if *left == 0 {
                        self.finish(d, at, true, out);
                    }
                    return;
                }
                Framing::UntilClose => {
                    r.msg.body_wire_len += len;
                    return;
                }
                _ => {}
            }
            self.finish(d, at, false, out);
        }
        let half = &self.halves[d];
        if !half.head.is_empty() && !half.raw {
            // A head cut by a gap never ends: say what it holds.
            let first = half.head_first.unwrap_or(at);
            let msg = self.cut_head(
                d,
                first,
                at,
                "bytes_missing",
                format!("{len} bytes were not captured inside the head"),
            );
            self.emit(msg, out);
        }
        // Start again at the next chunk that starts a message.
        self.halves[d].head.clear();
        self.halves[d].resync = true;
        self.halves[d].raw = self.halves[d].raw || self.switched_to_websocket.is_some();
    }

    /// The direction ended (FIN, or the end of the capture).
    pub fn end(&mut self, dir: Direction, at: At, out: &mut Vec<AppEvent>) {
        let d = dir.index();
        self.resolve(d, out);
        let close_delimited = matches!(
            self.halves[d].reading.as_ref().map(|r| &r.framing),
            Some(Framing::UntilClose)
        );
        self.finish(d, at, close_delimited, out);
        let half = &mut self.halves[d];
        if !half.head.is_empty() && !half.raw {
            let first = half.head_first.unwrap_or(at);
            let line_end = half
                .head
                .iter()
                .position(|b| *b == b'\n')
                .unwrap_or(half.head.len());
            let line = String::from_utf8_lossy(&half.head[..line_end])
                .trim_end_matches('\r')
                .to_string();
            let starts_right = match dir {
                Direction::ClientToServer => line
                    .rsplit(' ')
                    .next()
                    .is_some_and(|v| v.starts_with("HTTP/")),
                Direction::ServerToClient => line.starts_with("HTTP/"),
            };
            let cut_in_line = line_end == half.head.len() && looks_like_http(&half.head, dir);
            let msg = if starts_right || cut_in_line {
                self.cut_head(
                    d,
                    first,
                    at,
                    "incomplete",
                    "the connection ended inside a head".into(),
                )
            } else {
                let what = if dir == Direction::ClientToServer {
                    "request line"
                } else {
                    "status line"
                };
                self.broken(
                    d,
                    first,
                    at,
                    "unparsable",
                    format!("{line:?} is not an HTTP {what}"),
                )
            };
            self.emit(msg, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;

    const C2S: Direction = Direction::ClientToServer;
    const S2C: Direction = Direction::ServerToClient;

    fn at(frame: u64) -> At {
        At {
            frame,
            time: Timestamp(frame as i64 * 1_000_000),
        }
    }

    /// Feeds `pieces` of one direction, each as a chunk of its own.
    fn feed(conn: &mut HttpConn, dir: Direction, pieces: &[&[u8]], out: &mut Vec<AppEvent>) {
        let mut offset = 0;
        for (i, piece) in pieces.iter().enumerate() {
            conn.data(dir, offset, piece, at(i as u64 + 1), out);
            offset += piece.len() as u64;
        }
    }

    fn messages(out: &[AppEvent]) -> Vec<&HttpMessage> {
        out.iter()
            .filter_map(|e| match e {
                AppEvent::Http(m) => Some(&**m),
                _ => None,
            })
            .collect()
    }

    fn names(m: &HttpMessage) -> Vec<&str> {
        m.anomalies.iter().map(|a| a.name).collect()
    }

    #[test]
    fn event_streams_are_known_by_their_media_type_in_any_case() {
        for t in [
            "text/event-stream",
            "TEXT/Event-Stream",
            "text/event-stream; charset=utf-8",
        ] {
            assert!(is_event_stream(t), "{t}");
        }
        for t in [
            "text/event-strea",
            "text/html",
            "",
            "application/json; text/event-stream",
        ] {
            assert!(!is_event_stream(t), "{t}");
        }
    }

    #[test]
    fn a_response_header_with_whitespace_before_its_colon_is_read() {
        // Seen in pcpp-many-protocols: `Access-Control-Allow-Credentials : true`
        // before Transfer-Encoding. Clients read the field (RFC 9112 5.1 has
        // a proxy remove the whitespace); the chunked framing must hold.
        let mut conn = HttpConn::new(0, DecodeLimits::default());
        let mut out = Vec::new();
        let response: &[u8] = b"HTTP/1.1 200 OK\r\nX-Powered-By: Express\r\n\
            Access-Control-Allow-Credentials : true\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nhello\r\n0\r\n\r\n";
        feed(&mut conn, S2C, &[response], &mut out);
        let m = messages(&out);
        assert_eq!(m.len(), 1);
        assert!(m[0].complete);
        assert_eq!(m[0].body, b"hello");
        assert_eq!(m[0].transfer_encoding.as_deref(), Some("chunked"));
        assert_eq!(
            m[0].header("access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(names(m[0]), ["invalid_header_byte"]);
    }

    #[test]
    fn what_httparse_accepts_is_checked_from_its_reading_as_the_bytes_would_be() {
        // Heads httparse accepts skip the byte scans: the name it reports
        // with whitespace before its colon is the one the scan finds.
        for head in [
            &b"HTTP/1.1 200 OK\r\nA: 1\r\nB : 2\r\nC\t: 3\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nLocation: http://x:80/\r\nServer:nginx\r\n\r\n",
            b"HTTP/1.1 200 OK\nA: b\nSpaced  \t :x\n\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ] {
            let mut parsed = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut parsed);
            let mut config = httparse::ParserConfig::default();
            config.allow_spaces_after_header_name_in_responses(true);
            assert!(config
                .parse_response(&mut resp, head)
                .is_ok_and(|s| s.is_complete()));
            assert_eq!(
                spaced_before_colon(head, resp.headers),
                space_before_colon(head),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn control_bytes_and_folded_lines_are_found_in_heads_httparse_refuses() {
        // httparse refuses both, so the byte scans still run on them.
        let mut conn = HttpConn::new(0, DecodeLimits::default());
        let mut out = Vec::new();
        feed(
            &mut conn,
            C2S,
            &[b"GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x01b\r\n\r\n"],
            &mut out,
        );
        feed(
            &mut conn,
            C2S,
            &[b"GET /2 HTTP/1.1\r\nHost: a\r\nX-Long: a\r\n  b\r\n\r\n"],
            &mut out,
        );
        let m = messages(&out);
        assert_eq!(m.len(), 2);
        assert!(m[0]
            .anomalies
            .iter()
            .any(|a| a.name == "invalid_header_byte" && a.detail.contains("X-Bad")));
        assert!(names(m[1]).contains(&"obs_fold"), "{:?}", names(m[1]));
    }

    #[test]
    fn a_head_cut_by_a_gap_says_what_it_holds_and_reading_resumes_at_the_next_message() {
        // pcpp-pcapng-example-multi-if frame 139: 128 of 1296 bytes captured.
        let mut conn = HttpConn::new(0, DecodeLimits::default());
        let mut out = Vec::new();
        conn.data(
            S2C,
            0,
            b"HTTP/1.1 200 OK\r\nDate: Thu, 10 Mar 2011 ",
            at(1),
            &mut out,
        );
        conn.gap(S2C, 1168, at(1), &mut out);
        // The rest of the cut response, then the next one.
        conn.data(
            S2C,
            1208,
            b"\x1f\x8b binary rest of the body",
            at(2),
            &mut out,
        );
        conn.data(
            S2C,
            1235,
            b"HTTP/1.1 204 No Content\r\n\r\n",
            at(3),
            &mut out,
        );
        let m = messages(&out);
        assert_eq!(m.len(), 2, "{m:#?}");
        assert_eq!((m[0].status(), m[0].complete), (Some(200), false));
        assert_eq!(names(m[0]), ["bytes_missing"]);
        assert_eq!(m[0].last.frame, 1);
        assert_eq!((m[1].status(), m[1].complete), (Some(204), true));
    }

    #[test]
    fn a_response_whose_first_segment_is_one_byte_is_read() {
        let mut conn = HttpConn::new(0, DecodeLimits::default());
        let mut out = Vec::new();
        feed(
            &mut conn,
            S2C,
            &[b"H", b"TTP/1.1 204 No Content\r\n\r\n"],
            &mut out,
        );
        let m = messages(&out);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].status(), Some(204));
        assert_eq!((m[0].first.frame, m[0].last.frame), (1, 2));
    }

    #[test]
    fn a_head_that_comes_a_byte_at_a_time_ends_where_it_ends() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let pieces: Vec<&[u8]> = head.chunks(1).collect();
        let mut conn = HttpConn::new(0, DecodeLimits::default());
        let mut out = Vec::new();
        feed(&mut conn, C2S, &pieces, &mut out);
        let m = messages(&out);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].last.frame, head.len() as u64);
        // An end found across what was already scanned.
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nx", 23), Some(24));
        // The one-pass scan of a whole head agrees with the two searches.
        for buf in [
            &b"GET / HTTP/1.1\r\nA: b\r\n\r\nx"[..],
            b"GET / HTTP/1.1\nA: b\n\nx",
            b"GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n\n",
            b"\nGET / HTTP/1.1\r\n\r\n",
            b"\n\n",
            b"\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n",
            b"GET / HTTP/1.1\r\nA: b\n\r\nbody\n",
            b"HTTP/1.1 200 OK\r\n\r\n\n\n",
            b"",
        ] {
            let end = head_end(buf, 0);
            let expected = (end, end.and_then(|e| bare_lf_at(&buf[..e])));
            assert_eq!(
                scan_head(buf),
                expected,
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
        assert_eq!(head_end(b"GET / HTTP/1.1\nA: b\n\nx", 20), Some(21));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 10), None);
    }

    #[test]
    fn both_readings_of_a_bare_lf_head_do_not_depend_on_the_segments() {
        // The bare LFs make an empty line: a lenient reader ends the head
        // after Host; a CRLF-only reader goes on to the CRLF CRLF (X-Late is
        // in its Host value) and sees Content-Length. That reading needs the
        // bytes after the lenient end, whether or not they came in the same
        // segment.
        let request: &[u8] =
            b"POST / HTTP/1.1\r\nHost: a\n\nX-Late: 1\r\nContent-Length: 3\r\n\r\nabc";
        let lenient_end = 26;
        let read = |pieces: &[&[u8]]| {
            let mut conn = HttpConn::new(0, DecodeLimits::default());
            let mut out = Vec::new();
            feed(&mut conn, C2S, pieces, &mut out);
            conn.end(C2S, at(9), &mut out);
            messages(&out)
                .iter()
                .map(|m| {
                    let strict: Vec<String> = m
                        .strict_headers
                        .iter()
                        .flatten()
                        .map(|h| h.name.to_string())
                        .collect();
                    (m.start_line(), names(m).join(","), strict)
                })
                .collect::<Vec<_>>()
        };
        let whole = read(&[request]);
        assert!(whole[0].1.contains("header_block_ends_early"), "{whole:?}");
        assert_eq!(whole[0].2, ["Host", "Content-Length"]);
        // What follows the lenient end is read as the next message.
        assert_eq!(whole[1].1, "unparsable");
        let (head, rest) = request.split_at(lenient_end);
        assert_eq!(read(&[head, rest]), whole);
        assert_eq!(read(&request.chunks(1).collect::<Vec<_>>()), whole);
    }

    #[test]
    fn a_head_with_lf_line_ends_only_is_read_at_once() {
        // No CRLF anywhere: there is no CRLF-only end to wait for.
        let mut conn = HttpConn::new(0, DecodeLimits::default());
        let mut out = Vec::new();
        feed(&mut conn, C2S, &[b"GET /a HTTP/1.1\nHost: a\n\n"], &mut out);
        let m = messages(&out);
        assert_eq!(m.len(), 1);
        assert_eq!(names(m[0]), ["bare_lf"]);
    }

    #[test]
    fn an_event_stream_bomb_is_parsed_as_it_decodes() {
        use flate2::write::GzEncoder;
        use flate2::Compression;
        use std::io::Write;
        // 4 MiB of `data: x` lines without a blank line, one event that
        // never ends, against a 1 MiB limit. Decoding stops at the limit;
        // the text goes through the event parser as it comes out.
        let limits = DecodeLimits {
            max_decoded: 1 << 20,
            max_ratio: u64::MAX,
            ..DecodeLimits::default()
        };
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&b"data: x\n".repeat(1 << 19)).unwrap();
        let body = gz.finish().unwrap();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut conn = HttpConn::new(0, limits);
        let mut out = Vec::new();
        conn.data(S2C, 0, head.as_bytes(), at(1), &mut out);
        conn.data(S2C, head.len() as u64, &body, at(2), &mut out);
        let m = messages(&out);
        assert_eq!(m.len(), 1);
        assert!(m[0].has_anomaly("decoding_limit"), "{:?}", m[0].anomalies);
        assert_eq!(m[0].body_decoded_len, 1 << 20);
    }

    #[test]
    fn bodies_matched_against_remembered_streams_read_as_inflated_ones() {
        use flate2::write::GzEncoder;
        use flate2::Compression;
        use std::io::Write;
        let page: Vec<u8> = (0..2000u32)
            .flat_map(|i| format!("<p>paragraph {}</p>\n", i % 37).into_bytes())
            .collect();
        let mut e = GzEncoder::new(Vec::new(), Compression::new(5));
        e.write_all(&page).unwrap();
        let gz = e.finish().unwrap();
        // Past the middle, bytes no deflate stream holds there: the
        // decoder follows the remembered page up to them, then fails.
        let mut corrupt = gz.clone();
        let middle = corrupt.len() / 2;
        corrupt[middle..middle + 64].fill(0xff);
        let response = |body: &[u8], length: usize| {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {length}\r\n\r\n"
            )
            .into_bytes();
            r.extend_from_slice(body);
            r
        };
        // The page three times, corrupted once, then cut short by the end
        // of the connection: all over one connection, in 1460-byte pieces.
        let mut stream = Vec::new();
        for body in [&gz, &gz, &corrupt, &gz] {
            stream.extend_from_slice(&response(body, body.len()));
        }
        stream.extend_from_slice(&response(&gz[..gz.len() / 3], gz.len()));
        let read = |remember_streams: bool| {
            let limits = DecodeLimits {
                body_kept: 0,
                remember_streams,
                ..DecodeLimits::default()
            };
            let mut conn = HttpConn::new(0, limits);
            let mut out = Vec::new();
            let mut offset = 0;
            for (i, piece) in stream.chunks(1460).enumerate() {
                conn.data(S2C, offset, piece, at(i as u64 + 1), &mut out);
                offset += piece.len() as u64;
            }
            conn.end(S2C, at(1000), &mut out);
            messages(&out)
                .iter()
                .map(|m| format!("{} {} {:?}", m.body_decoded_len, m.complete, m.anomalies))
                .collect::<Vec<_>>()
        };
        let inflated = read(false);
        assert_eq!(inflated.len(), 5);
        assert!(inflated[2].contains("decoding_failed"), "{inflated:?}");
        assert!(inflated[0].starts_with(&format!("{} true []", page.len())));
        assert_eq!(read(true), inflated);
    }

    /// Both directions of a conversation, in the order given, then the end.
    fn converse(conn: &mut HttpConn, turns: &[(Direction, &[u8])]) -> Vec<AppEvent> {
        let mut out = Vec::new();
        let mut offsets = [0u64; 2];
        for (i, (dir, bytes)) in turns.iter().enumerate() {
            let d = dir.index();
            conn.data(*dir, offsets[d], bytes, at(i as u64 + 1), &mut out);
            offsets[d] += bytes.len() as u64;
        }
        let end = at(turns.len() as u64 + 1);
        conn.end(C2S, end, &mut out);
        conn.end(S2C, end, &mut out);
        conn.unanswered(&mut out);
        out
    }

    fn unanswered(out: &[AppEvent]) -> Vec<u64> {
        out.iter()
            .filter_map(|e| match e {
                AppEvent::HttpUnanswered(m) => Some(m.index),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_response_carries_the_request_it_answers() {
        let mut conn = HttpConn::new(1, DecodeLimits::default());
        let out = converse(
            &mut conn,
            &[
                (C2S, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
                (S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
                (S2C, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            ],
        );
        let asked: Vec<(Option<u16>, Option<String>)> = messages(&out)
            .iter()
            .filter(|m| m.dir == S2C)
            .map(|m| {
                let uri = m.request.as_ref().map(|q| match &q.start {
                    StartLine::Request { uri, .. } => uri.clone(),
                    StartLine::Response { .. } => String::new(),
                });
                (m.status(), uri)
            })
            .collect();
        assert_eq!(
            asked,
            [
                (Some(200), Some("/a".into())),
                (Some(404), Some("/b".into()))
            ]
        );
        assert!(unanswered(&out).is_empty());
    }

    #[test]
    fn requests_left_unanswered_are_reported_once_the_connection_ended() {
        // An interim 100 Continue answers nothing; the 200 answers request 0.
        let mut conn = HttpConn::new(1, DecodeLimits::default());
        let out = converse(
            &mut conn,
            &[
                (
                    C2S,
                    b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n",
                ),
                (
                    S2C,
                    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                ),
            ],
        );
        assert_eq!(unanswered(&out), [1, 2]);
        // The unanswered event is the request as it was sent.
        let Some(AppEvent::HttpUnanswered(m)) = out.last() else {
            panic!("{out:?}");
        };
        assert_eq!(m.start_line(), "GET /c HTTP/1.1");
    }

    #[test]
    fn an_unreadable_answer_still_answers_the_oldest_request() {
        let mut conn = HttpConn::new(1, DecodeLimits::default());
        let out = converse(
            &mut conn,
            &[
                (C2S, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
                (S2C, b"HTTP/1.1 two hundred OK\r\n\r\n"),
            ],
        );
        assert_eq!(unanswered(&out), [1], "{out:#?}");
    }

    #[test]
    fn kept_requests_give_their_bytes_back_to_the_shared_budget() {
        let kept = Arc::new(AtomicUsize::new(0));
        let mut conn = HttpConn::sharing(1, DecodeLimits::default(), kept.clone());
        let mut out = Vec::new();
        feed(&mut conn, C2S, &[b"GET /a HTTP/1.1\r\n\r\n"], &mut out);
        assert!(kept.load(Ordering::Relaxed) > 0);
        drop(conn);
        assert_eq!(kept.load(Ordering::Relaxed), 0);
        // Past the budget a request is paired but not kept.
        kept.store(REQUESTS_KEPT, Ordering::Relaxed);
        let mut conn = HttpConn::sharing(2, DecodeLimits::default(), kept.clone());
        let out = converse(
            &mut conn,
            &[
                (C2S, b"GET /a HTTP/1.1\r\n\r\n"),
                (S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            ],
        );
        let response = messages(&out).into_iter().find(|m| m.dir == S2C);
        assert_eq!(
            response.map(|m| (m.answers, m.request.is_none())),
            Some((Some(0), true))
        );
        assert_eq!(kept.load(Ordering::Relaxed), REQUESTS_KEPT);
    }
}
