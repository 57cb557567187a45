//! The geometry of the pictures: the ladder diagram, the time-sequence
//! graph and the summary chart. Coordinates and path data are computed
//! here; the templates draw them (and escape every label).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::collect::{Kept, TracePoint};
use super::payload::thousands;
use crate::decode::flags::{ACK, FIN, RST, SYN};
use crate::tracking::{Direction, Flag};

/// A coordinate rounded to a tenth of a pixel: enough for the eye, and the
/// file stays small.
fn r(x: f64) -> f32 {
    ((x * 10.0).round() / 10.0) as f32
}

/// Width of the ladder diagram.
pub const LADDER_W: u32 = 560;
const LADDER_HEAD: f64 = 54.0;
const LADDER_ROW: f64 = 36.0;
const LADDER_SLOPE: f64 = 16.0;
const LADDER_CLIENT_X: f64 = 150.0;
const LADDER_SERVER_X: f64 = 420.0;
/// A silence longer than this is drawn as a break in the ladder.
const LADDER_GAP_NS: i64 = 200_000_000;
const LADDER_GAP: f64 = 22.0;

/// One arrow of the ladder diagram: a packet.
pub struct Arrow {
    /// The frame.
    pub frame: u64,
    /// The id of its chat bubble.
    pub target: String,
    /// Start and end.
    pub x1: f32,
    /// Start y.
    pub y1: f32,
    /// End x.
    pub x2: f32,
    /// End y.
    pub y2: f32,
    /// Flags and numbers, on the arrow.
    pub label: String,
    /// Where the label goes.
    pub lx: f32,
    /// Label baseline.
    pub ly: f32,
    /// What the packet carried (a request line, say), under the arrow.
    pub sublabel: String,
    /// Its baseline.
    pub sy: f32,
    /// Capture time, at the left.
    pub time: String,
    /// Baseline of the time and state labels.
    pub ty: f32,
    /// The sender's state when it changed, beside the sender's line.
    pub state: String,
    /// Where the state goes.
    pub stx: f32,
    /// `start` or `end`.
    pub st_anchor: &'static str,
    /// `data`, `ack`, `ctl`, `retrans`, `reset`, `dup`, `probe`.
    pub tone: &'static str,
    /// The whole story of the packet, as a tooltip.
    pub tip: String,
    /// A silence before this packet, drawn as a break.
    pub gap: Option<(f32, String)>,
}

/// The ladder diagram of one connection.
pub struct Ladder {
    /// Size.
    pub width: u32,
    /// Height.
    pub height: f32,
    /// x of the client's line.
    pub cx: f32,
    /// x of the server's line.
    pub sx: f32,
    /// Half way between them.
    pub mid: f32,
    /// Where the lines end.
    pub bottom: f32,
    /// The client's address.
    pub client: String,
    /// The server's address.
    pub server: String,
    /// One per packet drawn.
    pub arrows: Vec<Arrow>,
}

/// How a packet stands out: the first that applies.
pub fn tone(p: &crate::tracking::PacketRecord<'_>) -> &'static str {
    let a = p.analysis;
    if p.flags & RST != 0 {
        "reset"
    } else if a.has(Flag::Retransmission)
        || a.has(Flag::FastRetransmission)
        || a.has(Flag::SpuriousRetransmission)
    {
        "retrans"
    } else if a.has(Flag::DuplicateAck)
        || a.has(Flag::OutOfOrder)
        || a.has(Flag::LostSegment)
        || a.has(Flag::ZeroWindow)
    {
        "dup"
    } else if a.has(Flag::KeepAlive) || a.has(Flag::ZeroWindowProbe) {
        "probe"
    } else if p.flags & (SYN | FIN) != 0 {
        "ctl"
    } else if p.len.unwrap_or(0) > 0 {
        "data"
    } else {
        "ack"
    }
}

/// `SYN seq=0`, `ACK ack=1`, `PSH,ACK seq=1 ack=1 len=6`.
pub fn arrow_label(p: &crate::tracking::PacketRecord<'_>) -> String {
    let mut s = crate::decode::tcp::flag_names(p.flags);
    if s.is_empty() {
        s.push_str("(no flags)");
    }
    let len = p.len.unwrap_or(0);
    if len > 0 || p.flags & (SYN | FIN | RST) != 0 || p.flags & ACK == 0 {
        let _ = write!(s, " seq={}", p.seq);
    }
    if p.flags & ACK != 0 {
        let _ = write!(s, " ack={}", p.ack);
    }
    if len > 0 {
        let _ = write!(s, " len={len}");
    }
    s
}

/// Lays out the ladder: one row per packet, time going down; a long
/// silence is a break, not a proportional gap, so that a keep-alive every
/// 15 s does not make the picture a mile long.
pub fn ladder(
    packets: &[Kept],
    client: String,
    server: String,
    target: impl Fn(u64) -> String,
    sublabel: impl Fn(u64) -> String,
    tip: impl Fn(&Kept) -> String,
) -> Ladder {
    let mut y = LADDER_HEAD;
    let mut arrows = Vec::with_capacity(packets.len());
    let mut previous: Option<i64> = None;
    for k in packets {
        let p = &k.record;
        let gap = match previous {
            Some(t) if p.rel_time_ns - t > LADDER_GAP_NS => {
                let at = y + 2.0;
                y += LADDER_GAP;
                Some((
                    r(at + LADDER_GAP / 2.0),
                    format!("{} later", super::view::duration(p.rel_time_ns - t)),
                ))
            }
            _ => None,
        };
        previous = Some(p.rel_time_ns);
        let from_client = p.dir == Direction::ClientToServer;
        let (x1, x2) = if from_client {
            (LADDER_CLIENT_X, LADDER_SERVER_X)
        } else {
            (LADDER_SERVER_X, LADDER_CLIENT_X)
        };
        let y1 = y + 10.0;
        let y2 = y1 + LADDER_SLOPE;
        let state = if p.state != p.state_before || p.flags & (SYN | FIN | RST) != 0 {
            p.state.name().to_string()
        } else {
            String::new()
        };
        let (stx, st_anchor) = if from_client {
            (LADDER_CLIENT_X - 6.0, "end")
        } else {
            (LADDER_SERVER_X + 6.0, "start")
        };
        arrows.push(Arrow {
            frame: p.frame,
            target: target(p.frame),
            x1: r(x1),
            y1: r(y1),
            x2: r(x2),
            y2: r(y2),
            label: arrow_label(p),
            lx: r((x1 + x2) / 2.0),
            ly: r(y1 + LADDER_SLOPE / 2.0 - 6.0),
            sublabel: sublabel(p.frame),
            sy: r(y1 + LADDER_SLOPE / 2.0 + 13.0),
            time: format!("{:.6}", p.rel_time_ns as f64 / 1e9),
            ty: r(y1 + 4.0),
            state,
            stx: r(stx),
            st_anchor,
            tone: tone(p),
            tip: tip(k),
            gap,
        });
        y += LADDER_ROW;
    }
    Ladder {
        width: LADDER_W,
        height: r(y + 12.0),
        cx: r(LADDER_CLIENT_X),
        sx: r(LADDER_SERVER_X),
        mid: r((LADDER_CLIENT_X + LADDER_SERVER_X) / 2.0),
        bottom: r(y + 6.0),
        client,
        server,
        arrows,
    }
}

/// A tick on an axis.
pub struct Tick {
    /// Position along the axis, in pixels.
    pub at: f32,
    /// Its label.
    pub label: String,
}

/// A letter on the graph: S (SYN), F (FIN), R (retransmission), RST.
pub struct Mark {
    /// Where.
    pub x: f32,
    /// Where.
    pub y: f32,
    /// The letter.
    pub text: &'static str,
    /// `start`, or `end` near the right edge.
    pub anchor: &'static str,
    /// Its colour family.
    pub tone: &'static str,
    /// What it means.
    pub tip: String,
}

/// A time-sequence graph, tcptrace style, of one direction of a connection.
pub struct Graph {
    /// Unique in the page (for the clip path).
    pub id: String,
    /// `client → server`.
    pub title: String,
    /// Size.
    pub width: u32,
    /// Size.
    pub height: u32,
    /// Plot area: left.
    pub px: f32,
    /// Plot area: top.
    pub py: f32,
    /// Plot area: width.
    pub pw: f32,
    /// Plot area: height.
    pub ph: f32,
    /// Plot area: right edge.
    pub right: f32,
    /// Plot area: bottom edge.
    pub bottom: f32,
    /// Time ticks.
    pub xticks: Vec<Tick>,
    /// Sequence ticks.
    pub yticks: Vec<Tick>,
    /// Segments sent (path data).
    pub data: String,
    /// Segments sent again.
    pub retrans: String,
    /// SACK blocks the receiver reported.
    pub sack: String,
    /// The ACK line (polyline points).
    pub ack: String,
    /// The receive-window line: ACK plus window.
    pub win: String,
    /// Letters.
    pub marks: Vec<Mark>,
    /// About what is not drawn.
    pub note: Option<String>,
    /// Bytes this direction sent.
    pub bytes: u64,
}

const G_W: u32 = 560;
const G_H: u32 = 300;
const G_LEFT: f64 = 66.0;
const G_RIGHT: f64 = 14.0;
const G_TOP: f64 = 22.0;
const G_BOTTOM: f64 = 40.0;
/// Letters drawn at most per graph (beyond, the colours say it).
const MAX_MARKS: usize = 120;

/// A round step near `range / want`: 1, 2 or 5 times a power of ten.
fn nice_step(range: f64, want: f64) -> f64 {
    let raw = (range / want).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    let f = if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    };
    f * mag
}

/// A time-axis label, in the unit the axis's length `max` calls for, with
/// the decimals its step needs.
fn time_tick_label(ns: f64, max: f64, step: f64) -> String {
    if max >= 1e9 {
        format!("{} s", trim(ns / 1e9, step / 1e9))
    } else if max >= 1e6 {
        format!("{} ms", trim(ns / 1e6, step / 1e6))
    } else {
        format!("{} µs", trim(ns / 1e3, step / 1e3))
    }
}

/// `v` with as many decimals as `step` needs.
fn trim(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    format!("{v:.decimals$}")
}

/// A sequence-axis label, in the unit the axis's top value `max` calls for
/// (so that one axis does not mix `50,000` and `100 kB`).
fn bytes_tick_label(v: f64, max: f64, step: f64) -> String {
    if max >= 10e6 {
        format!("{} MB", trim(v / 1e6, step / 1e6))
    } else if max >= 100e3 {
        format!("{} kB", trim(v / 1e3, step / 1e3))
    } else {
        thousands(v as u64)
    }
}

/// The time-sequence graph of direction `dir`: every segment it sent as a
/// vertical bar from its first to its last sequence number (red when sent
/// again), the other side's ACKs as a step line and the right edge of its
/// receive window (ACK + window) as a second one. Many segments at the same
/// pixel become one bar, so the picture's size does not grow with the
/// connection's.
pub fn graph(id: String, title: String, trace: &[TracePoint], dir: Direction) -> Graph {
    let pw = f64::from(G_W) - G_LEFT - G_RIGHT;
    let ph = f64::from(G_H) - G_TOP - G_BOTTOM;
    let t_max = trace.iter().map(|t| t.t_ns).max().unwrap_or(0).max(1) as f64;
    let mut data_top = 0u64;
    let mut ack_top = 0u64;
    let mut win_top = 0u64;
    let mut bytes = 0u64;
    for t in trace {
        if t.dir == dir {
            data_top = data_top.max(u64::from(t.seq) + u64::from(t.span));
            if !t.retransmission {
                bytes +=
                    u64::from(t.span.saturating_sub(
                        u32::from(t.flags & SYN != 0) + u32::from(t.flags & FIN != 0),
                    ));
            }
        } else if t.flags & ACK != 0 {
            ack_top = ack_top.max(u64::from(t.ack));
            win_top = win_top.max(u64::from(t.ack) + t.win);
        }
    }
    let base = data_top.max(ack_top).max(1);
    // A window far above the data would squash the data into a line: then
    // the window line is cut at the top and the note says so.
    let window_shown = win_top <= base.saturating_mul(3);
    let (y_top, note) = if window_shown {
        (win_top.max(base), None)
    } else {
        (
            base,
            Some(format!(
                "The receive window (up to {} bytes) was far above the data \
                 sent: its line would be off the top of the graph.",
                thousands(win_top)
            )),
        )
    };
    let y_max = y_top as f64 * 1.06 + 1.0;
    let sx = |t: i64| G_LEFT + t as f64 / t_max * pw;
    let sy = |s: f64| G_TOP + ph - s / y_max * ph;

    // Segments: one hull per half-pixel column and kind.
    let mut columns: BTreeMap<(i64, bool), (f64, f64)> = BTreeMap::new();
    let mut marks = Vec::new();
    let mut sack = String::new();
    let mut ack_line = StepLine::default();
    let mut win_line = StepLine::default();
    for t in trace {
        let x = sx(t.t_ns);
        if t.dir == dir {
            if t.span > 0 {
                let lo = f64::from(t.seq);
                let hi = lo + f64::from(t.span);
                let col = (x * 2.0).round() as i64;
                let e = columns.entry((col, t.retransmission)).or_insert((lo, hi));
                e.0 = e.0.min(lo);
                e.1 = e.1.max(hi);
            }
            let letter = if t.flags & RST != 0 {
                Some(("RST", "reset", "RST: the connection was reset"))
            } else if t.flags & SYN != 0 {
                Some(("S", "ctl", "SYN"))
            } else if t.flags & FIN != 0 {
                Some(("F", "ctl", "FIN"))
            } else if t.retransmission {
                Some(("R", "retrans", "retransmission"))
            } else {
                None
            };
            if let Some((text, tone, what)) = letter {
                if marks.len() < MAX_MARKS {
                    let top = f64::from(t.seq) + f64::from(t.span);
                    let near_edge = x > G_LEFT + pw - 24.0;
                    marks.push(Mark {
                        x: r(if near_edge { x - 3.0 } else { x + 3.0 }),
                        y: r(sy(top) - 2.0),
                        text,
                        anchor: if near_edge { "end" } else { "start" },
                        tone,
                        tip: format!("{what}: sequence {} at {}", t.seq, time_label(t.t_ns)),
                    });
                }
            }
        } else if t.flags & ACK != 0 {
            ack_line.push(x, sy(f64::from(t.ack)));
            if window_shown {
                win_line.push(x, sy(f64::from(t.ack) + t.win as f64));
            }
            for (l, rr) in t.sack.iter().take(t.sack_count as usize) {
                let _ = write!(
                    sack,
                    "M{} {}V{}",
                    r(x),
                    r(sy(f64::from(*l))),
                    r(sy(f64::from(*rr)))
                );
            }
        }
    }
    // The lines run on to the end of the connection.
    let end = sx(t_max as i64);
    let ack_pts = ack_line.finish(end);
    let win_pts = win_line.finish(end);
    let mut data = String::new();
    let mut retrans = String::new();
    for ((col, again), (lo, hi)) in &columns {
        let x = *col as f64 / 2.0;
        let (y1, y2) = (sy(*lo), sy(*hi));
        let out = if *again { &mut retrans } else { &mut data };
        // An I-beam, as tcptrace draws it: the bar and a tick at each end.
        let _ = write!(
            out,
            "M{} {}V{}M{} {}h4M{} {}h4",
            r(x),
            r(y1),
            r(y2),
            r(x - 2.0),
            r(y1),
            r(x - 2.0),
            r(y2)
        );
    }

    let x_step = nice_step(t_max, 5.0);
    let mut xticks = Vec::new();
    let mut v = 0.0;
    // (The count bounds the loop whatever floating point does with the step.)
    while v <= t_max * 1.0001 && xticks.len() < 20 {
        xticks.push(Tick {
            at: r(sx(v as i64)),
            label: time_tick_label(v, t_max, x_step),
        });
        v += x_step;
    }
    let y_step = nice_step(y_max, 5.0).max(1.0);
    let mut yticks = Vec::new();
    let mut v = 0.0;
    while v <= y_max && yticks.len() < 20 {
        yticks.push(Tick {
            at: r(sy(v)),
            label: bytes_tick_label(v, y_max, y_step),
        });
        v += y_step;
    }
    Graph {
        id,
        title,
        width: G_W,
        height: G_H,
        px: r(G_LEFT),
        py: r(G_TOP),
        pw: r(pw),
        ph: r(ph),
        right: r(G_LEFT + pw),
        bottom: r(G_TOP + ph),
        xticks,
        yticks,
        data,
        retrans,
        sack,
        ack: ack_pts,
        win: win_pts,
        marks,
        note,
        bytes,
    }
}

/// A step line (polyline points): across at the old value, then up or
/// down to the new one. Within one pixel column only where the column
/// started and ended is kept.
#[derive(Default)]
struct StepLine {
    points: String,
    /// The current column: its number, x, and the value it ended on.
    column: Option<(i64, f64, f64)>,
    /// The last y written.
    written: f64,
}

impl StepLine {
    fn point(&mut self, x: f64, y: f64) {
        let _ = write!(self.points, "{},{} ", r(x), r(y));
        self.written = y;
    }

    fn push(&mut self, x: f64, y: f64) {
        let col = x.round() as i64;
        match self.column {
            Some((c, _, _)) if c == col => {
                if let Some(column) = self.column.as_mut() {
                    column.2 = y;
                }
                return;
            }
            Some((_, cx, cy)) => {
                if cy != self.written {
                    self.point(cx, cy);
                }
                self.point(x, cy);
            }
            None => {}
        }
        self.point(x, y);
        self.column = Some((col, x, y));
    }

    fn finish(mut self, end: f64) -> String {
        if let Some((_, cx, cy)) = self.column {
            if cy != self.written {
                self.point(cx, cy);
            }
            self.point(end, cy);
        }
        self.points.trim_end().to_string()
    }
}

fn time_label(ns: i64) -> String {
    super::view::duration(ns)
}

/// One bar of the summary chart.
pub struct Bar {
    /// What it counts.
    pub label: &'static str,
    /// The count, as shown.
    pub value: String,
    /// Top of its bar.
    pub y: f32,
    /// Baseline of its texts.
    pub ty: f32,
    /// Bar length.
    pub w: f32,
    /// Where the count is written.
    pub vx: f32,
    /// Colour family.
    pub tone: &'static str,
    /// What it means.
    pub tip: &'static str,
    /// A rule above this bar (a new group starts).
    pub rule: bool,
}

/// The summary chart: one bar per count.
pub struct Chart {
    /// Size.
    pub width: u32,
    /// Size.
    pub height: f32,
    /// Where the bars start.
    pub bar_x: f32,
    /// Where the labels end.
    pub label_x: f32,
    /// The bars.
    pub bars: Vec<Bar>,
}

/// Bars for `(label, count, tone, tip, starts a group)`, scaled to the
/// largest count; a count that is not zero always shows.
pub fn chart(items: &[(&'static str, u64, &'static str, &'static str, bool)]) -> Chart {
    const W: u32 = 460;
    const LABEL: f64 = 178.0;
    const VALUE: f64 = 70.0;
    const ROW: f64 = 21.0;
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1) as f64;
    let room = f64::from(W) - LABEL - VALUE;
    let mut bars = Vec::new();
    let mut y = 6.0;
    for (label, count, tone, tip, rule) in items {
        if *rule {
            y += 8.0;
        }
        let w = if *count == 0 {
            0.0
        } else {
            (*count as f64 / max * room).max(3.0)
        };
        bars.push(Bar {
            label,
            value: thousands(*count),
            y: r(y + 3.0),
            ty: r(y + 15.0),
            w: r(w),
            vx: r(LABEL + w + 6.0),
            tone,
            tip,
            rule: *rule,
        });
        y += ROW;
    }
    Chart {
        width: W,
        height: r(y + 4.0),
        bar_x: r(LABEL),
        label_x: r(LABEL - 8.0),
        bars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(1000.0, 5.0), 200.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(3.0e9, 5.0), 1.0e9);
    }

    #[test]
    fn tick_labels_fit_their_step() {
        assert_eq!(time_tick_label(2.0e6, 4.0e6, 1.0e6), "2 ms");
        assert_eq!(time_tick_label(500.0, 900.0, 100.0), "0.5 µs");
        assert_eq!(time_tick_label(1.5e9, 3.0e9, 0.5e9), "1.5 s");
        assert_eq!(time_tick_label(0.0, 3.0e9, 0.5e9), "0.0 s");
        assert_eq!(bytes_tick_label(65536.0, 70_000.0, 10_000.0), "65,536");
        assert_eq!(bytes_tick_label(50_000.0, 210_000.0, 50_000.0), "50 kB");
        assert_eq!(bytes_tick_label(1_500_000.0, 20e6, 500_000.0), "1.5 MB");
    }

    fn point(t_ns: i64, dir: Direction, seq: u32, span: u32, ack: u32, win: u64) -> TracePoint {
        TracePoint {
            t_ns,
            dir,
            flags: ACK,
            seq,
            ack,
            span,
            win,
            retransmission: false,
            sack: [(0, 0); 4],
            sack_count: 0,
        }
    }

    #[test]
    fn the_graph_separates_resent_data_and_follows_acks_and_window() {
        let (s, c) = (Direction::ServerToClient, Direction::ClientToServer);
        let mut trace = vec![
            point(0, s, 1, 1000, 1, 0),
            point(1_000, s, 1001, 1000, 1, 0),
            point(2_000, c, 1, 0, 1001, 3000),
            point(3_000, s, 1001, 1000, 1, 0),
            point(4_000, c, 1, 0, 2001, 3000),
        ];
        trace[3].retransmission = true;
        let g = graph("g".into(), "t".into(), &trace, s);
        assert!(!g.data.is_empty());
        assert_eq!(g.retrans.matches('V').count(), 1, "one resent bar");
        assert_eq!(g.marks.iter().filter(|m| m.text == "R").count(), 1);
        assert_eq!(g.bytes, 2000, "a resent segment is not new data");
        // Two ACKs: up, across, up, across to the end.
        assert_eq!(g.ack.split(' ').count(), 4, "{}", g.ack);
        assert!(
            !g.win.is_empty() && g.note.is_none(),
            "the window (5,001) is drawn"
        );

        // A window far above the data is left out, and said so.
        let far: Vec<TracePoint> = trace
            .iter()
            .map(|p| TracePoint {
                win: p.win * 100,
                ..*p
            })
            .collect();
        let g = graph("g".into(), "t".into(), &far, s);
        assert!(g.win.is_empty());
        assert!(g.note.is_some());
    }

    #[test]
    fn every_count_that_is_not_zero_shows() {
        let c = chart(&[
            ("a", 10_000, "ok", "", false),
            ("b", 1, "bad", "", false),
            ("c", 0, "bad", "", false),
        ]);
        assert!(c.bars[0].w > 200.0);
        assert!(c.bars[1].w >= 3.0);
        assert_eq!(c.bars[2].w, 0.0);
    }
}
