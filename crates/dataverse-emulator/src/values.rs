//! Column value validation and normalisation, with Dataverse's error codes and messages.
//!
//! Formats from web-api-properties.md, multi-select-picklist.md and
//! behavior-format-date-time-attribute.md (PROTOCOL.md §6).

use serde_json::Value;

use crate::catalog::Table;
use crate::config::{ColumnConfig, ColumnType};
use crate::error::ApiError;

/// The Edm type of a column in the CSDL.
pub fn edm_type(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::String | ColumnType::Memo | ColumnType::MultiSelectPicklist => "Edm.String",
        ColumnType::Integer | ColumnType::Picklist | ColumnType::State | ColumnType::Status => {
            "Edm.Int32"
        }
        ColumnType::BigInt => "Edm.Int64",
        ColumnType::Decimal | ColumnType::Money => "Edm.Decimal",
        ColumnType::Double => "Edm.Double",
        ColumnType::Boolean => "Edm.Boolean",
        ColumnType::DateTime => "Edm.DateTimeOffset",
        ColumnType::DateOnly => "Edm.Date",
        ColumnType::Lookup
        | ColumnType::Customer
        | ColumnType::Owner
        | ColumnType::Uniqueidentifier => "Edm.Guid",
    }
}

/// A payload error, as Dataverse reports problems found while deserialising the body: code
/// `0x80048d19` and the "Error identified in Payload…" wrapper, verbatim from responses quoted in
/// verbb/formie#1251 and microsoft/PowerAppsCodeApps#84 (stack trace omitted).
pub fn payload_error(entity_set: &str, inner: &str) -> ApiError {
    ApiError::new(
        400,
        "0x80048d19",
        format!(
            "Error identified in Payload provided by the user for Entity :'{entity_set}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : {inner}"
        ),
    )
}

/// Unknown property in a body (same sources as [`payload_error`]).
pub fn unknown_property(table: &Table, name: &str) -> ApiError {
    payload_error(
        table.set(),
        &format!(
            "Microsoft.Crm.CrmException: Invalid property '{name}' was found in entity 'Microsoft.Dynamics.CRM.{}'. ---> Microsoft.OData.ODataException: Does not support untyped value in non-open type.",
            table.logical()
        ),
    )
}

fn type_error(table: &Table, col: &ColumnConfig, value: &Value) -> ApiError {
    let literal = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    payload_error(
        table.set(),
        &format!(
            "Microsoft.OData.ODataException: Cannot convert the literal '{literal}' to the expected type '{}'.",
            edm_type(col.kind)
        ),
    )
}

/// Text longer than MaxLength: code and message verbatim from execute-batch-operations-using-web-api.md
/// (two spaces after the first period).
pub fn too_long(table: &Table, col: &ColumnConfig, max: u32) -> ApiError {
    ApiError::new(
        400,
        "0x80044331",
        format!(
            "A validation error occurred.  The length of the '{}' attribute of the '{}' entity exceeded the maximum allowed length of '{max}'.",
            col.name,
            table.logical()
        ),
    )
}

/// Value outside the valid range (choice not in the option set, number out of bounds).
/// Message shape recalled from Dataverse ("… is outside the valid range. Accepted Values: …");
/// code 0x8004431a UNVERIFIED.
fn out_of_range(table: &Table, col: &ColumnConfig, value: &str) -> ApiError {
    let accepted = if col.options.is_empty() {
        String::new()
    } else {
        format!(
            " Accepted Values: {}",
            col.options
                .iter()
                .map(|o| o.value.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    ApiError::new(
        400,
        "0x8004431a",
        format!(
            "A validation error occurred.  The value {value} of '{}' on record of type '{}' is outside the valid range.{accepted}",
            col.name,
            table.logical()
        ),
    )
}

/// Validates `value` for `col` and returns the normalised stored value.
pub fn coerce(table: &Table, col: &ColumnConfig, value: &Value) -> Result<Value, ApiError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    match col.kind {
        ColumnType::String | ColumnType::Memo => {
            let Value::String(s) = value else {
                return Err(type_error(table, col, value));
            };
            if let Some(max) = col.max_length
                && s.chars().count() > max as usize
            {
                return Err(too_long(table, col, max));
            }
            Ok(value.clone())
        }
        ColumnType::Integer | ColumnType::BigInt => {
            let Some(i) = value.as_i64() else {
                return Err(type_error(table, col, value));
            };
            if col.kind == ColumnType::Integer && i32::try_from(i).is_err() {
                return Err(type_error(table, col, value));
            }
            check_bounds(table, col, i as f64, &i.to_string())?;
            Ok(Value::from(i))
        }
        ColumnType::Decimal | ColumnType::Money | ColumnType::Double => {
            let Some(f) = value.as_f64().filter(|f| f.is_finite()) else {
                return Err(type_error(table, col, value));
            };
            check_bounds(table, col, f, &value.to_string())?;
            Ok(value.clone())
        }
        ColumnType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err(type_error(table, col, value)),
        },
        ColumnType::Picklist | ColumnType::State | ColumnType::Status => {
            let Some(i) = value.as_i64().filter(|i| i32::try_from(*i).is_ok()) else {
                return Err(type_error(table, col, value));
            };
            if !col.options.iter().any(|o| o.value == i) {
                return Err(out_of_range(table, col, &i.to_string()));
            }
            Ok(Value::from(i))
        }
        ColumnType::MultiSelectPicklist => {
            // One string of comma-separated values ("1, 9"), returned as "1,9"; ≤150 selected
            // (multi-select-picklist.md).
            let Value::String(s) = value else {
                return Err(type_error(table, col, value));
            };
            if s.trim().is_empty() {
                return Ok(Value::Null);
            }
            let mut values = Vec::new();
            for part in s.split(',') {
                let Ok(i) = part.trim().parse::<i64>() else {
                    return Err(type_error(table, col, value));
                };
                if !col.options.iter().any(|o| o.value == i) {
                    return Err(out_of_range(table, col, &i.to_string()));
                }
                if !values.contains(&i) {
                    values.push(i);
                }
            }
            if values.len() > 150 {
                return Err(out_of_range(table, col, s));
            }
            Ok(Value::String(
                values
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ))
        }
        ColumnType::DateTime => {
            let Value::String(s) = value else {
                return Err(type_error(table, col, value));
            };
            let ts = parse_datetime(s).ok_or_else(|| type_error(table, col, value))?;
            check_min_date(
                table,
                col,
                ts.to_zoned_datetime(jiff::tz::TimeZone::UTC).date(),
                s,
            )?;
            Ok(Value::String(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
        }
        ColumnType::DateOnly => {
            let Value::String(s) = value else {
                return Err(type_error(table, col, value));
            };
            let date: jiff::civil::Date = s.parse().map_err(|_| type_error(table, col, value))?;
            if s.len() != 10 {
                return Err(type_error(table, col, value));
            }
            check_min_date(table, col, date, s)?;
            Ok(Value::String(date.to_string()))
        }
        ColumnType::Uniqueidentifier => {
            let Value::String(s) = value else {
                return Err(type_error(table, col, value));
            };
            let id: uuid::Uuid = s.parse().map_err(|_| type_error(table, col, value))?;
            Ok(Value::String(id.to_string()))
        }
        ColumnType::Lookup | ColumnType::Customer | ColumnType::Owner => {
            Err(type_error(table, col, value))
        }
    }
}

fn check_bounds(table: &Table, col: &ColumnConfig, v: f64, text: &str) -> Result<(), ApiError> {
    if col.min.is_some_and(|m| v < m) || col.max.is_some_and(|m| v > m) {
        return Err(out_of_range(table, col, text));
    }
    Ok(())
}

fn check_min_date(
    table: &Table,
    col: &ColumnConfig,
    date: jiff::civil::Date,
    text: &str,
) -> Result<(), ApiError> {
    // Dataverse's minimum date is 1753-01-01 (behavior-format-date-time-attribute.md).
    if date < jiff::civil::date(1753, 1, 1) {
        return Err(out_of_range(table, col, text));
    }
    Ok(())
}

/// Parses an `Edm.DateTimeOffset` (an offset is applied; no offset means UTC, as the API does).
pub fn parse_datetime(s: &str) -> Option<jiff::Timestamp> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::config::Config;
    use serde_json::json;

    fn with_table<T>(f: impl FnOnce(&Table) -> T) -> T {
        let catalog = Catalog::build(&Config::default()).unwrap();
        f(catalog.table("contact").unwrap())
    }

    #[test]
    fn normalises_and_rejects() {
        with_table(|t| {
            let c = |n: &str| t.columns[n].clone();
            assert_eq!(
                coerce(t, &c("new_interests"), &json!("1, 3")).unwrap(),
                json!("1,3")
            );
            assert_eq!(
                coerce(t, &c("new_interests"), &json!("9"))
                    .unwrap_err()
                    .code,
                "0x8004431a"
            );
            assert_eq!(
                coerce(t, &c("birthdate"), &json!("1980-02-29")).unwrap(),
                json!("1980-02-29")
            );
            assert!(coerce(t, &c("birthdate"), &json!("1980-02-30")).is_err());
            assert_eq!(
                coerce(
                    t,
                    &c("lastusedincampaign"),
                    &json!("2021-04-04T12:00:00-08:00")
                )
                .unwrap(),
                json!("2021-04-04T20:00:00Z")
            );
            assert_eq!(
                coerce(t, &c("lastusedincampaign"), &json!("2021-04-04T12:00:00")).unwrap(),
                json!("2021-04-04T12:00:00Z")
            );
            assert_eq!(
                coerce(t, &c("gendercode"), &json!(3)).unwrap_err().code,
                "0x8004431a"
            );
            assert_eq!(
                coerce(t, &c("gendercode"), &json!("1")).unwrap_err().code,
                "0x80048d19"
            );
            assert_eq!(
                coerce(t, &c("donotemail"), &json!("yes")).unwrap_err().code,
                "0x80048d19"
            );
            let long = "x".repeat(51);
            let e = coerce(t, &c("firstname"), &json!(long)).unwrap_err();
            assert_eq!(e.code, "0x80044331");
            assert_eq!(
                e.message,
                "A validation error occurred.  The length of the 'firstname' attribute of the 'contact' entity exceeded the maximum allowed length of '50'."
            );
            assert!(coerce(t, &c("birthdate"), &json!("1700-01-01")).is_err());
        });
    }
}
