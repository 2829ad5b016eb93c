//! The run ledger: one SQLite file per state directory (`STATE_DIR/ledger.sqlite`) holding every
//! run, every row's outcome and the last written content of every key; used by resume, `--changed-only`, `runs` and `undo`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension as _, params};

use super::packed::{self, ContentIndex, needs_own_row};
use crate::keys::Collation;
use crate::outcome::{Counts, RowState};

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
  PRIMARY KEY (run_id, seq, row)
) WITHOUT ROWID;
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
PRAGMA user_version = 7;
";

/// The schema version this build writes.
const VERSION: i64 = 7;

/// One row's outcome, to be recorded.
#[derive(Debug, Clone)]
pub struct RowOutcome {
    /// Source row number.
    pub row: u64,
    /// Source line.
    pub line: u64,
    /// What it became.
    pub state: RowState,
    /// `Operation.key`, when known.
    pub key: Option<String>,
    /// A create operation that Dataverse accepted.
    pub created: bool,
    /// The record's address for undo.
    pub record_url: Option<String>,
    /// The reason (rejected, unsent).
    pub error: Option<String>,
    /// The content hash of a written operation.
    pub hash: Option<[u8; 16]>,
}

/// What identifies one mapping of a run, and how it was when the run started.
#[derive(Debug, Clone)]
pub struct JobInfo {
    /// The mapping file.
    pub mapping: String,
    /// SHA-256 (hex) of the mapping file.
    pub mapping_hash: String,
    /// The source file.
    pub source: String,
    /// Its size in bytes.
    pub source_size: u64,
    /// SHA-256 (hex) of the source file.
    pub source_hash: String,
    /// Target entity set.
    pub entity_set: String,
    /// Operation name.
    pub operation: String,
}

/// One run as `dvload runs` lists it.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// Run id.
    pub id: i64,
    /// The mapping files, one per line.
    pub job: String,
    /// First run of its resume chain.
    pub chain: i64,
    /// The run it resumed.
    pub resumed_from: Option<i64>,
    /// With `--changed-only`.
    pub changed_only: bool,
    /// Start time.
    pub started_at: String,
    /// End time (None: running or killed).
    pub ended_at: Option<String>,
    /// Exit code (None: running or killed).
    pub exit_code: Option<i64>,
    /// Totals over its jobs.
    pub counts: Counts,
    /// Rows passed over because an earlier run of the chain did them.
    pub passed_over: u64,
}

impl RunRow {
    /// True when the run did not finish its rows: killed (no exit code), stopped early (4:
    /// interrupted, too many errors), or stopped by a set-up error (3) or a source broken
    /// mid-file (2). A resume continues it.
    pub fn unfinished(&self) -> bool {
        unfinished_exit(self.exit_code)
    }
}

/// [`RunRow::unfinished`] from a run's exit code alone.
fn unfinished_exit(exit_code: Option<i64>) -> bool {
    matches!(exit_code, None | Some(2) | Some(3) | Some(4))
}

/// A ledger error (rusqlite's, with what was being done).
#[derive(Debug, thiserror::Error)]
#[error("run ledger {}: {what}: {cause}{}", path.display(), storage_hint(cause))]
pub struct LedgerError {
    path: PathBuf,
    what: &'static str,
    /// SQLite's error (in the message, so not a `source`: it is said once).
    cause: rusqlite::Error,
}

type Result<T> = std::result::Result<T, LedgerError>;

/// What to check when SQLite could not write the file: a full disk, or a file-size limit (SQLite
/// reports the latter as a plain I/O error).
fn storage_hint(cause: &rusqlite::Error) -> &'static str {
    use rusqlite::ErrorCode::{DiskFull, SystemIoFailure};
    match cause.sqlite_error_code() {
        Some(DiskFull | SystemIoFailure) => {
            " (is the disk full, or the file larger than this process may write? free space, or \
             check `ulimit -f`)"
        }
        _ => "",
    }
}

/// The Dataverse environment a run connected to, as `WhoAmI` names it. A ledger keeps the
/// history of one environment: its organization id binds it (the URL may change with the
/// environment's name, the id never does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// `WhoAmI`'s `OrganizationId`.
    pub organization_id: String,
    /// The environment URL (`DATAVERSE_URL`).
    pub url: String,
    /// The application user's `systemuserid`.
    pub user_id: String,
}

impl Environment {
    /// True when `other` is the same environment (the same organization).
    pub fn same_as(&self, other: &Environment) -> bool {
        self.organization_id
            .eq_ignore_ascii_case(&other.organization_id)
    }
}

/// The open ledger of one state directory.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    /// How the environment compares keys: the identities of the done-set and the content index.
    collation: Collation,
}

/// A 128-bit content hash (XXH3-128) of `parts`, each followed by a 0 byte. Not cryptographic:
/// it tells whether a payload changed since the last run (`--changed-only`), where an accidental
/// collision is about 2^-128 per pair; SHA-256 here cost more than the SQLite inserts. Hashed in
/// one shot (the same digest as streaming the parts, as version 1 did, at a fifth of the cost).
pub fn hash16(parts: &[&[u8]]) -> [u8; 16] {
    let mut buf = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for p in parts {
        buf.extend_from_slice(p);
        buf.push(0);
    }
    xxhash_rust::xxh3::xxh3_128(&buf).to_le_bytes()
}

/// A 64-bit identity of a key under the default collation (see [`crate::keys`]); the ledger's
/// own methods use the collation set with [`Ledger::set_collation`].
#[cfg(test)]
pub fn key_id(key: &str) -> u64 {
    Collation::default().key_id(key)
}

/// What the ledger records as the hash of a source that is not a regular file (a pipe, a
/// terminal, a device): it can be read only once, by the run itself, so it is not hashed.
pub const UNHASHED: &str = "-";

/// True when `path` is a regular file (following links: `/dev/stdin` redirected from a file is
/// one; a pipe, `<(...)` or a FIFO is not).
pub fn is_regular_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// The size and SHA-256 (hex) of a source, taken before the run reads it, so that a resume can
/// refuse a changed source before anything is sent; `(0, UNHASHED)` for a source that is not a
/// regular file, which is never opened a second time (that would consume a pipe).
pub fn source_fingerprint(path: &Path) -> std::io::Result<(u64, String)> {
    if is_regular_file(path) {
        file_sha256(path)
    } else {
        Ok((0, UNHASHED.to_string()))
    }
}

/// SHA-256 (hex) of a file, streamed.
pub fn file_sha256(path: &Path) -> std::io::Result<(u64, String)> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        ctx.update(&buf[..n]);
    }
    let hex: String = ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((size, hex))
}

impl Ledger {
    /// The ledger file of a state directory.
    pub fn file(dir: &Path) -> PathBuf {
        dir.join("ledger.sqlite")
    }

    /// Opens (creating when missing) the ledger of `dir`.
    pub fn open(dir: &Path) -> Result<Ledger> {
        let path = Ledger::file(dir);
        let err = |what| {
            let path = path.clone();
            move |source| LedgerError {
                path,
                what,
                cause: source,
            }
        };
        let _ = std::fs::create_dir_all(dir);
        let mut conn = Connection::open(&path).map_err(err("cannot open"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err("cannot configure"))?;
        // Larger pages for a new file (ignored for an existing one): fewer B-tree splits per row.
        conn.pragma_update(None, "page_size", 16384)
            .map_err(err("cannot configure"))?;
        // WAL + NORMAL: a committed transaction survives a killed process; a power cut may lose
        // the last ones, and a resume then sends those rows again (every operation but a keyless
        // create is idempotent).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err("cannot configure"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err("cannot configure"))?;
        let version = |conn: &Connection| -> rusqlite::Result<i64> {
            conn.pragma_query_value(None, "user_version", |r| r.get(0))
        };
        let mut found = version(&conn).map_err(err("cannot read the schema version"))?;
        if found < VERSION {
            // Create or upgrade under SQLite's write lock, deciding again once it is held: another
            // dvload (`runs`, a dry run, which take no state lock) may be doing the same.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(err("cannot lock the ledger to set up its schema"))?;
            found = version(&tx).map_err(err("cannot read the schema version"))?;
            match found {
                0 => tx
                    .execute_batch(SCHEMA)
                    .map_err(err("cannot create the schema"))?,
                1 => migrate_v1(&tx).map_err(err("cannot upgrade the ledger from version 1"))?,
                2..=6 => tx
                    .execute_batch(SCHEMA)
                    .map_err(err("cannot upgrade the ledger to version 7"))?,
                _ => {}
            }
            tx.commit().map_err(err("cannot set up the schema"))?;
        }
        match found {
            0..=VERSION => {}
            newer => {
                return Err(err("cannot use it")(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
                    Some(format!(
                        "its schema version is {newer}, newer than this dvload's ({VERSION}): \
                         use a newer dvload, or another --state directory"
                    )),
                )));
            }
        }
        Ok(Ledger {
            conn,
            path,
            collation: Collation::default(),
        })
    }

    /// Sets how keys are compared from now on (the environment's collation, known once the run
    /// is connected): the done-set and the content index take two keys the environment takes
    /// for one as one. Identities are taken from the keys' text each time, so a ledger written
    /// under another collation is read under this one.
    pub fn set_collation(&mut self, collation: Collation) {
        self.collation = collation;
    }

    /// The ledger's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How keys are compared (see [`Ledger::set_collation`]).
    pub fn collation(&self) -> Collation {
        self.collation
    }

    /// Opens an existing ledger for reading (`runs`, `undo`); an error when there is none.
    pub fn open_existing(dir: &Path) -> crate::Result<Ledger> {
        if !Ledger::file(dir).exists() {
            return Err(crate::Error::Unusable(format!(
                "no run ledger in {} (runs that sent rows create it; --state DIR names another)",
                dir.display()
            )));
        }
        Ok(Ledger::open(dir)?)
    }

    /// Runs one statement that changes the ledger; `what` names it in the error.
    fn exec(&self, what: &'static str, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        self.conn
            .execute(sql, params)
            .map(|_| ())
            .map_err(self.err(what))
    }

    fn err(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> LedgerError + '_ {
        move |source| LedgerError {
            path: self.path.clone(),
            what,
            cause: source,
        }
    }

    /// Records the start of a run; returns its id.
    pub fn begin_run(
        &mut self,
        job: &str,
        resumed: Option<&RunRow>,
        changed_only: bool,
        started_at: &str,
    ) -> Result<i64> {
        let tx = self.conn.transaction().map_err(|source| LedgerError {
            path: self.path.clone(),
            what: "cannot start a run",
            cause: source,
        })?;
        tx.execute(
            "INSERT INTO runs (job, chain, resumed_from, changed_only, started_at) VALUES (?1, 0, ?2, ?3, ?4)",
            params![job, resumed.map(|r| r.id), changed_only, started_at],
        )
        .and_then(|_| {
            let id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE runs SET chain = ?1 WHERE id = ?2",
                params![resumed.map_or(id, |r| r.chain), id],
            )?;
            tx.commit()?;
            Ok(id)
        })
        .map_err(|source| LedgerError {
            path: self.path.clone(),
            what: "cannot start a run",
            cause: source,
        })
    }

    /// Records the environment run `run_id` connected to, before its first write.
    pub fn set_environment(&mut self, run_id: i64, env: &Environment) -> Result<()> {
        self.exec(
            "cannot record the run's environment",
            "INSERT OR REPLACE INTO run_environment (run_id, organization_id, url, user_id)
                 VALUES (?1, ?2, ?3, ?4)",
            params![run_id, env.organization_id, env.url, env.user_id],
        )
    }

    /// The environment of the ledger's history: the one its latest run that connected recorded
    /// (with that run's id); `None` when no run recorded one (a new ledger, or one whose runs
    /// all predate version 4).
    pub fn environment(&self) -> Result<Option<(i64, Environment)>> {
        self.conn
            .query_row(
                "SELECT run_id, organization_id, url, user_id FROM run_environment
                 ORDER BY run_id DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        Environment {
                            organization_id: r.get(1)?,
                            url: r.get(2)?,
                            user_id: r.get(3)?,
                        },
                    ))
                },
            )
            .optional()
            .map_err(self.err("cannot read the ledger's environment"))
    }

    /// Records that job `job`'s mapping `seq` (run `run_id`) wrote the rejects file `path`.
    pub fn set_rejects_owner(
        &mut self,
        path: &str,
        job: &str,
        seq: usize,
        run_id: i64,
    ) -> Result<()> {
        self.exec(
            "cannot record the rejects file",
            "INSERT OR REPLACE INTO rejects_files (path, job, seq, run_id) VALUES (?1, ?2, ?3, ?4)",
            params![path, job, seq as i64, run_id],
        )
    }

    /// The job and mapping position that last wrote the rejects file `path`, if a run of this
    /// ledger did.
    pub fn rejects_owner(&self, path: &str) -> Result<Option<(String, usize)>> {
        self.conn
            .query_row(
                "SELECT job, seq FROM rejects_files WHERE path = ?1",
                params![path],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)),
            )
            .optional()
            .map_err(self.err("cannot read the rejects files"))
    }

    /// What the record ids of resume chain `chain` are made of, if recorded.
    pub fn chain_ids(&self, chain: i64) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT ids FROM chain_ids WHERE chain = ?1",
                params![chain],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("cannot read the chain's ids"))
    }

    /// Records what the record ids of resume chain `chain` are made of (before its first write).
    pub fn set_chain_ids(&mut self, chain: i64, ids: &str) -> Result<()> {
        self.exec(
            "cannot record the chain's ids",
            "INSERT OR IGNORE INTO chain_ids (chain, ids) VALUES (?1, ?2)",
            params![chain, ids],
        )
    }

    /// Records when run `run_id`'s own records begin (see `writer::decide::Provenance`).
    pub fn set_writes_since(&mut self, run_id: i64, since: &str) -> Result<()> {
        self.exec(
            "cannot record the run's clock",
            "INSERT OR REPLACE INTO run_clock (run_id, writes_since) VALUES (?1, ?2)",
            params![run_id, since],
        )
    }

    /// When the records of resume chain `chain` began: the instant its first run that got as far
    /// as writing recorded, if any did.
    pub fn chain_writes_since(&self, chain: i64) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT c.writes_since FROM run_clock c JOIN runs u ON u.id = c.run_id
                 WHERE u.chain = ?1 ORDER BY c.run_id LIMIT 1",
                params![chain],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("cannot read the run's clock"))
    }

    /// Records the start of one mapping of a run.
    pub fn begin_job(&mut self, run_id: i64, seq: usize, info: &JobInfo) -> Result<()> {
        let sql = "INSERT INTO run_jobs (run_id, seq, mapping, mapping_hash, source, source_size,
                   source_hash, entity_set, operation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
        let values = params![
            run_id,
            seq as i64,
            info.mapping,
            info.mapping_hash,
            info.source,
            info.source_size as i64,
            info.source_hash,
            info.entity_set,
            info.operation
        ];
        self.exec("cannot record a job", sql, values)
    }

    /// Records a job's counts (at its end).
    pub fn end_job(
        &mut self,
        run_id: i64,
        seq: usize,
        counts: &Counts,
        passed_over: u64,
    ) -> Result<()> {
        let sql = "UPDATE run_jobs SET read = ?3, written = ?4, rejected = ?5, skipped = ?6,
                   unchanged = ?7, passed_over = ?8 WHERE run_id = ?1 AND seq = ?2";
        let values = params![
            run_id,
            seq as i64,
            counts.read as i64,
            counts.written as i64,
            counts.rejected as i64,
            counts.skipped as i64,
            counts.unchanged as i64,
            passed_over as i64,
        ];
        self.exec("cannot record a job's counts", sql, values)
    }

    /// Records the end of a run.
    pub fn end_run(&mut self, run_id: i64, exit_code: u8, ended_at: &str) -> Result<()> {
        self.exec(
            "cannot record the end of the run",
            "UPDATE runs SET ended_at = ?2, exit_code = ?3 WHERE id = ?1",
            params![run_id, ended_at, exit_code as i64],
        )
    }

    /// Records a batch of row outcomes in one transaction: rows with a reason or a created
    /// record each get a `rows` record, the others are packed into `spans`.
    pub fn record(&mut self, run_id: i64, seq: usize, outcomes: &[RowOutcome]) -> Result<()> {
        let wrap = wrapper(&self.path, "cannot record row outcomes");
        let tx = self.conn.transaction().map_err(&wrap)?;
        {
            let mut row_stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO rows (run_id, seq, row, line, outcome, key, created, record_url, error, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(&wrap)?;
            for o in outcomes.iter().filter(|o| needs_own_row(o)) {
                row_stmt
                    .execute(params![
                        run_id,
                        seq as i64,
                        o.row as i64,
                        o.line as i64,
                        o.state.as_str(),
                        o.key,
                        o.created,
                        o.record_url,
                        o.error,
                        o.hash.as_ref().map(|h| &h[..])
                    ])
                    .map_err(&wrap)?;
            }
            let mut span_stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO spans (run_id, seq, first_row, last_row, outcome, keys, hashes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(&wrap)?;
            for span in packed::spans(outcomes.iter().filter(|o| !needs_own_row(o))) {
                span_stmt
                    .execute(params![
                        run_id,
                        seq as i64,
                        span.first_row as i64,
                        span.last_row as i64,
                        span.state.as_str(),
                        span.keys,
                        span.hashes
                    ])
                    .map_err(&wrap)?;
            }
        }
        tx.commit().map_err(&wrap)
    }

    /// The last run of a job (the same mapping files).
    pub fn last_run(&self, job: &str) -> Result<Option<RunRow>> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT max(id) FROM runs WHERE job = ?1",
                params![job],
                |r| r.get(0),
            )
            .map_err(self.err("cannot read the runs"))?;
        match id {
            Some(id) => self.run(id),
            None => Ok(None),
        }
    }

    /// One run.
    pub fn run(&self, id: i64) -> Result<Option<RunRow>> {
        self.conn
            .query_row(
                "SELECT r.id, r.job, r.chain, r.resumed_from, r.changed_only, r.started_at, r.ended_at, r.exit_code,
                        coalesce(sum(j.read),0), coalesce(sum(j.written),0), coalesce(sum(j.rejected),0),
                        coalesce(sum(j.skipped),0), coalesce(sum(j.unchanged),0), coalesce(sum(j.passed_over),0)
                 FROM runs r LEFT JOIN run_jobs j ON j.run_id = r.id WHERE r.id = ?1 GROUP BY r.id",
                params![id],
                run_row,
            )
            .optional()
            .map_err(self.err("cannot read the runs"))?
            .map(|run| self.with_recorded_counts(run))
            .transpose()
    }

    /// A run that never ended (killed) never wrote its counts: they are those of its recorded
    /// rows (unsent rows count as rejected, as in its rejects file).
    fn with_recorded_counts(&self, mut run: RunRow) -> Result<RunRow> {
        if run.ended_at.is_some() {
            return Ok(run);
        }
        let mut counts = Counts::default();
        for c in self.recorded_counts(run.id)?.values() {
            counts.add(c);
        }
        run.counts = counts;
        Ok(run)
    }

    /// The counts of a run's recorded rows, per mapping (unsent rows count as rejected, as in its
    /// rejects file).
    fn recorded_counts(&self, run_id: i64) -> Result<HashMap<usize, Counts>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, outcome, count(*) FROM rows WHERE run_id = ?1 GROUP BY seq, outcome
                 UNION ALL
                 SELECT seq, outcome, sum(last_row - first_row + 1) FROM spans WHERE run_id = ?1 GROUP BY seq, outcome",
            )
            .map_err(self.err("cannot read the rows"))?;
        let triples = stmt
            .query_map(params![run_id], |r| {
                Ok((
                    r.get::<_, i64>(0)? as usize,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)? as u64,
                ))
            })
            .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|source| LedgerError {
                path: self.path.clone(),
                what: "cannot read the rows",
                cause: source,
            })?;
        let mut per_seq: HashMap<usize, Counts> = HashMap::new();
        for (seq, outcome, n) in triples {
            let counts = per_seq.entry(seq).or_default();
            match outcome.as_str() {
                "written" => counts.written += n,
                "skipped" => counts.skipped += n,
                "unchanged" => counts.unchanged += n,
                _ => counts.rejected += n,
            }
            counts.read += n;
        }
        Ok(per_seq)
    }

    /// The last `limit` runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.id, r.job, r.chain, r.resumed_from, r.changed_only, r.started_at, r.ended_at, r.exit_code,
                        coalesce(sum(j.read),0), coalesce(sum(j.written),0), coalesce(sum(j.rejected),0),
                        coalesce(sum(j.skipped),0), coalesce(sum(j.unchanged),0), coalesce(sum(j.passed_over),0)
                 FROM runs r LEFT JOIN run_jobs j ON j.run_id = r.id GROUP BY r.id ORDER BY r.id DESC LIMIT ?1",
            )
            .map_err(self.err("cannot read the runs"))?;
        let rows = stmt
            .query_map(params![limit as i64], run_row)
            .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|source| LedgerError {
                path: self.path.clone(),
                what: "cannot read the runs",
                cause: source,
            })?;
        rows.into_iter()
            .map(|run| self.with_recorded_counts(run))
            .collect()
    }

    /// The jobs of a run, with their counts (for a job that a killed run never ended: those of
    /// its recorded rows).
    pub fn jobs(&self, run_id: i64) -> Result<Vec<(JobInfo, Counts, u64)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT mapping, mapping_hash, source, source_size, source_hash, entity_set, operation,
                        read, written, rejected, skipped, unchanged, passed_over
                 FROM run_jobs WHERE run_id = ?1 ORDER BY seq",
            )
            .map_err(self.err("cannot read the jobs"))?;
        let rows = stmt
            .query_map(params![run_id], |r| {
                Ok((
                    JobInfo {
                        mapping: r.get(0)?,
                        mapping_hash: r.get(1)?,
                        source: r.get(2)?,
                        source_size: r.get::<_, i64>(3)? as u64,
                        source_hash: r.get(4)?,
                        entity_set: r.get(5)?,
                        operation: r.get(6)?,
                    },
                    Counts {
                        read: r.get::<_, i64>(7)? as u64,
                        written: r.get::<_, i64>(8)? as u64,
                        rejected: r.get::<_, i64>(9)? as u64,
                        skipped: r.get::<_, i64>(10)? as u64,
                        unchanged: r.get::<_, i64>(11)? as u64,
                    },
                    r.get::<_, i64>(12)? as u64,
                ))
            })
            .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|source| LedgerError {
                path: self.path.clone(),
                what: "cannot read the jobs",
                cause: source,
            })?;
        let ended = self.run(run_id)?.is_some_and(|run| run.ended_at.is_some());
        if ended {
            return Ok(rows);
        }
        let mut recorded = self.recorded_counts(run_id)?;
        Ok(rows
            .into_iter()
            .enumerate()
            .map(|(seq, (info, counts, passed_over))| {
                let never_ended = counts.read == 0;
                match recorded.remove(&seq) {
                    Some(from_rows) if never_ended => (info, from_rows, passed_over),
                    _ => (info, counts, passed_over),
                }
            })
            .collect())
    }

    /// True when a run of the chain recorded any row.
    pub fn chain_has_rows(&self, chain: i64) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM rows r JOIN runs u ON u.id = r.run_id WHERE u.chain = ?1)
                     OR EXISTS (SELECT 1 FROM spans s JOIN runs u ON u.id = s.run_id WHERE u.chain = ?1)",
                params![chain],
                |r| r.get(0),
            )
            .map_err(self.err("cannot read the rows"))
    }

    /// Rows already done (any outcome but `unsent`) by the runs of a resume chain, for one
    /// mapping: row number → key identity (0 when the row had no key). A created record that
    /// `undo` deleted since is not done: a resume creates it again.
    pub fn done_rows(&self, chain: i64, seq: usize) -> Result<HashMap<u64, u64>> {
        let c = self.collation;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.row, r.key FROM rows r JOIN runs u ON u.id = r.run_id
                 WHERE u.chain = ?1 AND r.seq = ?2 AND r.outcome <> 'unsent' AND r.created <> 2",
            )
            .map_err(self.err("cannot read the done rows"))?;
        let mut done = HashMap::new();
        let mut rows = stmt
            .query(params![chain, seq as i64])
            .map_err(self.err("cannot read the done rows"))?;
        while let Some(r) = rows.next().map_err(|source| LedgerError {
            path: self.path.clone(),
            what: "cannot read the done rows",
            cause: source,
        })? {
            let row: i64 = r.get(0).unwrap_or_default();
            let key: Option<String> = r.get(1).unwrap_or_default();
            let key = key.as_deref().filter(|k| !k.is_empty());
            done.insert(row as u64, key.map_or(0, |k| c.key_id(k)));
        }
        drop(rows);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.first_row, s.keys FROM spans s JOIN runs u ON u.id = s.run_id
                 WHERE u.chain = ?1 AND s.seq = ?2",
            )
            .map_err(self.err("cannot read the done rows"))?;
        let mut spans = stmt
            .query(params![chain, seq as i64])
            .map_err(self.err("cannot read the done rows"))?;
        while let Some(r) = spans.next().map_err(|source| LedgerError {
            path: self.path.clone(),
            what: "cannot read the done rows",
            cause: source,
        })? {
            let first = r.get::<_, i64>(0).unwrap_or_default() as u64;
            let keys: String = r.get(1).unwrap_or_default();
            let keys = packed::span_keys(first, &keys).map_err(|e| LedgerError {
                path: self.path.clone(),
                what: "cannot read the done rows",
                cause: corrupt(e),
            })?;
            done.extend(
                keys.into_iter()
                    .map(|(row, key)| (row, key.as_deref().map_or(0, |k| c.key_id(k)))),
            );
        }
        Ok(done)
    }

    /// Rows that the runs of a resume chain rejected, for one mapping: row number → reason. A
    /// resume passes them over and writes them again to its rejects file, so that the chain's
    /// last rejects file holds every row the chain rejected.
    pub fn rejected_rows(&self, chain: i64, seq: usize) -> Result<HashMap<u64, String>> {
        let what = "cannot read the rejected rows";
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.row, r.error FROM rows r JOIN runs u ON u.id = r.run_id
                 WHERE u.chain = ?1 AND r.seq = ?2 AND r.outcome = 'rejected'",
            )
            .map_err(self.err(what))?;
        let rows = stmt
            .query_map(params![chain, seq as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                ))
            })
            .map_err(self.err(what))?;
        rows.collect::<rusqlite::Result<HashMap<u64, String>>>()
            .map_err(self.err(what))
    }

    /// The last written content hash of every key of an entity set (key identity → hash), as
    /// job `seq` of run `run_id` compares with: the written rows of the runs before it folded in
    /// (and stored), then those of the run's own earlier mappings (in memory: the run is not over).
    pub fn content_index(
        &mut self,
        entity_set: &str,
        run_id: i64,
        seq: usize,
    ) -> Result<ContentIndex> {
        let wrap = wrapper(&self.path, "cannot update the content index");
        let tx = self.conn.transaction().map_err(&wrap)?;
        let mut index = if killed_runs(&tx, entity_set, run_id)
            .map_err(&wrap)?
            .is_empty()
        {
            fold_content(&tx, self.collation, entity_set, run_id, true).map_err(&wrap)?
        } else {
            // A run killed before it recorded what it sent may have changed any record of this
            // table: the index is dropped, this run sends every row, and the runs up to it are
            // settled (a key this run does not write has no entry, so the next run sends it).
            reset_content(&tx, entity_set, run_id - 1).map_err(&wrap)?;
            ContentIndex::default()
        };
        apply_run_writes(
            &tx,
            self.collation,
            &mut index,
            entity_set,
            run_id,
            seq as i64,
        )
        .map_err(&wrap)?;
        tx.commit().map_err(&wrap)?;
        Ok(index)
    }

    /// The content index of an entity set as the next `--changed-only` run would see it, with
    /// every run folded in, in memory only (`--dry-run --changed-only`: the ledger is not written).
    pub fn content_index_preview(&self, entity_set: &str) -> Result<ContentIndex> {
        if !killed_runs(&self.conn, entity_set, i64::MAX)
            .map_err(self.err("cannot read the runs"))?
            .is_empty()
        {
            return Ok(ContentIndex::default());
        }
        fold_content(&self.conn, self.collation, entity_set, i64::MAX, false)
            .map_err(self.err("cannot read the content index"))
    }

    /// The runs killed before they recorded what they sent to `entity_set` (see
    /// [`killed_runs`]), for a note: a `--changed-only` run then sends every row.
    pub fn killed_before(&self, entity_set: &str, run_id: i64) -> Result<Vec<i64>> {
        killed_runs(&self.conn, entity_set, run_id).map_err(self.err("cannot read the runs"))
    }

    /// Deletes the row outcomes of all runs but the newest `keep`, keeping each run's summary
    /// (`runs`, `run_jobs`: the history and its counts). Runs that never ended, and the runs of a
    /// resume chain that a resume may still continue, keep their rows. The content index is
    /// brought up to date first, so `--changed-only` loses nothing. Returns (runs pruned, outcome
    /// records deleted).
    pub fn prune(&mut self, keep: usize) -> Result<(Vec<i64>, u64)> {
        let wrap = wrapper(&self.path, "cannot prune the ledger");
        let collation = self.collation;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&wrap)?;
        let prunable: Vec<i64> = {
            // (id, chain, ended, exit code), oldest first.
            let mut stmt = tx
                .prepare("SELECT id, chain, ended_at IS NOT NULL, exit_code FROM runs ORDER BY id")
                .map_err(&wrap)?;
            let runs = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                    ))
                })
                .map_err(&wrap)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(&wrap)?;
            // A chain a resume may still continue: its last run did not finish.
            let mut resumable: HashMap<i64, bool> = HashMap::new();
            for &(_, chain, _, exit_code) in &runs {
                resumable.insert(chain, unfinished_exit(exit_code));
            }
            let mut has_rows = tx
                .prepare(
                    "SELECT EXISTS (SELECT 1 FROM rows WHERE run_id = ?1)
                         OR EXISTS (SELECT 1 FROM spans WHERE run_id = ?1)",
                )
                .map_err(&wrap)?;
            let old = runs.len().saturating_sub(keep);
            let mut prunable = Vec::new();
            for &(id, chain, ended, _) in &runs[..old] {
                if ended
                    && !resumable[&chain]
                    && has_rows
                        .query_row(params![id], |r| r.get::<_, bool>(0))
                        .map_err(&wrap)?
                {
                    prunable.push(id);
                }
            }
            prunable
        };
        if prunable.is_empty() {
            return Ok((prunable, 0));
        }
        let entity_sets: Vec<String> = {
            let mut stmt = tx
                .prepare("SELECT DISTINCT entity_set FROM run_jobs")
                .map_err(&wrap)?;
            let sets = stmt.query_map([], |r| r.get(0)).map_err(&wrap)?;
            sets.collect::<rusqlite::Result<_>>().map_err(&wrap)?
        };
        for entity_set in &entity_sets {
            fold_content(&tx, collation, entity_set, i64::MAX, true).map_err(&wrap)?;
        }
        let mut deleted = 0u64;
        {
            let mut rows = tx
                .prepare_cached("DELETE FROM rows WHERE run_id = ?1")
                .map_err(&wrap)?;
            let mut spans = tx
                .prepare_cached("DELETE FROM spans WHERE run_id = ?1")
                .map_err(&wrap)?;
            for id in &prunable {
                deleted += rows.execute(params![id]).map_err(&wrap)? as u64;
                deleted += spans.execute(params![id]).map_err(&wrap)? as u64;
            }
        }
        tx.commit().map_err(&wrap)?;
        Ok((prunable, deleted))
    }

    /// Gives the free pages back to the file system (`VACUUM`: rewrites the file).
    pub fn vacuum(&mut self) -> Result<()> {
        self.conn
            .execute_batch("VACUUM")
            .map_err(self.err("cannot vacuum the ledger"))
    }

    /// True when a finished run's row outcomes were deleted by [`Ledger::prune`]: it read rows
    /// but none is recorded.
    pub fn pruned(&self, run: &RunRow) -> Result<bool> {
        if run.ended_at.is_none() || run.counts.read == 0 {
            return Ok(false);
        }
        self.conn
            .query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM rows WHERE run_id = ?1)
                    AND NOT EXISTS (SELECT 1 FROM spans WHERE run_id = ?1)",
                params![run.id],
                |r| r.get(0),
            )
            .map_err(self.err("cannot read the rows"))
    }

    /// How many rows of a run had an outcome (`rows` and `spans`).
    pub fn count_outcome(&self, run_id: i64, state: RowState) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM rows WHERE run_id = ?1 AND outcome = ?2)
                      + (SELECT coalesce(sum(last_row - first_row + 1), 0) FROM spans WHERE run_id = ?1 AND outcome = ?2)",
                params![run_id, state.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.err("cannot read the rows"))
    }

    /// The rows of a run with a given outcome that have their own record: rejected, unsent and
    /// created rows (plain written, skipped and unchanged rows are counted by [`Ledger::count_outcome`]).
    pub fn rows_of(&self, run_id: i64, state: RowState) -> Result<Vec<RowDetail>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.seq, r.row, r.line, r.key, r.created, r.record_url, r.error, j.entity_set
                 FROM rows r JOIN run_jobs j ON j.run_id = r.run_id AND j.seq = r.seq
                 WHERE r.run_id = ?1 AND r.outcome = ?2 ORDER BY r.seq, r.row",
            )
            .map_err(self.err("cannot read the rows"))?;
        let rows = stmt
            .query_map(params![run_id, state.as_str()], |r| {
                Ok(RowDetail {
                    seq: r.get::<_, i64>(0)? as usize,
                    row: r.get::<_, i64>(1)? as u64,
                    line: r.get::<_, i64>(2)? as u64,
                    key: r.get(3)?,
                    created: r.get(4)?,
                    record_url: r.get(5)?,
                    error: r.get(6)?,
                    entity_set: r.get(7)?,
                })
            })
            .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|source| LedgerError {
                path: self.path.clone(),
                what: "cannot read the rows",
                cause: source,
            })?;
        Ok(rows)
    }

    /// Forgets the content of `keys` ((entity set, key)), so that `--changed-only` sends their
    /// rows again: what `undo` does before its first delete.
    pub fn forget_content(&mut self, keys: &[(String, String)]) -> Result<()> {
        let wrap = wrapper(&self.path, "cannot update the content index");
        let collation = self.collation;
        let tx = self.conn.transaction().map_err(&wrap)?;
        let mut by_set: HashMap<&str, Vec<u64>> = HashMap::new();
        for (set, key) in keys {
            by_set.entry(set).or_default().push(collation.key_id(key));
        }
        forget_keys(&tx, collation, by_set).map_err(&wrap)?;
        tx.commit().map_err(&wrap)
    }

    /// Marks created rows as taken back by `undo` (`created` becomes 2) and forgets their keys'
    /// content, so that `--changed-only` sends them again: (seq, row, entity set, key).
    pub fn mark_undone(
        &mut self,
        run_id: i64,
        rows: &[(usize, u64, String, String)],
    ) -> Result<()> {
        let wrap = wrapper(&self.path, "cannot record the undo");
        let collation = self.collation;
        let tx = self.conn.transaction().map_err(&wrap)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE rows SET created = 2 WHERE run_id = ?1 AND seq = ?2 AND row = ?3",
                )
                .map_err(&wrap)?;
            let mut forget: HashMap<&str, Vec<u64>> = HashMap::new();
            for (seq, row, entity_set, key) in rows {
                stmt.execute(params![run_id, *seq as i64, *row as i64])
                    .map_err(&wrap)?;
                if !key.is_empty() {
                    forget
                        .entry(entity_set)
                        .or_default()
                        .push(collation.key_id(key));
                }
            }
            forget_keys(&tx, collation, forget).map_err(&wrap)?;
        }
        tx.commit().map_err(&wrap)
    }
}

/// One row of a run, as `runs show` and `undo` read it.
#[derive(Debug, Clone)]
pub struct RowDetail {
    /// Mapping position.
    pub seq: usize,
    /// Source row.
    pub row: u64,
    /// Source line.
    pub line: u64,
    /// Operation key.
    pub key: Option<String>,
    /// 0 not created, 1 created, 2 created then undone.
    pub created: i64,
    /// Address for undo.
    pub record_url: Option<String>,
    /// Reason.
    pub error: Option<String>,
    /// Target entity set.
    pub entity_set: String,
}

/// What turns an SQLite error into a [`LedgerError`] about `path`, owning its own copy of the
/// path (usable while a transaction borrows the connection).
fn wrapper(path: &Path, what: &'static str) -> impl Fn(rusqlite::Error) -> LedgerError {
    let path = path.to_path_buf();
    move |source| LedgerError {
        path: path.clone(),
        what,
        cause: source,
    }
}

/// A damaged ledger, as an SQLite error.
fn corrupt(message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
        Some(message),
    )
}

/// The run up to which an entity set's written rows are in its content index (0: none).
fn folded_through(conn: &Connection, entity_set: &str) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT through_run FROM content_folded WHERE entity_set = ?1",
            params![entity_set],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Reads an entity set's content index and folds into it the written rows of the runs not in it
/// yet, up to the last run before `before_run`, in run and row order (a later write of a key
/// wins); stores it again when anything was folded and `store` is set. Runs are folded lazily,
/// when a `--changed-only` run or `undo` needs the index: a run pays nothing for it.
fn fold_content(
    conn: &Connection,
    collation: Collation,
    entity_set: &str,
    before_run: i64,
    store: bool,
) -> rusqlite::Result<ContentIndex> {
    let through = folded_through(conn, entity_set)?;
    let upto: i64 = conn.query_row(
        "SELECT coalesce(max(id), 0) FROM runs WHERE id < ?1",
        params![before_run],
        |r| r.get(0),
    )?;
    let mut index = ContentIndex::default();
    {
        let mut stmt = conn.prepare("SELECT data FROM content WHERE entity_set = ?1")?;
        let parts = stmt
            .query_map(params![entity_set], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        // Room for every entry at once: growing a table of millions rehashes it each time.
        index.reserve(parts.iter().map(|p| p.len() / packed::ENTRY_BYTES).sum());
        for data in parts {
            packed::decode_part(&data, &mut index)
                .map_err(|e| corrupt(format!("entity set {entity_set}: {e}")))?;
        }
    }
    if upto <= through {
        return Ok(index);
    }
    // One run at a time, in order: memory holds the index and one run's writes.
    let runs: Vec<i64> = {
        let mut stmt = conn.prepare(
            "SELECT DISTINCT run_id FROM run_jobs
             WHERE entity_set = ?1 AND run_id > ?2 AND run_id <= ?3 ORDER BY run_id",
        )?;
        let ids = stmt.query_map(params![entity_set, through, upto], |r| r.get(0))?;
        ids.collect::<rusqlite::Result<_>>()?
    };
    let mut applied = 0;
    for run in runs {
        applied += apply_run_writes(conn, collation, &mut index, entity_set, run, i64::MAX)?;
    }
    if store && applied > 0 {
        write_content(conn, entity_set, &index, upto)?;
    } else if store {
        conn.execute(
            "INSERT OR REPLACE INTO content_folded (entity_set, through_run) VALUES (?1, ?2)",
            params![entity_set, upto],
        )?;
    }
    Ok(index)
}

/// Applies to `index` the written rows of run `run` for an entity set, from its mappings before
/// `before_seq`, in the order they were written (mapping, then row: a later write of a key wins);
/// returns how many.
fn apply_run_writes(
    conn: &Connection,
    collation: Collation,
    index: &mut ContentIndex,
    entity_set: &str,
    run: i64,
    before_seq: i64,
) -> rusqlite::Result<usize> {
    // (seq, row, key identity, hash)
    let mut writes: Vec<(i64, u64, u64, [u8; 16])> = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT s.seq, s.first_row, s.keys, s.hashes FROM spans s
         JOIN run_jobs j ON j.run_id = s.run_id AND j.seq = s.seq
         WHERE j.entity_set = ?1 AND s.run_id = ?2 AND s.seq < ?3 AND s.outcome = 'written'
           AND s.hashes IS NOT NULL",
    )?;
    let mut spans = stmt.query(params![entity_set, run, before_seq])?;
    while let Some(r) = spans.next()? {
        let seq: i64 = r.get(0)?;
        let first = r.get::<_, i64>(1)? as u64;
        let keys: String = r.get(2)?;
        let hashes: Vec<u8> = r.get(3)?;
        writes.extend(
            packed::span_contents(collation, first, &keys, &hashes)
                .map_err(corrupt)?
                .into_iter()
                .map(|(row, id, hash)| (seq, row, id, hash)),
        );
    }
    let mut stmt = conn.prepare_cached(
        "SELECT r.seq, r.row, r.key, r.hash FROM rows r
         JOIN run_jobs j ON j.run_id = r.run_id AND j.seq = r.seq
         WHERE j.entity_set = ?1 AND r.run_id = ?2 AND r.seq < ?3 AND r.outcome = 'written'
           AND r.created <> 2 AND r.key <> '' AND r.hash IS NOT NULL",
    )?;
    let mut rows = stmt.query(params![entity_set, run, before_seq])?;
    while let Some(r) = rows.next()? {
        let key: String = r.get(2)?;
        let hash: Vec<u8> = r.get(3)?;
        if let Ok(hash) = <[u8; 16]>::try_from(hash.as_slice()) {
            writes.push((
                r.get(0)?,
                r.get::<_, i64>(1)? as u64,
                collation.key_id(&key),
                hash,
            ));
        }
    }
    writes.sort_unstable_by_key(|&(seq, row, _, _)| (seq, row));
    let n = writes.len();
    for (_, _, id, hash) in writes {
        index.insert(id, hash);
    }
    Ok(n)
}

/// The runs before `before_run`, not settled for `entity_set` (see `content_resets`), that wrote
/// to it and were killed: never ended, and no later run of their resume chain ended, nor is
/// `before_run` one of that chain (a resume sends their unrecorded rows again). What such a run
/// sent without recording it is unknown, so the content index cannot be trusted for the table.
fn killed_runs(conn: &Connection, entity_set: &str, before_run: i64) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT r.id FROM runs r JOIN run_jobs j ON j.run_id = r.id
         WHERE j.entity_set = ?1 AND r.id < ?2 AND r.ended_at IS NULL
           AND r.id > coalesce((SELECT after_run FROM content_resets WHERE entity_set = ?1), 0)
           AND NOT EXISTS (SELECT 1 FROM runs l WHERE l.chain = r.chain AND l.id > r.id
                             AND (l.ended_at IS NOT NULL OR l.id = ?2))",
    )?;
    let ids = stmt.query_map(params![entity_set, before_run], |r| r.get(0))?;
    ids.collect()
}

/// Drops an entity set's content index and marks the runs up to `through` settled for it.
fn reset_content(tx: &Connection, entity_set: &str, through: i64) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM content WHERE entity_set = ?1",
        params![entity_set],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO content_folded (entity_set, through_run) VALUES (?1, ?2)",
        params![entity_set, through],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO content_resets (entity_set, after_run) VALUES (?1, ?2)",
        params![entity_set, through],
    )?;
    Ok(())
}

/// Removes key identities from the content index of each entity set (every run folded in first).
fn forget_keys(
    tx: &Connection,
    collation: Collation,
    forget: HashMap<&str, Vec<u64>>,
) -> rusqlite::Result<()> {
    for (entity_set, ids) in forget {
        let mut index = fold_content(tx, collation, entity_set, i64::MAX, true)?;
        for id in ids {
            index.remove(&id);
        }
        let through = folded_through(tx, entity_set)?;
        write_content(tx, entity_set, &index, through)?;
    }
    Ok(())
}

/// Stores an entity set's content index, folded through run `through`.
fn write_content(
    conn: &Connection,
    entity_set: &str,
    index: &ContentIndex,
    through: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM content WHERE entity_set = ?1",
        params![entity_set],
    )?;
    let mut insert =
        conn.prepare_cached("INSERT INTO content (entity_set, part, data) VALUES (?1, ?2, ?3)")?;
    for (part, data) in packed::encode_parts(index) {
        insert.execute(params![entity_set, part, data])?;
    }
    conn.execute(
        "INSERT OR REPLACE INTO content_folded (entity_set, through_run) VALUES (?1, ?2)",
        params![entity_set, through],
    )?;
    Ok(())
}

/// Upgrades a version 1 ledger: its per-key `content` records become the content index (every
/// run folded), and `rows` gains the `hash` column; its rows stay where they are.
fn migrate_v1(tx: &Connection) -> rusqlite::Result<()> {
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
    tx.execute_batch("DROP TABLE content; ALTER TABLE rows ADD COLUMN hash BLOB;")?;
    tx.execute_batch(SCHEMA)?;
    let through: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM runs", [], |r| r.get(0))?;
    for (entity_set, index) in &indexes {
        write_content(tx, entity_set, index, through)?;
    }
    Ok(())
}

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        job: r.get(1)?,
        chain: r.get(2)?,
        resumed_from: r.get(3)?,
        changed_only: r.get(4)?,
        started_at: r.get(5)?,
        ended_at: r.get(6)?,
        exit_code: r.get(7)?,
        counts: Counts {
            read: r.get::<_, i64>(8)? as u64,
            written: r.get::<_, i64>(9)? as u64,
            rejected: r.get::<_, i64>(10)? as u64,
            skipped: r.get::<_, i64>(11)? as u64,
            unchanged: r.get::<_, i64>(12)? as u64,
        },
        passed_over: r.get::<_, i64>(13)? as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> JobInfo {
        JobInfo {
            mapping: "m.toml".into(),
            mapping_hash: "mh".into(),
            source: "s.csv".into(),
            source_size: 10,
            source_hash: "sh".into(),
            entity_set: "accounts".into(),
            operation: "upsert".into(),
        }
    }

    fn written(row: u64, key: &str, hash: u8) -> RowOutcome {
        RowOutcome {
            row,
            line: row + 1,
            state: RowState::Written,
            key: Some(key.into()),
            created: false,
            record_url: None,
            error: None,
            hash: Some([hash; 16]),
        }
    }

    #[test]
    fn content_hashes_are_those_version_1_streamed() {
        let parts: [&[u8]; 3] = [
            b"PATCH",
            b"accounts(accountnumber='A-1')",
            b"{\"name\":\"A\"}",
        ];
        let mut streamed = xxhash_rust::xxh3::Xxh3Default::new();
        for p in parts {
            streamed.update(p);
            streamed.update(&[0]);
        }
        assert_eq!(hash16(&parts), streamed.digest128().to_le_bytes());
        assert_ne!(key_id(""), 0, "0 means no key");
    }

    #[test]
    fn a_resume_chain_sees_the_rows_of_every_earlier_run() {
        let (_dir, mut l, first) = ledger_with_a_run();
        // Row 2 created its record (an `If-None-Match` create): it gets its own `rows` record.
        let created = RowOutcome {
            created: true,
            record_url: Some("accounts(k2)".into()),
            ..written(2, "k2", 2)
        };
        l.record(first, 0, &[written(1, "k1", 1), created]).unwrap();
        let mut unsent = written(3, "k3", 3);
        unsent.state = RowState::Unsent;
        l.record(first, 0, &[unsent]).unwrap();
        let last = l.last_run("m.toml").unwrap().unwrap();
        assert!(last.unfinished(), "never ended");
        assert_eq!(
            (last.counts.read, last.counts.written, last.counts.rejected),
            (3, 2, 1),
            "a killed run's counts are those of its recorded rows"
        );
        let (_, job_counts, _) = &l.jobs(first).unwrap()[0];
        assert_eq!(
            (job_counts.read, job_counts.written),
            (3, 2),
            "and so are those of the mapping it died in"
        );
        let second = l.begin_run("m.toml", Some(&last), false, "t1").unwrap();
        l.begin_job(second, 0, &info()).unwrap();
        l.record(second, 0, &[written(4, "k4", 4)]).unwrap();
        let done = l.done_rows(first, 0).unwrap();
        let mut rows: Vec<u64> = done.keys().copied().collect();
        rows.sort();
        assert_eq!(rows, [1, 2, 4], "unsent rows are not done");
        assert_eq!(done[&1], key_id("k1"));
        // A record undo deleted is not done any more: a resume creates it again.
        l.mark_undone(first, &[(0, 2, "accounts".into(), "k2".into())])
            .unwrap();
        let mut rows: Vec<u64> = l.done_rows(first, 0).unwrap().into_keys().collect();
        rows.sort();
        assert_eq!(rows, [1, 4], "undone rows are not done");
        l.end_run(second, 0, "t2").unwrap();
        let hashes = l.content_index("accounts", i64::MAX, 0).unwrap();
        assert_eq!(hashes.len(), 2, "k2 forgotten by the undo");
        assert_eq!(hashes[&key_id("k4")], [4; 16]);
        l.end_job(
            second,
            0,
            &Counts {
                read: 1,
                written: 1,
                ..Counts::default()
            },
            2,
        )
        .unwrap();
        l.end_run(second, 0, "t2").unwrap();
        let run = l.run(second).unwrap().unwrap();
        assert_eq!(
            (run.chain, run.resumed_from, run.exit_code),
            (first, Some(first), Some(0))
        );
        assert_eq!((run.counts.written, run.passed_over), (1, 2));
        assert!(!run.unfinished());
        assert_eq!(l.runs(10).unwrap().len(), 2);
    }

    /// A new ledger with run 1 started and its job 0 begun.
    fn ledger_with_a_run() -> (tempfile::TempDir, Ledger, i64) {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let run = l.begin_run("m.toml", None, false, "t0").unwrap();
        l.begin_job(run, 0, &info()).unwrap();
        (dir, l, run)
    }

    fn query_u64(l: &Ledger, sql: &str) -> u64 {
        l.conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64
    }

    #[test]
    fn plain_rows_are_packed_into_spans_and_the_view_lists_every_row() {
        let (_dir, mut l, run) = ledger_with_a_run();
        let mut outcomes: Vec<RowOutcome> = (1..=1000)
            .map(|i| written(i, &format!("k{i}"), 1))
            .collect();
        outcomes[499] = RowOutcome {
            state: RowState::Rejected,
            error: Some("Dataverse 400".into()),
            hash: None,
            ..outcomes[499].clone()
        };
        outcomes.reverse(); // answers come back in any order
        l.record(run, 0, &outcomes).unwrap();
        assert_eq!(
            query_u64(&l, "SELECT count(*) FROM spans"),
            2,
            "rows 1-499 and 501-1000"
        );
        assert_eq!(
            query_u64(&l, "SELECT count(*) FROM rows"),
            1,
            "the rejected row"
        );
        assert_eq!(
            query_u64(
                &l,
                "SELECT count(*) FROM row_outcomes WHERE outcome = 'written'"
            ),
            999
        );
        assert_eq!(
            query_u64(&l, "SELECT count(DISTINCT row) FROM row_outcomes"),
            1000
        );
        let key_of_row_1000: String = l
            .conn
            .query_row("SELECT key FROM row_outcomes WHERE row = 1000", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            key_of_row_1000, "k1000",
            "a person reads each row's key in the view"
        );
        assert_eq!(l.count_outcome(run, RowState::Written).unwrap(), 999);
        assert_eq!(
            l.run(run).unwrap().unwrap().counts.rejected,
            1,
            "a killed run's counts"
        );
        let done = l.done_rows(run, 0).unwrap();
        assert_eq!(done.len(), 1000);
        assert_eq!(done[&1000], key_id("k1000"));
    }

    #[test]
    fn a_killed_run_makes_the_next_changed_only_run_distrust_the_index_once() {
        let (_dir, mut l, first) = ledger_with_a_run();
        l.record(first, 0, &[written(1, "k1", 1)]).unwrap();
        // `first` never ended: killed. A resume of it keeps the index; another run drops it.
        let resume = l
            .begin_run("m.toml", l.run(first).unwrap().as_ref(), true, "t1")
            .unwrap();
        l.begin_job(resume, 0, &info()).unwrap();
        assert!(l.killed_before("accounts", resume).unwrap().is_empty());
        let fresh = l.begin_run("m.toml", None, true, "t2").unwrap();
        assert_eq!(l.killed_before("accounts", fresh).unwrap(), [first, resume]);
        l.begin_job(fresh, 0, &info()).unwrap();
        assert!(l.content_index("accounts", fresh, 0).unwrap().is_empty());
        l.record(fresh, 0, &[written(2, "k2", 2)]).unwrap();
        l.end_run(fresh, 0, "t3").unwrap();
        let next = l.begin_run("m.toml", None, true, "t4").unwrap();
        assert!(
            l.killed_before("accounts", next).unwrap().is_empty(),
            "settled"
        );
        let index = l.content_index("accounts", next, 0).unwrap();
        assert_eq!(index.len(), 1, "only what the run after the kill wrote");
        assert_eq!(index[&key_id("k2")], [2; 16]);
    }

    #[test]
    fn the_content_index_folds_runs_in_order_and_only_before_the_current_run() {
        let (_dir, mut l, first) = ledger_with_a_run();
        l.record(first, 0, &[written(1, "k1", 1), written(2, "k2", 2)])
            .unwrap();
        l.end_run(first, 0, "t0").unwrap();
        let second = l.begin_run("m.toml", None, true, "t1").unwrap();
        l.begin_job(second, 0, &info()).unwrap();
        // The index a run sees is that of the runs before it.
        let seen = l.content_index("accounts", second, 0).unwrap();
        assert_eq!((seen.len(), seen[&key_id("k1")]), (2, [1; 16]));
        l.record(second, 0, &[written(1, "k1", 9)]).unwrap();
        let other = JobInfo {
            entity_set: "contacts".into(),
            ..info()
        };
        l.begin_job(second, 1, &other).unwrap();
        l.record(second, 1, &[written(1, "k1", 7)]).unwrap();
        l.end_run(second, 0, "t1").unwrap();
        let after = l.content_index("accounts", i64::MAX, 0).unwrap();
        assert_eq!(after[&key_id("k1")], [9; 16], "the later write wins");
        assert_eq!(after[&key_id("k2")], [2; 16]);
        assert_eq!(
            l.content_index("contacts", i64::MAX, 0).unwrap().len(),
            1,
            "per entity set"
        );
        // Two mappings of one run write the same key: the later mapping wins, whatever the row
        // numbers, and the later mapping already compares with the earlier one's write.
        let third = l.begin_run("m.toml", None, true, "t2").unwrap();
        l.begin_job(third, 0, &info()).unwrap();
        l.record(third, 0, &[written(5, "k2", 5)]).unwrap();
        l.begin_job(third, 1, &info()).unwrap();
        let seen = l.content_index("accounts", third, 1).unwrap();
        assert_eq!(
            seen[&key_id("k2")],
            [5; 16],
            "mapping 1 sees mapping 0's write"
        );
        l.record(third, 1, &[written(1, "k2", 6)]).unwrap();
        l.end_run(third, 0, "t2").unwrap();
        let after = l.content_index("accounts", i64::MAX, 0).unwrap();
        assert_eq!(after[&key_id("k2")], [6; 16], "the later mapping wins");
        // Folded once: reading it again changes nothing.
        assert_eq!(l.content_index("accounts", i64::MAX, 0).unwrap(), after);
    }

    #[test]
    fn pruning_keeps_the_newest_runs_resumable_chains_and_the_content_index() {
        let (_dir, mut l, first) = ledger_with_a_run();
        l.record(first, 0, &[written(1, "k1", 1)]).unwrap();
        let one = Counts {
            read: 1,
            written: 1,
            ..Counts::default()
        };
        l.end_job(first, 0, &one, 0).unwrap();
        l.end_run(first, 0, "t1").unwrap();
        // A run stopped early (exit 4): a resume may continue it, so its rows stay.
        let stopped = l.begin_run("m.toml", None, false, "t2").unwrap();
        l.begin_job(stopped, 0, &info()).unwrap();
        l.record(stopped, 0, &[written(1, "k1", 2)]).unwrap();
        l.end_run(stopped, 4, "t3").unwrap();
        let newest = l.begin_run("other.toml", None, false, "t4").unwrap();
        l.begin_job(newest, 0, &info()).unwrap();
        l.record(newest, 0, &[written(1, "k9", 9)]).unwrap();
        l.end_run(newest, 0, "t5").unwrap();

        let (pruned, deleted) = l.prune(1).unwrap();
        assert_eq!((pruned, deleted), (vec![first], 1));
        let gone = l.run(first).unwrap().unwrap();
        assert!(l.pruned(&gone).unwrap());
        assert_eq!(gone.counts.written, 1, "its summary stays");
        assert!(!l.pruned(&l.run(newest).unwrap().unwrap()).unwrap());
        assert_eq!(
            l.done_rows(stopped, 0).unwrap().len(),
            1,
            "the stopped run's rows stay"
        );
        // What the pruned run wrote is still in the content index.
        let index = l.content_index("accounts", i64::MAX, 0).unwrap();
        assert_eq!(index[&key_id("k1")], [2; 16]);
        assert_eq!(index[&key_id("k9")], [9; 16]);
        assert_eq!(l.runs(10).unwrap().len(), 3, "the history stays");
        assert_eq!(
            l.prune(1).unwrap().0,
            Vec::<i64>::new(),
            "nothing left to prune"
        );
        l.vacuum().unwrap();
    }

    #[test]
    fn a_version_1_ledger_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(Ledger::file(dir.path())).unwrap();
            conn.execute_batch(
                "CREATE TABLE runs (id INTEGER PRIMARY KEY, job TEXT NOT NULL, chain INTEGER NOT NULL,
                   resumed_from INTEGER, changed_only INTEGER NOT NULL DEFAULT 0, started_at TEXT NOT NULL,
                   ended_at TEXT, exit_code INTEGER);
                 CREATE TABLE run_jobs (run_id INTEGER NOT NULL, seq INTEGER NOT NULL, mapping TEXT NOT NULL,
                   mapping_hash TEXT NOT NULL, source TEXT NOT NULL, source_size INTEGER NOT NULL,
                   source_hash TEXT NOT NULL, entity_set TEXT NOT NULL, operation TEXT NOT NULL,
                   read INTEGER NOT NULL DEFAULT 0, written INTEGER NOT NULL DEFAULT 0,
                   rejected INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0,
                   unchanged INTEGER NOT NULL DEFAULT 0, passed_over INTEGER NOT NULL DEFAULT 0,
                   PRIMARY KEY (run_id, seq));
                 CREATE TABLE rows (run_id INTEGER NOT NULL, seq INTEGER NOT NULL, row INTEGER NOT NULL,
                   line INTEGER NOT NULL, outcome TEXT NOT NULL, key TEXT, created INTEGER NOT NULL DEFAULT 0,
                   record_url TEXT, error TEXT, PRIMARY KEY (run_id, seq, row)) WITHOUT ROWID;
                 CREATE TABLE content (entity_set TEXT NOT NULL, key TEXT NOT NULL, hash BLOB NOT NULL,
                   run_id INTEGER NOT NULL, PRIMARY KEY (entity_set, key)) WITHOUT ROWID;
                 INSERT INTO runs VALUES (1, 'm.toml', 1, NULL, 0, 't0', NULL, NULL);
                 INSERT INTO run_jobs (run_id, seq, mapping, mapping_hash, source, source_size, source_hash, entity_set, operation)
                   VALUES (1, 0, 'm.toml', 'mh', 's.csv', 10, 'sh', 'accounts', 'upsert');
                 INSERT INTO rows VALUES (1, 0, 1, 2, 'written', 'k1', 0, NULL, NULL);
                 INSERT INTO content VALUES ('accounts', 'k1', x'01010101010101010101010101010101', 1);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let mut l = Ledger::open(dir.path()).unwrap();
        assert_eq!(query_u64(&l, "PRAGMA user_version"), VERSION as u64);
        assert_eq!(
            l.done_rows(1, 0).unwrap()[&1],
            key_id("k1"),
            "its rows stay"
        );
        assert!(l.last_run("m.toml").unwrap().unwrap().unfinished());
        // (An unfinished run makes --changed-only distrust the index: end it to read it.)
        l.end_run(1, 0, "t0").unwrap();
        let index = l.content_index("accounts", i64::MAX, 0).unwrap();
        assert_eq!(index[&key_id("k1")], [1; 16]);
        let run = l.begin_run("m.toml", None, false, "t1").unwrap();
        l.record(run, 0, &[written(2, "k2", 2)]).unwrap();
        assert_eq!(query_u64(&l, "SELECT count(*) FROM row_outcomes"), 2);
        drop(l);
        // A ledger from a newer dvload is refused, not damaged.
        let conn = Connection::open(Ledger::file(dir.path())).unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        drop(conn);
        let err = Ledger::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("schema version is 8"), "{err}");
    }
}
