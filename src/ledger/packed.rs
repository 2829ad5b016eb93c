//! The ledger's packed forms: spans of consecutive rows with the same plain outcome (one SQLite
//! row for many source rows), and the `--changed-only` content index kept as sorted BLOBs.
//!
//! Both exist for speed: one SQLite insert costs about 8,000 instructions, more than reading,
//! mapping and encoding a row together, and a B-tree keyed by record keys that arrive in no
//! particular order rewrites a page per row at every commit.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use super::db::RowOutcome;
use crate::keys::{Collation, KeyIdHasher};
use crate::outcome::RowState;

/// Bytes per row in a span's `hashes` BLOB: the content hash (XXH3-128).
pub const HASH_BYTES: usize = 16;
/// Bytes per entry of a content index BLOB: key identity (u64 little-endian), then content hash.
pub const ENTRY_BYTES: usize = 8 + HASH_BYTES;

/// The last written content hash per key identity, for one target table.
pub type ContentIndex = HashMap<u64, [u8; 16], BuildHasherDefault<KeyIdHasher>>;

/// Consecutive source rows with the same plain outcome (written without being created, skipped,
/// unchanged), as the `spans` table keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// First source row.
    pub first_row: u64,
    /// Last source row (inclusive).
    pub last_row: u64,
    /// The outcome of every row of the span.
    pub state: RowState,
    /// A JSON array with an element per row: its key (`Operation.key`), or null (skipped, or
    /// no key). The record a plain row wrote is the one its key names (`OData-EntityId` echoes
    /// the key of an update or upsert), so it is not kept again.
    pub keys: String,
    /// Each row's content hash (`HASH_BYTES` each); written spans only.
    pub hashes: Option<Vec<u8>>,
}

/// True when an outcome needs its own `rows` record: a reason (rejected, unsent), or a created
/// record that `undo` may delete. The rest is packed into spans.
pub fn needs_own_row(o: &RowOutcome) -> bool {
    o.created
        || o.error.is_some()
        || !matches!(
            o.state,
            RowState::Written | RowState::Skipped | RowState::Unchanged
        )
}

/// Appends `s` as a JSON string (null when absent or empty).
fn push_json_str(out: &mut String, s: Option<&str>) {
    match s.filter(|s| !s.is_empty()) {
        None => out.push_str("null"),
        // Most keys need no escaping: copy them as they are.
        Some(s) if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        Some(s) => out.push_str(&serde_json::to_string(s).expect("a string serialises")),
    }
}

/// Packs plain outcomes into spans of consecutive rows with the same state.
pub fn spans<'a>(outcomes: impl IntoIterator<Item = &'a RowOutcome>) -> Vec<Span> {
    let mut plain: Vec<&RowOutcome> = outcomes.into_iter().collect();
    plain.sort_by_key(|o| o.row);
    let mut out: Vec<Span> = Vec::new();
    for o in plain {
        // A row recorded twice in one transaction (the writer gives each row one outcome, so
        // this is a defence): the first stays, as spans cannot overlap.
        if out.last().is_some_and(|s| o.row == s.last_row) {
            continue;
        }
        match out.last_mut() {
            Some(s) if s.state == o.state && o.row == s.last_row + 1 => {
                s.last_row = o.row;
                s.keys.push(',');
            }
            _ => {
                if let Some(done) = out.last_mut() {
                    done.keys.push(']');
                }
                out.push(Span {
                    first_row: o.row,
                    last_row: o.row,
                    state: o.state,
                    keys: String::from("["),
                    hashes: (o.state == RowState::Written).then(Vec::new),
                });
            }
        }
        let s = out.last_mut().expect("a span was just pushed or extended");
        push_json_str(&mut s.keys, o.key.as_deref());
        if let Some(hashes) = &mut s.hashes {
            hashes.extend_from_slice(&o.hash.unwrap_or_default());
        }
    }
    if let Some(last) = out.last_mut() {
        last.keys.push(']');
    }
    out
}

/// Each row of a span with its key, from a span's `keys` JSON array, from `first_row` on.
pub fn span_keys(first_row: u64, keys: &str) -> Result<Vec<(u64, Option<String>)>, String> {
    let parsed: Vec<Option<String>> = serde_json::from_str(keys).map_err(|e| {
        format!("the span from row {first_row} does not hold a JSON array of keys: {e}")
    })?;
    Ok(parsed
        .into_iter()
        .enumerate()
        .map(|(i, key)| (first_row + i as u64, key))
        .collect())
}

/// The (row, key identity, hash) of each row of a written span with a key.
pub fn span_contents(
    collation: Collation,
    first_row: u64,
    keys: &str,
    hashes: &[u8],
) -> Result<Vec<(u64, u64, [u8; 16])>, String> {
    Ok(span_keys(first_row, keys)?
        .into_iter()
        .zip(hashes.chunks_exact(HASH_BYTES))
        .filter_map(|((row, key), h)| {
            let key = key?;
            Some((row, collation.key_id(&key), h.try_into().expect("16 bytes")))
        })
        .collect())
}

/// The content index part a key identity belongs to (its top 4 bits): the index is kept as 16
/// BLOBs so that none nears SQLite's 1 GB limit (44 million keys per part).
pub fn part_of(id: u64) -> i64 {
    (id >> 60) as i64
}

/// Adds the entries of one content index BLOB to `index`; an error when its length is not a
/// multiple of the entry size (a damaged ledger).
pub fn decode_part(data: &[u8], index: &mut ContentIndex) -> Result<(), String> {
    if data.len() % ENTRY_BYTES != 0 {
        return Err(format!(
            "a content index part of {} bytes is not a whole number of {ENTRY_BYTES}-byte entries",
            data.len()
        ));
    }
    for e in data.chunks_exact(ENTRY_BYTES) {
        let id = u64::from_le_bytes(e[..8].try_into().expect("8 bytes"));
        index.insert(id, e[8..].try_into().expect("16 bytes"));
    }
    Ok(())
}

/// The index as BLOBs by part, each sorted by key identity; empty parts are left out.
pub fn encode_parts(index: &ContentIndex) -> Vec<(i64, Vec<u8>)> {
    let mut entries: Vec<(&u64, &[u8; 16])> = index.iter().collect();
    entries.sort_unstable_by_key(|(id, _)| **id);
    let mut parts: Vec<(i64, Vec<u8>)> = Vec::new();
    for (id, hash) in entries {
        let part = part_of(*id);
        if parts.last().is_none_or(|(p, _)| *p != part) {
            parts.push((part, Vec::new()));
        }
        let data = &mut parts.last_mut().expect("pushed above").1;
        data.extend_from_slice(&id.to_le_bytes());
        data.extend_from_slice(hash);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(row: u64, state: RowState, key: Option<&str>) -> RowOutcome {
        RowOutcome {
            row,
            line: row + 1,
            state,
            key: key.map(str::to_string),
            created: false,
            record_url: None,
            error: None,
            hash: (state == RowState::Written).then_some([row as u8; 16]),
            fingerprint: None,
        }
    }

    #[test]
    fn consecutive_rows_with_one_outcome_share_a_span_whatever_order_they_came_in() {
        let quoted = outcome(2, RowState::Written, Some("n='\"B\"'"));
        let outcomes = [
            outcome(3, RowState::Written, Some("k3")),
            outcome(1, RowState::Written, Some("k1")),
            quoted,
            outcome(4, RowState::Skipped, None),
            outcome(5, RowState::Written, Some("k5")),
            outcome(7, RowState::Written, Some("k7")),
            outcome(8, RowState::Unchanged, Some("k8")),
        ];
        let s = spans(&outcomes);
        let bounds: Vec<(u64, u64, RowState)> = s
            .iter()
            .map(|s| (s.first_row, s.last_row, s.state))
            .collect();
        assert_eq!(
            bounds,
            [
                (1, 3, RowState::Written),
                (4, 4, RowState::Skipped),
                (5, 5, RowState::Written),
                (7, 7, RowState::Written),
                (8, 8, RowState::Unchanged),
            ]
        );
        let first = &s[0];
        let keys = span_keys(1, &first.keys).unwrap();
        assert_eq!(
            keys,
            [
                (1, Some("k1".into())),
                (2, Some("n='\"B\"'".into())),
                (3, Some("k3".into()))
            ],
            "quotes survive the JSON"
        );
        let contents = span_contents(
            Collation::default(),
            1,
            &first.keys,
            first.hashes.as_deref().unwrap(),
        )
        .unwrap();
        assert_eq!(contents[2], (3, Collation::default().key_id("k3"), [3; 16]));
        assert_eq!(
            (s[1].keys.as_str(), s[1].hashes.as_ref()),
            ("[null]", None),
            "skipped"
        );
        assert!(s[4].hashes.is_none(), "unchanged: no new hash");
        assert_eq!(span_keys(8, &s[4].keys).unwrap(), [(8, Some("k8".into()))]);
        let err = span_keys(9, "[\"k\"").unwrap_err();
        assert!(err.contains("from row 9"), "{err}");
    }

    #[test]
    fn a_row_recorded_twice_keeps_its_first_outcome_and_spans_never_overlap() {
        let outcomes = [
            outcome(1, RowState::Written, Some("k1")),
            outcome(2, RowState::Written, Some("k2")),
            outcome(2, RowState::Skipped, None),
            outcome(3, RowState::Written, Some("k3")),
        ];
        let s = spans(&outcomes);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].first_row, s[0].last_row), (1, 3));
        assert_eq!(span_keys(1, &s[0].keys).unwrap().len(), 3);
        assert_eq!(s[0].hashes.as_ref().unwrap().len(), 3 * HASH_BYTES);
    }

    #[test]
    fn rows_with_a_reason_or_a_created_record_keep_their_own_record() {
        let plain = outcome(1, RowState::Written, Some("k"));
        assert!(!needs_own_row(&plain));
        let created = RowOutcome {
            created: true,
            record_url: Some("accounts(k)".into()),
            ..plain.clone()
        };
        assert!(needs_own_row(&created));
        let rejected = RowOutcome {
            state: RowState::Rejected,
            error: Some("bad".into()),
            ..plain.clone()
        };
        assert!(needs_own_row(&rejected));
        assert!(needs_own_row(&RowOutcome {
            state: RowState::Unsent,
            ..plain
        }));
    }

    #[test]
    fn the_content_index_round_trips_through_sorted_parts() {
        let index: ContentIndex = (0..1000u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), [(i % 251) as u8; 16]))
            .collect();
        let parts = encode_parts(&index);
        assert!(parts.len() > 1 && parts.len() <= 16);
        let mut back = ContentIndex::default();
        for (part, data) in &parts {
            let ids: Vec<u64> = data
                .chunks_exact(ENTRY_BYTES)
                .map(|e| u64::from_le_bytes(e[..8].try_into().unwrap()))
                .collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted");
            assert!(ids.iter().all(|id| part_of(*id) == *part));
            decode_part(data, &mut back).unwrap();
        }
        assert_eq!(back, index);
        let err = decode_part(&[0; 25], &mut back).unwrap_err();
        assert!(err.contains("25 bytes"), "{err}");
    }
}
