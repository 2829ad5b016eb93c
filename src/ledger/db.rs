//! The run ledger: one SQLite file per state directory (`STATE_DIR/ledger.sqlite`) holding every
//! run, every row's outcome and the last written content of every key; used by resume, `--changed-only`, `runs` and `undo`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension as _, params};

use super::Counts;

/// The ledger's schema (also in the README). Version 1.
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
CREATE TABLE IF NOT EXISTS rows (
  run_id     INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  row        INTEGER NOT NULL,                -- source row number (CSV data row, JSON element, JSONL record)
  line       INTEGER NOT NULL,                -- physical line it starts on
  outcome    TEXT NOT NULL,                   -- written | rejected | skipped | unchanged | unsent
  key        TEXT,                            -- Operation.key: the target record's identity
  created    INTEGER NOT NULL DEFAULT 0,      -- 1: a create operation (POST, or PATCH with If-None-Match)
  record_url TEXT,                            -- what undo deletes: entity_set(key) or entity_set(guid)
  error      TEXT,                            -- the reason, for rejected and unsent rows
  PRIMARY KEY (run_id, seq, row)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS content (
  entity_set TEXT NOT NULL,
  key        TEXT NOT NULL,
  hash       BLOB NOT NULL,                   -- XXH3-128 of (method, url, body)
  run_id     INTEGER NOT NULL,                -- the run that last wrote it
  PRIMARY KEY (entity_set, key)
) WITHOUT ROWID;
PRAGMA user_version = 1;
";

/// What became of one row, as the ledger keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowState {
    /// Dataverse accepted its operation.
    Written,
    /// Rejected by the reader, the mapping or Dataverse.
    Rejected,
    /// Skipped by the mapping's filter.
    Skipped,
    /// `--changed-only`: same payload as last written.
    Unchanged,
    /// The run stopped before writing it (a resume sends it).
    Unsent,
}

impl RowState {
    /// The text stored in `rows.outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Written => "written",
            RowState::Rejected => "rejected",
            RowState::Skipped => "skipped",
            RowState::Unchanged => "unchanged",
            RowState::Unsent => "unsent",
        }
    }
}

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
        matches!(self.exit_code, None | Some(2) | Some(3) | Some(4))
    }
}

/// A ledger error (rusqlite's, with what was being done).
#[derive(Debug, thiserror::Error)]
#[error("run ledger {}: {what}: {source}", path.display())]
pub struct LedgerError {
    path: PathBuf,
    what: &'static str,
    #[source]
    source: rusqlite::Error,
}

type Result<T> = std::result::Result<T, LedgerError>;

/// The open ledger of one state directory.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

/// A 128-bit content hash (XXH3-128) of `parts`, each followed by a 0 byte. Not cryptographic:
/// it tells whether a payload changed since the last run (`--changed-only`), where an accidental
/// collision is about 2^-128 per pair; SHA-256 here cost more than the SQLite inserts.
pub fn hash16(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    for p in parts {
        h.update(p);
        h.update(&[0]);
    }
    h.digest128().to_le_bytes()
}

/// A 64-bit identity of a key, for in-memory sets.
pub fn key_id(key: &str) -> u64 {
    let h = hash16(&[key.as_bytes()]);
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
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
            move |source| LedgerError { path, what, source }
        };
        let _ = std::fs::create_dir_all(dir);
        let conn = Connection::open(&path).map_err(err("cannot open"))?;
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
        conn.execute_batch(SCHEMA)
            .map_err(err("cannot create the schema"))?;
        Ok(Ledger { conn, path })
    }

    /// Opens an existing ledger for reading (`runs`, `undo`); an error when there is none.
    pub fn open_existing(dir: &Path) -> anyhow::Result<Ledger> {
        if !Ledger::file(dir).exists() {
            anyhow::bail!(
                "no run ledger in {} (runs that sent rows create it; --state DIR names another)",
                dir.display()
            );
        }
        Ok(Ledger::open(dir)?)
    }

    fn err(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> LedgerError + '_ {
        move |source| LedgerError {
            path: self.path.clone(),
            what,
            source,
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
            source,
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
            source,
        })
    }

    /// Records the start of one mapping of a run.
    pub fn begin_job(&mut self, run_id: i64, seq: usize, info: &JobInfo) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO run_jobs (run_id, seq, mapping, mapping_hash, source, source_size, source_hash, entity_set, operation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    run_id,
                    seq as i64,
                    info.mapping,
                    info.mapping_hash,
                    info.source,
                    info.source_size as i64,
                    info.source_hash,
                    info.entity_set,
                    info.operation
                ],
            )
            .map(|_| ())
            .map_err(self.err("cannot record a job"))
    }

    /// Records a job's counts (at its end).
    pub fn end_job(
        &mut self,
        run_id: i64,
        seq: usize,
        counts: &Counts,
        passed_over: u64,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE run_jobs SET read = ?3, written = ?4, rejected = ?5, skipped = ?6, unchanged = ?7, passed_over = ?8
                 WHERE run_id = ?1 AND seq = ?2",
                params![
                    run_id,
                    seq as i64,
                    counts.read as i64,
                    counts.written as i64,
                    counts.rejected as i64,
                    counts.skipped as i64,
                    counts.unchanged as i64,
                    passed_over as i64
                ],
            )
            .map(|_| ())
            .map_err(self.err("cannot record a job's counts"))
    }

    /// Records the end of a run.
    pub fn end_run(&mut self, run_id: i64, exit_code: u8, ended_at: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE runs SET ended_at = ?2, exit_code = ?3 WHERE id = ?1",
                params![run_id, ended_at, exit_code as i64],
            )
            .map(|_| ())
            .map_err(self.err("cannot record the end of the run"))
    }

    /// Records a batch of row outcomes in one transaction; written rows with a key and a hash
    /// update the key's content hash.
    pub fn record(
        &mut self,
        run_id: i64,
        seq: usize,
        entity_set: &str,
        outcomes: &[RowOutcome],
    ) -> Result<()> {
        let path = self.path.clone();
        let wrap = move |source| LedgerError {
            path: path.clone(),
            what: "cannot record row outcomes",
            source,
        };
        let tx = self.conn.transaction().map_err(&wrap)?;
        {
            let mut row_stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO rows (run_id, seq, row, line, outcome, key, created, record_url, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(&wrap)?;
            let mut content_stmt = tx
                .prepare_cached(
                    "INSERT INTO content (entity_set, key, hash, run_id) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (entity_set, key) DO UPDATE SET hash = excluded.hash, run_id = excluded.run_id",
                )
                .map_err(&wrap)?;
            for o in outcomes {
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
                        o.error
                    ])
                    .map_err(&wrap)?;
                if let (RowState::Written, Some(key), Some(hash)) = (o.state, &o.key, &o.hash) {
                    if !key.is_empty() {
                        content_stmt
                            .execute(params![entity_set, key, &hash[..], run_id])
                            .map_err(&wrap)?;
                    }
                }
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
        let mut stmt = self
            .conn
            .prepare_cached("SELECT outcome, count(*) FROM rows WHERE run_id = ?1 GROUP BY outcome")
            .map_err(self.err("cannot read the rows"))?;
        let pairs = stmt
            .query_map(params![run.id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|source| LedgerError {
                path: self.path.clone(),
                what: "cannot read the rows",
                source,
            })?;
        let mut counts = Counts::default();
        for (outcome, n) in pairs {
            match outcome.as_str() {
                "written" => counts.written += n,
                "skipped" => counts.skipped += n,
                "unchanged" => counts.unchanged += n,
                _ => counts.rejected += n,
            }
            counts.read += n;
        }
        run.counts = counts;
        Ok(run)
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
                source,
            })?;
        rows.into_iter()
            .map(|run| self.with_recorded_counts(run))
            .collect()
    }

    /// The jobs of a run, with their counts.
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
                source,
            })?;
        Ok(rows)
    }

    /// True when a run of the chain recorded any row.
    pub fn chain_has_rows(&self, chain: i64) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM rows r JOIN runs u ON u.id = r.run_id WHERE u.chain = ?1)",
                params![chain],
                |r| r.get(0),
            )
            .map_err(self.err("cannot read the rows"))
    }

    /// Rows already done (any outcome but `unsent`) by the runs of a resume chain, for one
    /// mapping: row number → key identity (0 when the row had no key). A created record that
    /// `undo` deleted since is not done: a resume creates it again.
    pub fn done_rows(&self, chain: i64, seq: usize) -> Result<HashMap<u64, u64>> {
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
            source,
        })? {
            let row: i64 = r.get(0).unwrap_or_default();
            let key: Option<String> = r.get(1).unwrap_or_default();
            done.insert(row as u64, key.as_deref().map_or(0, key_id));
        }
        Ok(done)
    }

    /// The last written content hash of every key of an entity set: key identity → hash.
    pub fn content_hashes(&self, entity_set: &str) -> Result<HashMap<u64, [u8; 16]>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, hash FROM content WHERE entity_set = ?1")
            .map_err(self.err("cannot read the content hashes"))?;
        let mut out = HashMap::new();
        let mut rows = stmt
            .query(params![entity_set])
            .map_err(self.err("cannot read the content hashes"))?;
        while let Some(r) = rows.next().map_err(|source| LedgerError {
            path: self.path.clone(),
            what: "cannot read the content hashes",
            source,
        })? {
            let key: String = r.get(0).unwrap_or_default();
            let hash: Vec<u8> = r.get(1).unwrap_or_default();
            if let Ok(h) = <[u8; 16]>::try_from(hash.as_slice()) {
                out.insert(key_id(&key), h);
            }
        }
        Ok(out)
    }

    /// Rows of a run with a given outcome: (seq, row, line, key, record_url, error).
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
                source,
            })?;
        Ok(rows)
    }

    /// Marks created rows as taken back by `undo` (`created` becomes 2) and forgets their keys'
    /// content, so that `--changed-only` sends them again: (seq, row, entity set, key).
    pub fn mark_undone(
        &mut self,
        run_id: i64,
        rows: &[(usize, u64, String, String)],
    ) -> Result<()> {
        let path = self.path.clone();
        let wrap = move |source| LedgerError {
            path: path.clone(),
            what: "cannot record the undo",
            source,
        };
        let tx = self.conn.transaction().map_err(&wrap)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE rows SET created = 2 WHERE run_id = ?1 AND seq = ?2 AND row = ?3",
                )
                .map_err(&wrap)?;
            let mut forget = tx
                .prepare_cached("DELETE FROM content WHERE entity_set = ?1 AND key = ?2")
                .map_err(&wrap)?;
            for (seq, row, entity_set, key) in rows {
                stmt.execute(params![run_id, *seq as i64, *row as i64])
                    .map_err(&wrap)?;
                forget.execute(params![entity_set, key]).map_err(&wrap)?;
            }
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
    fn a_resume_chain_sees_the_rows_of_every_earlier_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let first = l.begin_run("m.toml", None, false, "t0").unwrap();
        l.begin_job(first, 0, &info()).unwrap();
        l.record(
            first,
            0,
            "accounts",
            &[written(1, "k1", 1), written(2, "k2", 2)],
        )
        .unwrap();
        let mut unsent = written(3, "k3", 3);
        unsent.state = RowState::Unsent;
        l.record(first, 0, "accounts", &[unsent]).unwrap();
        let last = l.last_run("m.toml").unwrap().unwrap();
        assert!(last.unfinished(), "never ended");
        assert_eq!(
            (last.counts.read, last.counts.written, last.counts.rejected),
            (3, 2, 1),
            "a killed run's counts are those of its recorded rows"
        );
        let second = l.begin_run("m.toml", Some(&last), false, "t1").unwrap();
        l.begin_job(second, 0, &info()).unwrap();
        l.record(second, 0, "accounts", &[written(4, "k4", 4)])
            .unwrap();
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
        let hashes = l.content_hashes("accounts").unwrap();
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
}
