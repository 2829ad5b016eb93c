//! Unbound messages the emulator knows by name but does not carry out: privileges first.
//!
//! The service checks the caller's privileges before it runs a message, so a caller without the
//! privilege gets 403 naming it whatever the message would have done (the SecLib error of
//! `AppUser::require`). A caller with the privilege gets 501: the emulator does not run the
//! message, and says so, rather than 404 (which a client takes for a transient routing fault and
//! retries) or a 200 that did nothing.

use crate::error::ApiError;

use super::Ctx;

/// A message, the privilege it needs (if any), and the source of that requirement.
struct Message {
    name: &'static str,
    privilege: Option<&'static str>,
    /// The emulator carries it out (see `jobs`): refused only for the privilege.
    implemented: bool,
}

/// Messages by name. Privilege names: `BulkDelete` needs `prvBulkDelete`
/// (delete-data-bulk.md); creating and changing tables and columns need `prvCreateEntity`,
/// `prvWriteEntity`, `prvDeleteEntity`, `prvCreateAttribute` (the System Customizer role's
/// privileges, security-roles-privileges.md); solutions `prvImportCustomization`,
/// `prvExportCustomization`, `prvPublishCustomization` (same source).
const MESSAGES: &[Message] = &[
    Message {
        name: "BulkDelete",
        privilege: Some("prvBulkDelete"),
        implemented: true,
    },
    Message {
        name: "CreateEntity",
        privilege: Some("prvCreateEntity"),
        implemented: false,
    },
    Message {
        name: "CreateEntities",
        privilege: Some("prvCreateEntity"),
        implemented: false,
    },
    Message {
        name: "UpdateEntity",
        privilege: Some("prvWriteEntity"),
        implemented: false,
    },
    Message {
        name: "DeleteEntity",
        privilege: Some("prvDeleteEntity"),
        implemented: false,
    },
    Message {
        name: "CreateAttribute",
        privilege: Some("prvCreateAttribute"),
        implemented: false,
    },
    Message {
        name: "ImportSolution",
        privilege: Some("prvImportCustomization"),
        implemented: false,
    },
    Message {
        name: "ExportSolution",
        privilege: Some("prvExportCustomization"),
        implemented: false,
    },
    Message {
        name: "PublishXml",
        privilege: Some("prvPublishCustomization"),
        implemented: false,
    },
    Message {
        name: "PublishAllXml",
        privilege: Some("prvPublishCustomization"),
        implemented: false,
    },
    // Functions every user may call.
    Message {
        name: "RetrieveMetadataChanges",
        privilege: None,
        implemented: true,
    },
    // Metadata entity sets the service has beside EntityDefinitions (query-metadata-web-api.md).
    Message {
        name: "RelationshipDefinitions",
        privilege: None,
        implemented: false,
    },
    Message {
        name: "RetrieveTotalRecordCount",
        privilege: None,
        implemented: false,
    },
    Message {
        name: "RetrieveEntityChanges",
        privilege: None,
        implemented: false,
    },
];

/// Every privilege a message here needs (the superuser holds them all).
pub fn privileges() -> impl Iterator<Item = &'static str> {
    MESSAGES.iter().filter_map(|m| m.privilege)
}

/// The message a first path segment names (`BulkDelete`, `Microsoft.Dynamics.CRM.BulkDelete`,
/// `RetrieveMetadataChanges(Query=@p1)`), if it is one of [`MESSAGES`].
fn named(segment: &str) -> Option<&'static Message> {
    let name = segment
        .strip_prefix("Microsoft.Dynamics.CRM.")
        .unwrap_or(segment);
    let name = name.split('(').next().unwrap_or(name);
    MESSAGES.iter().find(|m| m.name == name)
}

/// `Some(error)` when `segment` names a known message: 403 without its privilege, else 501.
pub fn refuse(ctx: &Ctx, segment: &str) -> Option<ApiError> {
    let message = named(segment)?;
    if let Some(privilege) = message.privilege
        && let Err(e) = ctx.user.require_global(privilege)
    {
        return Some(e);
    }
    if message.implemented {
        return None;
    }
    Some(ApiError::new(
        501,
        "",
        format!(
            "The emulator does not implement the {} message (the service does); see docs/emulator.md.",
            message.name
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_in_every_spelling_and_their_privileges_listed() {
        assert_eq!(named("BulkDelete").unwrap().name, "BulkDelete");
        assert_eq!(
            named("Microsoft.Dynamics.CRM.BulkDelete").unwrap().name,
            "BulkDelete"
        );
        assert_eq!(
            named("RetrieveMetadataChanges(Query=@p1)").unwrap().name,
            "RetrieveMetadataChanges"
        );
        assert!(named("accounts").is_none());
        assert!(privileges().any(|p| p == "prvBulkDelete"));
    }
}
