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

use crate::decode::flags;
use crate::decode::tcp::flag_names;
use crate::decode::TcpOptions;
use crate::events::{DataChunk, Handshake};
use crate::reassembly::Chunk;
use crate::render::text::FlagLetters;
use crate::tracking::analysis::AnalysisFlags;
use crate::tracking::summary::completeness_label;
use crate::tracking::{
    ConnectionInfo, ConnectionSummary, Flag, FrameTime, Insights, PacketRecord, Role, ZeroWindow,
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
}
