//! The read-only values scripts receive, and their getters.
//!
//! Every getter is listed in a table (`PACKET_FIELDS`, ...): the tables are
//! what the engine registers and what the reference in
//! `docs/writing-rules.md` is checked against, so the two cannot drift.

use std::sync::Arc;

use rhai::{
    Array, Blob, Dynamic, Engine, EvalAltResult, ImmutableString, Map, NativeCallContext, FLOAT,
    INT,
};

use crate::capture::Timestamp;
use crate::decode::flags;
use crate::decode::tcp::flag_names;
use crate::decode::TcpOptions;
use crate::dissect::websocket::opcode_name;
use crate::dissect::{Anomaly, At, Header, HttpMessage, SseEvent, StartLine, WsFrame, WsMessage};
use crate::events::{DataChunk, Handshake};
use crate::reassembly::Chunk;
use crate::render::text::FlagLetters;
use crate::tracking::analysis::AnalysisFlags;
use crate::tracking::summary::completeness_label;
use crate::tracking::{
    ConnectionInfo, ConnectionSummary, Direction, Flag, FrameTime, Insights, PacketRecord, Role,
    ZeroWindow,
};

fn secs(ns: i64) -> FLOAT {
    ns as FLOAT / 1e9
}

fn int(v: impl TryInto<INT>) -> Dynamic {
    Dynamic::from_int(v.try_into().unwrap_or(INT::MAX))
}

fn text(s: impl Into<ImmutableString>) -> Dynamic {
    Dynamic::from(s.into())
}

fn opt_int<T: TryInto<INT>>(v: Option<T>) -> Dynamic {
    v.map_or(Dynamic::UNIT, int)
}

fn names<T>(items: impl Iterator<Item = T>, name: impl Fn(T) -> &'static str) -> Dynamic {
    let a: Array = items.map(|i| text(name(i))).collect();
    Dynamic::from_array(a)
}

fn flag_list(flags: AnalysisFlags) -> Dynamic {
    names(flags.iter(), Flag::name)
}

fn insight_list(i: Insights) -> Dynamic {
    names(i.iter(), |x| x.name())
}

fn options_map(o: &TcpOptions, ack_base: u32) -> Dynamic {
    let mut m = Map::new();
    if let Some(v) = o.mss {
        m.insert("mss".into(), int(v));
    }
    if let Some(v) = o.window_scale {
        m.insert("window_scale".into(), int(v));
    }
    if o.sack_permitted {
        m.insert("sack_permitted".into(), Dynamic::TRUE);
    }
    if o.sack_count > 0 {
        let blocks: Array = o
            .sack_blocks()
            .iter()
            .map(|(l, r)| {
                Dynamic::from_array(vec![
                    int(l.wrapping_sub(ack_base)),
                    int(r.wrapping_sub(ack_base)),
                ])
            })
            .collect();
        m.insert("sack".into(), Dynamic::from_array(blocks));
    }
    if let Some((val, ecr)) = o.timestamps {
        m.insert("tsval".into(), int(val));
        m.insert("tsecr".into(), int(ecr));
    }
    if o.fast_open {
        m.insert("fast_open".into(), Dynamic::TRUE);
    }
    if o.mptcp {
        m.insert("mptcp".into(), Dynamic::TRUE);
    }
    if o.malformed {
        m.insert("malformed".into(), Dynamic::TRUE);
    }
    if o.cut_by_snaplen {
        m.insert("cut_by_snaplen".into(), Dynamic::TRUE);
    }
    Dynamic::from_map(m)
}

/// A packet, as `on_packet(p)` receives it.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Everything but the payload.
    pub record: PacketRecord<'static>,
    /// The captured payload (empty when no script reads it).
    pub payload: Blob,
}

impl Packet {
    /// Copies what a script may read from a packet; the payload only when
    /// `with_payload` (a copy per packet is the price of reading it).
    pub fn new(p: &PacketRecord<'_>, with_payload: bool) -> Self {
        Packet {
            record: p.detached(),
            payload: if with_payload {
                p.payload.to_vec()
            } else {
                Vec::new()
            },
        }
    }
}

/// A getter: its name as scripts write it, and the function.
pub type Getter<T> = (&'static str, fn(&mut T) -> Dynamic);

/// The packet's fields (`p.NAME`), the same as `packets --json` and more.
pub const PACKET_FIELDS: &[Getter<Packet>] = &[
    ("frame", |p| int(p.record.frame)),
    ("conn", |p| int(p.record.conn)),
    ("time", |p| Dynamic::from_float(secs(p.record.rel_time_ns))),
    ("epoch", |p| {
        Dynamic::from_float(p.record.time.as_secs_f64())
    }),
    ("src", |p| text(p.record.src.to_string())),
    ("dst", |p| text(p.record.dst.to_string())),
    ("src_ip", |p| text(p.record.src.ip.to_string())),
    ("dst_ip", |p| text(p.record.dst.ip.to_string())),
    ("src_port", |p| int(p.record.src.port)),
    ("dst_port", |p| int(p.record.dst.port)),
    ("dir", |p| text(p.record.dir.name())),
    ("from_client", |p| {
        Dynamic::from_bool(p.record.dir.sender() == Role::Client)
    }),
    ("flags", |p| text(flag_names(p.record.flags))),
    ("flag_letters", |p| {
        text(FlagLetters(p.record.flags).to_string())
    }),
    ("syn", |p| {
        Dynamic::from_bool(p.record.flags & flags::SYN != 0)
    }),
    ("ack_flag", |p| {
        Dynamic::from_bool(p.record.flags & flags::ACK != 0)
    }),
    ("fin", |p| {
        Dynamic::from_bool(p.record.flags & flags::FIN != 0)
    }),
    ("rst", |p| {
        Dynamic::from_bool(p.record.flags & flags::RST != 0)
    }),
    ("psh", |p| {
        Dynamic::from_bool(p.record.flags & flags::PSH != 0)
    }),
    ("urg", |p| {
        Dynamic::from_bool(p.record.flags & flags::URG != 0)
    }),
    ("ece", |p| {
        Dynamic::from_bool(p.record.flags & flags::ECE != 0)
    }),
    ("cwr", |p| {
        Dynamic::from_bool(p.record.flags & flags::CWR != 0)
    }),
    ("seq", |p| int(p.record.seq)),
    ("ack", |p| int(p.record.ack)),
    ("seq_raw", |p| int(p.record.seq_raw)),
    ("ack_raw", |p| int(p.record.ack_raw)),
    ("next_seq", |p| opt_int(p.record.next_seq)),
    ("len", |p| opt_int(p.record.len)),
    ("captured_len", |p| int(p.record.captured_len)),
    ("missing", |p| int(p.record.missing)),
    ("win", |p| int(p.record.win)),
    ("win_raw", |p| int(p.record.win_raw)),
    ("win_scale", |p| {
        opt_int(p.record.win_shift.map(|s| 1u32 << s))
    }),
    ("header_len", |p| int(p.record.header_len)),
    ("state", |p| text(p.record.state.name())),
    ("state_before", |p| text(p.record.state_before.name())),
    ("analysis", |p| flag_list(p.record.analysis)),
    ("insight", |p| insight_list(p.record.insight)),
    ("dup_ack_num", |p| int(p.record.details.dup_ack_num)),
    ("dup_ack_frame", |p| int(p.record.details.dup_ack_frame)),
    ("acks_frame", |p| int(p.record.details.acks_frame)),
    ("ack_rtt", |p| {
        Dynamic::from_float(secs(p.record.details.ack_rtt_ns))
    }),
    ("rto", |p| {
        Dynamic::from_float(secs(p.record.details.rto_ns))
    }),
    ("rto_frame", |p| int(p.record.details.rto_frame)),
    ("bytes_in_flight", |p| int(p.record.details.bytes_in_flight)),
    ("irtt", |p| {
        p.record
            .irtt_ns
            .map_or(Dynamic::UNIT, |n| Dynamic::from_float(secs(n)))
    }),
    ("in_icmp_error", |p| {
        Dynamic::from_bool(p.record.in_icmp_error)
    }),
    ("options", |p| {
        options_map(
            &p.record.options,
            p.record.ack_raw.wrapping_sub(p.record.ack),
        )
    }),
    ("payload", |p| Dynamic::from_blob(p.payload.clone())),
    ("payload_text", |p| {
        text(String::from_utf8_lossy(&p.payload).into_owned())
    }),
];

/// A connection as it opens, as `on_open(c)` receives it.
#[derive(Clone, Debug)]
pub struct Opened(pub ConnectionInfo);

/// The fields of an opening connection.
pub const OPEN_FIELDS: &[Getter<Opened>] = &[
    ("conn", |c| int(c.0.conn)),
    ("client", |c| text(c.0.client.to_string())),
    ("server", |c| text(c.0.server.to_string())),
    ("client_ip", |c| text(c.0.client.ip.to_string())),
    ("server_ip", |c| text(c.0.server.ip.to_string())),
    ("client_port", |c| int(c.0.client.port)),
    ("server_port", |c| int(c.0.server.port)),
    ("roles_from", |c| text(c.0.roles.name())),
    ("first_frame", |c| int(c.0.first_frame)),
    ("reused_ports", |c| Dynamic::from_bool(c.0.reused_ports)),
];

/// A finished connection's summary, as `on_close(c)` receives it (shared,
/// so that handing it to several scripts copies nothing).
#[derive(Clone, Debug)]
pub struct Closed(pub Arc<ConnectionSummary>);

/// A connection's timeline (`c.timeline`).
#[derive(Clone, Debug)]
pub struct TimelineValue(pub Arc<ConnectionSummary>);

/// One side's zero-window episodes (`c.timeline.zero_window_client`, ...).
#[derive(Clone, Copy, Debug)]
pub struct ZeroWindowValue(pub ZeroWindow);

fn frame_of(f: Option<FrameTime>) -> Dynamic {
    f.map_or(Dynamic::UNIT, |f| int(f.frame))
}

fn time_of(f: Option<FrameTime>) -> Dynamic {
    f.map_or(Dynamic::UNIT, |f| Dynamic::from_float(secs(f.time_ns)))
}

fn frames_of(v: &[FrameTime]) -> Dynamic {
    Dynamic::from_array(v.iter().map(|f| int(f.frame)).collect())
}

fn times_of(v: &[FrameTime]) -> Dynamic {
    Dynamic::from_array(
        v.iter()
            .map(|f| Dynamic::from_float(secs(f.time_ns)))
            .collect(),
    )
}

fn zero_window_of(z: &ZeroWindow) -> Dynamic {
    if z.episodes == 0 && z.probes == 0 {
        Dynamic::UNIT
    } else {
        Dynamic::from(ZeroWindowValue(*z))
    }
}

/// The fields of `c.timeline`: the same names as `timeline` in `conns --json`.
pub const TIMELINE_FIELDS: &[Getter<TimelineValue>] = &[
    ("syn_frames", |t| frames_of(&t.0.timeline.syns)),
    ("syn_times", |t| times_of(&t.0.timeline.syns)),
    ("syn_ack_frames", |t| frames_of(&t.0.timeline.syn_acks)),
    ("syn_ack_times", |t| times_of(&t.0.timeline.syn_acks)),
    ("final_ack_frame", |t| frame_of(t.0.timeline.final_ack)),
    ("final_ack_time", |t| time_of(t.0.timeline.final_ack)),
    ("server_acked_data_frame", |t| {
        frame_of(t.0.timeline.server_acked_data)
    }),
    ("server_acked_data_time", |t| {
        time_of(t.0.timeline.server_acked_data)
    }),
    ("client_fin_frame", |t| frame_of(t.0.timeline.fins[0])),
    ("client_fin_time", |t| time_of(t.0.timeline.fins[0])),
    ("server_fin_frame", |t| frame_of(t.0.timeline.fins[1])),
    ("server_fin_time", |t| time_of(t.0.timeline.fins[1])),
    ("client_fin_ack_frame", |t| {
        frame_of(t.0.timeline.fin_acks[0])
    }),
    ("client_fin_ack_time", |t| time_of(t.0.timeline.fin_acks[0])),
    ("server_fin_ack_frame", |t| {
        frame_of(t.0.timeline.fin_acks[1])
    }),
    ("server_fin_ack_time", |t| time_of(t.0.timeline.fin_acks[1])),
    ("reset_frame", |t| frame_of(t.0.timeline.reset)),
    ("reset_time", |t| time_of(t.0.timeline.reset)),
    ("reset_state", |t| {
        t.0.timeline
            .reset_state
            .map_or(Dynamic::UNIT, |s| text(s.name()))
    }),
    ("unacked_at_reset_client", |t| {
        int(t.0.timeline.unacked_at_reset[0])
    }),
    ("unacked_at_reset_server", |t| {
        int(t.0.timeline.unacked_at_reset[1])
    }),
    ("retransmission_frames", |t| {
        frames_of(&t.0.timeline.retransmissions)
    }),
    ("worst_rto", |t| {
        t.0.timeline
            .worst_rto
            .map_or(Dynamic::UNIT, |(_, ns)| Dynamic::from_float(secs(ns)))
    }),
    ("worst_rto_frame", |t| {
        t.0.timeline
            .worst_rto
            .map_or(Dynamic::UNIT, |(f, _)| int(f.frame))
    }),
    ("zero_window_client", |t| {
        zero_window_of(&t.0.timeline.zero_window[0])
    }),
    ("zero_window_server", |t| {
        zero_window_of(&t.0.timeline.zero_window[1])
    }),
    ("keep_alives_client", |t| int(t.0.timeline.keep_alives[0])),
    ("keep_alives_server", |t| int(t.0.timeline.keep_alives[1])),
    ("first_keep_alive_idle_client", |t| {
        t.0.timeline.first_keep_alive_idle[0]
            .map_or(Dynamic::UNIT, |n| Dynamic::from_float(secs(n)))
    }),
    ("first_keep_alive_idle_server", |t| {
        t.0.timeline.first_keep_alive_idle[1]
            .map_or(Dynamic::UNIT, |n| Dynamic::from_float(secs(n)))
    }),
];

/// The fields of one side's zero-window episodes.
pub const ZERO_WINDOW_FIELDS: &[Getter<ZeroWindowValue>] = &[
    ("first_frame", |z| frame_of(z.0.first)),
    ("first_time", |z| time_of(z.0.first)),
    ("episodes", |z| int(z.0.episodes)),
    ("stalled", |z| Dynamic::from_float(secs(z.0.stalled_ns))),
    ("still_zero", |z| Dynamic::from_bool(z.0.still_zero)),
    ("probes", |z| int(z.0.probes)),
];

/// The fields of a connection summary (those of `conns --json` and more).
pub const CLOSE_FIELDS: &[Getter<Closed>] = &[
    ("conn", |c| int(c.0.conn)),
    ("client", |c| text(c.0.client.to_string())),
    ("server", |c| text(c.0.server.to_string())),
    ("client_ip", |c| text(c.0.client.ip.to_string())),
    ("server_ip", |c| text(c.0.server.ip.to_string())),
    ("client_port", |c| int(c.0.client.port)),
    ("server_port", |c| int(c.0.server.port)),
    ("roles_from", |c| text(c.0.roles.name())),
    ("start", |c| Dynamic::from_float(secs(c.0.start_rel_ns))),
    ("end", |c| Dynamic::from_float(secs(c.0.end_rel_ns))),
    ("duration", |c| Dynamic::from_float(secs(c.0.duration_ns()))),
    ("first_frame", |c| int(c.0.first_frame)),
    ("last_frame", |c| int(c.0.last_frame)),
    ("packets", |c| int(c.0.packets[0] + c.0.packets[1])),
    ("packets_c2s", |c| int(c.0.packets[0])),
    ("packets_s2c", |c| int(c.0.packets[1])),
    ("bytes_c2s", |c| int(c.0.bytes[0])),
    ("bytes_s2c", |c| int(c.0.bytes[1])),
    ("handshake", |c| text(c.0.handshake.name())),
    ("close", |c| text(c.0.close.name())),
    ("closed_by", |c| {
        c.0.closed_by.map_or(Dynamic::UNIT, |r| text(r.name()))
    }),
    ("reset_by", |c| {
        c.0.reset_by.map_or(Dynamic::UNIT, |r| text(r.name()))
    }),
    ("reset_after", |c| {
        c.0.reset_after.map_or(Dynamic::UNIT, text)
    }),
    ("completeness", |c| int(c.0.completeness)),
    ("completeness_label", |c| {
        text(completeness_label(c.0.completeness))
    }),
    ("conn_state", |c| text(c.0.conn_state)),
    ("history", |c| text(c.0.history.as_str())),
    ("irtt", |c| {
        c.0.irtt_ns
            .map_or(Dynamic::UNIT, |n| Dynamic::from_float(secs(n)))
    }),
    ("keep_alives", |c| int(c.0.keep_alives)),
    ("keep_alive_intervals", |c| {
        let a: Array =
            c.0.keep_alive_intervals_ns
                .iter()
                .map(|n| Dynamic::from_float(secs(*n)))
                .collect();
        Dynamic::from_array(a)
    }),
    ("final_states", |c| {
        Dynamic::from_array(vec![
            text(c.0.final_states[0].name()),
            text(c.0.final_states[1].name()),
        ])
    }),
    ("missing_c2s", |c| int(c.0.reassembly[0].missing)),
    ("missing_s2c", |c| int(c.0.reassembly[1].missing)),
    ("reassembly_cap_hits", |c| {
        int(c.0.reassembly[0].cap_hits + c.0.reassembly[1].cap_hits)
    }),
    ("timeline", |c| Dynamic::from(TimelineValue(c.0.clone()))),
    ("flag_counts", |c| {
        let mut m = Map::new();
        for (i, f) in Flag::ALL.iter().enumerate() {
            m.insert(f.name().into(), int(c.0.flag_counts[i]));
        }
        Dynamic::from_map(m)
    }),
];

/// A completed handshake, as `on_handshake(h)` receives it.
#[derive(Clone, Debug)]
pub struct HandshakeDone(pub Handshake, pub i64);

/// The fields of a completed handshake.
pub const HANDSHAKE_FIELDS: &[Getter<HandshakeDone>] = &[
    ("conn", |h| int(h.0.conn)),
    ("frame", |h| int(h.0.frame)),
    ("time", |h| {
        Dynamic::from_float(secs(h.0.time.since(crate::capture::Timestamp(h.1))))
    }),
    ("syn_frame", |h| int(h.0.syn_frame)),
    ("syn_ack_frame", |h| int(h.0.syn_ack_frame)),
    ("irtt", |h| {
        h.0.irtt_ns
            .map_or(Dynamic::UNIT, |n| Dynamic::from_float(secs(n)))
    }),
];

/// Reassembled bytes, as `on_data(d)` receives them.
#[derive(Clone, Debug)]
pub struct Data {
    /// Connection number.
    pub conn: u64,
    /// `c2s` or `s2c`.
    pub dir: &'static str,
    /// Stream offset of the first byte.
    pub offset: u64,
    /// The bytes (empty for a gap).
    pub bytes: Blob,
    /// Bytes missing, for a gap.
    pub gap: u64,
    /// Frame that carried the bytes.
    pub frame: u64,
    /// Seconds since the first frame.
    pub time: FLOAT,
}

impl Data {
    /// Copies a chunk; `start` is the capture's first frame time.
    pub fn new(d: &DataChunk<'_>, start: crate::capture::Timestamp) -> Self {
        let (offset, bytes, gap) = match d.chunk {
            Chunk::Data { offset, bytes } => (offset, bytes.to_vec(), 0),
            Chunk::Gap { offset, len } => (offset, Vec::new(), len),
            Chunk::End { offset } => (offset, Vec::new(), 0),
        };
        Data {
            conn: d.conn,
            dir: d.dir.name(),
            offset,
            bytes,
            gap,
            frame: d.frame,
            time: secs(d.time.since(start)),
        }
    }
}

/// The fields of a data chunk.
pub const DATA_FIELDS: &[Getter<Data>] = &[
    ("conn", |d| int(d.conn)),
    ("dir", |d| text(d.dir)),
    ("from_client", |d| Dynamic::from_bool(d.dir == "c2s")),
    ("offset", |d| int(d.offset)),
    ("len", |d| {
        int(if d.gap > 0 {
            d.gap
        } else {
            d.bytes.len() as u64
        })
    }),
    ("bytes", |d| Dynamic::from_blob(d.bytes.clone())),
    ("text", |d| {
        text(String::from_utf8_lossy(&d.bytes).into_owned())
    }),
    ("is_gap", |d| Dynamic::from_bool(d.gap > 0)),
    ("frame", |d| int(d.frame)),
    ("time", |d| Dynamic::from_float(d.time)),
];

/// An HTTP message, as `on_http_request(r)` and `on_http_response(r)` receive it.
#[derive(Clone, Debug)]
pub struct HttpValue(pub Arc<HttpMessage>, pub Timestamp);

fn at_time(at: At, start: Timestamp) -> Dynamic {
    Dynamic::from_float(secs(at.time.since(start)))
}

fn opt_text(v: &Option<String>) -> Dynamic {
    v.as_ref().map_or(Dynamic::UNIT, |s| text(s.as_str()))
}

fn headers_array(headers: &[Header]) -> Dynamic {
    let a: Array = headers
        .iter()
        .map(|h| {
            let mut m = Map::new();
            m.insert("name".into(), text(&*h.name));
            m.insert("value".into(), text(h.value.as_str()));
            m.insert(
                "raw".into(),
                text(String::from_utf8_lossy(h.raw()).into_owned()),
            );
            Dynamic::from_map(m)
        })
        .collect();
    Dynamic::from_array(a)
}

fn anomaly_map(a: &Anomaly) -> Dynamic {
    let mut m = Map::new();
    m.insert("name".into(), text(a.name));
    m.insert("offset".into(), opt_int(a.offset));
    m.insert("detail".into(), text(a.detail.as_str()));
    Dynamic::from_map(m)
}

/// The fields of an HTTP message.
pub const HTTP_FIELDS: &[Getter<HttpValue>] = &[
    ("conn", |h| int(h.0.conn.get())),
    ("dir", |h| text(h.0.dir.name())),
    ("from_client", |h| {
        Dynamic::from_bool(h.0.dir == Direction::ClientToServer)
    }),
    ("index", |h| int(h.0.index)),
    ("is_request", |h| Dynamic::from_bool(h.0.method().is_some())),
    ("readable", |h| Dynamic::from_bool(!h.0.version.is_empty())),
    ("method", |h| h.0.method().map_or(Dynamic::UNIT, text)),
    ("uri", |h| match &h.0.start {
        StartLine::Request { uri, .. } => text(uri.as_str()),
        StartLine::Response { .. } => Dynamic::UNIT,
    }),
    ("status", |h| opt_int(h.0.status())),
    ("reason", |h| match &h.0.start {
        StartLine::Response { reason, .. } => text(&**reason),
        StartLine::Request { .. } => Dynamic::UNIT,
    }),
    ("version", |h| text(&*h.0.version)),
    ("start_line", |h| text(h.0.start_line())),
    ("headers", |h| headers_array(h.0.headers())),
    ("strict_headers", |h| {
        h.0.strict_headers
            .as_deref()
            .map_or(Dynamic::UNIT, headers_array)
    }),
    ("lenient_headers", |h| {
        h.0.lenient_headers
            .as_deref()
            .map_or(Dynamic::UNIT, headers_array)
    }),
    ("raw_head", |h| {
        text(String::from_utf8_lossy(&h.0.raw_head).into_owned())
    }),
    ("content_type", |h| {
        h.0.content_type.as_deref().map_or(Dynamic::UNIT, text)
    }),
    ("is_event_stream", |h| {
        Dynamic::from_bool(h.0.is_event_stream())
    }),
    ("transfer_encoding", |h| opt_text(&h.0.transfer_encoding)),
    ("content_encoding", |h| opt_text(&h.0.content_encoding)),
    ("content_length", |h| opt_int(h.0.content_length)),
    ("body_wire_len", |h| int(h.0.body_wire_len)),
    ("body_len", |h| int(h.0.body_decoded_len)),
    ("body", |h| {
        text(String::from_utf8_lossy(&h.0.body).into_owned())
    }),
    ("body_bytes", |h| Dynamic::from_blob(h.0.body.clone())),
    ("body_truncated", |h| Dynamic::from_bool(h.0.body_truncated)),
    ("body_first_frame", |h| {
        opt_int(h.0.body_first.map(|a| a.frame))
    }),
    ("body_first_time", |h| {
        h.0.body_first.map_or(Dynamic::UNIT, |a| at_time(a, h.1))
    }),
    ("first_frame", |h| int(h.0.first.frame)),
    ("first_time", |h| at_time(h.0.first, h.1)),
    ("head_end_frame", |h| int(h.0.head_end.frame)),
    ("last_frame", |h| int(h.0.last.frame)),
    ("last_time", |h| at_time(h.0.last, h.1)),
    ("ttfb", |h| {
        h.0.ttfb_ns
            .map_or(Dynamic::UNIT, |n| Dynamic::from_float(secs(n)))
    }),
    ("answers", |h| opt_int(h.0.answers)),
    ("request", |h| {
        h.0.request
            .as_ref()
            .map_or(Dynamic::UNIT, |r| Dynamic::from(HttpValue(r.clone(), h.1)))
    }),
    ("upgrade", |h| opt_text(&h.0.upgrade)),
    ("websocket_accept_valid", |h| {
        h.0.websocket_accept_valid
            .map_or(Dynamic::UNIT, Dynamic::from_bool)
    }),
    ("anomalies", |h| {
        Dynamic::from_array(h.0.anomalies.iter().map(anomaly_map).collect())
    }),
    ("anomaly_names", |h| names(h.0.anomalies.iter(), |a| a.name)),
    ("complete", |h| Dynamic::from_bool(h.0.complete)),
];

/// A field's value as a filter reads it: borrowed from the event, so that
/// a filter costs no rhai value (see `scripting::filter`). Each variant
/// stands for the rhai value the field's getter makes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Probed<'a> {
    /// `()`.
    Unit,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(INT),
    /// A float.
    Float(FLOAT),
    /// A string.
    Text(&'a str),
    /// An object (a nested value): set, and equal to no number or string.
    Object,
}

impl Probed<'_> {
    fn int(v: impl TryInto<INT>) -> Self {
        Probed::Int(v.try_into().unwrap_or(INT::MAX))
    }

    fn opt_int<T: TryInto<INT>>(v: Option<T>) -> Self {
        v.map_or(Probed::Unit, Probed::int)
    }

    fn opt_secs(ns: Option<i64>) -> Self {
        ns.map_or(Probed::Unit, |n| Probed::Float(secs(n)))
    }

    fn opt_text(s: Option<&str>) -> Probed<'_> {
        s.map_or(Probed::Unit, Probed::Text)
    }
}

/// A typed reading of a field, or of a dotted path into one, for filters:
/// the path as scripts write it, and the function. It must give what the
/// getters give (`probes_read_what_the_getters_read` checks each one).
pub type Probe<T> = (&'static str, for<'a> fn(&'a T) -> Probed<'a>);

fn zero_window_probe(z: &ZeroWindow) -> Probed<'static> {
    if z.episodes == 0 && z.probes == 0 {
        Probed::Unit
    } else {
        Probed::Object
    }
}

/// The fields of a summary that filters read most, typed.
pub const CLOSE_PROBES: &[Probe<Closed>] = &[
    ("conn", |c| Probed::int(c.0.conn)),
    ("client_port", |c| Probed::int(c.0.client.port)),
    ("server_port", |c| Probed::int(c.0.server.port)),
    ("roles_from", |c| Probed::Text(c.0.roles.name())),
    ("duration", |c| Probed::Float(secs(c.0.duration_ns()))),
    ("packets", |c| Probed::int(c.0.packets[0] + c.0.packets[1])),
    ("packets_c2s", |c| Probed::int(c.0.packets[0])),
    ("packets_s2c", |c| Probed::int(c.0.packets[1])),
    ("bytes_c2s", |c| Probed::int(c.0.bytes[0])),
    ("bytes_s2c", |c| Probed::int(c.0.bytes[1])),
    ("handshake", |c| Probed::Text(c.0.handshake.name())),
    ("close", |c| Probed::Text(c.0.close.name())),
    ("closed_by", |c| {
        Probed::opt_text(c.0.closed_by.map(|r| r.name()))
    }),
    ("reset_by", |c| {
        Probed::opt_text(c.0.reset_by.map(|r| r.name()))
    }),
    ("completeness", |c| Probed::int(c.0.completeness)),
    ("conn_state", |c| Probed::Text(c.0.conn_state)),
    ("history", |c| Probed::Text(c.0.history.as_str())),
    ("irtt", |c| Probed::opt_secs(c.0.irtt_ns)),
    ("keep_alives", |c| Probed::int(c.0.keep_alives)),
    ("missing_c2s", |c| Probed::int(c.0.reassembly[0].missing)),
    ("missing_s2c", |c| Probed::int(c.0.reassembly[1].missing)),
    ("timeline.zero_window_client", |c| {
        zero_window_probe(&c.0.timeline.zero_window[0])
    }),
    ("timeline.zero_window_server", |c| {
        zero_window_probe(&c.0.timeline.zero_window[1])
    }),
    ("timeline.keep_alives_client", |c| {
        Probed::int(c.0.timeline.keep_alives[0])
    }),
    ("timeline.keep_alives_server", |c| {
        Probed::int(c.0.timeline.keep_alives[1])
    }),
    ("timeline.reset_state", |c| {
        Probed::opt_text(c.0.timeline.reset_state.map(|s| s.name()))
    }),
];

/// The fields of an HTTP message that filters read most, typed.
pub const HTTP_PROBES: &[Probe<HttpValue>] = &[
    ("conn", |h| Probed::int(h.0.conn.get())),
    ("dir", |h| Probed::Text(h.0.dir.name())),
    ("from_client", |h| {
        Probed::Bool(h.0.dir == Direction::ClientToServer)
    }),
    ("index", |h| Probed::int(h.0.index)),
    ("is_request", |h| Probed::Bool(h.0.method().is_some())),
    ("readable", |h| Probed::Bool(!h.0.version.is_empty())),
    ("method", |h| Probed::opt_text(h.0.method())),
    ("uri", |h| match &h.0.start {
        StartLine::Request { uri, .. } => Probed::Text(uri),
        StartLine::Response { .. } => Probed::Unit,
    }),
    ("status", |h| Probed::opt_int(h.0.status())),
    ("version", |h| Probed::Text(&h.0.version)),
    ("content_type", |h| {
        Probed::opt_text(h.0.content_type.as_deref())
    }),
    ("is_event_stream", |h| Probed::Bool(h.0.is_event_stream())),
    ("transfer_encoding", |h| {
        Probed::opt_text(h.0.transfer_encoding.as_deref())
    }),
    ("content_encoding", |h| {
        Probed::opt_text(h.0.content_encoding.as_deref())
    }),
    ("content_length", |h| Probed::opt_int(h.0.content_length)),
    ("body_wire_len", |h| Probed::int(h.0.body_wire_len)),
    ("body_len", |h| Probed::int(h.0.body_decoded_len)),
    ("body_truncated", |h| Probed::Bool(h.0.body_truncated)),
    ("ttfb", |h| Probed::opt_secs(h.0.ttfb_ns)),
    ("answers", |h| Probed::opt_int(h.0.answers)),
    ("upgrade", |h| Probed::opt_text(h.0.upgrade.as_deref())),
    ("complete", |h| Probed::Bool(h.0.complete)),
];

/// A server-sent event, as `on_sse_event(e)` receives it.
#[derive(Clone, Debug)]
pub struct SseValue(pub Arc<SseEvent>, pub Timestamp);

/// The fields of a server-sent event.
pub const SSE_FIELDS: &[Getter<SseValue>] = &[
    ("conn", |e| int(e.0.conn)),
    ("response", |e| int(e.0.response)),
    ("index", |e| int(e.0.index)),
    ("event", |e| text(e.0.event.as_str())),
    ("data", |e| text(e.0.data.as_str())),
    ("id", |e| opt_text(&e.0.id)),
    ("retry", |e| opt_int(e.0.retry)),
    ("comments", |e| {
        Dynamic::from_array(e.0.comments.iter().map(|c| text(c.as_str())).collect())
    }),
    ("first_frame", |e| int(e.0.first.frame)),
    ("frame", |e| int(e.0.readable.frame)),
    ("time", |e| at_time(e.0.readable, e.1)),
    ("arrived_frame", |e| int(e.0.arrived.frame)),
    ("arrived_time", |e| at_time(e.0.arrived, e.1)),
    ("compressed", |e| Dynamic::from_bool(e.0.compressed)),
    ("decodable_on_arrival", |e| {
        Dynamic::from_bool(e.0.decodable_on_arrival)
    }),
    ("held_back", |e| Dynamic::from_float(secs(e.0.held_back_ns))),
    ("quiet_before", |e| {
        Dynamic::from_float(secs(e.0.quiet_before_ns))
    }),
    ("truncated", |e| Dynamic::from_bool(e.0.truncated)),
];

/// A WebSocket frame, as `on_ws_frame(f)` receives it.
#[derive(Clone, Debug)]
pub struct WsFrameValue(pub Arc<WsFrame>, pub Timestamp);

/// The fields of a WebSocket frame.
pub const WS_FRAME_FIELDS: &[Getter<WsFrameValue>] = &[
    ("conn", |f| int(f.0.conn)),
    ("dir", |f| text(f.0.dir.name())),
    ("from_client", |f| {
        Dynamic::from_bool(f.0.dir == Direction::ClientToServer)
    }),
    ("index", |f| int(f.0.index)),
    ("fin", |f| Dynamic::from_bool(f.0.fin)),
    ("rsv1", |f| Dynamic::from_bool(f.0.rsv1)),
    ("rsv2", |f| Dynamic::from_bool(f.0.rsv2)),
    ("rsv3", |f| Dynamic::from_bool(f.0.rsv3)),
    ("opcode", |f| int(f.0.opcode)),
    ("kind", |f| text(opcode_name(f.0.opcode))),
    ("masked", |f| Dynamic::from_bool(f.0.mask.is_some())),
    ("payload_len", |f| int(f.0.payload_len)),
    ("payload", |f| Dynamic::from_blob(f.0.payload.clone())),
    ("text", |f| {
        text(String::from_utf8_lossy(&f.0.payload).into_owned())
    }),
    ("close_code", |f| opt_int(f.0.close_code)),
    ("close_reason", |f| opt_text(&f.0.close_reason)),
    ("first_frame", |f| int(f.0.first.frame)),
    ("frame", |f| int(f.0.last.frame)),
    ("time", |f| at_time(f.0.last, f.1)),
];

/// A WebSocket message, as `on_ws_message(m)` receives it.
#[derive(Clone, Debug)]
pub struct WsMessageValue(pub Arc<WsMessage>, pub Timestamp);

/// The fields of a WebSocket message.
pub const WS_MESSAGE_FIELDS: &[Getter<WsMessageValue>] = &[
    ("conn", |m| int(m.0.conn)),
    ("dir", |m| text(m.0.dir.name())),
    ("from_client", |m| {
        Dynamic::from_bool(m.0.dir == Direction::ClientToServer)
    }),
    ("index", |m| int(m.0.index)),
    ("opcode", |m| int(m.0.opcode)),
    ("kind", |m| text(opcode_name(m.0.opcode))),
    ("frames", |m| int(m.0.frames)),
    ("compressed", |m| Dynamic::from_bool(m.0.compressed)),
    ("wire_len", |m| int(m.0.wire_len)),
    ("len", |m| int(m.0.len)),
    ("text", |m| text(m.0.text())),
    ("bytes", |m| Dynamic::from_blob(m.0.data.clone())),
    ("valid_utf8", |m| Dynamic::from_bool(m.0.valid_utf8)),
    ("close_code", |m| opt_int(m.0.close_code)),
    ("close_reason", |m| opt_text(&m.0.close_reason)),
    ("anomalies", |m| {
        Dynamic::from_array(m.0.anomalies.iter().map(|a| text(a.as_str())).collect())
    }),
    ("first_frame", |m| int(m.0.first.frame)),
    ("frame", |m| int(m.0.last.frame)),
    ("time", |m| at_time(m.0.last, m.1)),
];

/// An analysis flag by name; a misspelt name is an error, not a silent `false`.
fn known_flag(ctx: &NativeCallContext, name: &str) -> Result<Flag, Box<EvalAltResult>> {
    Flag::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Flag::ALL.iter().map(|f| f.name()).collect();
        Box::new(EvalAltResult::ErrorRuntime(
            format!(
                "no analysis flag `{name}`; the flags are {}",
                names.join(", ")
            )
            .into(),
            ctx.call_position(),
        ))
    })
}

/// Registers the value types and their getters.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Packet>("Packet");
    for (name, get) in PACKET_FIELDS {
        engine.register_get(*name, *get);
    }
    engine.register_fn(
        "has",
        |ctx: NativeCallContext, p: &mut Packet, flag: &str| -> Result<bool, Box<EvalAltResult>> {
            Ok(p.record.analysis.has(known_flag(&ctx, flag)?))
        },
    );
    engine.register_fn("to_string", |p: &mut Packet| {
        format!(
            "frame {} ({} {})",
            p.record.frame,
            p.record.dir.name(),
            flag_names(p.record.flags)
        )
    });
    engine.register_type_with_name::<Opened>("Opened");
    for (name, get) in OPEN_FIELDS {
        engine.register_get(*name, *get);
    }
    engine.register_type_with_name::<Closed>("Connection");
    for (name, get) in CLOSE_FIELDS {
        engine.register_get(*name, *get);
    }
    engine.register_type_with_name::<TimelineValue>("Timeline");
    for (name, get) in TIMELINE_FIELDS {
        engine.register_get(*name, *get);
    }
    engine.register_type_with_name::<ZeroWindowValue>("ZeroWindow");
    for (name, get) in ZERO_WINDOW_FIELDS {
        engine.register_get(*name, *get);
    }
    engine.register_fn(
        "count",
        |ctx: NativeCallContext, c: &mut Closed, flag: &str| -> Result<INT, Box<EvalAltResult>> {
            Ok(c.0.count(known_flag(&ctx, flag)?) as INT)
        },
    );
    engine.register_type_with_name::<HandshakeDone>("Handshake");
    for (name, get) in HANDSHAKE_FIELDS {
        engine.register_get(*name, *get);
    }
    engine.register_type_with_name::<Data>("Data");
    for (name, get) in DATA_FIELDS {
        engine.register_get(*name, *get);
    }
    engine.register_type_with_name::<HttpValue>("HttpMessage");
    for (name, get) in HTTP_FIELDS {
        engine.register_get(*name, *get);
    }
    engine.register_fn("header", |h: &mut HttpValue, name: &str| {
        h.0.header(name).map_or(Dynamic::UNIT, text)
    });
    engine.register_fn("has_anomaly", |h: &mut HttpValue, name: &str| {
        h.0.has_anomaly(name)
    });
    engine.register_fn("anomaly", |h: &mut HttpValue, name: &str| {
        h.0.anomalies
            .iter()
            .find(|a| a.name == name)
            .map_or(Dynamic::UNIT, anomaly_map)
    });
    engine.register_fn("to_string", |h: &mut HttpValue| h.0.start_line());
    engine.register_type_with_name::<SseValue>("SseEvent");
    for (name, get) in SSE_FIELDS {
        engine.register_get(*name, *get);
    }
    engine.register_type_with_name::<WsFrameValue>("WsFrame");
    for (name, get) in WS_FRAME_FIELDS {
        engine.register_get(*name, *get);
    }
    engine.register_type_with_name::<WsMessageValue>("WsMessage");
    for (name, get) in WS_MESSAGE_FIELDS {
        engine.register_get(*name, *get);
    }
}
