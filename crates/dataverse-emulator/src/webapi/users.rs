//! The calling application user's own records: `systemusers(<id>)`, its business unit
//! `businessunits(<id>)`, its organization `organizations(<id>)` (name and base language), its
//! security roles `systemusers(<id>)/systemuserroles_association`
//! (the many-to-many relationship PROTOCOL.md §18.2 assigns roles through), and the bound
//! function `RetrieveUserPrivileges`.
//!
//! Only what a client needs to introspect its own identity is served here: the caller's
//! `systemuser` row (fullname, applicationid, isdisabled, businessunitid), readable without
//! `prvReadUser`, and its business unit (the root one, named like the organization). Other users
//! are rows of the catalogue's `systemuser` table (read with `prvReadUser`, written by no one:
//! [`writable`]); without that table, reading them answers 404 as for a row that does not exist.
//! The privileges are those of the caller's roles; the emulator's roles have no depth, so every
//! privilege is reported at `Global` depth.
//!
//! Shapes: RetrieveUserPrivileges function (bound to systemuser, no parameters) returns
//! RetrieveUserPrivilegesResponse `{ RolePrivileges: [RolePrivilege] }`, and RolePrivilege is
//! `{ BusinessUnitId, Depth (PrivilegeDepth: Basic|Local|Deep|Global), PrivilegeId, PrivilegeName }`
//! (learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/retrieveuserprivileges,
//! …/retrieveuserprivilegesresponse, …/roleprivilege).

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{Ctx, OpRequest};
use crate::config::Right;
use crate::error::{ApiError, OpResponse};

/// Whether `name` is an entity set this module serves (when the catalogue has no such table).
pub fn serves(name: &str) -> bool {
    matches!(name, "systemusers" | "businessunits" | "organizations")
}

/// Whether this module answers the request for `set(key)/segs…` when the catalogue also has
/// the table: the caller's own systemuser record (read without `prvReadUser`, as `whoami` and
/// the pre-flight check read it) and the functions and roles bound to it. Every other systemuser
/// request is the catalogue's, with its privileges.
pub fn is_own(ctx: &Ctx, set: &str, key: Option<&str>, segs: &[String]) -> bool {
    if set != "systemusers" {
        return true;
    }
    let own = key
        .and_then(|k| k.trim().parse::<Uuid>().ok())
        .is_some_and(|id| id == ctx.user.systemuser_id);
    match segs {
        [_] => own,
        [_, bound] => {
            bound == "systemuserroles_association" || bound.contains("RetrieveUserPrivileges")
        }
        _ => false,
    }
}

/// Refuses a write to systemuser rows: the emulator's users come from its configuration (the
/// application users and `[[records]]` of table `systemuser`), as an environment's come from
/// Microsoft Entra ID. The service creates and updates users through the Web API too; the
/// emulator does not.
pub fn writable(table: &crate::catalog::Table) -> Result<(), ApiError> {
    if table.logical() == "systemuser" {
        return Err(ApiError::emulator_limit(
            "Creating, updating or deleting a systemuser (declare users under [[records]] in the configuration)",
        ));
    }
    Ok(())
}

/// Routes `systemusers(…)[/function]` and `businessunits(…)`.
pub fn route(
    ctx: &Ctx,
    store: &crate::state::Store,
    req: &OpRequest,
    set: &str,
    key: Option<&str>,
    segs: &[String],
) -> Result<OpResponse, ApiError> {
    if req.method != "GET" {
        return Err(ApiError::method_not_allowed(&req.method));
    }
    let Some(key) = key else {
        return Err(ApiError::bad_uri(format!(
            "The emulator serves {set} only by id: {set}(<guid>)."
        )));
    };
    let id: Uuid = key.trim().parse().map_err(|_| {
        ApiError::bad_uri(format!("'{key}' is not a valid value of type 'Edm.Guid'."))
    })?;
    match (set, segs.len()) {
        ("systemusers", 1) => systemuser(ctx, store, req, id),
        ("systemusers", 2)
            if matches!(
                segs[1].as_str(),
                "Microsoft.Dynamics.CRM.RetrieveUserPrivileges()"
                    | "Microsoft.Dynamics.CRM.RetrieveUserPrivileges"
            ) =>
        {
            own(ctx, "systemuser", id)?;
            Ok(privileges(ctx))
        }
        ("systemusers", 2) if segs[1] == "systemuserroles_association" => {
            own(ctx, "systemuser", id)?;
            Ok(roles(ctx))
        }
        ("businessunits", 1) => businessunit(ctx, req, id),
        ("organizations", 1) => organization(ctx, req, id),
        _ => Err(ApiError::resource_not_found(
            segs.last().map_or("", String::as_str),
        )),
    }
}

fn own(ctx: &Ctx, logical: &str, id: Uuid) -> Result<(), ApiError> {
    let mine = match logical {
        "systemuser" => ctx.user.systemuser_id == id,
        "organization" => ctx.org.id.parse::<Uuid>().is_ok_and(|o| o == id),
        _ => ctx
            .org
            .business_unit_id
            .parse::<Uuid>()
            .is_ok_and(|b| b == id),
    };
    if mine {
        Ok(())
    } else {
        Err(ApiError::new(
            404,
            "",
            format!("{logical} With Id = {id} Does Not Exist"),
        ))
    }
}

/// Projects `row` on `$select` (all columns when absent); an unknown name is Dataverse's 400.
fn select(
    ctx: &Ctx,
    req: &OpRequest,
    logical: &str,
    set: &str,
    id: Uuid,
    row: Map<String, Value>,
) -> Result<OpResponse, ApiError> {
    let chosen: Option<Vec<String>> = req.query_pairs().into_iter().find_map(|(k, v)| {
        (k == "$select").then(|| v.split(',').map(|s| s.trim().to_string()).collect())
    });
    let mut body = Map::new();
    let names = chosen.clone().unwrap_or_default();
    body.insert(
        "@odata.context".into(),
        json!(ctx.context(&format!("{set}({})/$entity", names.join(",")))),
    );
    body.insert("@odata.etag".into(), json!("W/\"1\""));
    match chosen {
        None => body.extend(row),
        Some(names) => {
            for n in &names {
                let Some(v) = row.get(n) else {
                    return Err(ApiError::new(
                        400,
                        "0x0",
                        format!(
                            "Could not find a property named '{n}' on type 'Microsoft.Dynamics.CRM.{logical}'."
                        ),
                    ));
                };
                body.insert(n.clone(), v.clone());
            }
        }
    }
    let pk = format!("{logical}id");
    body.insert(pk, json!(id.to_string()));
    Ok(OpResponse::json(200, &Value::Object(body)))
}

fn systemuser(
    ctx: &Ctx,
    store: &crate::state::Store,
    req: &OpRequest,
    id: Uuid,
) -> Result<OpResponse, ApiError> {
    own(ctx, "systemuser", id)?;
    let row = json!({
        "fullname": ctx.user.name,
        "applicationid": ctx.user.app_id,
        "isdisabled": ctx.user.disabled,
        "_businessunitid_value": ctx.org.business_unit_id,
    });
    let mut row = row.as_object().cloned().unwrap_or_default();
    // With the table, every column of the caller's row reads as for any other user's.
    if let Some(table) = ctx.catalog.table("systemuser")
        && let Some(record) = store.get("systemuser", &id)
    {
        let mut all = super::crud::represent(table, record, None);
        all.extend(row);
        row = all;
    }
    select(ctx, req, "systemuser", "systemusers", id, row)
}

fn businessunit(ctx: &Ctx, req: &OpRequest, id: Uuid) -> Result<OpResponse, ApiError> {
    own(ctx, "businessunit", id)?;
    // The root business unit carries the organization's name.
    let row = json!({ "name": ctx.org.name, "_parentbusinessunitid_value": null });
    let row = row.as_object().cloned().unwrap_or_default();
    select(ctx, req, "businessunit", "businessunits", id, row)
}

/// The organization row: its name and base language (`languagecode`, the LCID that chose the
/// database's collation, Microsoft's "language collations" page).
fn organization(ctx: &Ctx, req: &OpRequest, id: Uuid) -> Result<OpResponse, ApiError> {
    own(ctx, "organization", id)?;
    let row = json!({ "name": ctx.org.name, "languagecode": ctx.org.language_code });
    let row = row.as_object().cloned().unwrap_or_default();
    select(ctx, req, "organization", "organizations", id, row)
}

/// One `RolePrivilege` of `RetrieveUserPrivilegesResponse`, keyed by its name for sorting.
fn privilege(ctx: &Ctx, name: String) -> (String, Value) {
    let id = super::metadata::metadata_id(&["privilege", &name]);
    let entry = json!({
        "BusinessUnitId": ctx.org.business_unit_id,
        "Depth": "Global",
        "PrivilegeId": id.to_string(),
        "PrivilegeName": name,
    });
    (name, entry)
}

fn privileges(ctx: &Ctx) -> OpResponse {
    let mut list: Vec<(String, Value)> = Vec::new();
    for (table, rights) in &ctx.user.privileges {
        let Some(t) = ctx.catalog.table(table) else {
            continue;
        };
        for right in Right::ALL {
            if rights.contains(&right) && t.has_right(right) {
                let name = t.privilege(right);
                list.push(privilege(ctx, name));
            }
        }
    }
    for name in &ctx.user.global {
        list.push(privilege(ctx, name.clone()));
    }
    list.sort_by(|a, b| a.0.cmp(&b.0));
    OpResponse::json(
        200,
        &json!({
            "@odata.context": ctx.context("Microsoft.Dynamics.CRM.RetrieveUserPrivilegesResponse"),
            "RolePrivileges": list.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        }),
    )
}

/// The user's roles as the collection `systemuserroles_association` answers them: `roleid` and
/// `name` of each (`$select` is not applied: these are the only columns served).
fn roles(ctx: &Ctx) -> OpResponse {
    let value: Vec<Value> = ctx
        .user
        .roles
        .iter()
        .map(|name| {
            json!({
                "@odata.etag": "W/\"1\"",
                "roleid": super::metadata::metadata_id(&["role", name]).to_string(),
                "name": name,
            })
        })
        .collect();
    OpResponse::json(
        200,
        &json!({ "@odata.context": ctx.context("roles"), "value": value }),
    )
}
