//! Script results: the `diagnose` and `run` reports, as text or JSON.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::scripting::output::{Finding, MetricValue, RuntimeError, ScriptOutput};
use crate::scripting::run::CaptureReport;

fn finding_json(f: &Finding) -> Value {
    json!({
        "id": f.id,
        "script": f.script,
        "severity": f.severity.name(),
        "conn": f.conn,
        "frames": f.frames,
        "title": f.title,
        "detail": f.detail,
    })
}

fn error_json(e: &RuntimeError) -> Value {
    json!({
        "script": e.script,
        "handler": e.handler,
        "line": e.line,
        "frame": e.frame,
        "message": e.message,
    })
}

fn stats_json(r: &CaptureReport) -> Value {
    let s = &r.stats;
    json!({
        "packets": s.packets,
        "connections": s.connections,
        "incomplete_handshakes": s.incomplete_handshakes,
        "connections_with_retransmissions": s.with_retransmissions,
        "resets": s.resets,
        "keep_alives": s.keep_alives,
    })
}

/// `diagnose --json`: `{"captures": [{"file", "stats", "findings", ...}]}`.
pub fn diagnose_json(reports: &[CaptureReport]) -> Value {
    let captures: Vec<Value> = reports
        .iter()
        .map(|r| {
            json!({
                "file": r.file,
                "stats": stats_json(r),
                "findings": r.output.sorted_findings().into_iter().map(finding_json).collect::<Vec<_>>(),
                "prints": r.output.prints.iter().map(|p| json!({"script": p.script, "text": p.text})).collect::<Vec<_>>(),
                "metrics": r.output.metrics.iter().map(|m| json!({"script": m.script, "name": m.name, "value": metric_json(&m.value)})).collect::<Vec<_>>(),
                "suppressed": r.output.suppressed.iter().map(|(id, n)| json!({"id": id, "count": n})).collect::<Vec<_>>(),
                "errors": r.output.errors.iter().map(error_json).collect::<Vec<_>>(),
                "problem": r.problem,
                "warnings": r.warnings,
            })
        })
        .collect();
    json!({ "captures": captures })
}

fn metric_json(v: &MetricValue) -> Value {
    match v {
        MetricValue::Int(i) => json!(i),
        MetricValue::Float(f) => json!(f),
        MetricValue::Text(t) => json!(t),
    }
}

/// `run --json`: everything one script produced, per capture.
pub fn run_json(reports: &[CaptureReport]) -> Value {
    let captures: Vec<Value> = reports
        .iter()
        .map(|r| {
            let o = &r.output;
            json!({
                "file": r.file,
                "prints": o.prints.iter().map(|p| json!(p.text)).collect::<Vec<_>>(),
                "notes": o.notes.iter().map(|n| json!({"frame": n.frame, "conn": n.conn, "text": n.text})).collect::<Vec<_>>(),
                "findings": o.sorted_findings().into_iter().map(finding_json).collect::<Vec<_>>(),
                "metrics": o.metrics.iter().map(|m| json!({"name": m.name, "value": metric_json(&m.value)})).collect::<Vec<_>>(),
                "errors": o.errors.iter().map(error_json).collect::<Vec<_>>(),
                "problem": r.problem,
                "warnings": r.warnings,
            })
        })
        .collect();
    json!({ "captures": captures })
}

/// Writes `text` indented by `pad`, each paragraph wrapped to fit 80 columns.
fn indented(text: &str, pad: &str, out: &mut String) {
    let width = 80usize.saturating_sub(pad.chars().count()).max(20);
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                let _ = writeln!(out, "{pad}{line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        let _ = writeln!(out, "{pad}{line}");
    }
}

fn findings_text(r: &CaptureReport, out: &mut String) {
    let o: &ScriptOutput = &r.output;
    let findings = o.sorted_findings();
    // Groups: one per connection (capture-wide first when it is as severe),
    // ordered by their most severe finding, then by connection number.
    let mut groups: Vec<(Option<u64>, Vec<&Finding>)> = Vec::new();
    let mut group_of: std::collections::HashMap<Option<u64>, usize> = Default::default();
    for f in findings {
        let at = *group_of.entry(f.conn).or_insert_with(|| {
            groups.push((f.conn, Vec::new()));
            groups.len() - 1
        });
        groups[at].1.push(f);
    }
    for (conn, list) in groups {
        match conn {
            Some(c) => {
                let label = r.labels.get(c).unwrap_or_default();
                let _ = writeln!(out, "\n#{c}  {label}");
            }
            None => {
                let _ = writeln!(out, "\ncapture-wide");
            }
        }
        for f in list {
            let _ = writeln!(out, "  {:<8} {}", f.severity.name().to_uppercase(), f.title);
            let _ = writeln!(out, "           [{}]", f.id);
            if !f.detail.is_empty() {
                indented(&f.detail, "           ", out);
            }
            if !f.frames.is_empty() {
                let frames: Vec<String> = f.frames.iter().take(20).map(u64::to_string).collect();
                let more = if f.frames.len() > 20 {
                    format!(" and {} more", f.frames.len() - 20)
                } else {
                    String::new()
                };
                let _ = writeln!(out, "           frames {}{}", frames.join(", "), more);
            }
        }
    }
}

/// Says how many findings of each id were not kept.
fn suppressed_text(r: &CaptureReport, out: &mut String) {
    let o = &r.output;
    if o.suppressed.is_empty() {
        return;
    }
    let _ = writeln!(out);
    for (id, n) in &o.suppressed {
        let _ = writeln!(
            out,
            "{n} more [{id}] findings not shown: {} of one kind are kept per capture (--max-findings)",
            o.max_findings_per_id.unwrap_or(0)
        );
    }
}

fn errors_text(r: &CaptureReport, out: &mut String) {
    for e in &r.output.errors {
        let _ = writeln!(out, "\nscript error: {e}");
    }
}

/// `diagnose`: per capture, the statistics, then the findings grouped by
/// connection, most severe first.
pub fn diagnose_text(reports: &[CaptureReport]) -> String {
    let mut out = String::new();
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "== {}", r.file);
        if let Some(p) = &r.problem {
            let _ = writeln!(out, "unusable: {p}");
        }
        let s = &r.stats;
        let _ = writeln!(
            out,
            "{} connections: {} incomplete handshakes, {} with retransmissions, {} resets, {} keep-alives",
            s.connections, s.incomplete_handshakes, s.with_retransmissions, s.resets, s.keep_alives
        );
        let n = r.output.findings.len();
        if n == 0 {
            let _ = writeln!(out, "no findings");
        } else {
            findings_text(r, &mut out);
        }
        suppressed_text(r, &mut out);
        if !r.output.prints.is_empty() || !r.output.metrics.is_empty() {
            out.push('\n');
        }
        for p in &r.output.prints {
            let _ = writeln!(out, "{}: {}", p.script, p.text);
        }
        for m in &r.output.metrics {
            let _ = writeln!(out, "{}: {} = {}", m.script, m.name, m.value);
        }
        errors_text(r, &mut out);
    }
    out
}

/// `run`: per capture, what the script printed, its findings, notes and metrics.
pub fn run_text(reports: &[CaptureReport]) -> String {
    let mut out = String::new();
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if reports.len() > 1 {
            let _ = writeln!(out, "== {}", r.file);
        }
        if let Some(p) = &r.problem {
            let _ = writeln!(out, "unusable: {p}");
        }
        let o = &r.output;
        for p in &o.prints {
            let _ = writeln!(out, "{}", p.text);
        }
        if !o.notes.is_empty() {
            let _ = writeln!(out, "\nnotes:");
            for n in &o.notes {
                let _ = writeln!(out, "  frame {:>6}: {}", n.frame, n.text);
            }
        }
        if !o.findings.is_empty() {
            findings_text(r, &mut out);
        }
        suppressed_text(r, &mut out);
        if !o.metrics.is_empty() {
            let _ = writeln!(out, "\nmetrics:");
            for m in &o.metrics {
                let _ = writeln!(out, "  {} = {}", m.name, m.value);
            }
        }
        errors_text(r, &mut out);
    }
    out
}
