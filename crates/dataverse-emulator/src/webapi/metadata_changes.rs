//! `RetrieveMetadataChanges`: the metadata query clients make to read many tables' attributes in
//! one request, and to cache them (`ClientVersionStamp`).
//!
//! Sources: "Query schema definitions" and "Cache schema data"
//! (learn.microsoft.com/power-apps/developer/data-platform/query-schema-definitions,
//! …/cache-schema-data), the function's reference (…/webapi/reference/retrievemetadatachanges):
//! `GET RetrieveMetadataChanges(Query=@p1)?@p1=<EntityQueryExpression as JSON>` answers
//! `RetrieveMetadataChangesResponse { EntityMetadata, ServerVersionStamp, DeletedMetadata }`.
//! An `EntityQueryExpression` has `Criteria` (a `MetadataFilterExpression`: `FilterOperator`
//! `And`/`Or`, `Conditions` of `{ PropertyName, ConditionOperator, Value: { Type, Value } }`,
//! nested `Filters`), `Properties` (`AllProperties`, `PropertyNames`), `AttributeQuery` and
//! `KeyQuery` (their own `Criteria` and `Properties`), and `LabelQuery` (`FilterLanguages`).
//!
//! Implemented: those, with the operators `Equals`, `NotEquals`, `In`, `NotIn`, `GreaterThan`,
//! `LessThan`, over the properties the emulator's metadata has; an entity keeps only the
//! properties asked (and `MetadataId`); `Attributes` and `Keys` come when asked, filtered and
//! projected by their queries; labels are kept in the languages asked. The emulator's metadata
//! never changes while it runs, so its `ServerVersionStamp` is fixed: given back as
//! `ClientVersionStamp`, nothing has changed (no entity, no deleted metadata); any other stamp has
//! expired (`0x80044352`, the service's ExpiredVersionStamp). Refused (400 `0x0`, the emulator's
//! limit): `RelationshipQuery`, `DeletedMetadataFilters`, other operators.

use serde_json::{Map, Value, json};

use super::{Ctx, OpRequest};
use crate::error::{ApiError, OpResponse};

/// The emulator's metadata version: it never changes while the emulator runs.
const VERSION_STAMP: &str = "1!emulator";

fn unsupported(what: &str) -> ApiError {
    ApiError::emulator_limit(format!("{what} in RetrieveMetadataChanges"))
}

/// Whether `segment` calls the function.
pub fn is_call(segment: &str) -> bool {
    let name = segment
        .strip_prefix("Microsoft.Dynamics.CRM.")
        .unwrap_or(segment);
    name == "RetrieveMetadataChanges" || name.starts_with("RetrieveMetadataChanges(")
}

/// `GET RetrieveMetadataChanges(Query=@p1[,ClientVersionStamp=@p2])?@p1=…`.
pub fn retrieve(ctx: &Ctx, req: &OpRequest, segment: &str) -> Result<OpResponse, ApiError> {
    if req.method != "GET" {
        return Err(ApiError::method_not_allowed(&req.method));
    }
    let inner = segment
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or("");
    let pairs = req.query_pairs();
    let mut used = Vec::new();
    let mut params = Map::new();
    for p in inner.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, value) = p.split_once('=').ok_or_else(|| {
            ApiError::invalid_argument(format!("The function parameter '{p}' is not name=value"))
        })?;
        let text = match value.trim().strip_prefix('@') {
            Some(alias) => {
                let key = format!("@{alias}");
                used.push(key.clone());
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        ApiError::invalid_argument(format!(
                            "The parameter alias {key} has no value in the query"
                        ))
                    })?
            }
            None => value.to_string(),
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            ApiError::invalid_argument(format!(
                "The value of the parameter {name} is not JSON: {e}"
            ))
        })?;
        params.insert(name.trim().to_string(), v);
    }
    for (k, _) in &pairs {
        if !used.contains(k) {
            return Err(ApiError::bad_request(format!(
                "The query parameter {k} is not supported"
            )));
        }
    }
    for name in params.keys() {
        if !matches!(
            name.as_str(),
            "Query" | "ClientVersionStamp" | "DeletedMetadataFilters"
        ) {
            return Err(ApiError::invalid_argument(format!(
                "RetrieveMetadataChanges has no parameter {name}; it takes Query, ClientVersionStamp and DeletedMetadataFilters"
            )));
        }
    }
    if params.contains_key("DeletedMetadataFilters") {
        return Err(unsupported("DeletedMetadataFilters"));
    }
    let query = params.get("Query").ok_or_else(|| {
        ApiError::invalid_argument("RetrieveMetadataChanges needs the parameter Query")
    })?;
    if query.get("RelationshipQuery").is_some_and(|v| !v.is_null()) {
        return Err(unsupported("RelationshipQuery"));
    }
    let context = ctx.context("Microsoft.Dynamics.CRM.RetrieveMetadataChangesResponse");
    if let Some(stamp) = params.get("ClientVersionStamp").and_then(Value::as_str) {
        if stamp != VERSION_STAMP {
            return Err(ApiError::new(
                400,
                "0x80044352",
                "Version stamp associated with the client has expired. Please perform a full sync.",
            ));
        }
        return Ok(OpResponse::json(
            200,
            &json!({
                "@odata.context": context,
                "EntityMetadata": [],
                "ServerVersionStamp": VERSION_STAMP,
                "DeletedMetadata": {"Keys": [], "Values": []},
            }),
        ));
    }
    let languages: Option<Vec<i64>> = query
        .get("LabelQuery")
        .and_then(|l| l.get("FilterLanguages"))
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_i64).collect());
    let mut entities = Vec::new();
    for table in &ctx.catalog.tables {
        let mut m = super::metadata::entity_json(table);
        if !passes(&m, query.get("Criteria"))? {
            continue;
        }
        let wanted = properties(query.get("Properties"));
        for (name, sub) in [("Attributes", "AttributeQuery"), ("Keys", "KeyQuery")] {
            if wanted.as_ref().is_none_or(|w| w.iter().any(|n| n == name)) {
                let q = query.get(sub);
                let sub_wanted = properties(q.and_then(|q| q.get("Properties")));
                let mut items = Vec::new();
                for item in
                    super::metadata::entity_collection(ctx.catalog, table, name).unwrap_or_default()
                {
                    if passes(&item, q.and_then(|q| q.get("Criteria")))? {
                        items.push(Value::Object(keep(item, &sub_wanted)));
                    }
                }
                m.insert(name.into(), Value::Array(items));
            }
        }
        let mut m = Value::Object(keep(m, &wanted));
        if let Some(langs) = &languages {
            filter_labels(&mut m, langs);
        }
        entities.push(m);
    }
    Ok(OpResponse::json(
        200,
        &json!({
            "@odata.context": context,
            "EntityMetadata": entities,
            "ServerVersionStamp": VERSION_STAMP,
            "DeletedMetadata": null,
        }),
    ))
}

/// The property names a `MetadataPropertiesExpression` asks for; `None` for all of them.
fn properties(p: Option<&Value>) -> Option<Vec<String>> {
    let p = p.filter(|p| !p.is_null())?;
    if p.get("AllProperties").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    Some(
        p.get("PropertyNames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
    )
}

/// `m` with only the properties `wanted` (and its `MetadataId` and `@odata.type`).
fn keep(mut m: Map<String, Value>, wanted: &Option<Vec<String>>) -> Map<String, Value> {
    if let Some(names) = wanted {
        m.retain(|k, _| k == "MetadataId" || k == "@odata.type" || names.iter().any(|n| n == k));
    }
    m
}

/// Whether `m` passes a `MetadataFilterExpression` (none: it does).
fn passes(m: &Map<String, Value>, criteria: Option<&Value>) -> Result<bool, ApiError> {
    let Some(c) = criteria.filter(|c| !c.is_null()) else {
        return Ok(true);
    };
    let mut results = Vec::new();
    for cond in c
        .get("Conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = cond
            .get("PropertyName")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ApiError::invalid_argument("A MetadataConditionExpression needs PropertyName")
            })?;
        let op = cond
            .get("ConditionOperator")
            .and_then(Value::as_str)
            .unwrap_or("Equals");
        let wanted = cond
            .get("Value")
            .map(|v| v.get("Value").cloned().unwrap_or_else(|| v.clone()))
            .unwrap_or(Value::Null);
        let have = match m.get(name) {
            Some(Value::Object(o)) if o.contains_key("Value") => o["Value"].clone(),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let list: Vec<Value> = match &wanted {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        results.push(match op {
            "Equals" => same(&have, &wanted),
            "NotEquals" => !same(&have, &wanted),
            "In" => list.iter().any(|w| same(&have, w)),
            "NotIn" => !list.iter().any(|w| same(&have, w)),
            "GreaterThan" => number(&have) > number(&wanted),
            "LessThan" => number(&have) < number(&wanted),
            other => return Err(unsupported(&format!("the ConditionOperator '{other}'"))),
        });
    }
    for f in c
        .get("Filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        results.push(passes(m, Some(f))?);
    }
    Ok(
        match c
            .get("FilterOperator")
            .and_then(Value::as_str)
            .unwrap_or("And")
        {
            "Or" => results.iter().any(|r| *r),
            _ => results.iter().all(|r| *r),
        },
    )
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Number(_), _) | (_, Value::Number(_)) => number(a) == number(b),
        (Value::Bool(x), Value::String(y)) | (Value::String(y), Value::Bool(x)) => {
            y.eq_ignore_ascii_case(&x.to_string())
        }
        _ => a == b,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Keeps, in every label collection under `v`, the labels in `languages`.
fn filter_labels(v: &mut Value, languages: &[i64]) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Array(labels)) = o.get_mut("LocalizedLabels") {
                labels.retain(|l| {
                    l.get("LanguageCode")
                        .and_then(Value::as_i64)
                        .is_some_and(|c| languages.contains(&c))
                });
            }
            for (_, child) in o.iter_mut() {
                filter_labels(child, languages);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| filter_labels(x, languages)),
        _ => {}
    }
}
