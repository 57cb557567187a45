//! Plain text output that fits an 80-column terminal.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::conn_order::ConnOrder;
use crate::conn_table::{ConnTable, ShortBytes, Slot};
use crate::decode::flags::{ACK, CWR, ECE, FIN, PSH, RST, SYN, URG};
use crate::dissect::AppOverview;
use crate::events::{Event, EventSink};
use crate::tracking::analysis::Flag;
use crate::tracking::summary::{completeness_label, completeness_name};
use crate::tracking::{
    CloseStyle, ConnectionSummary, Direction, Endpoint, HandshakeOutcome, PacketRecord, RunSummary,
};
use std::net::IpAddr;

/// tcpdump's compact flag letters: `S`, `S.`, `P.`, `F.`, `R`, ...
pub struct FlagLetters(pub u16);

impl std::fmt::Display for FlagLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Build on the stack so that width and alignment apply to the whole.
        let mut buf = [0u8; 8];
        let mut n = 0;
        let bits = self.0;
        for (bit, c) in [
            (SYN, b'S'),
            (FIN, b'F'),
            (PSH, b'P'),
            (RST, b'R'),
            (URG, b'U'),
            (ECE, b'E'),
            (CWR, b'W'),
        ] {
            if bits & bit != 0 {
                buf[n] = c;
                n += 1;
            }
        }
        if bits & ACK != 0 {
            buf[n] = b'.';
            n += 1;
        }
        if n == 0 {
            buf[0] = b'-';
            n = 1;
        }
        f.pad(std::str::from_utf8(&buf[..n]).unwrap_or("?"))
    }
}

/// Seconds with millisecond precision and a unit, e.g. `0.102 s`, `15.000 s`.
pub fn seconds(ns: i64) -> String {
    Secs(ns).to_string()
}

/// [`seconds`] written straight into the output, without a `String`.
struct Secs(i64);

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = self.0;
        if ns != 0 && ns.abs() < 1_000_000 {
            write!(f, "{:.3} ms", ns as f64 / 1e6)
        } else {
            write!(f, "{:.3} s", ns as f64 / 1e9)
        }
    }
}

/// How a connection closed, in words: `three_packet, by the client`, or
/// `reset: RST from the server after fin; the client had begun to close`.
pub fn close_phrase(c: &ConnectionSummary) -> String {
    let mut t = Block::default();
    push_close_phrase(&mut t, c);
    t.into_string()
}

/// A connection's text being built: bytes, so that appending a number
/// needs no UTF-8 check; only `str` pieces go in, so it stays UTF-8.
#[derive(Default)]
struct Block(Vec<u8>);

impl Block {
    // Inlined so that a literal's length is known where it is appended:
    // the copy is then a few moves instead of a call to memcpy.
    #[inline(always)]
    fn push_str(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    #[inline(always)]
    fn push(&mut self, c: char) {
        if c.is_ascii() {
            self.0.push(c as u8);
        } else {
            let mut utf8 = [0u8; 4];
            self.push_str(c.encode_utf8(&mut utf8));
        }
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn into_string(self) -> String {
        // Only `str` pieces were appended: nothing can be lossy.
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl std::fmt::Write for Block {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// [`close_phrase`] appended to `t`, without a `String` of its own.
fn push_close_phrase(t: &mut Block, c: &ConnectionSummary) {
    match (c.close, c.reset_by) {
        (CloseStyle::Reset, Some(rst)) => {
            t.push_str("reset: RST from the ");
            t.push_str(rst.name());
            if let Some(after) = c.reset_after {
                t.push_str(" after ");
                t.push_str(after);
            }
            if let Some(first) = c.closed_by.filter(|r| *r != rst) {
                t.push_str("; the ");
                t.push_str(first.name());
                t.push_str(" had begun to close");
            }
        }
        (style, _) => {
            t.push_str(style.name());
            if let Some(r) = c.closed_by {
                t.push_str(", by the ");
                t.push_str(r.name());
            }
        }
    }
}

/// Appends `v` in decimal: `core::fmt` costs several times more, and a
/// connection's block has a dozen numbers. Inlined: for the few digits of
/// most of them, the call cost as much as the digits.
#[inline(always)]
fn push_u64(s: &mut Block, mut v: u64) {
    // Two digits at a time from a table: half the divisions.
    let mut buf = [0u8; 20];
    let mut start = buf.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        start -= 2;
        buf[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        start -= 2;
        buf[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        start -= 1;
        buf[start] = b'0' + v as u8;
    }
    let digits = &buf[start..];
    if digits.len() <= 4 {
        // Most numbers here (ports, octets, counts): byte by byte costs
        // less than a call to memcpy.
        for &digit in digits {
            s.0.push(digit);
        }
    } else {
        s.0.extend_from_slice(digits);
    }
}

/// "00", "01", ... "99", end to end: two digits of a number at a time.
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// Appends `v`, then spaces up to `width` characters (as `{:<width}`).
fn push_u64_left(s: &mut Block, v: u64, width: usize) {
    let before = s.len();
    push_u64(s, v);
    for _ in s.len() - before..width {
        s.push(' ');
    }
}

/// Appends an endpoint as its `Display` does (`1.2.3.4:80`, `[::1]:80`);
/// IPv4 by hand, IPv6 (whose shortening rules are subtle) through `fmt`.
fn push_endpoint(s: &mut Block, e: &Endpoint) {
    match e.ip {
        IpAddr::V4(a) => {
            let [x, y, z, w] = a.octets();
            push_u64(s, u64::from(x));
            s.push('.');
            push_u64(s, u64::from(y));
            s.push('.');
            push_u64(s, u64::from(z));
            s.push('.');
            push_u64(s, u64::from(w));
            s.push(':');
            push_u64(s, u64::from(e.port));
        }
        IpAddr::V6(_) => {
            let _ = write!(s, "{e}");
        }
    }
}

/// Appends [`Secs`]`(ns)`, with integer arithmetic where it gives the same
/// digits as `{:.3}` on the float.
///
/// Below 10^15 ns the quotient `ns as f64 / 1e9` (or `/ 1e6`) is within a
/// fraction of a nanosecond of the exact one, so rounding to three decimals
/// agrees with integer rounding unless the exact value lies on the midpoint
/// itself; that case, negative values and huge ones go through `fmt`.
fn push_secs(s: &mut Block, ns: i64) {
    let (unit, suffix) = if ns != 0 && ns.abs() < 1_000_000 {
        (1_000u64, " ms")
    } else {
        (1_000_000u64, " s")
    };
    let half = unit / 2;
    match u64::try_from(ns) {
        Ok(v) if v < 1_000_000_000_000_000 && v % unit != half => {
            let thousandths = v / unit + u64::from(v % unit > half);
            push_u64(s, thousandths / 1000);
            s.push('.');
            let frac = thousandths % 1000;
            if frac < 100 {
                s.push('0');
            }
            if frac < 10 {
                s.push('0');
            }
            push_u64(s, frac);
            s.push_str(suffix);
        }
        _ => {
            let _ = write!(s, "{}", Secs(ns));
        }
    }
}

/// A length, or `?` when unknowable.
struct LenOrUnknown(Option<u32>);

impl std::fmt::Display for LenOrUnknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(l) => std::fmt::Display::fmt(&l, f),
            None => f.pad("?"),
        }
    }
}

/// Bytes of connections' text held before they are written out.
const PENDING_FLUSH: usize = 64 << 10;

/// Writes the text views.
pub struct TextWriter<W: Write> {
    out: W,
    kind: TextKind,
    header_done: bool,
    line: String,
    /// Connections' blocks, rendered, put back in connection order: a
    /// block that has to wait is a few hundred bytes of text, cheaper to
    /// keep than a copy of its summary.
    order: ConnOrder<Vec<u8>>,
    /// Connections' text not yet written out, in order.
    buf: Block,
    /// The application lines of connections whose overview came before
    /// their summary, by connection (an overview comes when the
    /// connection's application data ended, or just before its summary).
    app_lines: ConnTable<ShortBytes>,
    /// Where an overview is rendered before it is kept.
    scratch: Block,
    /// Flush after every line (for live pipes).
    pub flush_each: bool,
}

/// Which view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// A line per packet.
    Packets,
    /// A block per connection.
    Conns,
}

impl<W: Write> TextWriter<W> {
    /// A writer of the `kind` view.
    pub fn new(out: W, kind: TextKind) -> Self {
        TextWriter {
            out,
            kind,
            header_done: false,
            line: String::with_capacity(160),
            order: ConnOrder::default(),
            buf: Block::default(),
            app_lines: ConnTable::with_window(ShortBytes::WINDOW),
            scratch: Block::default(),
            flush_each: false,
        }
    }

    fn packet(&mut self, p: &PacketRecord<'_>) -> io::Result<()> {
        if !self.header_done {
            self.header_done = true;
            writeln!(
                self.out,
                "{:>5} {:>9} {:>4}   {:<5} {:>10} {:>10} {:>5} {:>7} STATE",
                "FRAME", "TIME", "CONN", "FLAGS", "SEQ", "ACK", "LEN", "WIN"
            )?;
        }
        let line = &mut self.line;
        line.clear();
        let arrow = match p.dir {
            Direction::ClientToServer => '>',
            Direction::ServerToClient => '<',
        };
        let _ = write!(
            line,
            "{:>5} {:>9.6} {:>4} {}  {:<5} {:>10} {:>10} {:>5} {:>7} {}",
            p.frame,
            p.rel_time_ns as f64 / 1e9,
            p.conn,
            arrow,
            FlagLetters(p.flags),
            p.seq,
            p.ack,
            LenOrUnknown(p.len),
            p.win,
            p.state.name()
        );
        if p.in_icmp_error {
            line.push_str(
                "\n                        quoted in an ICMP error, not a packet of the connection",
            );
        }
        if !p.analysis.is_empty() || !p.insight.is_empty() || p.missing > 0 {
            line.push_str("\n                        ");
            let mut first = true;
            for f in p.analysis.iter() {
                if !first {
                    line.push_str(", ");
                }
                first = false;
                line.push_str(f.name());
                match f {
                    Flag::DuplicateAck => {
                        let _ = write!(
                            line,
                            " #{} of {}",
                            p.details.dup_ack_num, p.details.dup_ack_frame
                        );
                    }
                    Flag::Retransmission if p.details.rto_frame != 0 => {
                        let _ = write!(
                            line,
                            " of {} after {}",
                            p.details.rto_frame,
                            seconds(p.details.rto_ns)
                        );
                    }
                    _ => {}
                }
            }
            for i in p.insight.iter() {
                if !first {
                    line.push_str(", ");
                }
                first = false;
                let _ = write!(line, "really: {}", i.name());
            }
            if p.missing > 0 {
                if !first {
                    line.push_str(", ");
                }
                let _ = write!(line, "{} payload bytes not captured", p.missing);
            }
        }
        line.push('\n');
        self.out.write_all(line.as_bytes())?;
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Renders a connection's block into `s` (what `conns` prints for it).
    fn render_conn(s: &mut Block, c: &ConnectionSummary) {
        push_conn_number(s, c.conn);
        render_conn_body(s, c);
    }

    /// A block rendered by a worker thread ([`conn_block_body`]), given
    /// its number: what [`Self::render_conn`] would have made of it.
    fn rendered_block(&mut self, conn: u64, body: &[u8]) -> io::Result<()> {
        let start = self.buf.len();
        push_conn_number(&mut self.buf, conn);
        self.buf.0.extend_from_slice(body);
        self.place_block(conn, start)
    }

    /// Puts connection `conn`'s block, rendered into the output held here
    /// from `start`, in its place in connection order, and writes out what
    /// is ready once enough is.
    fn place_block(&mut self, conn: u64, start: usize) -> io::Result<()> {
        self.order.push_rendered(conn, &mut self.buf.0, start);
        if self.buf.len() >= PENDING_FLUSH {
            self.out.write_all(&self.buf.0)?;
            self.buf.0.clear();
        }
        Ok(())
    }

    fn end(&mut self, r: &RunSummary) -> io::Result<()> {
        if self.kind == TextKind::Conns {
            let pending = &mut self.buf.0;
            self.order.finish(|text| {
                pending.extend_from_slice(text);
                Ok(())
            })?;
            self.out.write_all(&self.buf.0)?;
            self.buf.0.clear();
            let span = match (r.start, r.end) {
                (Some(a), Some(b)) => seconds(b.since(a)),
                _ => "0 s".into(),
            };
            writeln!(
                self.out,
                "{} connections, {} TCP packets of {} frames, over {}",
                r.connections, r.tcp_packets, r.frames, span
            )?;
            if r.reassembly_cap_hits > 0 {
                writeln!(
                    self.out,
                    "reassembly buffers hit their cap {} times: holes were given up as gaps (--reassembly-per-direction, --reassembly-total)",
                    r.reassembly_cap_hits
                )?;
            }
            if !r.skipped.is_empty() {
                let skipped: Vec<String> = r
                    .skipped
                    .iter()
                    .map(|(why, n)| format!("{why} {n}"))
                    .collect();
                writeln!(self.out, "frames skipped: {}", skipped.join(", "))?;
            }
        }
        self.out.flush()
    }
}

impl<W: Write> Drop for TextWriter<W> {
    /// A run stopped before its end still shows what was rendered, as it
    /// would have had the text gone straight to the writer.
    fn drop(&mut self) {
        if !self.buf.0.is_empty() {
            let _ = self.out.write_all(&self.buf.0);
        }
    }
}

impl<W: Write> EventSink for TextWriter<W> {
    fn event(&mut self, event: &Event<'_>) -> io::Result<()> {
        match (self.kind, event) {
            (TextKind::Packets, Event::Packet(p)) => self.packet(p),
            (TextKind::Conns, Event::Closed(c)) => {
                // Blocks are rendered straight into the output held here,
                // written out in large pieces: no copy per block into the
                // writer's buffer, no allocation unless a block must wait.
                let start = self.buf.len();
                Self::render_conn(&mut self.buf, c);
                if let Slot::Live(lines) = self.app_lines.close(c.conn) {
                    self.buf.0.extend_from_slice(lines.as_bytes());
                }
                self.place_block(c.conn, start)
            }
            (TextKind::Conns, Event::Overview(o)) => {
                self.scratch.0.clear();
                render_overview(&mut self.scratch, o);
                *self.app_lines.slot(o.conn) = Slot::Live(ShortBytes::new(&self.scratch.0));
                Ok(())
            }
            (_, Event::End(r)) => self.end(r),
            _ => Ok(()),
        }
    }

    fn closed_rendered(&mut self, conn: u64, block: &[u8]) -> io::Result<()> {
        match self.kind {
            TextKind::Conns => self.rendered_block(conn, block),
            // Like any sink that did not ask for blocks: said, not dropped.
            TextKind::Packets => Err(io::Error::other(format!(
                "connection {conn} came rendered to the packets view"
            ))),
        }
    }
}

/// `#N` and the space after it, the number padded to three places: how a
/// connection's block starts.
fn push_conn_number(s: &mut Block, conn: u64) {
    s.push('#');
    push_u64_left(s, conn, 3);
    s.push(' ');
}

/// A connection's block after its number: its endpoints, times, counts,
/// handshake, close, verdicts and flags.
fn render_conn_body(s: &mut Block, c: &ConnectionSummary) {
    push_endpoint(s, &c.client);
    s.push_str(" > ");
    push_endpoint(s, &c.server);
    s.push_str("  (");
    push_secs(s, c.duration_ns());
    s.push_str(" from ");
    push_secs(s, c.start_rel_ns);
    s.push_str(")\n     sent      client ");
    push_u64(s, c.packets[0]);
    s.push_str(" packets ");
    push_u64(s, c.bytes[0]);
    s.push_str(" bytes, server ");
    push_u64(s, c.packets[1]);
    s.push_str(" packets ");
    push_u64(s, c.bytes[1]);
    s.push_str(" bytes\n");
    // Wireshark's iRTT also times a SYN answered by RST; say it only
    // for a real handshake.
    let handshake_seen = matches!(
        c.handshake,
        HandshakeOutcome::Complete | HandshakeOutcome::FinalAckLost
    );
    s.push_str("     opened    ");
    s.push_str(c.handshake.name());
    if let (Some(n), true) = (c.irtt_ns, handshake_seen) {
        s.push_str(", iRTT ");
        push_secs(s, n);
    }
    s.push_str("\n     closed    ");
    push_close_phrase(s, c);
    s.push_str("\n     verdicts  completeness ");
    push_u64(s, u64::from(c.completeness));
    s.push_str(" (");
    match completeness_name(c.completeness) {
        Some(label) => s.push_str(label),
        None => s.push_str(&completeness_label(c.completeness)),
    }
    s.push_str("); zeek ");
    s.push_str(c.conn_state);
    s.push(' ');
    s.push_str(&c.history);
    s.push('\n');
    let mut first = true;
    for (i, f) in Flag::ALL.iter().enumerate() {
        if c.flag_counts[i] > 0 {
            s.push_str(if first { "     flags     " } else { ", " });
            s.push_str(f.name());
            s.push(' ');
            push_u64(s, c.flag_counts[i]);
            first = false;
        }
    }
    if !first {
        s.push('\n');
    }
}

/// What `conns` prints for connection `c` after its `#N`, appended to
/// `out`: a worker thread renders it, the merging thread numbers it
/// ([`crate::events::EventSink::closed_rendered`]).
pub fn conn_block_body(c: &ConnectionSummary, out: &mut Vec<u8>) {
    let mut s = Block(std::mem::take(out));
    render_conn_body(&mut s, c);
    *out = s.0;
}

/// The application lines `conns` prints for a connection's overview,
/// appended to `out` (they follow its block).
pub fn overview_lines(o: &AppOverview, out: &mut Vec<u8>) {
    let mut s = Block(std::mem::take(out));
    render_overview(&mut s, o);
    *out = s.0;
}

/// `items` as `label count, label count, ...`, then what did not fit as
/// `other`: `label` writes an item's label, `count` a count after one.
fn push_tallies<T: Copy>(
    s: &mut Block,
    items: &[(T, u64)],
    other: u64,
    label: impl Fn(&mut Block, T),
    count: impl Fn(&mut Block, u64),
) {
    let mut sep = "";
    for &(item, n) in items {
        s.push_str(sep);
        label(s, item);
        count(s, n);
        sep = ", ";
    }
    if other > 0 {
        s.push_str(sep);
        s.push_str("other");
        count(s, other);
    }
}

/// A connection's application lines in `conns`: its HTTP exchange, body
/// bytes, anomalies, event stream and WebSocket messages, each when there
/// was any.
fn render_overview(s: &mut Block, o: &AppOverview) {
    let plural = |s: &mut Block, n: u64, one: &str, many: &str| {
        push_u64(s, n);
        s.push(' ');
        s.push_str(if n == 1 { one } else { many });
    };
    if o.requests + o.responses + o.unreadable > 0 {
        s.push_str("     http      ");
        plural(s, o.requests, "request", "requests");
        if let Some(first) = o.first_request() {
            s.push_str(if o.requests == 1 { " (" } else { " (first " });
            s.push_str(first);
            s.push(')');
        }
        s.push_str(", ");
        plural(s, o.responses, "response", "responses");
        if o.responses > 0 {
            s.push_str(" (");
            push_tallies(
                s,
                o.statuses(),
                o.other_statuses,
                |s, status| push_u64(s, u64::from(status)),
                |s, n| {
                    if n > 1 {
                        s.push_str(" ×");
                        push_u64(s, n);
                    }
                },
            );
            s.push(')');
        }
        if o.unanswered > 0 {
            s.push_str(", ");
            push_u64(s, o.unanswered);
            s.push_str(" unanswered");
        }
        if o.cut_short > 0 {
            s.push_str(", ");
            push_u64(s, o.cut_short);
            s.push_str(" cut short");
        }
        if o.unreadable > 0 {
            s.push_str(", ");
            push_u64(s, o.unreadable);
            s.push_str(" not readable as HTTP");
        }
        s.push('\n');
    }
    if o.body_bytes.iter().chain(&o.decoded_bytes).any(|n| *n > 0) {
        s.push_str("     bodies    ");
        for (d, side) in ["client ", ", server "].iter().enumerate() {
            s.push_str(side);
            push_u64(s, o.body_bytes[d]);
            s.push_str(" bytes");
            if o.decoded_bytes[d] != o.body_bytes[d] {
                s.push_str(" (");
                push_u64(s, o.decoded_bytes[d]);
                s.push_str(" decoded)");
            }
        }
        s.push('\n');
    }
    if !o.anomalies().is_empty() || o.other_anomalies > 0 {
        s.push_str("     anomalies ");
        // As the flags line: each name with its count.
        push_tallies(
            s,
            o.anomalies(),
            o.other_anomalies,
            |s, name| s.push_str(name),
            |s, n| {
                s.push(' ');
                push_u64(s, n);
            },
        );
        s.push('\n');
    }
    if o.sse_events > 0 {
        s.push_str("     events    ");
        plural(s, o.sse_events, "server-sent event", "server-sent events");
        s.push('\n');
    }
    if o.ws_messages.iter().any(|n| *n > 0) {
        s.push_str("     websocket ");
        plural(s, o.ws_messages[0], "message", "messages");
        s.push_str(" from the client, ");
        push_u64(s, o.ws_messages[1]);
        s.push_str(" from the server");
        if let Some(code) = o.ws_close_code {
            s.push_str("; close code ");
            push_u64(s, u64::from(code));
        }
        s.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The integer path must give exactly the float formatting's digits,
    /// midpoints and carries included.
    #[test]
    fn secs_by_hand_match_float_formatting() {
        let mut values: Vec<i64> = vec![
            0,
            1,
            499,
            500,
            501,
            999_499,
            999_500,
            999_501,
            999_999,
            1_000_000,
            1_499_999,
            1_500_000,
            1_500_001,
            2_500_000,
            999_500_000,
            999_499_999,
            59_999_500_000,
            123_456_789_012,
            999_999_999_999_999,
            1_000_000_000_000_000,
            i64::MAX,
            -1,
            -1_500_000,
            i64::MIN,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let magnitude = 10u64.pow((x % 16) as u32);
            values.push((x >> 8) as i64 % magnitude.max(1) as i64);
            // Near the midpoints, where the float's rounding could differ.
            values.push(((x >> 20) % 100_000) as i64 * 1_000_000 + 500_000 + (x % 3) as i64 - 1);
        }
        let mut s = Block::default();
        for v in values {
            s.0.clear();
            push_secs(&mut s, v);
            assert_eq!(s.0, Secs(v).to_string().into_bytes(), "{v} ns");
        }
    }

    #[test]
    fn numbers_and_endpoints_by_hand_match_fmt() {
        let mut s = Block::default();
        // Every digit count, each side of each power of ten (the pairs of
        // digits, the odd one first, the copy past four digits).
        let mut values = vec![0u64, 7, 12_345, u64::MAX];
        for p in 1..=19 {
            let ten = 10u64.pow(p);
            values.extend([ten - 1, ten, ten + 1]);
        }
        for v in values {
            s.0.clear();
            push_u64_left(&mut s, v, 3);
            assert_eq!(s.0, format!("{v:<3}").into_bytes());
            // Appended to what the block holds already.
            push_u64(&mut s, v);
            assert_eq!(s.0, format!("{v:<3}{v}").into_bytes());
        }
        for ip in [
            "0.0.0.0",
            "10.1.255.3",
            "255.255.255.255",
            "::1",
            "fe80::1:2",
        ] {
            let e = Endpoint {
                ip: ip.parse().unwrap(),
                port: 65535,
            };
            s.0.clear();
            push_endpoint(&mut s, &e);
            assert_eq!(s.0, e.to_string().into_bytes());
        }
    }
}
