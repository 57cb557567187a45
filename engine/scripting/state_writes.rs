//! Writes to a script's state by index: `this.count += 1` runs as
//! `this["count"] += 1`.
//!
//! After a property of a map is set with a dot (`m.x = v`, `m.x += 1`),
//! rhai checks the size limits on the whole map `m`, counting everything
//! it holds, nested maps and arrays included; set by index (`m["x"] = v`),
//! it checks only the value set. Everything a script keeps is in `this`, so
//! `this.count += 1` walked all of it on every call: with 40,000 entries
//! kept in `this.seen`, each such line cost about 140 µs, and a handler
//! counting packets on a capture of 1.8 million of them would have run for
//! hours (quadratic in the connections remembered). Written by index, the
//! same line costs the same whatever `this` holds.
//!
//! The two forms mean the same on an object map, which `this` is in every
//! handler (in a function called as a method, `this` is the value it is
//! called on: on anything but a map, both forms are errors). The rewrite
//! touches only a `this.name` followed by an assignment
//! operator: not reads (no check runs on a read), not method calls
//! (`this.name(...)`), not deeper chains (`this.a.b = 1` checks only
//! `this.a`, as for any other map), and nothing inside comments or string
//! literals. Lines stay where they were, so errors name the same lines.

use std::borrow::Cow;

/// `source` with every `this.NAME <assignment>` written `this["NAME"]
/// <assignment>`; the source itself when there is none.
pub fn index_state_writes(source: &str) -> Cow<'_, str> {
    let mut scan = Scan {
        bytes: source.as_bytes(),
        at: 0,
        writes: Vec::new(),
    };
    scan.code(false);
    if scan.writes.is_empty() {
        return Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len() + scan.writes.len() * 4);
    let mut from = 0;
    for (dot, name_end) in scan.writes {
        out.push_str(&source[from..dot]);
        let name = source[dot + 1..name_end].trim_start();
        out.push_str("[\"");
        out.push_str(name);
        out.push_str("\"]");
        from = name_end;
    }
    out.push_str(&source[from..]);
    Cow::Owned(out)
}

/// A walk over rhai source that knows its comments and string literals.
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Found writes: the offset of the dot and the end of the name.
    writes: Vec<(usize, usize)>,
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Assignment operators of rhai, longest first where one is a prefix of
/// another's tail (`**=` before `*=`).
const ASSIGNMENTS: [&[u8]; 11] = [
    b"**=", b"<<=", b">>=", b"+=", b"-=", b"*=", b"/=", b"%=", b"&=", b"|=", b"^=",
];

impl Scan<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.at + ahead).copied()
    }

    /// Code, until the end, or (`in_template`) until the `}` closing an
    /// interpolation `${...}`.
    fn code(&mut self, in_template: bool) {
        let mut depth = 0usize;
        while let Some(b) = self.peek(0) {
            match b {
                b'/' if self.peek(1) == Some(b'/') => self.line_comment(),
                b'/' if self.peek(1) == Some(b'*') => self.block_comment(),
                b'"' => self.quoted(b'"'),
                b'\'' => self.quoted(b'\''),
                b'`' => self.template(),
                b'#' if matches!(self.peek(1), Some(b'"' | b'#')) => self.raw_string(),
                b'{' => {
                    depth += 1;
                    self.at += 1;
                }
                b'}' => {
                    self.at += 1;
                    if depth == 0 && in_template {
                        return;
                    }
                    depth = depth.saturating_sub(1);
                }
                b't' if self.bytes[self.at..].starts_with(b"this")
                    && (self.at == 0 || !is_ident(self.bytes[self.at - 1]))
                    && !self.peek(4).is_some_and(is_ident) =>
                {
                    self.at += 4;
                    self.after_this();
                }
                _ if is_ident(b) => {
                    // A whole word: `xthis` and `this_x` are not `this`.
                    while self.peek(0).is_some_and(is_ident) {
                        self.at += 1;
                    }
                }
                _ => self.at += 1,
            }
        }
    }

    /// Just past `this`: notes `.NAME` when an assignment follows.
    fn after_this(&mut self) {
        let spaces = |s: &Self, mut i: usize| {
            while matches!(s.bytes.get(i), Some(b' ' | b'\t')) {
                i += 1;
            }
            i
        };
        let dot = spaces(self, self.at);
        if self.bytes.get(dot) != Some(&b'.') {
            return;
        }
        let name_start = spaces(self, dot + 1);
        if !self
            .bytes
            .get(name_start)
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        {
            return;
        }
        let mut name_end = name_start;
        while self.bytes.get(name_end).copied().is_some_and(is_ident) {
            name_end += 1;
        }
        let op = &self.bytes[spaces(self, name_end)..];
        let assigns = ASSIGNMENTS.iter().any(|a| op.starts_with(a))
            || (op.first() == Some(&b'=') && !matches!(op.get(1), Some(b'=' | b'>')));
        if assigns {
            self.writes.push((dot, name_end));
        }
        self.at = name_end;
    }

    fn line_comment(&mut self) {
        while let Some(b) = self.peek(0) {
            if b == b'\n' {
                return;
            }
            self.at += 1;
        }
    }

    /// `/* ... */`, nested as rhai nests them.
    fn block_comment(&mut self) {
        let mut depth = 0usize;
        while self.at < self.bytes.len() {
            if self.bytes[self.at..].starts_with(b"/*") {
                depth += 1;
                self.at += 2;
            } else if self.bytes[self.at..].starts_with(b"*/") {
                self.at += 2;
                depth -= 1;
                if depth == 0 {
                    return;
                }
            } else {
                self.at += 1;
            }
        }
    }

    /// A string or character literal: `\` escapes the next character.
    fn quoted(&mut self, quote: u8) {
        self.at += 1;
        while let Some(b) = self.peek(0) {
            self.at += 1;
            if b == b'\\' {
                self.at += 1;
            } else if b == quote {
                return;
            }
        }
    }

    /// `#"..."#`, `##"..."##`: ends at a quote followed by as many hashes.
    fn raw_string(&mut self) {
        let mut hashes = 0;
        while self.peek(0) == Some(b'#') {
            hashes += 1;
            self.at += 1;
        }
        if self.peek(0) != Some(b'"') {
            return;
        }
        self.at += 1;
        while self.at < self.bytes.len() {
            if self.bytes[self.at] == b'"'
                && self.bytes[self.at + 1..]
                    .iter()
                    .take(hashes)
                    .filter(|b| **b == b'#')
                    .count()
                    == hashes
            {
                self.at += 1 + hashes;
                return;
            }
            self.at += 1;
        }
    }

    /// A backtick string: text, a doubled backtick for a backtick, and
    /// `${...}` interpolations, which are code.
    fn template(&mut self) {
        self.at += 1;
        while let Some(b) = self.peek(0) {
            match b {
                b'`' if self.peek(1) == Some(b'`') => self.at += 2,
                b'`' => {
                    self.at += 1;
                    return;
                }
                b'$' if self.peek(1) == Some(b'{') => {
                    self.at += 2;
                    self.code(true);
                }
                _ => self.at += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::index_state_writes as rewrite;

    #[test]
    fn assignments_to_this_are_written_by_index() {
        assert_eq!(rewrite("this.count += 1;"), "this[\"count\"] += 1;");
        assert_eq!(rewrite("this.n = 0;"), "this[\"n\"] = 0;");
        assert_eq!(rewrite("this . n\t-= 2;"), "this [\"n\"]\t-= 2;");
        for op in [
            "=", "+=", "-=", "*=", "/=", "%=", "**=", "<<=", ">>=", "&=", "|=", "^=",
        ] {
            assert_eq!(
                rewrite(&format!("this.x {op} y")),
                format!("this[\"x\"] {op} y")
            );
        }
        assert_eq!(
            rewrite("fn init() {\n    this.a = #{};\n    this.b_2 = [];\n}"),
            "fn init() {\n    this[\"a\"] = #{};\n    this[\"b_2\"] = [];\n}"
        );
    }

    #[test]
    fn reads_comparisons_calls_and_deeper_chains_are_left() {
        for same in [
            "let x = this.count;",
            "if this.count == 1 {}",
            "if this.count <= 1 || this.count >= 2 || this.count != 3 {}",
            "let f = |x| this.n => 1;",
            "this.hit(conn, line);",
            "this.seen[key] = true;",
            "this.hits[key].lines.push(1);",
            "this.a.b = 1;",
            "this?.x = 1;",
            "xthis.n = 1; this_x.n = 1; mythis.n = 1;",
            "this.\nn = 1;",
        ] {
            assert_eq!(rewrite(same), same, "{same}");
        }
    }

    #[test]
    fn comments_and_strings_are_left() {
        for same in [
            "// this.n = 1;\nlet a = 1;",
            "/* this.n = 1; /* nested */ this.m = 2; */ let a = 1;",
            r#"let s = "this.n = 1; \" this.m = 2";"#,
            "let c = '\\''; let s = \"this.n = 1\";",
            r##"let r = #"this.n = 1 " this.m = 2"#;"##,
            r###"let r = ##"this.n = 1 "# this.m = 2"##;"###,
            "let t = `this.n = 1 `` this.m = 2`;",
        ] {
            assert_eq!(rewrite(same), same, "{same}");
        }
    }

    #[test]
    fn code_inside_an_interpolation_is_code_and_the_text_after_it_is_text() {
        assert_eq!(
            rewrite("let t = `${ if true { #{a: 1}.a } else { 2 } } this.n = 1`; this.n = 2;"),
            "let t = `${ if true { #{a: 1}.a } else { 2 } } this.n = 1`; this[\"n\"] = 2;"
        );
        assert_eq!(
            rewrite("print(`a ${`b ${this.n}`} c`); this.m += 1;"),
            "print(`a ${`b ${this.n}`} c`); this[\"m\"] += 1;"
        );
    }

    #[test]
    fn any_text_is_walked_without_a_panic_and_keeps_its_lines() {
        // Unterminated strings, comments and interpolations, stray quotes
        // and braces, multi-byte characters: built from a small alphabet by
        // a fixed pseudo-random sequence.
        let alphabet = [
            "this", "this.n ", "this .x", ".", "n", " ", "=", "+=", "==", "\"", "'", "`", "${",
            "}", "{", "#", "/*", "*/", "//", "\n", "\\", "é", "(", "[", "_",
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut rewritten = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..next() % 24 {
                text.push_str(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
            let out = rewrite(&text);
            assert_eq!(out.lines().count(), text.lines().count(), "{text:?}");
            rewritten += usize::from(out != text);
        }
        // The sequence does reach the rewrite, not only the walk.
        assert!(rewritten > 100, "{rewritten}");
    }

    #[test]
    fn lines_stay_where_they_were() {
        let source = "fn on_packet(p) {\n  this.n += 1;\n  // this.m = 1\n  this.k = `x\ny`;\n}\n";
        let out = rewrite(source);
        assert_eq!(out.lines().count(), source.lines().count());
        assert!(out
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("this[\"n\"]")));
        assert!(out
            .lines()
            .nth(3)
            .is_some_and(|l| l.contains("this[\"k\"]")));
    }
}
