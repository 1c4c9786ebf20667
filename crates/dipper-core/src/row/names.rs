//! Byte-string lookup tables for the fast decoding path: feature names and category labels, looked up straight
//! from the event's bytes, without allocating and without SipHash.
//!
//! Open addressing with linear probing over a power-of-two slot array at most half full; the hash is FxHash-like
//! over 8-byte words, and every hit is confirmed by comparing the full key, so collisions only cost time.

/// Maps byte strings to values. Built once per decoder; lookups never allocate.
#[derive(Debug, Clone)]
pub(super) struct NameTable<V> {
    /// 0 for an empty slot, else the entry's index plus one.
    slots: Box<[u32]>,
    /// 64 minus log2 of the number of slots: the hash's top bits pick the slot.
    shift: u32,
    /// Entry `i`'s key is `bytes[starts[i]..starts[i + 1]]`.
    starts: Vec<usize>,
    bytes: Vec<u8>,
    values: Vec<V>,
}

const K: u64 = 0x517c_c1b7_2722_0a95;

#[inline]
fn hash(key: &[u8]) -> u64 {
    let mut h = (key.len() as u64).wrapping_mul(K);
    let mut words = key.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    h
}

/// Whether two byte strings are equal: inline, by 8-byte words, for the short strings of keys (a call to
/// `memcmp` costs more than the comparison).
#[inline]
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut wa, mut wb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut wa).zip(&mut wb) {
        if x != y {
            return false;
        }
    }
    let (ra, rb) = (wa.remainder(), wb.remainder());
    ra.iter().zip(rb).all(|(x, y)| x == y)
}

impl<V: Copy> NameTable<V> {
    /// A table of the given keys; when a key is given twice, the later value wins (as when collecting a
    /// `HashMap`), and the key keeps its first entry index.
    pub(super) fn new<'a>(entries: impl IntoIterator<Item = (&'a str, V)>) -> Self {
        let entries: Vec<(&str, V)> = entries.into_iter().collect();
        let n_slots = (2 * entries.len()).next_power_of_two().max(4);
        let mut table = NameTable {
            slots: vec![0; n_slots].into_boxed_slice(),
            shift: 64 - n_slots.trailing_zeros(),
            starts: vec![0],
            bytes: Vec::new(),
            values: Vec::with_capacity(entries.len()),
        };
        for (key, value) in entries {
            match table.find(key.as_bytes()) {
                Ok(entry) => table.values[entry] = value,
                Err(slot) => {
                    table.bytes.extend_from_slice(key.as_bytes());
                    table.starts.push(table.bytes.len());
                    table.values.push(value);
                    table.slots[slot] =
                        u32::try_from(table.values.len()).expect("fewer than 2^32 names");
                }
            }
        }
        table
    }

    /// The key of entry `i` (entries are numbered in first-insertion order).
    #[inline]
    pub(super) fn key(&self, i: usize) -> &[u8] {
        &self.bytes[self.starts[i]..self.starts[i + 1]]
    }

    /// The value of entry `i`.
    #[inline]
    pub(super) fn value(&self, i: usize) -> V {
        self.values[i]
    }

    #[inline]
    pub(super) fn get(&self, key: &[u8]) -> Option<V> {
        self.find(key).ok().map(|entry| self.values[entry])
    }

    /// `Ok(entry index)` when the key is present, else `Err(the empty slot where it would go)`.
    #[inline]
    fn find(&self, key: &[u8]) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut slot = (hash(key) >> self.shift) as usize;
        loop {
            match self.slots[slot] {
                0 => return Err(slot),
                s => {
                    let entry = s as usize - 1;
                    if same(self.key(entry), key) {
                        return Ok(entry);
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_key_and_nothing_else() {
        let names: Vec<String> = (0..300)
            .map(|i| format!("feature_with_a_long_shared_prefix_{i}_and_suffix"))
            .chain((0..300).map(|i| format!("x{i}")))
            .chain(["", "é", "a\"b"].map(String::from))
            .collect();
        let t = NameTable::new(names.iter().enumerate().map(|(i, n)| (n.as_str(), i)));
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.get(n.as_bytes()), Some(i), "{n}");
            assert_eq!(t.key(i), n.as_bytes());
            assert_eq!(t.value(i), i);
        }
        for miss in [
            "x300",
            "x",
            "feature_with_a_long_shared_prefix_1_and_suffi",
            "e",
            "\0",
        ] {
            assert_eq!(t.get(miss.as_bytes()), None, "{miss}");
        }
    }

    #[test]
    fn later_duplicates_win_like_a_hash_map() {
        let t = NameTable::new([("x", 0.0), ("y", 1.0), ("x", 2.0)]);
        assert_eq!(t.key(1), b"y");
        assert_eq!(t.get(b"x"), Some(2.0));
        assert_eq!(t.get(b"y"), Some(1.0));
        let empty = NameTable::<f64>::new([]);
        assert_eq!(empty.get(b""), None);
    }
}
