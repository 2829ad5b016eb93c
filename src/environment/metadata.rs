//! What dvload needs to know of a table, read from the environment's metadata (`EntityDefinitions`
//! with its attributes, keys and many-to-one relationships, and the type-specific properties of
//! each attribute through its cast: lengths, ranges, precision, date behaviour, lookup targets,
//! option sets with their labels in every language the environment returns), as one readable
//! JSON document per table whose members are always in the same order, so that a diff in version
//! control shows what changed in the environment.
//!
//! Requests follow query-metadata-web-api.md: option sets come only with their attribute's cast
//! and `$expand=OptionSet` (or `GlobalOptionSet`); every GET goes through the one retry driver.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::check::get_json;
use super::connect::Connection;
use crate::writer::RetryPolicy;

/// One table as dvload needs it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TableMetadata {
    /// `account`.
    pub logical_name: String,
    /// `Account`.
    pub schema_name: String,
    /// `accounts`.
    pub entity_set: String,
    /// The primary id column.
    pub primary_id: String,
    /// The primary name column.
    pub primary_name: String,
    /// Display name by language code (`1033`).
    pub display_name: BTreeMap<String, String>,
    /// True for a custom table.
    pub custom: bool,
    /// Columns by logical name.
    pub columns: BTreeMap<String, ColumnMetadata>,
    /// Alternate keys by name.
    pub keys: BTreeMap<String, KeyMetadata>,
    /// The table's privilege names by `PrivilegeType` (`Create` → `prvCreateAccount`; a task's
    /// are `prv…Activity`). Read live for the pre-flight check, not saved: privileges belong to
    /// the application user, which the offline check does not judge.
    #[serde(skip)]
    pub privileges: BTreeMap<String, String>,
}

/// One column.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ColumnMetadata {
    /// `Name`.
    pub schema_name: String,
    /// `String`, `Money`, `Lookup`, `Picklist`, `Virtual` (a multi-select choice), …
    pub attribute_type: String,
    /// `StringType`, `MultiSelectPicklistType`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// Display name by language code.
    pub display_name: BTreeMap<String, String>,
    /// `None`, `Recommended`, `ApplicationRequired`, `SystemRequired`.
    pub required_level: String,
    /// It may be set when a record is created.
    pub valid_for_create: bool,
    /// It may be set when a record is updated.
    pub valid_for_update: bool,
    /// String and memo columns: the longest text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<i64>,
    /// Numbers: the smallest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_value: Option<f64>,
    /// Numbers: the largest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
    /// Decimal, float and money: digits after the decimal point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<i64>,
    /// Dates: `DateOnly`, `UserLocal` or `TimeZoneIndependent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_time_behavior: Option<String>,
    /// Dates: `DateOnly` or `DateAndTime`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Lookups: the tables it may point at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Lookups: the navigation property that binds it, by target table (`@odata.bind`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub navigation: BTreeMap<String, String>,
    /// Choices, Booleans, state and status: the options.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionMetadata>,
    /// The global option set it uses, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_option_set: Option<String>,
}

/// One option of a choice.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OptionMetadata {
    /// The value sent.
    pub value: i64,
    /// Its label by language code.
    pub labels: BTreeMap<String, String>,
}

/// One alternate key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyMetadata {
    /// Its columns.
    pub attributes: Vec<String>,
    /// `Active` when Dataverse built its index; any other status cannot be used yet.
    pub index_status: String,
}

/// The casts whose type-specific properties dvload reads, with what it selects of each.
const CASTS: &[(&str, &str)] = &[
    ("StringAttributeMetadata", "$select=LogicalName,MaxLength"),
    ("MemoAttributeMetadata", "$select=LogicalName,MaxLength"),
    (
        "IntegerAttributeMetadata",
        "$select=LogicalName,MinValue,MaxValue",
    ),
    (
        "BigIntAttributeMetadata",
        "$select=LogicalName,MinValue,MaxValue",
    ),
    (
        "DecimalAttributeMetadata",
        "$select=LogicalName,MinValue,MaxValue,Precision",
    ),
    (
        "DoubleAttributeMetadata",
        "$select=LogicalName,MinValue,MaxValue,Precision",
    ),
    (
        "MoneyAttributeMetadata",
        "$select=LogicalName,MinValue,MaxValue,Precision",
    ),
    (
        "DateTimeAttributeMetadata",
        "$select=LogicalName,Format,DateTimeBehavior",
    ),
    ("LookupAttributeMetadata", "$select=LogicalName,Targets"),
    (
        "PicklistAttributeMetadata",
        "$select=LogicalName&$expand=OptionSet,GlobalOptionSet",
    ),
    (
        "MultiSelectPicklistAttributeMetadata",
        "$select=LogicalName&$expand=OptionSet,GlobalOptionSet",
    ),
    (
        "BooleanAttributeMetadata",
        "$select=LogicalName&$expand=OptionSet,GlobalOptionSet",
    ),
    (
        "StateAttributeMetadata",
        "$select=LogicalName&$expand=OptionSet",
    ),
    (
        "StatusAttributeMetadata",
        "$select=LogicalName&$expand=OptionSet",
    ),
];

/// The logical names of the environment's custom tables (`IsCustomEntity eq true`), sorted.
pub async fn custom_tables(
    conn: &super::connect::Connection,
    policy: &crate::writer::RetryPolicy,
) -> Result<Vec<String>, String> {
    let v = super::check::get_json(
        conn,
        policy,
        "EntityDefinitions?$select=LogicalName&$filter=IsCustomEntity%20eq%20true",
    )
    .await?;
    let mut names: Vec<String> = v
        .get("value")
        .and_then(Value::as_array)
        .ok_or("the answer has no value list")?
        .iter()
        .filter_map(|e| e.get("LogicalName").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    names.sort();
    Ok(names)
}

/// The logical names of the tables solution `unique_name` holds, sorted: the solution's id
/// (`solutions` by `uniquename`), its components of type 1, Entity (`solutioncomponents`, whose
/// `objectid` is the table's `MetadataId`), and the tables with those ids.
/// (learn.microsoft.com/power-apps/developer/data-platform/reference/entities/solutioncomponent:
/// `componenttype` 1 is Entity.) Also how many of its table components name no table the
/// environment has (one deleted since it was added).
pub async fn solution_tables(
    conn: &super::connect::Connection,
    policy: &crate::writer::RetryPolicy,
    unique_name: &str,
) -> Result<(Vec<String>, usize), String> {
    let literal =
        crate::odata::key::percent_encode(&format!("'{}'", unique_name.replace('\'', "''")));
    let v = super::check::get_json(
        conn,
        policy,
        &format!("solutions?$select=solutionid&$filter=uniquename%20eq%20{literal}"),
    )
    .await?;
    let Some(solution) = list(&v, "value").first().map(|s| text(s, "solutionid")) else {
        return Err(format!(
            "no solution has the unique name '{unique_name}' (the Name column of Power Apps' Solutions list, not its display name)"
        ));
    };
    let v = super::check::get_json(
        conn,
        policy,
        &format!(
            "solutioncomponents?$select=objectid&$filter=_solutionid_value%20eq%20{solution}%20and%20componenttype%20eq%201"
        ),
    )
    .await?;
    let ids: std::collections::HashSet<String> = list(&v, "value")
        .iter()
        .map(|c| text(c, "objectid").to_ascii_lowercase())
        .collect();
    let v = super::check::get_json(
        conn,
        policy,
        "EntityDefinitions?$select=LogicalName,MetadataId",
    )
    .await?;
    let mut names: Vec<String> = list(&v, "value")
        .iter()
        .filter(|e| ids.contains(&text(e, "MetadataId").to_ascii_lowercase()))
        .map(|e| text(e, "LogicalName"))
        .collect();
    names.sort();
    let unmatched = ids.len() - names.len();
    Ok((names, unmatched))
}

/// Reads table `logical` (its logical name) with every cast's properties. An unknown table, or
/// metadata the role may not read, is the error, in one line.
pub async fn pull(
    conn: &Connection,
    policy: &RetryPolicy,
    logical: &str,
) -> Result<TableMetadata, String> {
    let mut table = pull_entity(conn, policy, logical).await?;
    let all: Vec<&str> = CASTS.iter().map(|(cast, _)| *cast).collect();
    pull_casts(conn, policy, &mut table, &all).await?;
    Ok(table)
}

/// The casts whose properties a field converted by `converter` is judged or completed by (the
/// check before a run reads only these: each is one more request).
pub fn casts_for(converter: &crate::mapping::convert::Converter) -> &'static [&'static str] {
    use crate::mapping::convert::Converter;
    match converter {
        Converter::Text { .. } => &["StringAttributeMetadata", "MemoAttributeMetadata"],
        Converter::Choice(_) => &[
            "PicklistAttributeMetadata",
            "StateAttributeMetadata",
            "StatusAttributeMetadata",
        ],
        Converter::Choices { .. } => &["MultiSelectPicklistAttributeMetadata"],
        Converter::Bool(_) => &["BooleanAttributeMetadata"],
        Converter::DateTime { .. } | Converter::DateOnly { .. } => &["DateTimeAttributeMetadata"],
        _ => &[],
    }
}

/// The casts a field needs: its converter's ([`casts_for`]) and, for a number with a constant
/// value or a default, the number types' (their ranges tell whether the column holds it).
pub fn casts_for_value(value: &crate::mapping::spec::ValueSpec) -> &'static [&'static str] {
    use crate::mapping::convert::Converter;
    let fixed = matches!(value.input, crate::mapping::spec::Input::Constant { .. })
        || value.default.is_some();
    match &value.converter {
        Converter::Integer { .. } | Converter::Number { .. } if fixed => &[
            "IntegerAttributeMetadata",
            "BigIntAttributeMetadata",
            "DecimalAttributeMetadata",
            "DoubleAttributeMetadata",
            "MoneyAttributeMetadata",
        ],
        other => casts_for(other),
    }
}

/// Adds the properties of `casts` (names of [`CASTS`]) to `table`'s columns.
pub async fn pull_casts(
    conn: &Connection,
    policy: &RetryPolicy,
    table: &mut TableMetadata,
    casts: &[&str],
) -> Result<(), String> {
    let base = format!("EntityDefinitions(LogicalName='{}')", table.logical_name);
    for (cast, query) in CASTS.iter().filter(|(c, _)| casts.contains(c)) {
        let v = get_json(
            conn,
            policy,
            &format!("{base}/Attributes/Microsoft.Dynamics.CRM.{cast}?{query}"),
        )
        .await?;
        for a in list(&v, "value") {
            if let Some(c) = table.columns.get_mut(&text(a, "LogicalName")) {
                add_cast_properties(c, a);
            }
        }
    }
    Ok(())
}

/// Reads table `logical`: the entity, its columns' common properties, keys and many-to-one
/// relationships, in one request; no cast's properties.
pub async fn pull_entity(
    conn: &Connection,
    policy: &RetryPolicy,
    logical: &str,
) -> Result<TableMetadata, String> {
    let base = format!("EntityDefinitions(LogicalName='{logical}')");
    let entity = get_json(
        conn,
        policy,
        &format!(
            "{base}?$select=LogicalName,SchemaName,EntitySetName,PrimaryIdAttribute,\
             PrimaryNameAttribute,DisplayName,IsCustomEntity,Privileges\
             &$expand=Attributes($select=LogicalName,SchemaName,AttributeType,AttributeTypeName,\
             DisplayName,RequiredLevel,IsValidForCreate,IsValidForUpdate),\
             Keys($select=LogicalName,KeyAttributes,EntityKeyIndexStatus),\
             ManyToOneRelationships($select=ReferencingAttribute,ReferencedEntity,\
             ReferencingEntityNavigationPropertyName)"
        ),
    )
    .await?;
    let mut table = TableMetadata {
        logical_name: text(&entity, "LogicalName"),
        schema_name: text(&entity, "SchemaName"),
        entity_set: text(&entity, "EntitySetName"),
        primary_id: text(&entity, "PrimaryIdAttribute"),
        primary_name: text(&entity, "PrimaryNameAttribute"),
        display_name: labels(entity.get("DisplayName")),
        custom: entity.get("IsCustomEntity").and_then(Value::as_bool) == Some(true),
        columns: BTreeMap::new(),
        keys: BTreeMap::new(),
        privileges: list(&entity, "Privileges")
            .iter()
            .map(|p| (text(p, "PrivilegeType"), text(p, "Name")))
            .filter(|(kind, name)| !kind.is_empty() && !name.is_empty())
            .collect(),
    };
    for a in list(&entity, "Attributes") {
        table.columns.insert(
            text(a, "LogicalName"),
            ColumnMetadata {
                schema_name: text(a, "SchemaName"),
                attribute_type: text(a, "AttributeType"),
                type_name: a
                    .get("AttributeTypeName")
                    .and_then(|t| t.get("Value"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                display_name: labels(a.get("DisplayName")),
                required_level: managed(a.get("RequiredLevel")).unwrap_or_default(),
                valid_for_create: a.get("IsValidForCreate").and_then(Value::as_bool) == Some(true),
                valid_for_update: a.get("IsValidForUpdate").and_then(Value::as_bool) == Some(true),
                ..ColumnMetadata::default()
            },
        );
    }
    for k in list(&entity, "Keys") {
        table.keys.insert(
            text(k, "LogicalName"),
            KeyMetadata {
                attributes: strings(k, "KeyAttributes"),
                index_status: text(k, "EntityKeyIndexStatus"),
            },
        );
    }
    for r in list(&entity, "ManyToOneRelationships") {
        if let Some(c) = table.columns.get_mut(&text(r, "ReferencingAttribute")) {
            c.navigation.insert(
                text(r, "ReferencedEntity"),
                text(r, "ReferencingEntityNavigationPropertyName"),
            );
        }
    }
    Ok(table)
}

/// Reads every `*.json` file of `dir` (what `dvload metadata pull` wrote), in name order. A file
/// that is not such a document is an error naming it, its line and column.
pub fn load_dir(dir: &std::path::Path) -> crate::Result<Vec<TableMetadata>> {
    let entries = std::fs::read_dir(dir).map_err(crate::Error::io(format!(
        "cannot read the metadata folder {}",
        dir.display()
    )))?;
    let mut paths: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(crate::Error::Unusable(format!(
            "{}: no table metadata (*.json) here; write it with dvload metadata pull TABLE... --out {}",
            dir.display(),
            dir.display()
        )));
    }
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .map_err(crate::Error::io(format!("cannot read {}", p.display())))?;
            serde_json::from_str(&text).map_err(|e| {
                crate::Error::Unusable(format!(
                    "{}:{}:{}: not table metadata as dvload metadata pull writes it: {e}",
                    p.display(),
                    e.line(),
                    e.column()
                ))
            })
        })
        .collect()
}

/// Adds what an attribute's cast says (only the properties it has).
fn add_cast_properties(c: &mut ColumnMetadata, a: &Value) {
    let int = |k: &str| a.get(k).and_then(Value::as_i64);
    let float = |k: &str| a.get(k).and_then(Value::as_f64);
    c.max_length = int("MaxLength").or(c.max_length);
    c.min_value = float("MinValue").or(c.min_value);
    c.max_value = float("MaxValue").or(c.max_value);
    c.precision = int("Precision").or(c.precision);
    c.date_time_behavior = managed(a.get("DateTimeBehavior")).or(c.date_time_behavior.take());
    if let Some(f) = a.get("Format").and_then(Value::as_str) {
        c.format = Some(f.to_string());
    }
    let targets = strings(a, "Targets");
    if !targets.is_empty() {
        c.targets = targets;
    }
    // A global option set's options are the column's (the local one is then absent).
    let set = a
        .get("OptionSet")
        .filter(|s| !s.is_null())
        .or_else(|| a.get("GlobalOptionSet").filter(|s| !s.is_null()));
    if let Some(set) = set {
        c.options = options(set);
        if set.get("IsGlobal").and_then(Value::as_bool) == Some(true) {
            c.global_option_set = set.get("Name").and_then(Value::as_str).map(str::to_string);
        }
    }
}

/// The options of an option set: `Options`, or a Boolean's `FalseOption` and `TrueOption`.
fn options(set: &Value) -> Vec<OptionMetadata> {
    let one = |o: &Value| {
        Some(OptionMetadata {
            value: o.get("Value")?.as_i64()?,
            labels: labels(o.get("Label")),
        })
    };
    let mut out: Vec<OptionMetadata> = match set.get("Options").and_then(Value::as_array) {
        Some(list) => list.iter().filter_map(one).collect(),
        None => ["FalseOption", "TrueOption"]
            .iter()
            .filter_map(|k| set.get(*k).and_then(one))
            .collect(),
    };
    out.sort_by_key(|o| o.value);
    out
}

/// A Label's localized labels by language code.
fn labels(label: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(list) = label
        .and_then(|l| l.get("LocalizedLabels"))
        .and_then(Value::as_array)
    else {
        return out;
    };
    for l in list {
        if let (Some(code), Some(text)) = (
            l.get("LanguageCode").and_then(Value::as_i64),
            l.get("Label").and_then(Value::as_str),
        ) {
            out.insert(code.to_string(), text.to_string());
        }
    }
    out
}

/// A managed property's value (`{"Value": "ApplicationRequired", ...}`), or a plain string.
fn managed(v: Option<&Value>) -> Option<String> {
    let v = v?;
    v.get("Value")
        .and_then(Value::as_str)
        .or_else(|| v.as_str())
        .map(str::to_string)
}

/// A member's text, or empty.
pub(crate) fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// A member's array of texts, or none.
pub(super) fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A member's array, or none.
pub(crate) fn list<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cast_properties_are_read_as_the_service_writes_them() {
        let mut c = ColumnMetadata::default();
        add_cast_properties(
            &mut c,
            &json!({"LogicalName": "x", "MaxLength": 100, "DateTimeBehavior": {"Value": "DateOnly"},
                    "Format": "DateOnly", "Targets": ["account", "contact"]}),
        );
        assert_eq!(c.max_length, Some(100));
        assert_eq!(c.date_time_behavior.as_deref(), Some("DateOnly"));
        assert_eq!(c.targets, ["account", "contact"]);
        let label =
            |t: &str, code: i64| json!({"LocalizedLabels": [{"Label": t, "LanguageCode": code}]});
        let mut b = ColumnMetadata::default();
        add_cast_properties(
            &mut b,
            &json!({"OptionSet": {"TrueOption": {"Value": 1, "Label": label("Allow", 1033)},
                                  "FalseOption": {"Value": 0, "Label": label("Do Not Allow", 1033)}}}),
        );
        assert_eq!(b.options.len(), 2);
        assert_eq!(b.options[0].value, 0, "sorted by value");
        assert_eq!(b.options[1].labels["1033"], "Allow");
        let mut g = ColumnMetadata::default();
        add_cast_properties(
            &mut g,
            &json!({"OptionSet": null, "GlobalOptionSet": {"Name": "budgetstatus", "IsGlobal": true,
                     "Options": [{"Value": 2, "Label": label("Can Buy", 1033)},
                                 {"Value": 0, "Label": label("No Committed Budget", 1033)}]}}),
        );
        assert_eq!(g.global_option_set.as_deref(), Some("budgetstatus"));
        assert_eq!(
            g.options.iter().map(|o| o.value).collect::<Vec<_>>(),
            [0, 2]
        );
    }
}
