//! Query options a request may carry: every option a route does not implement is refused.
//!
//! The service refuses a query parameter it does not know with 400, code `0x0` and
//! `The query parameter {name} is not supported` (an answer to `?utm_source=…` quoted in
//! rappen/FetchXMLBuilder#437; `?sql=…` on an environment without that preview feature is refused
//! the same way, microsoft/PowerPlatform-DataverseClient-Python#74). An option the service knows
//! but the emulator does not implement on that route (`$expand` on a record, `$apply`,
//! `fetchXml`, parameter aliases) is refused with the same status and code and a message that
//! says so: an emulator that ignored it would answer 200 with data the service would not send.

use crate::error::ApiError;

use super::OpRequest;

/// Options the service understands on some request, with or without the emulator.
const SERVICE_OPTIONS: [&str; 12] = [
    "$select",
    "$filter",
    "$orderby",
    "$top",
    "$expand",
    "$count",
    "$apply",
    "$skiptoken",
    "fetchXml",
    "savedQuery",
    "userQuery",
    "$search",
];

/// What each route implements.
pub mod allowed {
    /// An entity set's read (`GET accounts`): a collection read, or FetchXML.
    pub const ENTITY_SET: &[&str] = &[
        "$select",
        "$filter",
        "$orderby",
        "$top",
        "$count",
        "$skiptoken",
        "$expand",
        "fetchXml",
    ];
    /// A collection read (`GET accounts(id)/contact_customer_accounts`, and an entity set's
    /// without FetchXML), with `$expand` of single-valued navigation properties.
    pub const COLLECTION: &[&str] = ENTITY_SET.split_at(ENTITY_SET.len() - 1).0;
    /// A single-record read: `$select`, and `$expand` of single-valued navigation properties.
    pub const RECORD_READ: &[&str] = &["$select", "$expand"];
    /// A create or update (`$select` shapes `return=representation`).
    pub const RECORD: &[&str] = &["$select"];
    /// Metadata reads (`EntityDefinitions…`).
    pub const METADATA: &[&str] = &["$select", "$filter", "$expand"];
    /// Nothing: deletes, properties, references, actions, `WhoAmI`, `$metadata`, `/$count`.
    pub const NONE: &[&str] = &[];
}

/// Refuses a request whose query carries an option outside `implemented`, or one option twice.
pub fn check(req: &OpRequest, implemented: &[&str]) -> Result<(), ApiError> {
    let pairs = req.query_pairs();
    for (i, (name, _)) in pairs.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        if pairs[..i].iter().any(|(n, _)| n == name) {
            // Microsoft.OData.Core's text for a repeated system query option.
            return Err(ApiError::bad_request(format!(
                "Query option '{name}' was specified more than once, but it must be specified at most once."
            )));
        }
        if implemented.contains(&name.as_str()) {
            continue;
        }
        let known = SERVICE_OPTIONS.contains(&name.as_str()) || name.starts_with('@');
        return Err(ApiError::bad_request(if known {
            format!(
                "The query parameter {name} is not supported by the emulator on this request (the service would answer it; see the emulator's docs)."
            )
        } else {
            format!("The query parameter {name} is not supported")
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &str) -> OpRequest {
        OpRequest {
            method: "GET".into(),
            query: query.into(),
            ..OpRequest::default()
        }
    }

    #[test]
    fn refuses_what_the_route_does_not_implement() {
        assert!(check(&req("$select=name&$top=2"), allowed::COLLECTION).is_ok());
        assert!(check(&req(""), allowed::NONE).is_ok());
        let e = check(&req("utm_source=x"), allowed::COLLECTION).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str(), e.message.as_str()),
            (
                400,
                "0x0",
                "The query parameter utm_source is not supported"
            )
        );
        let e = check(&req("$expand=primarycontactid"), allowed::RECORD).unwrap_err();
        assert!(
            e.message
                .contains("$expand is not supported by the emulator")
        );
        let e = check(&req("@p1='x'"), allowed::COLLECTION).unwrap_err();
        assert!(e.message.contains("@p1"), "{}", e.message);
        let e = check(&req("$select=name&$select=name"), allowed::RECORD).unwrap_err();
        assert!(e.message.contains("specified more than once"));
        // Percent-encoded names are decoded before they are judged.
        assert!(check(&req("%24select=name"), allowed::RECORD).is_ok());
    }
}
