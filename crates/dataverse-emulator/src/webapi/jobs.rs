//! `BulkDelete` and the system job it starts, read back as `asyncoperations(<JobId>)`.
//!
//! The service's BulkDelete action ("Delete data in bulk", learn.microsoft.com/power-apps/
//! developer/data-platform/delete-data-bulk; the action's reference, …/webapi/reference/bulkdelete)
//! takes a `QuerySet` of `QueryExpression`s and a `JobName` (with `SendEmailNotification`,
//! `ToRecipients`, `CCRecipients`, `RecurrencePattern`, `StartDateTime`), needs `prvBulkDelete`,
//! and answers `BulkDeleteResponse { JobId }`: a system job (`asyncoperation`, operation type 13)
//! that deletes the matching records in the background; a client polls its `statecode` (0 Ready,
//! 1 Suspended, 2 Locked, 3 Completed) and `statuscode` (0 Waiting For Resources, 10 Waiting,
//! 20 In Progress, 30 Succeeded, 31 Failed, 32 Canceled) until it completes.
//!
//! The emulator deletes the records when the job is submitted (a record the caller may not delete
//! counts as a failure and stays), and its job answers the first read `Locked`/`In Progress`, every
//! later read `Completed`/`Succeeded`, so that a client's polling loop goes round once. A query's
//! `Criteria` takes `FilterOperator` `And`/`Or`, nested `Filters`, and `Conditions` with the
//! operators FetchXML has here (`Equal`, `NotEqual`, `GreaterThan`, `GreaterEqual`, `LessThan`,
//! `LessEqual`, `Like`, `NotLike`, `BeginsWith`, `EndsWith`, `In`, `NotIn`, `Null`, `NotNull`);
//! `LinkEntities` and a `RecurrencePattern` are refused. Jobs are not kept across restarts.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::fetch::Filter;
use super::{Ctx, OpRequest};
use crate::config::Right;
use crate::error::{ApiError, OpResponse};
use crate::state::{Store, Undo};

/// A system job.
#[derive(Debug, Clone)]
pub struct Job {
    /// `name` (the `JobName`).
    pub name: String,
    /// Records deleted.
    pub succeeded: u64,
    /// Records that could not be deleted.
    pub failed: u64,
    /// Times the job was read.
    pub reads: u32,
    /// When it was submitted.
    pub created: jiff::Timestamp,
}

/// `POST BulkDelete`: deletes what each query of the `QuerySet` matches, and answers the job id.
pub fn bulk_delete(
    ctx: &Ctx,
    store: &mut Store,
    req: &OpRequest,
    undo: &mut Vec<Undo>,
) -> Result<OpResponse, ApiError> {
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not JSON: {e}")))?;
    let name = body
        .get("JobName")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::invalid_argument("BulkDelete needs the parameter JobName (a string)")
        })?
        .to_string();
    if body
        .get("RecurrencePattern")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.is_empty())
    {
        return Err(ApiError::emulator_limit(
            "A recurring BulkDelete (RecurrencePattern)",
        ));
    }
    let queries = body
        .get("QuerySet")
        .and_then(Value::as_array)
        .filter(|q| !q.is_empty())
        .ok_or_else(|| {
            ApiError::invalid_argument(
                "BulkDelete needs the parameter QuerySet (one or more QueryExpression)",
            )
        })?;
    // Every query is read before anything is deleted: a bad one deletes nothing.
    let mut plans = Vec::new();
    for q in queries {
        let entity = q.get("EntityName").and_then(Value::as_str).ok_or_else(|| {
            ApiError::invalid_argument("A QueryExpression of the QuerySet needs EntityName")
        })?;
        let table = ctx.catalog.table(entity).ok_or_else(|| {
            ApiError::invalid_argument(format!("The entity '{entity}' does not exist"))
        })?;
        if q.get("LinkEntities")
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty())
        {
            return Err(ApiError::emulator_limit(
                "LinkEntities in a BulkDelete query",
            ));
        }
        let filter = match q.get("Criteria") {
            Some(c) if !c.is_null() => criteria(table, c)?,
            _ => Filter::All(Vec::new()),
        };
        plans.push((table, filter));
    }
    let ai = store.accent_insensitive;
    let (mut succeeded, mut failed) = (0, 0);
    for (table, filter) in plans {
        let ids: Vec<Uuid> = store
            .rows(table.logical())
            .into_iter()
            .filter(|r| super::fetch::matches(r, &filter, ai, table.pk()))
            .map(|r| r.id)
            .collect();
        if ctx.user.require(table, Right::Delete).is_err() {
            failed += ids.len() as u64;
            continue;
        }
        for id in ids {
            if let Some(u) = store.remove(table, &id) {
                undo.push(u);
                succeeded += 1;
            }
        }
    }
    let id = Uuid::new_v4();
    store.jobs.insert(
        id,
        Job {
            name,
            succeeded,
            failed,
            reads: 0,
            created: jiff::Timestamp::now(),
        },
    );
    Ok(OpResponse::json(
        200,
        &json!({
            "@odata.context": ctx.context("Microsoft.Dynamics.CRM.BulkDeleteResponse"),
            "JobId": id.to_string(),
        }),
    ))
}

/// A `FilterExpression` as a filter.
fn criteria(table: &crate::catalog::Table, c: &Value) -> Result<Filter, ApiError> {
    let mut parts = Vec::new();
    for cond in c
        .get("Conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let attribute = cond
            .get("AttributeName")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ApiError::invalid_argument("A ConditionExpression needs AttributeName")
            })?;
        if attribute != table.pk() && !table.columns.contains_key(attribute) {
            return Err(super::fetch::unknown_attribute(table, attribute));
        }
        let op = cond.get("Operator").and_then(Value::as_str).unwrap_or("");
        let operator = match op {
            "Equal" => "eq",
            "NotEqual" => "ne",
            "GreaterThan" => "gt",
            "GreaterEqual" => "ge",
            "LessThan" => "lt",
            "LessEqual" => "le",
            "Like" => "like",
            "NotLike" => "not-like",
            "BeginsWith" => "begins-with",
            "EndsWith" => "ends-with",
            "In" => "in",
            "NotIn" => "not-in",
            "Null" => "null",
            "NotNull" => "not-null",
            other => {
                return Err(ApiError::emulator_limit(format!(
                    "The condition operator '{other}' in a BulkDelete query"
                )));
            }
        };
        let values: Vec<String> = cond
            .get("Values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| match v.get("Value").unwrap_or(v) {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        parts.push(Filter::Condition {
            attribute: attribute.to_string(),
            operator: operator.to_string(),
            values,
        });
    }
    for f in c
        .get("Filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        parts.push(criteria(table, f)?);
    }
    match c
        .get("FilterOperator")
        .and_then(Value::as_str)
        .unwrap_or("And")
    {
        "And" | "0" => Ok(Filter::All(parts)),
        "Or" | "1" => Ok(Filter::Any(parts)),
        other => Err(ApiError::invalid_argument(format!(
            "The FilterOperator '{other}' is not And or Or"
        ))),
    }
}

/// Whether `name` is an entity set this module serves.
pub fn serves(name: &str) -> bool {
    name == "asyncoperations"
}

/// `GET asyncoperations(<id>)`: the job, one step further along for each read.
pub fn read(ctx: &Ctx, store: &mut Store, key: Option<&str>) -> Result<OpResponse, ApiError> {
    let Some(key) = key else {
        return Err(ApiError::bad_uri(
            "The emulator serves asyncoperations only by id: asyncoperations(<guid>).",
        ));
    };
    let id: Uuid = key.trim().parse().map_err(|_| {
        ApiError::bad_uri(format!("'{key}' is not a valid value of type 'Edm.Guid'."))
    })?;
    let Some(job) = store.jobs.get_mut(&id) else {
        return Err(ApiError::new(
            404,
            "0x80040217",
            format!("asyncoperation With Id = {id} Does Not Exist"),
        ));
    };
    job.reads += 1;
    let done = job.reads > 1;
    let mut m = Map::new();
    m.insert(
        "@odata.context".into(),
        json!(ctx.context("asyncoperations/$entity")),
    );
    m.insert("asyncoperationid".into(), json!(id.to_string()));
    m.insert("name".into(), json!(job.name));
    m.insert("operationtype".into(), json!(13));
    m.insert("statecode".into(), json!(if done { 3 } else { 2 }));
    m.insert("statuscode".into(), json!(if done { 30 } else { 20 }));
    m.insert("createdon".into(), json!(job.created.to_string()));
    m.insert(
        "completedon".into(),
        if done {
            json!(jiff::Timestamp::now().to_string())
        } else {
            Value::Null
        },
    );
    m.insert(
        "message".into(),
        if done && job.failed > 0 {
            json!(format!(
                "{} records deleted; {} could not be (no Delete privilege)",
                job.succeeded, job.failed
            ))
        } else {
            Value::Null
        },
    );
    Ok(OpResponse::json(200, &Value::Object(m)))
}
