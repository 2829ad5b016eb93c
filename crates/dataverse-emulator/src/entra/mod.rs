//! The Entra ID emulator on the same host: token endpoints (v2 and v1), discovery documents.
//!
//! Wire formats from v2-oauth2-client-creds-grant-flow.md, the v1 client-credentials page,
//! certificate-credentials.md and v2-protocols-oidc.md (PROTOCOL.md §13).

pub mod assertion;
pub mod errors;
pub mod tokens;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::config::{AppConfig, TenantConfig};
use crate::shared::Shared;
use crate::stats::Stats;
use errors::EntraError;
use tokens::AccessClaims;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn json_response(status: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store, no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn find_tenant<'a>(shared: &'a Shared, tenant: &str) -> Result<&'a TenantConfig, EntraError> {
    if ["common", "consumers", "organizations"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(tenant))
    {
        return Err(EntraError::multi_tenant_endpoint());
    }
    shared
        .config
        .tenants
        .iter()
        .find(|t| {
            t.id.eq_ignore_ascii_case(tenant)
                || t.domains.iter().any(|d| d.eq_ignore_ascii_case(tenant))
        })
        .ok_or_else(|| EntraError::unknown_tenant(tenant))
}

/// `POST /{tenant}/oauth2/v2.0/token`
pub async fn token_v2(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(&shared, &tenant, &headers, &body, true)
}

/// `POST /{tenant}/oauth2/token` (v1: `resource`, string-typed `expires_in`).
pub async fn token_v1(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    token(&shared, &tenant, &headers, &body, false)
}

fn token(shared: &Shared, tenant: &str, headers: &HeaderMap, body: &[u8], v2: bool) -> Response {
    let correlation = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    match issue(shared, tenant, headers, body, v2) {
        Ok(v) => {
            Stats::inc(&shared.stats.tokens_issued);
            json_response(200, &v)
        }
        Err(e) => {
            Stats::inc(&shared.stats.token_errors);
            json_response(e.status, &e.body(&shared.base_url, &correlation))
        }
    }
}

fn issue(
    shared: &Shared,
    tenant_segment: &str,
    headers: &HeaderMap,
    body: &[u8],
    v2: bool,
) -> Result<Value, EntraError> {
    let form: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let tenant = find_tenant(shared, tenant_segment)?;
    let Some(grant) = get("grant_type") else {
        return Err(EntraError::missing_parameter("grant_type"));
    };
    if grant != "client_credentials" {
        return Err(EntraError::unsupported_grant(&grant));
    }
    // client_secret_basic (RFC 6749 §2.3.1) is accepted as well as client_secret_post.
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let dec = |x: &str| {
                percent_encoding::percent_decode_str(x)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            Some((dec(id), dec(secret)))
        });
    let Some(client_id) = get("client_id").or_else(|| basic.as_ref().map(|b| b.0.clone())) else {
        return Err(EntraError::missing_parameter("client_id"));
    };
    let app: &AppConfig = shared
        .config
        .apps
        .iter()
        .find(|a| {
            a.client_id.eq_ignore_ascii_case(&client_id)
                && a.tenant_id.eq_ignore_ascii_case(&tenant.id)
        })
        .ok_or_else(|| EntraError::unknown_app(&client_id, &tenant.id))?;
    // Resource.
    let resource = if v2 {
        if get("resource").is_some() {
            return Err(EntraError::resource_on_v2());
        }
        let Some(scope) = get("scope") else {
            return Err(EntraError::missing_parameter("scope"));
        };
        let scopes: Vec<&str> = scope.split_whitespace().collect();
        if scopes.len() != 1 {
            return Err(EntraError::invalid_scope(&scope));
        }
        let Some(resource) = scopes[0].strip_suffix("/.default") else {
            return Err(EntraError::invalid_scope(&scope));
        };
        resource.to_string()
    } else {
        get("resource").ok_or_else(|| EntraError::missing_parameter("resource"))?
    };
    if resource.trim_end_matches('/') != shared.base_url {
        return Err(EntraError::unknown_resource(&resource, &tenant.id));
    }
    // Credential.
    let now = jiff::Timestamp::now();
    let secret = get("client_secret").or_else(|| basic.as_ref().map(|b| b.1.clone()));
    let appidacr = if let Some(assertion) = get("client_assertion") {
        if get("client_assertion_type").as_deref() != Some(ASSERTION_TYPE) {
            return Err(EntraError::missing_parameter("client_assertion_type"));
        }
        let certs = shared
            .certs
            .get(&app.client_id.to_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let audiences: Vec<String> = [tenant_segment, tenant.id.as_str()]
            .iter()
            .flat_map(|t| {
                [
                    format!("{}/{t}/oauth2/v2.0/token", shared.base_url),
                    format!("{}/{t}/oauth2/token", shared.base_url),
                ]
            })
            .collect();
        assertion::validate(
            &assertion,
            &app.client_id,
            certs,
            &audiences,
            shared.config.tokens.assertion_leeway_secs,
        )?;
        "2"
    } else if let Some(secret) = secret {
        let Some(s) = app.secrets.iter().find(|s| s.value == secret) else {
            return Err(EntraError::invalid_secret(&app.client_id));
        };
        if let Some(exp) = &s.expires
            && exp.parse::<jiff::Timestamp>().is_ok_and(|e| e <= now)
        {
            return Err(EntraError::expired_secret(&app.client_id));
        }
        "1"
    } else {
        return Err(EntraError::no_credential());
    };
    let lifetime = *shared
        .token_lifetime
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let iat = now.as_second();
    let claims = AccessClaims {
        aud: resource.clone(),
        iss: format!("{}/{}/", shared.base_url, tenant.id),
        iat,
        nbf: iat,
        exp: iat + lifetime as i64,
        appid: app.client_id.clone(),
        appidacr: appidacr.into(),
        oid: app.object_id.clone(),
        sub: app.object_id.clone(),
        tid: tenant.id.clone(),
        uti: uuid::Uuid::new_v4().simple().to_string(),
        idtyp: "app".into(),
        ver: "1.0".into(),
    };
    shared.record_issued(&claims.uti);
    let token = shared.issuer.issue(&claims);
    Ok(if v2 {
        json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token})
    } else {
        json!({
            "token_type": "Bearer",
            "expires_in": lifetime.to_string(),
            "ext_expires_in": lifetime.to_string(),
            "expires_on": (iat + lifetime as i64).to_string(),
            "not_before": iat.to_string(),
            "resource": resource,
            "access_token": token,
        })
    })
}

fn tenant_for_doc(shared: &Shared, tenant: &str) -> Result<String, EntraError> {
    if ["common", "organizations", "consumers"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(tenant))
    {
        return Ok(tenant.to_string());
    }
    find_tenant(shared, tenant).map(|t| t.id.clone())
}

fn oidc_document(shared: &Shared, tenant_segment: &str, v2: bool) -> Result<Value, EntraError> {
    let tid = tenant_for_doc(shared, tenant_segment)?;
    let b = &shared.base_url;
    let t = tenant_segment;
    let multi =
        tid == tenant_segment && ["common", "organizations", "consumers"].contains(&tid.as_str());
    let issuer_tid = if multi { "{tenantid}" } else { tid.as_str() };
    let (v, issuer) = if v2 {
        ("/v2.0", format!("{b}/{issuer_tid}/v2.0"))
    } else {
        ("", format!("{b}/{issuer_tid}/"))
    };
    Ok(json!({
        "token_endpoint": format!("{b}/{t}/oauth2{v}/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/{t}/discovery{v}/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{b}/oidc/userinfo"),
        "authorization_endpoint": format!("{b}/{t}/oauth2{v}/authorize"),
        "device_authorization_endpoint": format!("{b}/{t}/oauth2{v}/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{b}/{t}/oauth2{v}/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "tid", "ver", "oid"],
        "kerberos_endpoint": format!("{b}/{t}/kerberos"),
        "tenant_region_scope": "NA",
        "cloud_instance_name": shared.base_url.split("://").nth(1).unwrap_or("127.0.0.1"),
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
}

fn doc_response(shared: &Shared, r: Result<Value, EntraError>) -> Response {
    match r {
        Ok(v) => json_response(200, &v),
        Err(e) => json_response(
            e.status,
            &e.body(&shared.base_url, &uuid::Uuid::new_v4().to_string()),
        ),
    }
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`
pub async fn openid_v2(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Response {
    doc_response(&shared, oidc_document(&shared, &tenant, true))
}

/// `GET /{tenant}/.well-known/openid-configuration` (v1)
pub async fn openid_v1(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Response {
    doc_response(&shared, oidc_document(&shared, &tenant, false))
}

/// `GET /{tenant}/discovery/v2.0/keys` and `/{tenant}/discovery/keys`
pub async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    json_response(200, &shared.issuer.jwks())
}

/// `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=…`: the instance
/// discovery MSAL performs first; this emulator is its own (only) cloud alias.
pub async fn instance_discovery(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let host = shared
        .base_url
        .split("://")
        .nth(1)
        .unwrap_or("127.0.0.1")
        .to_string();
    let tenant = q
        .get("authorization_endpoint")
        .and_then(|a| a.split("://").nth(1))
        .and_then(|rest| rest.split('/').nth(1))
        .filter(|t| !t.is_empty())
        .unwrap_or("common")
        .to_string();
    json_response(
        200,
        &json!({
            "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", shared.base_url),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }),
    )
}
