//! The HTML report (`chattcp report`, `chattcp lesson NAME --html`): what it
//! lists and draws, how it folds and limits, that bytes from a capture never
//! become markup, and, in a real headless Chromium, that the page renders
//! (bubbles, ladder diagram, time-sequence graph) without a console error.
//!
//! The browser test needs Debian's `chromium` (or `CHATTCP_CHROMIUM` naming a
//! Chromium binary). Without it the test prints SKIPPED and passes, unless
//! `CHATTCP_REQUIRE_BROWSER=1` (as CI sets it): then it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Running chattcp.

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chattcp")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("html");
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// Runs chattcp with `args`, then reads the page it wrote to `out`.
fn written(args: &[&str], out: &Path) -> String {
    let run = Command::new(bin())
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run chattcp");
    assert!(
        run.status.success(),
        "chattcp {args:?} failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read_to_string(out).expect("read the report")
}

fn report(files: &[&Path], extra: &[&str], name: &str) -> String {
    let out = scratch(name);
    let mut args: Vec<&str> = vec!["report"];
    args.extend(files.iter().map(|f| f.to_str().expect("utf-8 path")));
    args.extend_from_slice(extra);
    written(&args, &out)
}

fn lesson(name: &str) -> (String, PathBuf) {
    let out = scratch(&format!("lesson-{name}.html"));
    let html = written(&["lesson", name, "--html"], &out);
    (html, out)
}

/// The text between `start` (included) and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let a = s.find(start)?;
    let b = s[a..].find(end)?;
    Some(&s[a..a + b])
}

/// The connection list's data (see docs/report.md).
fn list(html: &str) -> Value {
    let open = r#"<script type="application/json" id="list-data">"#;
    let body = between(html, open, "</script>").expect("list data");
    serde_json::from_str(&body[open.len()..]).expect("list data is JSON")
}

/// Tag labels of each row: (capture index, connection) → labels.
fn row_tags(list: &Value) -> BTreeMap<(u64, u64), BTreeSet<String>> {
    let tags: Vec<String> = list["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t[0].as_str().expect("label").to_string())
        .collect();
    let mut out = BTreeMap::new();
    for r in list["rows"].as_array().expect("rows") {
        let bits = r[8].as_u64().expect("bits");
        let set = tags
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, t)| t.clone())
            .collect();
        out.insert(
            (r[0].as_u64().expect("k"), r[1].as_u64().expect("conn")),
            set,
        );
    }
    out
}

/// The tags printed in a drawn connection's header.
fn header_tags(html: &str, id: &str) -> BTreeSet<String> {
    let section = between(
        html,
        &format!("<section class=\"conn\" id=\"{id}\""),
        "</header>",
    )
    .unwrap_or_else(|| panic!("no section {id}"));
    let tags = between(section, "<div class=\"tags\">", "</div>").expect("tags");
    tags.split("</span>")
        .filter_map(|t| t.rsplit('>').next())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------
// Building captures: IPv4 in a raw-IP pcap (link type 101).

struct Pcap {
    bytes: Vec<u8>,
    usec: u32,
}

impl Pcap {
    fn new() -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        bytes.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&65535u32.to_le_bytes());
        bytes.extend_from_slice(&101u32.to_le_bytes());
        Pcap { bytes, usec: 0 }
    }

    /// One TCP segment between 10.0.0.1:`port` (client) and 10.0.0.2:80.
    fn segment(
        &mut self,
        port: u16,
        from_client: bool,
        flags: u8,
        seq: u32,
        ack: u32,
        data: &[u8],
    ) {
        let (src, dst, sport, dport) = if from_client {
            ([10, 0, 0, 1], [10, 0, 0, 2], port, 80u16)
        } else {
            ([10, 0, 0, 2], [10, 0, 0, 1], 80, port)
        };
        let total = 40 + data.len();
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ack.to_be_bytes());
        p.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(data);
        self.usec += 250;
        self.bytes.extend_from_slice(&1u32.to_le_bytes());
        self.bytes.extend_from_slice(&self.usec.to_le_bytes());
        self.bytes
            .extend_from_slice(&(p.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(p.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&p);
    }

    /// A whole connection: handshake, the client's data and the server's
    /// answer (each one segment, acknowledged), three-packet close.
    fn connection(&mut self, port: u16, request: &[u8], answer: &[u8]) {
        const SYN: u8 = 0x02;
        const ACK: u8 = 0x10;
        const PSH_ACK: u8 = 0x18;
        const FIN_ACK: u8 = 0x11;
        let (c, s) = (1000u32, 5000u32);
        let (q, a) = (request.len() as u32, answer.len() as u32);
        self.segment(port, true, SYN, c, 0, b"");
        self.segment(port, false, SYN | ACK, s, c + 1, b"");
        self.segment(port, true, ACK, c + 1, s + 1, b"");
        self.segment(port, true, PSH_ACK, c + 1, s + 1, request);
        self.segment(port, false, ACK, s + 1, c + 1 + q, b"");
        self.segment(port, false, PSH_ACK, s + 1, c + 1 + q, answer);
        self.segment(port, true, ACK, c + 1 + q, s + 1 + a, b"");
        self.segment(port, true, FIN_ACK, c + 1 + q, s + 1 + a, b"");
        self.segment(port, false, FIN_ACK, s + 1 + a, c + 2 + q, b"");
        self.segment(port, true, ACK, c + 2 + q, s + 2 + a, b"");
    }

    fn write(&self, name: &str) -> PathBuf {
        let path = scratch(name);
        std::fs::write(&path, &self.bytes).expect("write capture");
        path
    }
}

/// Packets per [`Pcap::connection`].
const PACKETS_PER_CONNECTION: usize = 10;

// ---------------------------------------------------------------------------
// What the page holds.

#[test]
fn every_connection_is_listed_once_in_order() {
    let dir = root().join("captures");
    let html = report(&[&dir], &[], "all-captures.html");
    let list = list(&html);
    let captures = list["captures"].as_array().expect("captures");
    assert_eq!(captures.len(), 17, "every example capture is in the report");
    let rows = list["rows"].as_array().expect("rows");
    // Each example capture holds one connection; the test data file two.
    assert_eq!(rows.len(), 17);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0].as_u64(), Some(i as u64), "capture order");
        assert_eq!(r[1].as_u64(), Some(0));
        assert_eq!(r[9].as_u64(), Some(1), "small captures are drawn in full");
    }
    let two = root().join("tests/data/netcat-two-connections.pcapng");
    let html = report(&[&two], &[], "two.html");
    let list = self::list(&html);
    let conns: Vec<u64> = list["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r[1].as_u64().expect("conn"))
        .collect();
    assert_eq!(conns, [0, 1]);
    assert_eq!(html.matches("<section class=\"conn\" id=").count(), 2);
}

#[test]
fn tags_are_right_for_the_known_captures() {
    // (capture, tags it must have, tags it must not have)
    let expect: &[(&str, &[&str], &[&str])] = &[
        (
            "handshake-three-packet-close",
            &["3-packet close"],
            &["4-packet close", "reset", "HTTP"],
        ),
        (
            "four-packet-close",
            &["4-packet close", "keep-alive"],
            &["3-packet close"],
        ),
        (
            "websocket",
            &["WebSocket", "HTTP", "3-packet close"],
            &["event stream"],
        ),
        ("websocket-deflate", &["WebSocket", "HTTP"], &[]),
        ("sse-plain", &["event stream", "HTTP"], &["WebSocket"]),
        (
            "http-keep-alive",
            &["HTTP"],
            &["WebSocket", "event stream", "retransmissions"],
        ),
        (
            "retransmissions",
            &["retransmissions", "duplicate ACKs"],
            &["reset"],
        ),
        (
            "connection-refused",
            &["refused", "reset"],
            &["3-packet close"],
        ),
        ("syn-unanswered", &["SYN unanswered"], &["reset"]),
        (
            "lost-handshake-ack-reset",
            &["incomplete handshake", "reset"],
            &[],
        ),
        ("keep-alive", &["keep-alive"], &["reset"]),
        ("zero-window", &["zero window"], &["reset"]),
    ];
    let files: Vec<PathBuf> = expect
        .iter()
        .map(|(name, _, _)| root().join(format!("captures/{name}.pcap")))
        .collect();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let html = report(&refs, &[], "tags.html");
    let rows = row_tags(&list(&html));
    for (k, (name, have, not)) in expect.iter().enumerate() {
        let listed = rows.get(&(k as u64, 0)).expect("row");
        let shown = header_tags(&html, &format!("k{k}-c0"));
        assert_eq!(listed, &shown, "{name}: the list and the header agree");
        for t in *have {
            assert!(listed.contains(*t), "{name} lacks {t:?}: {listed:?}");
        }
        for t in *not {
            assert!(!listed.contains(*t), "{name} has {t:?}: {listed:?}");
        }
    }
}

#[test]
fn a_lesson_page_has_its_chat_ladder_graph_and_commentary() {
    let (html, _) = lesson("handshake-three-packet-close");
    // Ten packets: ten bubbles and ten arrows, client on the left.
    assert_eq!(html.matches("<div class=\"msg client").count(), 6);
    assert_eq!(html.matches("<div class=\"msg server").count(), 4);
    assert_eq!(html.matches("<g class=\"arrow").count(), 10);
    assert!(html.contains("<svg class=\"ladder\""));
    assert!(html.matches("<svg class=\"graph\"").count() >= 1);
    // The commentary is on, and there is some under the bubbles.
    assert!(html.contains("<body class=\"commentary-on\">"));
    assert!(html.matches("<div class=\"commentary\">").count() >= 10);
    // The flags carry their explanation, the states too.
    assert!(html.contains("data-g=\"f:SYN\""));
    assert!(html.contains("data-g=\"s:TIME_WAIT\""));
    // The server's state after its FIN, as the sender's state after.
    assert!(html.contains("ESTABLISHED → <b>LAST_ACK</b>"));
    // Nothing is fetched: no external script, style, image or font.
    for needle in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
        "<link rel=\"stylesheet\"",
    ] {
        assert!(!html.contains(needle), "{needle}");
    }
    assert!(html.contains("Content-Security-Policy"));
}

/// A capture whose URI, headers, status line and payloads are markup and
/// script: every one of them must reach the page as text.
fn hostile_capture() -> PathBuf {
    let uri = "/search?q=<script>window.pwned=1</script>";
    let request = format!(
        "GET {uri} HTTP/1.1\r\nHost: x\r\nX-Evil: \"><img src=x onerror=window.pwned=2>\r\nX-Quote: ' onmouseover='window.pwned=3\r\n\r\n"
    );
    let body = "</script><script>window.pwned=4</script><!--";
    let answer = format!(
        "HTTP/1.1 200 <b>OK</b>\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut pcap = Pcap::new();
    pcap.connection(40000, request.as_bytes(), answer.as_bytes());
    // A second connection whose payload is not HTTP at all.
    pcap.connection(
        40001,
        b"<svg onload=window.pwned=5>",
        b"</textarea></style></title>",
    );
    pcap.write("hostile.pcap")
}

#[test]
fn capture_bytes_cannot_inject_markup() {
    let path = hostile_capture();
    let html = report(&[&path], &[], "hostile.html");

    // Our own three script elements (two of JSON data), and no other.
    assert_eq!(
        html.matches("<script").count(),
        3,
        "a script element was injected"
    );
    for bad in [
        "<img",
        "<svg onload",
        "</textarea>",
        "<b>OK</b>",
        "<!--",
        "' onmouseover",
    ] {
        assert!(!html.contains(bad), "{bad} reached the page unescaped");
    }
    // What was sent is shown, as text.
    // (askama writes < and > as &#60; and &#62;)
    assert!(
        html.contains("GET /search?q=&#60;script&#62;window.pwned=1&#60;/script&#62; HTTP/1.1"),
        "the URI is shown"
    );
    assert!(
        html.contains("&#60;img src=x onerror=window.pwned=2&#62;"),
        "the header is shown"
    );
    assert!(
        html.contains("&#60;svg onload=window.pwned=5&#62;"),
        "the payload is shown"
    );
    // The JSON data blocks cannot close their element.
    let data = between(&html, "<script type=\"application/json\"", "</script>").expect("data");
    assert!(!data[1..].contains('<'));
}

#[test]
fn payloads_fold_after_one_kibibyte() {
    let mut data = vec![b'A'; 1024];
    data.extend(std::iter::repeat_n(b'B', 1976));
    let mut pcap = Pcap::new();
    pcap.connection(40000, &data, b"ok");
    let path = pcap.write("fold.pcap");
    let html = report(&[&path], &[], "fold.html");
    let bubble = between(&html, "id=\"k0-c0-f4\"", "<div class=\"msg").expect("frame 4");
    let shown = between(bubble, "<pre>", "</pre>").expect("shown part");
    assert_eq!(shown.matches('A').count(), 1024, "the first KiB is shown");
    assert!(
        !shown.contains('B'),
        "nothing past the first KiB is shown unfolded"
    );
    let fold = between(bubble, "<details class=\"fold\">", "</details>").expect("a fold");
    assert!(
        fold.contains("<summary>1,976 bytes more</summary>"),
        "{fold}"
    );
    assert_eq!(fold.matches('B').count(), 1976);
    // A short payload is not folded.
    let answer = between(&html, "id=\"k0-c0-f6\"", "<div class=\"msg").expect("frame 6");
    assert!(answer.contains("<pre>ok</pre>"));
    assert!(!answer.contains("class=\"fold\""));
}

#[test]
fn large_captures_are_listed_in_full_but_drawn_within_limits() {
    let mut pcap = Pcap::new();
    for i in 0..300u16 {
        pcap.connection(20000 + i, b"hello", b"world");
    }
    let path = pcap.write("many.pcap");
    let html = report(&[&path], &["--full", "10"], "many.html");
    let list = list(&html);
    let rows = list["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 300, "every connection is listed");
    let full: Vec<u64> = rows
        .iter()
        .filter(|r| r[9].as_u64() == Some(1))
        .map(|r| r[1].as_u64().expect("conn"))
        .collect();
    assert_eq!(
        full,
        (0..10).collect::<Vec<u64>>(),
        "the first ten are drawn"
    );
    assert_eq!(html.matches("<section class=\"conn\" id=").count(), 10);
    assert_eq!(
        html.matches("<div class=\"msg ").count(),
        10 * PACKETS_PER_CONNECTION
    );
    assert!(html.contains("the other 290 are listed"));
    // A summarised connection still has its summary and tags in the list.
    assert_eq!(rows[200][4].as_u64(), Some(6), "packets from the client");
    assert_eq!(rows[200][12].as_u64(), Some(5), "bytes from the server");
    let small = html.len();
    // The lessons' commentary is there, switched off; without the lessons,
    // there is none and the switch is off.
    assert!(html.contains("<body class=\"\">"));
    assert!(html.contains("<div class=\"commentary\">"));
    let quiet = report(&[&path], &["--full", "10", "--no-commentary"], "quiet.html");
    assert!(!quiet.contains("<div class=\"commentary\">"));
    assert!(quiet.contains("id=\"commentary-toggle\" disabled"));

    // The limits of drawing: packets per capture, and one connection asked for.
    let html = report(
        &[&path],
        &["--full", "300", "--total-packets", "25"],
        "budget.html",
    );
    assert_eq!(html.matches("<div class=\"msg ").count(), 25);
    assert!(html.contains("more packets are not drawn"));
    let html = report(&[&path], &["--conn", "123"], "one.html");
    assert_eq!(html.matches("<section class=\"conn\" id=").count(), 1);
    assert!(html.contains("<section class=\"conn\" id=\"k0-c123\""));

    // The list costs little per connection: 300 of them, 10 drawn, stay
    // well under what drawing them all costs.
    let all = report(&[&path], &["--full", "300"], "all.html");
    assert!(small * 5 < all.len(), "{small} vs {}", all.len());
}

#[test]
fn a_missing_connection_or_file_is_an_error() {
    let out = scratch("missing.html");
    let run = Command::new(bin())
        .args(["report", "captures/websocket.pcap", "--conn", "7", "-o"])
        .arg(&out)
        .current_dir(root())
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("no connection 7"));
    let run = Command::new(bin())
        .args(["report", "no-such-file.pcap", "-o"])
        .arg(&out)
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(2));
    let html = std::fs::read_to_string(&out).expect("the report is still written");
    assert!(html.contains("no-such-file.pcap: cannot open"));
}

// ---------------------------------------------------------------------------
// A real browser, through the Chrome DevTools Protocol.

fn file_url(file: &Path) -> String {
    format!(
        "file://{}",
        file.canonicalize().expect("absolute path").display()
    )
}

fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHATTCP_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// The browser, ended (by its own process id) and its profile removed
/// however the test ends.
struct Browser {
    child: Child,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

/// A DevTools connection to one page: commands, and the problems the page
/// reported on the way.
struct Page {
    socket: Socket,
    next: u64,
    errors: Vec<String>,
    events: Vec<Value>,
}

impl Page {
    fn read(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            assert!(
                Instant::now() < deadline,
                "the browser did not answer in time"
            );
            match self.socket.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("CDP JSON");
                    self.note(&v);
                    return Some(v);
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                Err(e) => panic!("DevTools connection: {e}"),
            }
        }
    }

    /// Keeps what counts as a problem: an uncaught exception, a console
    /// error, a browser log error (a failed load, a CSP violation).
    fn note(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => self
                .errors
                .push(format!("exception: {}", p["exceptionDetails"])),
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => {
                self.errors.push(format!("console.error: {}", p["args"]))
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                self.errors.push(format!("log: {}", p["entry"]["text"]))
            }
            Some("Page.javascriptDialogOpening") => self.errors.push(format!("dialog: {p}")),
            Some(_) => self.events.push(v.clone()),
            None => {}
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket
            .send(tungstenite::Message::Text(msg.into()))
            .expect("send to the browser");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = self.read(deadline) {
                if v["id"].as_u64() == Some(id) {
                    assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                    return v["result"].clone();
                }
            }
        }
    }

    fn wait_for(&mut self, method: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            self.events.remove(i);
            return;
        }
        loop {
            if let Some(v) = self.read(deadline) {
                if v["method"] == method {
                    return;
                }
            }
        }
    }

    fn open(&mut self, file: &Path) {
        self.navigate(&file_url(file));
    }

    fn navigate(&mut self, url: &str) {
        self.events.clear();
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for("Page.loadEventFired");
    }

    /// Evaluates `expr` (which returns JSON text) in the page.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        let text = r["result"]["value"].as_str().unwrap_or("null").to_string();
        serde_json::from_str(&text).expect("the expression returns JSON")
    }

    fn screenshot(&mut self, to: &Path, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1440, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let b64 = r["data"].as_str().expect("screenshot data");
        let png = data_encoding::BASE64
            .decode(b64.as_bytes())
            .expect("base64");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(to, png).expect("save the screenshot");
    }
}

/// The body of `GET path` from the DevTools HTTP server (which keeps the
/// connection open: the body is read by its Content-Length).
fn http_get(port: u16, path: &str) -> String {
    let Ok(mut http) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = http.set_read_timeout(Some(Duration::from_secs(10)));
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if http.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return String::from_utf8_lossy(&got[end + 4..end + 4 + length]).to_string();
            }
        }
        match http.read(&mut buf) {
            Ok(0) | Err(_) => return String::new(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn launch(chromium: &Path) -> (Browser, Page) {
    let profile = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chromium");
    let _ = std::fs::remove_dir_all(&profile);
    // Chromium puts its singleton socket in a directory of its own under
    // TMPDIR, and a killed browser leaves it behind: one in /tmp per run.
    // Under the profile, it goes when the profile goes.
    let scratch = profile.join("tmp");
    std::fs::create_dir_all(&scratch).expect("profile dir");
    let child = Command::new(chromium)
        .env("TMPDIR", &scratch)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let browser = Browser { child, profile };
    // Chromium writes the port it chose to DevToolsActivePort.
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = loop {
        let file = browser.profile.join("DevToolsActivePort");
        if let Ok(text) = std::fs::read_to_string(&file) {
            if let Some(port) = text
                .lines()
                .next()
                .and_then(|l| l.trim().parse::<u16>().ok())
            {
                break port;
            }
        }
        assert!(Instant::now() < deadline, "chromium did not start");
        std::thread::sleep(Duration::from_millis(100));
    };
    let page_id = loop {
        let list: Value =
            serde_json::from_str(&http_get(port, "/json/list")).unwrap_or(Value::Null);
        let id = list
            .as_array()
            .and_then(|l| l.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["id"].as_str())
            .map(str::to_string);
        if let Some(id) = id {
            break id;
        }
        assert!(Instant::now() < deadline, "no page in chromium");
        std::thread::sleep(Duration::from_millis(100));
    };
    let url = format!("ws://127.0.0.1:{port}/devtools/page/{page_id}");
    let (socket, _) = tungstenite::connect(url.as_str()).expect("DevTools websocket");
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
    }
    let mut page = Page {
        socket,
        next: 0,
        errors: Vec::new(),
        events: Vec::new(),
    };
    for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
        page.call(domain, json!({}));
    }
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1440, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
    );
    (browser, page)
}

/// Counts of what the visible connection drew, as the page's own DOM says.
const COUNTS: &str = r#"(() => {
  const conn = [...document.querySelectorAll('section.capture:not([hidden]) > section.conn:not([hidden])')]
    .find(c => !c.classList.contains('summary-card'));
  const seen = e => { const r = e.getBoundingClientRect(); return e.checkVisibility() && r.width > 0 && r.height > 0; };
  const q = s => conn ? [...conn.querySelectorAll(s)] : [];
  return JSON.stringify({
    conn: conn ? conn.id : null,
    bubbles: q('.msg .bubble').filter(seen).length,
    left: q('.msg.client').filter(seen).length,
    right: q('.msg.server').filter(seen).length,
    left_x: Math.max(0, ...q('.msg.client').map(e => e.getBoundingClientRect().left)),
    right_x: Math.min(1e9, ...q('.msg.server').map(e => e.getBoundingClientRect().left)),
    ladders: q('svg.ladder').filter(seen).length,
    arrows: q('svg.ladder g.arrow').filter(g => g.getBBox().height > 0).length,
    graphs: q('svg.graph').filter(seen).length,
    segments: q('svg.graph path.seg').filter(p => p.checkVisibility() && p.getBBox().height > 0).length,
    ack_lines: q('svg.graph polyline.ackl').filter(p => p.checkVisibility() && p.getBBox().width > 0).length,
    commentary: q('.commentary').filter(seen).length,
    rows: document.querySelectorAll('#list a.row').length,
    count: document.getElementById('search-count').textContent,
    cards: document.querySelectorAll('section.capture:not([hidden]) .card').length,
    chart_bars: document.querySelectorAll('section.capture:not([hidden]) svg.chart g.bar').length,
    images: document.images.length,
    pwned: typeof window.pwned,
  });
})()"#;

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn the_report_renders_in_a_real_browser() {
    let Some(chromium) = find_chromium() else {
        if std::env::var("CHATTCP_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!(
                "CHATTCP_REQUIRE_BROWSER=1 but no chromium was found (apt-get install chromium)"
            );
        }
        eprintln!(
            "SKIPPED the_report_renders_in_a_real_browser: no chromium (apt-get install chromium)"
        );
        return;
    };
    let (_browser, mut page) = launch(&chromium);
    let shots = root().join("target");
    std::fs::create_dir_all(&shots).expect("target dir for the screenshots");

    // A lesson: ten packets, commentary on.
    let (_, lesson_file) = lesson("handshake-three-packet-close");
    page.open(&lesson_file);
    let v = page.eval(COUNTS);
    eprintln!("lesson: {v}");
    assert_eq!(v["conn"], "k0-c0");
    assert_eq!(num(&v, "bubbles"), 10);
    assert_eq!((num(&v, "left"), num(&v, "right")), (6, 4));
    assert!(
        v["left_x"].as_f64() < v["right_x"].as_f64(),
        "the client's bubbles start left of the server's: {v}"
    );
    assert_eq!(num(&v, "ladders"), 1);
    assert_eq!(num(&v, "arrows"), 10);
    // Both sides sent data: the busier direction's graph is shown, the
    // other's folded under it.
    assert_eq!(num(&v, "graphs"), 1, "{v}");
    assert!(num(&v, "segments") >= 1);
    assert!(num(&v, "ack_lines") >= 1);
    assert!(num(&v, "commentary") >= 10, "commentary shown: {v}");
    assert_eq!(num(&v, "rows"), 1);
    assert_eq!(num(&v, "cards"), 7);
    assert_eq!(num(&v, "chart_bars"), 8);
    page.screenshot(&shots.join("html-report-lesson.png"), 1500);
    // The commentary toggle hides it.
    page.eval("(() => { document.getElementById('commentary-toggle').click(); return 'null'; })()");
    let v = page.eval(COUNTS);
    assert_eq!(num(&v, "commentary"), 0, "commentary hidden: {v}");
    assert_eq!(num(&v, "bubbles"), 10);

    // A tooltip explains a flag.
    let tip = page.eval(
        r#"(() => {
          const flag = document.querySelector('section.conn:not([hidden]) abbr.flag');
          flag.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
          const tip = document.getElementById('tip');
          return JSON.stringify({hidden: tip.hidden, text: tip.textContent});
        })()"#,
    );
    assert_eq!(tip["hidden"], false);
    assert!(
        tip["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("SYN (synchronise)")),
        "{tip}"
    );

    // Losses stand out: in the chat, the ladder and the graph. Opened at
    // the first retransmission, as a link to it does (the README's picture).
    let (_, retrans_file) = lesson("retransmissions");
    let url = format!("{}#k0-c0-f77", file_url(&retrans_file));
    page.navigate(&url);
    let v = page.eval(
        r#"(() => { const c = document.getElementById('k0-c0');
          const box = c.querySelector('.ladder-box');
          const arrow = c.querySelector('g.arrow.on');
          const a = arrow.getBoundingClientRect(), b = box.getBoundingClientRect();
          return JSON.stringify({
            bubbles: c.querySelectorAll('.msg.t-retrans').length,
            arrows: c.querySelectorAll('g.arrow.t-retrans').length,
            marks: c.querySelectorAll('svg.graph text.mark.retrans').length,
            resent: c.querySelectorAll('svg.graph path.seg.re').length,
            highlighted: document.querySelector('.msg.hl').id,
            arrow_in_view: a.top >= b.top && a.bottom <= b.bottom,
          }); })()"#,
    );
    eprintln!("retransmissions: {v}");
    assert_eq!(num(&v, "bubbles"), 4, "{v}");
    assert_eq!(num(&v, "arrows"), 4, "{v}");
    assert_eq!(num(&v, "marks"), 4, "{v}");
    assert_eq!(num(&v, "resent"), 1, "{v}");
    assert_eq!(v["highlighted"], "k0-c0-f77");
    assert_eq!(
        v["arrow_in_view"], true,
        "the ladder scrolled to the packet: {v}"
    );
    page.screenshot(&shots.join("html-report-retransmissions.png"), 1700);
    // The whole first screen of the lesson, as docs/report-screenshot.png shows it.
    page.open(&retrans_file);
    page.screenshot(&shots.join("html-report-readme.png"), 2200);

    // Every example capture: the list, the search, a click on a row.
    let all = scratch("browser-all.html");
    written(
        &["report", root().join("captures").to_str().expect("utf-8")],
        &all,
    );
    page.open(&all);
    let v = page.eval(COUNTS);
    eprintln!("all captures: {v}");
    assert_eq!(v["count"], "17 connections");
    assert!(num(&v, "rows") >= 10, "the rows in view are drawn: {v}");
    let v = page.eval(
        r#"(() => { const s = document.getElementById('search'); s.value = 'websocket';
             s.dispatchEvent(new Event('input'));
             return new Promise(done => setTimeout(() => done(JSON.stringify({
               rows: document.querySelectorAll('#list a.row').length,
               count: document.getElementById('search-count').textContent })), 300)); })()"#,
    );
    assert_eq!(v["rows"], 2, "{v}");
    assert_eq!(v["count"], "2 of 17 connections");
    let v = page.eval(
        r#"(() => { document.querySelectorAll('#list a.row')[1].click();
             return new Promise(done => setTimeout(() => done('null'), 300)); })()"#,
    );
    assert_eq!(v, Value::Null);
    let v = page.eval(COUNTS);
    assert_eq!(
        v["conn"], "k15-c0",
        "the second WebSocket capture is shown: {v}"
    );
    assert_eq!(num(&v, "bubbles"), 28);
    assert_eq!(num(&v, "arrows"), 28);
    page.screenshot(&shots.join("html-report-websocket.png"), 1000);

    // A large capture: connections beyond the limit are summarised on demand.
    let mut many = Pcap::new();
    for i in 0..300u16 {
        many.connection(20000 + i, b"hello", b"world");
    }
    let many_file = scratch("browser-many.html");
    written(
        &[
            "report",
            many.write("browser-many.pcap").to_str().expect("utf-8"),
            "--full",
            "10",
        ],
        &many_file,
    );
    page.open(&many_file);
    let v = page.eval(COUNTS);
    assert_eq!(v["count"], "300 connections");
    assert!(num(&v, "rows") < 60, "only the rows in view are drawn: {v}");
    let v = page.eval(
        r#"(() => { location.hash = 'k0-c200-row';
             return new Promise(done => setTimeout(() => {
               const card = document.getElementById('k0-summary');
               const active = document.querySelector('#list a.row.active');
               done(JSON.stringify({
                 shown: !card.hidden && card.getBoundingClientRect().height > 0,
                 title: card.querySelector('[data-slot=title]').textContent,
                 info: card.querySelector('[data-slot=info]').textContent,
                 active: active ? active.getAttribute('href') : null }));
             }, 300)); })()"#,
    );
    eprintln!("summary card: {v}");
    assert_eq!(v["shown"], true, "{v}");
    assert_eq!(v["title"], "Connection 200 (summary)");
    assert!(
        v["info"]
            .as_str()
            .is_some_and(|t| t.starts_with("10 packets (6 from the client, 4 from the server)")),
        "{v}"
    );
    assert_eq!(
        v["active"], "#k0-c200-row",
        "the list scrolled to the row: {v}"
    );

    // A hostile capture: shown, and nothing of it runs.
    let hostile = scratch("browser-hostile.html");
    written(
        &["report", hostile_capture().to_str().expect("utf-8")],
        &hostile,
    );
    page.open(&hostile);
    let v = page.eval(COUNTS);
    eprintln!("hostile: {v}");
    assert_eq!(
        v["pwned"], "undefined",
        "a script from the capture ran: {v}"
    );
    assert_eq!(
        num(&v, "images"),
        0,
        "an element from the capture was created: {v}"
    );
    assert_eq!(num(&v, "bubbles"), 10);

    assert!(
        page.errors.is_empty(),
        "the page reported problems: {:#?}",
        page.errors
    );
    // The problems are really listened to: one made on purpose is caught.
    page.eval("(() => { console.error('chattcp self-check'); return 'null'; })()");
    page.eval("'null'");
    assert!(
        page.errors.iter().any(|e| e.contains("chattcp self-check")),
        "console errors are not collected: {:?}",
        page.errors
    );
}
