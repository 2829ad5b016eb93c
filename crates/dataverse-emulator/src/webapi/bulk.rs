//! Bulk actions `CreateMultiple`, `UpdateMultiple`, `UpsertMultiple` (bulk-operations.md, S5/S6).
//!
//! Standard tables are all-or-nothing: any failing target rolls back the whole request. Every
//! target needs `"@odata.type": "Microsoft.Dynamics.CRM.<logicalname>"`.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::crud::{create_row, update_row};
use super::{Ctx, OpRequest, resolve_key};
use crate::catalog::Table;
use crate::error::{ApiError, OpResponse};
use crate::keys;
use crate::state::{Store, Undo};

/// Runs `{set}/Microsoft.Dynamics.CRM.<action>`.
pub fn execute(
    ctx: &Ctx,
    store: &mut Store,
    req: &OpRequest,
    table: &Table,
    action: &str,
    undo: &mut Vec<Undo>,
) -> Result<OpResponse, ApiError> {
    let action = action
        .strip_prefix("Microsoft.Dynamics.CRM.")
        .unwrap_or(action);
    if !matches!(
        action,
        "CreateMultiple" | "UpdateMultiple" | "UpsertMultiple"
    ) {
        if action == "DeleteMultiple" {
            // bulk-operations.md: DeleteMultiple is for elastic tables only.
            return Err(ApiError::bad_request(
                "DeleteMultiple has not yet been implemented.",
            ));
        }
        return Err(ApiError::resource_not_found(action));
    }
    if !table.cfg.bulk_operations {
        return Err(ApiError::bad_request(format!(
            "The '{action}' message is not available for the '{}' table.",
            table.logical()
        )));
    }
    let body = req.json_object(table.set())?;
    let Some(Value::Array(targets)) = body.get("Targets") else {
        return Err(ApiError::bad_request(format!(
            "An error occurred while validating input parameters: the '{action}' action requires the parameter 'Targets'."
        )));
    };
    let expected = format!("Microsoft.Dynamics.CRM.{}", table.logical());
    let mut local = Vec::new();
    let mut ids = Vec::new();
    let result = (|| -> Result<(), ApiError> {
        for target in targets {
            let Value::Object(t) = target else {
                return Err(ApiError::bad_request(
                    "Each item of 'Targets' must be an entity object.",
                ));
            };
            match t.get("@odata.type").and_then(Value::as_str) {
                Some(ty) if ty.trim_start_matches('#') == expected => {}
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "An error occurred while validating input parameters: each item of 'Targets' must have \"@odata.type\": \"{expected}\"."
                    )));
                }
            }
            let mut item: Map<String, Value> = t.clone();
            item.remove("@odata.type");
            let odata_id = item.remove("@odata.id");
            let pk = item
                .get(table.pk())
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Uuid>().ok());
            match action {
                "CreateMultiple" => {
                    ids.push(create_row(ctx, store, table, &item, None, &[], &mut local)?)
                }
                "UpdateMultiple" => {
                    let Some(id) = pk else {
                        return Err(ApiError::bad_request(format!(
                            "UpdateMultiple requires the primary key '{}' in every target.",
                            table.pk()
                        )));
                    };
                    if store.get(table.logical(), &id).is_none() {
                        // Message shape from bulk-operations.md ("Contact With Ids = … Do Not Exist").
                        return Err(ApiError::new(
                            404,
                            "0x80040217",
                            format!(
                                "{} With Ids = {} Do Not Exist",
                                capitalise(table.logical()),
                                id
                            ),
                        ));
                    }
                    item.remove(table.pk());
                    update_row(ctx, store, table, id, &item, &[], &mut local)?;
                }
                _ => {
                    // UpsertMultiple: by primary key in the body, or "@odata.id": "set(key='v')".
                    let (found, preset, key_values) = if let Some(id) = pk {
                        (
                            store.get(table.logical(), &id).map(|r| r.id),
                            Some(id),
                            Vec::new(),
                        )
                    } else if let Some(Value::String(reference)) = &odata_id {
                        let rel = reference.rsplit('/').next().unwrap_or(reference);
                        let (name, key) =
                            keys::split_segment(rel).map_err(|e| ApiError::bad_request(e.0))?;
                        let Some(key) = key.filter(|_| name == table.set()) else {
                            return Err(ApiError::bad_request(format!(
                                "Invalid @odata.id '{reference}' for table '{}'.",
                                table.logical()
                            )));
                        };
                        let r = resolve_key(store, table, key)?;
                        (r.found, r.primary, r.key_values)
                    } else {
                        (None, None, Vec::new())
                    };
                    match found {
                        Some(id) => {
                            item.remove(table.pk());
                            update_row(ctx, store, table, id, &item, &key_values, &mut local)?;
                        }
                        None => {
                            create_row(ctx, store, table, &item, preset, &key_values, &mut local)?;
                        }
                    }
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        store.rollback(local);
        return Err(e);
    }
    undo.extend(local);
    if action == "CreateMultiple" {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        return Ok(OpResponse::json(
            200,
            &json!({"@odata.context": ctx.context("Microsoft.Dynamics.CRM.CreateMultipleResponse"), "Ids": ids}),
        ));
    }
    Ok(OpResponse::no_content())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}
