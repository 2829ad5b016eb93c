//! Lookups by any column (`match = { name = "Company" }`): finds each row's target through
//! queries before the row is admitted, so that the ledger, `--changed-only` and the writer see
//! the operation as it is sent.
//!
//! Rows are read a window at a time; the distinct values of a window that the job has not met
//! yet are asked for in a few `$filter=(col eq v) or (…)` queries (the Web API's `or`, documented
//! in "Filter rows using OData", learn.microsoft.com/power-apps/developer/data-platform/webapi/
//! query/filter-rows), and every answer is kept for the rest of the job. The service compares
//! the values by its collation; the answers are matched back to the values as
//! [`crate::keys::Collation`] compares them (case and trailing spaces ignored, accents as the
//! environment's base language says).

mod matching;

use std::collections::{HashMap, VecDeque};

use crate::job::Job;
use crate::mapping::{MatchLookup, RowError};
use crate::odata::Operation;
use crate::outcome::{Reject, Step};
use crate::writer::{Client, RetryPolicy};

pub use matching::Matches;

/// Rows read ahead and resolved together.
const WINDOW: usize = 2000;

/// Longest `$filter` text of one query, before percent-encoding: the Web API takes URLs of up to
/// 32 KB ("Compose HTTP requests", learn.microsoft.com/power-apps/developer/data-platform/webapi/
/// compose-http-requests-handle-errors); this stays well inside it once encoded.
const MAX_FILTER: usize = 6000;

/// What the writer's reader thread reads steps through when a job has lookups by `match`.
pub struct Resolver {
    client: Client,
    policy: RetryPolicy,
    runtime: tokio::runtime::Handle,
    matches: Matches,
    /// Each lookup's target primary id column, as the check before the run read it.
    primary: Vec<Option<String>>,
    queue: VecDeque<Step>,
    /// A source error met while filling the window: given after the steps before it.
    pending_error: Option<crate::source::SourceError>,
    /// Where the queries sent are counted.
    stats: std::sync::Arc<crate::writer::SendStats>,
}

impl Resolver {
    /// A resolver for `job`'s lookups by match, or `None` when it has none; it sends through
    /// `writer`'s client and retry policy, and takes the targets' primary id columns from the
    /// check the run made before its first write (`Writer::primary_ids`).
    pub fn for_job(
        job: &Job,
        writer: &crate::writer::Writer,
        runtime: tokio::runtime::Handle,
    ) -> Option<Resolver> {
        let lookups = job.plan.match_lookups().to_vec();
        if lookups.is_empty() {
            return None;
        }
        Some(Resolver {
            client: writer.client.clone(),
            policy: writer.options.policy,
            runtime,
            primary: lookups
                .iter()
                .map(|l| writer.primary_ids.get(&l.entity_set).cloned())
                .collect(),
            matches: Matches::new(lookups, writer.collation),
            queue: VecDeque::new(),
            pending_error: None,
            stats: writer.stats.clone(),
        })
    }

    /// The next step of `job`, its lookups by match resolved (or the row rejected saying why).
    /// Blocks on the network: call it from a blocking thread.
    pub fn next_step(&mut self, job: &mut Job) -> Option<Result<Step, crate::source::SourceError>> {
        if self.queue.is_empty() {
            if let Some(e) = self.pending_error.take() {
                return Some(Err(e));
            }
            self.fill(job);
        }
        match self.queue.pop_front() {
            Some(step) => Some(Ok(step)),
            None => self.pending_error.take().map(Err),
        }
    }

    fn fill(&mut self, job: &mut Job) {
        while self.queue.len() < WINDOW {
            match job.next_step() {
                None => break,
                Some(Err(e)) => {
                    self.pending_error = Some(e);
                    break;
                }
                Some(Ok(step)) => self.queue.push_back(step),
            }
        }
        let wanted = self
            .matches
            .missing(self.queue.iter().filter_map(|s| match s {
                Step::Operation(op, _) => Some(op),
                _ => None,
            }));
        let mut failed: HashMap<usize, String> = HashMap::new();
        for (lookup, values) in wanted {
            if let Err(why) = self.query(lookup, &values) {
                failed.insert(lookup, why);
            }
        }
        for step in self.queue.iter_mut() {
            let Step::Operation(op, record) = step else {
                continue;
            };
            if op.lookups.is_empty() {
                continue;
            }
            let reject = match self.matches.apply(op) {
                Ok(()) => continue,
                Err(e) => match failed.get(&e.lookup) {
                    Some(why) => Reject::Unsent(
                        record.clone(),
                        format!(
                            "not sent: lookup '{}' could not be resolved ({why}); replay it from this file",
                            self.matches.lookup(e.lookup).column
                        ),
                    ),
                    None => Reject::Mapping(
                        record.clone(),
                        RowError {
                            row: record.pos,
                            column: Some(self.matches.lookup(e.lookup).column.clone()),
                            field: e.field,
                            reason: e.reason,
                        },
                    ),
                },
            };
            *step = Step::Rejected(reject);
        }
    }

    /// Asks for the records of `lookup`'s target matching `values` (OData literals per
    /// column), and keeps what was found. An error says why the answer could not be had.
    fn query(&mut self, lookup: usize, values: &[Vec<String>]) -> Result<(), String> {
        let l = self.matches.lookup(lookup).clone();
        let primary = self.primary[lookup].clone().ok_or_else(|| {
            format!(
                "the primary id of {} is not known: the check before the run did not read that table",
                l.entity_set
            )
        })?;
        let select: Vec<&str> = std::iter::once(primary.as_str())
            .chain(l.columns.iter().map(String::as_str))
            .collect();
        let mut found = Vec::new();
        for filter in matching::filters(&l.columns, values, MAX_FILTER) {
            let mut path = format!(
                "{}?$select={}&$filter={}",
                l.entity_set,
                select.join(","),
                crate::odata::key::percent_encode(&filter)
            );
            if l.on_many == crate::mapping::spec::OnMany::First {
                path.push_str("&$orderby=createdon%20asc");
            }
            loop {
                let page = self.get_json(&path)?;
                let rows = page
                    .get("value")
                    .and_then(serde_json::Value::as_array)
                    .ok_or("the answer has no value list")?;
                found.extend(rows.iter().cloned());
                match page
                    .get("@odata.nextLink")
                    .and_then(serde_json::Value::as_str)
                {
                    Some(next) => {
                        path = next
                            .strip_prefix(self.client.api_base())
                            .unwrap_or(next)
                            .to_string()
                    }
                    None => break,
                }
            }
        }
        self.matches.learn(lookup, &primary, values, &found);
        Ok(())
    }

    fn get_json(&mut self, path: &str) -> Result<serde_json::Value, String> {
        self.stats
            .lookup_queries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.runtime
            .block_on(self.client.get_retrying(path, &self.policy))
            .map_err(|e| e.to_string())?
            .json()
    }
}

/// Shows `op`'s unresolved lookups as the conditions they stand for (a dry run's requests).
pub fn show_conditions(op: &mut Operation, lookups: &[MatchLookup]) {
    if op.lookups.is_empty() {
        return;
    }
    op.body = op.body_with_conditions(&|i| lookups[i].columns.clone());
    op.lookups.clear();
}
