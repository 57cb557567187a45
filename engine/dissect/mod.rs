//! Application dissectors: what travels inside the reassembled TCP streams.
//!
//! [`Dissector`] sits in the event stream between TCP tracking and the
//! consumers: it passes every event on and adds [`Event::App`] events for
//! the HTTP messages, event-stream events and WebSocket frames and messages
//! it finds. An application event comes right after the data event that
//! completed it, and before the connection's [`Event::Closed`].

pub mod compression;
pub mod http;
pub mod overview;
pub mod sse;
pub mod websocket;

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use crate::capture::Timestamp;
use crate::events::{Event, EventSink};
use crate::reassembly::Chunk;
use crate::tracking::Direction;

use crate::conn_table::{ConnTable, Slot};

pub use compression::{DecodeLimits, Encoding};
pub use http::{Anomaly, Header, HttpMessage, StartLine};
pub use overview::AppOverview;
pub use sse::SseEvent;
pub use websocket::{WsFrame, WsMessage};

/// Where a byte was: the frame that carried it and its capture time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    /// Frame number.
    pub frame: u64,
    /// Capture time.
    pub time: Timestamp,
}

/// Something an application dissector found.
#[derive(Clone, Debug)]
pub enum AppEvent {
    /// The head of an HTTP message whose body is still to come (its
    /// [`AppEvent::Http`] follows when the body ends).
    HttpHead(Arc<HttpMessage>),
    /// An HTTP request or response, complete or cut by the connection's end.
    Http(Arc<HttpMessage>),
    /// A request no response answered, once the connection ended (the same
    /// message as its [`AppEvent::Http`]).
    HttpUnanswered(Arc<HttpMessage>),
    /// A server-sent event.
    Sse(Box<SseEvent>),
    /// A WebSocket frame.
    WsFrame(Box<WsFrame>),
    /// A WebSocket message (data frames put together, or a control frame).
    WsMessage(Box<WsMessage>),
}

impl AppEvent {
    /// The connection it belongs to.
    pub fn conn(&self) -> u64 {
        match self {
            AppEvent::Http(m) | AppEvent::HttpHead(m) | AppEvent::HttpUnanswered(m) => m.conn.get(),
            AppEvent::Sse(e) => e.conn,
            AppEvent::WsFrame(f) => f.conn,
            AppEvent::WsMessage(m) => m.conn,
        }
    }

    /// Roughly the bytes it holds: its own size and what it points to.
    pub fn weight(&self) -> usize {
        let strings = |list: &[String]| list.iter().map(String::len).sum::<usize>();
        match self {
            AppEvent::Http(m) | AppEvent::HttpHead(m) | AppEvent::HttpUnanswered(m) => m.weight(),
            AppEvent::Sse(e) => {
                std::mem::size_of::<SseEvent>()
                    + e.event.len()
                    + e.data.len()
                    + e.id.as_ref().map_or(0, String::len)
                    + strings(&e.comments)
            }
            AppEvent::WsFrame(f) => {
                std::mem::size_of::<WsFrame>()
                    + f.payload.len()
                    + f.close_reason.as_ref().map_or(0, String::len)
            }
            AppEvent::WsMessage(m) => {
                std::mem::size_of::<WsMessage>()
                    + m.data.len()
                    + m.close_reason.as_ref().map_or(0, String::len)
                    + strings(&m.anomalies)
            }
        }
    }

    /// The frame of its last byte: the packet that completed it.
    pub fn frame(&self) -> u64 {
        match self {
            AppEvent::Http(m) | AppEvent::HttpUnanswered(m) => m.last.frame,
            AppEvent::HttpHead(m) => m.head_end.frame,
            AppEvent::Sse(e) => e.readable.frame,
            AppEvent::WsFrame(f) => f.last.frame,
            AppEvent::WsMessage(m) => m.last.frame,
        }
    }

    /// The frame of its first byte.
    pub fn first_frame(&self) -> u64 {
        match self {
            AppEvent::Http(m) | AppEvent::HttpHead(m) | AppEvent::HttpUnanswered(m) => {
                m.first.frame
            }
            AppEvent::Sse(e) => e.first.frame,
            AppEvent::WsFrame(f) => f.first.frame,
            AppEvent::WsMessage(m) => m.first.frame,
        }
    }
}

/// Kinds of application events, as a set: what a consumer takes, so that
/// a sharded run leaves the others where they were made (see
/// [`crate::parallel::run_sharded`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppKinds(u8);

impl AppKinds {
    /// No kind.
    pub const NONE: AppKinds = AppKinds(0);
    /// HTTP requests ([`AppEvent::Http`] of a request).
    pub const HTTP_REQUEST: AppKinds = AppKinds(1);
    /// HTTP responses ([`AppEvent::Http`] of a response).
    pub const HTTP_RESPONSE: AppKinds = AppKinds(1 << 1);
    /// [`AppEvent::HttpHead`].
    pub const HTTP_HEAD: AppKinds = AppKinds(1 << 2);
    /// [`AppEvent::HttpUnanswered`].
    pub const HTTP_UNANSWERED: AppKinds = AppKinds(1 << 3);
    /// [`AppEvent::Sse`].
    pub const SSE: AppKinds = AppKinds(1 << 4);
    /// [`AppEvent::WsFrame`].
    pub const WS_FRAME: AppKinds = AppKinds(1 << 5);
    /// [`AppEvent::WsMessage`].
    pub const WS_MESSAGE: AppKinds = AppKinds(1 << 6);
    /// Every kind of application event.
    pub const ALL: AppKinds = AppKinds(0x7F);
    /// Not an application event: each connection's
    /// [`Event::Overview`], made only when asked for by name.
    pub const OVERVIEW: AppKinds = AppKinds(1 << 7);

    /// Both sets together.
    pub const fn with(self, other: AppKinds) -> AppKinds {
        AppKinds(self.0 | other.0)
    }

    /// Whether every kind of `other` is in the set.
    pub const fn contains(self, other: AppKinds) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `app` is of a kind in the set.
    pub fn takes(self, app: &AppEvent) -> bool {
        let kind = match app {
            AppEvent::Http(m) if m.method().is_some() => AppKinds::HTTP_REQUEST,
            AppEvent::Http(_) => AppKinds::HTTP_RESPONSE,
            AppEvent::HttpHead(_) => AppKinds::HTTP_HEAD,
            AppEvent::HttpUnanswered(_) => AppKinds::HTTP_UNANSWERED,
            AppEvent::Sse(_) => AppKinds::SSE,
            AppEvent::WsFrame(_) => AppKinds::WS_FRAME,
            AppEvent::WsMessage(_) => AppKinds::WS_MESSAGE,
        };
        self.0 & kind.0 != 0
    }
}

/// What one connection carries.
struct AppConn {
    http: http::HttpConn,
    /// Boxed: few connections switch to WebSocket.
    websocket: Option<Box<websocket::WebSocketConn>>,
    ended: [bool; 2],
}

/// The first bytes of one direction of a connection without state, too few
/// to tell whether an HTTP message starts there (`GE`, say): kept until the
/// next bytes of that direction tell.
struct Undecided {
    /// Stream offset just past the bytes.
    end: u64,
    /// The bytes, as the chunks brought them.
    pieces: Vec<(u64, Vec<u8>, At)>,
}

/// Adds application events to an event stream.
pub struct Dissector<S> {
    inner: S,
    /// Boxed: a slot should cost a pointer, not a whole state. A
    /// connection whose two directions both ended is `Finished`: its state
    /// is gone already (a finished connection is summarised only seconds
    /// later, and thousands may wait for it), and nothing more of it is
    /// read.
    conns: ConnTable<Box<AppConn>>,
    undecided: HashMap<(u64, usize), Undecided, foldhash::fast::RandomState>,
    out: Vec<AppEvent>,
    limits: DecodeLimits,
    /// Dissect only this connection (the others pass through untouched).
    only: Option<u64>,
    /// Bytes of requests kept while they wait for responses, shared by all
    /// connections (see [`http::REQUESTS_KEPT`]).
    kept_requests: Arc<AtomicUsize>,
    /// Each connection's overview as its events pass, when asked for
    /// ([`Dissector::with_overviews`]). Boxed: a slot costs a pointer. An
    /// overview is lent to the consumer, not given: freed where it was
    /// made (see `overview`).
    overviews: Option<ConnTable<Box<AppOverview>>>,
    /// Overviews are lent as soon as they are final
    /// ([`Dissector::with_overviews_when_final`]).
    overviews_when_final: bool,
    /// A connection whose two directions just ended: its overview is
    /// final (see `lend_finished`).
    finished_now: Option<u64>,
}

impl<S: EventSink> Dissector<S> {
    /// Dissects only connection `conn`: what `chattcp follow` needs.
    pub fn only(mut self, conn: u64) -> Self {
        self.only = Some(conn);
        self
    }

    /// Dissects the events on their way to `inner`.
    pub fn new(inner: S) -> Self {
        Self::with_limits(inner, DecodeLimits::default())
    }

    /// The same, with decoding bounds.
    pub fn with_limits(inner: S, limits: DecodeLimits) -> Self {
        Dissector {
            inner,
            conns: ConnTable::default(),
            undecided: HashMap::default(),
            only: None,
            out: Vec::new(),
            limits,
            kept_requests: Arc::default(),
            overviews: None,
            overviews_when_final: false,
            finished_now: None,
        }
    }

    /// Also sends an [`Event::Overview`] of each connection that carried
    /// application events, just before its summary: what `chattcp conns`
    /// shows.
    pub fn with_overviews(mut self) -> Self {
        self.overviews = Some(ConnTable::default());
        self
    }

    /// Like [`Dissector::with_overviews`], but each overview is sent as
    /// soon as it is final: when both directions of its connection ended
    /// (nothing more of it is read), else just before its summary. For a
    /// consumer that keeps what it makes of an overview, smaller than the
    /// overview, until the summary: `conns`'s text keeps a connection's
    /// application lines (about 120 bytes where the overview is 576), and
    /// the overview is made into them while it is still in the cache, not
    /// read back cold seconds later, after the close delay.
    pub fn with_overviews_when_final(mut self) -> Self {
        self.overviews_when_final = true;
        self.with_overviews()
    }

    /// The consumer.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The consumer, to change.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Gives the consumer back.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn send_out(&mut self) -> std::io::Result<()> {
        for app in self.out.drain(..) {
            if let Some(overviews) = self.overviews.as_mut() {
                let conn = app.conn();
                match overviews.slot(conn) {
                    Slot::Live(o) => o.count(&app),
                    slot => {
                        let mut o = Box::new(AppOverview::new(conn));
                        o.count(&app);
                        *slot = Slot::Live(o);
                    }
                }
            }
            self.inner.app_owned(app)?;
        }
        Ok(())
    }

    fn data(&mut self, conn: u64, dir: Direction, chunk: Chunk<'_>, at: At) {
        if self.only.is_some_and(|o| o != conn) {
            return;
        }
        let mut earlier = Vec::new();
        let slot = self.conns.slot(conn);
        match slot {
            Slot::Live(_) => {}
            Slot::Finished => return,
            // Data after its summary cannot come; if it did, it would
            // start afresh, as for a number never seen.
            Slot::Empty | Slot::Closed => {
                // Only a connection that starts like HTTP gets state; a chunk
                // too short to tell waits for the next bytes.
                let held = self.undecided.remove(&(conn, dir.index()));
                let Chunk::Data { offset, bytes } = chunk else {
                    return;
                };
                // The first bytes, joined to those held only when some were
                // (most connections' first chunk tells at once).
                let mut joined = Vec::new();
                if let Some(held) = held.filter(|h| h.end == offset) {
                    earlier = held.pieces;
                    for (_, piece, _) in &earlier {
                        joined.extend_from_slice(piece);
                    }
                }
                let first = &bytes[..bytes.len().min(http::START_MAX)];
                let start = if joined.is_empty() {
                    first
                } else {
                    joined.extend_from_slice(first);
                    &joined[..]
                };
                if !http::starts_http(start, dir) {
                    if start.len() < http::START_MAX && http::may_start_http(start, dir) {
                        earlier.push((offset, bytes.to_vec(), at));
                        self.undecided.insert(
                            (conn, dir.index()),
                            Undecided {
                                end: offset + bytes.len() as u64,
                                pieces: earlier,
                            },
                        );
                    }
                    return;
                }
                *slot = Slot::Live(Box::new(AppConn {
                    http: http::HttpConn::sharing(conn, self.limits, self.kept_requests.clone()),
                    websocket: None,
                    ended: [false; 2],
                }));
            }
        }
        let Slot::Live(app) = slot else {
            return;
        };
        let out = &mut self.out;
        match chunk {
            Chunk::Data { offset, bytes } => {
                for (offset, piece, at) in earlier {
                    Self::bytes(app, conn, dir, offset, &piece, at, self.limits, out);
                }
                Self::bytes(app, conn, dir, offset, bytes, at, self.limits, out);
            }
            Chunk::Gap { len, .. } => match app.websocket.as_mut() {
                Some(ws) => ws.gap(dir, len, at, out),
                None => app.http.gap(dir, len, at, out),
            },
            Chunk::End { .. } => {
                Self::end(app, dir, at, out);
                if app.ended == [true, true] {
                    *slot = Slot::Finished;
                    if self.overviews_when_final {
                        self.finished_now = Some(conn);
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn bytes(
        app: &mut AppConn,
        conn: u64,
        dir: Direction,
        offset: u64,
        bytes: &[u8],
        at: At,
        limits: DecodeLimits,
        out: &mut Vec<AppEvent>,
    ) {
        if let Some(ws) = app.websocket.as_mut() {
            ws.data(dir, bytes, at, out);
            return;
        }
        app.http.data(dir, offset, bytes, at, out);
        if let Some(extensions) = &app.http.switched_to_websocket {
            let deflate = websocket::Deflate::negotiated(extensions.as_deref());
            let mut ws = websocket::WebSocketConn::with_limits(conn, deflate, limits);
            for (d, rest) in app.http.take_after_upgrade() {
                ws.data(d, &rest, at, out);
            }
            app.websocket = Some(Box::new(ws));
        }
    }

    fn end(app: &mut AppConn, dir: Direction, at: At, out: &mut Vec<AppEvent>) {
        if std::mem::replace(&mut app.ended[dir.index()], true) {
            return;
        }
        match app.websocket.as_mut() {
            Some(ws) => ws.end(dir, at, out),
            None => app.http.end(dir, at, out),
        }
        if app.ended == [true, true] {
            app.http.unanswered(out);
        }
    }

    /// Ends the application state of the connection `summary` is of, and
    /// sends what its end tells (unanswered requests, a message cut short),
    /// ahead of the summary.
    fn summarised(&mut self, summary: &crate::tracking::ConnectionSummary) -> std::io::Result<()> {
        let at = At {
            frame: summary.last_frame,
            time: summary.end,
        };
        self.close(summary.conn, at);
        self.send_out()?;
        if let Some(overviews) = self.overviews.as_mut() {
            if let Slot::Live(o) = overviews.close(summary.conn) {
                self.inner.event(&Event::Overview(&o))?;
            }
        }
        Ok(())
    }

    /// Lends the overview of a connection whose two directions just ended
    /// (nothing can change it any more), when overviews go as soon as
    /// they are final.
    fn lend_finished(&mut self) -> std::io::Result<()> {
        let Some(conn) = self.finished_now.take() else {
            return Ok(());
        };
        if let Some(overviews) = self.overviews.as_mut() {
            if let Slot::Live(o) = overviews.close(conn) {
                self.inner.event(&Event::Overview(&o))?;
            }
        }
        Ok(())
    }

    fn close(&mut self, conn: u64, at: At) {
        if !self.undecided.is_empty() {
            self.undecided.remove(&(conn, 0));
            self.undecided.remove(&(conn, 1));
        }
        if let Slot::Live(mut app) = self.conns.close(conn) {
            for dir in [Direction::ClientToServer, Direction::ServerToClient] {
                Self::end(&mut app, dir, at, &mut self.out);
            }
        }
    }
}

impl<S: EventSink> EventSink for Dissector<S> {
    fn frame_start(&mut self, frame: u64) {
        self.inner.frame_start(frame);
    }

    fn closed_owned(
        &mut self,
        summary: crate::tracking::ConnectionSummary,
    ) -> std::io::Result<Option<crate::tracking::SummaryLists>> {
        self.summarised(&summary)?;
        self.inner.closed_owned(summary)
    }

    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        match event {
            Event::Data(d) => {
                self.inner.event(event)?;
                let at = At {
                    frame: d.frame,
                    time: d.time,
                };
                self.data(d.conn, d.dir, d.chunk, at);
                self.send_out()?;
                self.lend_finished()
            }
            Event::Closed(summary) => {
                self.summarised(summary)?;
                self.inner.event(event)
            }
            Event::End(_) => {
                self.undecided.clear();
                for conn in self.conns.live() {
                    let at = At {
                        frame: 0,
                        time: Timestamp(0),
                    };
                    self.close(conn, at);
                }
                self.conns.clear();
                self.send_out()?;
                if let Some(overviews) = self.overviews.as_mut() {
                    // Every connection was summarised before the end.
                    overviews.clear();
                }
                self.inner.event(event)
            }
            _ => self.inner.event(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::DataChunk;

    #[derive(Default)]
    struct Keep(Vec<AppEvent>);

    impl EventSink for Keep {
        fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
            if let Event::App(app) = event {
                self.0.push((*app).clone());
            }
            Ok(())
        }
    }

    #[test]
    fn app_kinds_tell_requests_from_responses() {
        let request = run(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]);
        let request = request
            .iter()
            .find(|e| matches!(e, AppEvent::Http(_)))
            .expect("a request");
        assert!(AppKinds::HTTP_REQUEST.takes(request));
        assert!(AppKinds::ALL.takes(request));
        assert!(!AppKinds::HTTP_RESPONSE.takes(request));
        assert!(!AppKinds::NONE.takes(request));
        let either = AppKinds::HTTP_RESPONSE.with(AppKinds::HTTP_REQUEST);
        assert!(either.takes(request));
        assert!(!AppKinds::HTTP_UNANSWERED
            .with(AppKinds::SSE)
            .with(AppKinds::WS_FRAME)
            .with(AppKinds::WS_MESSAGE)
            .with(AppKinds::HTTP_HEAD)
            .takes(request));
    }

    /// Feeds client-to-server `pieces` of connection 7, then the end.
    fn run(pieces: &[&[u8]]) -> Vec<AppEvent> {
        let mut d = Dissector::new(Keep::default());
        let mut offset = 0;
        for (i, piece) in pieces.iter().enumerate() {
            let chunk = DataChunk {
                conn: 7,
                dir: Direction::ClientToServer,
                chunk: Chunk::Data {
                    offset,
                    bytes: piece,
                },
                frame: i as u64 + 1,
                time: Timestamp(0),
            };
            offset += piece.len() as u64;
            d.event(&Event::Data(&chunk)).unwrap();
        }
        d.event(&Event::End(&crate::tracking::RunSummary::default()))
            .unwrap();
        d.into_inner().0
    }

    #[test]
    fn a_connection_whose_first_segment_is_a_method_cut_short_is_dissected() {
        let events = run(&[b"G", b"E", b"T /x HTTP/1.1\r\n\r\n"]);
        // The request, then (no response came) the same request unanswered.
        let [AppEvent::Http(m), AppEvent::HttpUnanswered(u)] = &events[..] else {
            panic!("{events:?}");
        };
        assert_eq!(m.method(), Some("GET"));
        assert_eq!((m.first.frame, m.last.frame), (1, 3));
        assert!(std::sync::Arc::ptr_eq(m, u));
    }

    #[test]
    fn every_byte_after_a_101_goes_to_websocket() {
        // The 101 and a 70000-byte frame in one chunk: the frame's bytes
        // used to be cut at 64 KiB on the way to the WebSocket parser.
        let mut bytes = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\n\r\n"
            .to_vec();
        bytes.extend_from_slice(&[0x82, 127]);
        bytes.extend_from_slice(&70000u64.to_be_bytes());
        bytes.extend(std::iter::repeat_n(9u8, 70000));
        let mut d = Dissector::new(Keep::default());
        for (dir, bytes) in [
            (
                Direction::ClientToServer,
                &b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"[..],
            ),
            (Direction::ServerToClient, &bytes[..]),
        ] {
            let chunk = DataChunk {
                conn: 1,
                dir,
                chunk: Chunk::Data { offset: 0, bytes },
                frame: 1,
                time: Timestamp(0),
            };
            d.event(&Event::Data(&chunk)).unwrap();
        }
        let events = d.into_inner().0;
        let message = events.iter().find_map(|e| match e {
            AppEvent::WsMessage(m) => Some(m),
            _ => None,
        });
        assert_eq!(
            message.map(|m| (m.len, m.anomalies.len())),
            Some((70000, 0))
        );
    }

    #[test]
    fn a_connection_that_only_starts_like_a_method_is_left_alone() {
        assert!(run(&[b"GE", b"X /x HTTP/1.1\r\n\r\n"]).is_empty());
        assert!(run(&[b"P", b"K\x03\x04 zip"]).is_empty());
    }
}
