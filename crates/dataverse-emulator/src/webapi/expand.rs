//! What clients read besides the columns: `$expand` of single-valued navigation properties (with
//! a nested `$select`) on record and collection reads, and the annotations `Prefer:
//! odata.include-annotations` asks for: formatted values of choices, Booleans, lookups, numbers,
//! money and dates, and a lookup's `lookuplogicalname` and `associatednavigationproperty`
//! (query-data-web-api.md, *Formatted values* and *Lookup property data*;
//! retrieve-related-table-records-query.md, *Retrieve related table records by expanding
//! single-valued navigation properties*). Values are formatted as for an en-US user.

use serde_json::{Map, Value};

use super::crud::{no_such_property, represent};
use super::{Ctx, OpRequest};
use crate::catalog::{Catalog, Table};
use crate::config::{ColumnConfig, ColumnType, Right};
use crate::error::ApiError;
use crate::state::{Record, Store};

const FORMATTED: &str = "OData.Community.Display.V1.FormattedValue";
const LOOKUP_TABLE: &str = "Microsoft.Dynamics.CRM.lookuplogicalname";
const LOOKUP_NAV: &str = "Microsoft.Dynamics.CRM.associatednavigationproperty";

/// One `$expand` item: a single-valued navigation property and the columns kept of its record.
#[derive(Debug, Clone, PartialEq)]
pub struct Expand {
    /// The navigation property (case-sensitive, as declared).
    pub nav: String,
    /// `$select` inside the parentheses; `None`: every column.
    pub select: Option<Vec<String>>,
}

/// Reads `$expand` of `req` against `table`: single-valued navigation properties only (a
/// collection-valued one is refused as not implemented), nested `$select` only; the caller
/// must be allowed to read each expanded table.
pub fn parse(ctx: &Ctx, table: &Table, req: &OpRequest) -> Result<Vec<Expand>, ApiError> {
    let catalog = ctx.catalog;
    let Some((_, text)) = req.query_pairs().into_iter().find(|(k, _)| k == "$expand") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in split_top(&text) {
        let item = item.trim();
        let (name, inner) = match item.find('(') {
            Some(i) if item.ends_with(')') => (&item[..i], &item[i + 1..item.len() - 1]),
            _ => (item, ""),
        };
        let Some(nav) = table.navs.get(name) else {
            if table.collection(name).is_some() {
                return Err(ApiError::bad_request(format!(
                    "The emulator does not implement $expand of the collection-valued navigation property '{name}' (the service does)."
                )));
            }
            return Err(no_such_property(table, name));
        };
        let [target] = nav.targets.as_slice() else {
            return Err(ApiError::emulator_limit(format!(
                "$expand of '{name}', whose type is {}",
                nav.entity_type()
            )));
        };
        let target = catalog.table(target).expect("validated catalogue");
        ctx.user.require(target, Right::Read)?;
        let mut select = None;
        for option in inner.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = option.split_once('=').unwrap_or((option, ""));
            if k.trim() != "$select" {
                return Err(ApiError::bad_request(format!(
                    "The query parameter {} is not supported by the emulator in $expand (only $select is)",
                    k.trim()
                )));
            }
            let mut names = Vec::new();
            for n in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if super::crud::property_value_name(target, n).is_none() && n != target.pk() {
                    return Err(no_such_property(target, n));
                }
                names.push(n.to_string());
            }
            select = Some(names);
        }
        out.push(Expand {
            nav: name.to_string(),
            select,
        });
    }
    Ok(out)
}

/// Splits on commas outside parentheses.
fn split_top(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0usize, 0usize, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// Adds to `out` (the representation of `row`) each expanded record, or `null` when the lookup
/// is empty, and the annotations `req` asks for.
pub fn decorate(
    catalog: &Catalog,
    store: &Store,
    req: &OpRequest,
    table: &Table,
    row: &Record,
    expands: &[Expand],
    out: &mut Map<String, Value>,
) {
    for e in expands {
        let nav = &table.navs[&e.nav];
        // Only single-target navigation properties are expanded (see `parse`).
        let target = catalog.table(&nav.targets[0]).expect("validated catalogue");
        let related = row
            .lookup(&nav.attribute)
            .filter(|(_, t)| *t == target.logical())
            .and_then(|(id, _)| store.get(target.logical(), &id));
        let value = match related {
            Some(r) => {
                let mut m = represent(target, r, e.select.as_deref());
                annotate(catalog, store, req, target, r, &mut m);
                Value::Object(m)
            }
            None => Value::Null,
        };
        out.insert(e.nav.clone(), value);
    }
    annotate(catalog, store, req, table, row, out);
}

/// Adds the annotations `req` asks for to the properties of `out`.
fn annotate(
    catalog: &Catalog,
    store: &Store,
    req: &OpRequest,
    table: &Table,
    row: &Record,
    out: &mut Map<String, Value>,
) {
    let formatted = req.wants_annotation(FORMATTED);
    let lookup_table = req.wants_annotation(LOOKUP_TABLE);
    let lookup_nav = req.wants_annotation(LOOKUP_NAV);
    if !(formatted || lookup_table || lookup_nav) {
        return;
    }
    let names: Vec<String> = out.keys().filter(|k| !k.contains('@')).cloned().collect();
    for name in names {
        // A lookup is read as `_column_value`.
        if let Some(column) = name
            .strip_prefix('_')
            .and_then(|n| n.strip_suffix("_value"))
        {
            let Some((id, target_logical)) = row.lookup(column) else {
                continue;
            };
            if formatted {
                let primary = catalog.table(target_logical).and_then(|t| {
                    store
                        .get(t.logical(), &id)
                        .and_then(|r| r.fields.get(&t.cfg.primary_name))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                });
                if let Some(p) = primary {
                    out.insert(format!("{name}@{FORMATTED}"), Value::String(p));
                }
            }
            if lookup_nav
                && let Some(nav) = table
                    .navs
                    .values()
                    .find(|n| n.attribute == column && n.reaches(target_logical))
            {
                out.insert(
                    format!("{name}@{LOOKUP_NAV}"),
                    Value::String(nav.name.clone()),
                );
            }
            if lookup_table {
                out.insert(
                    format!("{name}@{LOOKUP_TABLE}"),
                    Value::String(target_logical.to_string()),
                );
            }
            continue;
        }
        if !formatted {
            continue;
        }
        let Some(col) = table.columns.get(&name) else {
            continue;
        };
        if let Some(text) = format_value(col, &out[&name]) {
            out.insert(format!("{name}@{FORMATTED}"), Value::String(text));
        }
    }
}

/// A column's value as an en-US user sees it, or `None` when the service gives none (text,
/// ids, an empty value).
pub fn format_value(col: &ColumnConfig, v: &Value) -> Option<String> {
    let label = |value: i64| {
        col.options
            .iter()
            .find(|o| o.value == value)
            .map(|o| o.label.clone())
    };
    match (col.kind, v) {
        (_, Value::Null) => None,
        (ColumnType::Picklist | ColumnType::State | ColumnType::Status, v) => label(v.as_i64()?),
        (ColumnType::MultiSelectPicklist, Value::String(s)) => Some(
            s.split(',')
                .filter_map(|p| p.trim().parse::<i64>().ok())
                .map(|n| label(n).unwrap_or_else(|| n.to_string()))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        (ColumnType::Boolean, Value::Bool(b)) => {
            Some(label(i64::from(*b)).unwrap_or_else(|| if *b { "Yes" } else { "No" }.into()))
        }
        (ColumnType::Integer | ColumnType::BigInt, v) => Some(group(&v.as_i64()?.to_string())),
        (ColumnType::Decimal | ColumnType::Double, v) => Some(group(&number_text(v)?)),
        (ColumnType::Money, v) => {
            let precision = col.precision.unwrap_or(2) as usize;
            let f: f64 = number_text(v)?.parse().ok()?;
            let text = format!("{:.precision$}", f.abs());
            Some(format!(
                "{}${}",
                if f < 0.0 { "-" } else { "" },
                group(&text)
            ))
        }
        (ColumnType::DateOnly, Value::String(s)) => {
            let d: jiff::civil::Date = s.get(..10)?.parse().ok()?;
            Some(format!("{}/{}/{}", d.month(), d.day(), d.year()))
        }
        (ColumnType::DateTime, Value::String(s)) => {
            let t: jiff::Timestamp = s.parse().ok()?;
            let dt = t.to_zoned_datetime(jiff::tz::TimeZone::UTC).datetime();
            let (hour, half) = match dt.hour() {
                0 => (12, "AM"),
                h @ 1..=11 => (h, "AM"),
                12 => (12, "PM"),
                h => (h - 12, "PM"),
            };
            Some(format!(
                "{}/{}/{} {hour}:{:02} {half}",
                dt.month(),
                dt.day(),
                dt.year(),
                dt.minute()
            ))
        }
        _ => None,
    }
}

/// A JSON number's digits as written.
fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// `1234567.5` -> `1,234,567.5`.
fn group(text: &str) -> String {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OptionConfig;

    fn col(kind: ColumnType) -> ColumnConfig {
        ColumnConfig::new("x", kind)
    }

    #[test]
    fn values_are_formatted_as_an_en_us_user_sees_them() {
        let mut choice = col(ColumnType::Picklist);
        choice.options = vec![OptionConfig {
            value: 7,
            label: "Consulting".into(),
        }];
        assert_eq!(
            format_value(&choice, &Value::from(7)).as_deref(),
            Some("Consulting")
        );
        let mut money = col(ColumnType::Money);
        money.precision = Some(2);
        assert_eq!(
            format_value(&money, &serde_json::json!(1250000.5)).as_deref(),
            Some("$1,250,000.50")
        );
        assert_eq!(
            format_value(&col(ColumnType::Integer), &Value::from(1951)).as_deref(),
            Some("1,951")
        );
        assert_eq!(
            format_value(&col(ColumnType::Boolean), &Value::Bool(true)).as_deref(),
            Some("Yes")
        );
        assert_eq!(
            format_value(&col(ColumnType::DateOnly), &Value::from("2024-04-15")).as_deref(),
            Some("4/15/2024")
        );
        assert_eq!(
            format_value(
                &col(ColumnType::DateTime),
                &Value::from("2024-04-15T13:05:00Z")
            )
            .as_deref(),
            Some("4/15/2024 1:05 PM")
        );
        assert_eq!(
            format_value(&col(ColumnType::String), &Value::from("a")),
            None
        );
        assert_eq!(split_top("a($select=x,y),b"), ["a($select=x,y)", "b"]);
    }
}
