//! In-memory rows per table, alternate-key indexes, and an undo log for transactions.
//!
//! Field values are stored normalised (see [`crate::values`]); a lookup is stored as
//! `{"id": "<guid>", "table": "<logical name>"}` under the lookup column's name.

use std::collections::HashMap;
use std::sync::Arc;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::catalog::{Catalog, Table};
use crate::error::ApiError;

/// One row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Primary key.
    pub id: Uuid,
    /// Creation sequence number (default order of collection reads).
    pub seq: u64,
    /// Row version (the ETag `W/"<version>"`).
    pub version: u64,
    /// Column values by logical name.
    pub fields: Map<String, Value>,
}

impl Record {
    /// The row's ETag.
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    /// The GUID a lookup column points at, if set.
    pub fn lookup(&self, attribute: &str) -> Option<(Uuid, &str)> {
        let v = self.fields.get(attribute)?;
        let id = v.get("id")?.as_str()?.parse().ok()?;
        let table = v.get("table")?.as_str()?;
        Some((id, table))
    }
}

/// A change that can be taken back.
#[derive(Debug, Clone)]
pub enum Undo {
    /// A row was inserted: remove it.
    Inserted {
        /// Table logical name.
        table: String,
        /// Row id.
        id: Uuid,
    },
    /// A row was replaced: put the old one back.
    Replaced {
        /// Table logical name.
        table: String,
        /// Previous row.
        old: Record,
    },
    /// A row was removed: reinsert it.
    Removed {
        /// Table logical name.
        table: String,
        /// Removed row.
        old: Record,
    },
}

#[derive(Debug, Default, Clone)]
struct TableData {
    records: HashMap<Uuid, Record>,
    /// One index per alternate key (same order as `TableConfig::keys`): canonical values → id.
    key_index: Vec<HashMap<String, Uuid>>,
}

/// Everything persisted by `--data FILE`.
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct Snapshot {
    /// Rows per table logical name.
    pub tables: std::collections::BTreeMap<String, Vec<Record>>,
    /// Next sequence number.
    pub next_seq: u64,
    /// Next row version.
    pub next_version: u64,
    /// The rows the configuration had seeded when the file was written (table, id): one of them
    /// the file lacks was deleted since, and stays deleted.
    #[serde(default)]
    pub seeded: Vec<(String, Uuid)>,
}

/// All rows of all tables.
#[derive(Debug)]
pub struct Store {
    catalog: Arc<Catalog>,
    tables: HashMap<String, TableData>,
    next_seq: u64,
    next_version: u64,
    rng: ChaCha8Rng,
    changes: u64,
    /// The rows the configuration seeded (table, id), for [`Snapshot::seeded`].
    seeded: Vec<(String, Uuid)>,
    /// Alternate keys compare accent-insensitively (`_CI_AI`), from the base language.
    pub accent_insensitive: bool,
    /// System jobs (`BulkDelete`), by id; not kept across restarts.
    pub jobs: HashMap<Uuid, crate::webapi::jobs::Job>,
}

impl Store {
    /// An empty store for `catalog`; generated ids are drawn from `seed`.
    pub fn new(catalog: Arc<Catalog>, seed: u64) -> Self {
        let tables = catalog
            .tables
            .iter()
            .map(|t| {
                (
                    t.logical().to_string(),
                    TableData {
                        records: HashMap::new(),
                        key_index: vec![HashMap::new(); t.cfg.keys.len()],
                    },
                )
            })
            .collect();
        Store {
            catalog,
            tables,
            next_seq: 1,
            // Row versions look like Dataverse's (W/"77181173").
            next_version: 1_000_000,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x0005_eed0_f1d5),
            changes: 0,
            seeded: Vec::new(),
            accent_insensitive: true,
            jobs: HashMap::new(),
        }
    }

    /// Compares alternate keys as an environment of base language `lcid` does (see
    /// [`accent_sensitive_language`]). Set before the first row is stored.
    pub fn set_language(&mut self, lcid: u32) {
        self.accent_insensitive = !accent_sensitive_language(lcid);
    }

    /// The catalogue.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Number of changes applied since start (used to decide when to persist).
    pub fn change_count(&self) -> u64 {
        self.changes
    }

    /// A new random (seeded) v4 GUID, never one already in use (after rows are restored from a
    /// data file, the seeded sequence starts over and would repeat their ids).
    pub fn new_id(&mut self) -> Uuid {
        loop {
            let mut bytes = [0u8; 16];
            self.rng.fill_bytes(&mut bytes);
            let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
            if !self.tables.values().any(|t| t.records.contains_key(&id)) {
                return id;
            }
        }
    }

    /// The next row version.
    pub fn bump_version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// The next creation sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Row `id` of `table`.
    pub fn get(&self, table: &str, id: &Uuid) -> Option<&Record> {
        self.tables.get(table)?.records.get(id)
    }

    /// Number of rows in `table` (0 for an unknown table).
    pub fn count(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, |t| t.records.len())
    }

    /// All rows of `table`, in creation order.
    pub fn rows(&self, table: &str) -> Vec<&Record> {
        let mut rows: Vec<&Record> = self
            .tables
            .get(table)
            .map(|t| t.records.values().collect())
            .unwrap_or_default();
        rows.sort_by_key(|r| r.seq);
        rows
    }

    /// The row whose alternate key `key_index` has `values` (in key attribute order).
    pub fn find_by_key(&self, table: &Table, key_index: usize, values: &[Value]) -> Option<Uuid> {
        let canonical = canonical_key(values.iter(), self.accent_insensitive)?;
        self.tables
            .get(table.logical())?
            .key_index
            .get(key_index)?
            .get(&canonical)
            .copied()
    }

    fn key_strings(
        accent_insensitive: bool,
        table: &Table,
        fields: &Map<String, Value>,
    ) -> Vec<Option<String>> {
        table
            .cfg
            .keys
            .iter()
            .map(|k| {
                canonical_key(
                    k.attributes
                        .iter()
                        .map(|a| fields.get(a).unwrap_or(&Value::Null)),
                    accent_insensitive,
                )
            })
            .collect()
    }

    fn check_keys(&self, table: &Table, record: &Record) -> Result<Vec<Option<String>>, ApiError> {
        let keys = Self::key_strings(self.accent_insensitive, table, &record.fields);
        let data = &self.tables[table.logical()];
        for (i, k) in keys.iter().enumerate() {
            if let Some(k) = k
                && let Some(other) = data.key_index[i].get(k)
                && *other != record.id
            {
                let key = &table.cfg.keys[i];
                return Err(duplicate_key_error(table, &key.name, &key.attributes));
            }
        }
        Ok(keys)
    }

    /// Inserts a new row; a duplicate primary or alternate key is refused.
    pub fn insert(&mut self, table: &Table, record: Record) -> Result<Undo, ApiError> {
        if self.tables[table.logical()]
            .records
            .contains_key(&record.id)
        {
            // Message from bulk-operations.md ("Cannot insert duplicate key."); code 0x80040237
            // (DuplicateRecord) and status 412 are UNVERIFIED (PROTOCOL.md §2).
            return Err(ApiError::new(
                412,
                "0x80040237",
                "Cannot insert duplicate key.",
            ));
        }
        let keys = self.check_keys(table, &record)?;
        let data = self.tables.get_mut(table.logical()).expect("table exists");
        for (i, k) in keys.into_iter().enumerate() {
            if let Some(k) = k {
                data.key_index[i].insert(k, record.id);
            }
        }
        let id = record.id;
        data.records.insert(id, record);
        self.changes += 1;
        Ok(Undo::Inserted {
            table: table.logical().to_string(),
            id,
        })
    }

    /// Replaces an existing row (same id); an alternate-key clash is refused.
    pub fn replace(&mut self, table: &Table, record: Record) -> Result<Undo, ApiError> {
        let ai = self.accent_insensitive;
        let keys = self.check_keys(table, &record)?;
        let data = self.tables.get_mut(table.logical()).expect("table exists");
        let Some(old) = data.records.remove(&record.id) else {
            return Err(ApiError::new(
                404,
                "0x80040217",
                format!("{} With Id = {} Does Not Exist", table.logical(), record.id),
            ));
        };
        for (i, k) in Self::key_strings(ai, table, &old.fields)
            .into_iter()
            .enumerate()
        {
            if let Some(k) = k {
                data.key_index[i].remove(&k);
            }
        }
        for (i, k) in keys.into_iter().enumerate() {
            if let Some(k) = k {
                data.key_index[i].insert(k, record.id);
            }
        }
        data.records.insert(record.id, record);
        self.changes += 1;
        Ok(Undo::Replaced {
            table: table.logical().to_string(),
            old,
        })
    }

    /// Removes a row.
    pub fn remove(&mut self, table: &Table, id: &Uuid) -> Option<Undo> {
        let ai = self.accent_insensitive;
        let data = self.tables.get_mut(table.logical())?;
        let old = data.records.remove(id)?;
        for (i, k) in Self::key_strings(ai, table, &old.fields)
            .into_iter()
            .enumerate()
        {
            if let Some(k) = k {
                data.key_index[i].remove(&k);
            }
        }
        self.changes += 1;
        Some(Undo::Removed {
            table: table.logical().to_string(),
            old,
        })
    }

    /// Takes back `undos` (applied in reverse order).
    pub fn rollback(&mut self, undos: Vec<Undo>) {
        let catalog = self.catalog.clone();
        for undo in undos.into_iter().rev() {
            match undo {
                Undo::Inserted { table, id } => {
                    if let Some(t) = catalog.table(&table) {
                        self.remove(t, &id);
                    }
                }
                Undo::Replaced { table, old } => {
                    if let Some(t) = catalog.table(&table) {
                        let _ = self.replace(t, old);
                    }
                }
                Undo::Removed { table, old } => {
                    if let Some(t) = catalog.table(&table) {
                        let _ = self.insert(t, old);
                    }
                }
            }
        }
    }

    /// A copy of every row, for persistence.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            tables: self
                .tables
                .keys()
                .map(|t| (t.clone(), self.rows(t).into_iter().cloned().collect()))
                .collect(),
            next_seq: self.next_seq,
            next_version: self.next_version,
            seeded: self.seeded.clone(),
        }
    }

    /// Inserts a row the configuration declares (see [`Snapshot::seeded`]).
    pub fn seed(&mut self, table: &Table, record: Record) -> Result<(), ApiError> {
        let id = record.id;
        self.insert(table, record)?;
        self.seeded.push((table.logical().to_string(), id));
        self.changes = 0;
        Ok(())
    }

    /// Loads rows from a snapshot over the rows the configuration seeded: a row the file has is
    /// the file's version; a seeded row the file lacks but had seeded was deleted since and is
    /// removed; a row the configuration seeds since the file was written stays. Rows of tables
    /// no longer in the catalogue are dropped.
    pub fn restore(&mut self, snapshot: Snapshot) -> Result<(), String> {
        let catalog = self.catalog.clone();
        for (name, id) in &snapshot.seeded {
            let kept = snapshot
                .tables
                .get(name)
                .is_some_and(|rows| rows.iter().any(|r| &r.id == id));
            if let (false, Some(table)) = (kept, catalog.table(name)) {
                self.remove(table, id);
            }
        }
        for (name, rows) in snapshot.tables {
            let Some(table) = catalog.table(&name) else {
                tracing::warn!(table = %name, "data file has rows of a table not in the catalogue; dropped");
                continue;
            };
            for row in rows {
                let done = if self.get(&name, &row.id).is_some() {
                    self.replace(table, row)
                } else {
                    self.insert(table, row)
                };
                done.map_err(|e| {
                    format!(
                        "data file: table '{name}': {} (a row of the configuration's [[records]] may take a key the file's rows hold)",
                        e.message
                    )
                })?;
            }
        }
        self.next_seq = self.next_seq.max(snapshot.next_seq);
        self.next_version = self.next_version.max(snapshot.next_version);
        self.changes = 0;
        Ok(())
    }
}

/// True for the base languages whose collation Microsoft's "Dataverse language collations" page
/// (learn.microsoft.com/power-platform/admin/language-collations) lists as `_CI_AS`; the others
/// are `_CI_AI`.
pub fn accent_sensitive_language(lcid: u32) -> bool {
    [
        1035, 1048, 1050, 1051, 1053, 1054, 1057, 1058, 1060, 1061, 1062,
    ]
    .contains(&lcid)
}

/// A string as SQL Server compares it for equality under the environment's collation:
/// trailing spaces dropped (ANSI padding), lower case, and without accents under `_CI_AI`.
pub fn fold_text(s: &str, accent_insensitive: bool) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let lower = s.trim_end_matches(' ').to_lowercase();
    if accent_insensitive {
        lower
            .nfd()
            .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
            .collect()
    } else {
        lower.nfc().collect()
    }
}

/// Canonical text of key values; `None` when a value is null (such rows are not indexed).
/// Strings compare as SQL Server compares them under the environment's collation: case-
/// insensitively, trailing spaces ignored (ANSI padding), and accents ignored under `_CI_AI`.
fn canonical_key<'a>(
    values: impl Iterator<Item = &'a Value>,
    accent_insensitive: bool,
) -> Option<String> {
    let mut out = String::new();
    for v in values {
        match v {
            Value::Null => return None,
            Value::String(s) => {
                let folded = fold_text(s, accent_insensitive);
                out.push_str(&serde_json::to_string(&folded).unwrap_or_default());
            }
            Value::Object(o) => out.push_str(o.get("id").and_then(Value::as_str).unwrap_or("")),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => {
                    out.push_str(&format!("{}", f as i64))
                }
                _ => out.push_str(&n.to_string()),
            },
            other => out.push_str(&other.to_string()),
        }
        out.push('\u{1f}');
    }
    Some(out)
}

/// The duplicate alternate-key error. Message and code 0x80060892 (DuplicateRecordEntityKey)
/// recalled from Dataverse responses; UNVERIFIED in PROTOCOL.md's sources.
pub fn duplicate_key_error(_table: &Table, key_name: &str, attributes: &[String]) -> ApiError {
    ApiError::new(
        412,
        "0x80060892",
        format!(
            "A record that has the attribute values {} already exists. The entity key {} requires that this set of attributes contains unique values. Select unique values and try again.",
            attributes.join(", "),
            key_name
        ),
    )
}
