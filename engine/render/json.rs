//! JSON Lines output: one object per packet or per connection.
//!
//! Field names are a contract (other tools parse them): extend, never rename.
//! `docs/json.md` lists every field.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::conn_order::ConnOrder;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::decode::tcp::write_flag_names;
use crate::dissect::AppOverview;
use crate::events::{Event, EventSink};
use crate::tracking::analysis::{AnalysisFlags, Flag};
use crate::tracking::summary::completeness_label;
use crate::tracking::{
    ConnectionSummary, FrameTime, Insights, PacketRecord, Role, Timeline, ZeroWindow,
};

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// Serialises anything `Display` as a JSON string without an intermediate
/// `String` (serde_json formats straight into the output).
struct Shown<T: std::fmt::Display>(T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// TCP flag names, comma-separated, e.g. `SYN,ACK`.
struct FlagNames(u16);

impl std::fmt::Display for FlagNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_flag_names(self.0, f)
    }
}

struct FlagList(AnalysisFlags);

impl Serialize for FlagList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for f in self.0.iter() {
            seq.serialize_element(f.name())?;
        }
        seq.end()
    }
}

struct InsightList(Insights);

impl Serialize for InsightList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for i in self.0.iter() {
            seq.serialize_element(i.name())?;
        }
        seq.end()
    }
}

struct Options<'a>(&'a PacketRecord<'a>);

impl Serialize for Options<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = &self.0.options;
        let mut m = s.serialize_map(None)?;
        if let Some(mss) = o.mss {
            m.serialize_entry("mss", &mss)?;
        }
        if let Some(ws) = o.window_scale {
            m.serialize_entry("window_scale", &ws)?;
        }
        if o.sack_permitted {
            m.serialize_entry("sack_permitted", &true)?;
        }
        if o.sack_count > 0 {
            let base = self.0.ack_raw.wrapping_sub(self.0.ack);
            let blocks: Vec<[u32; 2]> = o
                .sack_blocks()
                .iter()
                .map(|(l, r)| [l.wrapping_sub(base), r.wrapping_sub(base)])
                .collect();
            m.serialize_entry("sack", &blocks)?;
        }
        if let Some((val, ecr)) = o.timestamps {
            m.serialize_entry("tsval", &val)?;
            m.serialize_entry("tsecr", &ecr)?;
        }
        if o.fast_open {
            m.serialize_entry("fast_open", &true)?;
        }
        if o.mptcp {
            m.serialize_entry("mptcp", &true)?;
        }
        if o.malformed {
            m.serialize_entry("malformed", &true)?;
        }
        if o.cut_by_snaplen {
            m.serialize_entry("cut_by_snaplen", &true)?;
        }
        m.end()
    }
}

/// A packet as a JSON object.
pub struct PacketJson<'a>(pub &'a PacketRecord<'a>);

impl Serialize for PacketJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let d = &p.details;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("frame", &p.frame)?;
        m.serialize_entry("conn", &p.conn)?;
        m.serialize_entry("time", &secs(p.rel_time_ns))?;
        m.serialize_entry("epoch", &p.time.as_secs_f64())?;
        m.serialize_entry("src", &Shown(p.src))?;
        m.serialize_entry("dst", &Shown(p.dst))?;
        m.serialize_entry("dir", p.dir.name())?;
        m.serialize_entry("flags", &Shown(FlagNames(p.flags)))?;
        m.serialize_entry("seq", &p.seq)?;
        m.serialize_entry("ack", &p.ack)?;
        m.serialize_entry("seq_raw", &p.seq_raw)?;
        m.serialize_entry("ack_raw", &p.ack_raw)?;
        m.serialize_entry("next_seq", &p.next_seq)?;
        m.serialize_entry("len", &p.len)?;
        m.serialize_entry("captured_len", &p.captured_len)?;
        if p.missing > 0 {
            m.serialize_entry("missing", &p.missing)?;
        }
        m.serialize_entry("win", &p.win)?;
        m.serialize_entry("win_raw", &p.win_raw)?;
        m.serialize_entry("win_scale", &p.win_shift.map(|s| 1u32 << s))?;
        m.serialize_entry("header_len", &p.header_len)?;
        m.serialize_entry("state", p.state.name())?;
        m.serialize_entry("state_before", p.state_before.name())?;
        m.serialize_entry("analysis", &FlagList(p.analysis))?;
        m.serialize_entry("insight", &InsightList(p.insight))?;
        if p.analysis.has(Flag::DuplicateAck) {
            m.serialize_entry("dup_ack_num", &d.dup_ack_num)?;
            m.serialize_entry("dup_ack_frame", &d.dup_ack_frame)?;
        }
        if d.acks_frame != 0 {
            m.serialize_entry("acks_frame", &d.acks_frame)?;
            m.serialize_entry("ack_rtt", &secs(d.ack_rtt_ns))?;
        }
        if p.analysis.has(Flag::Retransmission) && d.rto_ns != 0 {
            m.serialize_entry("rto", &secs(d.rto_ns))?;
            m.serialize_entry("rto_frame", &d.rto_frame)?;
        }
        if d.bytes_in_flight != 0 {
            m.serialize_entry("bytes_in_flight", &d.bytes_in_flight)?;
        }
        if p.in_icmp_error {
            m.serialize_entry("in_icmp_error", &true)?;
        }
        m.serialize_entry("irtt", &p.irtt_ns.map(secs))?;
        m.serialize_entry("options", &Options(p))?;
        m.end()
    }
}

fn role(r: Option<Role>) -> Option<&'static str> {
    r.map(Role::name)
}

/// A milestone's frame and time, or nulls.
fn frame_time(ft: &Option<FrameTime>) -> (Option<u64>, Option<f64>) {
    match ft {
        Some(f) => (Some(f.frame), Some(secs(f.time_ns))),
        None => (None, None),
    }
}

/// One side's zero-window episodes as a JSON object, or null when it had
/// none.
struct ZeroWindowJson<'a>(&'a ZeroWindow);

impl Serialize for ZeroWindowJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let z = self.0;
        if z.episodes == 0 && z.probes == 0 {
            return s.serialize_none();
        }
        let (frame, time) = frame_time(&z.first);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("first_frame", &frame)?;
        m.serialize_entry("first_time", &time)?;
        m.serialize_entry("episodes", &z.episodes)?;
        m.serialize_entry("stalled", &secs(z.stalled_ns))?;
        m.serialize_entry("still_zero", &z.still_zero)?;
        m.serialize_entry("probes", &z.probes)?;
        m.end()
    }
}

/// Frames, or times, of a list of milestones, as a JSON array.
struct FramesJson<'a>(&'a [FrameTime]);
struct TimesJson<'a>(&'a [FrameTime]);

impl Serialize for FramesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|f| f.frame))
    }
}

impl Serialize for TimesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|f| secs(f.time_ns)))
    }
}

/// A connection's milestones as a JSON object (`timeline` in `conns
/// --json`), written as it is read, with no `Value` built per connection.
pub struct TimelineJson<'a>(pub &'a Timeline);

impl Serialize for TimelineJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut m = s.serialize_map(None)?;
        let pair = |m: &mut S::SerializeMap,
                    frame_key: &'static str,
                    time_key: &'static str,
                    ft: &Option<FrameTime>|
         -> Result<(), S::Error> {
            let (frame, time) = frame_time(ft);
            m.serialize_entry(frame_key, &frame)?;
            m.serialize_entry(time_key, &time)
        };
        m.serialize_entry("syn_frames", &FramesJson(&t.syns))?;
        m.serialize_entry("syn_times", &TimesJson(&t.syns))?;
        m.serialize_entry("syn_ack_frames", &FramesJson(&t.syn_acks))?;
        m.serialize_entry("syn_ack_times", &TimesJson(&t.syn_acks))?;
        pair(&mut m, "final_ack_frame", "final_ack_time", &t.final_ack)?;
        pair(
            &mut m,
            "server_acked_data_frame",
            "server_acked_data_time",
            &t.server_acked_data,
        )?;
        pair(&mut m, "client_fin_frame", "client_fin_time", &t.fins[0])?;
        pair(&mut m, "server_fin_frame", "server_fin_time", &t.fins[1])?;
        pair(
            &mut m,
            "client_fin_ack_frame",
            "client_fin_ack_time",
            &t.fin_acks[0],
        )?;
        pair(
            &mut m,
            "server_fin_ack_frame",
            "server_fin_ack_time",
            &t.fin_acks[1],
        )?;
        pair(&mut m, "reset_frame", "reset_time", &t.reset)?;
        m.serialize_entry("reset_state", &t.reset_state.map(|s| s.name()))?;
        m.serialize_entry("unacked_at_reset_client", &t.unacked_at_reset[0])?;
        m.serialize_entry("unacked_at_reset_server", &t.unacked_at_reset[1])?;
        m.serialize_entry("retransmission_frames", &FramesJson(&t.retransmissions))?;
        m.serialize_entry("worst_rto", &t.worst_rto.map(|(_, ns)| secs(ns)))?;
        m.serialize_entry("worst_rto_frame", &t.worst_rto.map(|(f, _)| f.frame))?;
        m.serialize_entry("zero_window_client", &ZeroWindowJson(&t.zero_window[0]))?;
        m.serialize_entry("zero_window_server", &ZeroWindowJson(&t.zero_window[1]))?;
        m.serialize_entry("keep_alives_client", &t.keep_alives[0])?;
        m.serialize_entry("keep_alives_server", &t.keep_alives[1])?;
        m.serialize_entry(
            "first_keep_alive_idle_client",
            &t.first_keep_alive_idle[0].map(secs),
        )?;
        m.serialize_entry(
            "first_keep_alive_idle_server",
            &t.first_keep_alive_idle[1].map(secs),
        )?;
        m.end()
    }
}

/// A connection summary as a JSON object.
pub struct ConnJson<'a>(
    pub &'a ConnectionSummary,
    pub Option<&'a str>,
    pub Option<&'a AppOverview>,
);

/// A connection's application overview as a JSON object: the `app` field
/// of `chattcp conns --json` (see docs/json.md), written as it is read,
/// with no `Value` built per connection.
pub struct OverviewJson<'a>(pub &'a AppOverview);

impl Serialize for OverviewJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// Counts by key, as an object (integer keys become strings).
        struct Counts<'a, K>(&'a [(K, u64)]);
        impl<K: Serialize> Serialize for Counts<'_, K> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(k, n)| (k, n)))
            }
        }
        let o = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("http_requests", &o.requests)?;
        m.serialize_entry("http_responses", &o.responses)?;
        m.serialize_entry("http_statuses", &Counts(o.statuses()))?;
        m.serialize_entry("http_other_statuses", &o.other_statuses)?;
        m.serialize_entry("first_request", &o.first_request())?;
        m.serialize_entry("http_unanswered", &o.unanswered)?;
        m.serialize_entry("http_cut_short", &o.cut_short)?;
        m.serialize_entry("http_unreadable", &o.unreadable)?;
        m.serialize_entry("body_bytes_c2s", &o.body_bytes[0])?;
        m.serialize_entry("body_bytes_s2c", &o.body_bytes[1])?;
        m.serialize_entry("decoded_bytes_c2s", &o.decoded_bytes[0])?;
        m.serialize_entry("decoded_bytes_s2c", &o.decoded_bytes[1])?;
        m.serialize_entry("http_anomalies", &Counts(o.anomalies()))?;
        m.serialize_entry("http_other_anomalies", &o.other_anomalies)?;
        m.serialize_entry("sse_events", &o.sse_events)?;
        m.serialize_entry("ws_messages_c2s", &o.ws_messages[0])?;
        m.serialize_entry("ws_messages_s2c", &o.ws_messages[1])?;
        m.serialize_entry("ws_close_code", &o.ws_close_code)?;
        m.end()
    }
}

impl Serialize for ConnJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = s.serialize_map(None)?;
        if let Some(file) = self.1 {
            m.serialize_entry("file", file)?;
        }
        m.serialize_entry("conn", &c.conn)?;
        m.serialize_entry("client", &Shown(c.client))?;
        m.serialize_entry("server", &Shown(c.server))?;
        m.serialize_entry("roles_from", c.roles.name())?;
        m.serialize_entry("start", &secs(c.start_rel_ns))?;
        m.serialize_entry("end", &secs(c.end_rel_ns))?;
        m.serialize_entry("duration", &secs(c.duration_ns()))?;
        m.serialize_entry("first_frame", &c.first_frame)?;
        m.serialize_entry("last_frame", &c.last_frame)?;
        m.serialize_entry("packets", &(c.packets[0] + c.packets[1]))?;
        m.serialize_entry("packets_c2s", &c.packets[0])?;
        m.serialize_entry("packets_s2c", &c.packets[1])?;
        m.serialize_entry("bytes_c2s", &c.bytes[0])?;
        m.serialize_entry("bytes_s2c", &c.bytes[1])?;
        m.serialize_entry("handshake", c.handshake.name())?;
        m.serialize_entry("close", c.close.name())?;
        m.serialize_entry("closed_by", &role(c.closed_by))?;
        m.serialize_entry("reset_by", &role(c.reset_by))?;
        m.serialize_entry("reset_after", &c.reset_after)?;
        m.serialize_entry("completeness", &c.completeness)?;
        m.serialize_entry("completeness_label", &completeness_label(c.completeness))?;
        m.serialize_entry("conn_state", c.conn_state)?;
        m.serialize_entry("history", &c.history)?;
        m.serialize_entry("irtt", &c.irtt_ns.map(secs))?;
        for (i, flag) in Flag::ALL.iter().enumerate() {
            m.serialize_entry(flag.name(), &c.flag_counts[i])?;
        }
        m.serialize_entry("keep_alives", &c.keep_alives)?;
        let intervals: Vec<f64> = c.keep_alive_intervals_ns.iter().map(|n| secs(*n)).collect();
        m.serialize_entry("keep_alive_intervals", &intervals)?;
        m.serialize_entry(
            "final_states",
            &[c.final_states[0].name(), c.final_states[1].name()],
        )?;
        m.serialize_entry("missing_c2s", &c.reassembly[0].missing)?;
        m.serialize_entry("missing_s2c", &c.reassembly[1].missing)?;
        m.serialize_entry(
            "reassembly_cap_hits",
            &(c.reassembly[0].cap_hits + c.reassembly[1].cap_hits),
        )?;
        m.serialize_entry("timeline", &TimelineJson(&c.timeline))?;
        m.serialize_entry("app", &self.2.map(OverviewJson))?;
        m.end()
    }
}

/// What a JSON Lines writer prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonKind {
    /// One object per TCP packet.
    Packets,
    /// One object per connection.
    Conns,
}

/// Writes JSON Lines to `out`.
pub struct JsonLines<W: Write> {
    out: W,
    kind: JsonKind,
    /// Flush after every line (for live pipes).
    pub flush_each: bool,
    /// Connection summaries held back to be written in connection order.
    order: ConnOrder<ConnectionSummary>,
    /// The capture each connection object names (`"file"`), when one run
    /// lists the connections of several.
    file: Option<String>,
    /// Connections' overviews until their summaries are written: an
    /// overview comes just before its summary, so this holds no more
    /// than the summaries waiting in `order`, and one.
    apps: BTreeMap<u64, AppOverview>,
}

impl<W: Write> JsonLines<W> {
    /// A writer of `kind` objects.
    pub fn new(out: W, kind: JsonKind) -> Self {
        JsonLines {
            out,
            kind,
            flush_each: false,
            order: ConnOrder::default(),
            file: None,
            apps: BTreeMap::new(),
        }
    }

    /// Connection objects begin with `"file": name`, for output that holds
    /// the connections of several captures.
    pub fn naming_file(mut self, name: impl Into<String>) -> Self {
        self.file = Some(name.into());
        self
    }

    fn line<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")?;
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }
}

impl<W: Write> EventSink for JsonLines<W> {
    fn event(&mut self, event: &Event<'_>) -> io::Result<()> {
        match (self.kind, event) {
            (JsonKind::Packets, Event::Packet(p)) => self.line(&PacketJson(p)),
            (JsonKind::Conns, Event::Overview(o)) => {
                self.apps.insert(o.conn, (*o).clone());
                Ok(())
            }
            (JsonKind::Conns, Event::Closed(c)) => {
                let mut order = std::mem::take(&mut self.order);
                let file = self.file.take();
                let mut apps = std::mem::take(&mut self.apps);
                // What waits is a copy of the summary (with the lists it
                // holds) and the overview kept in `apps`.
                let overview = if apps.contains_key(&c.conn) {
                    std::mem::size_of::<AppOverview>()
                } else {
                    0
                };
                let bytes = std::mem::size_of::<ConnectionSummary>() + c.heap_bytes() + overview;
                let result = order.push(c.conn, c, bytes, |c| {
                    let app = apps.remove(&c.conn);
                    self.line(&ConnJson(c, file.as_deref(), app.as_ref()))
                });
                self.order = order;
                self.file = file;
                self.apps = apps;
                result
            }
            (_, Event::End(_)) => {
                let mut order = std::mem::take(&mut self.order);
                let file = self.file.take();
                let mut apps = std::mem::take(&mut self.apps);
                order.finish(|c| {
                    let app = apps.remove(&c.conn);
                    self.line(&ConnJson(c, file.as_deref(), app.as_ref()))
                })?;
                self.file = file;
                self.out.flush()
            }
            _ => Ok(()),
        }
    }
}
