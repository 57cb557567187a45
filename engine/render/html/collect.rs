//! What the report keeps as the events pass: every connection's summary
//! (all are listed), and for the connections drawn in full their packets,
//! payloads and decoded content, within the report's limits.

use std::collections::{BTreeMap, HashMap};
use std::io;

use super::payload::{payload, text_payload, Payload};
use super::tags::{tags, AppKinds, Tag};
use crate::dissect::websocket::opcode_name;
use crate::dissect::{AppEvent, HttpMessage, SseEvent, StartLine, WsMessage};
use crate::events::{Event, EventSink};
use crate::scripting::run::CaptureStats;
use crate::tracking::{
    ConnectionInfo, ConnectionSummary, Direction, Flag, PacketRecord, RunSummary,
};

/// How much of a capture the report draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportLimits {
    /// Connections drawn in full (chat, ladder, graph); the others are
    /// listed with their summary.
    pub full_connections: usize,
    /// Packets drawn per connection (chat bubbles and ladder arrows).
    pub max_packets: usize,
    /// Packets drawn across the capture: once reached, the connections that
    /// follow are summarised.
    pub total_packets: usize,
    /// Payload bytes kept across the capture; past it each packet keeps
    /// only what is shown unfolded.
    pub payload_budget: usize,
    /// Draw only this connection in full (the others are listed).
    pub only: Option<u64>,
}

impl Default for ReportLimits {
    fn default() -> Self {
        ReportLimits {
            full_connections: 100,
            max_packets: 1000,
            total_packets: 20_000,
            payload_budget: 16 << 20,
            only: None,
        }
    }
}

/// Payload bytes kept per packet while the budget lasts: a full-size
/// Ethernet segment, and then some for captures of offloaded segments.
const PAYLOAD_KEPT: usize = 8 << 10;
/// Decoded bytes kept per HTTP body, event or WebSocket message.
const DECODED_KEPT: usize = 16 << 10;
/// Points of the time-sequence graph kept per connection.
pub(crate) const TRACE_MAX: usize = 50_000;
/// Decoded items shown per packet (a burst of events can be long).
const DECODED_PER_FRAME: usize = 24;

/// One packet drawn in full.
pub(crate) struct Kept {
    pub record: PacketRecord<'static>,
    pub payload: Payload,
}

/// One point of the time-sequence graph: what a packet says about the
/// sequence space, the acknowledgements and the window.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TracePoint {
    /// Since the connection's first packet.
    pub t_ns: i64,
    pub dir: Direction,
    pub flags: u16,
    pub seq: u32,
    pub ack: u32,
    /// Sequence space taken (payload, plus one for SYN and FIN).
    pub span: u32,
    pub win: u64,
    pub retransmission: bool,
    /// SACK blocks, relative to the acknowledged side's first sequence number.
    pub sack: [(u32, u32); 4],
    pub sack_count: u8,
}

/// Decoded application content, ready to show.
pub(crate) enum Decoded {
    Http(Box<HttpView>),
    Sse(Box<SseView>),
    Ws(Box<WsView>),
    /// More items at this packet than are shown.
    More(u64),
}

/// An HTTP message.
pub(crate) struct HttpView {
    pub request: bool,
    pub index: u64,
    /// Request line or status line; empty when the bytes are not HTTP.
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    /// What the body is, in words: sizes, codings.
    pub body_note: Option<String>,
    pub body: Option<Payload>,
    /// When the bytes could not be read as HTTP: the bytes.
    pub raw_head: Option<Payload>,
    pub anomalies: Vec<String>,
    /// Answer to which request, and how fast.
    pub timing: Option<String>,
    pub complete: bool,
}

/// A server-sent event.
pub(crate) struct SseView {
    pub index: u64,
    pub event: String,
    pub id: Option<String>,
    pub data: Payload,
    pub note: Option<String>,
}

/// A WebSocket message.
pub(crate) struct WsView {
    pub kind: String,
    pub note: String,
    pub content: Option<Payload>,
    pub anomalies: Vec<String>,
}

/// A connection's summary as the list shows it: small, since every
/// connection of the capture keeps one.
pub(crate) struct Brief {
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub start_rel_ns: i64,
    pub duration_ns: i64,
    /// The tags, as [`Tag::bit`]s.
    pub tags: u32,
    pub handshake: &'static str,
    /// How it closed: an index in [`HtmlCollector`]'s words (the phrases
    /// repeat from one connection to the next).
    pub close: u32,
}

impl Brief {
    /// The tags, in [`Tag::ALL`] order.
    pub fn tags(&self) -> Vec<Tag> {
        Tag::ALL
            .into_iter()
            .filter(|t| self.tags & t.bit() != 0)
            .collect()
    }
}

/// One connection.
pub(crate) struct Conn {
    pub info: ConnectionInfo,
    pub full: bool,
    pub packets: Vec<Kept>,
    /// Packets not drawn (over the limits).
    pub dropped: u64,
    pub trace: Vec<TracePoint>,
    pub trace_dropped: u64,
    /// Decoded content by the frame it is shown on.
    pub decoded: BTreeMap<u64, Vec<Decoded>>,
    /// The chat view's one-line preview of the first decoded item of a
    /// frame, and how many more there are: the ladder writes it under the arrow.
    pub carried: BTreeMap<u64, (String, usize)>,
    pub app: AppKinds,
    pub brief: Option<Brief>,
    /// The whole summary, for the connections drawn in full (boxed: the
    /// others keep only a pointer's worth of room for it).
    pub summary: Option<Box<ConnectionSummary>>,
    /// Time of the first packet.
    first_ns: Option<i64>,
}

/// Collects what the HTML report shows, as the events pass.
pub struct HtmlCollector {
    limits: ReportLimits,
    pub(crate) conns: BTreeMap<u64, Conn>,
    pub(crate) stats: CaptureStats,
    pub(crate) run: Option<RunSummary>,
    /// Phrases the briefs share, by index.
    pub(crate) words: Vec<String>,
    word_ids: HashMap<String, u32>,
    full_count: usize,
    drawn: usize,
    budget_left: usize,
}

impl HtmlCollector {
    /// A collector that draws within `limits`.
    pub fn new(limits: ReportLimits) -> Self {
        HtmlCollector {
            limits,
            conns: BTreeMap::new(),
            stats: CaptureStats::default(),
            run: None,
            words: Vec::new(),
            word_ids: HashMap::new(),
            full_count: 0,
            drawn: 0,
            budget_left: limits.payload_budget,
        }
    }

    /// The limits it draws within.
    pub fn limits(&self) -> ReportLimits {
        self.limits
    }

    /// Connections seen.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Connections drawn in full.
    pub fn full_connections(&self) -> usize {
        self.conns.values().filter(|c| c.full).count()
    }

    /// Whether connection `conn` was seen.
    pub fn has(&self, conn: u64) -> bool {
        self.conns.contains_key(&conn)
    }

    /// Takes `want` bytes from the payload budget; what a packet may keep.
    fn take_budget(&mut self, want: usize) -> usize {
        // The unfolded part is always kept: the report shows it whatever
        // the budget; only the folded rest is rationed.
        let extra = want
            .saturating_sub(super::payload::FOLD)
            .min(self.budget_left);
        self.budget_left -= extra;
        want.min(super::payload::FOLD) + extra
    }

    fn opened(&mut self, info: &ConnectionInfo) {
        let full = match self.limits.only {
            Some(only) => only == info.conn,
            None => {
                self.full_count < self.limits.full_connections
                    && self.drawn < self.limits.total_packets
            }
        };
        if full {
            self.full_count += 1;
        }
        self.conns.insert(
            info.conn,
            Conn {
                info: *info,
                full,
                packets: Vec::new(),
                dropped: 0,
                trace: Vec::new(),
                trace_dropped: 0,
                decoded: BTreeMap::new(),
                carried: BTreeMap::new(),
                app: AppKinds::default(),
                brief: None,
                summary: None,
                first_ns: None,
            },
        );
    }

    fn packet(&mut self, p: &PacketRecord<'_>) {
        let room = self.drawn < self.limits.total_packets;
        let Some(c) = self.conns.get_mut(&p.conn) else {
            return;
        };
        if !c.full {
            return;
        }
        let first = *c.first_ns.get_or_insert(p.rel_time_ns);
        if c.trace.len() < TRACE_MAX {
            c.trace.push(trace_point(p, p.rel_time_ns - first));
        } else {
            c.trace_dropped += 1;
        }
        if c.packets.len() >= self.limits.max_packets || !room {
            c.dropped += 1;
            return;
        }
        let want = p.payload.len().min(PAYLOAD_KEPT);
        let keep = self.take_budget(want);
        let Some(c) = self.conns.get_mut(&p.conn) else {
            return;
        };
        let total = u64::from(p.len.unwrap_or(p.payload.len() as u32));
        c.packets.push(Kept {
            record: p.detached(),
            payload: payload(&p.payload[..keep], total),
        });
        self.drawn += 1;
    }

    fn app(&mut self, app: &AppEvent) {
        let Some(c) = self.conns.get_mut(&app.conn()) else {
            return;
        };
        match app {
            AppEvent::Http(_) | AppEvent::HttpHead(_) | AppEvent::HttpUnanswered(_) => {
                c.app.http = true
            }
            AppEvent::Sse(_) => c.app.event_stream = true,
            AppEvent::WsFrame(_) | AppEvent::WsMessage(_) => c.app.websocket = true,
        }
        if !c.full {
            return;
        }
        // Where the chat shows it: a message on the packet that brought its
        // first byte; an event or a WebSocket message where it became
        // readable. Heads and single frames are shown through their message.
        let (frame, view) = match app {
            AppEvent::Http(m) => (app.first_frame(), Decoded::Http(Box::new(http_view(m)))),
            AppEvent::Sse(e) => (app.frame(), Decoded::Sse(Box::new(sse_view(e)))),
            AppEvent::WsMessage(m) => (app.frame(), Decoded::Ws(Box::new(ws_view(m)))),
            AppEvent::HttpHead(_) | AppEvent::HttpUnanswered(_) | AppEvent::WsFrame(_) => return,
        };
        if let Some(text) = crate::render::app::preview(app) {
            c.carried
                .entry(frame)
                .and_modify(|(_, more)| *more += 1)
                .or_insert((text, 0));
        }
        let list = c.decoded.entry(frame).or_default();
        match list.len() {
            n if n < DECODED_PER_FRAME => list.push(view),
            n if n == DECODED_PER_FRAME => list.push(Decoded::More(1)),
            _ => {
                if let Some(Decoded::More(n)) = list.last_mut() {
                    *n += 1;
                }
            }
        }
    }

    fn word(&mut self, w: String) -> u32 {
        if let Some(id) = self.word_ids.get(&w) {
            return *id;
        }
        let id = self.words.len() as u32;
        self.words.push(w.clone());
        self.word_ids.insert(w, id);
        id
    }

    fn closed(&mut self, s: &ConnectionSummary) {
        let close = self.word(super::view::close_words(s));
        let Some(c) = self.conns.get_mut(&s.conn) else {
            return;
        };
        c.brief = Some(Brief {
            packets: s.packets,
            bytes: s.bytes,
            start_rel_ns: s.start_rel_ns,
            duration_ns: s.duration_ns(),
            tags: tags(s, c.app).iter().fold(0, |bits, t| bits | t.bit()),
            handshake: super::view::handshake_words(s.handshake),
            close,
        });
        if c.full {
            c.summary = Some(Box::new(s.clone()));
        }
    }
}

fn trace_point(p: &PacketRecord<'_>, t_ns: i64) -> TracePoint {
    use crate::decode::flags::{FIN, SYN};
    let len = p.len.unwrap_or(p.payload.len() as u32);
    let span = len + u32::from(p.flags & SYN != 0) + u32::from(p.flags & FIN != 0);
    // SACK edges are raw numbers of the other side's sequence space; the
    // ack field relative and raw gives that side's base.
    let base = p.ack_raw.wrapping_sub(p.ack);
    let mut sack = [(0, 0); 4];
    let count = p.options.sack_count.min(4);
    for (i, (l, r)) in p.options.sack.iter().take(count as usize).enumerate() {
        sack[i] = (l.wrapping_sub(base), r.wrapping_sub(base));
    }
    TracePoint {
        t_ns,
        dir: p.dir,
        flags: p.flags,
        seq: p.seq,
        ack: p.ack,
        span,
        win: p.win,
        retransmission: p.analysis.has(Flag::Retransmission)
            || p.analysis.has(Flag::FastRetransmission)
            || p.analysis.has(Flag::SpuriousRetransmission),
        sack,
        sack_count: count,
    }
}

fn kept(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(DECODED_KEPT)]
}

fn http_view(m: &HttpMessage) -> HttpView {
    let request = matches!(m.start, StartLine::Request { .. });
    let readable = !m.version.is_empty();
    let is_sse = m.is_event_stream();
    let body_note = (m.body_wire_len > 0 || !m.body.is_empty()).then(|| {
        let mut codings = Vec::new();
        if let Some(t) = &m.transfer_encoding {
            codings.push(t.as_str());
        }
        if let Some(c) = &m.content_encoding {
            codings.push(c.as_str());
        }
        let coding = if codings.is_empty() {
            String::new()
        } else {
            format!(" ({})", codings.join(", "))
        };
        let decoded = if m.body_decoded_len != m.body_wire_len {
            format!(
                ", {} decoded",
                super::payload::bytes_label(m.body_decoded_len)
            )
        } else {
            String::new()
        };
        let sse = if is_sse {
            ": an event stream, its events are shown where they arrive"
        } else {
            ""
        };
        format!(
            "body: {} on the wire{coding}{decoded}{sse}",
            super::payload::bytes_label(m.body_wire_len)
        )
    });
    let body = (!is_sse && !m.body.is_empty())
        .then(|| payload(kept(&m.body), m.body_decoded_len.max(m.body.len() as u64)));
    let timing = match (m.answers, m.ttfb_ns) {
        (Some(a), Some(t)) => Some(format!(
            "answers request {a}; its first byte {} after the request",
            super::view::duration(t)
        )),
        (Some(a), None) => Some(format!("answers request {a}")),
        _ => None,
    };
    HttpView {
        request,
        index: m.index,
        start_line: if readable {
            m.start_line()
        } else {
            String::new()
        },
        headers: m
            .headers()
            .iter()
            .map(|h| (h.name.to_string(), h.value.clone()))
            .collect(),
        body_note,
        body,
        raw_head: (!readable).then(|| payload(kept(&m.raw_head), m.raw_head.len() as u64)),
        anomalies: m
            .anomalies
            .iter()
            .map(|a| format!("{}: {}", a.name, a.detail))
            .collect(),
        timing,
        complete: m.complete,
    }
}

fn sse_view(e: &SseEvent) -> SseView {
    let note = (e.compressed && !e.decodable_on_arrival).then(|| {
        format!(
            "its bytes were on the wire since frame {}: held back {} by the compressor",
            e.arrived.frame,
            super::view::duration(e.held_back_ns)
        )
    });
    let data = super::payload::cut(&e.data, DECODED_KEPT);
    SseView {
        index: e.index,
        event: e.event.clone(),
        id: e.id.clone(),
        data: text_payload(data, e.data.len() as u64),
        note,
    }
}

fn ws_view(m: &WsMessage) -> WsView {
    let mut note = super::payload::bytes_label(m.len);
    if m.compressed {
        note.push_str(&format!(
            ", deflated from {}",
            super::payload::bytes_label(m.wire_len)
        ));
    }
    if m.frames > 1 {
        note.push_str(&format!(", {} frames", m.frames));
    }
    let content = match m.opcode {
        8 => m.close_code.map(|code| {
            let reason = m.close_reason.as_deref().unwrap_or("");
            let text = format!("code {code}, reason \"{reason}\"");
            text_payload(&text, text.len() as u64)
        }),
        _ if m.data.is_empty() => None,
        _ => Some(payload(kept(&m.data), m.len.max(m.data.len() as u64))),
    };
    WsView {
        kind: opcode_name(m.opcode).to_string(),
        note,
        content,
        anomalies: m.anomalies.clone(),
    }
}

impl EventSink for HtmlCollector {
    fn event(&mut self, event: &Event<'_>) -> io::Result<()> {
        self.stats.event(event)?;
        match event {
            Event::Opened(info) => self.opened(info),
            Event::Packet(p) => self.packet(p),
            Event::App(app) => self.app(app),
            Event::Closed(s) => self.closed(s),
            Event::End(run) => self.run = Some((*run).clone()),
            Event::Handshake(_) | Event::Data(_) | Event::Overview(_) => {}
        }
        Ok(())
    }
}
