//! The connection list as compact data: one small array per connection,
//! which the page's script draws only where the list is scrolled to. A
//! capture of 100,000 connections is then listed in full without 100,000
//! elements in the page (and the file stays a fraction of the size).
//!
//! The layout of a row is a contract between this module and
//! `templates/report.js`; `docs/report.md` describes it.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::tags::Tag;
use super::CaptureInput;
use crate::scripting::Severity;

/// One row: `[capture, conn, client, server, packets from the client,
/// packets from the server, duration µs, start µs, tag bits, drawn in full
/// (0/1), worst finding (0 none, 1 info, 2 warning, 3 error), bytes from
/// the client, bytes from the server, handshake (index in words), close
/// (index in words)]`.
pub type Row = (
    usize,
    u64,
    String,
    String,
    u64,
    u64,
    i64,
    i64,
    u32,
    u8,
    u8,
    u64,
    u64,
    usize,
    usize,
);

/// Everything the page's script needs to draw the list.
#[derive(Serialize)]
pub struct ListData<'a> {
    /// Capture names, by index.
    pub captures: Vec<&'a str>,
    /// `[label, tone, explanation]` of each tag, by bit.
    pub tags: Vec<(&'static str, &'static str, &'static str)>,
    /// Strings many rows share (handshake outcomes, close phrases).
    pub words: Vec<String>,
    /// The rows, capture by capture, in connection order.
    pub rows: Vec<Row>,
    /// The findings of the connections that are only summarised, by their
    /// id (`k0-c12`): `[severity, title]`.
    pub findings: BTreeMap<String, Vec<(&'static str, &'a str)>>,
}

/// The list data of all captures, and how many connections carry each tag.
pub fn list_data(captures: &[CaptureInput]) -> (ListData<'_>, Vec<(Tag, usize)>) {
    let mut words: Vec<String> = Vec::new();
    let mut word_index: HashMap<String, usize> = HashMap::new();
    let mut word = |w: String| -> usize {
        if let Some(i) = word_index.get(&w) {
            return *i;
        }
        words.push(w.clone());
        word_index.insert(w, words.len() - 1);
        words.len() - 1
    };
    let mut rows = Vec::new();
    let mut findings = BTreeMap::new();
    let mut counts: BTreeMap<Tag, usize> = BTreeMap::new();
    for (k, cap) in captures.iter().enumerate() {
        let mut worst: HashMap<u64, Severity> = HashMap::new();
        for f in &cap.output.findings {
            if let Some(c) = f.conn {
                let w = worst.entry(c).or_insert(f.severity);
                *w = (*w).max(f.severity);
            }
        }
        for c in cap.collector.conns.values() {
            let conn = c.info.conn;
            let (mut bits, mut row) = (0u32, (0, 0, 0i64, 0i64, 0, 0, 0, 0));
            let (handshake, close) = match &c.brief {
                Some(b) => {
                    bits = b.tags;
                    for t in b.tags() {
                        *counts.entry(t).or_default() += 1;
                    }
                    row = (
                        b.packets[0],
                        b.packets[1],
                        b.duration_ns / 1000,
                        b.start_rel_ns / 1000,
                        b.bytes[0],
                        b.bytes[1],
                        0,
                        0,
                    );
                    let close = cap
                        .collector
                        .words
                        .get(b.close as usize)
                        .cloned()
                        .unwrap_or_default();
                    (word(b.handshake.to_string()), word(close))
                }
                None => (word("unknown".into()), word("unknown".into())),
            };
            let severity = match worst.get(&conn) {
                None => 0,
                Some(Severity::Info) => 1,
                Some(Severity::Warning) => 2,
                Some(Severity::Error) => 3,
            };
            if !c.full && severity > 0 {
                let mut list: Vec<(&'static str, &str)> = cap
                    .output
                    .findings
                    .iter()
                    .filter(|f| f.conn == Some(conn))
                    .map(|f| (f.severity.name(), f.title.as_str()))
                    .collect();
                list.sort_by_key(|f| std::cmp::Reverse(Severity::from_name(f.0)));
                findings.insert(format!("k{k}-c{conn}"), list);
            }
            rows.push((
                k,
                conn,
                c.info.client.to_string(),
                c.info.server.to_string(),
                row.0,
                row.1,
                row.2,
                row.3,
                bits,
                u8::from(c.full),
                severity,
                row.4,
                row.5,
                handshake,
                close,
            ));
        }
    }
    let data = ListData {
        captures: captures.iter().map(|c| c.name.as_str()).collect(),
        tags: Tag::ALL
            .iter()
            .map(|t| (t.label(), t.tone(), t.tip()))
            .collect(),
        words,
        rows,
        findings,
    };
    (data, counts.into_iter().collect())
}
