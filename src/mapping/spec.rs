//! The mapping file as written: TOML parsed with positions, checked key by key into a `MappingSpec`.
//! Every error names the file, line and column and says what is allowed.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::convert::{BoolLabels, ChoiceMap, Converter};
use crate::odata::KeyValue;
use crate::source::{Encoding, Format};
pub use crate::toml_reader::FileError as MappingError;
use crate::toml_reader::{Ctx, TableReader, Val, describe, line_col, suggest, toml_integer};

/// The operation a mapping performs on each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// Create a record (with a key: create only, an existing record is an error).
    Create,
    /// Update an existing record (a missing record is an error).
    Update,
    /// Create or update by key.
    Upsert,
    /// Delete by key.
    Delete,
}

impl OperationKind {
    /// The name used in mapping files.
    pub fn name(self) -> &'static str {
        match self {
            OperationKind::Create => "create",
            OperationKind::Update => "update",
            OperationKind::Upsert => "upsert",
            OperationKind::Delete => "delete",
        }
    }
}

/// A reference to a source field: a CSV column name or a JSON path (`address.city`).
#[derive(Debug, Clone)]
pub struct FieldRef {
    /// The name as written.
    pub name: String,
    /// Where it was written in the mapping file.
    pub span: Range<usize>,
}

/// One piece of a template: literal text or a field.
#[derive(Debug, Clone)]
pub enum TemplatePart {
    /// Text copied as it is.
    Literal(String),
    /// A source field's value.
    Field(FieldRef),
}

/// Where a column's value comes from.
#[derive(Debug, Clone)]
pub enum Input {
    /// A source field.
    Field(FieldRef),
    /// Several fields joined by a template (`"{First} {Last}"`).
    Template(Vec<TemplatePart>),
    /// A constant: its text, and its JSON (already converted).
    Constant {
        /// As written.
        text: String,
        /// Converted.
        json: String,
    },
}

/// How one value is read and converted (shared by fields, key parts and lookup key parts).
#[derive(Debug, Clone)]
pub struct ValueSpec {
    /// Where the value comes from.
    pub input: Input,
    /// A constant or a default that is a label of a choice or a Boolean column whose labels the
    /// mapping does not give (no `map`): converted once the column's metadata gives them
    /// (`environment::complete`); until then its JSON is empty and the plan is not ready.
    pub labels_later: Vec<LaterLabel>,
    /// The type conversion.
    pub converter: Converter,
    /// Trim whitespace before converting (default true).
    pub trim: bool,
    /// Values treated as empty (compared case-insensitively after trimming).
    pub null_if: Vec<String>,
    /// Used when the value is empty (already converted to JSON).
    pub default: Option<String>,
    /// The raw default text (keys need it to build their literal).
    pub default_text: Option<String>,
    /// An empty value is a row error.
    pub required: bool,
}

/// One part of a key: target column = value.
#[derive(Debug, Clone)]
pub struct KeyPart {
    /// The key column's logical name.
    pub column: String,
    /// Where the column was written.
    pub span: Range<usize>,
    /// Its value.
    pub value: ValueSpec,
}

/// A constant or a default waiting for its column's labels (see [`ValueSpec::labels_later`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaterLabel {
    /// True for the `default`, false for the constant `value`.
    pub default: bool,
    /// Where it was written.
    pub span: Range<usize>,
}

/// A target column of `[fields]`.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    /// The column's logical name (for a lookup: the navigation property).
    pub column: String,
    /// Where it was written.
    pub span: Range<usize>,
    /// What it holds.
    pub kind: FieldKind,
    /// What an empty value does to the column.
    pub empty: EmptyValues,
}

/// What an empty value does to its column: an empty CSV cell (after `trim` and `null_if`), a JSON
/// `null`, a JSON property that is not there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyValues {
    /// Leave the column as it is: the field is left out of the body (the default: a partial
    /// extract never erases what the environment holds).
    #[default]
    Keep,
    /// Clear the column: the field is sent as `null`.
    Clear,
    /// Clear it only for an explicit JSON `null`; an empty text or a missing property keeps it
    /// (JSON merge-patch's reading).
    ClearOnNull,
}

impl EmptyValues {
    /// Every choice, in the order the documentation gives them.
    pub const ALL: [EmptyValues; 3] = [
        EmptyValues::Keep,
        EmptyValues::Clear,
        EmptyValues::ClearOnNull,
    ];

    /// Its spelling in a mapping (`keep`, `clear`, `clear-on-null`).
    pub fn name(self) -> &'static str {
        match self {
            EmptyValues::Keep => "keep",
            EmptyValues::Clear => "clear",
            EmptyValues::ClearOnNull => "clear-on-null",
        }
    }
}

/// A plain value or a lookup.
#[derive(Debug, Clone)]
pub enum FieldKind {
    /// A column value.
    Value(Box<ValueSpec>),
    /// A lookup, sent as `column@odata.bind`.
    Lookup {
        /// The target entity set (`accounts`).
        entity_set: String,
        /// The target's primary id (a GUID value) or its alternate key.
        key: LookupKey,
    },
}

/// How a lookup finds its target.
#[derive(Debug, Clone)]
pub enum LookupKey {
    /// By primary id.
    Id(Box<ValueSpec>),
    /// By alternate key.
    Alternate(Vec<KeyPart>),
    /// By any columns of the target (`match = { name = "Company" }`): found through queries
    /// before the row is sent (see [`crate::resolve`]).
    Match {
        /// The target's columns and the values they must equal.
        parts: Vec<KeyPart>,
        /// What a value that more than one record matches does.
        on_many: OnMany,
    },
}

/// What a lookup by `match` does when more than one target record matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMany {
    /// Reject the row, listing the candidates (the default: a guess is not a load).
    #[default]
    Reject,
    /// Bind the first record created of those that match.
    First,
}

/// `[run]`: how a run of this mapping ends.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// Which rejects fail the run (`--fail-on` wins over it).
    pub fail_on: Option<crate::exit::FailOn>,
}

/// Rows to skip.
#[derive(Debug, Clone, Default)]
pub struct FilterSpec {
    /// Skip a row when any of these fields is empty.
    pub skip_empty: Vec<FieldRef>,
    /// Skip a row when the field equals one of the values (after trimming; case-sensitive).
    pub skip_equal: Vec<(FieldRef, Vec<String>)>,
}

/// `[source]`.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// The format, when written or implied by the path.
    pub format: Option<Format>,
    /// The source file, resolved against the mapping file's folder.
    pub path: Option<PathBuf>,
    /// CSV delimiter.
    pub delimiter: u8,
    /// CSV quote.
    pub quote: u8,
    /// CSV encoding.
    pub encoding: Encoding,
    /// JSON pointer to the records array.
    pub records: String,
    /// The longest record read, in bytes.
    pub max_record_bytes: usize,
}

/// `[target]`.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// Entity set name (`accounts`).
    pub entity_set: String,
    /// What to do.
    pub operation: OperationKind,
    /// The key (empty for a create without key).
    pub key: Vec<KeyPart>,
}

/// A whole mapping file, checked.
#[derive(Debug, Clone)]
pub struct MappingSpec {
    /// The mapping file.
    pub file: PathBuf,
    /// Its text (for positions in later errors).
    pub text: String,
    /// `[source]`.
    pub source: SourceSpec,
    /// `[target]`.
    pub target: TargetSpec,
    /// `[filter]`.
    pub filter: FilterSpec,
    /// `[run]`.
    pub run: RunSpec,
    /// `[fields]`, in file order.
    pub fields: Vec<FieldSpec>,
}

/// The types of the mapping language (`type = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `text`
    Text,
    /// `int`
    Int,
    /// `bigint`
    BigInt,
    /// `decimal`
    Decimal,
    /// `float`
    Float,
    /// `money`
    Money,
    /// `bool`
    Bool,
    /// `datetime`
    DateTime,
    /// `dateonly`
    DateOnly,
    /// `guid`
    Guid,
    /// `choice`
    Choice,
    /// `choices`
    Choices,
    /// `lookup`
    Lookup,
}

impl ValueType {
    /// Every type, in the order the documentation lists them.
    pub const ALL: [ValueType; 13] = [
        ValueType::Text,
        ValueType::Int,
        ValueType::BigInt,
        ValueType::Decimal,
        ValueType::Float,
        ValueType::Money,
        ValueType::Bool,
        ValueType::DateTime,
        ValueType::DateOnly,
        ValueType::Guid,
        ValueType::Choice,
        ValueType::Choices,
        ValueType::Lookup,
    ];

    /// Its name in a mapping file.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Text => "text",
            ValueType::Int => "int",
            ValueType::BigInt => "bigint",
            ValueType::Decimal => "decimal",
            ValueType::Float => "float",
            ValueType::Money => "money",
            ValueType::Bool => "bool",
            ValueType::DateTime => "datetime",
            ValueType::DateOnly => "dateonly",
            ValueType::Guid => "guid",
            ValueType::Choice => "choice",
            ValueType::Choices => "choices",
            ValueType::Lookup => "lookup",
        }
    }

    /// The type named `name` (any case).
    pub fn named(name: &str) -> Option<ValueType> {
        ValueType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    fn names() -> impl Iterator<Item = &'static str> {
        ValueType::ALL.into_iter().map(ValueType::name)
    }
}

const FIELD_KEYS: &[&str] = &[
    "from",
    "value",
    "template",
    "type",
    "trim",
    "null_if",
    "default",
    "required",
    "max_length",
    "map",
    "format",
    "timezone",
    "decimal",
    "separator",
    "derive_uuid",
    "empty",
    "omit_empty",
    "lookup",
    "key",
];

/// Defaults that `[source]` sets for every field.
struct FieldDefaults {
    timezone: Option<Spanned<String>>,
    decimal: char,
    empty: EmptyValues,
}

impl MappingSpec {
    /// Reads and checks a mapping file.
    pub fn load(file: &Path) -> Result<MappingSpec, MappingError> {
        let text = std::fs::read_to_string(file).map_err(|e| MappingError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the mapping file: {e}"),
        })?;
        MappingSpec::parse(file, text)
    }

    /// Checks mapping text; `file` names it in errors and anchors the relative source path.
    pub fn parse(file: &Path, text: String) -> Result<MappingSpec, MappingError> {
        let ctx = Ctx { file, text: &text };
        let root = DeTable::parse(&text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().to_string();
            ctx.err(span, format!("not valid TOML: {msg}"))
        })?;
        let root_span = root.span();
        let root = TableReader::new(&ctx, root.get_ref(), root_span.clone(), "the mapping file");
        root.check_keys(&["source", "target", "filter", "fields", "run"])?;

        let sub = |name: &str| -> Result<Option<TableReader<'_, '_, '_>>, MappingError> {
            match root.get(name) {
                None => Ok(None),
                Some(v) => match v.get_ref().as_table() {
                    Some(t) => Ok(Some(TableReader::new(
                        &ctx,
                        t,
                        v.span(),
                        format!("[{name}]"),
                    ))),
                    None => Err(ctx.err(v.span(), format!("[{name}] must be a table"))),
                },
            }
        };

        let base = file.parent().unwrap_or(Path::new("."));
        let (source, defaults) = match sub("source")? {
            Some(t) => parse_source(&ctx, &t, base)?,
            None => (
                SourceSpec {
                    format: None,
                    path: None,
                    delimiter: b',',
                    quote: b'"',
                    encoding: Encoding::Utf8,
                    records: String::new(),
                    max_record_bytes: crate::source::DEFAULT_MAX_RECORD_BYTES,
                },
                FieldDefaults {
                    timezone: None,
                    decimal: '.',
                    empty: EmptyValues::Keep,
                },
            ),
        };
        let Some(target) = sub("target")? else {
            return Err(ctx.err(
                0..0,
                "missing [target] table; it needs entity_set, operation and (except for create) key",
            ));
        };
        let mut defaults = defaults;
        let target = parse_target(&ctx, &target, &mut defaults)?;
        let filter = match sub("filter")? {
            Some(t) => parse_filter(&ctx, &t)?,
            None => FilterSpec::default(),
        };
        let run = match sub("run")? {
            Some(t) => {
                t.check_keys(&["fail_on"])?;
                let fail_on = match t.string("fail_on")? {
                    Some(v) => Some(
                        crate::exit::FailOn::parse(v.get_ref())
                            .map_err(|e| t.err(v.span(), format!("fail_on: {e}")))?,
                    ),
                    None => None,
                };
                RunSpec { fail_on }
            }
            None => RunSpec::default(),
        };
        let fields = match sub("fields")? {
            Some(t) => {
                if target.operation == OperationKind::Delete && !t.table.is_empty() {
                    return Err(ctx.err(
                        t.span.clone(),
                        "a delete mapping takes no [fields]: the key alone says which record to delete",
                    ));
                }
                parse_fields(&ctx, &t, &defaults, &target)?
            }
            None if target.operation == OperationKind::Delete => Vec::new(),
            None => {
                return Err(ctx.err(
                    root_span.start..root_span.start,
                    "missing [fields] table: map at least one column",
                ));
            }
        };
        if target.operation != OperationKind::Delete && fields.is_empty() {
            return Err(ctx.err(0..0, "[fields] is empty: map at least one column"));
        }
        check_key_columns_in_fields(&ctx, &target, &fields)?;
        Ok(MappingSpec {
            file: file.to_path_buf(),
            text: text.clone(),
            source,
            target,
            filter,
            run,
            fields,
        })
    }
}

/// Refuses a `[fields]` entry for a key column unless it is written as the key's entry is (same
/// `from`, `value` or `template`, type and options): the key addresses the record in the URL,
/// and a body giving the column another value would contradict it. An identical entry is
/// allowed, as Dataverse accepts a key column in the body when it holds the key's value.
fn check_key_columns_in_fields(
    ctx: &Ctx<'_>,
    target: &TargetSpec,
    fields: &[FieldSpec],
) -> Result<(), MappingError> {
    for part in &target.key {
        let Some(field) = fields.iter().find(|f| f.column == part.column) else {
            continue;
        };
        let same = match &field.kind {
            FieldKind::Value(v) => same_value(&part.value, v),
            FieldKind::Lookup { .. } => false,
        };
        if !same {
            let (line, column) = line_col(ctx.text, part.span.start);
            return Err(ctx.err(
                field.span.clone(),
                format!(
                    "field '{}' maps the key column '{}' differently from [target] key (line {line}, column {column}): \
                     the URL would name one record and the body give the column another value; \
                     leave it out of [fields] (the key sets it) or write it exactly as in the key (same from, type and options)",
                    field.column, part.column
                ),
            ));
        }
    }
    Ok(())
}

/// True when two value specs give every record the same value (positions aside; `required`
/// aside too, as a key value is always required).
fn same_value(a: &ValueSpec, b: &ValueSpec) -> bool {
    fn parts_eq(a: &[TemplatePart], b: &[TemplatePart]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|pair| match pair {
                (TemplatePart::Literal(x), TemplatePart::Literal(y)) => x == y,
                (TemplatePart::Field(x), TemplatePart::Field(y)) => x.name == y.name,
                _ => false,
            })
    }
    let inputs = match (&a.input, &b.input) {
        (Input::Field(x), Input::Field(y)) => x.name == y.name,
        (Input::Template(x), Input::Template(y)) => parts_eq(x, y),
        (Input::Constant { json: x, .. }, Input::Constant { json: y, .. }) => x == y,
        _ => false,
    };
    let null_if = |v: &ValueSpec| {
        let mut list: Vec<String> = v.null_if.iter().map(|s| s.trim().to_lowercase()).collect();
        list.sort();
        list.dedup();
        list
    };
    let default = |v: &ValueSpec| v.default_text.as_deref().map(str::trim).map(str::to_string);
    inputs
        && a.converter == b.converter
        && a.trim == b.trim
        && null_if(a) == null_if(b)
        && default(a) == default(b)
}

/// Removes `.` and `name/..` pairs from a path without touching the file system, so that
/// `mappings/../samples/a.csv` reads `samples/a.csv` in messages.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// The delimiters a CSV source may use, and how to write them in `[source] delimiter`.
const DELIMITERS: &[(u8, &str)] = &[
    (b',', "\",\""),
    (b';', "\";\""),
    (b'\t', "\"\\t\" (or \"tab\")"),
    (b'|', "\"|\""),
];

/// Reads `[source] delimiter`: one of [`DELIMITERS`].
fn parse_delimiter(ctx: &Ctx<'_>, d: &Spanned<String>) -> Result<u8, MappingError> {
    let c = match d.get_ref().as_str() {
        "tab" | "\\t" => "\t",
        other => other,
    };
    match DELIMITERS.iter().find(|(b, _)| c.as_bytes() == [*b]) {
        Some((b, _)) => Ok(*b),
        None => {
            let allowed: Vec<&str> = DELIMITERS.iter().map(|(_, name)| *name).collect();
            let why = if c.is_empty() {
                "is empty"
            } else if c.chars().count() > 1 {
                "is more than one character"
            } else {
                "is not supported"
            };
            Err(ctx.err(
                d.span(),
                format!(
                    "[source] delimiter {:?} {why}; allowed: {}",
                    d.get_ref(),
                    allowed.join(", ")
                ),
            ))
        }
    }
}

/// Reads `[source] quote`: one ASCII punctuation character other than the delimiter (whose
/// position, when written, `delimiter_at` gives).
fn parse_quote(
    ctx: &Ctx<'_>,
    q: &Spanned<String>,
    delimiter: u8,
    delimiter_at: Option<Range<usize>>,
) -> Result<u8, MappingError> {
    const ALLOWED: &str = "one ASCII punctuation character other than the delimiter, such as '\"' (the default) or \"'\"";
    let s = q.get_ref().as_str();
    let why = match s.as_bytes() {
        [] => "is empty".to_string(),
        [b] if *b == delimiter => match &delimiter_at {
            Some(at) => {
                let (line, column) = line_col(ctx.text, at.start);
                format!("is also the delimiter (line {line}, column {column})")
            }
            None => format!(
                "is also the delimiter (the default {:?})",
                char::from(delimiter)
            ),
        },
        [b] if b.is_ascii_punctuation() => return Ok(*b),
        [b] if b.is_ascii_alphanumeric() => "is a letter or digit".to_string(),
        [_] => "is a space, line break or control character".to_string(),
        _ if s.chars().count() > 1 => "is more than one character".to_string(),
        _ => "is not an ASCII character".to_string(),
    };
    Err(ctx.err(
        q.span(),
        format!("[source] quote {s:?} {why}; allowed: {ALLOWED}"),
    ))
}

fn parse_source(
    ctx: &Ctx<'_>,
    t: &TableReader<'_, '_, '_>,
    base: &Path,
) -> Result<(SourceSpec, FieldDefaults), MappingError> {
    t.check_keys(&[
        "format",
        "path",
        "delimiter",
        "quote",
        "encoding",
        "records",
        "timezone",
        "decimal",
        "max_record_bytes",
    ])?;
    let path = t
        .string("path")?
        .map(|p| normalize(&base.join(p.get_ref())));
    let format = match t.string("format")? {
        Some(f) => Some(match f.get_ref().to_ascii_lowercase().as_str() {
            "csv" => Format::Csv,
            "json" => Format::Json,
            "jsonl" | "ndjson" | "json-lines" => Format::JsonLines,
            other => {
                return Err(ctx.err(
                    f.span(),
                    format!("unknown format '{other}'; allowed: csv, json, jsonl"),
                ));
            }
        }),
        None => path.as_deref().and_then(Format::from_extension),
    };
    let delimiter_text = t.string("delimiter")?;
    let delimiter = match &delimiter_text {
        Some(d) => parse_delimiter(ctx, d)?,
        None => b',',
    };
    let quote = match t.string("quote")? {
        Some(q) => parse_quote(ctx, &q, delimiter, delimiter_text.map(|d| d.span()))?,
        None => b'"',
    };
    let encoding = match t.string("encoding")? {
        Some(e) => match e.get_ref().to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Encoding::Utf8,
            "windows-1252" | "cp1252" | "latin1" | "latin-1" | "iso-8859-1" => {
                Encoding::Windows1252
            }
            other => {
                return Err(ctx.err(
                    e.span(),
                    format!("unknown encoding '{other}'; allowed: utf-8, windows-1252 (also latin1, iso-8859-1, cp1252)"),
                ));
            }
        },
        None => Encoding::Utf8,
    };
    let records = match t.string("records")? {
        Some(r) => {
            if !r.get_ref().is_empty() && !r.get_ref().starts_with('/') {
                return Err(ctx.err(
                    r.span(),
                    format!(
                        "records '{}' must be a JSON pointer starting with '/', such as \"/value\"",
                        r.get_ref()
                    ),
                ));
            }
            r.into_inner()
        }
        None => String::new(),
    };
    let max_record_bytes = match t.get("max_record_bytes") {
        Some(v) => v
            .get_ref()
            .as_integer()
            .and_then(|i| i64::from_str_radix(i.as_str(), i.radix()).ok())
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n >= crate::source::MIN_MAX_RECORD_BYTES)
            .ok_or_else(|| {
                ctx.err(
                    v.span(),
                    format!(
                        "max_record_bytes must be a number of bytes, at least {}, such as {} (8 MiB, the default)",
                        crate::source::MIN_MAX_RECORD_BYTES,
                        crate::source::DEFAULT_MAX_RECORD_BYTES
                    ),
                )
            })?,
        None => crate::source::DEFAULT_MAX_RECORD_BYTES,
    };
    let timezone = t.string("timezone")?;
    if let Some(tz) = &timezone {
        check_tz(ctx, tz)?;
    }
    let decimal = match t.string("decimal")? {
        Some(d) => decimal_char(ctx, &d)?,
        None => '.',
    };
    Ok((
        SourceSpec {
            format,
            path,
            delimiter,
            quote,
            encoding,
            records,
            max_record_bytes,
        },
        FieldDefaults {
            timezone,
            decimal,
            empty: EmptyValues::Keep,
        },
    ))
}

fn decimal_char(ctx: &Ctx<'_>, d: &Spanned<String>) -> Result<char, MappingError> {
    match d.get_ref().as_str() {
        "." => Ok('.'),
        "," => Ok(','),
        other => Err(ctx.err(
            d.span(),
            format!("decimal '{other}' is not supported; allowed: \".\" or \",\""),
        )),
    }
}

fn check_tz(ctx: &Ctx<'_>, tz: &Spanned<String>) -> Result<jiff::tz::TimeZone, MappingError> {
    jiff::tz::TimeZone::get(tz.get_ref()).map_err(|_| {
        ctx.err(
            tz.span(),
            format!("unknown time zone '{}'; use an IANA name such as \"Europe/London\", \"America/New_York\" or \"UTC\"", tz.get_ref()),
        )
    })
}

/// Refuses a name that cannot be an entity set's (`what` names the key it was written in).
fn check_entity_set_name(
    ctx: &Ctx<'_>,
    name: &Spanned<String>,
    what: &str,
) -> Result<(), MappingError> {
    let n = name.get_ref();
    if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ctx.err(
            name.span(),
            format!("{what} '{n}' is not an entity set name (letters, digits and _)"),
        ));
    }
    Ok(())
}

fn parse_target(
    ctx: &Ctx<'_>,
    t: &TableReader<'_, '_, '_>,
    defaults: &mut FieldDefaults,
) -> Result<TargetSpec, MappingError> {
    t.check_keys(&["entity_set", "operation", "key", "empty", "omit_empty"])?;
    let entity_set = t.string("entity_set")?.ok_or_else(|| {
        ctx.err(
            t.span.clone(),
            "[target] needs entity_set, the table's entity set name (e.g. \"accounts\")",
        )
    })?;
    check_entity_set_name(ctx, &entity_set, "entity_set")?;
    let op = t.string("operation")?.ok_or_else(|| {
        ctx.err(
            t.span.clone(),
            "[target] needs operation; allowed: create, update, upsert, delete",
        )
    })?;
    let operation = match op.get_ref().as_str() {
        "create" => OperationKind::Create,
        "update" => OperationKind::Update,
        "upsert" => OperationKind::Upsert,
        "delete" => OperationKind::Delete,
        other => {
            return Err(ctx.err(
                op.span(),
                format!("unknown operation '{other}'; allowed: create, update, upsert, delete"),
            ));
        }
    };
    if let Some(e) = read_empty(t)? {
        defaults.empty = e;
    }
    let key = match t.get("key") {
        Some(v) => parse_key(ctx, v, "[target] key", defaults, Some(entity_set.get_ref()))?,
        None if operation == OperationKind::Create => Vec::new(),
        None => {
            return Err(ctx.err(
                t.span.clone(),
                format!(
                    "[target] needs a key for {}: the primary id column or alternate-key columns, e.g. key = {{ accountnumber = \"Account No\" }}",
                    operation.name()
                ),
            ));
        }
    };
    Ok(TargetSpec {
        entity_set: entity_set.into_inner(),
        operation,
        key,
    })
}

fn parse_key(
    ctx: &Ctx<'_>,
    v: &Val<'_>,
    what: &str,
    defaults: &FieldDefaults,
    derive_prefix: Option<&str>,
) -> Result<Vec<KeyPart>, MappingError> {
    let Some(table) = v.get_ref().as_table() else {
        return Err(ctx.err(
            v.span(),
            format!("{what} must be a table of column = source field, e.g. {{ accountnumber = \"Account No\" }}"),
        ));
    };
    if table.is_empty() {
        return Err(ctx.err(
            v.span(),
            format!("{what} is empty; name at least one column"),
        ));
    }
    if table.len() > 16 {
        return Err(ctx.err(
            v.span(),
            format!(
                "{what} has {} columns; Dataverse keys have at most 16",
                table.len()
            ),
        ));
    }
    let mut parts = Vec::new();
    for (col, val) in table.iter() {
        check_column_name(ctx, col)?;
        let what = format!("key column '{}'", col.get_ref());
        let value = parse_value_spec(
            ctx,
            val,
            &ValueRead::field(col.get_ref(), &what, defaults, derive_prefix, true),
        )?;
        if matches!(value.converter, Converter::Choices { .. }) {
            return Err(ctx.err(
                val.span(),
                format!("{what}: a choices (multi-select) column cannot be part of a key"),
            ));
        }
        parts.push(KeyPart {
            column: col.get_ref().to_string(),
            span: col.span(),
            value,
        });
    }
    Ok(parts)
}

fn parse_filter(ctx: &Ctx<'_>, t: &TableReader<'_, '_, '_>) -> Result<FilterSpec, MappingError> {
    t.check_keys(&["skip_empty", "skip_equal"])?;
    let mut filter = FilterSpec::default();
    if let Some(list) = t.strings("skip_empty")? {
        let span = list.span();
        filter.skip_empty = list
            .into_inner()
            .into_iter()
            .map(|name| FieldRef {
                name,
                span: span.clone(),
            })
            .collect();
    }
    if let Some(v) = t.get("skip_equal") {
        let Some(table) = v.get_ref().as_table() else {
            return Err(ctx.err(v.span(), "skip_equal must be a table of field = value or [values], e.g. { Status = [\"Closed\"] }"));
        };
        let inner = TableReader::new(ctx, table, v.span(), "skip_equal");
        for (name, value) in table.iter() {
            // Values are compared with the trimmed field, so they are trimmed too.
            let values: Vec<String> = inner
                .strings(name.get_ref())?
                .map(Spanned::into_inner)
                .unwrap_or_default()
                .iter()
                .map(|v| v.trim().to_string())
                .collect();
            if values.is_empty() {
                return Err(ctx.err(
                    value.span(),
                    format!(
                        "skip_equal for '{}' is an empty list, which skips nothing; give the values that skip a row, e.g. [\"Closed\"]",
                        name.get_ref()
                    ),
                ));
            }
            filter.skip_equal.push((
                FieldRef {
                    name: name.get_ref().to_string(),
                    span: name.span(),
                },
                values,
            ));
        }
    }
    Ok(filter)
}

/// Refuses an empty (or blank) column name: `"" = "Company"` names no column.
fn check_column_name(
    ctx: &Ctx<'_>,
    col: &Spanned<toml::de::DeString<'_>>,
) -> Result<(), MappingError> {
    if col.get_ref().trim().is_empty() {
        return Err(ctx.err(
            col.span(),
            format!("column name {:?} is empty; write the column's logical name, such as name or accountnumber", col.get_ref()),
        ));
    }
    Ok(())
}

fn parse_fields(
    ctx: &Ctx<'_>,
    t: &TableReader<'_, '_, '_>,
    defaults: &FieldDefaults,
    target: &TargetSpec,
) -> Result<Vec<FieldSpec>, MappingError> {
    let mut fields = Vec::new();
    for (col, val) in t.table.iter() {
        let column = col.get_ref().to_string();
        check_column_name(ctx, col)?;
        let what = format!("field '{column}'");
        let lookup = val.get_ref().as_table().and_then(|tbl| tbl.get("lookup"));
        let is_lookup_type = val
            .get_ref()
            .as_table()
            .and_then(|tbl| tbl.get("type"))
            .and_then(|v| v.get_ref().as_str())
            == Some("lookup");
        let empty = match val.get_ref().as_table() {
            Some(tbl) => read_empty(&TableReader::new(ctx, tbl, val.span(), what.clone()))?
                .unwrap_or(defaults.empty),
            None => defaults.empty,
        };
        let kind = if lookup.is_some() || is_lookup_type {
            parse_lookup(ctx, &column, val, &what, defaults)?
        } else {
            // A key column's ids are derived in the entity set's namespace, wherever written.
            let derive_prefix = target
                .key
                .iter()
                .any(|k| k.column == column)
                .then_some(target.entity_set.as_str());
            FieldKind::Value(Box::new(parse_value_spec(
                ctx,
                val,
                &ValueRead::field(&column, &what, defaults, derive_prefix, false),
            )?))
        };
        fields.push(FieldSpec {
            column,
            span: col.span(),
            kind,
            empty,
        });
    }
    Ok(fields)
}

/// `empty = "keep" | "clear" | "clear-on-null"`, or the older `omit_empty = true | false`
/// (`keep` / `clear`); not both.
fn read_empty(t: &TableReader) -> Result<Option<EmptyValues>, MappingError> {
    let omit = t.bool("omit_empty")?;
    let Some(word) = t.string("empty")? else {
        return Ok(omit.map(|o| {
            if o {
                EmptyValues::Keep
            } else {
                EmptyValues::Clear
            }
        }));
    };
    if omit.is_some() {
        let v = t.get("omit_empty").expect("read above");
        return Err(t.err(
            v.span(),
            "give empty = \"keep\" | \"clear\" | \"clear-on-null\" or the older omit_empty, not both",
        ));
    }
    let given = word.get_ref().as_str();
    match EmptyValues::ALL.into_iter().find(|e| e.name() == given) {
        Some(e) => Ok(Some(e)),
        None => Err(t.err(
            word.span(),
            format!("empty = \"{given}\" is not a choice; allowed: \"keep\" (leave the column as it is), \"clear\" (send null), \"clear-on-null\" (only a JSON null clears)"),
        )),
    }
}

fn parse_lookup(
    ctx: &Ctx<'_>,
    column: &str,
    val: &Val<'_>,
    what: &str,
    defaults: &FieldDefaults,
) -> Result<FieldKind, MappingError> {
    let table = val.get_ref().as_table().expect("lookup fields are tables");
    let t = TableReader::new(ctx, table, val.span(), what.to_string());
    t.check_keys(&[
        "lookup",
        "type",
        "key",
        "match",
        "on_many",
        "from",
        "derive_uuid",
        "empty",
        "omit_empty",
        "required",
        "trim",
        "null_if",
    ])?;
    let set = t.string("lookup")?.ok_or_else(|| {
        ctx.err(val.span(), format!("{what}: a lookup needs lookup = \"<entity set of the target>\", e.g. lookup = \"accounts\""))
    })?;
    check_entity_set_name(ctx, &set, &format!("{what}: lookup"))?;
    let entity_set = set.get_ref().to_string();
    if let Some(ty) = t.string("type")? {
        let allowed: &[&str] = if t.get("key").is_some() {
            &["lookup"]
        } else {
            &["lookup", "guid"]
        };
        if !allowed.contains(&ty.get_ref().to_ascii_lowercase().as_str()) {
            return Err(ctx.err(
                ty.span(),
                format!(
                    "{what}: a lookup's type is \"lookup\"{}, not '{}': it binds the target record by its key",
                    if allowed.len() > 1 { " (or \"guid\", the target's id)" } else { "" },
                    ty.get_ref()
                ),
            ));
        }
    }
    if let (Some(_), Some(m)) = (t.get("key").or(t.get("from")), t.get("match")) {
        return Err(ctx.err(
            m.span(),
            format!("{what}: a lookup takes one of from (a GUID field), key (an alternate key) or match (any columns of the target), not two"),
        ));
    }
    let on_many = match t.string("on_many")? {
        None => OnMany::default(),
        Some(v) if t.get("match").is_none() => {
            return Err(ctx.err(
                v.span(),
                format!("{what}: on_many applies to a lookup by match = {{...}}; a GUID or an alternate key finds one record at most"),
            ));
        }
        Some(v) => match v.get_ref().as_str() {
            "reject" => OnMany::Reject,
            "first" => OnMany::First,
            other => {
                return Err(ctx.err(
                    v.span(),
                    format!("{what}: on_many = \"{other}\" is not a choice; allowed: \"reject\" (the row, listing the candidates; the default), \"first\" (the one created first)"),
                ));
            }
        },
    };
    if let Some(m) = t.get("match") {
        for other in ["required", "trim", "null_if", "derive_uuid"] {
            if let Some(v) = t.get(other) {
                return Err(ctx.err(
                    v.span(),
                    format!("{what}: with match = {{...}}, put '{other}' on the match's columns"),
                ));
            }
        }
        let parts = parse_key(ctx, m, &format!("{what} match"), defaults, None)?;
        return Ok(FieldKind::Lookup {
            entity_set,
            key: LookupKey::Match { parts, on_many },
        });
    }
    let key = match (t.get("key"), t.get("from")) {
        (Some(_), Some(from)) => {
            return Err(ctx.err(from.span(), format!("{what}: a lookup takes either from (a GUID field) or key (alternate key), not both")));
        }
        (Some(k), None) => {
            for other in ["required", "trim", "null_if", "derive_uuid"] {
                if let Some(v) = t.get(other) {
                    return Err(ctx.err(
                        v.span(),
                        format!("{what}: with key = {{...}}, put '{other}' on the key's columns"),
                    ));
                }
            }
            LookupKey::Alternate(parse_key(
                ctx,
                k,
                &format!("{what} key"),
                defaults,
                Some(&entity_set),
            )?)
        }
        (None, Some(_)) => {
            // Re-read the table as a guid value (from, derive_uuid, required, trim, null_if).
            let mut spec = parse_value_spec_table(
                ctx,
                val,
                &ValueRead {
                    column,
                    what,
                    defaults,
                    derive_prefix: Some(&entity_set),
                    is_key: true,
                    required_default: false,
                    extra_allowed: &["lookup", "type", "empty", "omit_empty"],
                },
            )?;
            if !matches!(spec.converter, Converter::Guid { .. }) {
                spec.converter = Converter::Guid { derive: None };
            }
            LookupKey::Id(Box::new(spec))
        }
        (None, None) => {
            return Err(ctx.err(
                val.span(),
                format!("{what}: a lookup needs from = \"<field holding the target's GUID>\", key = {{ <alternate key column> = \"<field>\" }} or match = {{ <column of the target> = \"<field>\" }}"),
            ));
        }
    };
    Ok(FieldKind::Lookup { entity_set, key })
}

/// Where a value is read and what it may hold: the options of [`parse_value_spec_table`].
#[derive(Clone, Copy)]
struct ValueRead<'a> {
    /// The target column it fills.
    column: &'a str,
    /// How errors name it (`field 'name'`, `key column 'accountnumber'`).
    what: &'a str,
    /// What `[source]` sets for every field.
    defaults: &'a FieldDefaults,
    /// The prefix of a derived id (`derive_uuid`), when it is not the column.
    derive_prefix: Option<&'a str>,
    /// A key column: `required` is implied for a plain field name.
    is_key: bool,
    /// `required` when the table does not say.
    required_default: bool,
    /// Keys allowed beyond a value's (`omit_empty`, `lookup`, `type` for a lookup's id).
    extra_allowed: &'a [&'a str],
}

impl<'a> ValueRead<'a> {
    /// A field's or a key column's value.
    fn field(
        column: &'a str,
        what: &'a str,
        defaults: &'a FieldDefaults,
        derive_prefix: Option<&'a str>,
        is_key: bool,
    ) -> ValueRead<'a> {
        ValueRead {
            column,
            what,
            defaults,
            derive_prefix,
            is_key,
            required_default: is_key,
            extra_allowed: &["empty", "omit_empty"],
        }
    }
}

fn parse_value_spec(
    ctx: &Ctx<'_>,
    val: &Val<'_>,
    read: &ValueRead<'_>,
) -> Result<ValueSpec, MappingError> {
    let (what, is_key) = (read.what, read.is_key);
    match val.get_ref() {
        DeValue::String(s) => Ok(ValueSpec {
            labels_later: Vec::new(),
            input: Input::Field(FieldRef { name: s.to_string(), span: val.span() }),
            converter: Converter::Text { max_length: None },
            trim: true,
            null_if: Vec::new(),
            default: None,
            default_text: None,
            required: is_key,
        }),
        DeValue::Table(_) => {
            parse_value_spec_table(ctx, val, read)
        }
        other => Err(ctx.err(
            val.span(),
            format!(
                "{what} must be a source field name (\"Company\") or a table such as {{ from = \"Company\", type = \"text\" }}, not {}; for a constant write {{ value = ... }}",
                describe(other)
            ),
        )),
    }
}

fn parse_value_spec_table(
    ctx: &Ctx<'_>,
    val: &Val<'_>,
    read: &ValueRead<'_>,
) -> Result<ValueSpec, MappingError> {
    let ValueRead {
        column,
        what,
        defaults,
        derive_prefix,
        is_key: _,
        required_default,
        extra_allowed,
    } = *read;
    let mut labels_later = Vec::new();
    let table = val.get_ref().as_table().expect("checked by caller");
    let t = TableReader::new(ctx, table, val.span(), what.to_string());
    let allowed: Vec<&str> = FIELD_KEYS
        .iter()
        .copied()
        .filter(|k| {
            !matches!(*k, "lookup" | "key" | "empty" | "omit_empty") || extra_allowed.contains(k)
        })
        .collect();
    t.check_keys(&allowed)?;

    let value_type = match t.string("type")? {
        Some(ty) => {
            let Some(named) = ValueType::named(ty.get_ref()) else {
                let name = ty.get_ref().to_ascii_lowercase();
                let hint = suggest(&name, ValueType::names())
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                return Err(ctx.err(
                    ty.span(),
                    format!(
                        "unknown type '{}'{hint}; allowed: {}",
                        ty.get_ref(),
                        ValueType::names().collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            if named == ValueType::Lookup && extra_allowed.contains(&"lookup") {
                ValueType::Guid
            } else if named == ValueType::Lookup {
                return Err(ctx.err(
                    ty.span(),
                    format!(
                        "{what}: type = \"lookup\" needs lookup = \"<entity set>\" and from or key"
                    ),
                ));
            } else {
                named
            }
        }
        None => match t.get("value") {
            Some(v) => match v.get_ref() {
                DeValue::Integer(_) => ValueType::Int,
                DeValue::Float(_) => ValueType::Decimal,
                DeValue::Boolean(_) => ValueType::Bool,
                _ => ValueType::Text,
            },
            None => ValueType::Text,
        },
    };
    let only_for = |key: &str, types: &[ValueType]| -> Result<(), MappingError> {
        if let Some(v) = t.get(key) {
            if !types.contains(&value_type) {
                let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
                return Err(ctx.err(
                    v.span(),
                    format!(
                        "{what}: '{key}' applies to type {} only, and this field is {}",
                        names.join(" or "),
                        value_type.name()
                    ),
                ));
            }
        }
        Ok(())
    };
    use ValueType as T;
    only_for("max_length", &[T::Text])?;
    only_for("map", &[T::Choice, T::Choices])?;
    only_for("format", &[T::DateTime, T::DateOnly])?;
    only_for("timezone", &[T::DateTime])?;
    only_for(
        "decimal",
        &[T::Int, T::BigInt, T::Decimal, T::Float, T::Money],
    )?;
    only_for("separator", &[T::Choices])?;
    only_for("derive_uuid", &[T::Guid])?;

    let decimal = match t.string("decimal")? {
        Some(d) => decimal_char(ctx, &d)?,
        None => defaults.decimal,
    };
    let formats = t
        .strings("format")?
        .map(Spanned::into_inner)
        .unwrap_or_default();
    if formats.is_empty() {
        if let Some(v) = t.get("format") {
            return Err(ctx.err(v.span(), format!("{what}: format is an empty list; give one or more strftime formats such as \"%d/%m/%Y\", or leave format out for ISO 8601")));
        }
    }
    for f in &formats {
        if !f.contains('%') {
            let v = t.get("format").expect("read above");
            return Err(ctx.err(v.span(), format!("{what}: format '{f}' has no % directives; use strftime codes such as \"%d/%m/%Y\" or \"%d/%m/%Y %H:%M\"")));
        }
        let v = t.get("format").expect("read above");
        check_format(f, value_type == T::DateTime)
            .map_err(|e| ctx.err(v.span(), format!("{what}: format '{f}' {e}")))?;
    }
    let separator = match t.string("separator")? {
        Some(sep) if sep.get_ref().is_empty() => {
            return Err(ctx.err(
                sep.span(),
                format!("{what}: separator must not be empty; give the text between labels, such as \",\" (the default), \";\" or \"|\""),
            ));
        }
        Some(sep) => sep.into_inner(),
        None => ",".into(),
    };
    let map = match t.get("map") {
        Some(v) => {
            let Some(tbl) = v.get_ref().as_table() else {
                return Err(ctx.err(v.span(), format!("{what}: map must be a table of label = value, e.g. {{ \"Agriculture\" = 2 }}")));
            };
            if tbl.is_empty() {
                return Err(ctx.err(v.span(), format!("{what}: map is empty; list label = value pairs such as {{ \"Hot\" = 1 }}, or leave map out to accept option values only")));
            }
            let mut pairs: Vec<(String, i64)> = Vec::new();
            for (label, value) in tbl.iter() {
                let name = label.get_ref();
                let Some(n) = value
                    .get_ref()
                    .as_integer()
                    .and_then(toml_integer)
                    .filter(|n| i32::try_from(*n).is_ok())
                else {
                    return Err(ctx.err(
                        value.span(),
                        format!(
                            "{what}: map value for '{name}' must be an integer option value ({} to {})",
                            i32::MIN,
                            i32::MAX
                        ),
                    ));
                };
                // Labels are matched trimmed and ignoring case: two that read the same there
                // would make the option depend on which one the lookup meets first.
                let folded = name.trim().to_lowercase();
                if folded.is_empty() {
                    return Err(ctx.err(label.span(), format!("{what}: a map label is empty; an empty value is sent as null (or its default)")));
                }
                if value_type == T::Choices && name.contains(separator.as_str()) {
                    return Err(ctx.err(
                        label.span(),
                        format!("{what}: map label '{name}' contains the separator {separator:?}, so no value can select it; set separator to text no label holds, such as \"|\" or \";\""),
                    ));
                }
                if let Some((other, _)) = pairs
                    .iter()
                    .find(|(l, _)| l.trim().to_lowercase() == folded)
                {
                    return Err(ctx.err(
                        label.span(),
                        format!("{what}: map label '{name}' is the same as '{other}' (labels are matched trimmed and ignoring case); keep one"),
                    ));
                }
                pairs.push((name.to_string(), n));
            }
            ChoiceMap::new(pairs)
        }
        None => ChoiceMap::default(),
    };
    let converter = match value_type {
        T::Text => {
            let max_length = match t.get("max_length") {
                Some(v) => Some(
                    v.get_ref()
                        .as_integer()
                        .and_then(toml_integer)
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            ctx.err(
                                v.span(),
                                format!("{what}: max_length must be a positive integer"),
                            )
                        })?,
                ),
                None => None,
            };
            Converter::Text { max_length }
        }
        T::Int => Converter::Integer {
            wide: false,
            decimal,
        },
        T::BigInt => Converter::Integer {
            wide: true,
            decimal,
        },
        T::Decimal => Converter::Number {
            decimal,
            money: false,
            float: false,
        },
        T::Money => Converter::Number {
            decimal,
            money: true,
            float: false,
        },
        T::Float => Converter::Number {
            decimal,
            money: false,
            float: true,
        },
        T::Bool => Converter::Bool(BoolLabels::default()),
        T::DateTime => {
            let tz = match t.string("timezone")?.or_else(|| defaults.timezone.clone()) {
                Some(tz) => check_tz(ctx, &tz)?,
                None => jiff::tz::TimeZone::UTC,
            };
            Converter::DateTime { formats, tz }
        }
        T::DateOnly => Converter::DateOnly { formats },
        T::Guid => {
            let derive = t.bool("derive_uuid")?.unwrap_or(false);
            Converter::Guid {
                derive: derive.then(|| derive_prefix.unwrap_or(column).to_string()),
            }
        }
        T::Choice => Converter::Choice(map),
        T::Choices => Converter::Choices { map, separator },
        T::Lookup => unreachable!("a lookup type is refused or read as a guid above"),
    };

    let inputs: Vec<&str> = ["from", "value", "template"]
        .into_iter()
        .filter(|k| t.get(k).is_some())
        .collect();
    if inputs.len() != 1 {
        let msg = if inputs.is_empty() {
            format!(
                "{what} needs one of from = \"<source field>\", value = <constant> or template = \"{{First}} {{Last}}\""
            )
        } else {
            format!(
                "{what} has {}; give exactly one of from, value, template",
                inputs.join(" and ")
            )
        };
        return Err(ctx.err(val.span(), msg));
    }
    let input = match inputs[0] {
        "from" => {
            let from = t.string("from")?.expect("present");
            Input::Field(FieldRef {
                name: from.get_ref().clone(),
                span: from.span(),
            })
        }
        "template" => {
            let tpl = t.string("template")?.expect("present");
            Input::Template(parse_template(ctx, &tpl, what)?)
        }
        _ => {
            let v = t.get("value").expect("present");
            let text = match v.get_ref() {
                DeValue::String(s) => s.to_string(),
                DeValue::Integer(i) => match toml_integer(i) {
                    Some(n) => n.to_string(),
                    None => {
                        return Err(ctx.err(
                            v.span(),
                            format!(
                                "{what}: value is out of range for a whole number ({} to {})",
                                i64::MIN,
                                i64::MAX
                            ),
                        ));
                    }
                },
                DeValue::Float(f) => f.as_str().to_string(),
                DeValue::Boolean(b) => b.to_string(),
                other => {
                    return Err(ctx.err(
                        v.span(),
                        format!(
                            "{what}: value must be a string, number or boolean, not {}",
                            describe(other)
                        ),
                    ));
                }
            };
            let mut text = text.trim().to_string();
            let numeric = matches!(v.get_ref(), DeValue::Integer(_) | DeValue::Float(_));
            if numeric
                && decimal == ','
                && matches!(
                    converter,
                    Converter::Number { .. } | Converter::Integer { .. }
                )
            {
                // A TOML number is written with a decimal point whatever the field's notation:
                // `1.500` is one and a half, not the "1.500" (1500) of decimal = ",".
                text = text.replace('.', ",");
            }
            let json = convert_fixed(
                ctx,
                read,
                &converter,
                &text,
                v.span(),
                false,
                &mut labels_later,
            )?;
            Input::Constant { text, json }
        }
    };
    let (default, default_text) = match t.string("default")? {
        Some(d) => {
            let json = convert_fixed(
                ctx,
                read,
                &converter,
                d.get_ref().trim(),
                d.span(),
                true,
                &mut labels_later,
            )?;
            (Some(json), Some(d.into_inner()))
        }
        None => (None, None),
    };
    let required = t.bool("required")?.unwrap_or(required_default);
    if required_default && !required {
        let v = t.get("required").expect("read above");
        return Err(ctx.err(v.span(), format!("{what}: key columns are always required")));
    }
    if let (Some(true), Some(d)) = (t.bool("required")?, t.get("default")) {
        return Err(ctx.err(
            d.span(),
            format!("{what}: required = true and a default contradict each other (an empty value would take the default, never reject the row); keep one"),
        ));
    }
    if matches!(input, Input::Constant { .. }) {
        // A constant is never empty and never read from the source.
        for key in ["trim", "null_if", "default", "required"] {
            if let Some(v) = t.get(key) {
                return Err(ctx.err(
                    v.span(),
                    format!("{what}: '{key}' applies to values read from the source (from or template), not to a constant value"),
                ));
            }
        }
    }
    Ok(ValueSpec {
        labels_later,
        input,
        converter,
        trim: t.bool("trim")?.unwrap_or(true),
        null_if: t
            .strings("null_if")?
            .map(Spanned::into_inner)
            .unwrap_or_default(),
        default,
        default_text,
        required,
    })
}

/// A constant value (`default` false) or a default, converted to its JSON by `converter`. A label
/// of a column whose labels come from the metadata waits for them: its JSON is empty, and it is
/// noted in `later` (see [`ValueSpec::labels_later`]).
fn convert_fixed(
    ctx: &Ctx<'_>,
    read: &ValueRead<'_>,
    converter: &Converter,
    text: &str,
    span: Range<usize>,
    default: bool,
    later: &mut Vec<LaterLabel>,
) -> Result<String, MappingError> {
    let name = if default { "default" } else { "constant value" };
    let what = read.what;
    let mut json = String::new();
    match converter.write_json(text, &mut json) {
        Ok(_) => {}
        Err(_) if !read.is_key && converter.labels_from_metadata() => {
            json.clear();
            later.push(LaterLabel { default, span });
            return Ok(json);
        }
        Err(e) => return Err(ctx.err(span, format!("{what}: {name} {e}"))),
    }
    if read.is_key {
        check_key_constant(converter, text)
            .map_err(|e| ctx.err(span, format!("{what}: {name} {e}")))?;
    }
    Ok(json)
}

/// Refuses a date format that cannot read back what it writes: every value would be rejected
/// (a directive that does not exist, no year, a weekday in place of the day, ...). A date and
/// time (2001-02-03 04:05:06 in London, every part distinct) is written with it and read back as the
/// field reads its values.
fn check_format(format: &str, datetime: bool) -> Result<(), String> {
    // In a named zone when the format names one (`%Q`, `%:Q`), so that it writes a name it can
    // read back; otherwise UTC, which needs no look into the system's time zone database (its
    // first use reads the whole directory, a millisecond before the first row).
    let zone = if format.contains('Q') {
        jiff::tz::TimeZone::get("Europe/London").unwrap_or(jiff::tz::TimeZone::UTC)
    } else {
        jiff::tz::TimeZone::UTC
    };
    let sample = jiff::civil::date(2001, 2, 3)
        .at(4, 5, 6, 0)
        .to_zoned_datetime(zone)
        .map_err(|e| e.to_string())?;
    let text = jiff::fmt::strtime::format(format, &sample)
        .map_err(|e| format!("is not a strftime format ({e}); use codes such as %d %m %Y %H %M"))?;
    let formats = [format.to_string()];
    let read = if datetime {
        super::convert::parse_datetime(&text, &formats, &jiff::tz::TimeZone::UTC).map(drop)
    } else {
        super::convert::parse_date(&text, &formats).map(drop)
    };
    read.map_err(|e| {
        format!("cannot read back the dates it writes ({e}); a date format needs the year, month and day, such as \"%d/%m/%Y\"")
    })
}

/// Checks a key part's constant or default text as [`super::plan`] checks each row's key value:
/// it converts, is not empty, and can be addressed in a key URL.
fn check_key_constant(converter: &Converter, text: &str) -> Result<(), String> {
    let value = converter.key_value(text)?;
    if matches!(&value, KeyValue::String(s) if s.is_empty()) {
        return Err("is empty; a key value cannot be empty".to_string());
    }
    value.check_addressable().map_err(|e| e.to_string())
}

fn parse_template(
    ctx: &Ctx<'_>,
    tpl: &Spanned<String>,
    what: &str,
) -> Result<Vec<TemplatePart>, MappingError> {
    let s = tpl.get_ref();
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let rest = &s[i + 1..];
                let Some(end) = rest.find('}') else {
                    return Err(ctx.err(tpl.span(), format!("{what}: template '{s}' has a '{{' without its '}}' (write {{{{ for a literal brace)")));
                };
                let name = &rest[..end];
                if name.is_empty() {
                    return Err(ctx.err(tpl.span(), format!("{what}: template '{s}' has an empty {{}}; put a source field name inside")));
                }
                if !literal.is_empty() {
                    parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(TemplatePart::Field(FieldRef {
                    name: name.to_string(),
                    span: tpl.span(),
                }));
                for _ in 0..name.chars().count() + 1 {
                    chars.next();
                }
            }
            '}' => {
                return Err(ctx.err(tpl.span(), format!("{what}: template '{s}' has a '}}' without its '{{' (write }}}} for a literal brace)")));
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(TemplatePart::Literal(literal));
    }
    if !parts.iter().any(|p| matches!(p, TemplatePart::Field(_))) {
        return Err(ctx.err(
            tpl.span(),
            format!("{what}: template '{s}' names no field; for a constant use value = \"...\""),
        ));
    }
    Ok(parts)
}
