//! Content encodings: gzip and deflate decoded with flate2, brotli and zstd
//! recognised, all bounded against decompression bombs.
//!
//! Decoding is incremental: compressed bytes are fed as they arrive and the
//! decoded bytes come out as soon as the compressor's flushes allow, which
//! is what tells whether an event stream was readable on arrival.

use flate2::{Decompress, FlushDecompress, Status};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A content coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// No coding (or `identity`).
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// deflate, zlib-wrapped (RFC 1950) or raw (RFC 1951): told by the first bytes.
    Deflate,
    /// Brotli: recognised, not decoded.
    Brotli,
    /// Zstandard: recognised, not decoded.
    Zstd,
    /// Anything else: not decoded.
    Other,
}

impl Encoding {
    /// Reads a `Content-Encoding` value (the last coding applied is the
    /// outermost; chattcp decodes one layer).
    pub fn from_header(value: &str) -> Encoding {
        let last = value.rsplit(',').next().unwrap_or("").trim();
        let is = |name: &str| last.eq_ignore_ascii_case(name);
        if last.is_empty() || is("identity") {
            Encoding::Identity
        } else if is("gzip") || is("x-gzip") {
            Encoding::Gzip
        } else if is("deflate") {
            Encoding::Deflate
        } else if is("br") {
            Encoding::Brotli
        } else if is("zstd") {
            Encoding::Zstd
        } else {
            Encoding::Other
        }
    }

    /// Recognises a compressed body by its first bytes.
    pub fn sniff(body: &[u8]) -> Option<Encoding> {
        match body {
            [0x1f, 0x8b, ..] => Some(Encoding::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Encoding::Zstd),
            _ => None,
        }
    }

    /// A stable name.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
            Encoding::Other => "other",
        }
    }

    /// Whether chattcp decodes it.
    pub fn decodable(self) -> bool {
        matches!(self, Encoding::Gzip | Encoding::Deflate)
    }
}

/// Bounds on decoded output.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Decoded bytes at most, per message.
    pub max_decoded: u64,
    /// Decoded bytes per compressed byte at most, once past `ratio_after`.
    pub max_ratio: u64,
    /// Decoded size from which the ratio is checked.
    pub ratio_after: u64,
    /// Decoded bytes of an HTTP body kept in its message: bodies are still
    /// decoded (their length, limits and event streams) but nobody may read
    /// them (`chattcp diagnose` when no script does).
    pub body_kept: usize,
    /// Whether a body nobody reads may be matched against compressed
    /// streams decoded before on the same thread instead of inflated again
    /// (see [`ContentDecoder::remembering`]); off only to test that the
    /// outcome is the same.
    pub remember_streams: bool,
    /// Whether an HTTP message whose body follows is announced by an
    /// `HttpHead` event before it ends (the follow and chat views show a
    /// stream's head at once); scripts have no handler for it, so a run
    /// of scripts alone turns it off and saves a copy of every head.
    pub announce_heads: bool,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_decoded: 64 << 20,
            max_ratio: 1000,
            ratio_after: 1 << 20,
            body_kept: super::http::MAX_BODY_KEPT,
            remember_streams: true,
            announce_heads: true,
        }
    }
}

/// Why decoding stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeStop {
    /// The bytes are not valid for the coding.
    Invalid(String),
    /// A limit was hit: a likely decompression bomb.
    Limit(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// gzip: reading the header (flags known once 10 bytes are in).
    GzipHeader,
    /// Inflating.
    Body,
    /// The compressed stream ended.
    Done,
    /// Stopped after an error or a limit.
    Stopped,
}

/// Output buffer of an inflate step.
const SCRATCH: usize = 32 << 10;
/// Spare inflate states and buffers kept per thread.
const MAX_SPARE: usize = 16;

thread_local! {
    /// Inflate states and output buffers of decoders that are done, for the
    /// next: each costs tens of kilobytes to set up (and the buffer to
    /// zero), and a capture may hold hundreds of thousands of small
    /// compressed bodies.
    static SPARE: std::cell::RefCell<Vec<(Decompress, Vec<u8>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// An inflate state (raw deflate, or zlib-wrapped) and an output buffer.
fn inflater(zlib: bool) -> (Decompress, Vec<u8>) {
    match SPARE.with(|s| s.borrow_mut().pop()) {
        Some((mut d, buf)) => {
            d.reset(zlib);
            (d, buf)
        }
        None => (Decompress::new(zlib), vec![0; SCRATCH]),
    }
}

/// Compressed streams each thread remembers.
const REMEMBERED_STREAMS: usize = 8;
/// Longest compressed stream remembered (and recorded to be remembered).
const MAX_REMEMBERED_STREAM: usize = 64 << 10;
/// Compressed bytes that all decoders together may hold while recording a
/// stream to remember: past it they decode without recording.
const RECORDING_BUDGET: usize = 8 << 20;
/// Compressed bytes held by recording decoders now.
static RECORDING: AtomicUsize = AtomicUsize::new(0);

/// A compressed stream decoded in full without error or limit, and what
/// decoding it gave.
#[derive(Debug)]
struct Remembered {
    encoding: Encoding,
    /// The bytes fed until the compressed stream ended (a gzip trailer, and
    /// anything after it, is ignored by decoding and not kept).
    stream: Box<[u8]>,
    /// Decoded bytes.
    decoded: u64,
}

impl Remembered {
    /// Whether this stream's outcome holds under `limits`.
    fn within(&self, limits: &DecodeLimits) -> bool {
        never_limited(self.decoded, limits)
    }
}

/// Whether a stream that decodes to `decoded` bytes cannot meet `limits`
/// at any point: within the size limit and below the size at which the
/// ratio is checked, so how its bytes were cut does not matter.
fn never_limited(decoded: u64, limits: &DecodeLimits) -> bool {
    decoded <= limits.max_decoded && decoded <= limits.ratio_after
}

/// A remembered stream, how often it matched, and when it came.
struct Slot {
    stream: Arc<Remembered>,
    hits: u64,
    age: u64,
}

/// The streams one thread remembers.
#[derive(Default)]
struct StreamMemory {
    slots: Vec<Slot>,
    /// Insertions so far: the age of a stream, to replace the oldest of the
    /// least used.
    clock: u64,
}

thread_local! {
    /// Compressed bodies recur: a server sends the same gzip'd page to
    /// every client, and a capture of a load test holds it thousands of
    /// times. Remembered per thread, so that no lock is taken per body.
    static MEMORY: std::cell::RefCell<StreamMemory> =
        std::cell::RefCell::new(StreamMemory::default());
}

/// Length of the common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    // Slices compare with memcmp; look for the first difference only when
    // there is one.
    if a[..n] == b[..n] {
        return n;
    }
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl StreamMemory {
    /// A remembered stream of `encoding` that starts with `seen` followed by
    /// `input` (as far as either goes), usable under `limits`.
    fn find(
        &mut self,
        encoding: Encoding,
        limits: &DecodeLimits,
        seen: &[u8],
        input: &[u8],
    ) -> Option<Arc<Remembered>> {
        self.slots
            .iter()
            .filter(|slot| {
                let r = &slot.stream;
                r.encoding == encoding
                    && r.within(limits)
                    && r.stream.len() > seen.len()
                    && r.stream[..seen.len()] == *seen
                    && {
                        let rest = &r.stream[seen.len()..];
                        common_prefix(rest, input) == rest.len().min(input.len())
                    }
            })
            .max_by_key(|slot| slot.hits)
            .map(|slot| Arc::clone(&slot.stream))
    }

    /// Counts a match of `stream`.
    fn hit(&mut self, stream: &Arc<Remembered>) {
        if let Some(slot) = self
            .slots
            .iter_mut()
            .find(|slot| Arc::ptr_eq(&slot.stream, stream))
        {
            slot.hits += 1;
        }
    }

    /// Remembers a stream, in place of the oldest of the least matched when
    /// full.
    fn insert(&mut self, encoding: Encoding, stream: &[u8], decoded: u64) {
        if self
            .slots
            .iter()
            .any(|slot| slot.stream.encoding == encoding && *slot.stream.stream == *stream)
        {
            return;
        }
        self.clock += 1;
        let slot = Slot {
            stream: Arc::new(Remembered {
                encoding,
                stream: stream.into(),
                decoded,
            }),
            hits: 0,
            age: self.clock,
        };
        if self.slots.len() < REMEMBERED_STREAMS {
            self.slots.push(slot);
        } else if let Some(victim) = self.slots.iter_mut().min_by_key(|s| (s.hits, s.age)) {
            *victim = slot;
        }
    }
}

/// Whether, and how, a decoder uses the streams remembered on its thread.
#[derive(Debug)]
enum Memory {
    /// It inflates, and keeps nothing.
    Off,
    /// Nothing fed yet: the first bytes choose.
    Unchosen,
    /// The input so far is `stream.stream[..at]`; nothing was inflated.
    Following { stream: Arc<Remembered>, at: usize },
    /// It inflates, and keeps its input to be remembered if the stream ends
    /// well (the bytes are counted in [`RECORDING`]).
    Recording(Vec<u8>),
}

/// An incremental, bounded decoder for one body.
pub struct ContentDecoder {
    encoding: Encoding,
    stage: Stage,
    header: Vec<u8>,
    inflate: Option<Decompress>,
    limits: DecodeLimits,
    total_in: u64,
    data_in: u64,
    total_out: u64,
    scratch: Vec<u8>,
    memory: Memory,
    /// Input bytes of the last feed left over when the stream ended.
    unused_at_end: usize,
}

impl std::fmt::Debug for ContentDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentDecoder")
            .field("encoding", &self.encoding)
            .field("total_in", &self.total_in)
            .field("total_out", &self.total_out)
            .finish()
    }
}

/// Length of a gzip header whose first bytes are `h`, once known.
fn gzip_header_len(h: &[u8]) -> Result<Option<usize>, String> {
    if h.len() < 10 {
        return Ok(None);
    }
    if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 {
        return Err("not a gzip stream (bad magic bytes or method)".into());
    }
    let flags = h[3];
    let mut at = 10;
    if flags & 0x04 != 0 {
        let Some(x) = h.get(at..at + 2) else {
            return Ok(None);
        };
        at += 2 + usize::from(u16::from_le_bytes([x[0], x[1]]));
    }
    for bit in [0x08u8, 0x10] {
        if flags & bit != 0 {
            match h
                .get(at..)
                .and_then(|rest| rest.iter().position(|b| *b == 0))
            {
                Some(end) => at += end + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    Ok((h.len() >= at).then_some(at))
}

/// A gzip header with optional fields is small; more is not a header.
const MAX_GZIP_HEADER: usize = 64 << 10;

impl Drop for ContentDecoder {
    fn drop(&mut self) {
        self.stop_recording();
        if let Some(inflate) = self.inflate.take() {
            let scratch = std::mem::take(&mut self.scratch);
            if scratch.len() == SCRATCH {
                SPARE.with(|s| {
                    let mut s = s.borrow_mut();
                    if s.len() < MAX_SPARE {
                        s.push((inflate, scratch));
                    }
                });
            }
        }
    }
}

impl ContentDecoder {
    /// A decoder for `encoding` (only gzip and deflate decode).
    pub fn new(encoding: Encoding, limits: DecodeLimits) -> Self {
        ContentDecoder {
            encoding,
            stage: if encoding == Encoding::Gzip {
                Stage::GzipHeader
            } else {
                Stage::Body
            },
            header: Vec::new(),
            inflate: None,
            limits,
            total_in: 0,
            data_in: 0,
            total_out: 0,
            scratch: Vec::new(),
            memory: Memory::Off,
            unused_at_end: 0,
        }
    }

    /// A decoder for a body whose decoded bytes nobody reads: only how
    /// many there are, and whether decoding failed or met a limit.
    ///
    /// It compares the compressed bytes with the streams decoded before on
    /// this thread. While they match a remembered stream nothing is
    /// inflated; if they go on to its end, the outcome is the remembered
    /// one (no decoded bytes are given to `out`). If they part, the matched
    /// bytes are inflated and decoding goes on as usual. The outcome is the
    /// same as inflating, cut in any pieces: only streams that decoded
    /// without error, within the size limit and below the size at which
    /// the ratio is checked are remembered. [`data_in`](Self::data_in) is
    /// not kept while following a stream.
    pub fn remembering(encoding: Encoding, limits: DecodeLimits) -> Self {
        let mut decoder = ContentDecoder::new(encoding, limits);
        if limits.remember_streams {
            decoder.memory = Memory::Unchosen;
        }
        decoder
    }

    /// Gives back what recording held.
    fn stop_recording(&mut self) {
        if let Memory::Recording(kept) = std::mem::replace(&mut self.memory, Memory::Off) {
            RECORDING.fetch_sub(kept.len(), Ordering::Relaxed);
        }
    }

    /// Adds `input` to the recording, or stops recording when it would
    /// pass a bound.
    fn record(&mut self, input: &[u8]) {
        let Memory::Recording(kept) = &mut self.memory else {
            return;
        };
        let fits = kept.len() + input.len() <= MAX_REMEMBERED_STREAM
            && RECORDING
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                    let after = held + input.len();
                    (after <= RECORDING_BUDGET).then_some(after)
                })
                .is_ok();
        if fits {
            kept.extend_from_slice(input);
        } else {
            self.stop_recording();
        }
    }

    /// Compressed data bytes fed so far: all bytes but the gzip header (an
    /// early header says the stream began, not that data arrived).
    pub fn data_in(&self) -> u64 {
        self.data_in
    }

    /// Compressed bytes fed so far.
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    /// Decoded bytes produced so far.
    pub fn total_out(&self) -> u64 {
        self.total_out
    }

    /// Whether the compressed stream reached its end.
    pub fn finished(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Feeds compressed bytes; decoded bytes go to `out`. After an error or
    /// a limit the decoder ignores further input.
    pub fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), DecodeStop> {
        if matches!(self.memory, Memory::Off) {
            return self.inflate_input(input, out);
        }
        if matches!(self.memory, Memory::Unchosen) {
            let found =
                MEMORY.with(|m| m.borrow_mut().find(self.encoding, &self.limits, &[], input));
            self.memory = match found {
                Some(stream) => Memory::Following { stream, at: 0 },
                None => Memory::Recording(Vec::new()),
            };
        }
        if let Memory::Following { stream, at } = &mut self.memory {
            let rest = &stream.stream[*at..];
            let same = common_prefix(rest, input);
            if same == rest.len() {
                // The stream ends in this input; what follows its end is
                // ignored, as inflating would.
                self.total_in += input.len() as u64;
                self.total_out = stream.decoded;
                self.stage = Stage::Done;
                let stream = Arc::clone(stream);
                MEMORY.with(|m| m.borrow_mut().hit(&stream));
                self.memory = Memory::Off;
                return Ok(());
            }
            if same == input.len() {
                *at += same;
                self.total_in += input.len() as u64;
                return Ok(());
            }
            // They part. Another remembered stream may share the bytes
            // seen so far and go on with these.
            let seen = &stream.stream[..*at];
            let other = MEMORY.with(|m| {
                m.borrow_mut()
                    .find(self.encoding, &self.limits, seen, input)
            });
            if let Some(other) = other {
                let at = *at;
                self.memory = Memory::Following { stream: other, at };
                return self.feed(input, out);
            }
            // Inflate what matched, as it would have been, then go on.
            let seen = seen.to_vec();
            self.total_in -= seen.len() as u64;
            self.memory = Memory::Recording(Vec::new());
            self.record(&seen);
            self.record(input);
            let replayed = self.inflate_input(&seen, out);
            if replayed.is_err() {
                self.stop_recording();
                return replayed;
            }
            return self.inflate_and_remember(input, out);
        }
        self.record(input);
        self.inflate_and_remember(input, out)
    }

    /// The body ended. A decoder following a remembered stream that
    /// stopped short of the stream's end inflates what came, so that its
    /// counts are those of inflating.
    pub fn end(&mut self, out: &mut dyn FnMut(&[u8])) -> Result<(), DecodeStop> {
        let Memory::Following { stream, at } = &self.memory else {
            return Ok(());
        };
        let seen = stream.stream[..*at].to_vec();
        self.memory = Memory::Off;
        self.total_in -= seen.len() as u64;
        self.inflate_input(&seen, out)
    }

    /// Inflates `input` (already recorded) and remembers the stream if it
    /// ended well.
    fn inflate_and_remember(
        &mut self,
        input: &[u8],
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<(), DecodeStop> {
        let result = self.inflate_input(input, out);
        if result.is_err() {
            self.stop_recording();
        } else if self.stage == Stage::Done {
            if let Memory::Recording(kept) = &self.memory {
                let end = (self.total_in as usize).saturating_sub(self.unused_at_end);
                if end <= kept.len() && never_limited(self.total_out, &self.limits) {
                    let stream = &kept[..end];
                    MEMORY.with(|m| m.borrow_mut().insert(self.encoding, stream, self.total_out));
                }
            }
            self.stop_recording();
        }
        result
    }

    /// Feeds compressed bytes to the inflater.
    fn inflate_input(
        &mut self,
        input: &[u8],
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<(), DecodeStop> {
        self.total_in += input.len() as u64;
        if self.stage == Stage::GzipHeader {
            let room = MAX_GZIP_HEADER.saturating_sub(self.header.len());
            let take = input.len().min(room);
            self.header.extend_from_slice(&input[..take]);
            match gzip_header_len(&self.header) {
                Err(e) => {
                    self.stage = Stage::Stopped;
                    return Err(DecodeStop::Invalid(e));
                }
                Ok(None) if self.header.len() >= MAX_GZIP_HEADER => {
                    self.stage = Stage::Stopped;
                    return Err(DecodeStop::Invalid("gzip header never ends".into()));
                }
                Ok(None) => return Ok(()),
                Ok(Some(len)) => {
                    // What followed the header in this chunk is compressed data.
                    let extra = self.header.split_off(len);
                    self.header = Vec::new();
                    self.stage = Stage::Body;
                    let (inflate, scratch) = inflater(false);
                    self.inflate = Some(inflate);
                    self.scratch = scratch;
                    let consumed_before = take - extra.len();
                    let rest = &input[consumed_before..];
                    return self.inflate_all(rest, out);
                }
            }
        }
        if self.stage != Stage::Body {
            return Ok(());
        }
        if self.inflate.is_none() {
            // deflate: zlib-wrapped when the first two bytes make a valid
            // zlib header, raw otherwise (servers send both).
            self.header.extend_from_slice(input);
            if self.header.len() < 2 {
                return Ok(());
            }
            let first = std::mem::take(&mut self.header);
            let zlib =
                first[0] & 0x0f == 8 && (u16::from(first[0]) << 8 | u16::from(first[1])) % 31 == 0;
            let (inflate, scratch) = inflater(zlib);
            self.inflate = Some(inflate);
            self.scratch = scratch;
            return self.inflate_all(&first, out);
        }
        self.inflate_all(input, out)
    }

    fn inflate_all(
        &mut self,
        mut input: &[u8],
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<(), DecodeStop> {
        let Some(inflate) = self.inflate.as_mut() else {
            return Ok(());
        };
        self.data_in += input.len() as u64;
        if self.scratch.len() < SCRATCH {
            self.scratch.resize(SCRATCH, 0);
        }
        loop {
            let before_in = inflate.total_in();
            let before_out = inflate.total_out();
            let status = inflate
                .decompress(input, &mut self.scratch, FlushDecompress::Sync)
                .map_err(|e| {
                    self.stage = Stage::Stopped;
                    DecodeStop::Invalid(format!("invalid {} data ({e})", self.encoding.name()))
                })?;
            let used = (inflate.total_in() - before_in) as usize;
            let produced = (inflate.total_out() - before_out) as usize;
            input = &input[used.min(input.len())..];
            if produced > 0 {
                let l = &self.limits;
                // Nothing past the limit comes out: it stops exactly there.
                let room = l.max_decoded.saturating_sub(self.total_out);
                let give = (produced as u64).min(room) as usize;
                self.total_out += give as u64;
                out(&self.scratch[..give]);
                if give < produced {
                    self.stage = Stage::Stopped;
                    return Err(DecodeStop::Limit(format!(
                        "decoded more than {} bytes",
                        l.max_decoded
                    )));
                }
                if self.total_out > l.ratio_after
                    && self.total_out > self.total_in.saturating_mul(l.max_ratio)
                {
                    self.stage = Stage::Stopped;
                    return Err(DecodeStop::Limit(format!(
                        "decoded {} bytes from {} compressed: more than {}x",
                        self.total_out, self.total_in, l.max_ratio
                    )));
                }
            }
            if status == Status::StreamEnd {
                self.stage = Stage::Done;
                self.unused_at_end = input.len();
                return Ok(());
            }
            if used == 0 && produced == 0 {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use std::io::Write;

    fn decode(enc: Encoding, data: &[u8], piece: usize) -> (Vec<u8>, Result<(), DecodeStop>) {
        let mut d = ContentDecoder::new(enc, DecodeLimits::default());
        let mut out = Vec::new();
        for chunk in data.chunks(piece.max(1)) {
            if let Err(e) = d.feed(chunk, &mut |b| out.extend_from_slice(b)) {
                return (out, Err(e));
            }
        }
        (out, Ok(()))
    }

    #[test]
    fn gzip_decodes_in_any_pieces() {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(b"hello, hello, hello world").unwrap();
        let gz = e.finish().unwrap();
        for piece in [1, 3, 7, 1000] {
            assert_eq!(
                decode(Encoding::Gzip, &gz, piece).0,
                b"hello, hello, hello world"
            );
        }
    }

    #[test]
    fn deflate_is_zlib_or_raw() {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(b"zlib wrapped").unwrap();
        assert_eq!(
            decode(Encoding::Deflate, &z.finish().unwrap(), 1).0,
            b"zlib wrapped"
        );
        let mut r = DeflateEncoder::new(Vec::new(), Compression::default());
        r.write_all(b"raw deflate").unwrap();
        assert_eq!(
            decode(Encoding::Deflate, &r.finish().unwrap(), 2).0,
            b"raw deflate"
        );
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..200 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = e.finish().unwrap();
        let (out, result) = decode(Encoding::Gzip, &bomb, 4096);
        assert!(matches!(result, Err(DecodeStop::Limit(_))), "{result:?}");
        assert!(out.len() < (70 << 20));
    }

    #[test]
    fn the_size_limit_is_exact() {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(&[b'a'; 5000]).unwrap();
        let gz = e.finish().unwrap();
        let limits = DecodeLimits {
            max_decoded: 1000,
            ..DecodeLimits::default()
        };
        for piece in [1, 7, 5000] {
            let mut d = ContentDecoder::new(Encoding::Gzip, limits);
            let mut out = Vec::new();
            let mut stop = Ok(());
            for chunk in gz.chunks(piece) {
                stop = stop.and(d.feed(chunk, &mut |b| out.extend_from_slice(b)));
            }
            assert!(matches!(stop, Err(DecodeStop::Limit(_))), "{stop:?}");
            assert_eq!(out.len(), 1000);
            assert_eq!(d.total_out(), 1000);
        }
    }

    #[test]
    fn garbage_is_invalid_not_a_panic() {
        assert!(decode(
            Encoding::Gzip,
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage!!",
            4
        )
        .1
        .is_err());
        assert!(decode(Encoding::Gzip, b"not gzip at all", 4).1.is_err());
    }

    #[test]
    fn sync_flushed_blocks_come_out_on_arrival() {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(b"data: one\n\n").unwrap();
        e.flush().unwrap();
        let first = e.get_ref().len();
        e.write_all(b"data: two\n\n").unwrap();
        let gz = e.finish().unwrap();
        let mut d = ContentDecoder::new(Encoding::Gzip, DecodeLimits::default());
        let mut out = Vec::new();
        d.feed(&gz[..first], &mut |b| out.extend_from_slice(b))
            .unwrap();
        assert_eq!(out, b"data: one\n\n");
    }

    #[test]
    fn encodings_are_read_from_headers_and_magic() {
        assert_eq!(Encoding::from_header("gzip"), Encoding::Gzip);
        assert_eq!(Encoding::from_header("br"), Encoding::Brotli);
        assert_eq!(Encoding::sniff(&[0x1f, 0x8b, 8]), Some(Encoding::Gzip));
        assert_eq!(
            Encoding::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Some(Encoding::Zstd)
        );
    }

    /// What decoding gave: the result, the counts, whether the stream
    /// ended, and the decoded bytes handed out.
    type Outcome = (Result<(), DecodeStop>, u64, u64, bool, Vec<u8>);

    fn outcome(mut d: ContentDecoder, body: &[u8], piece: usize) -> Outcome {
        let mut out = Vec::new();
        let mut result = Ok(());
        for chunk in body.chunks(piece.max(1)) {
            result = result.and(d.feed(chunk, &mut |b| out.extend_from_slice(b)));
        }
        result = result.and(d.end(&mut |b| out.extend_from_slice(b)));
        (result, d.total_in(), d.total_out(), d.finished(), out)
    }

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::new(5));
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_remembered_stream_gives_what_inflating_gives_cut_in_any_pieces() {
        let page: Vec<u8> = (0..3000u32)
            .flat_map(|i| format!("<li>item {}</li>\n", i % 97).into_bytes())
            .collect();
        let a = gzip(&page);
        // The same page but its last line: a stream that shares a long
        // prefix with `a` and parts near the end.
        let mut other = page.clone();
        other.extend_from_slice(b"<li>one more</li>\n");
        let b = gzip(&other);
        let mut corrupt = a.clone();
        let middle = corrupt.len() / 2;
        corrupt[middle] ^= 0x55;
        let mut trailing = a.clone();
        trailing.extend_from_slice(b"junk after the gzip member");
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(&page).unwrap();
        let zlib = zlib.finish().unwrap();
        let bodies: [(&str, Encoding, Vec<u8>); 8] = [
            ("a", Encoding::Gzip, a.clone()),
            ("b", Encoding::Gzip, b.clone()),
            ("a cut short", Encoding::Gzip, a[..a.len() - 100].to_vec()),
            ("a corrupted", Encoding::Gzip, corrupt),
            ("a and more", Encoding::Gzip, trailing),
            ("a as deflate", Encoding::Deflate, a.clone()),
            ("zlib", Encoding::Deflate, zlib.clone()),
            ("a prefix of b", Encoding::Gzip, b[..b.len() / 2].to_vec()),
        ];
        let limits = DecodeLimits {
            body_kept: 0,
            ..DecodeLimits::default()
        };
        for (name, encoding, body) in &bodies {
            for piece in [1, 2, 3, 7, 100, 1460, body.len()] {
                // Twice with the stream possibly remembered from before:
                // the first may record it, the second may follow it.
                for round in 0..2 {
                    let inflated = outcome(ContentDecoder::new(*encoding, limits), body, piece);
                    let remembered =
                        outcome(ContentDecoder::remembering(*encoding, limits), body, piece);
                    assert_eq!(
                        remembered.0, inflated.0,
                        "{name}, pieces of {piece}, round {round}"
                    );
                    assert_eq!(
                        (remembered.1, remembered.2, remembered.3),
                        (inflated.1, inflated.2, inflated.3),
                        "{name}, pieces of {piece}, round {round}"
                    );
                }
            }
        }
        // A stream seen before is not inflated again: no decoded bytes.
        for (encoding, body, text) in [
            (Encoding::Gzip, &a, &page),
            (Encoding::Gzip, &b, &other),
            (Encoding::Deflate, &zlib, &page),
        ] {
            let (result, _, decoded, finished, out) =
                outcome(ContentDecoder::remembering(encoding, limits), body, 1460);
            assert_eq!(
                (result, decoded, finished),
                (Ok(()), text.len() as u64, true)
            );
            assert!(out.is_empty(), "inflated again");
        }
    }

    #[test]
    fn a_remembered_stream_is_not_trusted_under_tighter_limits() {
        let a = gzip(&[b'x'; 50_000]);
        let loose = DecodeLimits {
            body_kept: 0,
            ..DecodeLimits::default()
        };
        let first = outcome(ContentDecoder::remembering(Encoding::Gzip, loose), &a, 1000);
        assert_eq!((first.0, first.2), (Ok(()), 50_000));
        for tight in [
            DecodeLimits {
                max_decoded: 10_000,
                ..loose
            },
            DecodeLimits {
                ratio_after: 1000,
                max_ratio: 10,
                ..loose
            },
        ] {
            let inflated = outcome(ContentDecoder::new(Encoding::Gzip, tight), &a, 1000);
            let remembered = outcome(ContentDecoder::remembering(Encoding::Gzip, tight), &a, 1000);
            assert!(matches!(inflated.0, Err(DecodeStop::Limit(_))));
            assert_eq!(remembered.0, inflated.0);
            assert_eq!(remembered.2, inflated.2);
        }
        // Nor is a stream that met a limit remembered.
        let tight = DecodeLimits {
            max_decoded: 10_000,
            ..loose
        };
        let big = gzip(&[b'y'; 50_000]);
        let stopped = outcome(
            ContentDecoder::remembering(Encoding::Gzip, tight),
            &big,
            1000,
        );
        assert!(matches!(stopped.0, Err(DecodeStop::Limit(_))));
        let again = outcome(
            ContentDecoder::remembering(Encoding::Gzip, loose),
            &big,
            1000,
        );
        assert_eq!(again.2, 50_000);
        assert!(
            !again.4.is_empty(),
            "a stream stopped by a limit was remembered"
        );
    }

    #[test]
    fn recording_gives_back_its_budget() {
        let a = gzip(&[b'z'; 20_000]);
        let limits = DecodeLimits {
            body_kept: 0,
            ..DecodeLimits::default()
        };
        let before = RECORDING.load(Ordering::Relaxed);
        let mut d = ContentDecoder::remembering(Encoding::Gzip, limits);
        d.feed(&a[..a.len() / 2], &mut |_| {}).unwrap();
        assert!(RECORDING.load(Ordering::Relaxed) >= before + a.len() / 2);
        drop(d);
        // Other tests record at the same time: wait for them to settle.
        for _ in 0..100 {
            if RECORDING.load(Ordering::Relaxed) <= before {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("a dropped decoder kept its recording budget");
    }
}
