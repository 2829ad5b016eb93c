//! The content index of the ledger: the last written content of every key, folded from the runs'
//! writes into a sorted index that `--changed-only` compares with, and forgotten for keys an undo
//! may delete.

use super::*;

impl Ledger {
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
}

/// The run up to which an entity set's written rows are in its content index (0: none).
pub(super) fn folded_through(conn: &Connection, entity_set: &str) -> rusqlite::Result<i64> {
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
pub(super) fn fold_content(
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
pub(super) fn apply_run_writes(
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
pub(super) fn killed_runs(
    conn: &Connection,
    entity_set: &str,
    before_run: i64,
) -> rusqlite::Result<Vec<i64>> {
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
pub(super) fn reset_content(
    tx: &Connection,
    entity_set: &str,
    through: i64,
) -> rusqlite::Result<()> {
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
pub(super) fn forget_keys(
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
pub(super) fn write_content(
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
