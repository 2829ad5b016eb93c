//! The run ledger: one SQLite file per state directory (`STATE_DIR/ledger.sqlite`) holding every
//! run, every row's outcome and the last written content of every key; used by resume, `--changed-only`, `runs` and `undo`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension as _, params};

mod content;
mod schema;

use super::packed::{self, ContentIndex, needs_own_row};
use crate::keys::Collation;
use crate::outcome::{Counts, RowState};
use content::{fold_content, forget_keys};
pub use schema::SCHEMA;
use schema::{VERSION, migrate_v1};

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
    /// A rejected row's fingerprint: its reason and content (see `journal::fingerprint`).
    pub fingerprint: Option<[u8; 16]>,
}

/// The rejected rows of resume chain `?1` (every run of it): `seq, row, error, known`, `known`
/// when a run of an earlier chain rejected the same row for the same reason through the same
/// mapping file (their fingerprints match).
const CHAIN_REJECTS: &str = "SELECT r.seq AS seq, r.row AS row, coalesce(r.error, '') AS error,
       EXISTS (SELECT 1 FROM rows p
               JOIN runs pr ON pr.id = p.run_id
               JOIN run_jobs pj ON pj.run_id = p.run_id AND pj.seq = p.seq
               WHERE p.fingerprint = r.fingerprint AND p.outcome = 'rejected'
                 AND pr.chain < ?1 AND pj.mapping = rj.mapping) AS known
     FROM rows r
     JOIN runs rr ON rr.id = r.run_id
     JOIN run_jobs rj ON rj.run_id = r.run_id AND rj.seq = r.seq
     WHERE rr.chain = ?1 AND r.outcome = 'rejected'";

/// A rejected row of a resume chain (see [`Ledger::chain_rejects`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReject {
    /// The mapping's position in the run.
    pub seq: usize,
    /// The source row.
    pub row: u64,
    /// Why it was rejected.
    pub error: String,
    /// A run of an earlier chain rejected the same row for the same reason.
    pub known: bool,
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
                2..=7 => tx
                    .execute_batch("ALTER TABLE rows ADD COLUMN fingerprint BLOB;")
                    .and_then(|()| tx.execute_batch(SCHEMA))
                    .map_err(err("cannot upgrade the ledger to version 8"))?,
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

    /// The rejected rows of resume chain `chain` (every run of it) for each of its mappings (by
    /// position), told apart: `known` when a run of an earlier chain rejected the same row for
    /// the same reason through the same mapping file (their fingerprints match: a replay of a
    /// rejects file, which runs one mapping of a larger job, finds the job's rejects), `new`
    /// otherwise.
    pub fn reject_history(&self, chain: i64) -> Result<HashMap<usize, crate::exit::RejectHistory>> {
        let wrap = wrapper(&self.path, "cannot read the rejects of earlier runs");
        let sql = format!("SELECT seq, known, count(*) FROM ({CHAIN_REJECTS}) GROUP BY seq, known");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(&wrap)?;
        let mut out: HashMap<usize, crate::exit::RejectHistory> = HashMap::new();
        let mut rows = stmt.query(params![chain]).map_err(&wrap)?;
        while let Some(r) = rows.next().map_err(&wrap)? {
            let seq: i64 = r.get(0).map_err(&wrap)?;
            let known: bool = r.get(1).map_err(&wrap)?;
            let n: i64 = r.get(2).map_err(&wrap)?;
            let h = out.entry(seq as usize).or_default();
            if known {
                h.known += n as u64;
            } else {
                h.new += n as u64;
            }
        }
        Ok(out)
    }

    /// Every rejected row of resume chain `chain`, in mapping and row order, with whether a run
    /// of an earlier chain rejected it too (see [`Ledger::reject_history`]).
    pub fn chain_rejects(&self, chain: i64) -> Result<Vec<ChainReject>> {
        let wrap = wrapper(&self.path, "cannot read the rejects of earlier runs");
        let sql = format!("{CHAIN_REJECTS} ORDER BY r.seq, r.row");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(&wrap)?;
        let rows = stmt
            .query_map(params![chain], |r| {
                Ok(ChainReject {
                    seq: r.get::<_, i64>(0)? as usize,
                    row: r.get::<_, i64>(1)? as u64,
                    error: r.get(2)?,
                    known: r.get(3)?,
                })
            })
            .map_err(&wrap)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&wrap)
    }

    /// Records a batch of row outcomes in one transaction: rows with a reason or a created
    /// record each get a `rows` record, the others are packed into `spans`.
    pub fn record(&mut self, run_id: i64, seq: usize, outcomes: &[RowOutcome]) -> Result<()> {
        let wrap = wrapper(&self.path, "cannot record row outcomes");
        let tx = self.conn.transaction().map_err(&wrap)?;
        {
            let mut row_stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO rows (run_id, seq, row, line, outcome, key, created, record_url, error, hash, fingerprint)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
                        o.hash.as_ref().map(|h| &h[..]),
                        o.fingerprint.as_ref().map(|h| &h[..])
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
mod tests;
