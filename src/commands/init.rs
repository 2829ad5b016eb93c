//! `dvload init --source FILE --entity TABLE`: writes a mapping to read before running, from the
//! source's header and first rows and the table's metadata (pulled files with `--metadata DIR`,
//! else the environment's).

use std::path::{Path, PathBuf};

use super::connect::{ConnectArgs, RetryArgs};
use crate::environment::metadata::{self, TableMetadata};
use crate::exit::Exit;
use crate::mapping::generate::{Sample, SourceLines, generate};
use crate::source::{Format, RecordData, SourceItem, SourceOptions};

/// How many records `init` reads for its samples.
const SAMPLE_ROWS: usize = 500;

/// Arguments of `dvload init`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    dvload metadata pull account --out metadata/ --emulator\n  \
    dvload init --source samples/accounts.csv --entity account --metadata metadata/ --out mappings/accounts-new.toml\n  \
    dvload init --source exports/contacts.csv --entity contact --profile prod\n\n\
    Then read the mapping, and check it: dvload validate MAPPING --metadata DIR.")]
pub struct Args {
    /// The source file (CSV, JSON or JSON Lines, by its extension).
    #[arg(long, value_name = "FILE")]
    pub source: PathBuf,
    /// The table, by logical name (`account`) or entity set (`accounts`).
    #[arg(long, value_name = "TABLE")]
    pub entity: String,
    /// Table metadata pulled into DIR (`dvload metadata pull`), instead of asking the
    /// environment: no network.
    #[arg(long, value_name = "DIR")]
    pub metadata: Option<PathBuf>,
    /// Write the mapping here (refused if the file exists) instead of printing it.
    #[arg(long, value_name = "MAPPING")]
    pub out: Option<PathBuf>,
    /// Connection options (when no --metadata).
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Retry options.
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// Runs `dvload init`.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    if let Some(out) = &args.out
        && out.exists()
    {
        return Err(crate::Error::Unusable(format!(
            "{} exists: init does not overwrite a mapping; give another --out or remove it",
            out.display()
        ))
        .into());
    }
    let format = Format::from_extension(&args.source).ok_or_else(|| {
        crate::Error::Unusable(format!(
            "{}: cannot tell the format from the extension; name it .csv, .tsv, .txt, .json, .jsonl or .ndjson (an Excel workbook: save it as CSV first)",
            args.source.display()
        ))
    })?;
    let delimiter = match format {
        Format::Csv => sniff_delimiter(&args.source)?,
        _ => b',',
    };
    let sample = read_sample(&args.source, format, delimiter)?;
    let (table, targets) = match &args.metadata {
        Some(dir) => offline(dir, &args.entity)?,
        None => online(&args)?,
    };
    let mapping_dir = args
        .out
        .as_deref()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let source = SourceLines {
        format: match format {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::JsonLines => "jsonl",
        }
        .into(),
        path: relative(&mapping_dir, &args.source),
        shown: args.source.display().to_string(),
        delimiter: (delimiter != b',').then(|| match delimiter {
            b'\t' => "\\t".to_string(),
            d => char::from(d).to_string(),
        }),
    };
    let generated = generate(&sample, &source, &table, &targets);
    if generated.matched == 0 {
        return Err(crate::Error::Unusable(format!(
            "no header of {} names a column of {}: is it the right table? (its columns include {})",
            args.source.display(),
            table.logical_name,
            table
                .columns
                .keys()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    match &args.out {
        Some(out) => {
            std::fs::write(out, &generated.text)
                .map_err(crate::Error::io(format!("cannot write {}", out.display())))?;
            println!(
                "wrote {}: {} of {} headers mapped, {} left out (listed at its end); read it, then: dvload validate {}{}",
                out.display(),
                generated.matched,
                sample.headers.len(),
                generated.unmatched,
                out.display(),
                args.metadata
                    .as_ref()
                    .map(|d| format!(" --metadata {}", d.display()))
                    .unwrap_or_default()
            );
        }
        None => print!("{}", generated.text),
    }
    Ok(Exit::Success)
}

/// The table and the tables its lookups point at, from pulled files.
fn offline(dir: &Path, entity: &str) -> anyhow::Result<(TableMetadata, Vec<TableMetadata>)> {
    let tables = metadata::load_dir(dir)?;
    let Some(table) = tables
        .iter()
        .find(|t| t.logical_name == entity || t.entity_set == entity)
        .cloned()
    else {
        let have: Vec<&str> = tables.iter().map(|t| t.logical_name.as_str()).collect();
        return Err(crate::Error::Unusable(format!(
            "no metadata of '{entity}' in {} (it has: {}); dvload metadata pull {entity} --out {} adds it",
            dir.display(),
            if have.is_empty() { "nothing".to_string() } else { have.join(", ") },
            dir.display()
        ))
        .into());
    };
    Ok((table, tables))
}

/// The table and its lookups' targets, read from the environment.
fn online(args: &Args) -> anyhow::Result<(TableMetadata, Vec<TableMetadata>)> {
    args.connect.settings()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let policy = args.retry.policy();
        let conn = crate::environment::connect::connect(&args.connect.options(), &policy).await?;
        let entity = args.entity.to_ascii_lowercase();
        // An entity set is turned into its table with the entity list.
        let logical = if entity.ends_with('s') {
            let list = crate::environment::check::get_json(
                &conn,
                &policy,
                &format!(
                    "EntityDefinitions?$select=LogicalName&$filter=EntitySetName eq '{entity}'"
                ),
            )
            .await
            .ok()
            .and_then(|v| {
                metadata::list(&v, "value")
                    .first()
                    .map(|e| metadata::text(e, "LogicalName"))
            });
            list.unwrap_or(entity)
        } else {
            entity
        };
        let table = metadata::pull(&conn, &policy, &logical)
            .await
            .map_err(|e| crate::Error::Unusable(format!("table '{logical}': {e}")))?;
        let mut targets = Vec::new();
        let mut wanted: Vec<&String> = table.columns.values().flat_map(|c| &c.targets).collect();
        wanted.sort();
        wanted.dedup();
        for t in wanted {
            if let Ok(m) = metadata::pull_entity(&conn, &policy, t).await {
                targets.push(m);
            }
        }
        Ok((table, targets))
    })
}

/// The CSV delimiter of `path`: the one of `,` `;` tab `|` its first line holds most of.
fn sniff_delimiter(path: &Path) -> anyhow::Result<u8> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path)
        .map_err(crate::Error::io(format!("cannot open {}", path.display())))?;
    let mut first = Vec::new();
    std::io::BufReader::new(file)
        .take(64 * 1024)
        .read_until(b'\n', &mut first)
        .map_err(crate::Error::io(format!("cannot read {}", path.display())))?;
    Ok([b',', b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|d| (first.iter().filter(|c| *c == d).count(), *d == b','))
        .unwrap_or(b','))
}

/// The header and the first [`SAMPLE_ROWS`] records' non-empty values of `path`.
fn read_sample(path: &Path, format: Format, delimiter: u8) -> anyhow::Result<Sample> {
    let options = SourceOptions {
        format,
        delimiter,
        ..SourceOptions::default()
    };
    let mut reader = crate::source::open(path, &options)?;
    let mut sample = Sample {
        headers: reader.columns().map(<[String]>::to_vec).unwrap_or_default(),
        ..Sample::default()
    };
    sample.values = vec![Vec::new(); sample.headers.len()];
    for item in reader.by_ref().take(SAMPLE_ROWS) {
        let SourceItem::Record(record) = item? else {
            continue;
        };
        sample.rows += 1;
        match record.data {
            RecordData::Csv(row) => {
                for (i, v) in row.iter().enumerate() {
                    if let Some(values) = sample.values.get_mut(i)
                        && !v.trim().is_empty()
                    {
                        values.push(v.trim().to_string());
                    }
                }
            }
            RecordData::Json(value) => {
                let mut flat = Vec::new();
                flatten("", &value, &mut flat);
                for (name, v) in flat {
                    let i = match sample.headers.iter().position(|h| *h == name) {
                        Some(i) => i,
                        None => {
                            sample.headers.push(name);
                            sample.values.push(Vec::new());
                            sample.headers.len() - 1
                        }
                    };
                    if !v.trim().is_empty() {
                        sample.values[i].push(v.trim().to_string());
                    }
                }
            }
        }
    }
    Ok(sample)
}

/// A JSON record's scalar fields by dotted path (`person.email`), as a mapping's `from` names
/// them.
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        Value::Null => out.push((prefix.to_string(), String::new())),
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Array(_) => {}
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// `to` as seen from folder `from` (both taken from the current folder when relative), with `/`.
fn relative(from: &Path, to: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    let abs = |p: &Path| crate::mapping::spec::normalize(&cwd.join(p));
    let (from, to) = (abs(from), abs(to));
    let from: Vec<_> = from.components().collect();
    let to_parts: Vec<_> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    if common <= 1 {
        // Nothing shared but the root: the absolute path reads better than a climb to it.
        return to.display().to_string();
    }
    let mut parts: Vec<String> = vec!["..".to_string(); from.len() - common];
    parts.extend(
        to_parts[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}
