//! What the templates read: the collected data turned into words, numbers
//! and geometry. Strings that come from the capture stay plain text here;
//! the templates escape them.

use std::collections::HashMap;

use super::collect::{Brief, Conn, Decoded, Kept};
use super::explain;
use super::payload::{bytes_label, thousands, Payload};
use super::svg::{self, Chart, Graph, Ladder};
use super::tags::Tag;
use super::{CaptureInput, ReportOptions};
use crate::decode::flags::{ACK, RST};
use crate::render::phrases;
use crate::scripting::output::{Finding, ScriptOutput};
use crate::scripting::Severity;
use crate::tracking::summary::completeness_label;
use crate::tracking::{
    CloseStyle, ConnectionSummary, Direction, Flag, HandshakeOutcome, PacketRecord,
};

pub use crate::render::phrases::duration;

/// How the handshake went, in words.
pub fn handshake_words(h: HandshakeOutcome) -> &'static str {
    match h {
        HandshakeOutcome::Complete => "complete",
        HandshakeOutcome::SynUnanswered => "never answered (SYN unanswered)",
        HandshakeOutcome::Refused => "refused (the SYN was answered by RST)",
        HandshakeOutcome::FinalAckLost => "completed late: the client's final ACK was lost",
        HandshakeOutcome::SynAckUnanswered => "not completed: the SYN-ACK was never acknowledged",
        HandshakeOutcome::StartedBeforeCapture => "not seen (started before the capture)",
    }
}

/// How the connection ended, in words: `three-packet close, by the client`.
pub fn close_words(s: &ConnectionSummary) -> String {
    let style = match s.close {
        // The reset phrase is already words: who sent the RST, and when.
        CloseStyle::Reset => return crate::render::text::close_phrase(s),
        CloseStyle::ThreePacket => "three-packet close (FIN, FIN+ACK, ACK)",
        CloseStyle::FourPacket => "four-packet close (FIN, ACK, FIN, ACK)",
        CloseStyle::Simultaneous => "simultaneous close (both sent FIN at once)",
        CloseStyle::HalfClosed => "half-closed (only one side sent FIN)",
        CloseStyle::Open => "not closed: still open when the capture ended",
        CloseStyle::NeverEstablished => "never established",
    };
    match s.closed_by {
        Some(r) => format!("{style}, by the {}", r.name()),
        None => style.to_string(),
    }
}

/// `1 packet`, `2,345 packets`.
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{} {word}s", thousands(n))
    }
}

/// A statistic at the top of a capture.
pub struct Card {
    /// What it counts.
    pub label: &'static str,
    /// The count.
    pub value: String,
    /// Colour family: `bad` when not zero and bad news.
    pub tone: &'static str,
    /// What it means.
    pub tip: &'static str,
}

/// A finding, ready to show.
pub struct FindingView<'a> {
    /// `error`, `warning`, `info`.
    pub severity: &'static str,
    /// One line.
    pub title: &'a str,
    /// The explanation.
    pub detail: &'a str,
    /// The kind of finding.
    pub id: &'a str,
    /// The script that reported it.
    pub script: &'a str,
    /// The frames that show it, with the id of their bubble when drawn.
    pub frames: Vec<(u64, Option<String>)>,
    /// The connection it is about: its number and list row id.
    pub conn: Option<(u64, String)>,
}

/// An analysis flag or insight on a bubble.
pub struct Alarm {
    /// In words.
    pub text: String,
    /// Its explanation's key in the glossary.
    pub key: String,
    /// `bad`, `warn` or `info`.
    pub tone: &'static str,
}

/// One packet as a chat bubble.
pub struct BubbleView<'a> {
    /// Its id in the page.
    pub id: String,
    /// Sent by the client (left) or the server (right).
    pub client: bool,
    /// Frame number.
    pub frame: u64,
    /// Capture time.
    pub time: String,
    /// Since the previous packet.
    pub delta: String,
    /// TCP flags.
    pub flags: Vec<&'static str>,
    /// `seq 1`.
    pub seq: u32,
    /// `ack 1`, when the ACK flag is set.
    pub ack: Option<u32>,
    /// Payload length.
    pub len: String,
    /// Receive window.
    pub win: String,
    /// The sender's state after this packet.
    pub state: &'static str,
    /// The state before, when this packet changed it.
    pub state_before: Option<&'static str>,
    /// `acknowledges frame 2 (11 µs after it)`.
    pub acks: Option<String>,
    /// Analysis flags.
    pub alarms: Vec<Alarm>,
    /// Decoded application content first shown at this packet.
    pub decoded: &'a [Decoded],
    /// The payload.
    pub payload: &'a Payload,
    /// Other remarks (bytes not captured, ICMP).
    pub remarks: Vec<String>,
    /// Notes of the diagnoses.
    pub notes: Vec<&'a str>,
    /// The lessons' commentary.
    pub commentary: Vec<&'a str>,
    /// `data`, `ack`, `ctl`, `retrans`, `reset`, `dup`, `probe`.
    pub tone: &'static str,
}

/// One connection drawn in full.
pub struct ConnView<'a> {
    /// Its id in the page.
    pub id: String,
    /// Connection number.
    pub conn: u64,
    /// Its client.
    pub client: String,
    /// Its server.
    pub server: String,
    /// Its tags.
    pub tags: Vec<Tag>,
    /// Facts for the diagnosis pane.
    pub facts: Vec<(&'static str, String)>,
    /// The chat.
    pub bubbles: Vec<BubbleView<'a>>,
    /// Packets not drawn.
    pub dropped: Option<String>,
    /// Its findings.
    pub findings: Vec<FindingView<'a>>,
    /// The ladder diagram.
    pub ladder: Ladder,
    /// Time-sequence graphs, the busier direction first.
    pub graphs: Vec<Graph>,
    /// Any bubble has commentary.
    pub has_commentary: bool,
}

/// One capture.
pub struct CaptureView<'a> {
    /// Id of its section.
    pub id: String,
    /// File name, or the lesson's capture.
    pub name: &'a str,
    /// `10 packets over 4.1 ms`.
    pub facts: String,
    /// The statistics.
    pub cards: Vec<Card>,
    /// The statistics as a chart.
    pub chart: Chart,
    /// What the diagnoses printed.
    pub prints: Vec<&'a str>,
    /// Their printed lines not shown.
    pub prints_more: usize,
    /// What the lessons printed (a lesson's summary, say): commentary.
    pub lesson_prints: Vec<&'a str>,
    /// Their printed lines not shown.
    pub lesson_prints_more: usize,
    /// Findings about the whole capture.
    pub wide: Vec<FindingView<'a>>,
    /// Every finding about a connection, most severe first (capped).
    pub all: Vec<FindingView<'a>>,
    /// Findings not in `all`.
    pub all_more: usize,
    /// Warnings, errors.
    pub problems: Vec<String>,
    /// The connections drawn in full.
    pub conns: Vec<ConnView<'a>>,
    /// Why not every connection is drawn, if so, and the command that
    /// draws one of the others.
    pub limit_note: Option<(String, &'static str)>,
}

/// Findings listed in the overview at most (each connection lists its own).
const OVERVIEW_FINDINGS: usize = 200;
/// Printed lines shown in the overview at most: a lesson that prints a
/// paragraph per connection would otherwise fill a large capture's page.
const OVERVIEW_PRINTS: usize = 30;

fn severity_name(s: Severity) -> &'static str {
    s.name()
}

fn conn_id(capture: usize, conn: u64) -> String {
    format!("k{capture}-c{conn}")
}

fn bubble_id(capture: usize, conn: u64, frame: u64) -> String {
    format!("k{capture}-c{conn}-f{frame}")
}

/// The analysis flags and insights of a packet, in words.
fn alarms(p: &PacketRecord<'_>) -> Vec<Alarm> {
    let mut out = Vec::new();
    for f in p.analysis.iter() {
        let Some(text) = phrases::flag(p, f) else {
            continue;
        };
        let tone = match f {
            Flag::Retransmission
            | Flag::FastRetransmission
            | Flag::SpuriousRetransmission
            | Flag::LostSegment
            | Flag::AckLostSegment => "bad",
            Flag::OutOfOrder
            | Flag::DuplicateAck
            | Flag::ZeroWindow
            | Flag::ZeroWindowProbe
            | Flag::WindowFull
            | Flag::ReusedPorts => "warn",
            Flag::KeepAlive
            | Flag::KeepAliveAck
            | Flag::ZeroWindowProbeAck
            | Flag::WindowUpdate => "info",
        };
        out.push(Alarm {
            text,
            key: format!("a:{}", f.name()),
            tone,
        });
    }
    for i in p.insight.iter() {
        let text = phrases::insight(i);
        out.push(Alarm {
            text: text.into(),
            key: format!("i:{}", i.name()),
            tone: "info",
        });
    }
    if p.flags & RST != 0 && out.is_empty() {
        out.push(Alarm {
            text: "reset".into(),
            key: "f:RST".into(),
            tone: "bad",
        });
    }
    out
}

/// A short line for what a packet carried, for the ladder.
fn carried(c: &Conn, frame: u64) -> String {
    let Some((text, more)) = c.carried.get(&frame) else {
        return String::new();
    };
    let cut = super::payload::cut(text, 48);
    let mut out = cut.to_string();
    if cut.len() < text.len() {
        out.push('…');
    }
    if *more > 0 {
        out.push_str(&format!(" (+{more})"));
    }
    out
}

fn finding_view<'a>(
    f: &'a Finding,
    capture: usize,
    drawn: &HashMap<u64, u64>,
    conns: &HashMap<u64, bool>,
) -> FindingView<'a> {
    FindingView {
        severity: severity_name(f.severity),
        title: &f.title,
        detail: &f.detail,
        id: &f.id,
        script: &f.script,
        frames: f
            .frames
            .iter()
            .map(|fr| {
                let link = drawn
                    .get(fr)
                    .map(|conn| bubble_id(capture, *conn, *fr))
                    .filter(|_| f.conn.is_none_or(|c| drawn.get(fr) == Some(&c)));
                (*fr, link)
            })
            .collect(),
        conn: f.conn.filter(|c| conns.contains_key(c)).map(|c| {
            let full = conns.get(&c).copied().unwrap_or(false);
            let id = if full {
                conn_id(capture, c)
            } else {
                format!("{}-row", conn_id(capture, c))
            };
            (c, id)
        }),
    }
}

fn bubble<'a>(
    capture: usize,
    k: &'a Kept,
    previous: Option<i64>,
    decoded: Option<&'a Vec<Decoded>>,
    notes: &[(&'a str, bool)],
) -> BubbleView<'a> {
    let p = &k.record;
    let mut remarks = Vec::new();
    if p.missing > 0 {
        remarks.push(format!(
            "{} not captured",
            bytes_label(u64::from(p.missing))
        ));
    }
    if p.in_icmp_error {
        remarks.push("quoted in an ICMP error".into());
    }
    BubbleView {
        id: bubble_id(capture, p.conn, p.frame),
        client: p.dir == Direction::ClientToServer,
        frame: p.frame,
        time: format!("{:.6} s", p.rel_time_ns as f64 / 1e9),
        delta: previous.map_or(String::new(), |t| {
            format!("+{}", duration(p.rel_time_ns - t))
        }),
        flags: explain::tcp_flags(p.flags),
        seq: p.seq,
        ack: (p.flags & ACK != 0).then_some(p.ack),
        len: p.len.map_or("?".into(), |l| thousands(u64::from(l))),
        win: thousands(p.win),
        state: p.state.name(),
        state_before: (p.state != p.state_before).then(|| p.state_before.name()),
        acks: (p.details.acks_frame != 0).then(|| {
            format!(
                "acknowledges frame {} ({} after it)",
                p.details.acks_frame,
                duration(p.details.ack_rtt_ns)
            )
        }),
        alarms: alarms(p),
        decoded: decoded.map_or(&[], Vec::as_slice),
        payload: &k.payload,
        remarks,
        notes: notes.iter().filter(|n| !n.1).map(|n| n.0).collect(),
        commentary: notes.iter().filter(|n| n.1).map(|n| n.0).collect(),
        tone: svg::tone(p),
    }
}

/// The words of a packet's ladder tooltip.
fn packet_tip(k: &Kept) -> String {
    let p = &k.record;
    let who = if p.dir == Direction::ClientToServer {
        "client → server"
    } else {
        "server → client"
    };
    let mut s = format!(
        "frame {}, {who}, {:.6} s: {}",
        p.frame,
        p.rel_time_ns as f64 / 1e9,
        svg::arrow_label(p)
    );
    s.push_str(&format!(" win={}; sender now {}", p.win, p.state.name()));
    for a in alarms(p) {
        s.push_str("; ");
        s.push_str(&a.text);
    }
    s
}

fn facts(c: &Conn) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let Some(s) = &c.summary else {
        return out;
    };
    let mut handshake = handshake_words(s.handshake).to_string();
    if let Some(irtt) = s.irtt_ns {
        handshake.push_str(&format!(", initial round trip {}", duration(irtt)));
    }
    out.push(("handshake", handshake));
    out.push(("closed", close_words(s)));
    out.push((
        "packets",
        format!(
            "{} from the client, {} from the server",
            thousands(s.packets[0]),
            thousands(s.packets[1])
        ),
    ));
    out.push((
        "data",
        format!(
            "{} from the client, {} from the server",
            bytes_label(s.bytes[0]),
            bytes_label(s.bytes[1])
        ),
    ));
    out.push((
        "lasted",
        format!(
            "{} (from {:.6} s)",
            duration(s.duration_ns()),
            s.start_rel_ns as f64 / 1e9
        ),
    ));
    let counts: Vec<String> = [
        (Flag::Retransmission, "retransmissions"),
        (Flag::DuplicateAck, "duplicate ACKs"),
        (Flag::OutOfOrder, "out of order"),
        (Flag::LostSegment, "segments not captured"),
        (Flag::ZeroWindow, "zero windows"),
        (Flag::WindowFull, "window full"),
    ]
    .iter()
    .filter(|(f, _)| s.count(*f) > 0)
    .map(|(f, name)| format!("{} {name}", s.count(*f)))
    .chain((s.keep_alives > 0).then(|| format!("{} keep-alives", s.keep_alives)))
    .collect();
    if !counts.is_empty() {
        out.push(("analysis", counts.join(", ")));
    }
    out.push((
        "final states",
        format!(
            "client {}, server {}",
            s.final_states[0].name(),
            s.final_states[1].name()
        ),
    ));
    out.push((
        "Wireshark says",
        format!(
            "{} (tcp.completeness {})",
            completeness_label(s.completeness),
            s.completeness
        ),
    ));
    out.push(("Zeek history", s.history.clone()));
    out
}

/// Everything the page shows of one capture.
pub fn capture_view<'a>(
    idx: usize,
    input: &'a CaptureInput,
    options: &ReportOptions,
) -> CaptureView<'a> {
    let col = &input.collector;
    let out: &ScriptOutput = &input.output;

    // Which frames are drawn, and in which connection.
    let mut drawn: HashMap<u64, u64> = HashMap::new();
    let mut full: HashMap<u64, bool> = HashMap::new();
    for c in col.conns.values() {
        full.insert(c.info.conn, c.full);
        for k in &c.packets {
            drawn.insert(k.record.frame, c.info.conn);
        }
    }
    // Notes by frame, for the frames drawn: commentary (a lesson's) or a
    // diagnosis's remark.
    let mut notes: HashMap<u64, Vec<(&str, bool)>> = HashMap::new();
    for n in out.notes.iter().filter(|n| drawn.contains_key(&n.frame)) {
        let lesson = options.lessons.contains(&n.script);
        notes
            .entry(n.frame)
            .or_default()
            .push((n.text.as_str(), lesson));
    }
    let sorted = out.sorted_findings();
    let mut by_conn: HashMap<u64, Vec<&Finding>> = HashMap::new();
    for f in &sorted {
        if let Some(c) = f.conn {
            by_conn.entry(c).or_default().push(f);
        }
    }

    let mut conns = Vec::new();
    for c in col.conns.values() {
        let conn = c.info.conn;
        let findings = by_conn.get(&conn).map(Vec::as_slice).unwrap_or(&[]);
        let tags = c.brief.as_ref().map(Brief::tags).unwrap_or_default();
        if !c.full {
            continue;
        }
        let mut bubbles = Vec::with_capacity(c.packets.len());
        let mut previous = None;
        for k in &c.packets {
            let frame = k.record.frame;
            bubbles.push(bubble(
                idx,
                k,
                previous,
                c.decoded.get(&frame),
                notes.get(&frame).map(Vec::as_slice).unwrap_or(&[]),
            ));
            previous = Some(k.record.rel_time_ns);
        }
        let ladder = svg::ladder(
            &c.packets,
            c.info.client.to_string(),
            c.info.server.to_string(),
            |frame| bubble_id(idx, conn, frame),
            |frame| carried(c, frame),
            packet_tip,
        );
        let mut graphs: Vec<Graph> = [
            (Direction::ClientToServer, "client → server"),
            (Direction::ServerToClient, "server → client"),
        ]
        .iter()
        .map(|(dir, name)| {
            svg::graph(
                format!("{}-g{}", conn_id(idx, conn), dir.index()),
                format!("data {name}"),
                &c.trace,
                *dir,
            )
        })
        .collect();
        // The busier direction first; the other only if it sent data.
        graphs.sort_by_key(|g| std::cmp::Reverse(g.bytes));
        if graphs.len() == 2 && graphs[1].bytes == 0 {
            graphs.truncate(1);
        }
        let has_commentary = bubbles.iter().any(|b| !b.commentary.is_empty());
        let mut dropped = Vec::new();
        if c.dropped > 0 {
            dropped.push(format!(
                "{} more packets are not drawn (the report draws {} per connection, {} in all).",
                thousands(c.dropped),
                thousands(col.limits().max_packets as u64),
                thousands(col.limits().total_packets as u64),
            ));
        }
        if c.trace_dropped > 0 {
            dropped.push(format!(
                "The graph shows the first {} packets.",
                thousands(super::collect::TRACE_MAX as u64)
            ));
        }
        conns.push(ConnView {
            id: conn_id(idx, conn),
            conn,
            client: c.info.client.to_string(),
            server: c.info.server.to_string(),
            tags,
            facts: facts(c),
            bubbles,
            dropped: (!dropped.is_empty()).then(|| dropped.join(" ")),
            // In its own connection's pane a finding needs no link to it.
            findings: findings
                .iter()
                .map(|f| FindingView {
                    conn: None,
                    ..finding_view(f, idx, &drawn, &full)
                })
                .collect(),
            ladder,
            graphs,
            has_commentary,
        });
    }

    let stats = &col.stats;
    let severity_count =
        |s: Severity| out.findings.iter().filter(|f| f.severity == s).count() as u64;
    let (errors, warnings, infos) = (
        severity_count(Severity::Error),
        severity_count(Severity::Warning),
        severity_count(Severity::Info),
    );
    let tone = |n: u64, bad: &'static str| if n > 0 { bad } else { "ok" };
    let cards = vec![
        Card {
            label: "packets",
            value: thousands(stats.packets),
            tone: "plain",
            tip: "TCP packets in the capture.",
        },
        Card {
            label: "connections",
            value: thousands(stats.connections),
            tone: "plain",
            tip: "TCP connections (Wireshark's tcp.stream).",
        },
        Card {
            label: "incomplete handshakes",
            value: thousands(stats.incomplete_handshakes),
            tone: tone(stats.incomplete_handshakes, "bad"),
            tip: "Connections whose three-way handshake started but did not complete.",
        },
        Card {
            label: "with retransmissions",
            value: thousands(stats.with_retransmissions),
            tone: tone(stats.with_retransmissions, "bad"),
            tip: "Connections in which some data was sent twice.",
        },
        Card {
            label: "resets",
            value: thousands(stats.resets),
            tone: tone(stats.resets, "bad"),
            tip: "Connections ended by a RST.",
        },
        Card {
            label: "keep-alives",
            value: thousands(stats.keep_alives),
            tone: "plain",
            tip: "Keep-alive probes (packets).",
        },
        Card {
            label: "findings",
            value: thousands(errors + warnings + infos),
            tone: if errors > 0 {
                "bad"
            } else if warnings > 0 {
                "warn"
            } else {
                "ok"
            },
            tip: "What the diagnoses found (see below).",
        },
    ];
    let chart = svg::chart(&[
        (
            "connections",
            stats.connections,
            "plain",
            "TCP connections in the capture.",
            false,
        ),
        (
            "incomplete handshakes",
            stats.incomplete_handshakes,
            "bad",
            "Connections whose three-way handshake started but did not complete.",
            false,
        ),
        (
            "with retransmissions",
            stats.with_retransmissions,
            "bad",
            "Connections in which some data was sent twice.",
            false,
        ),
        (
            "resets",
            stats.resets,
            "bad",
            "Connections ended by a RST.",
            false,
        ),
        (
            "keep-alives",
            stats.keep_alives,
            "probe",
            "Keep-alive probes (packets).",
            false,
        ),
        (
            "findings: errors",
            errors,
            "bad",
            "Findings that are certainly a problem.",
            true,
        ),
        (
            "findings: warnings",
            warnings,
            "warn",
            "Findings that are probably a problem.",
            false,
        ),
        (
            "findings: info",
            infos,
            "info",
            "Findings worth knowing.",
            false,
        ),
    ]);

    let mut facts = format!(
        "{}, {}",
        plural(stats.packets, "packet"),
        plural(stats.connections, "connection")
    );
    if let Some(run) = &col.run {
        if let (Some(start), Some(end)) = (run.start, run.end) {
            facts.push_str(&format!(", over {}", duration(end.since(start))));
        }
    }
    let mut prints: Vec<&crate::scripting::output::Printed> = out.prints.iter().collect();
    // The lesson asked for speaks first; the others keep their order.
    prints.sort_by_key(|p| Some(&p.script) != options.chosen.as_ref());
    let (lesson_prints, prints): (Vec<_>, Vec<_>) = prints
        .into_iter()
        .partition(|p| options.lessons.contains(&p.script));
    let shown = |list: &[&'a crate::scripting::output::Printed]| -> (Vec<&'a str>, usize) {
        let more = list.len().saturating_sub(OVERVIEW_PRINTS);
        let texts = list
            .iter()
            .take(OVERVIEW_PRINTS)
            .map(|p| p.text.as_str())
            .collect();
        (texts, more)
    };
    let (prints, prints_more) = shown(&prints);
    let (lesson_prints, lesson_prints_more) = shown(&lesson_prints);
    let mut problems = input.problems.clone();
    if let Some(run) = &col.run {
        problems.extend(run.warnings.iter().map(|w| format!("warning: {w}")));
    }
    problems.extend(out.errors.iter().map(|e| format!("script error: {e}")));

    let summarised = col.conns.len() - conns.len();
    let limit_note = (summarised > 0).then(|| {
        let limits = col.limits();
        let text = match limits.only {
            Some(only) => format!(
                "Only connection {only} is drawn in full (--conn); the other {} are \
                 listed: click one for its summary. To draw another:",
                thousands(summarised as u64)
            ),
            None => format!(
                "The first {} connections are drawn in full (chat, ladder, graph); the \
                 other {} are listed with their summary, shown on click (--full and \
                 --max-packets raise the limits). To draw one of them:",
                thousands(conns.len() as u64),
                thousands(summarised as u64)
            ),
        };
        (text, "chattcp report FILE --conn N -o conn.html")
    });
    let all: Vec<FindingView> = sorted
        .iter()
        .filter(|f| f.conn.is_some())
        .take(OVERVIEW_FINDINGS)
        .map(|f| finding_view(f, idx, &drawn, &full))
        .collect();
    let all_more = sorted.iter().filter(|f| f.conn.is_some()).count() - all.len();
    CaptureView {
        id: format!("k{idx}"),
        name: &input.name,
        facts,
        cards,
        chart,
        prints,
        prints_more,
        lesson_prints,
        lesson_prints_more,
        wide: sorted
            .iter()
            .filter(|f| f.conn.is_none())
            .map(|f| finding_view(f, idx, &drawn, &full))
            .collect(),
        all,
        all_more,
        problems,
        conns,
        limit_note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::flags::{FIN, SYN};

    #[test]
    fn flag_explanations_cover_every_flag_once() {
        let all: u16 = explain::TCP_FLAGS.iter().map(|f| f.0).sum();
        assert_eq!(all, 0x1ff);
        assert_eq!(explain::tcp_flags(SYN | ACK), ["SYN", "ACK"]);
        assert_eq!(explain::tcp_flags(FIN | ACK), ["FIN", "ACK"]);
        let g = explain::glossary();
        for key in [
            "f:SYN",
            "a:retransmission",
            "s:TIME_WAIT",
            "n:win",
            "i:duplicate_capture",
        ] {
            assert!(g.contains_key(key), "{key}");
        }
    }
}
