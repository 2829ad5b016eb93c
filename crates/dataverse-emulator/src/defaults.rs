//! Fixed identifiers of the built-in configuration, so that tests and docs can use them.

/// Tenant (directory) id of the built-in configuration.
pub const TENANT_ID: &str = "11111111-1111-1111-1111-111111111111";
/// Application (client) id of the built-in app registration.
pub const CLIENT_ID: &str = "22222222-2222-2222-2222-222222222222";
/// Client secret of the built-in app registration (never a real credential).
pub const CLIENT_SECRET: &str = "emulator-secret";
/// `systemuserid` of the built-in application user (what `WhoAmI` returns as `UserId`).
pub const APP_USER_ID: &str = "33333333-3333-3333-3333-333333333333";
/// Entra object id (`oid`) of the built-in app's service principal.
pub const SERVICE_PRINCIPAL_OBJECT_ID: &str = "44444444-4444-4444-4444-444444444444";
/// Business unit id of the built-in organization.
pub const BUSINESS_UNIT_ID: &str = "55555555-5555-5555-5555-555555555555";
/// Organization id of the built-in organization.
pub const ORGANIZATION_ID: &str = "66666666-6666-6666-6666-666666666666";
/// Name of the custom security role of the built-in application user.
pub const ROLE_NAME: &str = "dvload loader";
