//! Bearer validation for the Web API, application users and their table privileges.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::catalog::Table;
use crate::config::{Config, Right};
use crate::entra::tokens::AccessClaims;
use crate::error::{ApiError, OpResponse};
use crate::shared::Shared;

/// A Dataverse application user with the privileges of its roles.
#[derive(Debug, Clone)]
pub struct AppUser {
    /// `systemuserid`.
    pub systemuser_id: Uuid,
    /// The app registration's client id.
    pub app_id: String,
    /// `fullname`: the app registration's display name, as the admin centre names application
    /// users after their app.
    pub name: String,
    /// Rights per table logical name.
    pub privileges: HashMap<String, HashSet<Right>>,
    /// Privileges not bound to a table (`prvBulkDelete`).
    pub global: HashSet<String>,
    /// Names of its security roles.
    pub roles: Vec<String>,
    /// Disabled users are refused.
    pub disabled: bool,
}

impl AppUser {
    /// A user with every right on every table (for in-process tools and tests).
    pub fn superuser(config: &Config) -> Self {
        AppUser {
            systemuser_id: Uuid::nil(),
            app_id: String::new(),
            name: String::new(),
            privileges: config
                .tables
                .iter()
                .map(|t| (t.logical_name.clone(), Right::ALL.into_iter().collect()))
                .collect(),
            global: crate::webapi::messages::privileges()
                .chain(crate::webapi::headers::PRIVILEGES.iter().copied())
                .map(str::to_string)
                .collect(),
            roles: vec!["System Administrator".into()],
            disabled: false,
        }
    }

    /// Checks `right` on `table`; a missing privilege is Dataverse's 403 naming it, e.g.
    /// `prvCreateAccount` (message shape from Dataverse SecLib errors quoted in
    /// microsoft/PowerApps-Samples#235 and rappen/FetchXMLBuilder#770; code 0x80040220).
    pub fn require(&self, table: &Table, right: Right) -> Result<(), ApiError> {
        if self
            .privileges
            .get(table.logical())
            .is_some_and(|r| r.contains(&right))
        {
            return Ok(());
        }
        let name = table.privilege(right);
        Err(self.missing(
            &name,
            &format!(
                " on OTC={} for entity '{}'",
                table.cfg.object_type_code,
                table.logical()
            ),
        ))
    }

    /// Checks a privilege not bound to a table (`prvBulkDelete`).
    pub fn require_global(&self, name: &str) -> Result<(), ApiError> {
        if self.global.contains(name) {
            return Ok(());
        }
        Err(self.missing(name, ""))
    }

    /// The 403 for a missing privilege; `scope` names the table for a table privilege.
    fn missing(&self, name: &str, scope: &str) -> ApiError {
        let privilege_id = crate::webapi::metadata::metadata_id(&["privilege", name]);
        let count: usize =
            self.privileges.values().map(HashSet::len).sum::<usize>() + self.global.len();
        ApiError::new(
            403,
            "0x80040220",
            format!(
                "Principal user (Id={}, type=8, roleCount={}, privilegeCount={}, accessMode=4), is missing {} privilege (Id={}){}. context.Caller={}",
                self.systemuser_id,
                self.roles.len(),
                count,
                name,
                privilege_id,
                scope,
                self.systemuser_id
            ),
        )
    }
}

/// Application users by lower-cased client id.
pub fn build_users(config: &Config) -> Result<HashMap<String, AppUser>, String> {
    let mut out = HashMap::new();
    for u in &config.application_users {
        let id: Uuid = u.systemuser_id.parse().map_err(|_| {
            format!(
                "application user '{}': systemuser_id is not a GUID",
                u.app_id
            )
        })?;
        let mut privileges: HashMap<String, HashSet<Right>> = HashMap::new();
        let mut global = HashSet::new();
        for role_name in &u.roles {
            let Some(role) = config.roles.iter().find(|r| &r.name == role_name) else {
                return Err(format!(
                    "application user '{}' has unknown role '{role_name}'",
                    u.app_id
                ));
            };
            global.extend(role.global.iter().cloned());
            for p in &role.privileges {
                privileges
                    .entry(p.table.clone())
                    .or_default()
                    .extend(p.rights.iter().copied());
            }
        }
        out.insert(
            u.app_id.to_lowercase(),
            AppUser {
                systemuser_id: id,
                app_id: u.app_id.clone(),
                name: config
                    .apps
                    .iter()
                    .find(|a| a.client_id.eq_ignore_ascii_case(&u.app_id))
                    .map_or_else(|| u.app_id.clone(), |a| a.name.clone()),
                privileges,
                global,
                roles: u.roles.clone(),
                disabled: u.disabled,
            },
        );
    }
    Ok(out)
}

/// The 401 challenge: `WWW-Authenticate: Bearer authorization_uri=…, resource_id=…`
/// (format from PowerPlatform-DataverseServiceClient AuthorityResolver, PROTOCOL.md §13.1).
pub fn challenge(shared: &Shared) -> OpResponse {
    let tenant = shared
        .config
        .tenants
        .first()
        .map_or("common", |t| t.id.as_str());
    OpResponse {
        status: 401,
        headers: vec![
            (
                "WWW-Authenticate".into(),
                format!(
                    "Bearer authorization_uri={}/{}/oauth2/authorize, resource_id={}/",
                    shared.base_url, tenant, shared.base_url
                ),
            ),
            ("OData-Version".into(), "4.0".into()),
        ],
        body: Vec::new(),
        entity_id: None,
    }
}

/// Why a request was refused.
#[derive(Debug)]
pub enum Refusal {
    /// 401 with the challenge.
    Unauthorized,
    /// 403 (no application user, or a disabled one).
    Forbidden(ApiError),
}

/// Validates `Authorization: Bearer …`: signature, `aud` = the org URL, `exp`/`nbf`, tenant,
/// not revoked; then finds the application user by `appid`. Returns the token's unique id too.
pub fn authenticate(
    shared: &Shared,
    authorization: Option<&str>,
) -> Result<(AccessClaims, AppUser), Refusal> {
    let Some(token) = authorization.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    }) else {
        return Err(Refusal::Unauthorized);
    };
    let claims = match shared.token_cache_get(token) {
        Some(c) => c,
        None => {
            let Some(c) = shared.issuer.verify(token) else {
                return Err(Refusal::Unauthorized);
            };
            shared.token_cache_put(token, &c);
            c
        }
    };
    let now = jiff::Timestamp::now().as_second();
    let aud = claims.aud.trim_end_matches('/');
    if claims.exp <= now
        || claims.nbf > now + 300
        || aud != shared.base_url
        || !shared
            .config
            .tenants
            .iter()
            .any(|t| t.id.eq_ignore_ascii_case(&claims.tid))
        || shared.is_revoked(&claims.uti)
    {
        return Err(Refusal::Unauthorized);
    }
    match shared.users.get(&claims.appid.to_lowercase()) {
        Some(u) if !u.disabled => Ok((claims, u.clone())),
        // A disabled user: 403, 0x80040225 "The specified user is disabled." (a Web API answer
        // quoted in microsoft/coe-starter-kit#8177).
        Some(_) => Err(Refusal::Forbidden(ApiError::new(
            403,
            "0x80040225",
            "The specified user is disabled.",
        ))),
        // An app with no application user: 0x80072560 "The user is not a member of
        // the organization." (seen in microsoft/powercat-business-approvals-kit#135, #293).
        None => Err(Refusal::Forbidden(ApiError::new(
            403,
            "0x80072560",
            "The user is not a member of the organization.",
        ))),
    }
}
