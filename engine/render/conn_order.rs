//! Connection summaries put back in connection order, within a bound.
//!
//! Summaries come out of tracking as connections retire, which is not the
//! order they opened in; `conns` prints them by number. Holding the early
//! finishers until a long-lived connection retires must not grow without
//! bound, so past [`MAX_WAITING_BYTES`] held the earliest waiting summary
//! goes out early and the order is given up for it.

use std::collections::BTreeMap;
use std::io;

/// Bytes of summaries held back at most to print connections in order.
///
/// A budget of bytes, not of summaries, because what waits differs in size
/// by output: about 500 bytes of rendered text a connection, but a
/// summary and its overview (about 1,600 bytes) for JSON, which renders
/// it only when its turn comes. With a count (10,000) the JSON of
/// many.pcap, where ports reused within the close delay end some waits
/// early and put summaries up to 2 s out of order (benches/README.md),
/// held 16 MiB where the text held 5, and `conns --json` peaked at
/// 127-137 MiB (116-121 MiB with this budget, the text unchanged).
pub const MAX_WAITING_BYTES: usize = 4 << 20;

/// What a waiting entry costs besides its own bytes: its box and its
/// place in the tree.
const ENTRY_BYTES: usize = 64;

/// Reorders summaries (of type `T`, numbered by connection); `write` is
/// called for each in the order to print.
pub struct ConnOrder<T> {
    next: u64,
    /// Each waiting summary, with the bytes it is counted for.
    waiting: BTreeMap<u64, (usize, Box<T>)>,
    /// Bytes counted for those waiting.
    held: usize,
}

impl<T> Default for ConnOrder<T> {
    fn default() -> Self {
        ConnOrder {
            next: 0,
            waiting: BTreeMap::new(),
            held: 0,
        }
    }
}

impl<T> ConnOrder<T> {
    /// Holds `c`, counted for `bytes`, until its turn.
    fn wait(&mut self, conn: u64, bytes: usize, c: Box<T>) {
        let bytes = bytes + ENTRY_BYTES;
        self.held += bytes;
        if let Some((replaced, _)) = self.waiting.insert(conn, (bytes, c)) {
            self.held -= replaced;
        }
    }

    /// The waiting summary of `conn`, if any, no longer held.
    fn take(&mut self, conn: u64) -> Option<Box<T>> {
        let (bytes, c) = self.waiting.remove(&conn)?;
        self.held -= bytes;
        Some(c)
    }

    /// The earliest waiting summary, once more is held than the budget.
    fn over_budget(&mut self) -> Option<(u64, Box<T>)> {
        if self.held <= MAX_WAITING_BYTES {
            return None;
        }
        let (conn, (bytes, c)) = self.waiting.pop_first()?;
        self.held -= bytes;
        Some((conn, c))
    }
}

impl<T: Clone> ConnOrder<T> {
    /// Takes the summary of connection `conn`, writing it and any that were
    /// waiting for it; if it has to wait, a copy is held, counted for
    /// `bytes` (its size, and what it holds on the heap).
    pub fn push(
        &mut self,
        conn: u64,
        c: &T,
        bytes: usize,
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
            self.wait(conn, bytes, Box::new(c.clone()));
            while let Some((id, early)) = self.over_budget() {
                write(&early)?;
                self.next = self.next.max(id + 1);
            }
        }
        while let Some(c) = self.take(self.next) {
            write(&c)?;
            self.next += 1;
        }
        Ok(())
    }

    /// Writes every summary still waiting, in order (at the end of a run).
    pub fn finish(&mut self, mut write: impl FnMut(&T) -> io::Result<()>) -> io::Result<()> {
        self.held = 0;
        for (_, c) in std::mem::take(&mut self.waiting).values() {
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
            let text = out[start..].to_vec();
            out.truncate(start);
            self.wait(conn, text.len(), Box::new(text));
            while let Some((id, early)) = self.over_budget() {
                out.extend_from_slice(&early);
                self.next = self.next.max(id + 1);
            }
        }
        while let Some(text) = self.take(self.next) {
            out.extend_from_slice(&text);
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes each test summary is counted for.
    const ITEM: usize = 1000;

    /// How many such summaries wait at most.
    fn room() -> u64 {
        (MAX_WAITING_BYTES / (ITEM + ENTRY_BYTES)) as u64
    }

    fn run(order: &[u64]) -> Vec<u64> {
        let mut out = Vec::new();
        let mut o = ConnOrder::default();
        for &id in order {
            o.push(id, &id, ITEM, |&c| {
                out.push(c);
                Ok(())
            })
            .ok();
            assert!(o.held <= MAX_WAITING_BYTES, "{} bytes held", o.held);
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
        let n = 2 * room();
        let mut order: Vec<u64> = (1..=n).collect();
        order.extend([0, n + 2, n + 1]);
        let mut expected = Vec::new();
        let mut by_push = ConnOrder::default();
        let mut out = Vec::new();
        let mut by_rendered = ConnOrder::default();
        for &id in &order {
            let text = format!("<{id}:{}>", "-".repeat(ITEM)).into_bytes();
            by_push
                .push(id, &text, text.len(), |t: &Vec<u8>| {
                    expected.extend_from_slice(t);
                    Ok(())
                })
                .ok();
            let start = out.len();
            out.extend_from_slice(&text);
            by_rendered.push_rendered(id, &mut out, start);
            assert_eq!(by_rendered.held, by_push.held);
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
        let mut order: Vec<u64> = (1..=room() + 5).collect();
        order.push(0);
        let out = run(&order);
        assert_eq!(out.len(), order.len());
        assert_eq!(out[0], 1, "the earliest waiting goes out first");
        let mut sorted = out.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), out.len(), "each printed once");
    }

    #[test]
    fn larger_summaries_wait_fewer_at_a_time() {
        // Held back by connection 0, the others go out early once the
        // budget is spent: after fewer of them when each counts for more.
        fn first_out_early(bytes: usize) -> u64 {
            let mut o = ConnOrder::default();
            let mut written = None;
            for id in 1..100_000u64 {
                o.push(id, &id, bytes, |_| {
                    written = Some(id);
                    Ok(())
                })
                .ok();
                if written.is_some() {
                    return id;
                }
            }
            0
        }
        let small = first_out_early(500);
        let large = first_out_early(1600);
        assert_eq!(small, (MAX_WAITING_BYTES / (500 + ENTRY_BYTES)) as u64 + 1);
        assert_eq!(large, (MAX_WAITING_BYTES / (1600 + ENTRY_BYTES)) as u64 + 1);
    }
}
