//! The optional-behaviour headers a request may carry (PROTOCOL.md §9): each value checked, each
//! privilege required, and every `MSCRM.*` header the emulator does not implement refused, never
//! ignored (an ignored header lets a test pass that the service would answer differently).
//!
//! Sources: "Bypass custom Dataverse logic" (learn.microsoft.com/power-apps/developer/
//! data-platform/bypass-custom-business-logic): `MSCRM.BypassBusinessLogicExecution` takes
//! `CustomSync`, `CustomAsync` or both and needs `prvBypassCustomBusinessLogic`;
//! `MSCRM.BypassBusinessLogicExecutionStepIds` takes up to three plug-in step ids (the
//! `BypassBusinessLogicExecutionStepIdsLimit` default) and needs the same privilege;
//! `MSCRM.BypassCustomPluginExecution: true` needs `prvBypassCustomPlugins`. "Compose HTTP
//! requests" (…/webapi/compose-http-requests-handle-errors): `MSCRM.SuppressDuplicateDetection` and
//! `MSCRM.SuppressCallbackRegistrationExpanderJob` take `true`/`false`. The emulator runs no
//! plug-ins, flows or duplicate rules, so a header that asks to skip them changes nothing once
//! allowed. Refused as the emulator's limit (400 `0x0`): impersonation (`MSCRM.CallerID`,
//! `CallerObjectId`), `MSCRM.SolutionUniqueName`, and any other `MSCRM.*` header.

use super::{Ctx, OpRequest};
use crate::error::ApiError;

/// Privileges the headers need (the superuser holds them).
pub const PRIVILEGES: &[&str] = &["prvBypassCustomBusinessLogic", "prvBypassCustomPlugins"];

fn invalid(name: &str, value: &str, accepted: &str) -> ApiError {
    ApiError::invalid_argument(format!(
        "The value '{value}' of the header {name} is not valid; accepted: {accepted}"
    ))
}

fn unsupported(name: &str) -> ApiError {
    ApiError::emulator_limit(format!("The header {name}"))
}

fn boolean(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(name, value, "true, false")),
    }
}

/// The headers' documented spellings (HTTP/1.1 stacks may lower-case what they pass on).
const NAMES: &[&str] = &[
    "MSCRM.BypassBusinessLogicExecution",
    "MSCRM.BypassBusinessLogicExecutionStepIds",
    "MSCRM.BypassCustomPluginExecution",
    "MSCRM.SuppressDuplicateDetection",
    "MSCRM.SuppressCallbackRegistrationExpanderJob",
    "MSCRM.SolutionUniqueName",
    "MSCRM.CallerID",
    "MSCRM.SessionToken",
    "CallerObjectId",
];

/// Checks the optional-behaviour headers of `req`.
pub fn check(ctx: &Ctx, req: &OpRequest) -> Result<(), ApiError> {
    for (received, value) in &req.headers {
        // Every request and `$batch` part passes here: the other headers cost a comparison.
        let ours = received
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("mscrm."))
            || received.eq_ignore_ascii_case("callerobjectid");
        if !ours {
            continue;
        }
        let value = value.trim();
        let lower = received.to_ascii_lowercase();
        let name = NAMES
            .iter()
            .find(|n| n.eq_ignore_ascii_case(received))
            .copied()
            .unwrap_or(received.as_str());
        match lower.as_str() {
            "mscrm.bypassbusinesslogicexecution" => {
                let parts: Vec<&str> = value.split(',').map(str::trim).collect();
                let known = |p: &&str| matches!(*p, "CustomSync" | "CustomAsync");
                if parts.is_empty() || !parts.iter().all(known) {
                    return Err(invalid(
                        name,
                        value,
                        "CustomSync, CustomAsync, CustomSync,CustomAsync",
                    ));
                }
                ctx.user.require_global("prvBypassCustomBusinessLogic")?;
            }
            "mscrm.bypassbusinesslogicexecutionstepids" => {
                let ids: Vec<&str> = value.trim_matches('"').split(',').map(str::trim).collect();
                if ids.len() > 3 || ids.iter().any(|id| id.parse::<uuid::Uuid>().is_err()) {
                    return Err(invalid(
                        name,
                        value,
                        "up to 3 plug-in step ids, separated by commas",
                    ));
                }
                ctx.user.require_global("prvBypassCustomBusinessLogic")?;
            }
            "mscrm.bypasscustompluginexecution" => {
                let bypass = boolean(name, value)?;
                if bypass {
                    ctx.user.require_global("prvBypassCustomPlugins")?;
                }
            }
            "mscrm.suppressduplicatedetection"
            | "mscrm.suppresscallbackregistrationexpanderjob" => {
                boolean(name, value)?;
            }
            "callerobjectid" => return Err(unsupported(name)),
            other if other.starts_with("mscrm.") => return Err(unsupported(name)),
            _ => {}
        }
    }
    Ok(())
}
