//! `dvload init`'s mapping: a source's header and sample values matched to a table's columns.
//!
//! Pure: it takes the header, a sample of each column's values and the table's metadata, and
//! writes TOML a user reads before running. Headers are matched by logical name, schema name,
//! display name (every language) and common export spellings, compared without case, spaces or
//! punctuation ("Address 1: City" is `address1_city`); types come from the metadata; date
//! formats and decimal separators are the ones the sample values parse with, tried with the
//! converters a run uses; a choice gets a `map` only where the source's labels are not the
//! option set's; a lookup is bound by its target's alternate key; the key is the table's
//! alternate key found in the header. Every header left out is kept as a comment with the reason.

use std::fmt::Write as _;

use super::convert::{ChoiceMap, Converter};
use crate::environment::metadata::{ColumnMetadata, TableMetadata};

/// The first rows of a source: its header and, for each column, its non-empty values.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Column names (CSV header, or JSON field paths such as `person.email`).
    pub headers: Vec<String>,
    /// For each header, the non-empty values seen (trimmed), in order.
    pub values: Vec<Vec<String>>,
    /// How many records were read.
    pub rows: usize,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The mapping's TOML.
    pub text: String,
    /// Headers mapped to a column, a lookup or the key.
    pub matched: usize,
    /// Headers left out (kept as comments).
    pub unmatched: usize,
}

/// The source's `[source]` lines, chosen by the caller (format, path relative to the mapping).
#[derive(Debug, Clone)]
pub struct SourceLines {
    /// `csv`, `json` or `jsonl`.
    pub format: String,
    /// The source path as the mapping should name it (relative to the mapping's folder).
    pub path: String,
    /// The path as the user gave it, for the header comment.
    pub shown: String,
    /// The CSV delimiter when it is not a comma, as the mapping writes it (`;`, `\t`).
    pub delimiter: Option<String>,
}

/// Common spellings of CRM exports that neither a name nor a display name gives, compared
/// normalized (see [`norm`]): (spelling, column).
const SPELLINGS: &[(&str, &str)] = &[
    ("mainphone", "telephone1"),
    ("phone", "telephone1"),
    ("businessphone", "telephone1"),
    ("mobile", "mobilephone"),
    ("mobilephone", "mobilephone"),
    ("email", "emailaddress1"),
    ("emailaddress", "emailaddress1"),
    ("website", "websiteurl"),
    ("web", "websiteurl"),
    ("noofemployees", "numberofemployees"),
    ("employees", "numberofemployees"),
    ("annualrevenue", "revenue"),
    ("city", "address1_city"),
    ("country", "address1_country"),
    ("countryregion", "address1_country"),
    ("street", "address1_line1"),
    ("street1", "address1_line1"),
    ("postcode", "address1_postalcode"),
    ("zip", "address1_postalcode"),
    ("zipcode", "address1_postalcode"),
    ("postalcode", "address1_postalcode"),
    ("state", "address1_stateorprovince"),
    ("county", "address1_stateorprovince"),
    ("industry", "industrycode"),
    ("notes", "description"),
    ("company", "name"),
    ("company", "companyname"),
    ("accountname", "name"),
    ("companyname", "companyname"),
    ("topic", "subject"),
    ("comments", "description"),
    ("source", "leadsourcecode"),
    ("leadsource", "leadsourcecode"),
    ("rating", "leadqualitycode"),
    ("estimatedvalue", "estimatedamount"),
    ("birthdate", "birthdate"),
    ("birthday", "birthdate"),
    ("gender", "gendercode"),
    ("sex", "gendercode"),
    ("preferredcontact", "preferredcontactmethodcode"),
    ("preferredcontactmethod", "preferredcontactmethodcode"),
    ("first", "firstname"),
    ("last", "lastname"),
    ("title", "jobtitle"),
];

/// Date formats tried on sample values, in order of preference (ISO first: it needs none).
const DATE_FORMATS: &[&str] = &[
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%Y/%m/%d",
    "%d %b %Y",
    "%b %d, %Y",
];

/// Date-and-time formats tried on sample values after ISO 8601.
const DATETIME_FORMATS: &[&str] = &[
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
];

/// Lower-case letters and digits only: "Address 1: City" and `address1_city` compare equal.
pub fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A header's column, and by which name it was found.
struct Found<'t> {
    column: &'t str,
    meta: &'t ColumnMetadata,
    by: &'static str,
}

/// The column `header` names, if one does.
fn find<'t>(header: &str, table: &'t TableMetadata) -> Option<Found<'t>> {
    let h = norm(header);
    if h.is_empty() {
        return None;
    }
    // "Account No", "Account #": a number.
    let h = match h.strip_suffix("no") {
        Some(stem)
            if header.trim_end().to_lowercase().ends_with("no")
                || header.trim_end().to_lowercase().ends_with("no.") =>
        {
            let words: Vec<&str> = header.split_whitespace().collect();
            if words.len() > 1 && norm(words[words.len() - 1]) == "no" {
                format!("{stem}number")
            } else {
                h
            }
        }
        _ if header.trim_end().ends_with('#') => format!("{h}number"),
        _ => h,
    };
    let columns = || table.columns.iter();
    let hit = |by: &'static str, pred: &dyn Fn(&str, &ColumnMetadata) -> bool| {
        columns()
            .find(|(name, c)| pred(name, c))
            .map(|(name, meta)| Found {
                column: name,
                meta,
                by,
            })
    };
    hit("logical name", &|name, _| norm(name) == h)
        .or_else(|| hit("schema name", &|_, c| norm(&c.schema_name) == h))
        .or_else(|| {
            hit("display name", &|_, c| {
                c.display_name.values().any(|d| norm(d) == h)
            })
        })
        .or_else(|| {
            // A JSON field by its last segment too (`person.first`).
            let last = header
                .rsplit(['.', '/'])
                .next()
                .map(norm)
                .unwrap_or_default();
            SPELLINGS
                .iter()
                .filter(|(s, _)| *s == h || *s == last)
                .find_map(|(_, column)| table.columns.get_key_value(*column))
                .map(|(name, meta)| Found {
                    column: name,
                    meta,
                    by: "a common export spelling",
                })
        })
        .or_else(|| {
            // A custom column by its name without the publisher prefix ("Customer Since" is
            // new_customersince), when only one column has that name.
            let mut hits = table.columns.iter().filter(|(name, _)| {
                name.split_once('_').is_some_and(|(prefix, rest)| {
                    prefix.chars().all(|c| c.is_ascii_alphabetic()) && norm(rest) == h
                })
            });
            match (hits.next(), hits.next()) {
                (Some((name, meta)), None) => Some(Found {
                    column: name,
                    meta,
                    by: "name without its prefix",
                }),
                _ => None,
            }
        })
        .or_else(|| {
            // "Parent Account" names the lookup parentaccountid.
            let with_id = format!("{h}id");
            hit("display name", &|name, c| {
                is_lookup(c)
                    && (norm(name) == with_id
                        || c.display_name.values().any(|d| norm(d) == with_id))
            })
        })
        .or_else(|| {
            // "Parent No" names a lookup by its target's number: the lookup whose name starts
            // with the header's stem, when only one does.
            let stem = ["number", "name", "code", "id"]
                .iter()
                .find_map(|end| h.strip_suffix(end))
                .filter(|s| s.len() >= 4)?;
            let mut hits = table.columns.iter().filter(|(name, c)| {
                is_lookup(c)
                    && (norm(name).starts_with(stem) || c.targets.iter().any(|t| norm(t) == stem))
            });
            match (hits.next(), hits.next()) {
                (Some((name, meta)), None) => Some(Found {
                    column: name,
                    meta,
                    by: "its name's start or its target (CHECK)",
                }),
                _ => None,
            }
        })
        .or_else(|| {
            // A close name ("Credit Hold" for creditonhold), when only one is that close.
            if h.len() < 6 {
                return None;
            }
            let mut close = table
                .columns
                .iter()
                .filter(|(name, _)| edits(&h, &norm(name)) <= 2);
            match (close.next(), close.next()) {
                (Some((name, meta)), None) => Some(Found {
                    column: name,
                    meta,
                    by: "a close name (CHECK)",
                }),
                _ => None,
            }
        })
}

fn is_lookup(c: &ColumnMetadata) -> bool {
    matches!(c.attribute_type.as_str(), "Lookup" | "Customer" | "Owner")
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be.
fn toml_key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        quote(s)
    }
}

/// How many of `values` `converter` accepts.
fn accepted(converter: &Converter, values: &[String]) -> usize {
    let mut out = String::new();
    values
        .iter()
        .filter(|v| {
            out.clear();
            converter.write_json(v, &mut out).is_ok()
        })
        .count()
}

/// Values that are placeholders for "nothing" in exports.
fn is_placeholder(v: &str) -> bool {
    matches!(
        v.to_lowercase().as_str(),
        "n/a" | "na" | "-" | "--" | "null" | "none" | "(none)" | "?"
    )
}

/// The options of a field: its `type` and any other keys, with comments for the user.
#[derive(Default)]
struct Shape {
    /// `type = …` (None for text).
    ty: Option<&'static str>,
    /// Extra `key = value` pairs, already TOML.
    extra: Vec<(String, String)>,
    /// Notes for the user, as trailing comments.
    notes: Vec<String>,
}

/// The type and options of a value column, from its metadata and its sample `values`.
fn shape(meta: &ColumnMetadata, values: &[String]) -> Option<Shape> {
    let mut s = Shape::default();
    let real: Vec<String> = values
        .iter()
        .filter(|v| !is_placeholder(v))
        .cloned()
        .collect();
    let placeholders: Vec<String> = {
        let mut p: Vec<String> = values
            .iter()
            .filter(|v| is_placeholder(v))
            .cloned()
            .collect();
        p.sort();
        p.dedup();
        p
    };
    let numeric = |s: &mut Shape, ty: &'static str, make: &dyn Fn(char) -> Converter| {
        s.ty = Some(ty);
        let dot = accepted(&make('.'), &real);
        let comma = accepted(&make(','), &real);
        if comma > dot {
            s.extra.push(("decimal".into(), quote(",")));
        }
        if !placeholders.is_empty() {
            s.extra.push((
                "null_if".into(),
                format!(
                    "[{}]",
                    placeholders
                        .iter()
                        .map(|p| quote(p))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    match meta.attribute_type.as_str() {
        "String" | "Memo" => {}
        "Integer" => numeric(&mut s, "int", &|decimal| Converter::Integer {
            wide: false,
            decimal,
        }),
        "BigInt" => numeric(&mut s, "bigint", &|decimal| Converter::Integer {
            wide: true,
            decimal,
        }),
        "Decimal" => numeric(&mut s, "decimal", &|decimal| Converter::Number {
            decimal,
            money: false,
            float: false,
        }),
        "Double" => numeric(&mut s, "float", &|decimal| Converter::Number {
            decimal,
            money: false,
            float: true,
        }),
        "Money" => numeric(&mut s, "money", &|decimal| Converter::Number {
            decimal,
            money: true,
            float: false,
        }),
        "Boolean" => s.ty = Some("bool"),
        "DateTime" => {
            let date_only = meta.date_time_behavior.as_deref() == Some("DateOnly")
                || meta.format.as_deref() == Some("DateOnly");
            let (ty, formats): (&'static str, &[&str]) = if date_only {
                ("dateonly", DATE_FORMATS)
            } else {
                ("datetime", DATETIME_FORMATS)
            };
            s.ty = Some(ty);
            let make = |formats: Vec<String>| {
                if date_only {
                    Converter::DateOnly { formats }
                } else {
                    Converter::DateTime {
                        formats,
                        tz: jiff::tz::TimeZone::UTC,
                    }
                }
            };
            let iso = accepted(&make(Vec::new()), &real);
            if iso < real.len() {
                // The format most sample values parse with; a few that none parses are left to
                // be rejected (exports carry typos), but not a third of them.
                let counts: Vec<(&str, usize)> = formats
                    .iter()
                    .map(|f| (*f, accepted(&make(vec![f.to_string()]), &real)))
                    .collect();
                let best = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(iso);
                if best == iso || best * 3 < real.len() * 2 {
                    let odd = real
                        .iter()
                        .find(|v| accepted(&make(Vec::new()), std::slice::from_ref(*v)) == 0)
                        .map_or("", String::as_str);
                    s.notes.push(format!(
                        "no date format parses most sample values (e.g. {}): set format",
                        quote(odd)
                    ));
                } else {
                    let mut tied = counts.iter().filter(|(_, n)| *n == best).map(|(f, _)| *f);
                    let chosen = tied.next().unwrap_or_default();
                    s.extra.push(("format".into(), quote(chosen)));
                    if let Some(other) = tied.next() {
                        s.notes.push(format!(
                            "the samples also parse as {}: check which the source means",
                            quote(other)
                        ));
                    }
                    if best < real.len() {
                        s.notes.push(format!(
                            "{} of {} sample values do not parse so: those rows will be rejected",
                            real.len() - best,
                            real.len()
                        ));
                    }
                }
            }
            if !date_only && !real.is_empty() {
                s.notes
                    .push("values without an offset are read as UTC: set timezone if not".into());
            }
        }
        "Picklist" | "State" | "Status" => {
            s.ty = Some("choice");
            choice_map(&mut s, meta, &real, None);
        }
        "Virtual" if meta.type_name.as_deref() == Some("MultiSelectPicklistType") => {
            s.ty = Some("choices");
            let separator = [";", ",", "|"]
                .into_iter()
                .max_by_key(|sep| real.iter().filter(|v| v.contains(sep)).count())
                .filter(|sep| real.iter().any(|v| v.contains(sep)))
                .unwrap_or(";");
            s.extra.push(("separator".into(), quote(separator)));
            choice_map(&mut s, meta, &real, Some(separator));
        }
        "Uniqueidentifier" => s.ty = Some("guid"),
        _ => return None,
    }
    Some(s)
}

/// A `map` for a choice whose sample labels are not all the option set's (case aside): each
/// such label is mapped to the option whose label it is closest to, with a note to check it;
/// none when every label is an option's (the run then takes the labels from the metadata).
fn choice_map(s: &mut Shape, meta: &ColumnMetadata, values: &[String], separator: Option<&str>) {
    let options = ChoiceMap::of_options(
        meta.options
            .iter()
            .flat_map(|o| o.labels.values().map(move |l| (l.clone(), o.value))),
        [],
    );
    let mut labels: Vec<String> = values
        .iter()
        .flat_map(|v| match separator {
            Some(sep) => v
                .split(sep)
                .map(|p| p.trim().to_string())
                .collect::<Vec<_>>(),
            None => vec![v.clone()],
        })
        .filter(|l| !l.is_empty())
        .collect();
    labels.sort_by_key(|l| l.to_lowercase());
    labels.dedup_by_key(|l| l.to_lowercase());
    let unknown: Vec<&String> = labels
        .iter()
        .filter(|l| options.resolve(l).is_err())
        .collect();
    if unknown.is_empty() {
        return;
    }
    let mut pairs = Vec::new();
    let mut guessed = Vec::new();
    let mut missing = Vec::new();
    for label in &labels {
        match options.resolve(label) {
            Ok(v) => pairs.push((label.clone(), v)),
            Err(_) => match closest(label, meta) {
                Some((option, v)) => {
                    guessed.push(format!("{} as {}", quote(label), quote(&option)));
                    pairs.push((label.clone(), v));
                }
                None => missing.push(quote(label)),
            },
        }
    }
    let map: Vec<String> = pairs
        .iter()
        .map(|(l, v)| format!("{} = {v}", quote(l)))
        .collect();
    s.extra
        .push(("map".into(), format!("{{ {} }}", map.join(", "))));
    if !guessed.is_empty() {
        s.notes
            .push(format!("CHECK the guesses {}", guessed.join(", ")));
    }
    if !missing.is_empty() {
        s.notes.push(format!(
            "no option is like {}: rows with them are rejected until you add them",
            missing.join(", ")
        ));
    }
}

/// The option whose label `label` is closest to (one contains the other, or two edits apart),
/// with its value.
fn closest(label: &str, meta: &ColumnMetadata) -> Option<(String, i64)> {
    let l = norm(label);
    if l.len() < 3 {
        return None;
    }
    meta.options
        .iter()
        .flat_map(|o| o.labels.values().map(move |t| (t, o.value)))
        .filter_map(|(t, v)| {
            let n = norm(t);
            let d = if n.contains(&l) || l.contains(&n) {
                0
            } else {
                edits(&l, &n)
            };
            // Two edits apart, or sharing most of a long start ("Consultancy", "Consulting").
            let shared = l.chars().zip(n.chars()).take_while(|(a, b)| a == b).count();
            let close = d <= 2 || (shared >= 5 && shared * 5 >= l.len().min(n.len()) * 3);
            close.then(|| (d, t.clone(), v))
        })
        .min_by_key(|(d, t, _)| (*d, t.len()))
        .map(|(_, t, v)| (t, v))
}

/// Levenshtein distance.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j]))
                .min(row[j] + 1)
                .min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// How a Dataverse "Export to Excel" file names the columns it adds (`(Do Not Modify) Contact`,
/// `(Do Not Modify) Row Checksum`, `(Do Not Modify) Modified On`).
const EXPORT_PREFIX: &str = "(Do Not Modify) ";

/// Writes the mapping of `sample` into `table`; `targets` are the metadata of tables its lookups
/// may point at (their alternate keys bind the lookups).
pub fn generate(
    sample: &Sample,
    source: &SourceLines,
    table: &TableMetadata,
    targets: &[TableMetadata],
) -> Generated {
    let mut fields = String::new();
    let mut left_out: Vec<String> = Vec::new();
    let mut used: Vec<&str> = Vec::new();
    let mut key: Option<Vec<(String, String)>> = None;

    // The key: an active alternate key whose every column a header names.
    let named = |column: &str| {
        sample
            .headers
            .iter()
            .find(|h| find(h, table).is_some_and(|f| f.column == column))
            .cloned()
    };
    // A Dataverse "Export to Excel" file carries each record's id under "(Do Not Modify) <table's
    // display name>": the key that updates exactly the records exported.
    let export_id = sample.headers.iter().enumerate().find_map(|(i, h)| {
        let named = h.strip_prefix(EXPORT_PREFIX)?;
        let n = norm(named);
        let is_table =
            n == norm(&table.logical_name) || table.display_name.values().any(|d| norm(d) == n);
        let values = sample.values.get(i)?;
        let guids = !values.is_empty() && values.iter().all(|v| uuid::Uuid::parse_str(v).is_ok());
        (is_table && guids).then(|| h.clone())
    });
    let mut keys: Vec<(&String, &crate::environment::metadata::KeyMetadata)> =
        table.keys.iter().collect();
    keys.sort_by_key(|(_, k)| k.attributes.len());
    for (_, k) in keys.into_iter().filter(|_| export_id.is_none()) {
        if k.index_status != "Active" && !k.index_status.is_empty() {
            continue;
        }
        let parts: Option<Vec<(String, String)>> = k
            .attributes
            .iter()
            .map(|a| named(a).map(|h| (a.clone(), h)))
            .collect();
        if let Some(parts) = parts {
            key = Some(parts);
            break;
        }
    }
    let mut matched = 0;
    for (i, header) in sample.headers.iter().enumerate() {
        let values = sample.values.get(i).map_or(&[][..], Vec::as_slice);
        if key
            .as_ref()
            .is_some_and(|k| k.iter().any(|(_, h)| h == header))
            || export_id.as_ref() == Some(header)
        {
            matched += 1;
            continue;
        }
        if header.starts_with(EXPORT_PREFIX) {
            left_out.push(format!(
                "# {}: the export's own bookkeeping (Dataverse writes it beside each record), not a column to write",
                quote(header)
            ));
            continue;
        }
        let Some(found) = find(header, table) else {
            let hint = suggestion(header, table)
                .map(|s| format!(" (closest: {s})"))
                .unwrap_or_default();
            left_out.push(format!(
                "# {}: no column of {} is named or labelled so{hint}",
                quote(header),
                table.logical_name
            ));
            continue;
        };
        if used.contains(&found.column) {
            left_out.push(format!(
                "# {}: its column {} is already filled by an earlier header",
                quote(header),
                found.column
            ));
            continue;
        }
        if found.column == table.primary_id {
            left_out.push(format!(
                "# {}: the table's primary id {}; to update by it, use key = {{ {} = {{ from = {}, type = \"guid\" }} }}",
                quote(header),
                found.column,
                found.column,
                quote(header)
            ));
            continue;
        }
        if !found.meta.valid_for_create && !found.meta.valid_for_update {
            left_out.push(format!(
                "# {}: {} is read-only (valid for neither create nor update)",
                quote(header),
                found.column
            ));
            continue;
        }
        let label = found
            .meta
            .display_name
            .get("1033")
            .or_else(|| found.meta.display_name.values().next())
            .map(|d| format!("{d} "))
            .unwrap_or_default();
        if is_lookup(found.meta) {
            match lookup(header, found.column, found.meta, values, targets) {
                Ok((nav, line)) => {
                    let how = if line.contains(", match = {") {
                        "; bound by the target's name, which the run looks up (CHECK the values are names)"
                    } else {
                        ""
                    };
                    let _ = writeln!(
                        fields,
                        "{} = {line}  # {label}({}), by {}{how}",
                        toml_key(&nav),
                        found.meta.attribute_type,
                        found.by
                    );
                    used.push(found.column);
                    matched += 1;
                }
                Err(why) => left_out.push(format!("# {}: {why}", quote(header))),
            }
            continue;
        }
        let Some(shape) = shape(found.meta, values) else {
            left_out.push(format!(
                "# {}: {} is {}, a type dvload does not write",
                quote(header),
                found.column,
                found.meta.attribute_type
            ));
            continue;
        };
        let mut note = format!("{label}({}), by {}", found.meta.attribute_type, found.by);
        for n in &shape.notes {
            note.push_str("; ");
            note.push_str(n);
        }
        if shape.ty.is_none() && shape.extra.is_empty() {
            let _ = writeln!(
                fields,
                "{} = {}  # {note}",
                toml_key(found.column),
                quote(header)
            );
        } else {
            let mut parts = vec![format!("from = {}", quote(header))];
            if let Some(ty) = shape.ty {
                parts.push(format!("type = {}", quote(ty)));
            }
            parts.extend(shape.extra.iter().map(|(k, v)| format!("{k} = {v}")));
            let _ = writeln!(
                fields,
                "{} = {{ {} }}  # {note}",
                toml_key(found.column),
                parts.join(", ")
            );
        }
        used.push(found.column);
        matched += 1;
    }

    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Generated by `dvload init` from {} ({} rows read) and the metadata of {} ({}).\n\
         # Read it before you run it: each field says which column it fills and how the header\n\
         # was matched; headers left out are at the end, with the reason.\n",
        source.shown, sample.rows, table.logical_name, table.entity_set
    );
    let _ = writeln!(
        text,
        "[source]\nformat = {}\npath = {}",
        quote(&source.format),
        quote(&source.path)
    );
    if let Some(d) = &source.delimiter {
        let _ = writeln!(text, "delimiter = {}", quote(d));
    }
    text.push('\n');
    let _ = writeln!(text, "[target]\nentity_set = {}", quote(&table.entity_set));
    match &key {
        _ if export_id.is_some() => {
            let _ = writeln!(
                text,
                "operation = \"upsert\"\nkey = {{ {} = {{ from = {}, type = \"guid\" }} }}  # each record's id, from a Dataverse export: a second run updates the records exported\n",
                toml_key(&table.primary_id),
                quote(export_id.as_deref().unwrap_or_default())
            );
        }
        Some(parts) => {
            let inner: Vec<String> = parts
                .iter()
                .map(|(c, h)| format!("{} = {}", toml_key(c), quote(h)))
                .collect();
            let _ = writeln!(
                text,
                "operation = \"upsert\"\nkey = {{ {} }}  # an alternate key of {}: a second run updates the rows of the first\n",
                inner.join(", "),
                table.logical_name
            );
        }
        None => {
            let _ = writeln!(
                text,
                "operation = \"create\"  # no alternate key of {} is in the source: every run creates new rows\n",
                table.logical_name
            );
        }
    }
    let _ = write!(text, "[fields]\n{fields}");
    if !left_out.is_empty() {
        let _ = write!(text, "\n# Left out:\n{}\n", left_out.join("\n"));
    }
    Generated {
        text,
        matched,
        unmatched: left_out.len(),
    }
}

/// The field of a lookup named by `header`: (navigation property, TOML value), or why not.
fn lookup(
    header: &str,
    column: &str,
    meta: &ColumnMetadata,
    values: &[String],
    targets: &[TableMetadata],
) -> Result<(String, String), String> {
    let guids = !values.is_empty() && values.iter().all(|v| uuid::Uuid::parse_str(v).is_ok());
    let mut why = Vec::new();
    // The target the header names first ("Account No" of a Customer lookup is the account).
    let h = norm(header);
    let mut order: Vec<&String> = meta.targets.iter().collect();
    order.sort_by_key(|t| !h.starts_with(&norm(t)));
    for target in order {
        // An Owner lookup's relationship references the `owner` table (`owner_accounts`):
        // its one navigation property binds a user and a team alike.
        let Some(nav) = meta.navigation.get(target).or_else(|| {
            (meta.attribute_type == "Owner")
                .then(|| meta.navigation.get("owner"))
                .flatten()
        }) else {
            continue;
        };
        let Some(t) = targets.iter().find(|t| &t.logical_name == target) else {
            why.push(format!("no metadata of {target}"));
            continue;
        };
        if guids {
            return Ok((
                nav.clone(),
                format!(
                    "{{ lookup = {}, from = {} }}",
                    quote(&t.entity_set),
                    quote(header)
                ),
            ));
        }
        // A header that names the lookup itself ("Parent Account", "Company Name") holds the
        // target's name: bound by match on the primary name column, which the run looks up. One
        // that names a code ("Parent No", "Account Number") is bound by an alternate key.
        let names_a_code = ["number", "no", "code", "id", "key", "num", "ref"]
            .iter()
            .any(|end| h.ends_with(end));
        if !names_a_code && !t.primary_name.is_empty() {
            return Ok((
                nav.clone(),
                format!(
                    "{{ lookup = {}, match = {{ {} = {} }} }}",
                    quote(&t.entity_set),
                    toml_key(&t.primary_name),
                    quote(header)
                ),
            ));
        }
        let single = t.keys.values().find(|k| {
            k.attributes.len() == 1 && (k.index_status == "Active" || k.index_status.is_empty())
        });
        match single {
            Some(k) => {
                return Ok((
                    nav.clone(),
                    format!(
                        "{{ lookup = {}, key = {{ {} = {} }} }}",
                        quote(&t.entity_set),
                        toml_key(&k.attributes[0]),
                        quote(header)
                    ),
                ));
            }
            None => why.push(format!("{target} has no single-column alternate key")),
        }
    }
    Err(format!(
        "it names the lookup {column} ({}), but it cannot be bound: {}",
        meta.targets.join(", "),
        if why.is_empty() {
            "no navigation property is known".to_string()
        } else {
            why.join("; ")
        }
    ))
}

/// The column whose name is closest to `header`, for the comment of a header left out.
fn suggestion(header: &str, table: &TableMetadata) -> Option<String> {
    let h = norm(header);
    table
        .columns
        .keys()
        .map(|c| (edits(&h, &norm(c)), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| c.clone())
}

/// A converter that accepts a value the way a run with metadata would (for tests).
#[cfg(test)]
fn bool_converter() -> Converter {
    Converter::Bool(super::convert::BoolLabels::default())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::environment::metadata::{KeyMetadata, OptionMetadata};

    fn column(kind: &str) -> ColumnMetadata {
        ColumnMetadata {
            attribute_type: kind.into(),
            valid_for_create: true,
            valid_for_update: true,
            ..ColumnMetadata::default()
        }
    }

    fn table() -> TableMetadata {
        let mut columns = BTreeMap::new();
        let mut name = column("String");
        name.display_name
            .insert("1033".into(), "Account Name".into());
        columns.insert("name".to_string(), name);
        columns.insert("accountnumber".to_string(), column("String"));
        columns.insert("address1_city".to_string(), column("String"));
        columns.insert("telephone1".to_string(), column("String"));
        columns.insert("revenue".to_string(), column("Money"));
        let mut since = column("DateTime");
        since.date_time_behavior = Some("DateOnly".into());
        columns.insert("new_customersince".to_string(), since);
        let mut industry = column("Picklist");
        industry.options = vec![
            OptionMetadata {
                value: 1,
                labels: [("1033".to_string(), "Accounting".to_string())].into(),
            },
            OptionMetadata {
                value: 7,
                labels: [("1033".to_string(), "Consulting".to_string())].into(),
            },
        ];
        columns.insert("industrycode".to_string(), industry);
        let mut pk = column("Uniqueidentifier");
        pk.valid_for_update = false;
        columns.insert("accountid".to_string(), pk);
        let mut keys = BTreeMap::new();
        keys.insert(
            "accountnumber_key".to_string(),
            KeyMetadata {
                attributes: vec!["accountnumber".into()],
                index_status: "Active".into(),
            },
        );
        TableMetadata {
            logical_name: "account".into(),
            entity_set: "accounts".into(),
            primary_id: "accountid".into(),
            primary_name: "name".into(),
            columns,
            keys,
            ..TableMetadata::default()
        }
    }

    #[test]
    fn headers_match_by_name_display_name_and_spelling_and_samples_pick_formats() {
        let sample = Sample {
            headers: vec![
                "Account No".into(),
                "Account Name".into(),
                "Address 1: City".into(),
                "Main Phone".into(),
                "Revenue".into(),
                "Customer Since".into(),
                "Industry".into(),
                "Favourite Colour".into(),
            ],
            values: vec![
                vec!["A1".into()],
                vec!["Contoso".into()],
                vec!["Leeds".into()],
                vec!["+44 1".into()],
                vec!["1.250.000,50".into(), "12,5".into(), "n/a".into()],
                vec!["25/04/2024".into(), "01/02/2023".into()],
                vec!["accounting".into(), "Consultancy".into()],
                vec!["Blue".into()],
            ],
            rows: 2,
        };
        let source = SourceLines {
            format: "csv".into(),
            path: "../samples/a.csv".into(),
            shown: "samples/a.csv".into(),
            delimiter: None,
        };
        let g = generate(&sample, &source, &table(), &[]);
        let t = &g.text;
        assert!(
            t.contains("key = { accountnumber = \"Account No\" }"),
            "{t}"
        );
        assert!(t.contains("operation = \"upsert\""), "{t}");
        assert!(
            t.contains("name = \"Account Name\"  # Account Name (String), by display name"),
            "{t}"
        );
        assert!(t.contains("address1_city = \"Address 1: City\""), "{t}");
        assert!(t.contains("telephone1 = \"Main Phone\"  #"), "{t}");
        assert!(
            t.contains("revenue = { from = \"Revenue\", type = \"money\", decimal = \",\", null_if = [\"n/a\"] }"),
            "{t}"
        );
        assert!(
            t.contains("new_customersince = { from = \"Customer Since\", type = \"dateonly\", format = \"%d/%m/%Y\" }"),
            "{t}"
        );
        // 25/04 is no month: the day comes first, and nothing else parses every sample.
        assert!(!t.contains("also parse as"), "{t}");
        assert!(
            t.contains("industrycode = { from = \"Industry\", type = \"choice\", map = { \"accounting\" = 1, \"Consultancy\" = 7 } }"),
            "{t}"
        );
        assert!(
            t.contains("CHECK the guesses \"Consultancy\" as \"Consulting\""),
            "{t}"
        );
        assert!(
            t.contains("# \"Favourite Colour\": no column of account is named or labelled so"),
            "{t}"
        );
        assert_eq!((g.matched, g.unmatched), (7, 1));
        // The text is a mapping dvload reads.
        let path =
            std::env::temp_dir().join(format!("dvload-generate-{}.toml", std::process::id()));
        std::fs::write(&path, t).unwrap();
        let spec = crate::mapping::spec::MappingSpec::load(&path);
        std::fs::remove_file(&path).ok();
        spec.unwrap();
    }

    #[test]
    fn labels_that_are_the_option_sets_need_no_map() {
        let mut s = Shape::default();
        let meta = &table().columns["industrycode"];
        choice_map(&mut s, meta, &["ACCOUNTING".into(), "7".into()], None);
        assert!(s.extra.is_empty());
        assert_eq!(
            accepted(&bool_converter(), &["yes".into(), "nope".into()]),
            1
        );
        assert_eq!(edits("kitten", "sitting"), 3);
    }
}
