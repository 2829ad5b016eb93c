//! The ledger's schema and its migrations from earlier versions.

use std::collections::HashMap;

use rusqlite::Connection;

use super::content::write_content;
use crate::keys::Collation;
use crate::ledger::packed::ContentIndex;

/// The ledger's schema (also in the README). Version 2: plain outcomes packed into `spans`, the
/// content hashes kept as a sorted index (version 1 had one `rows` record per row and a `content`
/// record per key; [`Ledger::open`] migrates it). Version 3 adds `run_clock` (a version 2 ledger
/// gets it by running the schema again: every statement is `IF NOT EXISTS`).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
  id           INTEGER PRIMARY KEY,           -- the run id shown by `dvload runs`
  job          TEXT NOT NULL,                 -- the mapping files of the run, one per line
  chain        INTEGER NOT NULL,              -- id of the first run of a resume chain (itself if none)
  resumed_from INTEGER,                       -- the interrupted run this one continued
  changed_only INTEGER NOT NULL DEFAULT 0,    -- 1 with --changed-only
  started_at   TEXT NOT NULL,                 -- RFC 3339 UTC
  ended_at     TEXT,                          -- NULL: still running, or killed
  exit_code    INTEGER                        -- NULL: still running, or killed
);
CREATE TABLE IF NOT EXISTS run_jobs (
  run_id       INTEGER NOT NULL REFERENCES runs(id),
  seq          INTEGER NOT NULL,              -- position of the mapping in the run (0-based)
  mapping      TEXT NOT NULL,
  mapping_hash TEXT NOT NULL,                 -- SHA-256 of the mapping file
  source       TEXT NOT NULL,
  source_size  INTEGER NOT NULL,
  source_hash  TEXT NOT NULL,                 -- SHA-256 of the source file
  entity_set   TEXT NOT NULL,
  operation    TEXT NOT NULL,
  read         INTEGER NOT NULL DEFAULT 0,
  written      INTEGER NOT NULL DEFAULT 0,
  rejected     INTEGER NOT NULL DEFAULT 0,
  skipped      INTEGER NOT NULL DEFAULT 0,
  unchanged    INTEGER NOT NULL DEFAULT 0,
  passed_over  INTEGER NOT NULL DEFAULT 0,    -- rows done by earlier runs of the chain (resume)
  PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS rows (             -- rows that need their own record: rejected, unsent, created
  run_id     INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  row        INTEGER NOT NULL,                -- source row number (CSV data row, JSON element, JSONL record)
  line       INTEGER NOT NULL,                -- physical line it starts on
  outcome    TEXT NOT NULL,                   -- written | rejected | skipped | unchanged | unsent
  key        TEXT,                            -- Operation.key: the target record's identity
  created    INTEGER NOT NULL DEFAULT 0,      -- 1: a create operation (POST, or PATCH with If-None-Match)
  record_url TEXT,                            -- what undo deletes: entity_set(key) or entity_set(guid)
  error      TEXT,                            -- the reason, for rejected and unsent rows
  hash       BLOB,                            -- written: XXH3-128 of (method, url, body)
  fingerprint BLOB,                           -- version 8, rejected: XXH3-128 of (reason, row content),
                                              -- to tell a reject an earlier run had from a new one
  PRIMARY KEY (run_id, seq, row)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rows_fingerprint ON rows (fingerprint) WHERE fingerprint IS NOT NULL;
CREATE TABLE IF NOT EXISTS spans (            -- the other rows: consecutive rows with one outcome
  run_id     INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  first_row  INTEGER NOT NULL,
  last_row   INTEGER NOT NULL,                -- inclusive: every row between has the outcome
  outcome    TEXT NOT NULL,                   -- written (not created) | skipped | unchanged
  keys       TEXT NOT NULL,                   -- JSON array: each row's key (Operation.key), or null
  hashes     BLOB,                            -- written: per row, 16 bytes: XXH3-128 of (method, url, body)
  PRIMARY KEY (run_id, seq, first_row)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS content (          -- --changed-only: the last written hash of every key
  entity_set TEXT NOT NULL,
  part       INTEGER NOT NULL,                -- top 4 bits of the key identity (0-15)
  data       BLOB NOT NULL,                   -- 24-byte entries sorted by key: identity (u64 LE), hash
  PRIMARY KEY (entity_set, part)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS content_folded (
  entity_set  TEXT PRIMARY KEY,
  through_run INTEGER NOT NULL                -- the written rows of runs up to this id are in content
);
CREATE VIEW IF NOT EXISTS row_outcomes AS     -- every row of every run, spans unpacked
  SELECT run_id, seq, row, outcome, key, record_url AS record, created, error FROM rows
  UNION ALL
  SELECT s.run_id, s.seq, s.first_row + e.key, s.outcome, e.value, NULL, 0, NULL
  FROM spans s, json_each(s.keys) e;
CREATE TABLE IF NOT EXISTS run_clock (       -- version 3: when a run's own records begin
  run_id       INTEGER PRIMARY KEY,
  writes_since TEXT NOT NULL                  -- RFC 3339, the server's clock: a record its user
                                              -- created at or after it is the run's (read-backs)
);
CREATE TABLE IF NOT EXISTS run_environment ( -- version 4: the environment a run connected to
  run_id          INTEGER PRIMARY KEY,
  organization_id TEXT NOT NULL,              -- WhoAmI's OrganizationId: what binds the ledger
  url             TEXT NOT NULL,              -- DATAVERSE_URL, for messages
  user_id         TEXT NOT NULL               -- the application user's systemuserid
);
CREATE TABLE IF NOT EXISTS rejects_files (  -- version 5: which job last wrote each rejects file
  path   TEXT PRIMARY KEY,                    -- absolute
  job    TEXT NOT NULL,                       -- runs.job
  seq    INTEGER NOT NULL,                    -- the mapping's position in the job
  run_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_ids (      -- version 6: what a resume chain's record ids are made of
  chain INTEGER PRIMARY KEY,                  -- runs.chain
  ids   TEXT NOT NULL                         -- seed and start (writer::ids::ChainIds), recorded
);                                            -- before the chain's first write
CREATE TABLE IF NOT EXISTS content_resets ( -- version 7: content indexes dropped after a kill
  entity_set TEXT PRIMARY KEY,
  after_run  INTEGER NOT NULL                 -- runs up to this id are settled for this table
);
PRAGMA user_version = 8;
";

/// The schema version this build writes.
pub(super) const VERSION: i64 = 8;

/// Upgrades a version 1 ledger: its per-key `content` records become the content index (every
/// run folded), and `rows` gains the `hash` column; its rows stay where they are.
pub(super) fn migrate_v1(tx: &Connection) -> rusqlite::Result<()> {
    let mut indexes: HashMap<String, ContentIndex> = HashMap::new();
    {
        let mut stmt = tx.prepare("SELECT entity_set, key, hash FROM content")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let entity_set: String = r.get(0)?;
            let key: String = r.get(1)?;
            let hash: Vec<u8> = r.get(2)?;
            if let Ok(hash) = <[u8; 16]>::try_from(hash.as_slice()) {
                indexes
                    .entry(entity_set)
                    .or_default()
                    .insert(Collation::default().key_id(&key), hash);
            }
        }
    }
    tx.execute_batch(
        "DROP TABLE content; ALTER TABLE rows ADD COLUMN hash BLOB; ALTER TABLE rows ADD COLUMN fingerprint BLOB;",
    )?;
    tx.execute_batch(SCHEMA)?;
    let through: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM runs", [], |r| r.get(0))?;
    for (entity_set, index) in &indexes {
        write_content(tx, entity_set, index, through)?;
    }
    Ok(())
}
