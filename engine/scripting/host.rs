//! The script host: a sandboxed rhai engine that turns events into handler
//! calls and collects what the scripts report.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rhai::module_resolvers::DummyModuleResolver;
use rhai::{
    CallFnOptions, Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Position, Scope, AST,
    FLOAT, INT,
};

use super::filter::{self, Filter};
use super::output::{
    Finding, Metric, MetricValue, Note, Printed, RuntimeError, ScriptOutput, Severity,
};
use super::script::{Handler, Script};
use super::values::{
    self, Closed, Data, HandshakeDone, HttpValue, Opened, Packet, SseValue, WsFrameValue,
    WsMessageValue,
};
use crate::capture::Timestamp;
use crate::dissect::AppEvent;
use crate::events::{Event, EventSink};
use crate::tracking::ConnectionSummary;

/// Limits every handler call runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Operations per handler call.
    pub max_operations: u64,
    /// Wall-clock time per handler call, in milliseconds.
    pub max_millis: u64,
    /// Nested function calls.
    pub max_call_depth: usize,
    /// Bytes in one string, and in all the strings `this` keeps.
    pub max_string: usize,
    /// Items in one array, and in all the arrays `this` keeps.
    pub max_array: usize,
    /// Entries in one object map, and in all the maps `this` keeps (itself
    /// included).
    pub max_map: usize,
    /// Findings kept per finding id and capture; the rest are counted.
    pub max_findings: usize,
    /// Apply the filters scripts declare (`ON_CLOSE_WHEN`, ...). Off, every
    /// event reaches every handler: a filter must only drop what its
    /// handler ignores, and `--no-filters` shows that it does.
    pub use_filters: bool,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        ScriptLimits {
            max_operations: 10_000_000,
            max_millis: 1000,
            max_call_depth: 64,
            max_string: 1 << 20,
            max_array: 1_000_000,
            max_map: 1_000_000,
            max_findings: 1000,
            use_filters: true,
        }
    }
}

/// Formats a duration given in seconds for people: `850 µs`, `12.3 ms`, `1.009 s`.
pub fn fmt_duration(secs: FLOAT) -> String {
    let a = secs.abs();
    if a == 0.0 {
        "0 s".into()
    } else if a < 1e-3 {
        format!("{:.0} µs", secs * 1e6)
    } else if a < 1.0 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{secs:.3} s")
    }
}

/// Formats a byte count for people: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn fmt_bytes(n: INT) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

/// An engine with the sandbox's settings: no modules, no `eval`, limits on
/// operations, call depth and sizes, and chattcp's value types and helpers.
/// Output functions are added by the host; this engine compiles scripts.
pub fn sandbox_engine(limits: &ScriptLimits) -> Engine {
    let mut e = Engine::new();
    // No file access: `import` finds nothing, `eval` does not exist.
    e.set_module_resolver(DummyModuleResolver::new());
    e.disable_symbol("eval");
    e.set_max_operations(limits.max_operations);
    e.set_max_call_levels(limits.max_call_depth);
    e.set_max_expr_depths(128, 64);
    e.set_max_string_size(limits.max_string);
    e.set_max_array_size(limits.max_array);
    e.set_max_map_size(limits.max_map);
    e.set_max_variables(10_000);
    values::register(&mut e);
    e.register_fn("fmt_duration", fmt_duration);
    e.register_fn("fmt_duration", |secs: INT| fmt_duration(secs as FLOAT));
    e.register_fn("fmt_bytes", fmt_bytes);
    e.register_fn("join", |items: rhai::Array, sep: &str| {
        items
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(sep)
    });
    e.register_fn("fmt_flags", |p: &mut Packet| {
        crate::render::text::FlagLetters(p.record.flags).to_string()
    });
    e
}

/// Scripts compiled on this thread kept at most (see [`compiled`]).
const COMPILED_KEPT: usize = 64;

thread_local! {
    /// Scripts compiled on this thread: their code (the same allocation as
    /// the script's, kept alive here so that no other code can take its
    /// address), the limits the engine compiled under, and the AST.
    static COMPILED: std::cell::RefCell<Vec<(Arc<str>, ScriptLimits, AST)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `script` compiled by `engine` (set up with `limits`), for this thread:
/// an AST cannot cross threads (see [`Script::code`]), and a thread that
/// runs capture after capture compiles each script once, not once per
/// capture (26 built-in scripts take about 80 M instructions to compile).
fn compiled(
    engine: &Engine,
    script: &Script,
    limits: &ScriptLimits,
) -> Result<AST, rhai::ParseError> {
    let known = COMPILED.with(|kept| {
        kept.borrow()
            .iter()
            .find(|(code, under, _)| Arc::ptr_eq(code, &script.code) && under == limits)
            .map(|(_, _, ast)| ast.clone())
    });
    if let Some(ast) = known {
        return Ok(ast);
    }
    let ast = script.compile_code(engine)?;
    keep_compiled(script, limits, ast.clone());
    Ok(ast)
}

/// Keeps `ast`, `script` compiled on this thread by an engine set up with
/// `limits`, for the hosts this thread makes (the loading thread compiled
/// every script once to check it: it need not compile them again).
pub fn keep_compiled(script: &Script, limits: &ScriptLimits, ast: AST) {
    COMPILED.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() >= COMPILED_KEPT {
            kept.remove(0);
        }
        kept.push((script.code.clone(), *limits, ast));
    });
}

/// Finds the line where a handler call breaks a limit: runs it again on a
/// copy of the script's state with a debugger noting each statement's line,
/// and output functions that do nothing, under a small budget (an endless
/// loop is still looping on the same lines).
fn locate(
    ast: &AST,
    handler: Handler,
    arg: Option<&Dynamic>,
    state: &Dynamic,
    scope: &Scope<'static>,
    limits: &ScriptLimits,
) -> usize {
    use std::sync::atomic::AtomicUsize;
    let small = ScriptLimits {
        max_operations: limits.max_operations.min(200_000),
        ..*limits
    };
    let mut engine = sandbox_engine(&small);
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    engine.register_fn("note", |_: &mut Packet, _: &str| {});
    engine.register_fn("note", |_: INT, _: &str| {});
    engine.register_fn("finding", |_: Map| {});
    engine.register_fn("metric", |_: &str, _: Dynamic| {});
    engine.register_fn("chosen", || false);
    let started = Instant::now();
    engine.on_progress(move |ops| {
        (ops % 1024 == 0 && started.elapsed().as_millis() > 200).then(|| Dynamic::from("time"))
    });
    let line = Arc::new(AtomicUsize::new(0));
    let seen = line.clone();
    // Flagged "volatile" by rhai, not deprecated; chattcp pins rhai 1.x.
    #[allow(deprecated)]
    engine.register_debugger(
        |_, debugger| debugger,
        move |_, event, _, _, pos| {
            if let (rhai::debugger::DebuggerEvent::Step, Some(l)) = (event, pos.line()) {
                seen.store(l, Ordering::Relaxed);
            }
            Ok(rhai::debugger::DebuggerCommand::StepInto)
        },
    );
    let mut state = state.clone();
    let mut scope = scope.clone();
    let options = CallFnOptions::new()
        .eval_ast(false)
        .rewind_scope(true)
        .bind_this_ptr(&mut state);
    let _ = match arg {
        Some(a) => engine.call_fn_with_options::<Dynamic>(
            options,
            &mut scope,
            ast,
            handler.name(),
            (a.clone(),),
        ),
        None => {
            engine.call_fn_with_options::<Dynamic>(options, &mut scope, ast, handler.name(), ())
        }
    };
    line.load(Ordering::Relaxed)
}

/// What the output functions need to know: who is running, on what.
#[derive(Default)]
struct Collector {
    output: ScriptOutput,
    /// The position in the host's list of the script recording (see
    /// `recording`).
    index: usize,
    /// Every script's name, by position.
    names: Vec<String>,
    /// The host's first script's position among all (see `ScriptHost::with_offset`).
    offset: usize,
    /// Per script, the connections passed to `watch(conn)` and not closed
    /// yet. Looked up by every filter that asks for `watched`: a fast hash.
    watched: Vec<WatchedSet>,
    /// Most connections one script may watch at once.
    max_watched: usize,
}

type WatchedSet = HashSet<u64, foldhash::fast::RandomState>;

impl Collector {
    /// The name of the script recording.
    fn script(&self) -> &str {
        self.names.get(self.index).map_or("", String::as_str)
    }
}

fn lock(c: &Mutex<Collector>) -> MutexGuard<'_, Collector> {
    c.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Which script runs, and during which event: written at every call
/// without the collector's lock (a lock per call costs as much as a short
/// handler), read when a script records something.
#[derive(Debug, Default)]
struct Running {
    /// The script's position in the host's list.
    index: AtomicUsize,
    /// The host's count of events.
    events: AtomicU64,
}

/// The collector, told which script records, and when, before it does.
fn recording<'c>(c: &'c Mutex<Collector>, running: &Running) -> MutexGuard<'c, Collector> {
    let mut g = lock(c);
    let i = running.index.load(Ordering::Relaxed);
    g.index = i;
    g.output.now = (running.events.load(Ordering::Relaxed), g.offset + i);
    g
}

fn runtime_error(msg: String, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(msg.into(), pos))
}

fn to_frames(v: &Dynamic) -> Result<Vec<u64>, String> {
    if v.is_unit() {
        return Ok(Vec::new());
    }
    if let Some(n) = v.clone().try_cast::<INT>() {
        return Ok(vec![n.max(0) as u64]);
    }
    let Some(a) = v.clone().try_cast::<rhai::Array>() else {
        return Err("`frames` must be an array of frame numbers".into());
    };
    a.iter()
        .map(|x| {
            x.as_int()
                .map(|n| n.max(0) as u64)
                .map_err(|_| "`frames` must be an array of frame numbers".to_string())
        })
        .collect()
}

fn text_field(m: &Map, key: &str, required: bool) -> Result<String, String> {
    match m.get(key) {
        Some(v) if v.is_string() => Ok(v.to_string()),
        Some(v) if v.is_unit() && !required => Ok(String::new()),
        None if !required => Ok(String::new()),
        None => Err(format!("a finding needs `{key}`")),
        Some(v) => Ok(v.to_string()),
    }
}

fn parse_finding(m: &Map, script: &str) -> Result<Finding, String> {
    let id = text_field(m, "id", true)?;
    if id.is_empty() {
        return Err("a finding's `id` must not be empty".into());
    }
    let severity_name = text_field(m, "severity", true)?;
    let severity = Severity::from_name(&severity_name).ok_or_else(|| {
        format!("severity `{severity_name}`: a finding's severity is \"info\", \"warning\" or \"error\"")
    })?;
    let conn = match m.get("conn") {
        None => None,
        Some(v) if v.is_unit() => None,
        Some(v) => Some(
            v.as_int()
                .map_err(|_| "`conn` must be a connection number".to_string())?
                .max(0) as u64,
        ),
    };
    let frames = m.get("frames").map_or(Ok(Vec::new()), to_frames)?;
    for key in m.keys() {
        if !matches!(
            key.as_str(),
            "id" | "severity" | "conn" | "frames" | "title" | "detail"
        ) {
            return Err(format!(
                "a finding has no field `{key}` (it has id, severity, conn, frames, title, detail)"
            ));
        }
    }
    Ok(Finding {
        id,
        script: script.to_string(),
        severity,
        conn,
        frames,
        title: text_field(m, "title", true)?,
        detail: text_field(m, "detail", false)?,
    })
}

fn metric_value(v: &Dynamic) -> MetricValue {
    if let Ok(i) = v.as_int() {
        MetricValue::Int(i)
    } else if let Ok(f) = v.as_float() {
        MetricValue::Float(f)
    } else {
        MetricValue::Text(v.to_string())
    }
}

/// Runs scripts over the events of one capture.
pub struct ScriptHost<'s> {
    engine: Engine,
    scripts: &'s [Script],
    /// Each script compiled for this thread (see [`compiled`]).
    asts: Vec<AST>,
    /// Each script's `this`: an object map that lives for the capture.
    states: Vec<Dynamic>,
    scopes: Vec<Scope<'static>>,
    stopped: Vec<bool>,
    /// Per script: calls left before its state is measured again.
    state_check_in: Vec<u64>,
    collector: Arc<Mutex<Collector>>,
    /// Which script runs (shared with the functions scripts call).
    running: Arc<Running>,
    limits: ScriptLimits,
    capture_start: Option<Timestamp>,
    any: [bool; Handler::ALL.len()],
    payload_wanted: bool,
    calls: u64,
    /// Connections closed since the states were last swept.
    closed_since_sweep: u64,
    /// Events seen: the first half of each report's key.
    events: u64,
    /// The connections lessons comment on (the others' events skip them).
    lesson_scope: LessonScope,
    /// The event being dispatched is outside `lesson_scope`.
    lessons_muted: bool,
    /// Per script, per handler: the filter it declared (`ON_CLOSE_WHEN`).
    filters: Vec<[Option<Filter>; Handler::ALL.len()]>,
    /// The fields the filters read of the event being dispatched.
    field_cache: filter::FieldCache,
    /// The scripts whose filters admit the event being dispatched.
    admitted: Vec<usize>,
    /// The summary of the `Event::Closed` being handled, when its sender
    /// shares it (`closed_shared`): handlers get it without a copy.
    shared_summary: Option<Arc<ConnectionSummary>>,
}

/// Which connections the lessons comment on. A view that draws only some
/// connections of a big capture (the HTML report) need not pay for
/// commentary on the rest; diagnoses always see every event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LessonScope {
    /// Every connection.
    #[default]
    All,
    /// Connections numbered below this.
    Below(u64),
    /// This connection only.
    Only(u64),
}

impl LessonScope {
    fn includes(self, conn: u64) -> bool {
        match self {
            LessonScope::All => true,
            LessonScope::Below(n) => conn < n,
            LessonScope::Only(c) => conn == c,
        }
    }
}

/// Closes between two sweeps of the scripts' states.
const SWEEP_EVERY: u64 = 8192;

/// Drops the entries set to `()` from the maps directly in `this` (and from
/// `this` itself). Scripts forget a connection by setting its entry to `()`
/// (removing it through `this` would copy the map); without the sweep each
/// such map would keep a key per connection ever seen.
fn sweep(state: &mut Dynamic) {
    let Some(mut this) = state.write_lock::<rhai::Map>() else {
        return;
    };
    this.retain(|_, v| !v.is_unit());
    for value in this.values_mut() {
        if let Some(mut map) = value.write_lock::<rhai::Map>() {
            map.retain(|_, v| !v.is_unit());
        }
    }
}

/// Calls of a script between two measures of its state, at least. A
/// measure walks all of `this`, so the next one comes after as many calls
/// as the state held values: about one value visited per call, whatever
/// the state holds.
const STATE_CHECK_MIN_CALLS: u64 = 4096;

/// Nesting followed when measuring a state; values deeper down are not
/// counted (rhai's own limit on expression depth keeps scripts far above).
const STATE_CHECK_MAX_DEPTH: usize = 256;

/// What a script's state holds, nested values included, counted as rhai
/// counts a value against its size limits.
#[derive(Default)]
struct Held {
    /// Array items and blob bytes.
    items: usize,
    /// Map entries.
    entries: usize,
    /// String bytes.
    bytes: usize,
}

impl Held {
    fn add(&mut self, value: &Dynamic, depth: usize) {
        if depth > STATE_CHECK_MAX_DEPTH {
            return;
        }
        if let Some(map) = value.read_lock::<Map>() {
            self.entries += map.len();
            map.values().for_each(|v| self.add(v, depth + 1));
        } else if let Some(array) = value.read_lock::<rhai::Array>() {
            self.items += array.len();
            array.iter().for_each(|v| self.add(v, depth + 1));
        } else if let Some(blob) = value.read_lock::<rhai::Blob>() {
            self.items += blob.len();
        } else if let Some(text) = value.read_lock::<rhai::ImmutableString>() {
            self.bytes += text.len();
        }
    }

    /// Values visited by [`Held::add`], about.
    fn values(&self) -> u64 {
        (self.items + self.entries) as u64
    }

    /// The limit this breaks, if any, named as rhai names it.
    fn over(&self, limits: &ScriptLimits) -> Option<&'static str> {
        if self.bytes > limits.max_string {
            Some("Length of string")
        } else if self.items > limits.max_array {
            Some("Size of array/BLOB")
        } else if self.entries > limits.max_map {
            Some("Size of object map")
        } else {
            None
        }
    }
}

/// The message of a broken size limit: `what` as rhai names it.
fn data_too_large(what: &str, l: &ScriptLimits) -> String {
    format!(
        "stopped: {} over its limit (strings {} bytes, arrays {} items, maps {} entries)",
        what.to_lowercase(),
        l.max_string,
        l.max_array,
        l.max_map
    )
}

impl<'s> ScriptHost<'s> {
    /// A host for one capture; calls each script's `init()`.
    pub fn new(scripts: &'s [Script], limits: ScriptLimits) -> Self {
        Self::with_chosen(scripts, limits, None)
    }

    /// A host in which `chosen()` is true for the script named `chosen`: the
    /// lesson a user asked for, which should say when the capture does not
    /// show what it expects.
    pub fn with_chosen(scripts: &'s [Script], limits: ScriptLimits, chosen: Option<&str>) -> Self {
        Self::with_offset(scripts, limits, chosen, 0)
    }

    /// A host for `scripts`, which sit at `offset` in the full list of a
    /// run whose scripts are split among threads (see
    /// [`ScriptOutput::merge`]).
    pub fn with_offset(
        scripts: &'s [Script],
        limits: ScriptLimits,
        chosen: Option<&str>,
        offset: usize,
    ) -> Self {
        let mut collector = Collector {
            watched: vec![WatchedSet::default(); scripts.len()],
            max_watched: limits.max_map,
            ..Collector::default()
        };
        collector.output.max_findings_per_id = Some(limits.max_findings);
        collector.names = scripts.iter().map(|s| s.name.clone()).collect();
        collector.offset = offset;
        let collector = Arc::new(Mutex::new(collector));
        let running = Arc::new(Running::default());
        let deadline = Arc::new(AtomicI64::new(i64::MAX));
        let clock = Instant::now();
        let mut engine = sandbox_engine(&limits);

        let (c, r) = (collector.clone(), running.clone());
        engine.on_print(move |s| {
            let mut g = recording(&c, &r);
            let script = g.script().to_string();
            g.output.add_print(Printed {
                script,
                text: s.to_string(),
            });
        });
        let (c, r) = (collector.clone(), running.clone());
        engine.on_debug(move |s, _, _| {
            let mut g = recording(&c, &r);
            let script = g.script().to_string();
            g.output.add_print(Printed {
                script,
                text: s.to_string(),
            });
        });
        let d = deadline;
        let limit_ns = (limits.max_millis as i64).saturating_mul(1_000_000);
        engine.on_progress(move |ops| {
            // Reading the clock every operation would cost more than the
            // script, and reading it at every call more than a short
            // handler: a call's clock starts at its 4096th operation (rhai
            // counts operations per call), a few microseconds in.
            if ops % 4096 != 0 {
                return None;
            }
            let now = clock.elapsed().as_nanos() as i64;
            if ops == 4096 {
                d.store(now.saturating_add(limit_ns), Ordering::Relaxed);
                None
            } else if now > d.load(Ordering::Relaxed) {
                Some(Dynamic::from("time"))
            } else {
                None
            }
        });
        let (c, r) = (collector.clone(), running.clone());
        engine.register_fn("note", move |p: &mut Packet, text: &str| {
            let mut g = recording(&c, &r);
            let script = g.script().to_string();
            g.output.add_note(Note {
                script,
                frame: p.record.frame,
                conn: Some(p.record.conn),
                text: text.to_string(),
            });
        });
        let (c, r) = (collector.clone(), running.clone());
        engine.register_fn("note", move |frame: INT, text: &str| {
            let mut g = recording(&c, &r);
            let script = g.script().to_string();
            g.output.add_note(Note {
                script,
                frame: frame.max(0) as u64,
                conn: None,
                text: text.to_string(),
            });
        });
        let (c, r) = (collector.clone(), running.clone());
        engine.register_fn(
            "finding",
            move |ctx: NativeCallContext, m: Map| -> Result<(), Box<EvalAltResult>> {
                let mut g = recording(&c, &r);
                let script = g.script().to_string();
                let f = parse_finding(&m, &script)
                    .map_err(|e| runtime_error(e, ctx.call_position()))?;
                g.output.add_finding(f);
                Ok(())
            },
        );
        let (c, r) = (collector.clone(), running.clone());
        let chosen = chosen.map(str::to_string);
        engine.register_fn("chosen", move || {
            let g = recording(&c, &r);
            chosen.as_deref() == Some(g.script())
        });
        let (c, r) = (collector.clone(), running.clone());
        engine.register_fn("metric", move |name: &str, value: Dynamic| {
            let mut g = recording(&c, &r);
            let script = g.script().to_string();
            g.output.add_metric(Metric {
                script,
                name: name.to_string(),
                value: metric_value(&value),
            });
        });

        let (c, r) = (collector.clone(), running.clone());
        engine.register_fn(
            "watch",
            move |ctx: NativeCallContext, conn: INT| -> Result<(), Box<EvalAltResult>> {
                let mut g = recording(&c, &r);
                let (i, max) = (g.index, g.max_watched);
                let Some(set) = g.watched.get_mut(i) else {
                    return Ok(());
                };
                if set.len() >= max && !set.contains(&(conn.max(0) as u64)) {
                    return Err(runtime_error(
                        format!("watch: more than {max} connections watched at once"),
                        ctx.call_position(),
                    ));
                }
                set.insert(conn.max(0) as u64);
                Ok(())
            },
        );
        let (c, r) = (collector.clone(), running.clone());
        engine.register_fn("unwatch", move |conn: INT| {
            let mut g = recording(&c, &r);
            let i = g.index;
            if let Some(set) = g.watched.get_mut(i) {
                set.remove(&(conn.max(0) as u64));
            }
        });

        let mut broken = Vec::new();
        let asts = scripts
            .iter()
            .enumerate()
            .map(|(i, script)| {
                compiled(&engine, script, &limits).unwrap_or_else(|e| {
                    broken.push((i, e));
                    AST::empty()
                })
            })
            .collect();
        let mut any = [false; Handler::ALL.len()];
        for s in scripts {
            for h in Handler::ALL {
                any[h as usize] |= s.handles(h);
            }
        }
        let mut host = ScriptHost {
            engine,
            scripts,
            asts,
            states: scripts
                .iter()
                .map(|_| Dynamic::from_map(Map::new()))
                .collect(),
            scopes: scripts.iter().map(|_| Scope::new()).collect(),
            stopped: vec![false; scripts.len()],
            state_check_in: vec![STATE_CHECK_MIN_CALLS; scripts.len()],
            collector,
            running,
            limits,
            capture_start: None,
            any,
            payload_wanted: scripts
                .iter()
                .any(|s| s.handles(Handler::Packet) && s.reads_payload),
            calls: 0,
            closed_since_sweep: 0,
            events: 0,
            lesson_scope: LessonScope::All,
            lessons_muted: false,
            filters: scripts.iter().map(|_| Default::default()).collect(),
            field_cache: filter::FieldCache::new(),
            admitted: Vec::new(),
            shared_summary: None,
        };
        // Compiled once already when it was loaded, under the same limits:
        // only a script that changed meaning between two engines gets here.
        for (i, e) in broken {
            let message = format!("does not compile on this thread: {}", e.0);
            host.stop_at_top_level(i, e.1.line().unwrap_or(0), message);
        }
        for i in 0..scripts.len() {
            host.run_top_level(i);
            host.read_filters(i);
            host.call(i, Handler::Init, None, None, &|| None);
        }
        host
    }

    /// Runs a script's top-level statements once, so that its constants
    /// (`const LIMIT = 1.0;`) are visible to its handlers.
    fn run_top_level(&mut self, i: usize) {
        if self.stopped[i] {
            return;
        }
        let script = &self.scripts[i];
        self.running.index.store(i, Ordering::Relaxed);
        self.running.events.store(self.events, Ordering::Relaxed);
        if let Err(e) = self
            .engine
            .run_ast_with_scope(&mut self.scopes[i], &self.asts[i])
        {
            let mut error = self.describe(script, Handler::Init, None, &e);
            error.handler = "top level".into();
            self.stopped[i] = true;
            recording(&self.collector, &self.running)
                .output
                .add_error(error);
        }
    }

    /// Stops script `i` for a problem of its top level at `line`.
    fn stop_at_top_level(&mut self, i: usize, line: usize, message: String) {
        let script = &self.scripts[i];
        self.stopped[i] = true;
        recording(&self.collector, &self.running)
            .output
            .add_error(RuntimeError {
                script: script.name.clone(),
                handler: "top level".into(),
                line,
                frame: None,
                message,
                source_line: script.line(line).to_string(),
            });
    }

    /// Reads the filters script `i` declares in its constants; a filter
    /// that cannot be read stops the script, as a broken top level does.
    fn read_filters(&mut self, i: usize) {
        if self.stopped[i] {
            return;
        }
        let script = &self.scripts[i];
        let mut problem = None;
        for (name, _, value) in self.scopes[i].iter_raw() {
            if !(name.starts_with("ON_") && name.ends_with("_WHEN")) {
                continue;
            }
            let Some(handler) = Handler::ALL
                .into_iter()
                .find(|h| filter::const_name(*h) == name)
            else {
                problem = Some((
                    name.to_string(),
                    format!("`{name}` names no handler (`ON_CLOSE_WHEN` filters `on_close`, ...)"),
                ));
                break;
            };
            if !script.handles(handler) {
                problem = Some((
                    name.to_string(),
                    format!(
                        "`{name}` filters `{}`, which the script does not define",
                        handler.name()
                    ),
                ));
                break;
            }
            match Filter::parse(handler, value) {
                Ok(f) => self.filters[i][handler as usize] = Some(f),
                Err(e) => {
                    problem = Some((name.to_string(), e));
                    break;
                }
            }
        }
        if let Some((name, message)) = problem {
            let line = script
                .source
                .lines()
                .position(|l| l.contains(&format!("const {name}")))
                .map_or(0, |n| n + 1);
            self.stop_at_top_level(i, line, message);
        }
    }

    /// Sets the time the capture's first frame was taken, from which the
    /// values' times count: a host fed without packet events (a sharded
    /// run) cannot learn it from the first packet.
    pub fn set_capture_start(&mut self, start: Timestamp) {
        self.capture_start = Some(start);
    }

    /// Lets the lessons comment only on the connections in `scope`.
    pub fn set_lesson_scope(&mut self, scope: LessonScope) {
        self.lesson_scope = scope;
    }

    /// Whether any script handles `handler`: events nobody handles never
    /// cross into rhai.
    pub fn wants(&self, handler: Handler) -> bool {
        self.any[handler as usize]
    }

    /// The kinds of application events some handler takes: the others
    /// need not reach this host.
    pub fn app_kinds(&self) -> crate::dissect::AppKinds {
        use crate::dissect::AppKinds;
        [
            (Handler::HttpRequest, AppKinds::HTTP_REQUEST),
            (Handler::HttpResponse, AppKinds::HTTP_RESPONSE),
            (Handler::HttpUnanswered, AppKinds::HTTP_UNANSWERED),
            (Handler::SseEvent, AppKinds::SSE),
            (Handler::WsFrame, AppKinds::WS_FRAME),
            (Handler::WsMessage, AppKinds::WS_MESSAGE),
        ]
        .into_iter()
        .filter(|(handler, _)| self.wants(*handler))
        .fold(AppKinds::NONE, |kinds, (_, kind)| kinds.with(kind))
    }

    /// True when a script reported a finding about connection `conn`.
    pub fn has_findings(&self, conn: u64) -> bool {
        lock(&self.collector).output.has_findings(conn)
    }

    /// Handler calls made so far (events that crossed into rhai).
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Calls `handler` of script `i` with `arg`; `again` makes the argument
    /// anew, should the call break a limit and need running again to find
    /// the line.
    fn call(
        &mut self,
        i: usize,
        handler: Handler,
        arg: Option<Dynamic>,
        frame: Option<u64>,
        again: &dyn Fn() -> Option<Dynamic>,
    ) {
        let script = &self.scripts[i];
        if self.stopped[i]
            || !script.handles(handler)
            || (self.lessons_muted && script.meta.kind == super::script::Kind::Lesson)
        {
            return;
        }
        self.calls += 1;
        self.running.index.store(i, Ordering::Relaxed);
        self.running.events.store(self.events, Ordering::Relaxed);
        let options = CallFnOptions::new()
            .eval_ast(false)
            .rewind_scope(true)
            .bind_this_ptr(&mut self.states[i]);
        let result = match arg {
            Some(a) => self.engine.call_fn_with_options::<Dynamic>(
                options,
                &mut self.scopes[i],
                &self.asts[i],
                handler.name(),
                (a,),
            ),
            None => self.engine.call_fn_with_options::<Dynamic>(
                options,
                &mut self.scopes[i],
                &self.asts[i],
                handler.name(),
                (),
            ),
        };
        if result.is_ok() {
            self.check_state(i, handler, frame);
        }
        if let Err(e) = result {
            let mut error = self.describe(script, handler, frame, &e);
            if error.line == 0 {
                // rhai drops the position of a broken limit; find the line by
                // running the call again, stepping, on a copy of the state.
                error.line = locate(
                    &self.asts[i],
                    handler,
                    again().as_ref(),
                    &self.states[i],
                    &self.scopes[i],
                    &self.limits,
                );
                error.source_line = script.line(error.line).to_string();
            }
            self.stopped[i] = true;
            recording(&self.collector, &self.running)
                .output
                .add_error(error);
        }
    }

    /// Measures script `i`'s state when it is due, and stops the script if
    /// the state breaks a size limit. rhai checks a value against the
    /// limits where it is made or set, but not the maps that keep growing
    /// under `this` by index (`this.seen[key] = v`), nor `this` itself
    /// since state_writes.rs.
    fn check_state(&mut self, i: usize, handler: Handler, frame: Option<u64>) {
        self.state_check_in[i] = self.state_check_in[i].saturating_sub(1);
        if self.state_check_in[i] > 0 {
            return;
        }
        let mut held = Held::default();
        held.add(&self.states[i], 0);
        self.state_check_in[i] = held.values().max(STATE_CHECK_MIN_CALLS);
        let Some(what) = held.over(&self.limits) else {
            return;
        };
        let error = RuntimeError {
            script: self.scripts[i].name.clone(),
            handler: handler.name().to_string(),
            line: 0,
            frame,
            message: format!(
                "{}, in what `this` keeps",
                data_too_large(what, &self.limits)
            ),
            source_line: String::new(),
        };
        self.stopped[i] = true;
        recording(&self.collector, &self.running)
            .output
            .add_error(error);
    }

    fn describe(
        &self,
        script: &Script,
        handler: Handler,
        frame: Option<u64>,
        e: &EvalAltResult,
    ) -> RuntimeError {
        let inner = e.unwrap_inner();
        let line = inner.position().line().unwrap_or(0);
        let l = &self.limits;
        let message = match inner {
            EvalAltResult::ErrorTerminated(..) => format!(
                "stopped: ran past the limit of {} ms per handler call (an endless loop?)",
                l.max_millis
            ),
            EvalAltResult::ErrorTooManyOperations(..) => format!(
                "stopped: ran past the limit of {} operations per handler call (an endless loop?)",
                l.max_operations
            ),
            EvalAltResult::ErrorStackOverflow(..) => format!(
                "stopped: calls nested deeper than the limit of {} (runaway recursion?)",
                l.max_call_depth
            ),
            EvalAltResult::ErrorDataTooLarge(what, ..) => data_too_large(what, l),
            other => {
                let mut m = other.to_string();
                // rhai appends " (line N, position M)"; the line is said already.
                if let Some(cut) = m.rfind(" (line ") {
                    m.truncate(cut);
                }
                m
            }
        };
        RuntimeError {
            script: script.name.clone(),
            handler: handler.name().to_string(),
            line,
            frame,
            message,
            source_line: script.line(line).to_string(),
        }
    }

    /// Calls `handler` of every script that takes `value` (its filter
    /// admits it). Filters read the typed value; each call gets its own
    /// rhai copy, made from `value` itself (a copy of a copy would cost a
    /// second allocation), and an event no script takes makes none.
    fn dispatch<T: filter::Filtered>(
        &mut self,
        handler: Handler,
        mut value: T,
        frame: Option<u64>,
    ) {
        self.field_cache.clear();
        // Every filter first, under one lock: a call changes only its own
        // script's watched connections, so no later filter's answer.
        let mut admitted = std::mem::take(&mut self.admitted);
        admitted.clear();
        {
            let mut guard = None;
            for i in 0..self.scripts.len() {
                if !self.scripts[i].handles(handler) {
                    continue;
                }
                if let (true, Some(f)) = (
                    self.limits.use_filters,
                    self.filters[i][handler as usize].as_ref(),
                ) {
                    let g = guard.get_or_insert_with(|| lock(&self.collector));
                    let watched = &g.watched[i];
                    if !f.admits(&mut value, &mut self.field_cache, |c| {
                        !watched.is_empty() && watched.contains(&c)
                    }) {
                        continue;
                    }
                }
                admitted.push(i);
            }
        }
        for &i in admitted.iter() {
            let arg = Dynamic::from(value.clone());
            self.call(i, handler, Some(arg), frame, &|| {
                Some(Dynamic::from(value.clone()))
            });
        }
        self.admitted = admitted;
    }

    /// Ends the capture: runs `on_end()` and hands over what the scripts produced.
    pub fn finish(mut self) -> ScriptOutput {
        self.events += 1;
        self.lessons_muted = false;
        for i in 0..self.scripts.len() {
            self.call(i, Handler::End, None, None, &|| None);
        }
        std::mem::take(&mut lock(&self.collector).output)
    }
}

impl ScriptHost<'_> {
    fn app(&mut self, app: &AppEvent) {
        let start = self.capture_start.unwrap_or(Timestamp(0));
        match app {
            AppEvent::Http(m) => {
                let handler = if m.method().is_some() {
                    Handler::HttpRequest
                } else {
                    Handler::HttpResponse
                };
                if self.wants(handler) {
                    let v = HttpValue(m.clone(), start);
                    self.dispatch(handler, v, Some(m.last.frame));
                }
            }
            AppEvent::HttpUnanswered(m) if self.wants(Handler::HttpUnanswered) => {
                let v = HttpValue(m.clone(), start);
                self.dispatch(Handler::HttpUnanswered, v, Some(m.last.frame));
            }
            AppEvent::Sse(e) if self.wants(Handler::SseEvent) => {
                let v = SseValue(Arc::new((**e).clone()), start);
                self.dispatch(Handler::SseEvent, v, Some(e.readable.frame));
            }
            AppEvent::WsFrame(f) if self.wants(Handler::WsFrame) => {
                let v = WsFrameValue(Arc::new((**f).clone()), start);
                self.dispatch(Handler::WsFrame, v, Some(f.last.frame));
            }
            AppEvent::WsMessage(m) if self.wants(Handler::WsMessage) => {
                let v = WsMessageValue(Arc::new((**m).clone()), start);
                self.dispatch(Handler::WsMessage, v, Some(m.last.frame));
            }
            _ => {}
        }
    }
}

impl EventSink for ScriptHost<'_> {
    fn closed_shared(&mut self, summary: &Arc<ConnectionSummary>) -> std::io::Result<()> {
        self.shared_summary = Some(summary.clone());
        let result = self.event(&Event::Closed(summary));
        self.shared_summary = None;
        result
    }

    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        self.events += 1;
        if self.lesson_scope != LessonScope::All {
            let conn = match event {
                Event::Opened(c) => Some(c.conn),
                Event::Packet(p) => Some(p.conn),
                Event::Handshake(h) => Some(h.conn),
                Event::Data(d) => Some(d.conn),
                Event::App(a) => Some(a.conn()),
                Event::Overview(o) => Some(o.conn),
                Event::Closed(c) => Some(c.conn),
                Event::End(_) => None,
            };
            self.lessons_muted = conn.is_some_and(|c| !self.lesson_scope.includes(c));
        }
        match event {
            Event::Packet(p) => {
                self.capture_start
                    .get_or_insert(Timestamp(p.time.nanos() - p.rel_time_ns));
                if self.wants(Handler::Packet) {
                    let v = Packet::new(p, self.payload_wanted);
                    self.dispatch(Handler::Packet, v, Some(p.frame));
                }
            }
            Event::Opened(c) if self.wants(Handler::Open) => {
                self.dispatch(Handler::Open, Opened(**c), Some(c.first_frame));
            }
            Event::Handshake(h) if self.wants(Handler::Handshake) => {
                let start = self.capture_start.unwrap_or(h.time).nanos();
                self.dispatch(Handler::Handshake, HandshakeDone(**h, start), Some(h.frame));
            }
            Event::Data(d)
                if self.wants(Handler::Data)
                    && !matches!(d.chunk, crate::reassembly::Chunk::End { .. }) =>
            {
                let start = self.capture_start.unwrap_or(d.time);
                self.dispatch(Handler::Data, Data::new(d, start), Some(d.frame));
            }
            Event::App(app) => self.app(app),
            Event::Closed(c) => {
                if self.wants(Handler::Close) {
                    let summary = self
                        .shared_summary
                        .take()
                        .filter(|s| std::ptr::eq(&**s, *c))
                        .unwrap_or_else(|| Arc::new((*c).clone()));
                    self.dispatch(Handler::Close, Closed(summary), None);
                }
                {
                    let mut g = lock(&self.collector);
                    for set in g.watched.iter_mut().filter(|s| !s.is_empty()) {
                        set.remove(&c.conn);
                    }
                }
                self.closed_since_sweep += 1;
                if self.closed_since_sweep >= SWEEP_EVERY {
                    self.closed_since_sweep = 0;
                    self.states.iter_mut().for_each(sweep);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_bytes_read_well() {
        assert_eq!(fmt_duration(0.000_85), "850 µs");
        assert_eq!(fmt_duration(0.0123), "12.3 ms");
        assert_eq!(fmt_duration(1.009), "1.009 s");
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
        assert_eq!(fmt_bytes(3 << 20), "3.0 MiB");
    }

    #[test]
    fn a_thread_compiles_a_script_once_and_each_thread_for_itself() {
        let limits = ScriptLimits::default();
        let engine = sandbox_engine(&limits);
        let (script, _) = Script::compile_with_ast(&engine, "probe", "test", "fn on_close(c) { }")
            .expect("compiles");
        fn handlers(ast: &AST) -> Vec<String> {
            ast.iter_functions().map(|f| f.name.to_string()).collect()
        }
        // What this thread keeps for the script is what its hosts run: a
        // stand-in kept here is found, not compiled over.
        let stand_in = engine.compile("fn on_packet(p) { }").expect("compiles");
        keep_compiled(&script, &limits, stand_in);
        let here = compiled(&engine, &script, &limits).expect("kept");
        assert_eq!(handlers(&here), ["on_packet"]);
        // Under other limits, or on another thread, it is compiled anew.
        let tighter = ScriptLimits {
            max_string: 1000,
            ..limits
        };
        let anew = compiled(&sandbox_engine(&tighter), &script, &tighter).expect("compiles");
        assert_eq!(handlers(&anew), ["on_close"]);
        let there = std::thread::scope(|s| {
            s.spawn(|| {
                let engine = sandbox_engine(&limits);
                let ast = compiled(&engine, &script, &limits).expect("compiles");
                handlers(&ast)
            })
            .join()
            .expect("thread")
        });
        assert_eq!(there, ["on_close"]);
    }
}
