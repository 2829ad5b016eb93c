//! Single-row operations: create, retrieve, update/upsert, delete, property and `$ref` writes.
//!
//! Status matrix from create-entity-web-api.md, update-delete-entities-using-web-api.md,
//! use-upsert-insert-update-record.md and perform-conditional-operations-using-web-api.md
//! (PROTOCOL.md §3).

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{Ctx, OpRequest, ResolvedKey, resolve_key, resolve_reference};
use crate::catalog::Table;
use crate::config::{ColumnType, RequiredLevel, Right};
use crate::error::{ApiError, OpResponse};
use crate::state::{Record, Store, Undo};
use crate::values;

/// Changes parsed from a body: column values, plus collection binds applied after the write.
#[derive(Debug, Default)]
pub struct Changes {
    /// Normalised column values to set.
    pub fields: Map<String, Value>,
    /// Primary key given in the body.
    pub id: Option<Uuid>,
    /// `Collection@odata.bind` targets: (collection name, related table, related id).
    pub collection_binds: Vec<(String, String, Uuid)>,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Parses a JSON body into changes for `table`, validating every value (PROTOCOL.md §5, §6).
/// Deep-inserted rows are created at once (recorded in `undo`).
pub fn parse_body(
    ctx: &Ctx,
    store: &mut Store,
    table: &Table,
    body: &Map<String, Value>,
    undo: &mut Vec<Undo>,
) -> Result<Changes, ApiError> {
    let mut changes = Changes::default();
    for (name, value) in body {
        if let Some(nav_name) = name.strip_suffix("@odata.bind") {
            bind(ctx, store, table, nav_name, value, &mut changes)?;
            continue;
        }
        if name.starts_with('@') || name.contains('@') {
            if name == "@odata.type" {
                let expected = format!("Microsoft.Dynamics.CRM.{}", table.logical());
                let given = value.as_str().unwrap_or("").trim_start_matches('#');
                if given != expected {
                    return Err(values::payload_error(
                        table.set(),
                        &format!(
                            "Microsoft.OData.ODataException: A resource with type '{given}' was found, but it is not assignable to the expected type '{expected}'."
                        ),
                    ));
                }
            }
            // Other instance/property annotations (@odata.etag, …@OData.Community…) are ignored.
            continue;
        }
        if let Some(nav) = table.navs.get(name) {
            match value {
                Value::Null => {
                    changes.fields.insert(nav.attribute.clone(), Value::Null);
                }
                Value::Object(nested) => {
                    // Deep insert of a single-valued navigation property (create-entity-web-api.md).
                    let [target] = nav.targets.as_slice() else {
                        return Err(ApiError::emulator_limit(format!(
                            "A deep insert through '{name}', whose type is {},",
                            nav.entity_type()
                        )));
                    };
                    let target = ctx.catalog.table(target).expect("validated catalogue");
                    let id = create_row(ctx, store, target, nested, None, &[], undo)?;
                    changes
                        .fields
                        .insert(nav.attribute.clone(), lookup_value(id, target));
                }
                _ => return Err(values::unknown_property(table, name)),
            }
            continue;
        }
        if let Some(coll) = table.collection(name) {
            let Value::Array(items) = value else {
                return Err(values::unknown_property(table, name));
            };
            let related = ctx.catalog.table(&coll.table).expect("validated catalogue");
            for item in items {
                let Value::Object(nested) = item else {
                    return Err(values::unknown_property(table, name));
                };
                // Deep insert of a collection: the related rows are created after the parent.
                let id = create_row(ctx, store, related, nested, None, &[], undo)?;
                changes.collection_binds.push((
                    coll.name.clone(),
                    related.logical().to_string(),
                    id,
                ));
            }
            continue;
        }
        let Some(col) = table.columns.get(name) else {
            return Err(values::unknown_property(table, name));
        };
        if name == table.pk() {
            let id = value
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
                .ok_or_else(|| {
                    values::coerce(table, col, value)
                        .err()
                        .unwrap_or_else(|| values::unknown_property(table, name))
                })?;
            changes.id = Some(id);
            continue;
        }
        if col.read_only {
            // Dataverse ignores values for read-only columns such as createdon on write.
            continue;
        }
        let v = values::coerce(table, col, value)?;
        changes.fields.insert(name.clone(), v);
    }
    Ok(changes)
}

fn lookup_value(id: Uuid, target: &Table) -> Value {
    json!({"id": id.to_string(), "table": target.logical()})
}

fn bind(
    ctx: &Ctx,
    store: &Store,
    table: &Table,
    nav_name: &str,
    value: &Value,
    changes: &mut Changes,
) -> Result<(), ApiError> {
    if let Some(nav) = table.navs.get(nav_name) {
        match value {
            Value::Null => {
                changes.fields.insert(nav.attribute.clone(), Value::Null);
                Ok(())
            }
            Value::String(reference) => {
                let (target, id) = resolve_reference(ctx, store, reference)?;
                if !nav.reaches(target.logical()) {
                    return Err(ApiError::bad_request(format!(
                        "An error occurred while validating input parameters: the navigation property '{nav_name}' expects an entity of type 'Microsoft.Dynamics.CRM.{}' but '{reference}' is of type 'Microsoft.Dynamics.CRM.{}'.",
                        nav.entity_type(),
                        target.logical()
                    )));
                }
                ctx.user.require(table, Right::Append)?;
                ctx.user.require(target, Right::AppendTo)?;
                changes
                    .fields
                    .insert(nav.attribute.clone(), lookup_value(id, target));
                Ok(())
            }
            _ => Err(values::unknown_property(
                table,
                &format!("{nav_name}@odata.bind"),
            )),
        }
    } else if let Some(coll) = table.collection(nav_name) {
        let Value::Array(items) = value else {
            return Err(values::unknown_property(
                table,
                &format!("{nav_name}@odata.bind"),
            ));
        };
        for item in items {
            let Some(reference) = item.as_str() else {
                return Err(values::unknown_property(
                    table,
                    &format!("{nav_name}@odata.bind"),
                ));
            };
            let (related, id) = resolve_reference(ctx, store, reference)?;
            if related.logical() != coll.table {
                return Err(ApiError::bad_request(format!(
                    "An error occurred while validating input parameters: '{reference}' cannot be added to collection '{nav_name}'."
                )));
            }
            changes
                .collection_binds
                .push((coll.name.clone(), related.logical().to_string(), id));
        }
        Ok(())
    } else {
        // Wrong (e.g. lower-cased) navigation property name: verbatim text from
        // PowerPlatform-DataverseServiceClient#31/#44 (PROTOCOL.md §2), stack trace omitted.
        Err(ApiError::bad_request(format!(
            "An error occurred while validating input parameters: Microsoft.OData.ODataException: An undeclared property '{nav_name}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values."
        )))
    }
}

/// Fills computed columns (fullname) and system columns.
pub(crate) fn finish_fields(
    table: &Table,
    fields: &mut Map<String, Value>,
    created: Option<Uuid>,
    version: u64,
) {
    if table.columns.get("fullname").is_some_and(|c| c.read_only) {
        let part = |n: &str| {
            fields
                .get(n)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let full = format!("{} {}", part("firstname"), part("lastname"))
            .trim()
            .to_string();
        fields.insert(
            "fullname".into(),
            if full.is_empty() {
                Value::Null
            } else {
                Value::String(full)
            },
        );
    }
    let ts = now();
    let creator = created;
    let created = creator.is_some();
    if let (Some(user), true) = (creator, table.columns.contains_key("createdon")) {
        fields.insert("createdon".into(), Value::String(ts.clone()));
        fields.insert(
            "createdby".into(),
            serde_json::json!({ "id": user.to_string(), "table": "systemuser" }),
        );
    }
    if table.columns.contains_key("modifiedon") {
        fields.insert("modifiedon".into(), Value::String(ts));
    }
    if table.columns.contains_key("versionnumber") {
        fields.insert("versionnumber".into(), Value::from(version));
    }
    for (name, col) in &table.columns {
        if matches!(col.kind, ColumnType::State) && created && !fields.contains_key(name) {
            if let Some(first) = col.options.first() {
                fields.insert(name.clone(), Value::from(first.value));
            }
        }
    }
}

fn apply_collection_binds(
    ctx: &Ctx,
    store: &mut Store,
    parent: &Table,
    parent_id: Uuid,
    binds: &[(String, String, Uuid)],
    undo: &mut Vec<Undo>,
) -> Result<(), ApiError> {
    for (coll_name, related_table, related_id) in binds {
        let coll = parent.collection(coll_name).expect("validated");
        let related = ctx.catalog.table(related_table).expect("validated");
        let Some(mut row) = store.get(related.logical(), related_id).cloned() else {
            continue;
        };
        row.fields
            .insert(coll.attribute.clone(), lookup_value(parent_id, parent));
        row.version = store.bump_version();
        undo.push(store.replace(related, row)?);
    }
    Ok(())
}

/// Creates a row from a JSON body; returns its id. `preset_id` and `key_values` come from an
/// upsert URL (body values win, URL key values are copied only when the body lacks them: S7).
pub fn create_row(
    ctx: &Ctx,
    store: &mut Store,
    table: &Table,
    body: &Map<String, Value>,
    preset_id: Option<Uuid>,
    key_values: &[(String, Value)],
    undo: &mut Vec<Undo>,
) -> Result<Uuid, ApiError> {
    super::users::writable(table)?;
    ctx.user.require(table, Right::Create)?;
    let changes = parse_body(ctx, store, table, body, undo)?;
    let id = match changes.id.or(preset_id) {
        Some(id) => id,
        None => store.new_id(),
    };
    let mut fields = changes.fields;
    for (k, v) in key_values {
        fields.entry(k.clone()).or_insert_with(|| v.clone());
    }
    // A record created without an owner is the caller's (the service assigns the calling user).
    for col in table
        .cfg
        .columns
        .iter()
        .filter(|c| c.kind == ColumnType::Owner)
    {
        fields.entry(col.name.clone()).or_insert_with(
            || json!({"id": ctx.user.systemuser_id.to_string(), "table": "systemuser"}),
        );
    }
    check_required(ctx, table, &fields)?;
    let version = store.bump_version();
    finish_fields(table, &mut fields, Some(ctx.user.systemuser_id), version);
    let record = Record {
        id,
        seq: store.next_seq(),
        version,
        fields,
    };
    undo.push(store.insert(table, record)?);
    apply_collection_binds(ctx, store, table, id, &changes.collection_binds, undo)?;
    Ok(id)
}

fn check_required(ctx: &Ctx, table: &Table, fields: &Map<String, Value>) -> Result<(), ApiError> {
    for col in &table.cfg.columns {
        let enforced = match col.required {
            RequiredLevel::SystemRequired => true,
            RequiredLevel::ApplicationRequired => ctx.validation.enforce_application_required,
            _ => false,
        };
        if enforced && !col.read_only && fields.get(&col.name).is_none_or(Value::is_null) {
            // UNVERIFIED wording and code (InvalidArgument 0x80040203): no source prints
            // Dataverse's response for a missing required column.
            return Err(ApiError::new(
                400,
                "0x80040203",
                format!(
                    "A validation error occurred.  A value for the required attribute '{}' of the '{}' entity is missing.",
                    col.name,
                    table.logical()
                ),
            ));
        }
    }
    Ok(())
}

/// Applies `body` to an existing row. Key columns named in `drop_keys` are ignored (an upsert
/// cannot change the key it addresses the row by: S7).
pub fn update_row(
    ctx: &Ctx,
    store: &mut Store,
    table: &Table,
    id: Uuid,
    body: &Map<String, Value>,
    drop_keys: &[(String, Value)],
    undo: &mut Vec<Undo>,
) -> Result<(), ApiError> {
    ctx.user.require(table, Right::Write)?;
    let changes = parse_body(ctx, store, table, body, undo)?;
    let Some(mut row) = store.get(table.logical(), &id).cloned() else {
        return Err(ApiError::new(
            404,
            "",
            format!("{} With Id = {} Does Not Exist", table.logical(), id),
        ));
    };
    for (k, v) in changes.fields {
        if drop_keys.iter().any(|(dk, _)| *dk == k) {
            continue;
        }
        // Giving a row another owner is an assignment: it takes prvAssign (Microsoft's "Data
        // operations and access rights": Assign needs ASSIGN), not only prvWrite.
        if table
            .columns
            .get(&k)
            .is_some_and(|c| c.kind == ColumnType::Owner)
            && row.lookup(&k).map(|(id, _)| id.to_string())
                != v.get("id").and_then(Value::as_str).map(str::to_string)
        {
            ctx.user.require(table, Right::Assign)?;
        }
        if v.is_null()
            && table
                .columns
                .get(&k)
                .is_some_and(|c| c.required == RequiredLevel::SystemRequired)
        {
            return Err(ApiError::new(
                400,
                "0x80040203",
                format!(
                    "A validation error occurred.  The attribute '{k}' of the '{}' entity cannot be set to null.",
                    table.logical()
                ),
            ));
        }
        row.fields.insert(k, v);
    }
    row.version = store.bump_version();
    finish_fields(table, &mut row.fields, None, row.version);
    undo.push(store.replace(table, row)?);
    apply_collection_binds(ctx, store, table, id, &changes.collection_binds, undo)?;
    Ok(())
}

/// Parses `$select` into column names (validated), or `None` for all columns.
pub fn parse_select(table: &Table, req: &OpRequest) -> Result<Option<Vec<String>>, ApiError> {
    let Some((_, select)) = req.query_pairs().into_iter().find(|(k, _)| k == "$select") else {
        return Ok(None);
    };
    let mut names = Vec::new();
    for name in select.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if property_value_name(table, name).is_none() {
            return Err(no_such_property(table, name));
        }
        names.push(name.to_string());
    }
    Ok(Some(names))
}

/// "Could not find a property named …" (verbb/formie#1185, PROTOCOL.md §2 [I7]).
pub fn no_such_property(table: &Table, name: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{}'.",
        table.logical()
    ))
}

/// The stored column behind a readable property name: a column, or `_x_value` for lookup `x`.
pub fn property_value_name<'a>(table: &Table, name: &'a str) -> Option<&'a str> {
    // `createdby` is on every table that has the system columns; the emulator keeps it as a
    // plain reference to the creating application user, not as a configured column.
    if name == "_createdby_value" && table.columns.contains_key("createdon") {
        return Some("createdby");
    }
    if let Some(inner) = name
        .strip_prefix('_')
        .and_then(|n| n.strip_suffix("_value"))
    {
        return table
            .columns
            .get(inner)
            .filter(|c| c.kind.is_lookup())
            .map(|_| inner);
    }
    table
        .columns
        .get(name)
        .filter(|c| !c.kind.is_lookup())
        .map(|_| name)
}

/// The readable value of property `name` of `row`.
pub fn read_property(table: &Table, row: &Record, name: &str) -> Value {
    if name == table.pk() {
        return Value::String(row.id.to_string());
    }
    match property_value_name(table, name) {
        Some(col) if col != name => row
            .lookup(col)
            .map_or(Value::Null, |(id, _)| Value::String(id.to_string())),
        Some(col) => row.fields.get(col).cloned().unwrap_or(Value::Null),
        None => Value::Null,
    }
}

/// A row as JSON (`@odata.etag`, selected properties, primary key).
pub fn represent(table: &Table, row: &Record, select: Option<&[String]>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("@odata.etag".into(), Value::String(row.etag()));
    match select {
        Some(names) => {
            for n in names {
                out.insert(n.clone(), read_property(table, row, n));
            }
            out.insert(table.pk().to_string(), Value::String(row.id.to_string()));
        }
        None => {
            out.insert(table.pk().to_string(), Value::String(row.id.to_string()));
            for col in &table.cfg.columns {
                let name = if col.kind.is_lookup() {
                    format!("_{}_value", col.name)
                } else {
                    col.name.clone()
                };
                let v = read_property(table, row, &name);
                out.insert(name, v);
            }
        }
    }
    out
}

fn entity_context(ctx: &Ctx, table: &Table, select: Option<&[String]>) -> String {
    match select {
        Some(names) => ctx.context(&format!("{}({})/$entity", table.set(), names.join(","))),
        None => ctx.context(&format!("{}/$entity", table.set())),
    }
}

fn representation(
    ctx: &Ctx,
    store: &Store,
    table: &Table,
    id: Uuid,
    status: u16,
    select: Option<&[String]>,
) -> OpResponse {
    let Some(row) = store.get(table.logical(), &id) else {
        return ApiError::new(
            404,
            "",
            format!("{} With Id = {} Does Not Exist", table.logical(), id),
        )
        .into_response();
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(entity_context(ctx, table, select)),
    );
    body.extend(represent(table, row, select));
    let mut resp = OpResponse::json(status, &Value::Object(body));
    // Header order as in upsert-altkey-create-return-representation-201.http.
    resp.headers.insert(1, ("ETag".into(), row.etag()));
    resp.headers.insert(
        2,
        ("Preference-Applied".into(), "return=representation".into()),
    );
    resp.entity_id = Some(ctx.entity_url(table, &id));
    resp
}

/// `POST {set}`: 204 + `OData-EntityId`, or 201 + body with `Prefer: return=representation`
/// (and then no `OData-EntityId`: create-entity-web-api.md).
pub fn create(
    ctx: &Ctx,
    store: &mut Store,
    req: &OpRequest,
    table: &Table,
    undo: &mut Vec<Undo>,
) -> Result<OpResponse, ApiError> {
    let body = req.json_object(table.set())?;
    let select = parse_select(table, req)?;
    let id = create_row(ctx, store, table, &body, None, &[], undo)?;
    if req.prefers("return=representation") {
        return Ok(representation(
            ctx,
            store,
            table,
            id,
            201,
            select.as_deref(),
        ));
    }
    let mut resp = OpResponse::no_content();
    let url = ctx.entity_url(table, &id);
    resp.headers.push(("OData-EntityId".into(), url.clone()));
    resp.entity_id = Some(url);
    Ok(resp)
}

/// `GET {set}(key)`, with `If-None-Match: W/"v"` → 304 when unchanged.
pub fn retrieve(
    ctx: &Ctx,
    store: &mut Store,
    req: &OpRequest,
    table: &Table,
    key: &str,
) -> Result<OpResponse, ApiError> {
    ctx.user.require(table, Right::Read)?;
    let select = parse_select(table, req)?;
    let expands = super::expand::parse(ctx, table, req)?;
    let resolved = resolve_key(store, table, key)?;
    let Some(id) = resolved.found else {
        return Err(resolved.not_found(table));
    };
    let row = store.get(table.logical(), &id).expect("found");
    if let Some(tag) = req.header("If-None-Match")
        && tag == row.etag()
    {
        // perform-conditional-operations-using-web-api.md: 304 Not Modified.
        return Ok(OpResponse {
            status: 304,
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/json; odata.metadata=minimal".into(),
                ),
                ("OData-Version".into(), "4.0".into()),
            ],
            body: Vec::new(),
            entity_id: None,
        });
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(entity_context(ctx, table, select.as_deref())),
    );
    body.extend(represent(table, row, select.as_deref()));
    super::expand::decorate(ctx.catalog, store, req, table, row, &expands, &mut body);
    let mut resp = OpResponse::json(200, &Value::Object(body));
    resp.headers.insert(1, ("ETag".into(), row.etag()));
    Ok(resp)
}

fn precondition(
    req: &OpRequest,
    existing: Option<&Record>,
    resolved: &ResolvedKey,
    table: &Table,
) -> Result<(), ApiError> {
    if let Some(if_match) = req.header("If-Match") {
        let Some(row) = existing else {
            return Err(resolved.not_found(table));
        };
        if if_match != "*" && !if_match.split(',').any(|t| t.trim() == row.etag()) {
            return Err(ApiError::new(
                412,
                "",
                "The version of the existing record doesn't match the RowVersion property provided.",
            ));
        }
    }
    // `If-None-Match: null` is the cache-buster every request carries, not a precondition (S2).
    if req.header("If-None-Match") == Some("*") && existing.is_some() {
        return Err(ApiError::new(
            412,
            "",
            "A record with matching key values already exists.",
        ));
    }
    Ok(())
}

/// `PATCH {set}(key)`: update, or upsert without `If-Match` (use-upsert-insert-update-record.md).
pub fn upsert(
    ctx: &Ctx,
    store: &mut Store,
    req: &OpRequest,
    table: &Table,
    key: &str,
    undo: &mut Vec<Undo>,
) -> Result<OpResponse, ApiError> {
    let body = req.json_object(table.set())?;
    let select = parse_select(table, req)?;
    let resolved = resolve_key(store, table, key)?;
    let existing = resolved
        .found
        .and_then(|id| store.get(table.logical(), &id));
    precondition(req, existing, &resolved, table)?;
    let (id, created) = match resolved.found {
        Some(id) => {
            update_row(ctx, store, table, id, &body, &resolved.key_values, undo)?;
            (id, false)
        }
        None => {
            let id = create_row(
                ctx,
                store,
                table,
                &body,
                resolved.primary,
                &resolved.key_values,
                undo,
            )?;
            (id, true)
        }
    };
    if req.prefers("return=representation") {
        return Ok(representation(
            ctx,
            store,
            table,
            id,
            if created { 201 } else { 200 },
            select.as_deref(),
        ));
    }
    let mut resp = OpResponse::no_content();
    // OData-EntityId echoes the key form used in the request (S7).
    let (name, _) = req.path.split_once('(').unwrap_or((&req.path, ""));
    let echoed = format!(
        "{}{}({})",
        ctx.api_root(),
        name.trim_start_matches('/'),
        key
    );
    resp.headers.push(("OData-EntityId".into(), echoed));
    resp.entity_id = Some(ctx.entity_url(table, &id));
    Ok(resp)
}

/// `DELETE {set}(key)`: 204; missing → 404; stale `If-Match` → 412.
pub fn delete(
    ctx: &Ctx,
    store: &mut Store,
    req: &OpRequest,
    table: &Table,
    key: &str,
    undo: &mut Vec<Undo>,
) -> Result<OpResponse, ApiError> {
    ctx.user.require(table, Right::Delete)?;
    let resolved = resolve_key(store, table, key)?;
    let Some(id) = resolved.found else {
        return Err(resolved.not_found(table));
    };
    let existing = store.get(table.logical(), &id);
    if let Some(if_match) = req.header("If-Match")
        && if_match != "*"
        && existing.is_some_and(|r| r.etag() != if_match)
    {
        return Err(ApiError::new(
            412,
            "",
            "The version of the existing record doesn't match the RowVersion property provided.",
        ));
    }
    if let Some(u) = store.remove(table, &id) {
        undo.push(u);
    }
    Ok(OpResponse::no_content())
}

/// `PUT/DELETE/GET {set}(key)/{property}`, and `GET {set}(key)/{collection}`.
pub fn property(
    ctx: &Ctx,
    store: &mut Store,
    req: &OpRequest,
    table: &Table,
    key: &str,
    prop: &str,
    undo: &mut Vec<Undo>,
) -> Result<OpResponse, ApiError> {
    let resolved = resolve_key(store, table, key)?;
    if table.collection(prop).is_some() && req.method == "GET" {
        let Some(id) = resolved.found else {
            return Err(resolved.not_found(table));
        };
        ctx.user.require(table, Right::Read)?;
        return super::query::list(ctx, store, req, table, Some((id, prop)));
    }
    let Some(id) = resolved.found else {
        return Err(resolved.not_found(table));
    };
    if property_value_name(table, prop).is_none() && prop != table.pk() {
        return Err(no_such_property(table, prop));
    }
    match req.method.as_str() {
        "GET" => {
            ctx.user.require(table, Right::Read)?;
            let row = store.get(table.logical(), &id).expect("found");
            Ok(OpResponse::json(
                200,
                &json!({
                    "@odata.context": ctx.context(&format!("{}({})/{}", table.set(), id, prop)),
                    "value": read_property(table, row, prop),
                }),
            ))
        }
        "PUT" => {
            // update-delete-entities-using-web-api.md: body {"value": …} → 204.
            let body = req.json_object(table.set())?;
            let value = body.get("value").cloned().unwrap_or(Value::Null);
            let mut m = Map::new();
            m.insert(prop.to_string(), value);
            update_row(ctx, store, table, id, &m, &[], undo)?;
            Ok(OpResponse::no_content())
        }
        "DELETE" => {
            let mut m = Map::new();
            m.insert(prop.to_string(), Value::Null);
            update_row(ctx, store, table, id, &m, &[], undo)?;
            Ok(OpResponse::no_content())
        }
        m => Err(ApiError::method_not_allowed(m)),
    }
}

/// `PUT {set}(key)/{nav}/$ref` with `{"@odata.id": …}` and `DELETE …/$ref`
/// (associate-disassociate-entities-using-web-api.md).
pub fn reference(
    ctx: &Ctx,
    store: &mut Store,
    req: &OpRequest,
    table: &Table,
    key: &str,
    nav_name: &str,
    undo: &mut Vec<Undo>,
) -> Result<OpResponse, ApiError> {
    let resolved = resolve_key(store, table, key)?;
    let Some(id) = resolved.found else {
        return Err(resolved.not_found(table));
    };
    if !table.navs.contains_key(nav_name) && table.collection(nav_name).is_none() {
        return Err(ApiError::resource_not_found(nav_name));
    }
    let mut m = Map::new();
    match req.method.as_str() {
        "PUT" | "POST" => {
            let body = req.json_object(table.set())?;
            let target = body.get("@odata.id").cloned().unwrap_or(Value::Null);
            let value = if table.collection(nav_name).is_some() {
                Value::Array(vec![target])
            } else {
                target
            };
            m.insert(format!("{nav_name}@odata.bind"), value);
        }
        "DELETE" => {
            m.insert(format!("{nav_name}@odata.bind"), Value::Null);
        }
        other => return Err(ApiError::method_not_allowed(other)),
    }
    update_row(ctx, store, table, id, &m, &[], undo)?;
    Ok(OpResponse::no_content())
}
