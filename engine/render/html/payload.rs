//! Bytes from the capture made readable: text with its control characters
//! shown, or a hex dump; the first [`FOLD`] bytes visible, the rest folded.
//!
//! Everything here is plain text. Escaping is the template's job: no
//! function here produces markup.

use std::fmt::Write as _;

/// Bytes shown before the rest is folded away.
pub const FOLD: usize = 1024;

/// A run of text, or a marker that stands for an invisible character
/// (`\r`, `\n`, `\x00`): the page shows markers dimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The characters.
    pub text: String,
    /// A marker, not data.
    pub mark: bool,
}

/// Bytes ready to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payload {
    /// Bytes the thing had (on the wire, or decoded).
    pub total: u64,
    /// Shown as text (else as a hex dump).
    pub text: bool,
    /// The first [`FOLD`] bytes.
    pub shown: Vec<Piece>,
    /// The kept bytes after those, behind a fold.
    pub folded: Vec<Piece>,
    /// How many bytes the fold holds.
    pub folded_bytes: u64,
    /// Bytes not kept at all (beyond the report's limits, or never captured).
    pub omitted: u64,
}

impl Payload {
    /// Whether there is nothing to show.
    pub fn is_empty(&self) -> bool {
        self.shown.is_empty() && self.folded.is_empty()
    }

    /// `1,976 bytes`: the size of the fold, for its label.
    pub fn folded_label(&self) -> String {
        bytes_label(self.folded_bytes)
    }

    /// The size of what was not kept, for its label.
    pub fn omitted_label(&self) -> String {
        bytes_label(self.omitted)
    }
}

/// `1 byte`, `1,234 bytes`.
pub fn bytes_label(n: u64) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{} bytes", thousands(n))
    }
}

/// `12,345,678`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Whether `bytes` read as text: UTF-8 (a character cut at the end is
/// allowed: segments cut text anywhere) with few control characters.
pub fn looks_like_text(bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    let valid = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        // A multi-byte character cut by the segment's end (or start) is
        // still text; anything else invalid is binary.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(e) if e.valid_up_to() == 0 && bytes.len() > 4 => {
            let skip = bytes
                .iter()
                .take(3)
                .take_while(|b| **b & 0xc0 == 0x80)
                .count();
            return skip > 0 && looks_like_text(&bytes[skip..]);
        }
        Err(_) => return false,
    };
    let mut chars = 0usize;
    let mut control = 0usize;
    for c in valid.chars() {
        chars += 1;
        if c.is_control() && !matches!(c, '\r' | '\n' | '\t') {
            control += 1;
        }
    }
    control * 10 <= chars
}

/// Text pieces of `bytes`, control characters as markers. A line feed is a
/// marker followed by a real line break, so that lines stay lines.
fn text_pieces(bytes: &[u8]) -> Vec<Piece> {
    let text = String::from_utf8_lossy(bytes);
    let mut out: Vec<Piece> = Vec::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut Vec<Piece>| {
        if !run.is_empty() {
            out.push(Piece {
                text: std::mem::take(run),
                mark: false,
            });
        }
    };
    for c in text.chars() {
        let mark = match c {
            '\r' => Some("\\r".to_string()),
            '\n' => Some("\\n".to_string()),
            '\t' => None,
            c if c.is_control() => Some(format!("\\x{:02x}", c as u32)),
            _ => None,
        };
        match mark {
            Some(m) => {
                flush(&mut run, &mut out);
                out.push(Piece {
                    text: m,
                    mark: true,
                });
                if c == '\n' {
                    run.push('\n');
                }
            }
            None => run.push(c),
        }
    }
    flush(&mut run, &mut out);
    out
}

/// A hex dump of `bytes`, 16 a line, offsets counted from `start`.
fn hex_pieces(bytes: &[u8], start: usize) -> Vec<Piece> {
    let mut s = String::with_capacity(bytes.len() * 5);
    for (n, line) in bytes.chunks(16).enumerate() {
        if n > 0 {
            s.push('\n');
        }
        let _ = write!(s, "{:04x}  ", start + n * 16);
        for (i, b) in line.iter().enumerate() {
            let _ = write!(s, "{b:02x}{}", if i == 7 { "  " } else { " " });
        }
        for i in line.len()..16 {
            s.push_str(if i == 7 { "    " } else { "   " });
        }
        s.push(' ');
        for b in line {
            s.push(if b.is_ascii_graphic() || *b == b' ' {
                *b as char
            } else {
                '·'
            });
        }
    }
    vec![Piece {
        text: s,
        mark: false,
    }]
}

/// The largest index ≤ `at` that does not cut a UTF-8 character in `bytes`.
fn char_boundary(bytes: &[u8], at: usize) -> usize {
    let mut at = at.min(bytes.len());
    // Continuation bytes are 10xxxxxx: step back over at most three.
    let mut steps = 0;
    while at > 0 && at < bytes.len() && bytes[at] & 0xc0 == 0x80 && steps < 3 {
        at -= 1;
        steps += 1;
    }
    at
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    &text[..char_boundary(text.as_bytes(), max)]
}

/// `kept` (the first bytes of something `total` bytes long) ready to show:
/// the first [`FOLD`] bytes visible, the rest folded.
pub fn payload(kept: &[u8], total: u64) -> Payload {
    let text = looks_like_text(kept);
    let split = if text {
        char_boundary(kept, FOLD)
    } else {
        kept.len().min(FOLD)
    };
    let (head, tail) = kept.split_at(split);
    let (shown, folded) = if text {
        (text_pieces(head), text_pieces(tail))
    } else {
        (hex_pieces(head, 0), hex_pieces(tail, split))
    };
    Payload {
        total,
        text,
        folded: if tail.is_empty() { Vec::new() } else { folded },
        shown,
        folded_bytes: tail.len() as u64,
        omitted: total.saturating_sub(kept.len() as u64),
    }
}

/// Text that is already a string (an event's data, a header value): shown
/// as [`payload`] shows text.
pub fn text_payload(text: &str, total: u64) -> Payload {
    let bytes = text.as_bytes();
    let split = char_boundary(bytes, FOLD);
    let (head, tail) = bytes.split_at(split);
    Payload {
        total,
        text: true,
        shown: text_pieces(head),
        folded: text_pieces(tail),
        folded_bytes: tail.len() as u64,
        omitted: total.saturating_sub(bytes.len() as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(p: &[Piece]) -> String {
        p.iter().map(|p| p.text.as_str()).collect()
    }

    #[test]
    fn text_keeps_lines_and_marks_control_characters() {
        let p = payload(b"GET / HTTP/1.1\r\nHost: a\r\n\x00", 26);
        assert!(p.text);
        assert_eq!(
            joined(&p.shown),
            "GET / HTTP/1.1\\r\\n\nHost: a\\r\\n\n\\x00"
        );
        assert!(p.shown.iter().any(|p| p.mark && p.text == "\\r"));
        assert!(p.folded.is_empty());
        assert_eq!(p.omitted, 0);
    }

    #[test]
    fn folds_after_one_kibibyte_without_cutting_a_character() {
        let mut bytes = vec![b'a'; FOLD - 1];
        bytes.extend_from_slice("é".as_bytes());
        bytes.extend_from_slice(&[b'b'; 100]);
        let p = payload(&bytes, 5000);
        assert_eq!(joined(&p.shown), "a".repeat(FOLD - 1));
        assert_eq!(joined(&p.folded), format!("é{}", "b".repeat(100)));
        assert_eq!(p.folded_bytes, 102);
        assert_eq!(p.omitted, 5000 - bytes.len() as u64);
    }

    #[test]
    fn binary_is_a_hex_dump() {
        let p = payload(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff], 11);
        assert!(!p.text);
        assert_eq!(
            joined(&p.shown),
            format!(
                "0000  1f 8b 08 00 00 00 00 00  00 03 ff{}{}",
                " ".repeat(17),
                "·".repeat(11)
            )
        );
    }

    #[test]
    fn a_cut_character_is_still_text() {
        let s = "héllo wörld".as_bytes();
        assert!(looks_like_text(&s[..s.len() - 4]));
        assert!(looks_like_text(&s[2..]));
        assert!(!looks_like_text(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
