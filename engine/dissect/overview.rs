//! What a connection carried at the application layer, in a few numbers:
//! the HTTP, event-stream and WebSocket lines `chattcp conns` shows under
//! each connection.
//!
//! An overview is kept by the [`super::Dissector`] that made the events,
//! and lent to the consumer as one [`crate::events::Event::Overview`] just
//! before the connection's summary, or as soon as it is final when the
//! consumer asked so. So a parallel run hands over one
//! small value per connection instead of every message, copied into the
//! batch that carries the summary (see `crate::parallel`). It holds
//! everything inline, with no allocation of its own, so that nothing a
//! worker allocates is freed by the merging thread.

use super::{AppEvent, StartLine};

/// Longest first request line kept, in bytes (the target is cut).
pub const FIRST_REQUEST_MAX: usize = 120;

/// Room for it, and the `…` that marks a cut.
const FIRST_REQUEST_ROOM: usize = FIRST_REQUEST_MAX + '…'.len_utf8();

/// Kinds of HTTP anomaly counted apart at most; further kinds are counted
/// together under [`AppOverview::other_anomalies`].
pub const ANOMALY_KINDS_MAX: usize = 8;

/// Distinct status codes counted apart at most; further responses are
/// counted together under [`AppOverview::other_statuses`].
pub const STATUSES_MAX: usize = 8;

/// A connection's application layer in a few numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppOverview {
    /// Connection number.
    pub conn: u64,
    /// HTTP requests (complete or cut short).
    pub requests: u64,
    /// HTTP responses, interim (1xx) ones included.
    pub responses: u64,
    /// Responses by status code, in order of code: the first
    /// `statuses_len` (see [`AppOverview::statuses`]).
    statuses: [(u16, u64); STATUSES_MAX],
    statuses_len: u8,
    /// Responses whose code did not fit in `statuses`.
    pub other_statuses: u64,
    /// Method and target of the first request: `first_request_len` bytes
    /// of UTF-8, none before a request (a request line is never empty:
    /// see [`AppOverview::first_request`]).
    first_request: [u8; FIRST_REQUEST_ROOM],
    first_request_len: u8,
    /// Requests no response answered.
    pub unanswered: u64,
    /// HTTP messages the connection's end cut short (readable ones).
    pub cut_short: u64,
    /// Bytes where an HTTP message was due that do not read as one (the
    /// rest of a body a reader misframed, say): counted as messages,
    /// neither requests nor responses.
    pub unreadable: u64,
    /// HTTP body bytes on the wire: [client→server, server→client].
    pub body_bytes: [u64; 2],
    /// The same bodies decoded (content coding undone; equal to
    /// `body_bytes` where there was none).
    pub decoded_bytes: [u64; 2],
    /// HTTP anomalies by name, in order of first sight: the first
    /// `anomalies_len` (see [`AppOverview::anomalies`]).
    anomalies: [(&'static str, u64); ANOMALY_KINDS_MAX],
    anomalies_len: u8,
    /// Anomalies whose name did not fit in `anomalies`.
    pub other_anomalies: u64,
    /// Server-sent events.
    pub sse_events: u64,
    /// WebSocket messages: [client→server, server→client].
    pub ws_messages: [u64; 2],
    /// The code of the first WebSocket close message.
    pub ws_close_code: Option<u16>,
}

impl AppOverview {
    /// An overview of connection `conn` with nothing in it yet.
    pub fn new(conn: u64) -> Self {
        AppOverview {
            conn,
            requests: 0,
            responses: 0,
            statuses: [(0, 0); STATUSES_MAX],
            statuses_len: 0,
            other_statuses: 0,
            first_request: [0; FIRST_REQUEST_ROOM],
            first_request_len: 0,
            unanswered: 0,
            cut_short: 0,
            unreadable: 0,
            body_bytes: [0; 2],
            decoded_bytes: [0; 2],
            anomalies: [("", 0); ANOMALY_KINDS_MAX],
            anomalies_len: 0,
            other_anomalies: 0,
            sse_events: 0,
            ws_messages: [0; 2],
            ws_close_code: None,
        }
    }

    /// Responses by status code, in order of code (at most
    /// [`STATUSES_MAX`] codes).
    pub fn statuses(&self) -> &[(u16, u64)] {
        &self.statuses[..usize::from(self.statuses_len)]
    }

    /// HTTP anomalies by name, in order of first sight (at most
    /// [`ANOMALY_KINDS_MAX`] names).
    pub fn anomalies(&self) -> &[(&'static str, u64)] {
        &self.anomalies[..usize::from(self.anomalies_len)]
    }

    /// Method and target of the first request, e.g. `GET /index.html`:
    /// control characters shown as `?`, cut at [`FIRST_REQUEST_MAX`] bytes
    /// with `…`.
    pub fn first_request(&self) -> Option<&str> {
        if self.first_request_len == 0 {
            return None;
        }
        std::str::from_utf8(&self.first_request[..usize::from(self.first_request_len)]).ok()
    }

    /// Counts one application event of the connection.
    pub fn count(&mut self, app: &AppEvent) {
        match app {
            AppEvent::Http(m) => {
                for a in &m.anomalies {
                    self.anomaly(a.name);
                }
                // Such bytes have no start line (see `render::app::preview`).
                if m.version.is_empty() {
                    self.unreadable += 1;
                    return;
                }
                let d = m.dir.index();
                self.body_bytes[d] += m.body_wire_len;
                self.decoded_bytes[d] += m.body_decoded_len;
                if !m.complete {
                    self.cut_short += 1;
                }
                match &m.start {
                    StartLine::Request { method, uri } => {
                        self.requests += 1;
                        if self.first_request_len == 0 {
                            self.first_request_len =
                                first_request(method, uri, &mut self.first_request);
                        }
                    }
                    StartLine::Response { status, .. } => {
                        self.responses += 1;
                        self.status(*status);
                    }
                }
            }
            AppEvent::HttpUnanswered(_) => self.unanswered += 1,
            AppEvent::Sse(_) => self.sse_events += 1,
            AppEvent::WsMessage(m) => {
                self.ws_messages[m.dir.index()] += 1;
                if self.ws_close_code.is_none() {
                    self.ws_close_code = m.close_code;
                }
            }
            // Heads are counted with their whole message; frames make up
            // the messages counted.
            AppEvent::HttpHead(_) | AppEvent::WsFrame(_) => {}
        }
    }

    fn status(&mut self, status: u16) {
        let len = usize::from(self.statuses_len);
        match self.statuses[..len].binary_search_by_key(&status, |(s, _)| *s) {
            Ok(i) => self.statuses[i].1 += 1,
            Err(_) if len >= STATUSES_MAX => self.other_statuses += 1,
            Err(i) => {
                self.statuses.copy_within(i..len, i + 1);
                self.statuses[i] = (status, 1);
                self.statuses_len += 1;
            }
        }
    }

    fn anomaly(&mut self, name: &'static str) {
        let len = usize::from(self.anomalies_len);
        if let Some((_, count)) = self.anomalies[..len].iter_mut().find(|(n, _)| *n == name) {
            *count += 1;
        } else if len >= ANOMALY_KINDS_MAX {
            self.other_anomalies += 1;
        } else {
            self.anomalies[len] = (name, 1);
            self.anomalies_len += 1;
        }
    }
}

/// Writes `method target` into `out`, cut to [`FIRST_REQUEST_MAX`] bytes
/// at a character boundary and marked `…`, with control characters shown
/// as `?` (a line of text must stay one line); returns its length.
fn first_request(method: &str, uri: &str, out: &mut [u8; FIRST_REQUEST_ROOM]) -> u8 {
    let plain = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b));
    let whole = method.len() + 1 + uri.len();
    if whole <= FIRST_REQUEST_MAX && plain(method) && plain(uri) {
        // Nearly every request line: copied whole.
        out[..method.len()].copy_from_slice(method.as_bytes());
        out[method.len()] = b' ';
        out[method.len() + 1..whole].copy_from_slice(uri.as_bytes());
        return whole as u8;
    }
    let mut len = 0;
    for c in method.chars().chain([' ']).chain(uri.chars()) {
        let c = if c.is_control() { '?' } else { c };
        if len + c.len_utf8() > FIRST_REQUEST_MAX {
            len += '…'.encode_utf8(&mut out[len..]).len();
            break;
        }
        len += c.encode_utf8(&mut out[len..]).len();
    }
    len as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_line_stays_one_line_and_is_cut_at_a_character() {
        let line = |method: &str, uri: &str| {
            let mut out = [0; FIRST_REQUEST_ROOM];
            let len = first_request(method, uri, &mut out);
            String::from_utf8(out[..usize::from(len)].to_vec()).expect("UTF-8")
        };
        assert_eq!(line("GET", "/a?b=c"), "GET /a?b=c");
        assert_eq!(line("GET", "/a\r\nX: y"), "GET /a??X: y");
        let long = format!("/{}", "é".repeat(200));
        let line = line("GET", &long);
        assert!(line.ends_with('…'), "{line}");
        assert!(
            line.len() <= FIRST_REQUEST_MAX + '…'.len_utf8(),
            "{}",
            line.len()
        );
        assert!(long.starts_with(line.trim_start_matches("GET ").trim_end_matches('…')));
    }

    #[test]
    fn statuses_and_anomalies_stay_bounded_and_are_all_counted() {
        let mut o = AppOverview::new(3);
        for status in (100..120).chain([200, 200, 101]) {
            o.status(status);
        }
        assert_eq!(o.statuses().len(), STATUSES_MAX);
        assert!(o.statuses().windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(o.statuses()[0], (100, 1));
        let counted: u64 = o.statuses().iter().map(|(_, n)| n).sum::<u64>() + o.other_statuses;
        assert_eq!(counted, 23);
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        for name in names.iter().chain(&names) {
            o.anomaly(name);
        }
        assert_eq!(o.anomalies().len(), ANOMALY_KINDS_MAX);
        assert_eq!(o.anomalies()[0], ("a", 2));
        assert_eq!(o.other_anomalies, 4);
    }
}
