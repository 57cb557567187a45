//! Connection summaries put back in connection order, within a bound.
//!
//! Summaries come out of tracking as connections retire, which is not the
//! order they opened in; `conns` prints them by number. Holding the early
//! finishers until a long-lived connection retires must not grow without
//! bound, so past [`MAX_WAITING`] the earliest waiting summary goes out
//! early and the order is given up for it.

use std::collections::BTreeMap;
use std::io;

/// Summaries held back at most to print connections in order.
pub const MAX_WAITING: usize = 10_000;

/// Reorders summaries (of type `T`, numbered by connection); `write` is
/// called for each in the order to print.
pub struct ConnOrder<T> {
    next: u64,
    waiting: BTreeMap<u64, Box<T>>,
}

impl<T> Default for ConnOrder<T> {
    fn default() -> Self {
        ConnOrder {
            next: 0,
            waiting: BTreeMap::new(),
        }
    }
}

impl<T: Clone> ConnOrder<T> {
    /// Takes the summary of connection `conn`, writing it and any that were
    /// waiting for it.
    pub fn push(
        &mut self,
        conn: u64,
        c: &T,
        mut write: impl FnMut(&T) -> io::Result<()>,
    ) -> io::Result<()> {
        if conn <= self.next {
            // The usual case (next in line), or one already overtaken: no
            // copy, no waiting.
            write(c)?;
            if conn == self.next {
                self.next += 1;
            }
        } else {
            self.waiting.insert(conn, Box::new(c.clone()));
            while self.waiting.len() > MAX_WAITING {
                if let Some((id, early)) = self.waiting.pop_first() {
                    write(&early)?;
                    self.next = self.next.max(id + 1);
                }
            }
        }
        while let Some(c) = self.waiting.remove(&self.next) {
            write(&c)?;
            self.next += 1;
        }
        Ok(())
    }

    /// Writes every summary still waiting, in order (at the end of a run).
    pub fn finish(&mut self, mut write: impl FnMut(&T) -> io::Result<()>) -> io::Result<()> {
        for c in std::mem::take(&mut self.waiting).values() {
            write(c)?;
        }
        Ok(())
    }
}

impl ConnOrder<Vec<u8>> {
    /// Like [`ConnOrder::push`] for rendered text, which the caller has
    /// already appended to its output `out` from `start`: left there when
    /// it is next in line (no copy), else moved out to wait; what was
    /// waiting for it is appended after it.
    pub fn push_rendered(&mut self, conn: u64, out: &mut Vec<u8>, start: usize) {
        if conn <= self.next {
            if conn == self.next {
                self.next += 1;
            }
        } else {
            self.waiting.insert(conn, Box::new(out[start..].to_vec()));
            out.truncate(start);
            while self.waiting.len() > MAX_WAITING {
                if let Some((id, early)) = self.waiting.pop_first() {
                    out.extend_from_slice(&early);
                    self.next = self.next.max(id + 1);
                }
            }
        }
        while let Some(text) = self.waiting.remove(&self.next) {
            out.extend_from_slice(&text);
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(order: &[u64]) -> Vec<u64> {
        let mut out = Vec::new();
        let mut o = ConnOrder::default();
        for &id in order {
            o.push(id, &id, |&c| {
                out.push(c);
                Ok(())
            })
            .ok();
        }
        o.finish(|&c| {
            out.push(c);
            Ok(())
        })
        .ok();
        out
    }

    #[test]
    fn rendered_text_comes_out_as_push_writes_it() {
        let mut order: Vec<u64> = (1..=(MAX_WAITING as u64 + 5)).collect();
        order.extend([0, MAX_WAITING as u64 + 7, MAX_WAITING as u64 + 6]);
        let mut expected = Vec::new();
        let mut by_push = ConnOrder::default();
        let mut out = Vec::new();
        let mut by_rendered = ConnOrder::default();
        for &id in &order {
            let text = format!("<{id}>").into_bytes();
            by_push
                .push(id, &text, |t: &Vec<u8>| {
                    expected.extend_from_slice(t);
                    Ok(())
                })
                .ok();
            let start = out.len();
            out.extend_from_slice(&text);
            by_rendered.push_rendered(id, &mut out, start);
        }
        by_push
            .finish(|t: &Vec<u8>| {
                expected.extend_from_slice(t);
                Ok(())
            })
            .ok();
        by_rendered
            .finish(|t: &Vec<u8>| {
                out.extend_from_slice(t);
                Ok(())
            })
            .ok();
        assert_eq!(out, expected);
    }

    #[test]
    fn retired_out_of_order_printed_in_order() {
        assert_eq!(run(&[2, 0, 3, 1]), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_connection_open_all_along_does_not_hold_everything_back() {
        // Connection 0 retires last; the others must not all wait for it.
        let mut order: Vec<u64> = (1..=(MAX_WAITING as u64 + 5)).collect();
        order.push(0);
        let out = run(&order);
        assert_eq!(out.len(), order.len());
        assert_eq!(out[0], 1, "the earliest waiting goes out first");
        let mut sorted = out.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), out.len(), "each printed once");
    }
}
