//! WebSocket (RFC 6455) after an HTTP upgrade: frame headers parsed (every
//! opcode, the reserved ones too), payloads unmasked as they arrive,
//! fragmented messages put together, close codes read, and
//! permessage-deflate (RFC 7692) inflated with the negotiated context
//! takeover, within the [`DecodeLimits`].

use flate2::{Decompress, FlushDecompress};

use super::compression::DecodeLimits;
use super::{AppEvent, At};
use crate::tracking::Direction;

/// Payload bytes kept per frame.
pub const MAX_FRAME_KEPT: usize = 64 << 10;
/// Decoded bytes kept per message.
pub const MAX_MESSAGE_KEPT: usize = 1 << 20;
/// A frame header is at most 14 bytes.
const MAX_HEADER: usize = 14;

/// A frame header as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    fin: bool,
    rsv1: bool,
    rsv2: bool,
    rsv3: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
}

/// Reads the frame header at the start of `buf`: the header, the payload
/// length and the header's length, or `None` while bytes are missing.
fn parse_header(buf: &[u8]) -> Option<(Header, u64, usize)> {
    let (b0, b1) = (*buf.first()?, *buf.get(1)?);
    let (len, mut used) = match b1 & 0x7f {
        126 => {
            let b = buf.get(2..4)?;
            (u64::from(u16::from_be_bytes([b[0], b[1]])), 4)
        }
        127 => {
            let b = buf.get(2..10)?;
            let mut n = [0u8; 8];
            n.copy_from_slice(b);
            (u64::from_be_bytes(n), 10)
        }
        n => (u64::from(n), 2),
    };
    let mask = if b1 & 0x80 != 0 {
        let m = buf.get(used..used + 4)?;
        used += 4;
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    let header = Header {
        fin: b0 & 0x80 != 0,
        rsv1: b0 & 0x40 != 0,
        rsv2: b0 & 0x20 != 0,
        rsv3: b0 & 0x10 != 0,
        opcode: b0 & 0x0f,
        mask,
    };
    Some((header, len, used))
}

/// The opcode's name: `continuation`, `text`, `binary`, `close`, `ping`,
/// `pong`, or `reserved`.
pub fn opcode_name(opcode: u8) -> &'static str {
    match opcode {
        0 => "continuation",
        1 => "text",
        2 => "binary",
        8 => "close",
        9 => "ping",
        10 => "pong",
        _ => "reserved",
    }
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsFrame {
    /// Connection number.
    pub conn: u64,
    /// Direction.
    pub dir: Direction,
    /// Index among this direction's frames, from 0.
    pub index: u64,
    /// The FIN bit: the last frame of its message.
    pub fin: bool,
    /// RSV1 (set on the first frame of a permessage-deflate compressed message).
    pub rsv1: bool,
    /// RSV2.
    pub rsv2: bool,
    /// RSV3.
    pub rsv3: bool,
    /// The opcode (0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong).
    pub opcode: u8,
    /// The masking key, if the frame is masked (client to server frames must be).
    pub mask: Option<[u8; 4]>,
    /// Payload length from the header.
    pub payload_len: u64,
    /// The unmasked payload, at most [`MAX_FRAME_KEPT`] bytes (captured bytes only).
    pub payload: Vec<u8>,
    /// Payload bytes the capture does not hold.
    pub missing: u64,
    /// For a close frame: the status code.
    pub close_code: Option<u16>,
    /// For a close frame: the reason.
    pub close_reason: Option<String>,
    /// First byte of the frame.
    pub first: At,
    /// Last byte of the frame.
    pub last: At,
}

/// One message: the frames of a data message put together (and inflated),
/// or a control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsMessage {
    /// Connection number.
    pub conn: u64,
    /// Direction.
    pub dir: Direction,
    /// Index among this direction's messages, from 0.
    pub index: u64,
    /// Opcode of the first frame (1 text, 2 binary, 8 close, 9 ping, 10 pong).
    pub opcode: u8,
    /// Frames it took.
    pub frames: u64,
    /// Compressed with permessage-deflate.
    pub compressed: bool,
    /// Payload bytes on the wire (all frames).
    pub wire_len: u64,
    /// Payload bytes after inflating.
    pub len: u64,
    /// The payload (inflated), at most [`MAX_MESSAGE_KEPT`] bytes.
    pub data: Vec<u8>,
    /// For a text message: the payload is valid UTF-8.
    pub valid_utf8: bool,
    /// For a close message: the status code.
    pub close_code: Option<u16>,
    /// For a close message: the reason.
    pub close_reason: Option<String>,
    /// What went wrong: `bytes_missing`, `decoding_failed`, `decoding_limit`,
    /// `invalid_utf8`, `unexpected_continuation`, `interrupted`, `reserved_opcode`,
    /// `invalid_length: ...`.
    pub anomalies: Vec<String>,
    /// First byte.
    pub first: At,
    /// Last byte.
    pub last: At,
}

impl WsMessage {
    /// The payload as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// The permessage-deflate parameters both ends agreed on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deflate {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
}

impl Deflate {
    /// Reads the `Sec-WebSocket-Extensions` header of the 101 response.
    pub fn negotiated(extensions: Option<&str>) -> Option<Deflate> {
        let ext = extensions?;
        ext.split(',').find_map(|offer| {
            let mut params = offer.split(';').map(str::trim);
            if !params.next()?.eq_ignore_ascii_case("permessage-deflate") {
                return None;
            }
            let mut d = Deflate::default();
            for p in params {
                let name = p.split('=').next().unwrap_or("").trim();
                if name.eq_ignore_ascii_case("server_no_context_takeover") {
                    d.server_no_context_takeover = true;
                } else if name.eq_ignore_ascii_case("client_no_context_takeover") {
                    d.client_no_context_takeover = true;
                }
            }
            Some(d)
        })
    }
}

enum Stage {
    Header,
    Payload {
        remaining: u64,
    },
    /// Lost: a gap or an unreadable header.
    Lost,
}

struct Assembling {
    opcode: u8,
    frames: u64,
    compressed: bool,
    wire_len: u64,
    len: u64,
    data: Vec<u8>,
    anomalies: Vec<String>,
    first: At,
}

/// An inflater for one direction's compressed messages.
struct Inflater {
    state: Decompress,
    /// Reset after each message (no context takeover).
    reset_after_message: bool,
    /// A lost or undecodable message broke the shared context.
    broken: bool,
    scratch: Vec<u8>,
    limits: DecodeLimits,
}

impl Inflater {
    /// Inflates `input` into `m`.
    fn feed(&mut self, mut input: &[u8], m: &mut Assembling) {
        if self.broken {
            // Say why this message has no text, unless it already does.
            if !m
                .anomalies
                .iter()
                .any(|a| a.starts_with("decoding_") || a == "bytes_missing")
            {
                m.anomalies.push(
                    "decoding_failed: an earlier message could not be inflated, and this one depends on its compression context".into(),
                );
            }
            return;
        }
        if self.scratch.len() < 32 << 10 {
            self.scratch.resize(32 << 10, 0);
        }
        loop {
            let (in0, out0) = (self.state.total_in(), self.state.total_out());
            if let Err(e) = self
                .state
                .decompress(input, &mut self.scratch, FlushDecompress::Sync)
            {
                self.broken = true;
                m.anomalies.push(format!("decoding_failed: {e}"));
                return;
            }
            let used = (self.state.total_in() - in0) as usize;
            let produced = (self.state.total_out() - out0) as usize;
            input = &input[used.min(input.len())..];
            let l = &self.limits;
            // Nothing past the limit comes out: it stops exactly there.
            let give = (produced as u64).min(l.max_decoded.saturating_sub(m.len)) as usize;
            keep(m, &self.scratch[..give]);
            if give < produced {
                self.broken = true;
                m.anomalies.push(format!(
                    "decoding_limit: inflated more than {} bytes",
                    l.max_decoded
                ));
                return;
            }
            if m.len > l.ratio_after && m.len > m.wire_len.saturating_mul(l.max_ratio) {
                self.broken = true;
                m.anomalies.push(format!(
                    "decoding_limit: inflated {} bytes from {} compressed: more than {}x",
                    m.len, m.wire_len, l.max_ratio
                ));
                return;
            }
            if used == 0 && produced == 0 {
                return;
            }
        }
    }
}

fn keep(m: &mut Assembling, bytes: &[u8]) {
    m.len += bytes.len() as u64;
    let room = MAX_MESSAGE_KEPT.saturating_sub(m.data.len());
    m.data.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

struct Half {
    conn: u64,
    dir: Direction,
    stage: Stage,
    header: Vec<u8>,
    frame_start: Option<At>,
    frame: Option<WsFrame>,
    /// Payload bytes of the current frame seen so far (for the mask phase).
    frame_pos: u64,
    frames: u64,
    messages: u64,
    message: Option<Assembling>,
    inflater: Option<Inflater>,
    unmasked: Vec<u8>,
}

/// WebSocket on one connection.
pub struct WebSocketConn {
    halves: [Half; 2],
}

impl WebSocketConn {
    /// WebSocket on connection `conn`, with permessage-deflate if negotiated.
    pub fn new(conn: u64, deflate: Option<Deflate>) -> Self {
        Self::with_limits(conn, deflate, DecodeLimits::default())
    }

    /// The same, with bounds on what a compressed message may inflate to.
    pub fn with_limits(conn: u64, deflate: Option<Deflate>, limits: DecodeLimits) -> Self {
        let half = |dir: Direction| Half {
            conn,
            dir,
            stage: Stage::Header,
            header: Vec::with_capacity(MAX_HEADER),
            frame_start: None,
            frame: None,
            frame_pos: 0,
            frames: 0,
            messages: 0,
            message: None,
            inflater: deflate.map(|d| Inflater {
                state: Decompress::new(false),
                reset_after_message: match dir {
                    Direction::ClientToServer => d.client_no_context_takeover,
                    Direction::ServerToClient => d.server_no_context_takeover,
                },
                broken: false,
                scratch: Vec::new(),
                limits,
            }),
            unmasked: Vec::new(),
        };
        WebSocketConn {
            halves: [
                half(Direction::ClientToServer),
                half(Direction::ServerToClient),
            ],
        }
    }

    /// Bytes of one direction, in order.
    pub fn data(&mut self, dir: Direction, mut bytes: &[u8], at: At, out: &mut Vec<AppEvent>) {
        let h = &mut self.halves[dir.index()];
        while !bytes.is_empty() {
            match h.stage {
                Stage::Lost => return,
                Stage::Header => {
                    if h.header.is_empty() {
                        h.frame_start = Some(at);
                    }
                    let take = bytes.len().min(MAX_HEADER - h.header.len());
                    let before = h.header.len();
                    h.header.extend_from_slice(&bytes[..take]);
                    match parse_header(&h.header) {
                        Some((header, len, header_len)) => {
                            let used = header_len.saturating_sub(before).min(take);
                            bytes = &bytes[used..];
                            h.header.clear();
                            h.start_frame(&header, len, at, out);
                            if len == 0 {
                                h.end_frame(at, out);
                            }
                        }
                        None => bytes = &bytes[take..],
                    }
                }
                Stage::Payload { remaining } => {
                    let take = remaining.min(bytes.len() as u64) as usize;
                    h.payload(&bytes[..take]);
                    bytes = &bytes[take..];
                    let left = remaining - take as u64;
                    h.stage = Stage::Payload { remaining: left };
                    if left == 0 {
                        h.end_frame(at, out);
                    }
                }
            }
        }
    }

    /// Bytes the capture does not hold. Inside a payload the frame
    /// boundaries still hold; anywhere else this direction is lost.
    pub fn gap(&mut self, dir: Direction, len: u64, at: At, out: &mut Vec<AppEvent>) {
        let h = &mut self.halves[dir.index()];
        if let (Stage::Payload { remaining }, Some(frame)) = (&h.stage, h.frame.as_mut()) {
            if len <= *remaining {
                frame.missing += len;
                h.frame_pos += len;
                if let Some(m) = h.message.as_mut() {
                    m.wire_len += len;
                    if !m.anomalies.iter().any(|a| a == "bytes_missing") {
                        m.anomalies.push("bytes_missing".into());
                    }
                    if m.compressed {
                        if let Some(inf) = h.inflater.as_mut() {
                            inf.broken = true;
                        }
                    }
                }
                let left = remaining - len;
                h.stage = Stage::Payload { remaining: left };
                if left == 0 {
                    h.end_frame(at, out);
                }
                return;
            }
        }
        h.stage = Stage::Lost;
    }

    /// The direction ended: a message cut short is reported as it is.
    pub fn end(&mut self, dir: Direction, at: At, out: &mut Vec<AppEvent>) {
        let h = &mut self.halves[dir.index()];
        if let Some(mut frame) = h.frame.take() {
            frame.last = at;
            out.push(AppEvent::WsFrame(Box::new(frame)));
        }
        if let Some(mut m) = h.message.take() {
            m.anomalies.push("interrupted".into());
            let message = h.finish_message(m, at);
            out.push(AppEvent::WsMessage(Box::new(message)));
        }
        h.stage = Stage::Lost;
    }
}

impl Half {
    fn start_frame(&mut self, header: &Header, len: u64, at: At, out: &mut Vec<AppEvent>) {
        let opcode = header.opcode;
        let first = self.frame_start.take().unwrap_or(at);
        self.frame = Some(WsFrame {
            conn: self.conn,
            dir: self.dir,
            index: self.frames,
            fin: header.fin,
            rsv1: header.rsv1,
            rsv2: header.rsv2,
            rsv3: header.rsv3,
            opcode,
            mask: header.mask,
            payload_len: len,
            payload: Vec::new(),
            missing: 0,
            close_code: None,
            close_reason: None,
            first,
            last: at,
        });
        self.frames += 1;
        self.frame_pos = 0;
        self.stage = Stage::Payload { remaining: len };
        match opcode {
            0 if self.message.is_none() => {
                self.message = Some(Assembling {
                    opcode: 0,
                    frames: 0,
                    compressed: false,
                    wire_len: 0,
                    len: 0,
                    data: Vec::new(),
                    anomalies: vec!["unexpected_continuation".into()],
                    first,
                });
            }
            1..=7 => {
                if let Some(mut old) = self.message.take() {
                    old.anomalies.push("interrupted".into());
                    let message = self.finish_message(old, at);
                    out.push(AppEvent::WsMessage(Box::new(message)));
                }
                let mut anomalies = Vec::new();
                if opcode > 2 {
                    anomalies.push("reserved_opcode".into());
                }
                self.message = Some(Assembling {
                    opcode,
                    frames: 0,
                    compressed: header.rsv1 && self.inflater.is_some(),
                    wire_len: 0,
                    len: 0,
                    data: Vec::new(),
                    anomalies,
                    first,
                });
            }
            _ => {}
        }
        if len >> 63 != 0 {
            // RFC 6455 5.2: the most significant bit of a 64-bit length must
            // be 0. The frame is read on as claimed (its bytes are never
            // held), but the reader should know the length is a lie.
            if let Some(m) = self.message.as_mut() {
                m.anomalies.push(format!(
                    "invalid_length: frame {} claims {len} bytes (the top bit must be 0)",
                    self.frames - 1
                ));
            }
        }
    }

    fn is_control(&self) -> bool {
        self.frame.as_ref().is_some_and(|f| f.opcode >= 8)
    }

    fn payload(&mut self, bytes: &[u8]) {
        let Some(frame) = self.frame.as_mut() else {
            return;
        };
        self.unmasked.clear();
        self.unmasked.extend_from_slice(bytes);
        if let Some(key) = frame.mask {
            for (i, b) in self.unmasked.iter_mut().enumerate() {
                *b ^= key[((self.frame_pos + i as u64) % 4) as usize];
            }
        }
        self.frame_pos += bytes.len() as u64;
        let room = MAX_FRAME_KEPT.saturating_sub(frame.payload.len());
        frame
            .payload
            .extend_from_slice(&self.unmasked[..bytes.len().min(room)]);
        if frame.opcode >= 8 {
            return;
        }
        if let Some(m) = self.message.as_mut() {
            m.wire_len += bytes.len() as u64;
            match (m.compressed, self.inflater.as_mut()) {
                (true, Some(inf)) => inf.feed(&self.unmasked, m),
                _ => keep(m, &self.unmasked),
            }
        }
    }

    fn end_frame(&mut self, at: At, out: &mut Vec<AppEvent>) {
        self.stage = Stage::Header;
        let control = self.is_control();
        let Some(mut frame) = self.frame.take() else {
            return;
        };
        frame.last = at;
        if frame.opcode == 8 && frame.payload.len() >= 2 {
            frame.close_code = Some(u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
            frame.close_reason = Some(String::from_utf8_lossy(&frame.payload[2..]).into_owned());
        }
        if control {
            out.push(AppEvent::WsMessage(Box::new(WsMessage {
                conn: frame.conn,
                dir: frame.dir,
                index: self.messages,
                opcode: frame.opcode,
                frames: 1,
                compressed: false,
                wire_len: frame.payload_len,
                len: frame.payload_len,
                data: frame.payload.clone(),
                valid_utf8: std::str::from_utf8(&frame.payload).is_ok(),
                close_code: frame.close_code,
                close_reason: frame.close_reason.clone(),
                anomalies: [
                    (frame.missing > 0).then_some("bytes_missing"),
                    (frame.opcode > 10).then_some("reserved_opcode"),
                ]
                .into_iter()
                .flatten()
                .map(String::from)
                .collect(),
                first: frame.first,
                last: at,
            })));
            self.messages += 1;
            out.insert(out.len() - 1, AppEvent::WsFrame(Box::new(frame)));
            return;
        }
        let fin = frame.fin;
        out.push(AppEvent::WsFrame(Box::new(frame)));
        if let Some(m) = self.message.as_mut() {
            m.frames += 1;
        }
        if fin {
            if let Some(m) = self.message.take() {
                let message = self.finish_message(m, at);
                out.push(AppEvent::WsMessage(Box::new(message)));
            }
        }
    }

    fn finish_message(&mut self, mut m: Assembling, at: At) -> WsMessage {
        if m.compressed {
            if let Some(inf) = self.inflater.as_mut() {
                // RFC 7692 7.2.2: the sender removed this empty stored block's tail.
                inf.feed(&[0x00, 0x00, 0xff, 0xff], &mut m);
                if inf.reset_after_message {
                    inf.state.reset(false);
                    inf.broken = false;
                }
            }
        }
        let mut valid_utf8 = true;
        if m.opcode == 1 {
            if let Err(e) = std::str::from_utf8(&m.data) {
                // Bytes cut at the keep limit may split a character: that is not invalid.
                let cut = m.len > m.data.len() as u64 && e.error_len().is_none();
                if !cut {
                    valid_utf8 = false;
                    m.anomalies.push("invalid_utf8".into());
                }
            }
        }
        let index = self.messages;
        self.messages += 1;
        WsMessage {
            conn: self.conn,
            dir: self.dir,
            index,
            opcode: m.opcode,
            frames: m.frames,
            compressed: m.compressed,
            wire_len: m.wire_len,
            len: m.len,
            data: m.data,
            valid_utf8,
            close_code: None,
            close_reason: None,
            anomalies: m.anomalies,
            first: m.first,
            last: at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;

    const S2C: Direction = Direction::ServerToClient;

    fn at(frame: u64) -> At {
        At {
            frame,
            time: Timestamp(frame as i64),
        }
    }

    /// An unmasked frame.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n <= 0xffff => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// A permessage-deflate payload (RFC 7692: sync flush, tail removed).
    fn deflated(text: &[u8]) -> Vec<u8> {
        let mut c = flate2::Compress::new(flate2::Compression::default(), false);
        let mut out = Vec::with_capacity(text.len() + 64);
        c.compress_vec(text, &mut out, flate2::FlushCompress::Sync)
            .unwrap();
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    }

    fn messages(out: &[AppEvent]) -> Vec<&WsMessage> {
        out.iter()
            .filter_map(|e| match e {
                AppEvent::WsMessage(m) => Some(&**m),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_reserved_opcode_is_reported_and_the_stream_goes_on() {
        // tungstenite's header parser refused reserved opcodes, which lost
        // the rest of the direction.
        let mut ws = WebSocketConn::new(0, None);
        let mut out = Vec::new();
        let mut bytes = frame(0x83, b"x");
        bytes.extend(frame(0x8b, b"")); // a reserved control opcode
        bytes.extend(frame(0x81, b"hi"));
        ws.data(S2C, &bytes, at(1), &mut out);
        let m = messages(&out);
        assert_eq!(m.len(), 3, "{out:#?}");
        assert_eq!(
            (m[0].opcode, &m[0].anomalies[..]),
            (3, &["reserved_opcode".to_string()][..])
        );
        assert_eq!(
            (m[1].opcode, &m[1].anomalies[..]),
            (11, &["reserved_opcode".to_string()][..])
        );
        assert_eq!((m[2].opcode, m[2].text()), (1, "hi".to_string()));
    }

    #[test]
    fn a_header_in_pieces_is_read() {
        let payload = vec![b'a'; 300];
        let mut masked = vec![0x82, 0x80 | 126, 0x01, 0x2c, 1, 2, 3, 4];
        masked.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]),
        );
        let mut ws = WebSocketConn::new(0, None);
        let mut out = Vec::new();
        for (i, byte) in masked.chunks(1).enumerate() {
            ws.data(Direction::ClientToServer, byte, at(i as u64 + 1), &mut out);
        }
        let m = messages(&out);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].data, payload);
        assert_eq!(
            (m[0].first.frame, m[0].last.frame),
            (1, masked.len() as u64)
        );
    }

    #[test]
    fn a_message_after_a_lost_context_says_why_it_has_no_text() {
        // Context takeover: once one message cannot be inflated, the next
        // ones cannot be either, and they say so.
        let mut ws = WebSocketConn::new(0, Some(Deflate::default()));
        let mut out = Vec::new();
        ws.data(S2C, &frame(0xc1, b"\xff\xff\xff\xff"), at(1), &mut out);
        ws.data(S2C, &frame(0xc1, &deflated(b"hello")), at(2), &mut out);
        let m = messages(&out);
        assert_eq!(m.len(), 2);
        assert!(
            m[0].anomalies[0].starts_with("decoding_failed"),
            "{:?}",
            m[0].anomalies
        );
        assert!(m[1].anomalies[0].starts_with("decoding_failed: an earlier message"));
        // Without context takeover the next message is inflated afresh.
        let reset = Deflate {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
        };
        let mut ws = WebSocketConn::new(0, Some(reset));
        let mut out = Vec::new();
        ws.data(S2C, &frame(0xc1, b"\xff\xff\xff\xff"), at(1), &mut out);
        ws.data(S2C, &frame(0xc1, &deflated(b"hello")), at(2), &mut out);
        assert_eq!(messages(&out)[1].text(), "hello");
    }

    #[test]
    fn inflating_stops_exactly_at_the_size_limit() {
        let limits = DecodeLimits {
            max_decoded: 1000,
            ..DecodeLimits::default()
        };
        let mut ws = WebSocketConn::with_limits(0, Some(Deflate::default()), limits);
        let mut out = Vec::new();
        ws.data(S2C, &frame(0xc2, &deflated(&[7u8; 5000])), at(1), &mut out);
        let m = messages(&out);
        assert_eq!(m[0].len, 1000);
        assert!(
            m[0].anomalies[0].starts_with("decoding_limit"),
            "{:?}",
            m[0].anomalies
        );
    }
}
