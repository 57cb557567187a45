//! What scripts produce: notes, findings, printed lines, metrics and errors.

use std::collections::HashSet;
use std::fmt;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Probably a problem.
    Warning,
    /// Certainly a problem.
    Error,
}

impl Severity {
    /// `info`, `warning` or `error`.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses a severity name.
    pub fn from_name(name: &str) -> Option<Severity> {
        match name {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// A diagnosis a script reported with `finding(...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// Stable identifier of the kind of finding, e.g. `syn_unanswered`.
    pub id: String,
    /// The script that reported it.
    pub script: String,
    /// How bad it is.
    pub severity: Severity,
    /// The connection it is about, if any.
    pub conn: Option<u64>,
    /// Frames that show it.
    pub frames: Vec<u64>,
    /// One line.
    pub title: String,
    /// The explanation.
    pub detail: String,
}

/// Commentary a script attached to a packet with `note(p, text)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The script.
    pub script: String,
    /// The packet's frame.
    pub frame: u64,
    /// The packet's connection, when known.
    pub conn: Option<u64>,
    /// The text.
    pub text: String,
}

/// A value a script reported with `metric(name, value)`.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    /// A whole number.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// Anything else, as text.
    Text(String),
}

impl fmt::Display for MetricValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricValue::Int(v) => write!(f, "{v}"),
            MetricValue::Float(v) => write!(f, "{v}"),
            MetricValue::Text(v) => f.write_str(v),
        }
    }
}

/// A metric, in the order reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// The script.
    pub script: String,
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: MetricValue,
}

/// A script that failed while running; it is stopped for the rest of the
/// capture, and the other scripts go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeError {
    /// The script.
    pub script: String,
    /// The handler that failed, e.g. `on_packet`.
    pub handler: String,
    /// 1-based line in the script, 0 when unknown.
    pub line: usize,
    /// The frame being processed, if any.
    pub frame: Option<u64>,
    /// What went wrong (for a limit: which one).
    pub message: String,
    /// The source line.
    pub source_line: String,
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} failed", self.script, self.handler)?;
        if self.line > 0 {
            write!(f, " at line {}", self.line)?;
        }
        if let Some(frame) = self.frame {
            write!(f, " while processing frame {frame}")?;
        }
        write!(f, ": {}", self.message)?;
        if self.line > 0 && !self.source_line.trim().is_empty() {
            write!(f, "\n  {} | {}", self.line, self.source_line.trim_end())?;
        }
        Ok(())
    }
}

/// A line a script printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Printed {
    /// The script.
    pub script: String,
    /// The text.
    pub text: String,
}

/// Everything the scripts produced for one capture.
#[derive(Clone, Debug, Default)]
pub struct ScriptOutput {
    /// Findings, each (id, connection) once, in the order reported.
    pub findings: Vec<Finding>,
    /// Notes, in the order reported.
    pub notes: Vec<Note>,
    /// Printed lines, in order.
    pub prints: Vec<Printed>,
    /// Metrics, in the order reported.
    pub metrics: Vec<Metric>,
    /// Scripts that failed.
    pub errors: Vec<RuntimeError>,
    /// Findings not kept because their id already had `max_findings_per_id`
    /// (a SYN flood would otherwise make a million), counted per id.
    pub suppressed: std::collections::BTreeMap<String, u64>,
    /// Findings kept per id at most (`None`: all).
    pub max_findings_per_id: Option<usize>,
    kept_per_id: std::collections::HashMap<String, usize>,
    seen: HashSet<(String, Option<u64>)>,
    conns_with_findings: HashSet<u64>,
    /// When the script now running reports something: (event number,
    /// script position). Kept beside each finding, print, metric and
    /// error so that outputs of scripts run apart merge into the order of
    /// a single run.
    pub(crate) now: ReportKey,
    finding_keys: Vec<ReportKey>,
    print_keys: Vec<ReportKey>,
    metric_keys: Vec<ReportKey>,
    error_keys: Vec<ReportKey>,
}

/// (event number, script position): the order of a single run.
pub(crate) type ReportKey = (u64, usize);

/// `items` in key order (stable: one worker's items keep their order).
fn by_key<T>(parts: Vec<(Vec<ReportKey>, Vec<T>)>) -> (Vec<ReportKey>, Vec<T>) {
    let mut all: Vec<(ReportKey, T)> = parts
        .into_iter()
        .flat_map(|(keys, items)| keys.into_iter().zip(items))
        .collect();
    all.sort_by_key(|(k, _)| *k);
    all.into_iter().unzip()
}

/// At most this many notes per capture: a runaway script cannot fill memory.
pub const MAX_NOTES: usize = 250_000;
/// At most this many printed lines per capture.
pub const MAX_PRINTS: usize = 100_000;

impl ScriptOutput {
    /// Adds a finding unless one with the same id and connection exists.
    /// Past `max_findings_per_id` findings of one id, it is only counted in
    /// `suppressed` (repeats of one connection's finding may then be counted
    /// more than once).
    pub fn add_finding(&mut self, f: Finding) {
        let kept = self.kept_per_id.get(&f.id).copied().unwrap_or(0);
        if self.max_findings_per_id.is_some_and(|max| kept >= max) {
            *self.suppressed.entry(f.id).or_insert(0) += 1;
            return;
        }
        if self.seen.insert((f.id.clone(), f.conn)) {
            *self.kept_per_id.entry(f.id.clone()).or_insert(0) += 1;
            if let Some(c) = f.conn {
                self.conns_with_findings.insert(c);
            }
            self.finding_keys.push(self.now);
            self.findings.push(f);
        }
    }

    /// True when a finding about connection `conn` was kept.
    pub fn has_findings(&self, conn: u64) -> bool {
        self.conns_with_findings.contains(&conn)
    }

    /// Adds a note (bounded).
    pub fn add_note(&mut self, n: Note) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(n);
        }
    }

    /// Adds a printed line (bounded).
    pub fn add_print(&mut self, p: Printed) {
        if self.prints.len() < MAX_PRINTS {
            self.print_keys.push(self.now);
            self.prints.push(p);
        }
    }

    /// Adds a metric.
    pub fn add_metric(&mut self, m: Metric) {
        self.metric_keys.push(self.now);
        self.metrics.push(m);
    }

    /// Adds a script's failure.
    pub fn add_error(&mut self, e: RuntimeError) {
        self.error_keys.push(self.now);
        self.errors.push(e);
    }

    /// Joins the outputs of groups of scripts run over the same event
    /// stream apart (each on its own thread): findings, prints, metrics and
    /// errors come out in the order one run of all the scripts gives.
    /// Notes (lessons only) are joined by frame.
    pub fn merge(parts: Vec<ScriptOutput>) -> ScriptOutput {
        let mut out = ScriptOutput::default();
        let mut findings = Vec::new();
        let mut prints = Vec::new();
        let mut metrics = Vec::new();
        let mut errors = Vec::new();
        for p in parts {
            out.max_findings_per_id = out.max_findings_per_id.or(p.max_findings_per_id);
            for (id, n) in p.suppressed {
                *out.suppressed.entry(id).or_insert(0) += n;
            }
            for (id, n) in p.kept_per_id {
                *out.kept_per_id.entry(id).or_insert(0) += n;
            }
            out.seen.extend(p.seen);
            out.conns_with_findings.extend(p.conns_with_findings);
            out.notes.extend(p.notes);
            findings.push((p.finding_keys, p.findings));
            prints.push((p.print_keys, p.prints));
            metrics.push((p.metric_keys, p.metrics));
            errors.push((p.error_keys, p.errors));
        }
        out.notes.sort_by_key(|n| n.frame);
        (out.finding_keys, out.findings) = by_key(findings);
        (out.print_keys, out.prints) = by_key(prints);
        (out.metric_keys, out.metrics) = by_key(metrics);
        (out.error_keys, out.errors) = by_key(errors);
        out
    }

    /// Findings, most severe first, then by connection (capture-wide first)
    /// and the order they were reported.
    pub fn sorted_findings(&self) -> Vec<&Finding> {
        let mut v: Vec<&Finding> = self.findings.iter().collect();
        v.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.conn.cmp(&b.conn)));
        v
    }
}
