//! The Web API under `/api/data/v9.2/`: routing of one operation to CRUD, query, metadata, bulk.
//!
//! Everything here is synchronous and works on a locked [`Store`], so that the same code serves
//! plain requests, `$batch` parts and change sets (which hold the lock for the whole set).

pub mod bulk;
pub mod crud;
pub mod expand;
pub mod fetch;
pub mod headers;
pub mod jobs;
pub mod messages;
pub mod metadata;
pub mod metadata_changes;
pub mod options;
pub mod query;
pub mod users;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::auth::AppUser;
use crate::catalog::{Catalog, Table};
use crate::config::{OrganizationConfig, ValidationConfig};
use crate::error::{ApiError, OpResponse};
use crate::keys::{self, KeyLiteral, KeySpec};
use crate::state::{Store, Undo};

/// What an operation needs besides the store.
pub struct Ctx<'a> {
    /// Table catalogue.
    pub catalog: &'a Catalog,
    /// Base URL (`http://127.0.0.1:PORT`), the organization URL.
    pub base: &'a str,
    /// API version segment of the request (`v9.2`).
    pub version: &'a str,
    /// The calling application user.
    pub user: &'a AppUser,
    /// Validation switches.
    pub validation: &'a ValidationConfig,
    /// Organization ids for `WhoAmI`.
    pub org: &'a OrganizationConfig,
}

impl Ctx<'_> {
    /// `{base}/api/data/{version}/`
    pub fn api_root(&self) -> String {
        format!("{}/api/data/{}/", self.base, self.version)
    }

    /// Canonical entity URL `{api root}{set}({id})`.
    pub fn entity_url(&self, table: &Table, id: &Uuid) -> String {
        format!("{}{}({})", self.api_root(), table.set(), id)
    }

    /// `{api root}$metadata#…`
    pub fn context(&self, fragment: &str) -> String {
        format!("{}$metadata#{}", self.api_root(), fragment)
    }
}

/// One Web API request, independent of transport.
#[derive(Debug, Clone, Default)]
pub struct OpRequest {
    /// HTTP method, upper case.
    pub method: String,
    /// Path below `/api/data/{version}/`, still percent-encoded, without the query.
    pub path: String,
    /// Raw query string (without `?`).
    pub query: String,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl OpRequest {
    /// Header value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// The preferences of every `Prefer` header, split on commas outside quotes.
    fn preferences(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for (_, v) in self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("prefer"))
        {
            let (mut start, mut quoted) = (0, false);
            for (i, c) in v.char_indices() {
                match c {
                    '"' => quoted = !quoted,
                    ',' if !quoted => {
                        out.push(v[start..i].trim());
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            out.push(v[start..].trim());
        }
        out
    }

    /// Whether a `Prefer` header asks for `token` (e.g. `return=representation`).
    pub fn prefers(&self, token: &str) -> bool {
        self.preferences()
            .iter()
            .any(|p| p.eq_ignore_ascii_case(token))
    }

    /// The value of a `Prefer` parameter such as `odata.maxpagesize=N`, unquoted.
    pub fn prefer_value(&self, name: &str) -> Option<String> {
        self.preferences().into_iter().find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().trim_matches('"').to_string())
        })
    }

    /// Whether `Prefer: odata.include-annotations="…"` asks for the annotation `name`: named,
    /// or matched by `*` or a `Namespace.*` pattern (OData 4.01 §8.2.8.4); a `-` pattern excludes.
    pub fn wants_annotation(&self, name: &str) -> bool {
        let Some(list) = self.prefer_value("odata.include-annotations") else {
            return false;
        };
        let matches = |pattern: &str| {
            pattern == "*"
                || pattern.eq_ignore_ascii_case(name)
                || pattern
                    .strip_suffix('*')
                    .is_some_and(|prefix| name.starts_with(prefix))
        };
        let patterns: Vec<&str> = list.split(',').map(str::trim).collect();
        !patterns
            .iter()
            .filter_map(|p| p.strip_prefix('-'))
            .any(matches)
            && patterns.iter().any(|p| !p.starts_with('-') && matches(p))
    }

    /// Decoded query options in order (`+` is a space, as ASP.NET decodes it).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// The JSON object body, or the payload error Dataverse gives for anything else.
    pub fn json_object(&self, entity_set: &str) -> Result<Map<String, Value>, ApiError> {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(crate::values::payload_error(
                entity_set,
                "Microsoft.OData.ODataException: A node of type 'StartArray' or a primitive value was read from the JSON reader when a 'StartObject' node was expected.",
            )),
            Err(e) => Err(crate::values::payload_error(
                entity_set,
                &format!("Microsoft.OData.ODataException: Invalid JSON. {e}"),
            )),
        }
    }
}

/// Executes one operation; changes are recorded in `undo` so that a change set can roll back.
pub fn execute(ctx: &Ctx, store: &mut Store, req: &OpRequest, undo: &mut Vec<Undo>) -> OpResponse {
    match route(ctx, store, req, undo) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn decode_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

/// The query options the route of `segs` and `method` implements (see [`options`]).
fn implemented_options(ctx: &Ctx, segs: &[String], method: &str) -> &'static [&'static str] {
    use options::allowed;
    let Some(first) = segs.first() else {
        return allowed::NONE;
    };
    if first.starts_with("WhoAmI") {
        return allowed::NONE;
    }
    if first.starts_with("EntityDefinitions") {
        return allowed::METADATA;
    }
    if first.starts_with("GlobalOptionSetDefinitions") {
        return &["$select"];
    }
    if first == "sdkmessagefilters" {
        // The bulk-operation availability query (bulk-operations.md).
        return &["$select", "$filter", "@message", "@table"];
    }
    let keyed = first.ends_with(')');
    match (keyed, segs.len(), method) {
        (false, 1, "GET") => allowed::ENTITY_SET,
        (false, 2, "GET") if segs[1] == "$count" => &["$filter"],
        (false, 1, "POST") => allowed::RECORD,
        (true, 1, "GET") => allowed::RECORD_READ,
        (true, 1, "PATCH") => allowed::RECORD,
        // `systemusers(id)/systemuserroles_association?$select=name`.
        (true, 2, "GET") if segs[1] == "systemuserroles_association" => allowed::RECORD,
        // A collection-valued navigation property: `accounts(id)/contact_customer_accounts`.
        (true, 2, "GET")
            if keys::split_segment(first)
                .ok()
                .and_then(|(set, _)| ctx.catalog.by_set(set))
                .is_some_and(|t| t.collection(&segs[1]).is_some()) =>
        {
            allowed::COLLECTION
        }
        _ => allowed::NONE,
    }
}

fn route(
    ctx: &Ctx,
    store: &mut Store,
    req: &OpRequest,
    undo: &mut Vec<Undo>,
) -> Result<OpResponse, ApiError> {
    let segs = decode_segments(&req.path);
    let method = req.method.as_str();
    // Privileges before existence: a known message answers 403 without its privilege, whatever
    // its parameters.
    if let [only] = segs.as_slice()
        && let Some(refusal) = messages::refuse(ctx, only)
    {
        return Err(refusal);
    }
    headers::check(ctx, req)?;
    if let [only] = segs.as_slice()
        && metadata_changes::is_call(only)
    {
        // Its parameters come as aliases (`@p1`), which it checks itself.
        return metadata_changes::retrieve(ctx, req, only);
    }
    options::check(req, implemented_options(ctx, &segs, method))?;
    if segs.is_empty() {
        return match method {
            "GET" => Ok(metadata::service_document(ctx)),
            _ => Err(ApiError::method_not_allowed(method)),
        };
    }
    let first = segs[0].as_str();
    match first {
        "$metadata" => {
            return match method {
                "GET" => Ok(metadata::csdl(ctx)),
                _ => Err(ApiError::method_not_allowed(method)),
            };
        }
        "WhoAmI" | "WhoAmI()" if segs.len() == 1 => {
            return match method {
                // use-web-api-functions.md: WhoAmIResponse with three GUIDs.
                "GET" => Ok(OpResponse::json(
                    200,
                    &json!({
                        "@odata.context": ctx.context("Microsoft.Dynamics.CRM.WhoAmIResponse"),
                        "BusinessUnitId": ctx.org.business_unit_id,
                        "UserId": ctx.user.systemuser_id.to_string(),
                        "OrganizationId": ctx.org.id,
                    }),
                )),
                _ => Err(ApiError::method_not_allowed(method)),
            };
        }
        "BulkDelete" | "Microsoft.Dynamics.CRM.BulkDelete" if segs.len() == 1 => {
            return match method {
                "POST" => jobs::bulk_delete(ctx, store, req, undo),
                _ => Err(ApiError::method_not_allowed(method)),
            };
        }
        "$batch" => {
            return Err(ApiError::bad_request(
                "A $batch request cannot be nested inside another $batch request.",
            ));
        }
        _ => {}
    }
    if first.starts_with("EntityDefinitions") {
        return metadata::entity_definitions(ctx, req, &segs);
    }
    if first.starts_with("GlobalOptionSetDefinitions") && segs.len() == 1 {
        return match method {
            "GET" => metadata::global_option_sets(ctx, req, first),
            _ => Err(ApiError::method_not_allowed(method)),
        };
    }
    if first == "sdkmessagefilters" {
        return metadata::sdkmessagefilters(ctx, req);
    }
    let (name, key) = keys::split_segment(first).map_err(|e| ApiError::bad_uri(e.0))?;
    // The caller's own systemuser record and the functions bound to it are the identity module's,
    // also when systemuser is a table of the catalogue.
    if users::serves(name) && users::is_own(ctx, name, key, &segs) {
        return users::route(ctx, store, req, name, key, &segs);
    }
    let Some(table) = ctx.catalog.by_set(name) else {
        if jobs::serves(name) && segs.len() == 1 {
            return match method {
                "GET" => jobs::read(ctx, store, key),
                _ => Err(ApiError::method_not_allowed(method)),
            };
        }
        if users::serves(name) {
            return users::route(ctx, store, req, name, key, &segs);
        }
        return Err(ApiError::resource_not_found(name));
    };
    if method != "GET" {
        users::writable(table)?;
    }
    match (key, segs.len()) {
        (None, 1) => match method {
            "GET" => query::list(ctx, store, req, table, None),
            "POST" => crud::create(ctx, store, req, table, undo),
            _ => Err(ApiError::method_not_allowed(method)),
        },
        (None, 2) => match method {
            "GET" if segs[1] == "$count" => query::count(ctx, store, req, table),
            "POST" => bulk::execute(ctx, store, req, table, &segs[1], undo),
            _ => Err(ApiError::method_not_allowed(method)),
        },
        (Some(key), 1) => match method {
            "GET" => crud::retrieve(ctx, store, req, table, key),
            "PATCH" => crud::upsert(ctx, store, req, table, key, undo),
            "DELETE" => crud::delete(ctx, store, req, table, key, undo),
            _ => Err(ApiError::method_not_allowed(method)),
        },
        (Some(key), 2) => crud::property(ctx, store, req, table, key, &segs[1], undo),
        (Some(key), 3) if segs[2] == "$ref" => {
            crud::reference(ctx, store, req, table, key, &segs[1], undo)
        }
        _ => Err(ApiError::resource_not_found(
            segs.last().map_or("", String::as_str),
        )),
    }
}

/// A key addressed in a URL, resolved against the store.
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    /// The row found, if any.
    pub found: Option<Uuid>,
    /// The primary key given in the URL (primary-key form).
    pub primary: Option<Uuid>,
    /// Alternate-key column values given in the URL (alternate-key form), normalised.
    pub key_values: Vec<(String, Value)>,
}

impl ResolvedKey {
    /// The error for a row that does not exist: for a primary key the documented
    /// `account With Id = … Does Not Exist` (perform-conditional-operations-using-web-api.md, code
    /// "" there); for an alternate key Dataverse's "A record with the specified key values does not
    /// exist in account entity" (UNVERIFIED wording).
    pub fn not_found(&self, table: &Table) -> ApiError {
        match self.primary {
            Some(id) => ApiError::new(
                404,
                "",
                format!("{} With Id = {} Does Not Exist", table.logical(), id),
            ),
            None => ApiError::new(
                404,
                "0x80040217",
                format!(
                    "A record with the specified key values does not exist in {} entity",
                    table.logical()
                ),
            ),
        }
    }
}

/// The error for a key whose property names match no key (use-alternate-key-reference-record.md).
pub fn invalid_key(table: &Table) -> ApiError {
    let t = format!("Microsoft.Dynamics.CRM.{}", table.logical());
    ApiError::bad_request(format!(
        "The key in the request URI is not valid for resource '{t}'. Ensure that the names and number of key properties match the declared or alternate key properties for the resource '{t}'."
    ))
}

/// Resolves the text between the parentheses of `set(…)`.
pub fn resolve_key(store: &Store, table: &Table, key_text: &str) -> Result<ResolvedKey, ApiError> {
    let spec = keys::parse_key(key_text).map_err(|e| ApiError::bad_uri(e.0))?;
    let pairs = match spec {
        KeySpec::Single(KeyLiteral::Guid(id)) => return Ok(primary(store, table, id)),
        KeySpec::Single(_) => {
            return Err(ApiError::bad_uri(format!(
                "Bad Request - Error in query syntax: '{key_text}' is not a valid value for key property '{}' of type 'Edm.Guid'.",
                table.pk()
            )));
        }
        KeySpec::Named(pairs) => pairs,
    };
    if pairs.len() == 1 && pairs[0].0 == table.pk() {
        return match &pairs[0].1 {
            KeyLiteral::Guid(id) => Ok(primary(store, table, *id)),
            _ => Err(invalid_key(table)),
        };
    }
    let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    let Some(index) = table.cfg.keys.iter().position(|k| {
        k.attributes.len() == names.len()
            && names.iter().all(|n| k.attributes.iter().any(|a| a == n))
    }) else {
        return Err(invalid_key(table));
    };
    let key = &table.cfg.keys[index];
    let mut values = Vec::new();
    let mut key_values = Vec::new();
    for attr in &key.attributes {
        let literal = &pairs
            .iter()
            .find(|(n, _)| n == attr)
            .expect("matched key")
            .1;
        let col = &table.columns[attr];
        let v = crate::values::coerce(table, col, &literal.to_json())
            .map_err(|_| invalid_key(table))?;
        values.push(v.clone());
        key_values.push((attr.clone(), v));
    }
    Ok(ResolvedKey {
        found: store.find_by_key(table, index, &values),
        primary: None,
        key_values,
    })
}

fn primary(store: &Store, table: &Table, id: Uuid) -> ResolvedKey {
    ResolvedKey {
        found: store.get(table.logical(), &id).map(|r| r.id),
        primary: Some(id),
        key_values: Vec::new(),
    }
}

/// Resolves an entity reference (`@odata.bind` / `@odata.id` value): absolute URL, `/set(key)`
/// or `set(key)` (create-entity-web-api.md, associate-disassociate-entities-using-web-api.md).
/// A target that does not exist is a 404 as in Dataverse.
pub fn resolve_reference<'c>(
    ctx: &Ctx<'c>,
    store: &Store,
    reference: &str,
) -> Result<(&'c Table, Uuid), ApiError> {
    let mut rest = reference.trim();
    if let Some(r) = rest.strip_prefix(ctx.base) {
        rest = r;
    } else if let Some(i) = rest.find("://") {
        // Another host: take its path.
        let after = &rest[i + 3..];
        rest = after.find('/').map_or("", |j| &after[j..]);
    }
    if let Some(r) = rest.strip_prefix("/api/data/") {
        rest = r.split_once('/').map_or("", |(_, p)| p);
    }
    let rest = rest.trim_start_matches('/');
    let decoded = percent_decode_str(rest).decode_utf8_lossy().into_owned();
    let (name, key) = keys::split_segment(&decoded).map_err(|e| ApiError::bad_request(e.0))?;
    let (Some(table), Some(key)) = (ctx.catalog.by_set(name), key) else {
        return Err(ApiError::bad_request(format!(
            "An error occurred while validating input parameters: the entity reference '{reference}' does not name an entity set and key."
        )));
    };
    let resolved = resolve_key(store, table, key)?;
    match resolved.found {
        Some(id) => Ok((table, id)),
        None => Err(match resolved.primary {
            // ObjectDoesNotExist (0x80040217), 404; message as for a missing row.
            Some(id) => ApiError::new(
                404,
                "0x80040217",
                format!("{} With Id = {} Does Not Exist", table.logical(), id),
            ),
            None => resolved.not_found(table),
        }),
    }
}
