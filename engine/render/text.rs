//! Plain text output that fits an 80-column terminal.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::conn_order::ConnOrder;
use crate::decode::flags::{ACK, CWR, ECE, FIN, PSH, RST, SYN, URG};
use crate::events::{Event, EventSink};
use crate::tracking::analysis::Flag;
use crate::tracking::summary::completeness_label;
use crate::tracking::{
    CloseStyle, ConnectionSummary, Direction, HandshakeOutcome, PacketRecord, RunSummary,
};

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
    match (c.close, c.reset_by) {
        (CloseStyle::Reset, Some(rst)) => {
            let mut t = format!("reset: RST from the {}", rst.name());
            if let Some(after) = c.reset_after {
                let _ = write!(t, " after {after}");
            }
            if let Some(first) = c.closed_by.filter(|r| *r != rst) {
                let _ = write!(t, "; the {} had begun to close", first.name());
            }
            t
        }
        (style, _) => match c.closed_by {
            Some(r) => format!("{}, by the {}", style.name(), r.name()),
            None => style.name().to_string(),
        },
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

/// Writes the text views.
pub struct TextWriter<W: Write> {
    out: W,
    kind: TextKind,
    header_done: bool,
    line: String,
    /// Summaries put back in connection order.
    order: ConnOrder<ConnectionSummary>,
    /// Reused for every connection's text.
    buf: String,
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
            buf: String::new(),
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

    fn conn(&mut self, c: &ConnectionSummary) -> io::Result<()> {
        // One buffer for every connection: 190,000 summaries must not mean
        // a dozen allocations each.
        let mut s = std::mem::take(&mut self.buf);
        s.clear();
        let _ = writeln!(
            s,
            "#{:<3} {} > {}  ({} from {})",
            c.conn,
            c.client,
            c.server,
            Secs(c.duration_ns()),
            Secs(c.start_rel_ns)
        );
        let _ = writeln!(
            s,
            "     sent      client {} packets {} bytes, server {} packets {} bytes",
            c.packets[0], c.bytes[0], c.packets[1], c.bytes[1],
        );
        // Wireshark's iRTT also times a SYN answered by RST; say it only
        // for a real handshake.
        let handshake_seen = matches!(
            c.handshake,
            HandshakeOutcome::Complete | HandshakeOutcome::FinalAckLost
        );
        let _ = write!(s, "     opened    {}", c.handshake.name());
        if let (Some(n), true) = (c.irtt_ns, handshake_seen) {
            let _ = write!(s, ", iRTT {}", Secs(n));
        }
        s.push('\n');
        let _ = writeln!(s, "     closed    {}", close_phrase(c));
        let _ = writeln!(
            s,
            "     verdicts  completeness {} ({}); zeek {} {}",
            c.completeness,
            completeness_label(c.completeness),
            c.conn_state,
            c.history
        );
        let mut first = true;
        for (i, f) in Flag::ALL.iter().enumerate() {
            if c.flag_counts[i] > 0 {
                s.push_str(if first { "     flags     " } else { ", " });
                let _ = write!(s, "{} {}", f.name(), c.flag_counts[i]);
                first = false;
            }
        }
        if !first {
            s.push('\n');
        }
        let result = self.out.write_all(s.as_bytes());
        self.buf = s;
        result
    }

    fn end(&mut self, r: &RunSummary) -> io::Result<()> {
        if self.kind == TextKind::Conns {
            let mut order = std::mem::take(&mut self.order);
            order.finish(|c| self.conn(c))?;
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

impl<W: Write> EventSink for TextWriter<W> {
    fn event(&mut self, event: &Event<'_>) -> io::Result<()> {
        match (self.kind, event) {
            (TextKind::Packets, Event::Packet(p)) => self.packet(p),
            (TextKind::Conns, Event::Closed(c)) => {
                let mut order = std::mem::take(&mut self.order);
                let result = order.push(c.conn, c, |c| self.conn(c));
                self.order = order;
                result
            }
            (_, Event::End(r)) => self.end(r),
            _ => Ok(()),
        }
    }
}
