//! What a connection carried at the application layer, in a few numbers:
//! the HTTP, event-stream and WebSocket lines `chattcp conns` shows under
//! each connection.
//!
//! An overview is kept by the [`super::Dissector`] that made the events,
//! and sent as one [`super::AppEvent::Overview`] just before the
//! connection's summary. So a parallel run hands over one small value per
//! connection instead of every message (see `crate::parallel`).

use super::{AppEvent, StartLine};

/// Longest first request line kept, in bytes (the target is cut).
pub const FIRST_REQUEST_MAX: usize = 120;

/// Kinds of HTTP anomaly counted apart at most; further kinds are counted
/// together under [`AppOverview::other_anomalies`].
pub const ANOMALY_KINDS_MAX: usize = 8;

/// Distinct status codes counted apart at most; further responses are
/// counted together under [`AppOverview::other_statuses`].
pub const STATUSES_MAX: usize = 8;

/// A connection's application layer in a few numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppOverview {
    /// Connection number.
    pub conn: u64,
    /// The connection's last frame (its summary's).
    pub last_frame: u64,
    /// HTTP requests (complete or cut short).
    pub requests: u64,
    /// HTTP responses, interim (1xx) ones included.
    pub responses: u64,
    /// Responses by status code, in order of code.
    pub statuses: Vec<(u16, u64)>,
    /// Responses whose code did not fit in `statuses`.
    pub other_statuses: u64,
    /// Method and target of the first request, e.g. `GET /index.html`.
    pub first_request: Option<String>,
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
    /// HTTP anomalies by name, in order of first sight.
    pub anomalies: Vec<(&'static str, u64)>,
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
            ..AppOverview::default()
        }
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
                        if self.first_request.is_none() {
                            self.first_request = Some(first_request(method, uri));
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
            AppEvent::HttpHead(_) | AppEvent::WsFrame(_) | AppEvent::Overview(_) => {}
        }
    }

    /// Whether nothing was counted: a connection whose bytes were not
    /// HTTP, or that carried none.
    pub fn is_empty(&self) -> bool {
        AppOverview {
            conn: self.conn,
            last_frame: self.last_frame,
            ..AppOverview::default()
        } == *self
    }

    fn status(&mut self, status: u16) {
        match self.statuses.binary_search_by_key(&status, |(s, _)| *s) {
            Ok(i) => self.statuses[i].1 += 1,
            Err(_) if self.statuses.len() >= STATUSES_MAX => self.other_statuses += 1,
            Err(i) => self.statuses.insert(i, (status, 1)),
        }
    }

    fn anomaly(&mut self, name: &'static str) {
        if let Some((_, count)) = self.anomalies.iter_mut().find(|(n, _)| *n == name) {
            *count += 1;
        } else if self.anomalies.len() >= ANOMALY_KINDS_MAX {
            self.other_anomalies += 1;
        } else {
            self.anomalies.push((name, 1));
        }
    }
}

/// `method target`, cut to [`FIRST_REQUEST_MAX`] bytes at a character
/// boundary, with control characters shown as `?` (a line of text must
/// stay one line).
fn first_request(method: &str, uri: &str) -> String {
    let plain = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b));
    if method.len() + 1 + uri.len() <= FIRST_REQUEST_MAX && plain(method) && plain(uri) {
        // Nearly every request line: copied whole.
        let mut line = String::with_capacity(method.len() + 1 + uri.len());
        line.push_str(method);
        line.push(' ');
        line.push_str(uri);
        return line;
    }
    let mut line = String::with_capacity((method.len() + 1 + uri.len()).min(FIRST_REQUEST_MAX));
    for c in method.chars().chain([' ']).chain(uri.chars()) {
        if line.len() + c.len_utf8() > FIRST_REQUEST_MAX {
            line.push('…');
            break;
        }
        line.push(if c.is_control() { '?' } else { c });
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_line_stays_one_line_and_is_cut_at_a_character() {
        assert_eq!(first_request("GET", "/a?b=c"), "GET /a?b=c");
        assert_eq!(first_request("GET", "/a\r\nX: y"), "GET /a??X: y");
        let long = format!("/{}", "é".repeat(200));
        let line = first_request("GET", &long);
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
        assert_eq!(o.statuses.len(), STATUSES_MAX);
        assert!(o.statuses.windows(2).all(|w| w[0].0 < w[1].0));
        let counted: u64 = o.statuses.iter().map(|(_, n)| n).sum::<u64>() + o.other_statuses;
        assert_eq!(counted, 23);
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        for name in names.iter().chain(&names) {
            o.anomaly(name);
        }
        assert_eq!(o.anomalies.len(), ANOMALY_KINDS_MAX);
        assert_eq!(o.anomalies[0], ("a", 2));
        assert_eq!(o.other_anomalies, 4);
        assert!(!o.is_empty());
        assert!(AppOverview::new(3).is_empty());
    }
}
