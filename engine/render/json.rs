//! JSON Lines output: one object per packet or per connection.
//!
//! Field names are a contract (other tools parse them): extend, never rename.
//! `docs/json.md` lists every field.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::conn_order::ConnOrder;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

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

fn frame_time(ft: &Option<FrameTime>) -> (Value, Value) {
    match ft {
        Some(f) => (json!(f.frame), json!(secs(f.time_ns))),
        None => (Value::Null, Value::Null),
    }
}

fn zero_window_json(z: &ZeroWindow) -> Value {
    if z.episodes == 0 && z.probes == 0 {
        return Value::Null;
    }
    let (frame, time) = frame_time(&z.first);
    json!({
        "first_frame": frame,
        "first_time": time,
        "episodes": z.episodes,
        "stalled": secs(z.stalled_ns),
        "still_zero": z.still_zero,
        "probes": z.probes,
    })
}

/// A connection's milestones as a JSON object (`timeline` in `conns --json`).
pub fn timeline_json(t: &Timeline) -> Value {
    let frames = |v: &[FrameTime]| v.iter().map(|f| f.frame).collect::<Vec<_>>();
    let times = |v: &[FrameTime]| v.iter().map(|f| secs(f.time_ns)).collect::<Vec<_>>();
    let (final_ack_frame, final_ack_time) = frame_time(&t.final_ack);
    let (acked_frame, acked_time) = frame_time(&t.server_acked_data);
    let (client_fin_frame, client_fin_time) = frame_time(&t.fins[0]);
    let (server_fin_frame, server_fin_time) = frame_time(&t.fins[1]);
    let (client_fin_ack_frame, client_fin_ack_time) = frame_time(&t.fin_acks[0]);
    let (server_fin_ack_frame, server_fin_ack_time) = frame_time(&t.fin_acks[1]);
    let (reset_frame, reset_time) = frame_time(&t.reset);
    let (worst_rto, worst_rto_frame) = match t.worst_rto {
        Some((f, ns)) => (json!(secs(ns)), json!(f.frame)),
        None => (Value::Null, Value::Null),
    };
    json!({
        "syn_frames": frames(&t.syns),
        "syn_times": times(&t.syns),
        "syn_ack_frames": frames(&t.syn_acks),
        "syn_ack_times": times(&t.syn_acks),
        "final_ack_frame": final_ack_frame,
        "final_ack_time": final_ack_time,
        "server_acked_data_frame": acked_frame,
        "server_acked_data_time": acked_time,
        "client_fin_frame": client_fin_frame,
        "client_fin_time": client_fin_time,
        "server_fin_frame": server_fin_frame,
        "server_fin_time": server_fin_time,
        "client_fin_ack_frame": client_fin_ack_frame,
        "client_fin_ack_time": client_fin_ack_time,
        "server_fin_ack_frame": server_fin_ack_frame,
        "server_fin_ack_time": server_fin_ack_time,
        "reset_frame": reset_frame,
        "reset_time": reset_time,
        "reset_state": t.reset_state.map(|s| s.name()),
        "unacked_at_reset_client": t.unacked_at_reset[0],
        "unacked_at_reset_server": t.unacked_at_reset[1],
        "retransmission_frames": frames(&t.retransmissions),
        "worst_rto": worst_rto,
        "worst_rto_frame": worst_rto_frame,
        "zero_window_client": zero_window_json(&t.zero_window[0]),
        "zero_window_server": zero_window_json(&t.zero_window[1]),
        "keep_alives_client": t.keep_alives[0],
        "keep_alives_server": t.keep_alives[1],
        "first_keep_alive_idle_client": t.first_keep_alive_idle[0].map(secs),
        "first_keep_alive_idle_server": t.first_keep_alive_idle[1].map(secs),
    })
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
        m.serialize_entry("timeline", &timeline_json(&c.timeline))?;
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
