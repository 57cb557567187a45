//! Content encodings: gzip and deflate decoded with flate2, brotli and zstd
//! recognised, all bounded against decompression bombs.
//!
//! Decoding is incremental: compressed bytes are fed as they arrive and the
//! decoded bytes come out as soon as the compressor's flushes allow, which
//! is what tells whether an event stream was readable on arrival.

use flate2::{Decompress, FlushDecompress, Status};

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
        let last = value
            .rsplit(',')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match last.as_str() {
            "" | "identity" => Encoding::Identity,
            "gzip" | "x-gzip" => Encoding::Gzip,
            "deflate" => Encoding::Deflate,
            "br" => Encoding::Brotli,
            "zstd" => Encoding::Zstd,
            _ => Encoding::Other,
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
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_decoded: 64 << 20,
            max_ratio: 1000,
            ratio_after: 1 << 20,
            body_kept: super::http::MAX_BODY_KEPT,
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
}
