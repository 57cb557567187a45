//! A script: its source, metadata, compiled form and the handlers it defines.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use rhai::{Engine, AST};

/// The events a script can handle, one handler each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    /// `init()`: once per capture, before any event; sets up `this`.
    Init,
    /// `on_packet(p)`: every TCP packet.
    Packet,
    /// `on_open(c)`: a connection's first packet.
    Open,
    /// `on_handshake(h)`: a three-way handshake completed.
    Handshake,
    /// `on_data(d)`: reassembled bytes of one direction, in order.
    Data,
    /// `on_close(c)`: a connection's summary.
    Close,
    /// `on_http_request(r)`: an HTTP request, once it ended.
    HttpRequest,
    /// `on_http_response(r)`: an HTTP response, once it ended.
    HttpResponse,
    /// `on_http_unanswered(r)`: a request no response answered, once the
    /// connection ended.
    HttpUnanswered,
    /// `on_sse_event(e)`: a server-sent event, once it could be read.
    SseEvent,
    /// `on_ws_message(m)`: a WebSocket message (data frames put together, or a control frame).
    WsMessage,
    /// `on_ws_frame(f)`: a WebSocket frame.
    WsFrame,
    /// `on_end()`: the end of the capture.
    End,
}

impl Handler {
    /// Every handler.
    pub const ALL: [Handler; 13] = [
        Handler::Init,
        Handler::Packet,
        Handler::Open,
        Handler::Handshake,
        Handler::Data,
        Handler::Close,
        Handler::HttpRequest,
        Handler::HttpResponse,
        Handler::HttpUnanswered,
        Handler::SseEvent,
        Handler::WsMessage,
        Handler::WsFrame,
        Handler::End,
    ];

    /// The function name a script defines.
    pub fn name(self) -> &'static str {
        match self {
            Handler::Init => "init",
            Handler::Packet => "on_packet",
            Handler::Open => "on_open",
            Handler::Handshake => "on_handshake",
            Handler::Data => "on_data",
            Handler::Close => "on_close",
            Handler::HttpRequest => "on_http_request",
            Handler::HttpResponse => "on_http_response",
            Handler::HttpUnanswered => "on_http_unanswered",
            Handler::SseEvent => "on_sse_event",
            Handler::WsMessage => "on_ws_message",
            Handler::WsFrame => "on_ws_frame",
            Handler::End => "on_end",
        }
    }

    /// How many parameters the handler takes.
    pub fn arity(self) -> usize {
        match self {
            Handler::Init | Handler::End => 0,
            _ => 1,
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// Whether a script is a lesson (commentary for learners) or a diagnosis
/// (findings for troubleshooters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Explains a capture packet by packet.
    Lesson,
    /// Reports what went wrong.
    Diagnosis,
}

impl Kind {
    /// `lesson` or `diagnosis`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Lesson => "lesson",
            Kind::Diagnosis => "diagnosis",
        }
    }
}

/// What a script's `//!` header says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// `//! title:`
    pub title: String,
    /// `//! kind:` (diagnosis when absent).
    pub kind: Kind,
    /// `//! summary:`
    pub summary: String,
    /// `//! captures:` the example captures a lesson was written for
    /// (comma-separated names, without `.pcap`).
    pub captures: Vec<String>,
}

impl Metadata {
    /// Reads the `//! key: value` lines at the top of a script.
    pub fn parse(source: &str) -> Result<Metadata, String> {
        let mut meta = Metadata {
            title: String::new(),
            kind: Kind::Diagnosis,
            summary: String::new(),
            captures: Vec::new(),
        };
        for line in source.lines() {
            let Some(rest) = line.trim_start().strip_prefix("//!") else {
                if line.trim().is_empty() {
                    continue;
                }
                break;
            };
            let Some((key, value)) = rest.split_once(':') else {
                continue;
            };
            let value = value.trim().to_string();
            match key.trim() {
                "title" => meta.title = value,
                "summary" => meta.summary = value,
                "captures" => {
                    meta.captures = value
                        .split(',')
                        .map(|c| c.trim().trim_end_matches(".pcap").to_string())
                        .filter(|c| !c.is_empty())
                        .collect()
                }
                "kind" => {
                    meta.kind = match value.as_str() {
                        "lesson" => Kind::Lesson,
                        "diagnosis" => Kind::Diagnosis,
                        other => {
                            return Err(format!(
                                "`//! kind: {other}`: the kind is `lesson` or `diagnosis`"
                            ))
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(meta)
    }
}

/// A script that could not be compiled, with where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// The script's file (or built-in name).
    pub file: String,
    /// 1-based line, 0 when not tied to one.
    pub line: usize,
    /// 1-based column, 0 when not tied to one.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// The source line, for the caret display.
    pub source_line: String,
}

impl fmt::Display for CompileError {
    /// `file:line:column: message`, then the line and a caret under the column.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.file, self.message);
        }
        writeln!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        let gutter = self.line.to_string();
        writeln!(f, "{gutter} | {}", self.source_line)?;
        write!(
            f,
            "{} | {}^",
            " ".repeat(gutter.len()),
            " ".repeat(self.column.saturating_sub(1))
        )
    }
}

impl std::error::Error for CompileError {}

/// A compiled script.
#[derive(Clone, Debug)]
pub struct Script {
    /// Its name: the file name without `.rhai`.
    pub name: String,
    /// Where it came from: a path, or `built-in`.
    pub origin: String,
    /// Its header.
    pub meta: Metadata,
    /// The code each thread compiles for itself ([`Script::compile_code`]):
    /// the source, or its rewrite (state_writes.rs). rhai is built without
    /// its `sync` feature, for speed (its reference counts and operation
    /// count are then not atomic), so a compiled AST cannot cross threads.
    pub code: Arc<str>,
    /// The source, for error messages.
    pub source: Arc<str>,
    handlers: u16,
    /// Whether it reads packet payloads (else they are not copied for it).
    pub reads_payload: bool,
    /// Whether it reads HTTP bodies (`r.body`, `r.body_bytes`,
    /// `r.body_truncated`; else they are decoded but not kept for it).
    pub reads_body: bool,
}

/// Whether `source` reads a body field: `.body` as a whole name, or
/// `.body_bytes`, `.body_truncated` (not `.body_len` and the like, which
/// are counted whether or not the body is kept).
fn reads_body(source: &str) -> bool {
    source.match_indices(".body").any(|(at, m)| {
        let rest = &source[at + m.len()..];
        !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_')
            || rest.starts_with("_bytes")
            || rest.starts_with("_truncated")
    })
}

impl Script {
    /// Compiles `source` with `engine` (which holds the sandbox settings).
    pub fn compile(
        engine: &Engine,
        name: &str,
        origin: &str,
        source: &str,
    ) -> Result<Script, CompileError> {
        Self::compile_with_ast(engine, name, origin, source).map(|(script, _)| script)
    }

    /// [`Script::compile`], and the AST it compiled, for this thread to
    /// run it without compiling it again.
    pub fn compile_with_ast(
        engine: &Engine,
        name: &str,
        origin: &str,
        source: &str,
    ) -> Result<(Script, AST), CompileError> {
        let file = if origin == "built-in" {
            format!("{name}.rhai (built-in)")
        } else {
            origin.to_string()
        };
        let meta = Metadata::parse(source).map_err(|message| CompileError {
            file: file.clone(),
            line: 0,
            column: 0,
            message,
            source_line: String::new(),
        })?;
        let mut ast = engine.compile(source).map_err(|e| {
            let line = e.1.line().unwrap_or(0);
            let column = e.1.position().unwrap_or(0);
            CompileError {
                file: file.clone(),
                line,
                column,
                message: e.0.to_string(),
                source_line: source
                    .lines()
                    .nth(line.saturating_sub(1))
                    .unwrap_or("")
                    .to_string(),
            }
        })?;
        // Compiled as written first, so that errors point where the author
        // wrote; then, if it writes to `this` with a dot, as rewritten
        // (state_writes.rs says why), which keeps the lines as they are.
        let shared_source: Arc<str> = Arc::from(source);
        let mut code = shared_source.clone();
        if let Cow::Owned(rewritten) = super::state_writes::index_state_writes(source) {
            if let Ok(indexed) = engine.compile(&rewritten) {
                ast = indexed;
                code = Arc::from(rewritten);
            }
        }
        ast.set_source(name);
        let mut handlers = 0;
        for f in ast.iter_functions() {
            if let Some(h) = Handler::ALL.iter().find(|h| h.name() == f.name) {
                if f.params.len() != h.arity() {
                    let line = source
                        .lines()
                        .position(|l| l.contains(&format!("fn {}", f.name)))
                        .map_or(0, |i| i + 1);
                    return Err(CompileError {
                        file,
                        line,
                        column: 1,
                        message: format!(
                            "`{}` takes {} parameter{}, not {}",
                            f.name,
                            h.arity(),
                            if h.arity() == 1 { "" } else { "s" },
                            f.params.len()
                        ),
                        source_line: source
                            .lines()
                            .nth(line.saturating_sub(1))
                            .unwrap_or("")
                            .to_string(),
                    });
                }
                handlers |= h.bit();
            }
        }
        let script = Script {
            name: name.to_string(),
            origin: origin.to_string(),
            meta,
            code,
            source: shared_source,
            handlers,
            reads_payload: source.contains("payload"),
            reads_body: reads_body(source),
        };
        Ok((script, ast))
    }

    /// Compiles the script's code with `engine`, for the thread that runs
    /// it; it compiled once already, as [`Script::compile`] checked.
    pub fn compile_code(&self, engine: &Engine) -> Result<AST, rhai::ParseError> {
        let mut ast = engine.compile(&*self.code)?;
        ast.set_source(self.name.as_str());
        Ok(ast)
    }

    /// Whether the script defines `handler`.
    pub fn handles(&self, handler: Handler) -> bool {
        self.handlers & handler.bit() != 0
    }

    /// The source line `line` (1-based), for messages.
    pub fn line(&self, line: usize) -> &str {
        self.source
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::reads_body;

    #[test]
    fn reading_a_body_is_told_from_reading_its_length() {
        assert!(reads_body("let b = r.body;"));
        assert!(reads_body("print(r.body)"));
        assert!(reads_body("r.body_bytes.len()"));
        assert!(reads_body("if r.body_truncated {}"));
        assert!(!reads_body("r.body_len + r.body_wire_len"));
        assert!(!reads_body("r.body_first_frame; r.body_first_time"));
        assert!(!reads_body("let body = 1;"));
    }
}
