//! Batching: where one `$batch` request ends and the next begins, for every path that builds
//! requests (the writer's first and deferred passes, the dry run, `undo`), so that a dry run
//! shows the requests a run sends. A request ends at `size` operations and, outside an
//! `--atomic` change set, before an operation on a key it already holds: a later row of a key is
//! sent only once the earlier one is answered (see `writer::order`), so they never share a
//! request. (An `--atomic` change set is applied in order, all or nothing, so it may hold a key
//! twice.)

use crate::keys::IdSet;

/// Counts the operations of the request being filled, and says where it ends.
#[derive(Debug)]
pub struct Chunker {
    size: usize,
    atomic: bool,
    len: usize,
    keys: IdSet,
}

impl Chunker {
    /// Requests of at most `size` operations (at least one); `atomic`: one change set each.
    pub fn new(size: usize, atomic: bool) -> Chunker {
        Chunker {
            size: size.max(1),
            atomic,
            len: 0,
            keys: IdSet::default(),
        }
    }

    /// True when the request being filled must be sent before an operation on key `key_id`
    /// joins it: it already holds that key, outside a change set.
    pub fn ends_before(&self, key_id: Option<u64>) -> bool {
        self.len > 0 && !self.atomic && key_id.is_some_and(|id| self.keys.contains(&id))
    }

    /// Counts an operation on key `key_id` in; true when the request is then full.
    pub fn add(&mut self, key_id: Option<u64>) -> bool {
        if let Some(id) = key_id {
            self.keys.insert(id);
        }
        self.len += 1;
        self.len >= self.size
    }

    /// The request was sent (or set aside): the next one starts empty.
    pub fn next(&mut self) {
        self.len = 0;
        self.keys.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `keys` through a chunker and returns the requests, as lists of positions.
    fn requests(size: usize, atomic: bool, keys: &[Option<u64>]) -> Vec<Vec<usize>> {
        let mut chunk = Chunker::new(size, atomic);
        let mut out = vec![Vec::new()];
        for (i, &key) in keys.iter().enumerate() {
            if chunk.ends_before(key) {
                out.push(Vec::new());
                chunk.next();
            }
            let full = chunk.add(key);
            out.last_mut().unwrap().push(i);
            if full {
                out.push(Vec::new());
                chunk.next();
            }
        }
        out.retain(|r| !r.is_empty());
        out
    }

    #[test]
    fn a_request_ends_at_its_size() {
        let keys = [Some(1), Some(2), Some(3), None, Some(5)];
        assert_eq!(
            requests(2, false, &keys),
            vec![vec![0, 1], vec![2, 3], vec![4]]
        );
        assert_eq!(requests(0, false, &keys[..2]), vec![vec![0], vec![1]]);
    }

    #[test]
    fn a_key_twice_ends_the_request_outside_a_change_set_only() {
        let keys = [Some(1), Some(2), Some(1), None, None, Some(2)];
        assert_eq!(
            requests(10, false, &keys),
            vec![vec![0, 1], vec![2, 3, 4, 5]]
        );
        assert_eq!(requests(10, true, &keys), vec![vec![0, 1, 2, 3, 4, 5]]);
        // Operations without a key never end a request.
        assert_eq!(requests(10, false, &[None, None]), vec![vec![0, 1]]);
    }
}
