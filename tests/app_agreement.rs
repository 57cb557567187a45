//! The application dissectors against tshark 4.0: every HTTP message and
//! every WebSocket frame tshark finds in `captures/` and the public corpus
//! (`../shared/corpus`), field by field.
//!
//! tshark's reading is kept in `tests/expected-app/NAME.tsv` (made by
//! `tests/regen-app-expected.sh`, one line per PDU; see it for the one
//! preference changed, out-of-order TCP reassembly), so this test needs no
//! tshark. Our side runs the pipeline through a [`Dissector`] and turns its
//! events into the same lines:
//!
//! - tshark reassembles an HTTP message's head and body (Content-Length,
//!   chunked, or until the FIN) and dissects the whole message once, in the
//!   frame whose arrival completed it; the frames before show only "TCP
//!   segment of a reassembled PDU", so a head alone is never a PDU
//!   ([`AppEvent::HttpHead`] is not compared). Our PDU is
//!   [`AppEvent::Http`], at the frame of the packet being processed when the
//!   dissector emitted it: the frame of its last byte (`HttpMessage::last`)
//!   unless that byte arrived before a hole was filled (the summary counts
//!   those).
//! - A WebSocket frame is a PDU the same way ([`AppEvent::WsFrame`]); the
//!   text (unmasked, inflated) or binary payload of a message goes with the
//!   frame that completes the message, as tshark shows it there; a control
//!   frame carries its close code and reason or its ping / pong payload.
//! - Not compared, and counted: our messages cut short (`complete == false`)
//!   where tshark shows nothing, since tshark dissects a message only when
//!   its reassembly completes, which for them never happens; and our HTTP
//!   "messages" without a start line (bytes that are not HTTP, flagged
//!   `unparsable`). Should tshark show a PDU there, it is still compared.
//!
//! Lines are matched by frame, then by kind (`http` / `websocket`) and order
//! in the frame. Every difference is reported with file, frame and field;
//! the test fails on any that [`EXCEPTIONS`] does not explain, and on an
//! exception that no longer applies.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chattcp::dissect::{AppEvent, Dissector, StartLine};
use chattcp::events::{Event, EventSink};
use chattcp::pipeline::{self, Limits};

/// The TSV's columns after `frame`, `stream`, `pdu`.
const FIELDS: [&str; 15] = [
    "http.request.method",
    "http.request.uri",
    "http.response.code",
    "http.content_length_header",
    "websocket.fin",
    "websocket.rsv",
    "websocket.opcode",
    "websocket.mask",
    "websocket.payload_length",
    "websocket.payload.text",
    "websocket.payload.close.status_code",
    "websocket.payload.close.reason",
    "websocket.payload.ping",
    "websocket.payload.pong",
    "data.data",
];

/// Where tshark and chattcp are known to differ, and why chattcp is right
/// (or neither can be). `frame: None` covers the whole file; `field:
/// None` covers whole PDUs (one side has a PDU the other does not).
struct Exception {
    file: &'static str,
    frame: Option<u64>,
    field: Option<&'static str>,
    why: &'static str,
}

const EXCEPTIONS: &[Exception] = &[Exception {
    file: "suricata-tcp-urgent",
    frame: Some(8),
    field: None,
    why: "tshark does not see this request as HTTP: port 9090 is not an HTTP port and its \
          HTTP heuristic rejects the connection's first segment, `GET /malic` (frame 4, no line \
          end yet), so the request is shown as data; only the response, which the heuristic \
          takes, is HTTP. Decoded as HTTP (`-d tcp.port==9090,http`) tshark reads the same \
          GET /malicXious at frame 8 as chattcp.",
}];

/// One PDU: kind and the values of [`FIELDS`] (empty: not shown).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pdu {
    stream: u64,
    kind: String,
    fields: Vec<String>,
    /// Ours only: an HTTP message cut short (by a gap or the connection's end).
    cut: bool,
}

type Pdus = BTreeMap<u64, Vec<Pdu>>;

fn read_tsv(path: &Path) -> Pdus {
    let text = std::fs::read_to_string(path).expect("read TSV");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header line").split('\t').collect();
    assert_eq!(
        header[..3],
        ["frame", "stream", "pdu"],
        "{}",
        path.display()
    );
    assert_eq!(header[3..], FIELDS, "{}", path.display());
    let mut pdus = Pdus::new();
    for line in lines {
        let c: Vec<&str> = line.split('\t').collect();
        assert_eq!(c.len(), 3 + FIELDS.len(), "{}: {line}", path.display());
        pdus.entry(c[0].parse().expect("frame"))
            .or_default()
            .push(Pdu {
                stream: c[1].parse().expect("stream"),
                kind: c[2].to_string(),
                fields: c[3..].iter().map(|s| s.to_string()).collect(),
                cut: false,
            });
    }
    pdus
}

/// Keeps the application events, each with the frame of the packet whose
/// arrival completed it: the packet being processed when the dissector
/// emitted it. That is the frame tshark dissects a PDU in once its
/// reassembly is complete. It is the frame of the PDU's last byte
/// (`HttpMessage::last`, `WsFrame::last`) unless that byte arrived before a
/// hole was filled.
#[derive(Default)]
struct Collect {
    packet: u64,
    events: Vec<(u64, AppEvent)>,
}

impl EventSink for Collect {
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        match event {
            Event::Packet(p) => self.packet = p.frame,
            Event::App(app) => self.events.push((self.packet, (*app).clone())),
            _ => {}
        }
        Ok(())
    }
}

fn app_events(capture: &Path) -> Vec<(u64, AppEvent)> {
    let file = std::fs::File::open(capture).expect("open capture");
    let mut dissector = Dissector::new(Collect::default());
    // A damaged file is read up to the damage, as tshark does.
    let _ = pipeline::run(
        std::io::BufReader::new(file),
        Limits::default(),
        &mut dissector,
    );
    dissector.into_inner().events
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A string as tshark 4.0 prints it in `-T fields` output (checked on a
/// crafted capture with every control byte): it ends at a NUL, invalid
/// UTF-8 becomes U+FFFD, and BS, TAB, LF, FF and CR are written `\b`, `\t`,
/// `\n`, `\f`, `\r`; every other byte is printed as it is.
fn tshark_string(bytes: &[u8]) -> String {
    let bytes = bytes.split(|b| *b == 0).next().unwrap_or_default();
    let mut out = String::new();
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn field(name: &str) -> usize {
    FIELDS
        .iter()
        .position(|f| *f == name)
        .unwrap_or_else(|| panic!("no field {name}"))
}

/// Our events as tshark's lines; also how many of our HTTP "messages" had
/// no start line to compare.
fn our_pdus(events: &[(u64, AppEvent)], t: &mut Tally) -> Pdus {
    let mut pdus = Pdus::new();
    // The last WebSocket frame line of each (conn, dir): (frame, index in its frame).
    let mut last_ws: BTreeMap<(u64, usize), (u64, usize)> = BTreeMap::new();
    for (completed, event) in events {
        let completed = *completed;
        if completed != event.frame() && matches!(event, AppEvent::Http(_) | AppEvent::WsFrame(_)) {
            t.late += 1;
        }
        match event {
            AppEvent::Http(m) if m.method() == Some("") || m.status() == Some(0) => {
                // Bytes that are not an HTTP message (`unparsable`), or a head
                // cut before its start line ended: nothing tshark would call
                // HTTP. Should tshark see a message there, it shows as tshark's.
                t.not_http += 1;
            }
            AppEvent::Http(m) => {
                let mut f = vec![String::new(); FIELDS.len()];
                match &m.start {
                    StartLine::Request { method, uri } => {
                        f[field("http.request.method")] = tshark_string(method.as_bytes());
                        f[field("http.request.uri")] = tshark_string(uri.as_bytes());
                    }
                    StartLine::Response { status, .. } => {
                        f[field("http.response.code")] = status.to_string();
                    }
                }
                if let Some(h) = m
                    .headers()
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                {
                    f[field("http.content_length_header")] = tshark_string(h.raw()).trim().into();
                }
                pdus.entry(completed).or_default().push(Pdu {
                    stream: m.conn.get(),
                    kind: "http".into(),
                    fields: f,
                    cut: !m.complete,
                });
            }
            AppEvent::WsFrame(w) => {
                let mut f = vec![String::new(); FIELDS.len()];
                f[field("websocket.fin")] = u8::from(w.fin).to_string();
                let rsv = u8::from(w.rsv1) << 2 | u8::from(w.rsv2) << 1 | u8::from(w.rsv3);
                f[field("websocket.rsv")] = format!("0x{rsv:02x}");
                f[field("websocket.opcode")] = w.opcode.to_string();
                f[field("websocket.mask")] = u8::from(w.mask.is_some()).to_string();
                f[field("websocket.payload_length")] = w.payload_len.to_string();
                match w.opcode {
                    8 => {
                        if let Some(code) = w.close_code {
                            f[field("websocket.payload.close.status_code")] = code.to_string();
                        }
                        if w.payload.len() > 2 {
                            f[field("websocket.payload.close.reason")] =
                                tshark_string(&w.payload[2..]);
                        }
                    }
                    9 if !w.payload.is_empty() => {
                        f[field("websocket.payload.ping")] = hex(&w.payload)
                    }
                    10 if !w.payload.is_empty() => {
                        f[field("websocket.payload.pong")] = hex(&w.payload)
                    }
                    _ => {}
                }
                let at = pdus.entry(completed).or_default();
                at.push(Pdu {
                    stream: w.conn,
                    kind: "websocket".into(),
                    fields: f,
                    cut: false,
                });
                last_ws.insert((w.conn, w.dir.index()), (completed, at.len() - 1));
            }
            AppEvent::WsMessage(m) if m.opcode < 8 => {
                let Some(&(frame, i)) = last_ws.get(&(m.conn, m.dir.index())) else {
                    continue;
                };
                let Some(pdu) = pdus.get_mut(&frame).and_then(|v| v.get_mut(i)) else {
                    continue;
                };
                match m.opcode {
                    1 => pdu.fields[field("websocket.payload.text")] = tshark_string(&m.data),
                    2 if !m.data.is_empty() => pdu.fields[field("data.data")] = hex(&m.data),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    pdus
}

fn excused(file: &str, frame: u64, name: Option<&str>) -> Option<&'static Exception> {
    EXCEPTIONS.iter().find(|e| {
        e.file == file
            && e.frame.is_none_or(|f| f == frame)
            && (e.field.is_none() || e.field == name)
    })
}

#[derive(Default)]
struct Tally {
    files: usize,
    /// tshark's HTTP messages and WebSocket frames compared.
    http: usize,
    ws: usize,
    /// Of those, the ones we read the same in every field.
    agree: usize,
    /// Differences [`EXCEPTIONS`] explain.
    excused: usize,
    /// Our messages and frames completed by a packet other than the one
    /// that carried their last byte (out-of-order arrival).
    late: usize,
    /// Our messages cut short that tshark never shows.
    cut: usize,
    /// Our HTTP "messages" without a start line.
    not_http: usize,
    failures: Vec<String>,
    used: BTreeSet<usize>,
}

fn compare(name: &str, want: &Pdus, got: &Pdus, t: &mut Tally) {
    let frames: BTreeSet<u64> = want.keys().chain(got.keys()).copied().collect();
    for frame in frames {
        for kind in ["http", "websocket"] {
            let of = |p: &Pdus| -> Vec<Pdu> {
                p.get(&frame)
                    .map(|v| v.iter().filter(|p| p.kind == kind).cloned().collect())
                    .unwrap_or_default()
            };
            let (w, g) = (of(want), of(got));
            for i in 0..w.len().max(g.len()) {
                if i < w.len() {
                    if kind == "http" {
                        t.http += 1;
                    } else {
                        t.ws += 1;
                    }
                }
                let mut report =
                    |field: Option<&str>, what: String| match excused(name, frame, field) {
                        Some(e) => {
                            t.excused += 1;
                            t.used.insert(
                                EXCEPTIONS
                                    .iter()
                                    .position(|x| std::ptr::eq(x, e))
                                    .unwrap_or(0),
                            );
                        }
                        None => t
                            .failures
                            .push(format!("{name} frame {frame} {kind}#{i}: {what}")),
                    };
                match (w.get(i), g.get(i)) {
                    (Some(w), Some(g)) => {
                        let mut same = true;
                        if w.stream != g.stream {
                            same = false;
                            report(
                                Some("stream"),
                                format!("stream: tshark {} chattcp {}", w.stream, g.stream),
                            );
                        }
                        for (k, f) in FIELDS.iter().enumerate() {
                            if w.fields[k] != g.fields[k] {
                                same = false;
                                report(
                                    Some(f),
                                    format!(
                                        "{f}: tshark {:?} chattcp {:?}",
                                        short(&w.fields[k]),
                                        short(&g.fields[k])
                                    ),
                                );
                            }
                        }
                        if same {
                            t.agree += 1;
                        }
                    }
                    (Some(w), None) => report(None, format!("only tshark has it: {}", line(w))),
                    // tshark dissects a message when its reassembly
                    // completes, which for a cut message never happens.
                    (None, Some(g)) if g.cut => t.cut += 1,
                    (None, Some(g)) => report(None, format!("only chattcp has it: {}", line(g))),
                    (None, None) => {}
                }
            }
        }
    }
}

fn short(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s.to_string()
    }
}

fn line(p: &Pdu) -> String {
    let set: Vec<String> = FIELDS
        .iter()
        .zip(&p.fields)
        .filter(|(_, v)| !v.is_empty())
        .map(|(f, v)| format!("{f}={}", short(v)))
        .collect();
    format!("stream {} {}", p.stream, set.join(" "))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The capture a TSV was made from.
fn capture_of(stem: &str) -> Option<PathBuf> {
    for dir in [root().join("captures"), root().join("../shared/corpus")] {
        for ext in ["pcap", "pcapng", "cap"] {
            let p = dir.join(format!("{stem}.{ext}"));
            if p.exists() {
                return Some(p);
            }
        }
    }
    None
}

/// tshark's readings, `tests/expected-app/*.tsv`, in order of name.
fn expected_tsvs() -> Vec<PathBuf> {
    let mut tsvs: Vec<PathBuf> = std::fs::read_dir(root().join("tests/expected-app"))
        .expect("tests/expected-app")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "tsv"))
        .collect();
    tsvs.sort();
    tsvs
}

#[test]
fn http_and_websocket_agree_with_tshark() {
    let tsvs = expected_tsvs();
    let corpus = root().join("../shared/corpus").is_dir();
    let mut t = Tally::default();
    let mut skipped = Vec::new();
    for tsv in &tsvs {
        let stem = tsv.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let Some(capture) = capture_of(stem) else {
            if corpus {
                t.failures
                    .push(format!("{stem}: no capture for {}", tsv.display()));
            } else {
                skipped.push(stem.to_string());
            }
            continue;
        };
        t.files += 1;
        let want = read_tsv(tsv);
        let got = our_pdus(&app_events(&capture), &mut t);
        compare(stem, &want, &got, &mut t);
    }
    if !skipped.is_empty() {
        eprintln!(
            "SKIPPED {} files: ../shared/corpus not found (CI has it)",
            skipped.len()
        );
    }
    let unused: Vec<&str> = EXCEPTIONS
        .iter()
        .enumerate()
        .filter(|(i, e)| !t.used.contains(i) && (corpus || capture_of(e.file).is_some()))
        .map(|(_, e)| e.file)
        .collect();
    eprintln!(
        "{} files: {} HTTP messages and {} WebSocket frames compared with tshark, {} agree in every field; \
         {} differences excused by the exception table; {} completed by a later packet than the \
         one with their last byte; not compared: {} messages of ours cut short that tshark never \
         completes, {} non-HTTP bytes we flag",
        t.files,
        t.http,
        t.ws,
        t.agree,
        t.excused,
        t.late,
        t.cut,
        t.not_http
    );
    assert!(
        t.failures.is_empty(),
        "{} differences with tshark:\n{}",
        t.failures.len(),
        t.failures.join("\n")
    );
    assert!(
        unused.is_empty(),
        "exceptions that no longer apply: {unused:?}"
    );
    for i in &t.used {
        let e = &EXCEPTIONS[*i];
        eprintln!("excused: {} {:?}: {}", e.file, e.frame, e.why);
    }
}

/// The overview `chattcp conns` shows under each connection (requests,
/// responses by status, the first request) against the same tshark
/// reading: every HTTP PDU tshark shows is counted in its stream.
/// Messages of ours cut short that tshark never completes (see above) may
/// be counted on our side alone, up to the overview's own count of them.
#[test]
fn conns_overviews_count_what_tshark_shows() {
    #[derive(Default)]
    struct Overviews(BTreeMap<u64, chattcp::dissect::AppOverview>);
    impl EventSink for Overviews {
        fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
            if let Event::Overview(o) = event {
                assert!(
                    self.0.insert(o.conn, (*o).clone()).is_none(),
                    "one per connection"
                );
            }
            Ok(())
        }
    }
    #[derive(Default, Debug, PartialEq)]
    struct Counts {
        requests: u64,
        statuses: BTreeMap<u16, u64>,
        first_request: Option<String>,
    }
    let mut failures = Vec::new();
    let (mut files, mut streams, mut exact) = (0, 0, 0);
    for tsv in &expected_tsvs() {
        let stem = tsv.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let Some(capture) = capture_of(stem) else {
            continue;
        };
        files += 1;
        let mut want: BTreeMap<u64, Counts> = BTreeMap::new();
        for (_, pdus) in read_tsv(tsv) {
            for p in pdus.iter().filter(|p| p.kind == "http") {
                let c = want.entry(p.stream).or_default();
                let (method, uri, code) = (&p.fields[0], &p.fields[1], &p.fields[2]);
                if !method.is_empty() {
                    c.requests += 1;
                    c.first_request
                        .get_or_insert_with(|| format!("{method} {uri}"));
                }
                if let Ok(code) = code.parse::<u16>() {
                    *c.statuses.entry(code).or_default() += 1;
                }
            }
        }
        // As `chattcp conns` runs the dissectors: bodies decoded, not kept.
        let mut limits = Limits::default();
        limits.decode.body_kept = 0;
        limits.decode.announce_heads = false;
        let file = std::fs::File::open(&capture).expect("open capture");
        let mut dissector =
            Dissector::with_limits(Overviews::default(), limits.decode).with_overviews();
        let _ = pipeline::run(std::io::BufReader::new(file), limits, &mut dissector);
        let got = dissector.into_inner().0;
        // Whole PDUs tshark misses, by the exception table.
        let missed_by_tshark = EXCEPTIONS
            .iter()
            .filter(|e| e.file == stem && e.field.is_none())
            .count() as u64;
        for (stream, w) in &want {
            streams += 1;
            let Some(o) = got.get(stream) else {
                failures.push(format!(
                    "{stem}: stream {stream}: no overview; tshark: {w:?}"
                ));
                continue;
            };
            let g = Counts {
                requests: o.requests,
                statuses: o.statuses().iter().copied().collect(),
                first_request: o.first_request().map(str::to_string),
            };
            // A long request line is shown cut, marked with `…`.
            let cut_agrees = match (&g.first_request, &w.first_request) {
                (Some(ours), Some(theirs)) => ours
                    .strip_suffix('…')
                    .is_some_and(|head| theirs.starts_with(head) && theirs.len() > head.len()),
                _ => false,
            };
            let w = &Counts {
                first_request: if cut_agrees {
                    g.first_request.clone()
                } else {
                    w.first_request.clone()
                },
                statuses: w.statuses.clone(),
                ..*w
            };
            if g == *w {
                exact += 1;
                continue;
            }
            // What only we count must be messages cut short (or a PDU the
            // exception table says tshark misses).
            let ours_only = g.requests.saturating_sub(w.requests)
                + g.statuses.values().sum::<u64>()
                - w.statuses
                    .values()
                    .sum::<u64>()
                    .min(g.statuses.values().sum());
            let tshark_counted = w.requests <= g.requests
                && w.statuses
                    .iter()
                    .all(|(s, n)| g.statuses.get(s).is_some_and(|m| m >= n));
            let first_agrees = w.first_request == g.first_request || missed_by_tshark > 0;
            if !(tshark_counted && first_agrees && ours_only <= o.cut_short + missed_by_tshark) {
                failures.push(format!(
                    "{stem}: stream {stream}: tshark {w:?}, ours {g:?} ({} cut short)",
                    o.cut_short
                ));
            }
        }
        // A connection with HTTP that tshark shows none of.
        for (conn, o) in &got {
            if !want.contains_key(conn) && o.requests + o.responses > o.cut_short + missed_by_tshark
            {
                failures.push(format!("{stem}: conn {conn}: ours {o:?}, none in tshark"));
            }
        }
    }
    eprintln!(
        "{files} files, {streams} streams with HTTP: {exact} overviews equal to tshark's counts"
    );
    assert!(files > 0, "no capture for tests/expected-app");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
