//! A job: one mapping file bound to its source, ready to stream each row to exactly one outcome
//! (an operation to send, a skip, or a reject). Shared by `validate`, `run --dry-run` and the writer.

use std::path::{Path, PathBuf};

use crate::ledger::Recorder;
use crate::ledger::RejectsWriter;
use crate::ledger::session::JobFiles;
use crate::mapping::{Mapped, MappingSpec, Plan};
use crate::odata::Operation;
use crate::outcome::{Counts, Outcome, Reject, Step};
use crate::source::{self, Format, Record, RecordSource, SourceItem, SourceOptions};

/// A mapping bound to its source.
pub struct Job {
    /// The mapping file.
    pub mapping: PathBuf,
    /// The checked mapping.
    pub spec: MappingSpec,
    /// The source file.
    pub source_path: PathBuf,
    /// How the source is read.
    pub options: SourceOptions,
    /// The compiled plan.
    pub plan: Plan,
    /// The open source.
    pub reader: Box<dyn RecordSource>,
    /// The ids its creates get, once the run knows its chain and the table's primary id
    /// (see `writer::ids`); `None` in a dry run, or when the table's metadata was not read.
    pub ids: Option<crate::ids::RecordIds>,
}

impl Job {
    /// Loads the mapping, opens its source (or `source`, which overrides the mapping's path; its
    /// extension decides the format when it has a known one), and compiles the plan against the
    /// source's header. Every error here means nothing can be done (exit 2).
    pub fn open(mapping: &Path, source: Option<&Path>) -> crate::Result<Job> {
        let spec = MappingSpec::load(mapping)?;
        let source_path = match (source, &spec.source.path) {
            (Some(s), _) => s.to_path_buf(),
            (None, Some(p)) => p.clone(),
            (None, None) => {
                return Err(crate::Error::Unusable(format!(
                    "{}: no source file: give [source] path in the mapping or --source FILE",
                    mapping.display()
                )));
            }
        };
        let format = source
            .and_then(Format::from_extension)
            .or(spec.source.format)
            .or_else(|| Format::from_extension(&source_path))
            .ok_or_else(|| {
                crate::Error::Unusable(format!(
                    "{}: cannot tell the format of {}; set [source] format = \"csv\", \"json\" or \"jsonl\"",
                    mapping.display(),
                    source_path.display()
                ))
            })?;
        let options = SourceOptions {
            format,
            delimiter: spec.source.delimiter,
            quote: spec.source.quote,
            encoding: spec.source.encoding,
            records: if format == Format::Json {
                spec.source.records.clone()
            } else {
                String::new()
            },
            max_record_bytes: spec.source.max_record_bytes,
        };
        let reader = source::open(&source_path, &options)?;
        let plan = Plan::compile(&spec, reader.columns(), &source_path.display().to_string())?;
        Ok(Job {
            mapping: mapping.to_path_buf(),
            spec,
            source_path,
            options,
            plan,
            reader,
            ids: None,
        })
    }

    /// Fills what the mapping leaves to the environment from its table's metadata (choice and
    /// Boolean labels, text lengths; see `environment::complete`) and compiles the plan again.
    /// Returns the line that says what was taken, if anything was.
    pub fn complete(
        &mut self,
        table: &crate::environment::metadata::TableMetadata,
        language: Option<u32>,
    ) -> crate::Result<Option<String>> {
        let filled = crate::environment::complete::complete(&mut self.spec, table, language)?;
        if filled != crate::environment::complete::Filled::default() {
            self.plan = Plan::compile(
                &self.spec,
                self.reader.columns(),
                &self.source_path.display().to_string(),
            )?;
        }
        Ok(filled.line())
    }

    /// What the run ledger records of this job.
    pub fn files(&self) -> JobFiles<'_> {
        JobFiles {
            mapping: &self.mapping,
            source: &self.source_path,
            entity_set: &self.plan.entity_set,
            operation: self.plan.operation.name(),
        }
    }

    /// A rejects writer in the source's format (and line ending), which gives a replayed
    /// rejects file's rows their original numbers.
    pub fn rejects_writer(&self, path: PathBuf) -> RejectsWriter {
        RejectsWriter::new(
            path,
            self.options.format,
            self.reader.columns(),
            self.options.delimiter,
            self.options.quote,
            self.options.encoding,
        )
        .with_line_ending(self.reader.line_ending())
        .with_origin_rows(self.reader.origin_rows())
    }

    /// The default rejects file for this job's source.
    pub fn default_rejects_path(&self) -> PathBuf {
        RejectsWriter::default_path(&self.source_path, self.options.format)
    }

    /// Reads the next item and maps it; `None` at the end of the source. A `SourceError`
    /// (a broken JSON document, an I/O error) ends the job.
    pub fn next_step(&mut self) -> Option<Result<Step, source::SourceError>> {
        let item = self.reader.next()?;
        Some(item.map(|item| map_item(&self.plan, item)))
    }
}

/// Maps one source item to its step. Pure.
pub fn map_item(plan: &Plan, item: SourceItem) -> Step {
    match item {
        SourceItem::Bad(bad) => Step::Rejected(Reject::Unreadable(bad)),
        SourceItem::Record(record) => match plan.apply(&record) {
            Ok(Mapped::Operation(op)) => Step::Operation(op, record),
            Ok(Mapped::Skipped(_)) => Step::Skipped(record.pos),
            Err(e) => Step::Rejected(Reject::Mapping(record, e)),
        },
    }
}

/// What an offline pass (validate, dry run) counted.
#[derive(Debug, Default)]
pub struct Tally {
    /// Row counts (`written` = rows that produced an operation).
    pub counts: Counts,
    /// The first row errors, formatted with their positions.
    pub first_errors: Vec<String>,
}

impl Job {
    /// Streams every row: operations go to `on_operation`, rejects to `rejects` (when given),
    /// skips are counted. Keeps up to `keep_errors` error messages.
    pub fn run_offline(
        &mut self,
        rejects: Option<&mut RejectsWriter>,
        keep_errors: usize,
        mut on_operation: impl FnMut(Operation, Record) -> crate::Result<()>,
    ) -> crate::Result<Tally> {
        self.plan.ready()?;
        let mut progress = ();
        let mut recorder = Recorder::new(rejects, None, &mut progress, keep_errors);
        while let Some(step) = self.next_step() {
            match step? {
                Step::Operation(op, record) => {
                    recorder.would_write();
                    on_operation(op, record)?;
                }
                Step::Skipped(pos) => recorder.note(&Outcome::Skipped(pos))?,
                Step::Rejected(reject) => {
                    recorder.note(&Outcome::Rejected(reject))?;
                    if let Some(e) = recorder.rejects_error.take() {
                        return Err(crate::Error::Unusable(e));
                    }
                }
            }
        }
        let tally = Tally {
            counts: recorder.counts,
            first_errors: recorder.first_errors,
        };
        Ok(tally)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One generated source row: its cells, or a ragged line.
    #[derive(Debug, Clone)]
    enum Row {
        Cells(String, String, String),
        Ragged(String),
    }

    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("skip".to_string()),
            "[0-9]{1,6}",
            "[a-z ,\"\n]{0,8}",
            Just("1,234".to_string()),
            Just("x/y".to_string()),
        ]
    }

    fn row() -> impl Strategy<Value = Row> {
        prop_oneof![
            8 => (cell(), cell(), cell()).prop_map(|(a, b, c)| Row::Cells(a, b, c)),
            1 => "[a-z]{1,5}".prop_map(Row::Ragged),
        ]
    }

    fn quote(s: &str) -> String {
        if s.contains([',', '"', '\n']) || s.is_empty() {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every row read ends written, rejected or skipped, exactly once, whatever the table.
        #[test]
        fn every_row_has_exactly_one_outcome(rows in proptest::collection::vec(row(), 0..60)) {
            let dir = tempfile::tempdir().unwrap();
            let mut csv = String::from("Key,Count,Status\n");
            for r in &rows {
                match r {
                    Row::Cells(a, b, c) => csv.push_str(&format!("{},{},{}\n", quote(a), quote(b), quote(c))),
                    Row::Ragged(a) => csv.push_str(&format!("{a}\n")),
                }
            }
            std::fs::write(dir.path().join("t.csv"), &csv).unwrap();
            let mapping = dir.path().join("m.toml");
            std::fs::write(
                &mapping,
                "[source]\npath = \"t.csv\"\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
                 key = { accountnumber = \"Key\" }\n[filter]\nskip_equal = { Status = \"skip\" }\n\
                 [fields]\nnumberofemployees = { from = \"Count\", type = \"int\" }\n",
            )
            .unwrap();
            let mut job = Job::open(&mapping, None).unwrap();
            let mut seen: Vec<u64> = Vec::new();
            let (mut written, mut rejected, mut skipped) = (0u64, 0u64, 0u64);
            while let Some(step) = job.next_step() {
                match step.unwrap() {
                    Step::Operation(op, record) => {
                        prop_assert_eq!(op.row, record.pos);
                        written += 1;
                        seen.push(op.row.row);
                    }
                    Step::Skipped(pos) => {
                        skipped += 1;
                        seen.push(pos.row);
                    }
                    Step::Rejected(r) => {
                        rejected += 1;
                        seen.push(r.pos().row);
                    }
                }
            }
            let read = seen.len() as u64;
            prop_assert_eq!(read, written + rejected + skipped);
            let expected: Vec<u64> = (1..=rows.len() as u64).collect();
            prop_assert_eq!(seen, expected, "each row once, in order");
        }
    }
}
