//! Per-connection state found by connection number, for the stages after
//! tracking (the dissectors, the scripts' connection labels, a parallel
//! run's renumbering of each worker's connections).
//!
//! Connections are numbered in order of first appearance and most live
//! briefly, so the numbers in use at any moment form a window that slides
//! forward: a slot per number in a deque is found without hashing, and
//! neighbouring connections' slots share cache lines. A connection that
//! lives on while the window would pass a bound (a long download among
//! thousands of short requests) is moved aside into a hash map, so the
//! window's memory stays bounded whatever the capture.

use std::collections::{HashMap, VecDeque};

/// Most slots the window holds by default: 16 bytes each for a boxed
/// state (1 MiB).
const MAX_WINDOW: usize = 1 << 16;

/// One connection's slot.
#[derive(Clone, Debug, Default)]
pub enum Slot<T> {
    /// Nothing kept (yet): the dissector has not taken the connection.
    #[default]
    Empty,
    /// The connection's state.
    Live(T),
    /// Both directions ended: the state is gone and nothing more of the
    /// connection is read, until it is summarised.
    Finished,
    /// Summarised: the number is done with.
    Closed,
}

/// Slots by connection number (see the module's documentation).
#[derive(Clone, Debug)]
pub struct ConnTable<T> {
    /// The number of the window's first slot.
    base: u64,
    window: VecDeque<Slot<T>>,
    /// Most slots `window` holds.
    max_window: usize,
    /// Connections older than the window and not closed.
    aside: HashMap<u64, Slot<T>, foldhash::fast::RandomState>,
}

impl<T> Default for ConnTable<T> {
    fn default() -> Self {
        ConnTable {
            base: 0,
            window: VecDeque::new(),
            max_window: MAX_WINDOW,
            aside: HashMap::default(),
        }
    }
}

impl<T> ConnTable<T> {
    /// A table whose window holds at most `max_window` slots (at least
    /// one): for states kept in place, larger than a box, whose window
    /// would otherwise take megabytes.
    pub fn with_window(max_window: usize) -> Self {
        ConnTable {
            max_window: max_window.max(1),
            ..ConnTable::default()
        }
    }

    /// Connection `conn`'s slot, made `Empty` if it had none.
    pub fn slot(&mut self, conn: u64) -> &mut Slot<T> {
        if conn < self.base {
            // Older than the window: set aside, or a number the window
            // passed without seeing (a new state starts for it).
            return self.aside.entry(conn).or_default();
        }
        let mut index = conn - self.base;
        if index >= self.max_window as u64 {
            // Make room: the oldest slots move aside (only those still in
            // use cost anything there).
            let excess = (index - self.max_window as u64 + 1).min(self.window.len() as u64);
            for _ in 0..excess {
                let number = self.base;
                self.base += 1;
                match self.window.pop_front() {
                    // Nothing kept: nothing to set aside (a number seen
                    // again starts afresh either way).
                    Some(Slot::Closed | Slot::Empty) | None => {}
                    Some(slot) => {
                        self.aside.insert(number, slot);
                    }
                }
            }
            if self.window.is_empty() {
                // A jump far ahead: the window starts at the new number.
                self.base = conn;
            }
            index = conn - self.base;
        }
        let index = index as usize;
        if index >= self.window.len() {
            self.window.resize_with(index + 1, Slot::default);
        }
        &mut self.window[index]
    }

    /// Takes connection `conn`'s slot away for good (it was summarised).
    pub fn close(&mut self, conn: u64) -> Slot<T> {
        if conn < self.base {
            return self.aside.remove(&conn).unwrap_or(Slot::Closed);
        }
        let Some(slot) = self.window.get_mut((conn - self.base) as usize) else {
            return Slot::Closed;
        };
        let taken = std::mem::replace(slot, Slot::Closed);
        // The window moves past the numbers done with, and past those with
        // nothing kept: a number closed before the window reached it was
        // not marked, and the slot made for it later stays empty for good.
        while matches!(self.window.front(), Some(Slot::Closed | Slot::Empty)) {
            self.window.pop_front();
            self.base += 1;
        }
        taken
    }

    /// Connection `conn`'s state, if it has some.
    pub fn get(&self, conn: u64) -> Option<&T> {
        let slot = if conn < self.base {
            self.aside.get(&conn)
        } else {
            self.window.get((conn - self.base) as usize)
        };
        match slot {
            Some(Slot::Live(state)) => Some(state),
            _ => None,
        }
    }

    /// Every connection's state, in order of number.
    pub fn into_live(self) -> Vec<(u64, T)> {
        let mut live: Vec<(u64, T)> = self
            .aside
            .into_iter()
            .filter_map(|(conn, slot)| match slot {
                Slot::Live(state) => Some((conn, state)),
                _ => None,
            })
            .collect();
        live.sort_unstable_by_key(|(conn, _)| *conn);
        let base = self.base;
        live.extend(
            self.window
                .into_iter()
                .enumerate()
                .filter_map(|(i, slot)| match slot {
                    Slot::Live(state) => Some((base + i as u64, state)),
                    _ => None,
                }),
        );
        live
    }

    /// The numbers of the connections with state, in order.
    pub fn live(&self) -> Vec<u64> {
        let mut live: Vec<u64> = self
            .aside
            .iter()
            .filter(|(_, slot)| matches!(slot, Slot::Live(_)))
            .map(|(conn, _)| *conn)
            .collect();
        live.sort_unstable();
        live.extend(
            self.window
                .iter()
                .enumerate()
                .filter(|(_, slot)| matches!(slot, Slot::Live(_)))
                .map(|(i, _)| self.base + i as u64),
        );
        live
    }

    /// Forgets every connection.
    pub fn clear(&mut self) {
        self.window.clear();
        self.aside.clear();
    }

    /// Slots held, in the window and aside: what the table costs.
    pub fn held(&self) -> usize {
        self.window.len() + self.aside.len()
    }
}

/// Bytes kept in a connection's slot, such as the lines of text a
/// connection's block ends with, kept from the moment they are final until
/// its summary. Up to [`ShortBytes::INLINE`] bytes (nearly all) sit in the
/// slot itself, in a table's window where neighbouring connections' slots
/// are neighbours in memory: kept for seconds, they are read back in about
/// the order they were written, where a block of their own each would be
/// a cold line anywhere in the heap, and an allocation and a free. A slot
/// is 128 bytes: a table of them takes a bounded window
/// ([`ConnTable::with_window`], [`ShortBytes::WINDOW`]).
#[derive(Clone, Debug)]
pub enum ShortBytes {
    /// Held in place.
    Inline {
        /// How many of `bytes` are used.
        len: u8,
        /// The bytes, then unused room.
        bytes: [u8; ShortBytes::INLINE],
    },
    /// More than fit in place.
    Boxed(Box<[u8]>),
}

impl ShortBytes {
    /// Most bytes held in place: the whole value is then two cache lines.
    pub const INLINE: usize = 126;

    /// Slots of the window of a table of them, for one thread (4 MiB),
    /// shared among the workers of a sharded run. On many.pcap the
    /// connections whose lines wait at once span about 13,000 numbers on
    /// one thread; a connection kept longer than the window passes moves
    /// aside, into the table's map.
    pub const WINDOW: usize = 1 << 15;

    /// A copy of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= Self::INLINE => {
                let mut inline = [0; Self::INLINE];
                inline[..bytes.len()].copy_from_slice(bytes);
                ShortBytes::Inline { len, bytes: inline }
            }
            _ => ShortBytes::Boxed(Box::from(bytes)),
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ShortBytes::Inline { len, bytes } => &bytes[..usize::from(*len)],
            ShortBytes::Boxed(bytes) => bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_closed_in_any_order_move_the_window_past_them() {
        let mut t = ConnTable::<u32>::default();
        for conn in 0..5 {
            *t.slot(conn) = Slot::Live(conn as u32);
        }
        assert!(matches!(t.close(2), Slot::Live(2)));
        assert_eq!(t.held(), 5, "a closed slot in the middle stays");
        assert!(matches!(t.close(0), Slot::Live(0)));
        assert!(matches!(t.close(1), Slot::Live(1)));
        assert_eq!(t.held(), 2, "0, 1 and 2 are passed");
        assert_eq!(t.live(), vec![3, 4]);
        assert!(matches!(t.close(1), Slot::Closed), "closed once");
        *t.slot(3) = Slot::Finished;
        assert!(matches!(t.slot(3), Slot::Finished));
        assert_eq!(t.live(), vec![4]);
    }

    #[test]
    fn a_long_lived_connection_is_set_aside_and_the_window_stays_bounded() {
        let mut t = ConnTable::<u64>::default();
        *t.slot(0) = Slot::Live(0);
        for conn in 1..(3 * MAX_WINDOW as u64) {
            *t.slot(conn) = Slot::Live(conn);
            if conn > 10 {
                assert!(matches!(t.close(conn - 10), Slot::Live(_)));
            }
            assert!(t.window.len() <= MAX_WINDOW);
        }
        // Connection 0 lived through it all, aside; the rest are the last ten.
        assert!(matches!(t.slot(0), Slot::Live(0)));
        assert_eq!(t.live().len(), 11);
        assert_eq!(t.live()[0], 0);
        assert!(t.held() <= 12, "{}", t.held());
        assert!(matches!(t.close(0), Slot::Live(0)));
        assert!(
            matches!(t.slot(0), Slot::Empty),
            "a number seen again starts afresh"
        );
    }

    #[test]
    fn numbers_closed_before_the_window_reached_them_do_not_hold_it() {
        // Connections with nothing kept (no bytes to dissect, say) closed
        // before a later number got a slot: the window used to stop at
        // their empty slots and set them aside one by one, for good.
        let mut t = ConnTable::<u64>::default();
        for conn in 0..(3 * MAX_WINDOW as u64) {
            if conn % 2 == 0 {
                assert!(matches!(t.close(conn), Slot::Closed));
            } else {
                *t.slot(conn) = Slot::Live(conn);
                assert!(matches!(t.close(conn), Slot::Live(_)));
            }
        }
        assert!(t.held() <= 2, "{}", t.held());
        // A number passed over with nothing kept starts afresh.
        assert!(matches!(t.slot(2), Slot::Empty));
    }

    #[test]
    fn short_bytes_hold_any_length_in_place_or_boxed() {
        for len in [
            0,
            1,
            ShortBytes::INLINE - 1,
            ShortBytes::INLINE,
            ShortBytes::INLINE + 1,
            300,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let kept = ShortBytes::new(&bytes);
            assert_eq!(kept.as_bytes(), &bytes[..], "{len} bytes");
            assert_eq!(
                matches!(kept, ShortBytes::Inline { .. }),
                len <= ShortBytes::INLINE,
                "{len} bytes"
            );
        }
        assert_eq!(std::mem::size_of::<Slot<ShortBytes>>(), 128);
    }

    #[test]
    fn a_table_keeps_the_window_it_was_given() {
        let mut t = ConnTable::<u64>::with_window(100);
        *t.slot(0) = Slot::Live(0);
        for conn in 1..1000 {
            *t.slot(conn) = Slot::Live(conn);
            assert!(t.window.len() <= 100);
        }
        // The first connection moved aside and is still there.
        assert!(matches!(t.close(0), Slot::Live(0)));
        assert_eq!(t.live().len(), 999);
    }

    #[test]
    fn a_jump_far_ahead_does_not_fill_the_gap() {
        let mut t = ConnTable::<u8>::default();
        *t.slot(1) = Slot::Live(1);
        *t.slot(10 * MAX_WINDOW as u64) = Slot::Live(2);
        assert!(t.window.len() <= MAX_WINDOW);
        assert_eq!(t.live(), vec![1, 10 * MAX_WINDOW as u64]);
    }
}
