//! The ids dvload gives the records it creates: chosen before the request is sent, so that a
//! lost answer is settled by reading that id (not by the record's clock or creator), a resend
//! after a lost answer or a kill cannot make a second record, and `undo` deletes exactly them.
//!
//! Dataverse accepts the primary key value in the body of a create ("you can specify the
//! primary key value when you create a record", learn.microsoft.com/power-apps/developer/
//! data-platform/webapi/create-entity-web-api) and notes that the ids it generates itself are
//! sequential for index performance. SQL Server orders `uniqueidentifier` values by their last
//! six bytes first, then bytes 8–9, 6–7, 4–5 and 0–3 ("Comparing GUID and uniqueidentifier
//! values", learn.microsoft.com/sql/connect/ado-net/sql/compare-guid-uniqueidentifier-values),
//! so an id is laid out, in its string form `AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE`:
//!
//! - `EEEEEEEE` the chain's start (seconds since 2020-01-01), then `EEEE` the row number's bits
//!   16–31 and `DDDD` its bits 0–15: within a resume chain the ids of a mapping ascend with the
//!   rows, and a later chain's sort after an earlier one's, so inserts append to the index
//!   instead of splitting its pages;
//! - `CCCC` the mapping's position in the job, `BBBB` the row number's bits 32–47;
//! - `AAAAAAAA` four bytes of the chain's random seed: two chains started in the same second
//!   differ there.
//!
//! UNVERIFIED against the live service: that a create by alternate key (`PATCH` + `If-None-Match:
//! *`) accepts the primary id in its body as a `POST` does; the emulator does.
//!
//! An id is a pure function of (seed, chain start, mapping, row): a resume recomputes the id an
//! interrupted run gave a row, so the seed and start are recorded in the ledger before the
//! chain's first write, which journals every id before its request is sent.

use uuid::Uuid;

/// Seconds from the Unix epoch to 2020-01-01T00:00:00Z.
const EPOCH_2020: i64 = 1_577_836_800;

/// What a resume chain's ids are made of; recorded in the ledger before its first write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainIds {
    /// Random bytes drawn when the chain began.
    pub seed: [u8; 4],
    /// When the chain began, in seconds since 2020-01-01.
    pub start: u32,
}

impl ChainIds {
    /// A new chain's ids, starting at `now` (Unix seconds).
    pub fn new(now: i64) -> ChainIds {
        ChainIds {
            seed: rand::random(),
            start: u32::try_from(now - EPOCH_2020).unwrap_or(0),
        }
    }

    /// The text the ledger keeps (`seed-start`, hex).
    pub fn encode(&self) -> String {
        format!("{:08x}-{:08x}", u32::from_be_bytes(self.seed), self.start)
    }

    /// Reads [`ChainIds::encode`]'s text.
    pub fn decode(text: &str) -> Option<ChainIds> {
        let (seed, start) = text.split_once('-')?;
        Some(ChainIds {
            seed: u32::from_str_radix(seed, 16).ok()?.to_be_bytes(),
            start: u32::from_str_radix(start, 16).ok()?,
        })
    }

    /// The id of row `row` of mapping `seq`.
    pub fn id(&self, seq: usize, row: u64) -> Uuid {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.seed);
        b[4..6].copy_from_slice(&((row >> 32) as u16).to_be_bytes());
        b[6..8].copy_from_slice(&(seq as u16).to_be_bytes());
        b[8..10].copy_from_slice(&(row as u16).to_be_bytes());
        b[10..14].copy_from_slice(&self.start.to_be_bytes());
        b[14..16].copy_from_slice(&((row >> 16) as u16).to_be_bytes());
        Uuid::from_bytes(b)
    }
}

/// The order SQL Server gives `uniqueidentifier` values: bytes 10–15, then 8–9, 6–7 (as stored,
/// little-endian), 4–5, 0–3. For tests and the benchmark of the layout.
#[cfg(test)]
pub fn sql_server_order(id: &Uuid) -> [u8; 16] {
    let b = id.as_bytes();
    // The first three groups are stored little-endian (Data1, Data2, Data3 of a .NET Guid).
    let stored = [
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    ];
    let order = [10, 11, 12, 13, 14, 15, 8, 9, 6, 7, 4, 5, 0, 1, 2, 3];
    order.map(|i| stored[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_ascend_in_sql_server_order_within_a_chain_and_across_chains() {
        let a = ChainIds {
            seed: [9, 9, 9, 9],
            start: 1000,
        };
        let mut rows: Vec<u64> = (1..200_000u64).step_by(97).collect();
        // Ascending up to 2^32 rows per mapping (beyond, ids stay unique but wrap).
        rows.extend([65_535, 65_536, 65_537, (1 << 32) - 1]);
        rows.sort_unstable();
        for pair in rows.windows(2) {
            let (before, after) = (a.id(0, pair[0]), a.id(0, pair[1]));
            assert!(
                sql_server_order(&after) > sql_server_order(&before),
                "row {} after {}",
                pair[1],
                pair[0]
            );
        }
        let later = ChainIds {
            seed: [0, 0, 0, 0],
            start: 1001,
        };
        assert!(sql_server_order(&later.id(0, 1)) > sql_server_order(&a.id(0, 1 << 30)));
    }

    #[test]
    fn ids_are_unique_and_recomputed_alike() {
        let a = ChainIds::new(1_800_000_000);
        let b = ChainIds {
            seed: [1, 2, 3, 4],
            ..a
        };
        let mut seen = std::collections::HashSet::new();
        for seq in 0..3 {
            for row in 1..3000 {
                assert!(seen.insert(a.id(seq, row)));
                assert!(seen.insert(b.id(seq, row)), "another seed, the same second");
            }
        }
        assert!(
            !seen.insert(a.id(1, 42)),
            "a resume gives the row the same id"
        );
        assert_eq!(ChainIds::decode(&a.encode()), Some(a));
        assert_eq!(ChainIds::decode("zz"), None);
    }
}

/// What the writer needs to give one mapping's creates their ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordIds {
    /// The resume chain's ids.
    pub chain: ChainIds,
    /// The mapping's position in the job.
    pub seq: usize,
    /// The target table's primary id column (`accountid`), from its metadata.
    pub primary_id: String,
}

impl RecordIds {
    /// The id row `row`'s create gets, and its body with the id in it, when `op` is a create
    /// dvload gives an id to: a `POST`, or a create by alternate key (`If-None-Match: *`). A create
    /// addressed by its primary key, or whose body already holds the primary id (ids carried
    /// from the source), keeps the id it has: `None`.
    pub fn give(&self, op: &crate::odata::Operation) -> Option<(Uuid, String)> {
        use crate::odata::{Method, Precondition};
        let create = (op.method == Method::Post && op.key.is_empty())
            || (op.precondition == Precondition::IfNoneMatchAny && op.key.contains('='));
        let body = op.body.as_deref()?;
        let member = format!("\"{}\":", self.primary_id);
        if !create || !body.starts_with('{') || body.contains(&member) {
            return None;
        }
        let id = self.chain.id(self.seq, op.row.row);
        let rest = &body[1..];
        let sep = if rest.trim_start().starts_with('}') {
            ""
        } else {
            ","
        };
        Some((id, format!("{{{member}\"{id}\"{sep}{rest}")))
    }
}

/// `body` without the id [`RecordIds::give`] put in it: the payload as the mapping made it,
/// which is what `--changed-only` compares (the id is the chain's, not the row's content).
pub fn without_id(body: &str, id: Uuid) -> std::borrow::Cow<'_, str> {
    let value = format!("\"{id}\"");
    match body.find(&value) {
        Some(at) if body.starts_with("{\"") && !body[1..at].contains(',') => {
            let rest = &body[at + value.len()..];
            let rest = rest.strip_prefix(',').unwrap_or(rest);
            std::borrow::Cow::Owned(format!("{{{rest}"))
        }
        _ => std::borrow::Cow::Borrowed(body),
    }
}

#[cfg(test)]
mod give_tests {
    use super::*;
    use crate::odata::{Method, Operation, Precondition};
    use crate::source::RowPos;

    fn op(method: Method, precondition: Precondition, key: &str, body: &str) -> Operation {
        Operation {
            row: RowPos { row: 7, line: 8 },
            method,
            url: "accounts".into(),
            precondition,
            body: Some(body.into()),
            key: key.into(),
            lookups: Vec::new(),
        }
    }

    #[test]
    fn creates_get_an_id_that_the_content_hash_leaves_out() {
        let ids = RecordIds {
            chain: ChainIds {
                seed: [1, 2, 3, 4],
                start: 5,
            },
            seq: 0,
            primary_id: "accountid".into(),
        };
        let post = op(Method::Post, Precondition::None, "", "{\"name\":\"A\"}");
        let (id, body) = ids.give(&post).unwrap();
        assert_eq!(body, format!("{{\"accountid\":\"{id}\",\"name\":\"A\"}}"));
        assert_eq!(without_id(&body, id), "{\"name\":\"A\"}");
        let empty = op(Method::Post, Precondition::None, "", "{}");
        let (id, body) = ids.give(&empty).unwrap();
        assert_eq!(body, format!("{{\"accountid\":\"{id}\"}}"));
        assert_eq!(without_id(&body, id), "{}");
        let by_key = op(
            Method::Patch,
            Precondition::IfNoneMatchAny,
            "n='A'",
            "{\"x\":1}",
        );
        assert!(ids.give(&by_key).is_some());
        // Not creates, addressed by their primary key, or carrying their own id: untouched.
        for other in [
            op(Method::Patch, Precondition::None, "n='A'", "{\"x\":1}"),
            op(
                Method::Patch,
                Precondition::IfNoneMatchAny,
                "0b7e0a52-7c1e-4f0e-9d55-0d1c8a6f3a11",
                "{}",
            ),
            op(
                Method::Post,
                Precondition::None,
                "",
                "{\"accountid\":\"0b7e0a52-7c1e-4f0e-9d55-0d1c8a6f3a11\"}",
            ),
        ] {
            assert_eq!(ids.give(&other), None, "{other:?}");
        }
    }
}
