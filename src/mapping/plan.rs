//! The compiled mapping: a `Plan` bound to the source's columns that turns one `Record` into one
//! `Operation`, a skip, or a `RowError`. Pure: no I/O, no clock.

use std::borrow::Cow;
use std::fmt;

use super::convert::{Converter, trim};
use super::spec::{
    EmptyValues, FieldKind, FieldRef, Input, LookupKey, MappingError, MappingSpec, OperationKind,
    TemplatePart, ValueSpec,
};
use crate::odata::key::{KeyValue, StringKey, check_addressable, encode_key_name};
use crate::odata::{Method, Operation, Precondition, Unresolved};
use crate::source::{Record, RecordData, RowPos};
use crate::toml_reader::{Ctx, suggest};

/// Why one row could not be turned into an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The row.
    pub row: RowPos,
    /// The target column (logical name), when the error is about one.
    pub column: Option<String>,
    /// The source field, when the error is about one.
    pub field: Option<String>,
    /// What is wrong and what would be accepted.
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.row)?;
        match (&self.column, &self.field) {
            (Some(c), Some(s)) => write!(f, ": column '{c}' (from '{s}')")?,
            (Some(c), None) => write!(f, ": column '{c}'")?,
            (None, Some(s)) => write!(f, ": field '{s}'")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.reason)
    }
}

/// What the plan made of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// The request to send.
    Operation(Operation),
    /// The row matched a filter; the reason says which.
    Skipped(String),
}

/// How to get a field's text out of a record.
#[derive(Debug, Clone)]
enum Getter {
    /// CSV column index.
    Column(usize),
    /// JSON path segments.
    Path(Vec<String>),
}

#[derive(Debug, Clone)]
struct BoundRef {
    name: String,
    getter: Getter,
}

#[derive(Debug, Clone)]
enum BoundInput {
    Field(BoundRef),
    Template(Vec<BoundPart>),
    Constant { text: String, json: String },
}

#[derive(Debug, Clone)]
enum BoundPart {
    Literal(String),
    Field(BoundRef),
}

#[derive(Debug, Clone)]
struct BoundValue {
    input: BoundInput,
    spec: ValueSpec,
    null_if_lower: Vec<String>,
}

#[derive(Debug, Clone)]
struct BoundKeyPart {
    column: String,
    /// `column` percent-encoded for key URLs.
    url_column: String,
    value: BoundValue,
}

#[derive(Debug, Clone)]
enum BoundKey {
    /// No key: `POST {set}`.
    None,
    /// Primary id: `{set}(<guid>)`.
    Id(Box<BoundValue>, String),
    /// Alternate key: `{set}(col='v',col2=3)`.
    Alternate(Vec<BoundKeyPart>),
    /// A lookup by `match`: its values, and its index among the plan's match lookups.
    Match(Vec<BoundKeyPart>, usize),
}

/// A lookup by `match` (`parentcustomerid_account = { lookup = "accounts", match = { name =
/// "Company" } }`): what [`crate::resolve`] needs to find its targets.
#[derive(Debug, Clone)]
pub struct MatchLookup {
    /// The navigation property it binds (`parentcustomerid_account`).
    pub column: String,
    /// The target's entity set.
    pub entity_set: String,
    /// The target's columns the values must equal, in order.
    pub columns: Vec<String>,
    /// The source fields the values come from, in the same order (`None` for a constant).
    pub fields: Vec<Option<String>>,
    /// What more than one match does.
    pub on_many: crate::mapping::spec::OnMany,
}

#[derive(Debug, Clone)]
enum BoundKind {
    Value {
        json_key: String,
        value: Box<BoundValue>,
    },
    Lookup {
        json_key: String,
        entity_set: String,
        key: BoundKey,
    },
}

#[derive(Debug, Clone)]
struct BoundField {
    column: String,
    kind: BoundKind,
    empty: EmptyValues,
}

/// A mapping compiled against a source: ready to turn records into operations.
#[derive(Debug)]
pub struct Plan {
    /// The target entity set.
    pub entity_set: String,
    /// The operation performed on each row.
    pub operation: OperationKind,
    key: BoundKey,
    fields: Vec<BoundField>,
    skip_empty: Vec<BoundRef>,
    skip_equal: Vec<(BoundRef, Vec<String>)>,
    matches: Vec<MatchLookup>,
    /// Constants and defaults that are labels the column's metadata has not given yet: the plan
    /// maps no row until they are converted (see [`Plan::ready`]).
    waiting: Vec<MappingError>,
    /// The length of the last body built: the next one is allocated that big, so that it is
    /// not regrown field by field (a hint only; rows are mapped on any thread).
    body_hint: std::sync::atomic::AtomicUsize,
}

impl Clone for Plan {
    fn clone(&self) -> Plan {
        Plan {
            entity_set: self.entity_set.clone(),
            operation: self.operation,
            key: self.key.clone(),
            fields: self.fields.clone(),
            skip_empty: self.skip_empty.clone(),
            skip_equal: self.skip_equal.clone(),
            matches: self.matches.clone(),
            waiting: self.waiting.clone(),
            body_hint: std::sync::atomic::AtomicUsize::new(
                self.body_hint.load(std::sync::atomic::Ordering::Relaxed),
            ),
        }
    }
}

impl Plan {
    /// Binds `spec` to a source: `columns` is the CSV header (`None` for JSON sources). Every
    /// field a CSV mapping names must be a column of the header.
    pub fn compile(
        spec: &MappingSpec,
        columns: Option<&[String]>,
        source_name: &str,
    ) -> Result<Plan, MappingError> {
        let ctx = Ctx {
            file: &spec.file,
            text: &spec.text,
        };
        let binder = Binder {
            ctx: &ctx,
            columns,
            source_name,
        };
        let key = binder.key(
            &spec.target.key,
            spec.target.operation == OperationKind::Create,
        )?;
        let mut fields = Vec::with_capacity(spec.fields.len());
        let mut matches = Vec::new();
        let mut waiting = Vec::new();
        for f in &spec.fields {
            if let FieldKind::Value(v) = &f.kind {
                for later in &v.labels_later {
                    let (what, text) = if later.default {
                        ("default", v.default_text.clone().unwrap_or_default())
                    } else {
                        match &v.input {
                            Input::Constant { text, .. } => ("constant value", text.clone()),
                            _ => ("value", String::new()),
                        }
                    };
                    let message = if matches!(v.converter, Converter::Bool(_)) {
                        format!(
                            "field '{}': {what} '{text}' is not a yes/no value (true/false, yes/no, 1/0), nor yet one of the column's own labels: check against the environment, whose metadata has them (a run does; validate and --dry-run do with --metadata DIR)",
                            f.column
                        )
                    } else {
                        format!(
                            "field '{}': {what} '{text}' is a label, and no map gives its value: add map = {{ \"{text}\" = <value> }}, or check against the environment, whose option set has the labels (a run does; validate and --dry-run do with --metadata DIR)",
                            f.column
                        )
                    };
                    waiting.push(ctx.err(later.span.clone(), message));
                }
            }
            let kind = match &f.kind {
                FieldKind::Value(v) => BoundKind::Value {
                    json_key: json_key(&f.column),
                    value: Box::new(binder.value(v)?),
                },
                FieldKind::Lookup { entity_set, key } => {
                    let key = match key {
                        LookupKey::Id(v) => {
                            BoundKey::Id(Box::new(binder.value(v)?), f.column.clone())
                        }
                        LookupKey::Alternate(parts) => BoundKey::Alternate(binder.parts(parts)?),
                        LookupKey::Match { parts, on_many } => {
                            let bound = binder.parts(parts)?;
                            matches.push(MatchLookup {
                                column: f.column.clone(),
                                entity_set: entity_set.clone(),
                                columns: parts.iter().map(|p| p.column.clone()).collect(),
                                fields: bound.iter().map(|p| value_field_name(&p.value)).collect(),
                                on_many: *on_many,
                            });
                            BoundKey::Match(bound, matches.len() - 1)
                        }
                    };
                    BoundKind::Lookup {
                        json_key: json_key(&format!("{}@odata.bind", f.column)),
                        entity_set: entity_set.clone(),
                        key,
                    }
                }
            };
            fields.push(BoundField {
                column: f.column.clone(),
                kind,
                empty: f.empty,
            });
        }
        let skip_empty = spec
            .filter
            .skip_empty
            .iter()
            .map(|r| binder.field(r))
            .collect::<Result<_, _>>()?;
        let skip_equal = spec
            .filter
            .skip_equal
            .iter()
            .map(|(r, values)| Ok((binder.field(r)?, values.clone())))
            .collect::<Result<_, MappingError>>()?;
        Ok(Plan {
            entity_set: spec.target.entity_set.clone(),
            operation: spec.target.operation,
            key,
            fields,
            skip_empty,
            skip_equal,
            matches,
            waiting,
            body_hint: std::sync::atomic::AtomicUsize::new(64),
        })
    }

    /// The column that identifies a record of this mapping: the primary id column, or the first
    /// column of the alternate key; `None` for keyless creates.
    pub fn key_column(&self) -> Option<&str> {
        match &self.key {
            BoundKey::None => None,
            BoundKey::Id(_, column) => Some(column),
            BoundKey::Alternate(parts) => parts.first().map(|p| p.column.as_str()),
            BoundKey::Match(..) => None,
        }
    }

    /// Whether the plan can map rows: not while a constant or a default is a label that only the
    /// column's metadata can convert (then the first such is the error).
    pub fn ready(&self) -> Result<(), MappingError> {
        match self.waiting.first() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// The lookups by `match` (their targets are found before a row is sent).
    pub fn match_lookups(&self) -> &[MatchLookup] {
        &self.matches
    }

    /// Turns one record into an operation, a skip, or an error. Pure.
    pub fn apply(&self, record: &Record) -> Result<Mapped, RowError> {
        let row = record.pos;
        for r in &self.skip_empty {
            let text = get(record, &r.getter).map_err(|reason| RowError {
                row,
                column: None,
                field: Some(r.name.clone()),
                reason,
            })?;
            if text.trim().is_empty() {
                return Ok(Mapped::Skipped(format!("'{}' is empty", r.name)));
            }
        }
        for (r, values) in &self.skip_equal {
            let text = get(record, &r.getter).map_err(|reason| RowError {
                row,
                column: None,
                field: Some(r.name.clone()),
                reason,
            })?;
            let text = text.trim();
            if values.iter().any(|v| v == text) {
                return Ok(Mapped::Skipped(format!("'{}' is '{text}'", r.name)));
            }
        }

        let mut url = String::with_capacity(self.entity_set.len() + 48);
        let mut key_text = String::with_capacity(url.capacity());
        let keyed = write_key(
            record,
            &self.key,
            None,
            &self.entity_set,
            &mut url,
            Some(&mut key_text),
        )?;
        let url = if keyed { Some(url) } else { None };
        let (method, precondition) = match (self.operation, url.is_some()) {
            (OperationKind::Create, false) => (Method::Post, Precondition::None),
            (OperationKind::Create, true) => (Method::Patch, Precondition::IfNoneMatchAny),
            (OperationKind::Update, _) => (Method::Patch, Precondition::IfMatchAny),
            (OperationKind::Upsert, _) => (Method::Patch, Precondition::None),
            (OperationKind::Delete, _) => (Method::Delete, Precondition::None),
        };
        let url = url.unwrap_or_else(|| self.entity_set.clone());

        let mut lookups = Vec::new();
        let body = if self.operation == OperationKind::Delete {
            None
        } else {
            let hint = self.body_hint.load(std::sync::atomic::Ordering::Relaxed);
            let mut body = String::with_capacity(hint + hint / 4);
            body.push('{');
            let mut first = true;
            for f in &self.fields {
                let mark = body.len();
                let skip = usize::from(first);
                let written = match &f.kind {
                    BoundKind::Value { json_key, value } => {
                        body.push_str(&json_key[skip..]);
                        write_value(record, value, &mut body).map_err(|reason| RowError {
                            row,
                            column: Some(f.column.clone()),
                            field: value_field_name(value),
                            reason,
                        })?
                    }
                    BoundKind::Lookup {
                        json_key,
                        entity_set,
                        key,
                    } => {
                        body.push_str(&json_key[skip..]);
                        let start = body.len();
                        body.push_str("\"/");
                        if let BoundKey::Match(parts, lookup) = key {
                            match match_values(record, parts, &f.column)? {
                                Some(values) => {
                                    body.push_str(entity_set);
                                    lookups.push(Unresolved {
                                        at: body.len(),
                                        lookup: *lookup,
                                        values,
                                    });
                                    body.push('"');
                                    true
                                }
                                None => {
                                    body.truncate(start);
                                    body.push_str("null");
                                    false
                                }
                            }
                        } else if write_key(
                            record,
                            key,
                            Some(&f.column),
                            entity_set,
                            &mut body,
                            None,
                        )? {
                            body.push('"');
                            true
                        } else {
                            body.truncate(start);
                            body.push_str("null");
                            false
                        }
                    }
                };
                let clears = written
                    || match f.empty {
                        EmptyValues::Keep => false,
                        EmptyValues::Clear => true,
                        EmptyValues::ClearOnNull => f.reads_json_null(record),
                    };
                if clears {
                    first = false;
                } else {
                    body.truncate(mark);
                }
            }
            body.push('}');
            self.body_hint
                .store(body.len(), std::sync::atomic::Ordering::Relaxed);
            Some(body)
        };
        Ok(Mapped::Operation(Operation {
            row,
            method,
            url,
            precondition,
            body,
            key: key_text,
            lookups,
        }))
    }
}

impl BoundField {
    /// Whether the field's source value is an explicit JSON `null` (for a lookup, its key's
    /// first field): the one empty value `empty = "clear-on-null"` clears with.
    fn reads_json_null(&self, record: &Record) -> bool {
        let value = match &self.kind {
            BoundKind::Value { value, .. } => value,
            BoundKind::Lookup { key, .. } => match key {
                BoundKey::Id(value, _) => value,
                BoundKey::Alternate(parts) | BoundKey::Match(parts, _) => match parts.first() {
                    Some(p) => &p.value,
                    None => return false,
                },
                BoundKey::None => return false,
            },
        };
        let (BoundInput::Field(r), RecordData::Json(json)) = (&value.input, &record.data) else {
            return false;
        };
        let Getter::Path(path) = &r.getter else {
            return false;
        };
        json_at(json, path).is_some_and(serde_json::Value::is_null)
    }
}

/// `,"column":`: the separator and the member name, so that both are appended at once (the
/// first member of a body leaves the comma out).
fn json_key(column: &str) -> String {
    let mut s = String::with_capacity(column.len() + 4);
    s.push(',');
    super::convert::write_json_string(column, &mut s);
    s.push(':');
    s
}

fn value_field_name(v: &BoundValue) -> Option<String> {
    match &v.input {
        BoundInput::Field(r) => Some(r.name.clone()),
        BoundInput::Template(parts) => Some(
            parts
                .iter()
                .filter_map(|p| match p {
                    BoundPart::Field(r) => Some(r.name.as_str()),
                    BoundPart::Literal(_) => None,
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        BoundInput::Constant { .. } => None,
    }
}

/// One key value read from a record.
enum KeyText<'r> {
    /// A text column's value, as it is (no copy).
    Text(StringKey<'r>),
    /// Any other type's value.
    Typed(KeyValue),
}

impl KeyText<'_> {
    /// Appends the OData literal, percent-encoded: `'A%201'`.
    fn write_url(&self, out: &mut String) {
        match self {
            KeyText::Text(s) => s.write_url_literal(out),
            KeyText::Typed(v) => v.write_url_literal(out),
        }
    }

    /// Appends the OData literal as it reads: `'A 1'`.
    fn write_literal(&self, out: &mut String) {
        match self {
            KeyText::Text(s) => s.write_literal(out),
            KeyText::Typed(v) => v.write_literal(out),
        }
    }
}

/// Reads a key's values from a record and appends the record's URL to `url`
/// (`accounts(accountnumber='A%201')`, percent-encoded) and, when given, the key as readable
/// text to `display` (`accountnumber='A 1'`). Returns false, having appended nothing, when
/// there is no key: none is defined, or its values are all empty and it belongs to a lookup
/// (`lookup_column`), which then binds to null.
fn write_key(
    record: &Record,
    key: &BoundKey,
    lookup_column: Option<&str>,
    entity_set: &str,
    url: &mut String,
    mut display: Option<&mut String>,
) -> Result<bool, RowError> {
    let row = record.pos;
    let err = |column: &str, v: &BoundValue, reason: String| RowError {
        row,
        column: Some(lookup_column.unwrap_or(column).to_string()),
        field: value_field_name(v),
        reason,
    };
    match key {
        // The main key is never a match; a lookup's match is written by `apply`.
        BoundKey::None | BoundKey::Match(..) => Ok(false),
        BoundKey::Id(v, column) => {
            let required = lookup_column.is_none() || v.spec.required;
            match key_value(record, v, required).map_err(|r| err(column, v, r))? {
                Some(KeyText::Typed(KeyValue::Guid(id))) => {
                    let mut buf = uuid::Uuid::encode_buffer();
                    let id = id.hyphenated().encode_lower(&mut buf);
                    url.push_str(entity_set);
                    url.push('(');
                    url.push_str(id);
                    url.push(')');
                    if let Some(d) = display {
                        d.push_str(column);
                        d.push('=');
                        d.push_str(id);
                    }
                    Ok(true)
                }
                Some(other) => {
                    let mut literal = String::new();
                    other.write_literal(&mut literal);
                    Err(err(column, v, format!("{literal} is not a GUID")))
                }
                None => Ok(false),
            }
        }
        BoundKey::Alternate(parts) => {
            let (url_mark, display_mark) = (url.len(), display.as_ref().map_or(0, |d| d.len()));
            url.push_str(entity_set);
            url.push('(');
            let mut empty = Vec::new();
            let mut first = true;
            for p in parts {
                let required = lookup_column.is_none();
                match key_value(record, &p.value, required)
                    .map_err(|r| err(&p.column, &p.value, r))?
                {
                    Some(v) => {
                        if !first {
                            url.push(',');
                        }
                        url.push_str(&p.url_column);
                        url.push('=');
                        v.write_url(url);
                        if let Some(d) = display.as_deref_mut() {
                            if !first {
                                d.push(',');
                            }
                            d.push_str(&p.column);
                            d.push('=');
                            v.write_literal(d);
                        }
                        first = false;
                    }
                    None => empty.push(p.column.as_str()),
                }
            }
            if !empty.is_empty() {
                url.truncate(url_mark);
                if let Some(d) = display {
                    d.truncate(display_mark);
                }
                if empty.len() == parts.len() {
                    return Ok(false);
                }
                return Err(RowError {
                    row,
                    column: Some(lookup_column.unwrap_or(empty[0]).to_string()),
                    field: None,
                    reason: format!(
                        "the key column(s) {} are empty while others are not; every key column needs a value",
                        empty.join(", ")
                    ),
                });
            }
            url.push(')');
            Ok(true)
        }
    }
}

/// The OData literals of a match lookup's values (`'Contoso'`), `None` when they are all empty
/// (the lookup then binds null or is left out, as for a key); some empty and some not is an error.
fn match_values(
    record: &Record,
    parts: &[BoundKeyPart],
    lookup_column: &str,
) -> Result<Option<Vec<String>>, RowError> {
    let mut values = Vec::with_capacity(parts.len());
    let mut empty = Vec::new();
    for p in parts {
        match key_or_match_value(record, &p.value, false, false).map_err(|reason| RowError {
            row: record.pos,
            column: Some(lookup_column.to_string()),
            field: value_field_name(&p.value),
            reason,
        })? {
            Some(v) => {
                let mut literal = String::new();
                v.write_literal(&mut literal);
                values.push(literal);
            }
            None => empty.push(p.column.as_str()),
        }
    }
    if empty.is_empty() {
        Ok(Some(values))
    } else if empty.len() == parts.len() {
        Ok(None)
    } else {
        Err(RowError {
            row: record.pos,
            column: Some(lookup_column.to_string()),
            field: None,
            reason: format!(
                "the match column(s) {} are empty while others are not; every match column needs a value",
                empty.join(", ")
            ),
        })
    }
}

/// The key value of one key part, `None` when it is empty and not required.
fn key_value<'r>(
    record: &'r Record,
    v: &'r BoundValue,
    required: bool,
) -> Result<Option<KeyText<'r>>, String> {
    key_or_match_value(record, v, required, true)
}

/// A key value (`in_url`: it goes in a key URL, where some characters cannot be) or a match
/// value (it goes in a `$filter`, where every character can).
fn key_or_match_value<'r>(
    record: &'r Record,
    v: &'r BoundValue,
    required: bool,
    in_url: bool,
) -> Result<Option<KeyText<'r>>, String> {
    let check = |r: Result<(), crate::odata::key::UnaddressableKey>| match r {
        Err(e) if in_url => Err(e.to_string()),
        _ => Ok(()),
    };
    if let BoundInput::Constant { text, .. } = &v.input {
        return v
            .spec
            .converter
            .key_value(text)
            .map(|k| Some(KeyText::Typed(k)));
    }
    let text: Cow<'r, str> = match read_text(record, v)? {
        Some(text) => text,
        None => match (&v.spec.default_text, required) {
            (Some(d), _) => Cow::Borrowed(d.trim()),
            (None, true) => return Err("is empty; a key value is required".to_string()),
            (None, false) => return Ok(None),
        },
    };
    if let Converter::Text { .. } = v.spec.converter {
        // Text keys are checked like `Converter::key_value` checks them, without a copy.
        v.spec.converter.check_text(&text)?;
        let text = match text {
            Cow::Borrowed(text) => text,
            Cow::Owned(text) => {
                // A template's text: owned, so kept as a typed value.
                check(check_addressable(&text))?;
                return Ok(Some(KeyText::Typed(KeyValue::String(text))));
            }
        };
        let key = StringKey::new(text);
        check(key.check_addressable())?;
        return Ok(Some(KeyText::Text(key)));
    }
    let value = v.spec.converter.key_value(&text)?;
    check(value.check_addressable())?;
    Ok(Some(KeyText::Typed(value)))
}

/// Writes a value's JSON; returns false when it wrote `null` (the value was empty).
fn write_value(record: &Record, v: &BoundValue, out: &mut String) -> Result<bool, String> {
    let text = match (&v.input, &record.data) {
        (BoundInput::Constant { json, .. }, _) => {
            out.push_str(json);
            return Ok(true);
        }
        (
            BoundInput::Field(BoundRef {
                getter: Getter::Column(i),
                ..
            }),
            RecordData::Csv(row),
        ) => {
            // A CSV column (the common case): no `Cow` on the way.
            if let Some(text) = csv_text(row.get(*i).unwrap_or(""), v) {
                v.spec.converter.write_json(text, out)?;
                return Ok(true);
            }
            None
        }
        _ => read_text(record, v)?,
    };
    match text {
        Some(text) => {
            v.spec.converter.write_json(&text, out)?;
            Ok(true)
        }
        None => match (&v.spec.default, v.spec.required) {
            (Some(d), _) => {
                out.push_str(d);
                Ok(true)
            }
            (None, true) => Err("is required but the value is empty".to_string()),
            (None, false) => {
                out.push_str("null");
                Ok(false)
            }
        },
    }
}

/// The value's text after trimming and `null_if`; `None` when empty.
fn read_text<'r>(record: &'r Record, v: &BoundValue) -> Result<Option<Cow<'r, str>>, String> {
    if let (BoundInput::Field(r), RecordData::Csv(row)) = (&v.input, &record.data) {
        if let Getter::Column(i) = r.getter {
            // A CSV column (the common case): borrowed all along.
            return Ok(csv_text(row.get(i).unwrap_or(""), v).map(Cow::Borrowed));
        }
    }
    let text: Cow<'r, str> = match &v.input {
        BoundInput::Field(r) => get_for(record, &r.getter, &v.spec.converter)?,
        BoundInput::Template(parts) => {
            let mut s = String::new();
            for p in parts {
                match p {
                    BoundPart::Literal(l) => s.push_str(l),
                    BoundPart::Field(r) => s.push_str(trim(&get(record, &r.getter)?)),
                }
            }
            Cow::Owned(s)
        }
        BoundInput::Constant { .. } => unreachable!("constants are handled by the callers"),
    };
    let trimmed = if v.spec.trim {
        match text {
            Cow::Borrowed(b) => Cow::Borrowed(trim(b)),
            Cow::Owned(o) => Cow::Owned(trim(&o).to_string()),
        }
    } else {
        text
    };
    if trimmed.is_empty() {
        return Ok(None);
    }
    if !v.null_if_lower.is_empty() {
        let probe = if v.spec.trim {
            &*trimmed
        } else {
            trim(&trimmed)
        };
        if null_if_matches(&v.null_if_lower, probe) {
            return Ok(None);
        }
    }
    Ok(Some(trimmed))
}

/// What [`read_text`] makes of a CSV field's text.
#[inline]
fn csv_text<'r>(text: &'r str, v: &BoundValue) -> Option<&'r str> {
    let trimmed = if v.spec.trim { trim(text) } else { text };
    if trimmed.is_empty() {
        return None;
    }
    if !v.null_if_lower.is_empty() {
        let probe = if v.spec.trim { trimmed } else { trim(trimmed) };
        if null_if_matches(&v.null_if_lower, probe) {
            return None;
        }
    }
    Some(trimmed)
}

/// True when `probe` lower-cased is one of `lowered` (values already lower-cased with
/// `str::to_lowercase`). ASCII text is compared without allocating: lower-casing never yields
/// an ASCII capital, so comparing ignoring ASCII case is the same test.
fn null_if_matches(lowered: &[String], probe: &str) -> bool {
    if probe.is_ascii() {
        lowered.iter().any(|n| n.eq_ignore_ascii_case(probe))
    } else {
        let probe = probe.to_lowercase();
        lowered.contains(&probe)
    }
}

/// A field's text; JSON scalars are rendered as text, JSON null and missing paths are empty.
fn get<'r>(record: &'r Record, getter: &Getter) -> Result<Cow<'r, str>, String> {
    get_for(record, getter, &Converter::Text { max_length: None })
}

/// The value at `path` in a JSON record (object members by name, array items by index), or
/// `None` when a segment is not there.
fn json_at<'v>(value: &'v serde_json::Value, path: &[String]) -> Option<&'v serde_json::Value> {
    path.iter().try_fold(value, |cur, seg| match cur {
        serde_json::Value::Object(map) => map.get(seg.as_str()),
        serde_json::Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn get_for<'r>(
    record: &'r Record,
    getter: &Getter,
    converter: &Converter,
) -> Result<Cow<'r, str>, String> {
    match (&record.data, getter) {
        (RecordData::Csv(row), Getter::Column(i)) => Ok(Cow::Borrowed(row.get(*i).unwrap_or(""))),
        (RecordData::Json(value), Getter::Path(path)) => match json_at(value, path) {
            Some(v) => json_text(v, converter),
            None => Ok(Cow::Borrowed("")),
        },
        (RecordData::Csv(_), Getter::Path(_)) | (RecordData::Json(_), Getter::Column(_)) => {
            Err("the record's format does not match the mapping's source format".to_string())
        }
    }
}

fn json_text<'r>(v: &'r serde_json::Value, converter: &Converter) -> Result<Cow<'r, str>, String> {
    use serde_json::Value;
    match v {
        Value::Null => Ok(Cow::Borrowed("")),
        Value::String(s) => Ok(Cow::Borrowed(s)),
        Value::Bool(b) => Ok(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Number(n) => Ok(Cow::Owned(crate::mapping::convert::plain_number(
            &n.to_string(),
        ))),
        Value::Array(items) => match converter {
            Converter::Choices { separator, .. } => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => parts.push(s.clone()),
                        Value::Number(n) => {
                            parts.push(crate::mapping::convert::plain_number(&n.to_string()))
                        }
                        other => return Err(format!("the list holds {}; expected labels or option values", kind(other))),
                    }
                }
                Ok(Cow::Owned(parts.join(separator)))
            }
            _ => Err("is a JSON array; this column takes a single value (arrays are accepted by type = \"choices\")".into()),
        },
        Value::Object(_) => Err("is a JSON object; name a field inside it with a path such as \"address.city\"".into()),
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

struct Binder<'a> {
    ctx: &'a Ctx<'a>,
    columns: Option<&'a [String]>,
    source_name: &'a str,
}

impl Binder<'_> {
    /// Binds a lookup's key or match columns.
    fn parts(
        &self,
        parts: &[crate::mapping::spec::KeyPart],
    ) -> Result<Vec<BoundKeyPart>, MappingError> {
        parts
            .iter()
            .map(|p| {
                Ok(BoundKeyPart {
                    column: p.column.clone(),
                    url_column: encode_key_name(&p.column),
                    value: self.value(&p.value)?,
                })
            })
            .collect()
    }

    fn field(&self, r: &FieldRef) -> Result<BoundRef, MappingError> {
        let getter = match self.columns {
            None => {
                // A JSON path: an empty segment (`a..b`, `a.`, or an empty name) names no member,
                // so every record would read as empty.
                if r.name.split('.').any(|seg| seg.trim().is_empty()) {
                    return Err(self.ctx.err(
                        r.span.clone(),
                        format!(
                            "source field '{}' is not a JSON path: it has an empty part; write member names joined by dots, such as \"address.city\" or \"items.0.sku\"",
                            r.name
                        ),
                    ));
                }
                Getter::Path(r.name.split('.').map(str::to_string).collect())
            }
            Some(columns) => {
                let idx = columns
                    .iter()
                    .position(|c| *c == r.name)
                    .or_else(|| {
                        let mut matches = columns.iter().enumerate().filter(|(_, c)| c.trim().eq_ignore_ascii_case(r.name.trim()));
                        match (matches.next(), matches.next()) {
                            (Some((i, _)), None) => Some(i),
                            _ => None,
                        }
                    })
                    .ok_or_else(|| {
                        let hint = suggest(&r.name, columns.iter().map(String::as_str))
                            .map(|s| format!("did you mean '{s}'? "))
                            .unwrap_or_default();
                        let list: Vec<String> = columns.iter().map(|c| format!("'{c}'")).collect();
                        self.ctx.err(
                            r.span.clone(),
                            format!(
                                "source field '{}' is not a column of {}; {hint}the columns are: {}",
                                r.name,
                                self.source_name,
                                list.join(", ")
                            ),
                        )
                    })?;
                Getter::Column(idx)
            }
        };
        Ok(BoundRef {
            name: r.name.clone(),
            getter,
        })
    }

    fn value(&self, v: &ValueSpec) -> Result<BoundValue, MappingError> {
        let input = match &v.input {
            Input::Field(r) => BoundInput::Field(self.field(r)?),
            Input::Template(parts) => BoundInput::Template(
                parts
                    .iter()
                    .map(|p| match p {
                        TemplatePart::Literal(l) => Ok(BoundPart::Literal(l.clone())),
                        TemplatePart::Field(r) => Ok(BoundPart::Field(self.field(r)?)),
                    })
                    .collect::<Result<_, MappingError>>()?,
            ),
            Input::Constant { text, json } => BoundInput::Constant {
                text: text.clone(),
                json: json.clone(),
            },
        };
        Ok(BoundValue {
            input,
            null_if_lower: v.null_if.iter().map(|s| s.trim().to_lowercase()).collect(),
            spec: v.clone(),
        })
    }

    fn key(
        &self,
        parts: &[super::spec::KeyPart],
        optional: bool,
    ) -> Result<BoundKey, MappingError> {
        if parts.is_empty() {
            debug_assert!(optional);
            return Ok(BoundKey::None);
        }
        if parts.len() == 1
            && matches!(parts[0].value.converter, Converter::Guid { .. })
            && !parts[0].column.starts_with('_')
        {
            // A single GUID column is the primary id: `accounts(<guid>)` (PROTOCOL.md §4).
            return Ok(BoundKey::Id(
                Box::new(self.value(&parts[0].value)?),
                parts[0].column.clone(),
            ));
        }
        Ok(BoundKey::Alternate(
            parts
                .iter()
                .map(|p| {
                    Ok(BoundKeyPart {
                        column: p.column.clone(),
                        url_column: encode_key_name(&p.column),
                        value: self.value(&p.value)?,
                    })
                })
                .collect::<Result<_, MappingError>>()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_if_ignores_case_like_to_lowercase() {
        let lowered: Vec<String> = ["n/a", "K", "İ", "ÉTÉ"]
            .iter()
            .map(|s| s.trim().to_lowercase())
            .collect();
        for probe in [
            "n/a", "N/A", "N/a", "k", "K", "\u{212a}", "i̇", "İ", "été", "ÉTÉ",
        ] {
            let slow = lowered.contains(&probe.to_lowercase());
            assert_eq!(null_if_matches(&lowered, probe), slow, "{probe}");
        }
        assert!(!null_if_matches(&lowered, "na"));
    }
}
