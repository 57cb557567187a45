//! Application events for people and for programs: JSON objects (a contract,
//! listed in `docs/json.md`), the text of `chattcp follow`, and the short
//! previews of the chat view.

use serde_json::{json, Map, Value};

use crate::capture::Timestamp;
use crate::dissect::websocket::opcode_name;
use crate::dissect::{AppEvent, At, Header, HttpMessage, SseEvent, StartLine, WsFrame, WsMessage};

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

fn rel(at: At, start: Timestamp) -> f64 {
    secs(at.time.since(start))
}

/// Bytes as JSON: text when they are UTF-8, else hex under `<key>_hex`.
fn put_bytes(m: &mut Map<String, Value>, key: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(t) => {
            m.insert(key.into(), Value::String(t.into()));
        }
        Err(_) => {
            m.insert(format!("{key}_hex"), Value::String(hex(bytes)));
        }
    }
}

/// Lower-case hex, no separators.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn headers_json(headers: &[Header]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|h| {
                json!({
                    "name": h.name,
                    "value": h.value,
                    "raw": String::from_utf8_lossy(h.raw()),
                })
            })
            .collect(),
    )
}

fn http_json(msg: &HttpMessage, start: Timestamp) -> Value {
    let mut m = Map::new();
    let kind = match msg.start {
        StartLine::Request { .. } => "http_request",
        StartLine::Response { .. } => "http_response",
    };
    m.insert("type".into(), json!(kind));
    m.insert("conn".into(), json!(msg.conn.get()));
    m.insert("dir".into(), json!(msg.dir.name()));
    m.insert("index".into(), json!(msg.index));
    match &msg.start {
        StartLine::Request { method, uri } => {
            m.insert("method".into(), json!(method));
            m.insert("uri".into(), json!(uri));
        }
        StartLine::Response { status, reason } => {
            m.insert("status".into(), json!(status));
            m.insert("reason".into(), json!(reason));
            m.insert("answers".into(), json!(msg.answers));
            m.insert("ttfb".into(), json!(msg.ttfb_ns.map(secs)));
        }
    }
    m.insert("version".into(), json!(msg.version));
    m.insert("headers".into(), headers_json(msg.headers()));
    if let Some(h) = &msg.strict_headers {
        m.insert("strict_headers".into(), headers_json(h));
    }
    if let Some(h) = &msg.lenient_headers {
        m.insert("lenient_headers".into(), headers_json(h));
    }
    m.insert("content_type".into(), json!(msg.content_type));
    m.insert("transfer_encoding".into(), json!(msg.transfer_encoding));
    m.insert("content_encoding".into(), json!(msg.content_encoding));
    m.insert("content_length".into(), json!(msg.content_length));
    m.insert("body_wire_len".into(), json!(msg.body_wire_len));
    m.insert("body_decoded_len".into(), json!(msg.body_decoded_len));
    put_bytes(&mut m, "body", &msg.body);
    m.insert("body_truncated".into(), json!(msg.body_truncated));
    m.insert(
        "body_first_frame".into(),
        json!(msg.body_first.map(|a| a.frame)),
    );
    m.insert(
        "body_first_time".into(),
        json!(msg.body_first.map(|a| rel(a, start))),
    );
    m.insert("first_frame".into(), json!(msg.first.frame));
    m.insert("first_time".into(), json!(rel(msg.first, start)));
    m.insert("head_end_frame".into(), json!(msg.head_end.frame));
    m.insert("last_frame".into(), json!(msg.last.frame));
    m.insert("last_time".into(), json!(rel(msg.last, start)));
    if msg.upgrade.is_some() {
        m.insert("upgrade".into(), json!(msg.upgrade));
    }
    if msg.websocket_accept_valid.is_some() {
        m.insert(
            "websocket_accept_valid".into(),
            json!(msg.websocket_accept_valid),
        );
    }
    m.insert(
        "anomalies".into(),
        Value::Array(
            msg.anomalies
                .iter()
                .map(|a| json!({"name": a.name, "offset": a.offset, "detail": a.detail}))
                .collect(),
        ),
    );
    m.insert("complete".into(), json!(msg.complete));
    Value::Object(m)
}

fn sse_json(e: &SseEvent, start: Timestamp) -> Value {
    json!({
        "type": "sse_event",
        "conn": e.conn,
        "response": e.response,
        "index": e.index,
        "event": e.event,
        "data": e.data,
        "id": e.id,
        "retry": e.retry,
        "comments": e.comments,
        "first_frame": e.first.frame,
        "frame": e.readable.frame,
        "time": rel(e.readable, start),
        "arrived_frame": e.arrived.frame,
        "arrived_time": rel(e.arrived, start),
        "compressed": e.compressed,
        "decodable_on_arrival": e.decodable_on_arrival,
        "held_back": secs(e.held_back_ns),
        "quiet_before": secs(e.quiet_before_ns),
        "truncated": e.truncated,
    })
}

fn ws_frame_json(f: &WsFrame, start: Timestamp) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!("ws_frame"));
    m.insert("conn".into(), json!(f.conn));
    m.insert("dir".into(), json!(f.dir.name()));
    m.insert("index".into(), json!(f.index));
    m.insert("fin".into(), json!(f.fin));
    m.insert("rsv1".into(), json!(f.rsv1));
    m.insert("rsv2".into(), json!(f.rsv2));
    m.insert("rsv3".into(), json!(f.rsv3));
    m.insert("opcode".into(), json!(f.opcode));
    m.insert("opcode_name".into(), json!(opcode_name(f.opcode)));
    m.insert("masked".into(), json!(f.mask.is_some()));
    m.insert("mask".into(), json!(f.mask.map(|k| hex(&k))));
    m.insert("payload_len".into(), json!(f.payload_len));
    if f.missing > 0 {
        m.insert("missing".into(), json!(f.missing));
    }
    put_bytes(&mut m, "payload", &f.payload);
    if f.opcode == 8 {
        m.insert("close_code".into(), json!(f.close_code));
        m.insert("close_reason".into(), json!(f.close_reason));
    }
    m.insert("first_frame".into(), json!(f.first.frame));
    m.insert("frame".into(), json!(f.last.frame));
    m.insert("time".into(), json!(rel(f.last, start)));
    Value::Object(m)
}

fn ws_message_json(w: &WsMessage, start: Timestamp) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!("ws_message"));
    m.insert("conn".into(), json!(w.conn));
    m.insert("dir".into(), json!(w.dir.name()));
    m.insert("index".into(), json!(w.index));
    m.insert("opcode".into(), json!(w.opcode));
    m.insert("opcode_name".into(), json!(opcode_name(w.opcode)));
    m.insert("frames".into(), json!(w.frames));
    m.insert("compressed".into(), json!(w.compressed));
    m.insert("wire_len".into(), json!(w.wire_len));
    m.insert("len".into(), json!(w.len));
    put_bytes(&mut m, "data", &w.data);
    if w.opcode == 1 {
        m.insert("valid_utf8".into(), json!(w.valid_utf8));
    }
    if w.opcode == 8 {
        m.insert("close_code".into(), json!(w.close_code));
        m.insert("close_reason".into(), json!(w.close_reason));
    }
    m.insert("anomalies".into(), json!(w.anomalies));
    m.insert("first_frame".into(), json!(w.first.frame));
    m.insert("frame".into(), json!(w.last.frame));
    m.insert("time".into(), json!(rel(w.last, start)));
    Value::Object(m)
}

/// An application event as a JSON object; times count from `start`, the
/// capture's first frame.
pub fn app_json(e: &AppEvent, start: Timestamp) -> Value {
    match e {
        AppEvent::Http(m) => http_json(m, start),
        AppEvent::HttpHead(m) => {
            let mut v = http_json(m, start);
            if let Some(o) = v.as_object_mut() {
                let kind = if m.method().is_some() {
                    "http_request_head"
                } else {
                    "http_response_head"
                };
                o.insert("type".into(), json!(kind));
            }
            v
        }
        AppEvent::HttpUnanswered(m) => {
            let mut v = http_json(m, start);
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), json!("http_unanswered"));
            }
            v
        }
        AppEvent::Sse(s) => sse_json(s, start),
        AppEvent::WsFrame(f) => ws_frame_json(f, start),
        AppEvent::WsMessage(m) => ws_message_json(m, start),
    }
}

/// Text shown to a person: control bytes escaped (`\r`, `\n`, `\x00`), at
/// most `max` characters, `…` when cut.
pub fn escaped(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether bytes read as text (UTF-8 without control bytes other than
/// whitespace).
pub fn is_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|t| {
        t.chars()
            .all(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\t'))
    })
}

/// A one-line preview of an application event, for the chat view; `None`
/// for events the view does not show (WebSocket frames: their message is shown).
pub fn preview(e: &AppEvent) -> Option<String> {
    match e {
        AppEvent::Http(m) => {
            if m.version.is_empty() {
                let why = m.anomalies.first().map_or("", |a| a.name);
                return Some(format!("HTTP: not a readable message ({why})"));
            }
            Some(m.start_line())
        }
        AppEvent::Sse(s) => Some(format!(
            "event {}: {}",
            s.event,
            escaped(s.data.as_bytes(), 34)
        )),
        AppEvent::WsFrame(_) | AppEvent::HttpHead(_) | AppEvent::HttpUnanswered(_) => None,
        AppEvent::WsMessage(m) => {
            let name = opcode_name(m.opcode);
            let compressed = if m.compressed { " (deflated)" } else { "" };
            Some(match m.opcode {
                8 => match m.close_code {
                    Some(code) => format!(
                        "WebSocket close {code} \"{}\"",
                        escaped(m.close_reason.as_deref().unwrap_or("").as_bytes(), 30)
                    ),
                    None => "WebSocket close".into(),
                },
                2 => format!("WebSocket binary, {} bytes{compressed}", m.len),
                _ if is_text(&m.data) => {
                    format!("WebSocket {name} \"{}\"{compressed}", escaped(&m.data, 30))
                }
                _ => format!("WebSocket {name}, {} bytes{compressed}", m.len),
            })
        }
    }
}

fn header_lines(out: &mut String, headers: &[Header], indent: &str) {
    for h in headers {
        out.push_str(&format!(
            "{indent}{}: {}\n",
            h.name,
            escaped(h.raw(), 200).trim()
        ));
    }
}

fn body_text(out: &mut String, body: &[u8], truncated: bool) {
    if body.is_empty() {
        return;
    }
    if is_text(body) {
        let shown = &body[..body.len().min(4096)];
        for line in String::from_utf8_lossy(shown).split_inclusive('\n') {
            out.push_str(&format!("    {}\n", escaped(line.as_bytes(), 200)));
        }
        if body.len() > shown.len() || truncated {
            out.push_str("    …\n");
        }
    } else {
        let shown = &body[..body.len().min(64)];
        out.push_str(&format!(
            "    bytes {}{}\n",
            hex(shown),
            if body.len() > 64 { " …" } else { "" }
        ));
    }
}

fn frames(first: At, last: At) -> String {
    if first.frame == last.frame {
        format!("frame {}", first.frame)
    } else {
        format!("frames {}–{}", first.frame, last.frame)
    }
}

/// The head of an HTTP message as `chattcp follow` prints it.
pub fn follow_http_head(m: &HttpMessage, start: Timestamp) -> String {
    let mut out = String::new();
    let who = match m.dir.name() {
        "c2s" => "client → server",
        _ => "server → client",
    };
    let what = match (&m.start, m.answers) {
        _ if m.version.is_empty() => format!("message {} (not readable as HTTP)", m.index),
        (StartLine::Request { .. }, _) => format!("request {}", m.index),
        (StartLine::Response { .. }, Some(a)) => format!("response {} (to request {a})", m.index),
        (StartLine::Response { .. }, None) => format!("response {}", m.index),
    };
    out.push_str(&format!(
        "{who}  {what}  frame {}  {:.6} s",
        m.first.frame,
        rel(m.first, start)
    ));
    if let Some(t) = m.ttfb_ns {
        out.push_str(&format!(
            "  (first byte {} after the request)",
            crate::scripting::host::fmt_duration(secs(t))
        ));
    }
    out.push('\n');
    if m.version.is_empty() {
        out.push_str(&format!("    {}\n", escaped(&m.raw_head, 400)));
    } else {
        out.push_str(&format!("  {}\n", m.start_line()));
        header_lines(&mut out, m.headers(), "  ");
    }
    if let (Some(strict), Some(lenient)) = (&m.strict_headers, &m.lenient_headers) {
        out.push_str("  read with CRLF as the only line end, the headers are:\n");
        header_lines(&mut out, strict, "    ");
        out.push_str("  read with a bare LF as a line end, they are:\n");
        header_lines(&mut out, lenient, "    ");
    }
    out
}

/// The rest of an HTTP message (body, anomalies) as `chattcp follow` prints
/// it; `with_head` when its head was not printed before.
pub fn follow_http(m: &HttpMessage, start: Timestamp, with_head: bool) -> String {
    let mut out = if with_head {
        follow_http_head(m, start)
    } else {
        format!(
            "  (end of {} {}: frame {}, {:.6} s)\n",
            if m.method().is_some() {
                "request"
            } else {
                "response"
            },
            m.index,
            m.last.frame,
            rel(m.last, start)
        )
    };
    for a in &m.anomalies {
        out.push_str(&format!("  ! {}: {}\n", a.name, a.detail));
    }
    if m.body_wire_len > 0 || !m.body.is_empty() {
        let coding = match (&m.transfer_encoding, &m.content_encoding) {
            (Some(t), Some(c)) => format!(" ({t}, {c})"),
            (Some(t), None) => format!(" ({t})"),
            (None, Some(c)) => format!(" ({c})"),
            (None, None) => String::new(),
        };
        out.push_str(&format!(
            "  body: {} bytes on the wire{coding}, {} decoded, {}\n",
            m.body_wire_len,
            m.body_decoded_len,
            frames(m.first, m.last)
        ));
        let is_sse = m.is_event_stream();
        if !is_sse {
            body_text(&mut out, &m.body, m.body_truncated);
        }
    }
    if !m.complete {
        out.push_str("  (cut short: the connection ended before the message did)\n");
    }
    out
}

/// One application event as `chattcp follow` prints it (an HTTP message in full).
pub fn follow_text(e: &AppEvent, start: Timestamp) -> String {
    let mut out = String::new();
    match e {
        AppEvent::Http(m) => out.push_str(&follow_http(m, start, true)),
        AppEvent::HttpHead(m) => out.push_str(&follow_http_head(m, start)),
        // The request was shown when it came; its having no answer shows.
        AppEvent::HttpUnanswered(_) => {}
        AppEvent::Sse(s) => {
            out.push_str(&format!(
                "  event {} {:?} at {:.6} s (frame {})",
                s.index,
                s.event,
                rel(s.readable, start),
                s.readable.frame
            ));
            if s.compressed && !s.decodable_on_arrival {
                out.push_str(&format!(
                    ", its bytes on the wire since {:.6} s (frame {}): held back {}",
                    rel(s.arrived, start),
                    s.arrived.frame,
                    crate::scripting::host::fmt_duration(secs(s.held_back_ns))
                ));
            }
            out.push('\n');
            if let Some(id) = &s.id {
                out.push_str(&format!("    id: {id}\n"));
            }
            for line in s.data.split('\n') {
                out.push_str(&format!("    data: {}\n", escaped(line.as_bytes(), 200)));
            }
        }
        AppEvent::WsFrame(_) => {}
        AppEvent::WsMessage(m) => {
            let who = match m.dir.name() {
                "c2s" => "client → server",
                _ => "server → client",
            };
            let extra = match (m.frames, m.compressed) {
                (1, false) => String::new(),
                (1, true) => format!(", deflated from {} bytes", m.wire_len),
                (n, false) => format!(", {n} frames"),
                (n, true) => format!(", {n} frames, deflated from {} bytes", m.wire_len),
            };
            out.push_str(&format!(
                "{who}  WebSocket {} ({} bytes{extra})  {}  {:.6} s\n",
                opcode_name(m.opcode),
                m.len,
                frames(m.first, m.last),
                rel(m.last, start)
            ));
            if m.opcode == 8 {
                if let Some(code) = m.close_code {
                    out.push_str(&format!(
                        "    code {code}, reason {:?}\n",
                        m.close_reason.as_deref().unwrap_or("")
                    ));
                }
            } else {
                body_text(&mut out, &m.data, m.len > m.data.len() as u64);
            }
            for a in &m.anomalies {
                out.push_str(&format!("  ! {a}\n"));
            }
        }
    }
    out
}
