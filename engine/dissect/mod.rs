//! Application dissectors: what travels inside the reassembled TCP streams.
//!
//! [`Dissector`] sits in the event stream between TCP tracking and the
//! consumers: it passes every event on and adds [`Event::App`] events for
//! the HTTP messages, event-stream events and WebSocket frames and messages
//! it finds. An application event comes right after the data event that
//! completed it, and before the connection's [`Event::Closed`].

pub mod compression;
pub mod http;
pub mod sse;
pub mod websocket;

use std::collections::HashMap;

use crate::capture::Timestamp;
use crate::events::{Event, EventSink};
use crate::reassembly::Chunk;
use crate::tracking::Direction;

pub use compression::{DecodeLimits, Encoding};
pub use http::{Anomaly, Header, HttpMessage, StartLine};
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
    HttpHead(Box<HttpMessage>),
    /// An HTTP request or response, complete or cut by the connection's end.
    Http(Box<HttpMessage>),
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
            AppEvent::Http(m) | AppEvent::HttpHead(m) => m.conn,
            AppEvent::Sse(e) => e.conn,
            AppEvent::WsFrame(f) => f.conn,
            AppEvent::WsMessage(m) => m.conn,
        }
    }

    /// The frame of its last byte: the packet that completed it.
    pub fn frame(&self) -> u64 {
        match self {
            AppEvent::Http(m) => m.last.frame,
            AppEvent::HttpHead(m) => m.head_end.frame,
            AppEvent::Sse(e) => e.readable.frame,
            AppEvent::WsFrame(f) => f.last.frame,
            AppEvent::WsMessage(m) => m.last.frame,
        }
    }

    /// The frame of its first byte.
    pub fn first_frame(&self) -> u64 {
        match self {
            AppEvent::Http(m) | AppEvent::HttpHead(m) => m.first.frame,
            AppEvent::Sse(e) => e.first.frame,
            AppEvent::WsFrame(f) => f.first.frame,
            AppEvent::WsMessage(m) => m.first.frame,
        }
    }
}

/// What one connection carries.
struct AppConn {
    http: http::HttpConn,
    websocket: Option<websocket::WebSocketConn>,
    ended: [bool; 2],
}

/// Adds application events to an event stream.
pub struct Dissector<S> {
    inner: S,
    conns: HashMap<u64, AppConn>,
    out: Vec<AppEvent>,
    limits: DecodeLimits,
}

impl<S: EventSink> Dissector<S> {
    /// Dissects the events on their way to `inner`.
    pub fn new(inner: S) -> Self {
        Self::with_limits(inner, DecodeLimits::default())
    }

    /// The same, with decoding bounds.
    pub fn with_limits(inner: S, limits: DecodeLimits) -> Self {
        Dissector {
            inner,
            conns: HashMap::new(),
            out: Vec::new(),
            limits,
        }
    }

    /// The consumer.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Gives the consumer back.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn send_out(&mut self) -> std::io::Result<()> {
        for app in self.out.drain(..) {
            self.inner.event(&Event::App(&app))?;
        }
        Ok(())
    }

    fn data(&mut self, conn: u64, dir: Direction, chunk: Chunk<'_>, at: At) {
        let out = &mut self.out;
        let app = match self.conns.get_mut(&conn) {
            Some(app) => app,
            None => {
                // Only a connection that starts like HTTP gets state.
                let Chunk::Data { bytes, .. } = chunk else {
                    return;
                };
                if !http::starts_http(bytes, dir) {
                    return;
                }
                self.conns.entry(conn).or_insert(AppConn {
                    http: http::HttpConn::new(conn, self.limits),
                    websocket: None,
                    ended: [false; 2],
                })
            }
        };
        match chunk {
            Chunk::Data { offset, bytes } => {
                if let Some(ws) = app.websocket.as_mut() {
                    ws.data(dir, bytes, at, out);
                    return;
                }
                app.http.data(dir, offset, bytes, at, out);
                if let Some(extensions) = &app.http.switched_to_websocket {
                    let deflate = websocket::Deflate::negotiated(extensions.as_deref());
                    let mut ws = websocket::WebSocketConn::new(conn, deflate);
                    for (d, rest) in app.http.take_after_upgrade() {
                        ws.data(d, &rest, at, out);
                    }
                    app.websocket = Some(ws);
                }
            }
            Chunk::Gap { len, .. } => match app.websocket.as_mut() {
                Some(ws) => ws.gap(dir, len, at, out),
                None => app.http.gap(dir, len, at, out),
            },
            Chunk::End { .. } => Self::end(app, dir, at, out),
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
    }

    fn close(&mut self, conn: u64, at: At) {
        if let Some(mut app) = self.conns.remove(&conn) {
            for dir in [Direction::ClientToServer, Direction::ServerToClient] {
                Self::end(&mut app, dir, at, &mut self.out);
            }
        }
    }
}

impl<S: EventSink> EventSink for Dissector<S> {
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        match event {
            Event::Data(d) => {
                self.inner.event(event)?;
                let at = At {
                    frame: d.frame,
                    time: d.time,
                };
                self.data(d.conn, d.dir, d.chunk, at);
                self.send_out()
            }
            Event::Closed(summary) => {
                let at = At {
                    frame: summary.last_frame,
                    time: summary.end,
                };
                self.close(summary.conn, at);
                self.send_out()?;
                self.inner.event(event)
            }
            Event::End(_) => {
                let mut open: Vec<u64> = self.conns.keys().copied().collect();
                open.sort_unstable();
                for conn in open {
                    let at = At {
                        frame: 0,
                        time: Timestamp(0),
                    };
                    self.close(conn, at);
                }
                self.send_out()?;
                self.inner.event(event)
            }
            _ => self.inner.event(event),
        }
    }
}
