//! Executes a parsed `$batch`: sequential parts, change sets as transactions with `$n`
//! references, `Prefer: odata.continue-on-error` (PROTOCOL.md §7.2–7.5).

use std::collections::HashMap;

use serde_json::Value;

use super::encoder::{self, ItemResponse};
use super::parser::{self, Item, Part};
use crate::error::{ApiError, OpResponse};
use crate::shared::Shared;
use crate::stats::Stats;
use crate::webapi::{self, Ctx, OpRequest};

/// The result of a batch.
#[derive(Debug)]
pub struct BatchOutcome {
    /// Outer status: 200, or 400 when processing stopped at a failure (no continue-on-error).
    pub status: u16,
    /// Outer `Content-Type` (with the response boundary).
    pub content_type: String,
    /// Multipart body.
    pub body: Vec<u8>,
    /// Operations in the batch.
    pub operations: usize,
}

/// `Content-ID Reference: '$1' does not exist in the batch context.` (execute-batch-operations…md)
fn unknown_reference(r: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Content-ID Reference: '{r}' does not exist in the batch context."
    ))
}

fn reference_id(s: &str) -> Option<&str> {
    let r = s.strip_prefix('$')?;
    let id = r.split(['/', '?']).next().unwrap_or(r);
    (!id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)))
    .then_some(id)
}

fn substitute(value: &mut Value, refs: &HashMap<String, String>) -> Result<(), ApiError> {
    match value {
        Value::String(s) if s.starts_with('$') => {
            let Some(id) = reference_id(s) else {
                return Ok(());
            };
            let Some(url) = refs.get(id) else {
                return Err(unknown_reference(&format!("${id}")));
            };
            *s = format!("{url}{}", &s[1 + id.len()..]);
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|v| substitute(v, refs)),
        _ => Ok(()),
    }
}

/// Converts a part into a Web API request: resolves `$n` in the URL and in `@odata.bind` /
/// `@odata.id` values, and strips the base URL and `/api/data/vX.Y/` prefix.
fn to_request(
    part: &Part,
    base: &str,
    refs: &HashMap<String, String>,
) -> Result<(OpRequest, Option<String>), ApiError> {
    let mut url = part.url.clone();
    if url.starts_with('$') {
        let id = reference_id(&url)
            .ok_or_else(|| unknown_reference(&url))?
            .to_string();
        let target = refs
            .get(&id)
            .ok_or_else(|| unknown_reference(&format!("${id}")))?;
        url = format!("{target}{}", &url[1 + id.len()..]);
    }
    let mut path = url.as_str();
    if let Some(r) = path.strip_prefix(base) {
        path = r;
    } else if let Some(i) = path.find("://") {
        let after = &path[i + 3..];
        path = after.find('/').map_or("", |j| &after[j..]);
    }
    let mut version = None;
    if let Some(r) = path.strip_prefix("/api/data/") {
        let (v, rest) = r.split_once('/').unwrap_or((r, ""));
        version = Some(v.to_string());
        path = rest;
    }
    let path = path.trim_start_matches('/');
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut body = part.body.clone();
    if !refs.is_empty() || body.windows(2).any(|w| w == b"\"$") {
        if let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&body) {
            for (k, v) in map.iter_mut() {
                if k.ends_with("@odata.bind") || k == "@odata.id" {
                    substitute(v, refs)?;
                }
            }
            body = serde_json::to_vec(&Value::Object(map)).unwrap_or(body);
        }
    }
    Ok((
        OpRequest {
            method: part.method.clone(),
            path: path.to_string(),
            query: query.to_string(),
            headers: part.headers.clone(),
            body,
        },
        version,
    ))
}

fn run_part(
    shared: &Shared,
    ctx: &Ctx,
    store: &mut crate::state::Store,
    part: &Part,
    refs: &HashMap<String, String>,
    undo: &mut Vec<crate::state::Undo>,
) -> OpResponse {
    Stats::inc(&shared.stats.operations);
    let resp = match to_request(part, ctx.base, refs) {
        Ok((req, version)) => {
            let version = version.unwrap_or_else(|| ctx.version.to_string());
            let inner = Ctx {
                version: &version,
                ..*ctx
            };
            webapi::execute(&inner, store, &req, undo)
        }
        Err(e) => e.into_response(),
    };
    if resp.is_error() {
        Stats::inc(&shared.stats.operations_failed);
    }
    resp
}

/// Whether the outer request asked for `odata.continue-on-error` (also the unprefixed form the
/// ABNF allows, and `=true`).
pub fn continue_on_error(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("prefer"))
        .flat_map(|(_, v)| v.split(','))
        .any(|p| {
            let p = p.trim().to_ascii_lowercase();
            let (name, val) = p.split_once('=').unwrap_or((&p, "true"));
            matches!(name.trim(), "odata.continue-on-error" | "continue-on-error")
                && val.trim() != "false"
        })
}

/// Parses and executes a batch; an error is the JSON answer for a batch refused as a whole.
pub fn execute(
    shared: &Shared,
    ctx: &Ctx,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<BatchOutcome, ApiError> {
    let content_type = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map_or("", |(_, v)| v.as_str());
    if content_type
        .trim()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        // Dataverse documents only multipart/mixed batches (execute-batch-operations-using-web-api.md);
        // the OData 4.01 JSON batch format is refused. Wording UNVERIFIED.
        return Err(ApiError::bad_request(
            "The JSON batch format is not supported. Use a multipart/mixed $batch request.",
        ));
    }
    let items = parser::parse(content_type, body).map_err(|e| ApiError::bad_request(e.0))?;
    let operations: usize = items.iter().map(Item::len).sum();
    let max = shared.limits.config().max_batch_operations;
    if operations > max {
        // Text from AleksandrRogov/DynamicsWebApi#71 (PROTOCOL.md §7.2); status 400 UNVERIFIED.
        return Err(ApiError::bad_request(format!(
            "The current change set contains too many operations. A maximum number of '{max}' operations are allowed in a change set"
        )));
    }
    for item in &items {
        if let Item::ChangeSet(parts) = item
            && parts.iter().any(|p| p.method == "GET")
        {
            return Err(ApiError::bad_request(
                "A change set cannot contain a GET request.",
            ));
        }
    }
    let coe = continue_on_error(headers);
    let mut responses = Vec::new();
    let mut stopped = false;
    for item in &items {
        match item {
            Item::Single(part) => {
                let mut undo = Vec::new();
                let resp = {
                    let mut store = shared.store();
                    run_part(shared, ctx, &mut store, part, &HashMap::new(), &mut undo)
                };
                let failed = resp.is_error();
                responses.push(ItemResponse::Single(resp));
                if failed && !coe {
                    stopped = true;
                    break;
                }
            }
            Item::ChangeSet(parts) => {
                let mut store = shared.store();
                let mut undo = Vec::new();
                let mut refs: HashMap<String, String> = HashMap::new();
                let mut done = Vec::new();
                let mut failure = None;
                for part in parts {
                    let resp = run_part(shared, ctx, &mut store, part, &refs, &mut undo);
                    if resp.is_error() {
                        failure = Some((part.content_id.clone(), resp));
                        break;
                    }
                    if let (Some(id), Some(url)) = (&part.content_id, &resp.entity_id) {
                        refs.insert(id.clone(), url.clone());
                    }
                    done.push((part.content_id.clone(), resp));
                }
                match failure {
                    Some(f) => {
                        // The whole change set is rolled back; Dataverse answers a nested
                        // changesetresponse holding only the failing part (PROTOCOL.md fact 16).
                        store.rollback(undo);
                        Stats::inc(&shared.stats.change_sets_rolled_back);
                        responses.push(ItemResponse::ChangeSet(vec![f]));
                        if !coe {
                            stopped = true;
                            break;
                        }
                    }
                    None => responses.push(ItemResponse::ChangeSet(done)),
                }
            }
        }
    }
    let (content_type, body) = encoder::encode(&responses);
    Ok(BatchOutcome {
        status: if stopped { 400 } else { 200 },
        content_type,
        body,
        operations,
    })
}
