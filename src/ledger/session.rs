//! One `dvload run` as the ledger sees it: the lock, the run record, the resume decision (with its
//! refusal when the mapping or the source changed) and each job's hooks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::db::{Environment, JobInfo, Ledger, RunRow, UNHASHED, file_sha256, source_fingerprint};
use super::journal::{AdmitPlan, JobJournal};
use super::lock::StateLock;
use crate::exit::Exit;
use crate::outcome::Counts;

/// The default state directory: `.dvload/` beside the first mapping file.
pub fn default_state_dir(first_mapping: &Path) -> PathBuf {
    first_mapping
        .parent()
        .unwrap_or(Path::new("."))
        .join(".dvload")
}

/// Takes the state directory's lock; a held lock is exit 5 and changes nothing.
pub fn lock(dir: &Path) -> crate::Result<StateLock> {
    Ok(StateLock::acquire(dir)?)
}

/// The identity of a job in the ledger: its mapping files (as given, made absolute), one per line.
pub fn job_identity(mappings: &[PathBuf]) -> String {
    mappings
        .iter()
        .map(|m| {
            std::fs::canonicalize(m)
                .unwrap_or_else(|_| m.clone())
                .display()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How the run was asked to start.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// `--resume`.
    pub resume: bool,
    /// `--force`.
    pub force: bool,
    /// `--changed-only`.
    pub changed_only: bool,
}

/// A run being recorded.
pub struct RunSession {
    /// The job's identity in the ledger (its mapping files).
    pub job: String,
    _lock: StateLock,
    /// The ledger.
    pub ledger: Ledger,
    /// This run's id.
    pub run_id: i64,
    /// The run this one continues.
    pub resumed: Option<RunRow>,
    /// What each job looked like when the run started.
    pub infos: Vec<JobInfo>,
    changed_only: bool,
    /// Notes for the user (resume, an unfinished earlier run).
    pub notes: Vec<String>,
    /// When the records of this run's resume chain began (RFC 3339), for a resumed run whose
    /// chain wrote: records created since then by the run's user may be the chain's own (see
    /// `writer::decide::read_back`). `None`: this run sets the clock (`set_writes_since`).
    pub chain_writes_since: Option<String>,
}

impl RunSession {
    /// The rejected rows of this run's resume chain for each mapping, new and known (see
    /// [`Ledger::reject_history`]).
    pub fn reject_history(
        &self,
    ) -> crate::Result<std::collections::HashMap<usize, crate::exit::RejectHistory>> {
        let chain = self.resumed.as_ref().map_or(self.run_id, |r| r.chain);
        Ok(self.ledger.reject_history(chain)?)
    }

    /// Every rejected row of this run's resume chain, new and known (for the HTML report).
    pub fn chain_rejects(&self) -> crate::Result<Vec<crate::ledger::db::ChainReject>> {
        let chain = self.resumed.as_ref().map_or(self.run_id, |r| r.chain);
        Ok(self.ledger.chain_rejects(chain)?)
    }
}

/// What the ledger records of one mapping of a run: its files, and what it writes where.
#[derive(Debug, Clone, Copy)]
pub struct JobFiles<'a> {
    /// The mapping file.
    pub mapping: &'a Path,
    /// The source file.
    pub source: &'a Path,
    /// The entity set it writes.
    pub entity_set: &'a str,
    /// The operation's name (`upsert`, `create`, ...).
    pub operation: &'a str,
}

impl RunSession {
    /// Opens the ledger under `lock`, decides whether to resume, and records the run's start.
    pub fn start(
        lock: StateLock,
        dir: &Path,
        mappings: &[PathBuf],
        jobs: &[JobFiles<'_>],
        options: StartOptions,
        started_at: &str,
    ) -> crate::Result<RunSession> {
        let mut ledger = Ledger::open(dir)?;
        let mut infos = Vec::with_capacity(jobs.len());
        for job in jobs {
            let (_, mapping_hash) = file_sha256(job.mapping).map_err(crate::Error::io(format!(
                "cannot read {}",
                job.mapping.display()
            )))?;
            let (source_size, source_hash) = source_fingerprint(job.source).map_err(
                crate::Error::io(format!("cannot read {}", job.source.display())),
            )?;
            infos.push(JobInfo {
                mapping: job.mapping.display().to_string(),
                mapping_hash,
                source: job.source.display().to_string(),
                source_size,
                source_hash,
                entity_set: job.entity_set.to_string(),
                operation: job.operation.to_string(),
            });
        }
        let identity = job_identity(mappings);
        let last = ledger.last_run(&identity)?;
        let mut notes = Vec::new();
        // A run that stopped for its set-up or its source (exit 3 or 2) before its chain wrote
        // anything has nothing to resume: the next run starts afresh (a killed one may have had
        // batches in flight, so it is always resumable).
        let last = match last {
            Some(l)
                if matches!(l.exit_code, Some(2) | Some(3))
                    && !ledger.chain_has_rows(l.chain)? =>
            {
                None
            }
            other => other,
        };
        let resumed = match last {
            Some(last) if last.unfinished() && options.resume => {
                for (seq, (before, _, _)) in ledger.jobs(last.id)?.iter().enumerate() {
                    let Some(now) = infos.get(seq) else { break };
                    let changed = if before.mapping_hash != now.mapping_hash {
                        Some(format!(
                            "the mapping {} changed since it started",
                            now.mapping
                        ))
                    } else if now.source_hash == UNHASHED || before.source_hash == UNHASHED {
                        // A pipe is read once, by the run: nothing can show that it holds the
                        // rows the interrupted run read.
                        Some(format!(
                            "the source {} is not a regular file (a pipe or a device), so nothing \
                             shows it holds the rows that run read (write it to a file to make runs \
                             resumable)",
                            now.source
                        ))
                    } else if before.source_hash != now.source_hash {
                        Some(format!(
                            "the source {} changed since it started ({} bytes then, {} now)",
                            now.source, before.source_size, now.source_size
                        ))
                    } else {
                        None
                    };
                    if let Some(what) = changed {
                        if options.force {
                            notes.push(format!(
                                "warning: run #{}: {what}; resuming anyway (--force): rows are matched by number",
                                last.id
                            ));
                        } else {
                            return Err(crate::Error::Unusable(format!(
                                "cannot resume run #{}: {what}; run without --resume to start \
                                     from the first row, or add --force to resume anyway (rows are matched by number)",
                                last.id
                            )));
                        }
                    }
                }
                Some(last)
            }
            Some(last) if last.unfinished() => {
                notes.push(format!(
                    "note: the last run of this job (#{}) did not finish; this run starts from the first row \
                     (add --resume to continue it instead)",
                    last.id
                ));
                None
            }
            Some(_) | None => {
                if options.resume {
                    notes.push("note: --resume: the last run of this job finished; starting from the first row".into());
                }
                None
            }
        };
        let run_id = ledger.begin_run(
            &identity,
            resumed.as_ref(),
            options.changed_only,
            started_at,
        )?;
        if let Some(r) = &resumed {
            notes.push(format!("resuming run #{} (run #{run_id})", r.id));
        }
        // The chain's records begin when its first run that got as far as writing recorded;
        // when none did, nothing of the chain was written (or an older dvload, which recorded no
        // clock, wrote it), and this run sets the clock itself.
        let chain_writes_since = match &resumed {
            Some(r) => ledger.chain_writes_since(r.chain)?,
            None => None,
        };
        Ok(RunSession {
            _lock: lock,
            job: identity,
            ledger,
            run_id,
            resumed,
            infos,
            changed_only: options.changed_only,
            notes,
            chain_writes_since,
        })
    }

    /// Binds the run to the environment it connected to, before its first write: a state
    /// directory keeps the history of one environment, because its resume chains, its
    /// `--changed-only` content index and `undo` all speak of records in that environment. A run
    /// against another one is refused (exit 2, nothing sent) with both environments named; one
    /// whose ledger recorded no environment yet (new, or written by an older dvload) adopts this
    /// one. Returns a note to print when the URL changed for the same organization.
    pub fn bind_environment(&mut self, env: &Environment) -> crate::Result<Option<String>> {
        let note = match self.ledger.environment()? {
            Some((run, recorded)) if !recorded.same_as(env) => {
                return Err(crate::Error::Unusable(other_environment(
                    self.ledger.path(),
                    run,
                    &recorded,
                    env,
                )));
            }
            Some((_, recorded)) if recorded.url != env.url => Some(format!(
                "note: the environment's URL changed since the last run ({} then, {} now): same organization {}",
                recorded.url, env.url, env.organization_id
            )),
            _ => None,
        };
        self.ledger.set_environment(self.run_id, env)?;
        Ok(note)
    }

    /// Settles the rejects file of job `seq` at `path` after the job: `wrote` says whether the
    /// job wrote rows to it. A file written is recorded as this job's; when nothing was written,
    /// a file left at `path` by an earlier run of this same job (a stopped run's unsent rows that
    /// a resume has since written, last night's rejects) lists rows that are not rejected now,
    /// and is removed: replaying it would write them twice. A file another job wrote there is
    /// left alone. Returns true when a stale file was removed.
    pub fn settle_rejects(&mut self, seq: usize, path: &Path, wrote: bool) -> crate::Result<bool> {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let key = absolute.to_string_lossy();
        if wrote {
            self.ledger
                .set_rejects_owner(&key, &self.job, seq, self.run_id)?;
            return Ok(false);
        }
        let ours = self
            .ledger
            .rejects_owner(&key)?
            .is_some_and(|(job, s)| job == self.job && s == seq);
        Ok(ours
            && remove_if_there(path).map_err(crate::Error::io(format!(
                "cannot remove {}",
                path.display()
            )))?)
    }

    /// The record ids of this run's resume chain (see `writer::ids`): those an interrupted run
    /// of the chain used, so that a resent create gets the id it had; for a new chain, drawn
    /// now and recorded before the first write.
    pub fn chain_ids(&mut self) -> crate::Result<crate::ids::ChainIds> {
        use crate::ids::ChainIds;
        let chain = self.resumed.as_ref().map_or(self.run_id, |r| r.chain);
        if let Some(ids) = self
            .ledger
            .chain_ids(chain)?
            .as_deref()
            .and_then(ChainIds::decode)
        {
            return Ok(ids);
        }
        let ids = ChainIds::new(jiff::Timestamp::now().as_second());
        self.ledger.set_chain_ids(chain, &ids.encode())?;
        Ok(ids)
    }

    /// Records the start of job `seq` and returns what its reader thread needs (None: send every row).
    pub fn begin_job(&mut self, seq: usize) -> crate::Result<(Option<AdmitPlan>, Arc<AtomicU64>)> {
        let info = self.infos[seq].clone();
        self.ledger.begin_job(self.run_id, seq, &info)?;
        let mismatches = Arc::new(AtomicU64::new(0));
        let (done, rejected) = match &self.resumed {
            Some(r) => (
                Some(self.ledger.done_rows(r.chain, seq)?),
                self.ledger.rejected_rows(r.chain, seq)?,
            ),
            None => (None, Default::default()),
        };
        if self.changed_only {
            let killed = self.ledger.killed_before(&info.entity_set, self.run_id)?;
            if !killed.is_empty() {
                let ids: Vec<String> = killed.iter().map(|r| format!("#{r}")).collect();
                self.notes.push(format!(
                    "note: run {} was killed before it recorded what it sent to {}: records it \
                     changed are unknown, so this --changed-only run sends every row (--resume \
                     continues a killed run instead)",
                    ids.join(", "),
                    info.entity_set
                ));
            }
        }
        let hashes = if self.changed_only {
            Some(
                self.ledger
                    .content_index(&info.entity_set, self.run_id, seq)?,
            )
        } else {
            None
        };
        if done.is_none() && hashes.is_none() {
            return Ok((None, mismatches));
        }
        Ok((
            Some(AdmitPlan {
                done,
                rejected,
                hashes,
                key_mismatches: mismatches.clone(),
                collation: self.ledger.collation(),
            }),
            mismatches,
        ))
    }

    /// The recorder of job `seq`.
    pub fn journal(&mut self, seq: usize, every: usize) -> JobJournal<'_> {
        JobJournal::new(&mut self.ledger, self.run_id, seq, every)
    }

    /// Records when this run's own records begin; a resume of its chain reads it back.
    pub fn set_writes_since(&mut self, since: jiff::Timestamp) -> crate::Result<()> {
        Ok(self
            .ledger
            .set_writes_since(self.run_id, &since.to_string())?)
    }

    /// Records job `seq`'s counts.
    pub fn end_job(&mut self, seq: usize, counts: &Counts, passed_over: u64) -> crate::Result<()> {
        Ok(self.ledger.end_job(self.run_id, seq, counts, passed_over)?)
    }

    /// Records the end of the run.
    pub fn finish(&mut self, exit: Exit, ended_at: &str) -> crate::Result<()> {
        Ok(self.ledger.end_run(self.run_id, exit.code(), ended_at)?)
    }
}

/// The refusal of a run (or an undo) against an environment other than the one a ledger's
/// history belongs to: names both, and what to do.
pub fn other_environment(
    ledger: &Path,
    run: i64,
    recorded: &Environment,
    now: &Environment,
) -> String {
    format!(
        "the run ledger {} holds the history of another Dataverse environment: organization {} at {} \
         (run #{run}), not organization {} at {}; its resume chains, --changed-only index and undo \
         speak of records that are not in this one, so nothing was sent. Keep one state directory \
         per environment: add --state DIR with a new directory for {} (or move {} away to start \
         this environment's history afresh)",
        ledger.display(),
        recorded.organization_id,
        recorded.url,
        now.organization_id,
        now.url,
        now.url,
        ledger.parent().unwrap_or(ledger).display(),
    )
}

/// Removes `path`; false when it was not there.
pub fn remove_if_there(path: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
