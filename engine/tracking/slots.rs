//! The tracker's connection slots: a growable array in fixed chunks.
//!
//! A vector of slots doubles as it grows, copying every slot and holding
//! the old copy and the new one at once. A slot is about 520 bytes, and
//! finished connections are remembered by the hundred thousand (for their
//! late packets and port reuse): growing from 131,072 slots to 262,144
//! copied 68 MB and held 204 MB at once: a capture of a million refused
//! connections peaked at 240 MiB (`conns --threads 1 --close-delay 0`)
//! where these chunks take 152. Chunks are
//! allocated as they are needed and never move.

use std::ops::{Index, IndexMut};

/// Slots per chunk: about 2 MiB of connections.
const CHUNK: usize = 4096;

/// Slots by index, each empty or holding a `T`.
pub(super) struct Slots<T> {
    chunks: Vec<Box<[Option<T>]>>,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slots<T> {
    /// Adds an empty slot at the end; returns its index.
    pub(super) fn push_empty(&mut self) -> usize {
        if self.len == self.chunks.len() * CHUNK {
            self.chunks.push((0..CHUNK).map(|_| None).collect());
        }
        self.len += 1;
        self.len - 1
    }

    /// Every slot, in order of index.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Option<T>> {
        self.chunks.iter().flat_map(|c| c.iter()).take(self.len)
    }
}

impl<T> Index<usize> for Slots<T> {
    type Output = Option<T>;

    #[inline]
    fn index(&self, slot: usize) -> &Option<T> {
        debug_assert!(slot < self.len);
        &self.chunks[slot / CHUNK][slot % CHUNK]
    }
}

impl<T> IndexMut<usize> for Slots<T> {
    #[inline]
    fn index_mut(&mut self, slot: usize) -> &mut Option<T> {
        debug_assert!(slot < self.len);
        &mut self.chunks[slot / CHUNK][slot % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_their_values_across_chunks() {
        let mut slots = Slots::default();
        for i in 0..2 * CHUNK + 3 {
            let at = slots.push_empty();
            assert_eq!(at, i);
            assert!(slots[at].is_none());
            slots[at] = Some(i);
        }
        slots[CHUNK] = None;
        let seen: Vec<Option<usize>> = slots.iter().copied().collect();
        assert_eq!(seen.len(), 2 * CHUNK + 3);
        assert_eq!(seen[CHUNK - 1], Some(CHUNK - 1));
        assert_eq!(seen[CHUNK], None);
        assert_eq!(seen[2 * CHUNK + 2], Some(2 * CHUNK + 2));
    }
}
