//! The chat view: each connection as a conversation, the client's packets
//! on the left, the server's on the right, with notes and commentary.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io;

use super::phrases::{self, duration};
use crate::decode::flags::{ACK, FIN, RST, SYN};
use crate::decode::tcp::flag_names;
use crate::events::{Event, EventSink};
use crate::scripting::output::{Finding, ScriptOutput};
use crate::tracking::{ConnectionInfo, ConnectionSummary, Direction, PacketRecord};

/// Width of the view.
const WIDTH: usize = 80;
/// Width of a bubble, borders included.
const BUBBLE: usize = 54;
/// Payload bytes kept per packet for the preview.
const PREVIEW: usize = 48;

/// One packet kept for the view.
struct Shown {
    record: PacketRecord<'static>,
    preview: Vec<u8>,
}

/// One connection kept for the view.
struct Conversation {
    info: ConnectionInfo,
    packets: Vec<Shown>,
    dropped: u64,
    summary: Option<ConnectionSummary>,
    /// Decoded previews (request line, event, WebSocket message) by frame.
    decoded: BTreeMap<u64, Vec<String>>,
}

/// Collects what the chat view shows, as the events pass.
pub struct ChatCollector {
    only: Option<u64>,
    max_packets: usize,
    conversations: BTreeMap<u64, Conversation>,
}

impl ChatCollector {
    /// Keeps every connection (or only `only`), at most `max_packets`
    /// packets each.
    pub fn new(only: Option<u64>, max_packets: usize) -> Self {
        ChatCollector {
            only,
            max_packets,
            conversations: BTreeMap::new(),
        }
    }

    /// Whether any connection was seen.
    pub fn is_empty(&self) -> bool {
        self.conversations.is_empty()
    }
}

impl EventSink for ChatCollector {
    fn event(&mut self, event: &Event<'_>) -> io::Result<()> {
        let wanted = |conn: u64| self.only.is_none_or(|o| o == conn);
        match event {
            Event::Opened(info) if wanted(info.conn) => {
                self.conversations.insert(
                    info.conn,
                    Conversation {
                        info: **info,
                        packets: Vec::new(),
                        dropped: 0,
                        summary: None,
                        decoded: BTreeMap::new(),
                    },
                );
            }
            Event::Packet(p) if wanted(p.conn) => {
                if let Some(c) = self.conversations.get_mut(&p.conn) {
                    if c.packets.len() < self.max_packets {
                        c.packets.push(Shown {
                            record: p.detached(),
                            preview: p.payload[..p.payload.len().min(PREVIEW)].to_vec(),
                        });
                    } else {
                        c.dropped += 1;
                    }
                }
            }
            Event::App(app) if wanted(app.conn()) => {
                if let (Some(c), Some(text)) = (
                    self.conversations.get_mut(&app.conn()),
                    crate::render::app::preview(app),
                ) {
                    // A message is shown on the packet that brought its first
                    // byte; an event or a WebSocket message where it became readable.
                    let frame = match app {
                        crate::dissect::AppEvent::Http(_) => app.first_frame(),
                        _ => app.frame(),
                    };
                    let list = c.decoded.entry(frame).or_default();
                    if list.len() < 4 {
                        list.push(text);
                    } else if list.len() == 4 {
                        list.push("…".into());
                    }
                }
            }
            Event::Closed(s) if wanted(s.conn) => {
                if let Some(c) = self.conversations.get_mut(&s.conn) {
                    c.summary = Some((*s).clone());
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// How to draw the view.
#[derive(Clone, Debug, Default)]
pub struct ChatOptions {
    /// Show the lessons' commentary under the packets.
    pub commentary: bool,
    /// Use ANSI colours.
    pub color: bool,
    /// Scripts whose notes are commentary (the lessons); other scripts' notes
    /// are always shown.
    pub lessons: HashSet<String>,
    /// The lesson asked for: its summary comes first.
    pub chosen: Option<String>,
}

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(&self, t: &str) -> String {
        self.wrap("1", t)
    }
    fn client(&self, t: &str) -> String {
        self.wrap("36", t)
    }
    fn server(&self, t: &str) -> String {
        self.wrap("35", t)
    }
    fn warn(&self, t: &str) -> String {
        self.wrap(YELLOW, t)
    }
    fn bad(&self, t: &str) -> String {
        self.wrap(RED, t)
    }
    fn dim(&self, t: &str) -> String {
        self.wrap("2", t)
    }
    fn note(&self, t: &str) -> String {
        self.wrap(GREEN, t)
    }
}

const RED: &str = "31";
const YELLOW: &str = "33";
const GREEN: &str = "32";
const CYAN: &str = "36";

/// Splits `text` into lines of at most `width` characters, on spaces.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let mut word = word.to_string();
            while word.chars().count() > width {
                let head: String = word.chars().take(width).collect();
                let tail: String = word.chars().skip(width).collect();
                if !line.is_empty() {
                    out.push(std::mem::take(&mut line));
                }
                out.push(head);
                word = tail;
            }
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        out.push(line);
    }
    out
}

/// A short, safe preview of payload bytes: text escaped, or hex.
fn preview(bytes: &[u8], total: u32) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    let printable = bytes
        .iter()
        .filter(|b| {
            b.is_ascii_graphic() || **b == b' ' || **b == b'\r' || **b == b'\n' || **b == b'\t'
        })
        .count();
    let more = (bytes.len() as u32) < total;
    if printable * 10 >= bytes.len() * 9 {
        let mut s = String::from("\"");
        for &b in bytes {
            match b {
                b'\r' => s.push_str("\\r"),
                b'\n' => s.push_str("\\n"),
                b'\t' => s.push_str("\\t"),
                b'"' => s.push_str("\\\""),
                b if b.is_ascii_graphic() || b == b' ' => s.push(b as char),
                _ => s.push('.'),
            }
        }
        s.push('"');
        if more {
            s.push('…');
        }
        s
    } else {
        let hex: Vec<String> = bytes.iter().take(14).map(|b| format!("{b:02x}")).collect();
        format!(
            "bytes {}{}",
            hex.join(" "),
            if more || bytes.len() > 14 { " …" } else { "" }
        )
    }
}

fn flag_words(p: &PacketRecord<'_>) -> Vec<String> {
    let mut words: Vec<String> = p
        .analysis
        .iter()
        .filter_map(|f| phrases::flag(p, f))
        .collect();
    words.extend(p.insight.iter().map(|i| phrases::insight(i).to_string()));
    words
}

/// A bubble's lines, each with the colour to paint it in (if any).
struct Bubble {
    lines: Vec<(String, Option<&'static str>)>,
}

impl Bubble {
    /// Draws the bubble's lines, `indent` columns from the left.
    fn draw(&self, header: &str, indent: usize, paint: &Paint, client: bool, out: &mut String) {
        let inner = BUBBLE - 4;
        let pad = " ".repeat(indent);
        let color = |t: &str| {
            if client {
                paint.client(t)
            } else {
                paint.server(t)
            }
        };
        let head_len = header.chars().count();
        let rule = "─".repeat(BUBBLE.saturating_sub(head_len + 5));
        let _ = writeln!(out, "{pad}{}", color(&format!("┌─ {header} {rule}┐")));
        for (line, code) in &self.lines {
            for piece in wrap(line, inner) {
                let fill = " ".repeat(inner.saturating_sub(piece.chars().count()));
                let text = match code {
                    Some(code) => paint.wrap(code, &piece),
                    None => piece,
                };
                let _ = writeln!(out, "{pad}{} {text}{fill} {}", color("│"), color("│"));
            }
        }
        let _ = writeln!(
            out,
            "{pad}{}",
            color(&format!("└{}┘", "─".repeat(BUBBLE - 2)))
        );
    }
}

fn numbers(p: &PacketRecord<'_>) -> String {
    let mut s = flag_names(p.flags);
    if s.is_empty() {
        s.push_str("(no flags)");
    }
    let _ = write!(s, "  seq {}", p.seq);
    if p.flags & ACK != 0 {
        let _ = write!(s, "  ack {}", p.ack);
    }
    match p.len {
        Some(l) => {
            let _ = write!(s, "  len {l}");
        }
        None => s.push_str("  len ?"),
    }
    let _ = write!(s, "  win {}", p.win);
    s
}

fn finding_lines(findings: &[&Finding], paint: &Paint, out: &mut String) {
    for f in findings {
        let label = format!("{} {}", f.severity.name().to_uppercase(), f.title);
        let label = match f.severity {
            crate::scripting::Severity::Error => paint.bad(&label),
            crate::scripting::Severity::Warning => paint.warn(&label),
            crate::scripting::Severity::Info => label,
        };
        let _ = writeln!(out, "  {label}  [{}]", f.id);
        for line in wrap(&f.detail, WIDTH - 6) {
            let _ = writeln!(out, "      {line}");
        }
    }
}

/// Draws every collected conversation, with what the scripts said.
pub fn render(collector: &ChatCollector, scripts: &ScriptOutput, options: &ChatOptions) -> String {
    let paint = Paint { on: options.color };
    let mut notes: HashMap<u64, Vec<(&str, bool)>> = HashMap::new();
    for n in &scripts.notes {
        let lesson = options.lessons.contains(&n.script);
        if lesson && !options.commentary {
            continue;
        }
        notes
            .entry(n.frame)
            .or_default()
            .push((n.text.as_str(), lesson));
    }
    let mut out = String::new();
    for c in collector.conversations.values() {
        let info = &c.info;
        let title = format!(
            "connection {}: client {} (left), server {} (right)",
            info.conn, info.client, info.server
        );
        let _ = writeln!(out, "{}", paint.bold(&format!("━━ {title} ")));
        let mut previous: Option<i64> = None;
        let decoded = &c.decoded;
        for s in &c.packets {
            let p = &s.record;
            let client = p.dir == Direction::ClientToServer;
            let delta = previous.map_or(String::new(), |prev| {
                format!(" (+{})", duration(p.rel_time_ns - prev))
            });
            previous = Some(p.rel_time_ns);
            let side = if client { "client" } else { "server" };
            let header = format!(
                "{side} · frame {} · {:.6} s{delta}",
                p.frame,
                p.rel_time_ns as f64 / 1e9
            );
            let mut lines: Vec<(String, Option<&'static str>)> = vec![(numbers(p), None)];
            let state = if p.flags & (SYN | FIN | RST) != 0 && p.state != p.state_before {
                format!("{} → {}", p.state_before.name(), p.state.name())
            } else {
                format!("→ {}", p.state.name())
            };
            lines.push((state, None));
            if p.details.acks_frame != 0 {
                lines.push((
                    format!(
                        "acknowledges frame {} ({} after it)",
                        p.details.acks_frame,
                        duration(p.details.ack_rtt_ns)
                    ),
                    None,
                ));
            }
            let alarm = if p.flags & RST != 0 { RED } else { YELLOW };
            let words = flag_words(p);
            if p.flags & RST != 0 && words.is_empty() {
                lines.push(("reset".into(), Some(RED)));
            }
            for w in words {
                lines.push((w, Some(alarm)));
            }
            if p.in_icmp_error {
                lines.push(("quoted in an ICMP error".into(), None));
            }
            match decoded.get(&p.frame) {
                Some(list) => {
                    for text in list {
                        lines.push((text.clone(), Some(CYAN)));
                    }
                }
                None => {
                    let pv = preview(&s.preview, p.len.unwrap_or(0));
                    if !pv.is_empty() {
                        lines.push((pv, None));
                    }
                }
            }
            if p.missing > 0 {
                lines.push((format!("{} bytes not captured", p.missing), None));
            }
            let frame_notes = notes.get(&p.frame).map(Vec::as_slice).unwrap_or(&[]);
            for (text, lesson) in frame_notes {
                if !lesson {
                    lines.push((format!("✎ {text}"), Some(GREEN)));
                }
            }
            let bubble = Bubble { lines };
            let indent = if client { 0 } else { WIDTH - BUBBLE };
            bubble.draw(&header, indent, &paint, client, &mut out);
            for (text, lesson) in frame_notes {
                if *lesson {
                    for line in wrap(text, WIDTH - 4) {
                        let _ = writeln!(out, "  {} {}", paint.note("»"), line);
                    }
                }
            }
        }
        if c.dropped > 0 {
            let _ = writeln!(
                out,
                "  … {} more packets not shown (--max-packets)",
                c.dropped
            );
        }
        if let Some(s) = &c.summary {
            let line = format!(
                "handshake {}; closed {}; {} packets over {}",
                s.handshake.name(),
                super::text::close_phrase(s),
                s.packets[0] + s.packets[1],
                duration(s.duration_ns())
            );
            for piece in wrap(&line, WIDTH - 2) {
                let _ = writeln!(out, "  {}", paint.dim(&piece));
            }
        }
        let findings: Vec<&Finding> = scripts
            .sorted_findings()
            .into_iter()
            .filter(|f| f.conn == Some(info.conn))
            .collect();
        finding_lines(&findings, &paint, &mut out);
        out.push('\n');
    }
    let wide: Vec<&Finding> = scripts
        .sorted_findings()
        .into_iter()
        .filter(|f| f.conn.is_none())
        .collect();
    finding_lines(&wide, &paint, &mut out);
    let mut prints: Vec<&crate::scripting::output::Printed> = scripts
        .prints
        .iter()
        .filter(|p| options.commentary || !options.lessons.contains(&p.script))
        .collect();
    // The lesson asked for speaks first; the others keep their order.
    prints.sort_by_key(|p| Some(&p.script) != options.chosen.as_ref());
    let prints: Vec<&str> = prints.iter().map(|p| p.text.as_str()).collect();
    if !prints.is_empty() {
        let _ = writeln!(out, "{}", paint.bold("━━ summary"));
        for text in prints {
            for line in wrap(text, WIDTH - 2) {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    for e in &scripts.errors {
        let _ = writeln!(out, "{}", paint.bad(&format!("script error: {e}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_text_escaped_and_binary_as_hex() {
        assert_eq!(
            preview(b"GET / HTTP/1.1\r\n", 16),
            "\"GET / HTTP/1.1\\r\\n\""
        );
        assert_eq!(preview(b"GET", 100), "\"GET\"…");
        assert_eq!(preview(&[0x1f, 0x8b, 8, 0], 4), "bytes 1f 8b 08 00");
    }

    #[test]
    fn wraps_on_spaces_and_cuts_long_words() {
        assert_eq!(wrap("aaa bbb ccc", 7), ["aaa bbb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    }
}
