//! The emulator's TOML configuration: identities, table catalogue, limits, faults.
//!
//! `Config` is what the user writes; [`crate::catalog::Catalog`] is the validated runtime form of
//! its table part. `Config::default()` is the built-in configuration (see [`crate::builtin`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Error reading or validating a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file '{path}': {cause}")]
    Io {
        /// The file.
        path: String,
        /// The cause (in the message, so not a `source`: it is said once).
        cause: std::io::Error,
    },
    /// The TOML is malformed or has unknown/mistyped keys.
    #[error("config file '{path}' line {line}, column {column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The configuration parses but is inconsistent (e.g. a lookup to an unknown table).
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole emulator configuration. Unknown keys are errors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Seed of every random choice (fault injection, generated ids).
    pub seed: u64,
    /// The Dataverse organization.
    pub organization: OrganizationConfig,
    /// Access tokens issued by the Entra emulator.
    pub tokens: TokenConfig,
    /// Entra tenants.
    pub tenants: Vec<TenantConfig>,
    /// App registrations (client ids with their credentials).
    pub apps: Vec<AppConfig>,
    /// Dataverse application users bound to app registrations.
    pub application_users: Vec<ApplicationUserConfig>,
    /// Security roles.
    pub roles: Vec<RoleConfig>,
    /// Global option sets (choices), which columns name by `global_option_set`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub global_option_sets: Vec<GlobalOptionSetConfig>,
    /// Table catalogue.
    pub tables: Vec<TableConfig>,
    /// Service protection limits.
    pub limits: LimitsConfig,
    /// Fault injection.
    pub faults: FaultsConfig,
    /// Validation switches.
    pub validation: ValidationConfig,
    /// Changes to the environment made while a client runs (an administrator editing a role or
    /// deleting a table), each applied once the emulator has received a number of `$batch`
    /// requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeConfig>,
    /// Rows the environment starts with (its users and teams, reference data), each checked
    /// against its table's columns when the emulator starts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordConfig>,
    /// Solutions, each with the tables it holds: rows of `solution` and `solutioncomponent`
    /// (component type 1, Entity) that clients read to list a solution's tables.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub solutions: Vec<SolutionConfig>,
}

/// A solution and its tables: `[[solutions]]` with `unique_name`, `friendly_name`, `tables`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SolutionConfig {
    /// Its unique name (`ContosoProjects`), what clients ask for.
    pub unique_name: String,
    /// Its display name; the unique name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    /// The logical names of the tables it holds.
    #[serde(default)]
    pub tables: Vec<String>,
}

/// One row the environment starts with: `[[records]]` with `table`, `id` and `fields`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// Table logical name (`systemuser`).
    pub table: String,
    /// Primary id (a GUID).
    pub id: String,
    /// Column values by logical name, as the Web API takes them (text, numbers, booleans;
    /// no lookups).
    #[serde(default, serialize_with = "as_toml")]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// Writes JSON values as the TOML values they are (`teamtype = 0`): serde_json's own numbers
/// would come out as a private structure.
fn as_toml<S: serde::Serializer>(
    fields: &serde_json::Map<String, serde_json::Value>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    fn convert(v: &serde_json::Value) -> Option<toml::Value> {
        Some(match v {
            serde_json::Value::Null => return None,
            serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => toml::Value::Integer(i),
                None => toml::Value::Float(n.as_f64()?),
            },
            serde_json::Value::String(s) => toml::Value::String(s.clone()),
            serde_json::Value::Array(a) => {
                toml::Value::Array(a.iter().filter_map(convert).collect())
            }
            serde_json::Value::Object(o) => toml::Value::Table(
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), convert(v)?)))
                    .collect(),
            ),
        })
    }
    let table: toml::Table = fields
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), convert(v)?)))
        .collect();
    serde::Serialize::serialize(&table, serializer)
}

impl Default for Config {
    /// The built-in configuration: one tenant, one app registration with the default secret, one
    /// application user with a custom role, and the tables account, contact, lead and task.
    fn default() -> Self {
        crate::builtin::builtin_config()
    }
}

impl Config {
    /// An empty configuration (no tenants, no tables), the base for hand-built test configs.
    pub fn empty() -> Self {
        Config {
            seed: 0,
            organization: OrganizationConfig::default(),
            tokens: TokenConfig::default(),
            tenants: Vec::new(),
            apps: Vec::new(),
            application_users: Vec::new(),
            roles: Vec::new(),
            global_option_sets: Vec::new(),
            tables: Vec::new(),
            limits: LimitsConfig::default(),
            faults: FaultsConfig::default(),
            validation: ValidationConfig::default(),
            changes: Vec::new(),
            records: Vec::new(),
            solutions: Vec::new(),
        }
    }

    /// Serialises the configuration as TOML (what `--print-config` prints).
    pub fn to_toml_string(&self) -> String {
        // Serialising plain structs of strings/numbers/vecs cannot fail.
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot serialise config: {e}\n"))
    }

    /// Parses TOML text; errors name the line and column. `origin` names the source in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((0, 0));
            ConfigError::Parse {
                path: origin.to_string(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        crate::catalog::Catalog::build(&config).map_err(ConfigError::Invalid)?;
        Ok(config)
    }

    /// Reads and validates a TOML configuration file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            cause: source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The Dataverse organization (what `WhoAmI` reports).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OrganizationConfig {
    /// `OrganizationId` returned by `WhoAmI`.
    pub id: String,
    /// Root business unit id.
    pub business_unit_id: String,
    /// Display name.
    pub name: String,
    /// Base language (LCID, `organization.languagecode`): it chooses how alternate keys are
    /// compared (see `keys::Collation`); 1033, English, by default.
    pub language_code: u32,
}

impl Default for OrganizationConfig {
    fn default() -> Self {
        OrganizationConfig {
            id: crate::defaults::ORGANIZATION_ID.into(),
            business_unit_id: crate::defaults::BUSINESS_UNIT_ID.into(),
            name: "emulator".into(),
            language_code: 1033,
        }
    }
}

/// Access-token settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// Lifetime of issued access tokens in seconds. Entra answers `expires_in: 3599`
    /// (v2-oauth2-client-creds-grant-flow.md, PROTOCOL.md §13.2), hence the default.
    pub lifetime_secs: u64,
    /// Clock skew tolerated on client-assertion `nbf`/`exp`, in seconds.
    pub assertion_leeway_secs: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            lifetime_secs: 3599,
            assertion_leeway_secs: 300,
        }
    }
}

/// An Entra tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Tenant GUID.
    pub id: String,
    /// Verified domain names that may be used instead of the GUID in token URLs.
    #[serde(default)]
    pub domains: Vec<String>,
}

/// An app registration (service principal) in a tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Application (client) id.
    pub client_id: String,
    /// Tenant that owns the app.
    pub tenant_id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Object id of the service principal (the token's `oid`).
    #[serde(default)]
    pub object_id: String,
    /// Client secrets.
    #[serde(default)]
    pub secrets: Vec<SecretConfig>,
    /// Certificates whose private keys may sign client assertions.
    #[serde(default)]
    pub certificates: Vec<CertificateConfig>,
}

/// A client secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    /// The secret value.
    pub value: String,
    /// Expiry as RFC 3339 (`2030-01-01T00:00:00Z`); absent = never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// A registered certificate (public part only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// PEM text of the X.509 certificate (`-----BEGIN CERTIFICATE-----`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    /// Path of a PEM certificate file (used when `pem` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem_file: Option<String>,
}

/// A Dataverse application user bound to an app registration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApplicationUserConfig {
    /// The app registration's client id.
    pub app_id: String,
    /// The user's `systemuserid`.
    pub systemuser_id: String,
    /// Names of the security roles assigned.
    #[serde(default)]
    pub roles: Vec<String>,
    /// A disabled user is refused (403 0x80040225, "The specified user is disabled.").
    #[serde(default)]
    pub disabled: bool,
}

/// A security role: table privileges.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Role name.
    pub name: String,
    /// Privileges per table.
    #[serde(default)]
    pub privileges: Vec<TablePrivilegesConfig>,
    /// Privileges not bound to a table, by name (`prvBulkDelete`, `prvCreateEntity`, …): the
    /// messages that need them answer 403 without them (see `webapi::messages`).
    #[serde(default)]
    pub global: Vec<String>,
}

/// The privileges a role grants on one table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TablePrivilegesConfig {
    /// Table logical name.
    pub table: String,
    /// Rights granted.
    pub rights: Vec<Right>,
}

/// A table privilege, as in Dataverse's `prv<Right><Table>` names.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// prvCreate
    Create,
    /// prvRead
    Read,
    /// prvWrite
    Write,
    /// prvDelete
    Delete,
    /// prvAppend (set a lookup on this table)
    Append,
    /// prvAppendTo (be the target of a lookup)
    AppendTo,
    /// prvAssign (give a user- or team-owned row another owner)
    Assign,
}

impl Right {
    /// The privilege-name prefix (`prvCreate`, `prvAppendTo`, …).
    pub fn prefix(self) -> &'static str {
        match self {
            Right::Create => "prvCreate",
            Right::Read => "prvRead",
            Right::Write => "prvWrite",
            Right::Delete => "prvDelete",
            Right::Append => "prvAppend",
            Right::AppendTo => "prvAppendTo",
            Right::Assign => "prvAssign",
        }
    }

    /// Its `PrivilegeType` member in metadata (`Create`, `AppendTo`, …).
    pub fn privilege_type(self) -> &'static str {
        &self.prefix()["prv".len()..]
    }

    /// All rights.
    pub const ALL: [Right; 7] = [
        Right::Create,
        Right::Read,
        Right::Write,
        Right::Delete,
        Right::Append,
        Right::AppendTo,
        Right::Assign,
    ];
}

/// A global option set: a named list of options that choice columns of any table share.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GlobalOptionSetConfig {
    /// Its name (`new_region`).
    pub name: String,
    /// Its display name in English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Its options.
    pub options: Vec<OptionConfig>,
}

/// A table of the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// Logical name (`account`).
    pub logical_name: String,
    /// Schema name (`Account`), used in privilege names.
    pub schema_name: String,
    /// Entity set name (`accounts`).
    pub entity_set: String,
    /// Primary id attribute (`accountid`).
    pub primary_id: String,
    /// Primary name attribute (`name`).
    pub primary_name: String,
    /// Object type code.
    #[serde(default)]
    pub object_type_code: i64,
    /// Whether `CreateMultiple`/`UpdateMultiple`/`UpsertMultiple` are available.
    #[serde(default = "yes")]
    pub bulk_operations: bool,
    /// Columns (the primary id column is implicit).
    #[serde(default)]
    pub columns: Vec<ColumnConfig>,
    /// Alternate keys.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Collection-valued navigation properties (one-to-many relationships).
    #[serde(default)]
    pub collections: Vec<CollectionConfig>,
    /// The display name in English (1033); the schema name stands in when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The display name in other languages, by LCID (`{ "1031" = "Firma" }`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// What the table's privilege names carry after `prvCreate`, `prvRead`, …, when it is not
    /// the schema name: `Activity` for every activity table (`prvCreateActivity` for a task),
    /// `User` for `systemuser` (`prvReadUser`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileges_as: Option<String>,
}

fn yes() -> bool {
    true
}

/// A column.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    /// Logical name.
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// Schema name (defaults to the logical name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_name: Option<String>,
    /// Maximum length (String, Memo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Required level.
    #[serde(default, skip_serializing_if = "RequiredLevel::is_none")]
    pub required: RequiredLevel,
    /// Minimum value (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Maximum value (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Precision (Decimal, Money, Double).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
    /// Options (Picklist, MultiSelectPicklist, State, Status); for a Boolean, the labels of
    /// values 1 and 0 (Yes / No when not given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionConfig>,
    /// Target tables (Lookup, Customer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Single-valued navigation properties of a lookup; when empty, a lookup with one target has
    /// one navigation property named like the column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub navigation: Vec<NavigationConfig>,
    /// Read-only (system) column: writing it is an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// The display name in English (1033); the schema name stands in when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// A `DateTime` column's behaviour: `UserLocal` (the default) or `TimeZoneIndependent`
    /// (a `DateOnly` column's is `DateOnly`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<String>,
    /// The global option set whose options this choice column takes (instead of `options`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_option_set: Option<String>,
    /// The display name in other languages, by LCID (`{ "1031" = "Firmenname" }`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
}

impl ColumnConfig {
    /// A column of `kind` with no facets.
    pub fn new(name: &str, kind: ColumnType) -> Self {
        ColumnConfig {
            name: name.into(),
            kind,
            schema_name: None,
            max_length: None,
            required: RequiredLevel::None,
            min: None,
            max: None,
            precision: None,
            options: Vec::new(),
            targets: Vec::new(),
            navigation: Vec::new(),
            read_only: false,
            display_name: None,
            behavior: None,
            global_option_set: None,
            labels: std::collections::BTreeMap::new(),
        }
    }
}

/// Column types (Dataverse `AttributeTypeCode`, with DateOnly and MultiSelectPicklist spelled out).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ColumnType {
    /// Single line of text.
    String,
    /// Multiple lines of text.
    Memo,
    /// Whole number (Edm.Int32).
    Integer,
    /// Big integer (Edm.Int64).
    BigInt,
    /// Decimal number.
    Decimal,
    /// Floating point number.
    Double,
    /// Currency.
    Money,
    /// Yes/No.
    Boolean,
    /// Choice.
    Picklist,
    /// Choices (multi-select), AttributeType `Virtual`.
    MultiSelectPicklist,
    /// Status reason.
    Status,
    /// Status.
    State,
    /// Date and time (behaviour UserLocal).
    DateTime,
    /// Date only (DateTime with behaviour DateOnly, Edm.Date).
    DateOnly,
    /// Lookup.
    Lookup,
    /// Customer (polymorphic lookup to account/contact).
    Customer,
    /// Owner (`ownerid`: a lookup to systemuser or team, bound through one navigation property
    /// of the base type `principal`).
    Owner,
    /// Unique identifier.
    Uniqueidentifier,
}

impl ColumnType {
    /// A lookup of any kind (Lookup, Customer, Owner): a `_<name>_value` GUID set through a
    /// navigation property.
    pub fn is_lookup(self) -> bool {
        matches!(
            self,
            ColumnType::Lookup | ColumnType::Customer | ColumnType::Owner
        )
    }
}

/// Required level (Dataverse `AttributeRequiredLevel`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum RequiredLevel {
    /// Optional.
    #[default]
    None,
    /// Enforced by the platform on create.
    SystemRequired,
    /// Business required: enforced by forms; by the API only with
    /// `validation.enforce_application_required`.
    ApplicationRequired,
    /// Business recommended.
    Recommended,
}

impl RequiredLevel {
    fn is_none(&self) -> bool {
        *self == RequiredLevel::None
    }
}

/// A choice option.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptionConfig {
    /// Option value.
    pub value: i64,
    /// Label (LCID 1033).
    pub label: String,
}

/// A single-valued navigation property of a lookup column.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NavigationConfig {
    /// Navigation property name, case-sensitive (`parentcustomerid_account`).
    pub name: String,
    /// Target table logical name.
    pub target: String,
}

/// An alternate key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Key logical name.
    pub name: String,
    /// Key columns.
    pub attributes: Vec<String>,
}

/// A collection-valued navigation property: rows of `table` whose lookup `attribute` points here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CollectionConfig {
    /// Navigation property name (`Account_Tasks`).
    pub name: String,
    /// Related table logical name (`task`).
    pub table: String,
    /// Lookup column on the related table (`regardingobjectid`).
    pub attribute: String,
}

/// Service protection limits (api-limits.md, PROTOCOL.md §10.1). Defaults are Dataverse's:
/// 6,000 requests and 1,200,000 ms of execution time per user over a 300 s sliding window, and 52
/// concurrent requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Whether the limits are enforced at all.
    pub enabled: bool,
    /// Sliding window length in seconds (fractions allowed so that tests can hit it quickly).
    pub window_secs: f64,
    /// Requests per user per window.
    pub max_requests: u64,
    /// Combined execution time per user per window, in milliseconds.
    pub max_exec_ms: u64,
    /// Concurrent requests per user.
    pub max_concurrent: u64,
    /// Value of the `x-ms-dop-hint` header on every response.
    pub dop_hint: u32,
    /// Simulated execution cost per operation in milliseconds (really waited).
    pub op_cost_ms: u64,
    /// Maximum operations in one `$batch`.
    pub max_batch_operations: usize,
    /// Largest request body accepted, in bytes; a larger one is answered 413 (Request Entity Too
    /// Large, a status the service documents: PROTOCOL.md §4) before anything is applied.
    /// Enforced even when `enabled` is false.
    pub max_request_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            enabled: true,
            window_secs: 300.0,
            max_requests: 6000,
            max_exec_ms: 1_200_000,
            max_concurrent: 52,
            dop_hint: 4,
            op_cost_ms: 0,
            max_batch_operations: 1000,
            max_request_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Fault injection, drawn from a RNG seeded by `Config::seed`. Rates are probabilities per Web API
/// request (0.0–1.0). All zero by default.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FaultsConfig {
    /// Latency added to every Web API request, in milliseconds.
    pub latency_ms: u64,
    /// Extra random latency, uniformly 0..=jitter, in milliseconds.
    pub latency_jitter_ms: u64,
    /// Probability of answering 500/502/503 (equally likely) without applying the request.
    pub fail_rate: f64,
    /// Probability of answering 429 with `Retry-After` without applying the request.
    pub throttle_rate: f64,
    /// `Retry-After` seconds sent with injected 429s.
    pub throttle_retry_after_secs: u64,
    /// Probability that a request starts a 429 storm.
    pub storm_rate: f64,
    /// Number of consecutive requests a storm answers with 429.
    pub storm_length: u64,
    /// Probability of dropping the TCP connection: half before, half after applying the request.
    pub reset_rate: f64,
    /// Probability of answering only after `slow_ms` (the request is applied).
    pub slow_rate: f64,
    /// Delay of a slow response in milliseconds.
    pub slow_ms: u64,
    /// Probability that the presented access token is revoked (401 from then on).
    pub revoke_rate: f64,
}

/// Validation switches.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    /// Also enforce `ApplicationRequired` columns on create. Dataverse's API enforces only
    /// `SystemRequired` (ApplicationRequired is a form rule; PROTOCOL.md §12.2), so this is off by
    /// default; the documented batch examples create contacts and leads without their
    /// business-required columns.
    pub enforce_application_required: bool,
}

/// A change to the environment in the middle of a client's work, for tests of what a client does
/// when the environment changes under it: from the `$batch` request after the first
/// `after_batches` ones on, every request sees it (changes add up, in `after_batches` order).
/// Before that, metadata and privileges are as configured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ChangeConfig {
    /// `$batch` requests received before the change.
    pub after_batches: u64,
    /// Rights taken away from the application users (whatever role granted them).
    pub revoke: Vec<TablePrivilegesConfig>,
    /// Tables deleted (logical names): their entity sets answer 404 as unknown ones, and lookups
    /// to them disappear.
    pub drop_tables: Vec<String>,
    /// Columns deleted (not key columns): writing them is the unknown-property error.
    pub drop_columns: Vec<TableColumnsConfig>,
}

/// Some columns of one table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableColumnsConfig {
    /// Table logical name.
    pub table: String,
    /// Column logical names.
    pub columns: Vec<String>,
}
