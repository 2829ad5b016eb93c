//! `dvload whoami`: prove the connection set-up (settings, token, `WhoAmI`) and say who dvload is
//! in the environment; with `--check MAPPING...`, check each mapping's table, columns, keys and
//! privileges against the environment without writing anything.
//!
//! What `--check` asks (all reads): `EntityDefinitions` (entity sets, attributes, lookup targets,
//! alternate keys) and the bound function `systemusers(<id>)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()`
//! (the privileges the user holds through its roles, with their depth). What only a write can
//! tell is listed in [`NOT_CHECKED`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::connect::{ConnectArgs, Connection};
use crate::exit::Exit;
use crate::mapping::spec::{FieldKind, LookupKey, suggest};
use crate::mapping::{MappingSpec, OperationKind};

/// Arguments of `dvload whoami`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    dvload whoami --emulator\n  \
    dvload whoami --profile prod --check mappings/accounts.toml mappings/contacts.toml\n\n\
    With the environment variables set (DATAVERSE_URL, AZURE_TENANT_ID, AZURE_CLIENT_ID,\n\
    AZURE_CLIENT_SECRET), `dvload whoami` prints:\n  \
    environment    https://contoso.crm4.dynamics.com\n  \
    settings from  environment\n  \
    user           d96e9f55-f06d-e511-80d0-00155db07cb1 (dvload loader, application 2222...)\n  \
    business unit  ded5a64f-f06d-e511-80d0-00155db07cb1 (contoso)\n  \
    organization   4faf1f34-f06d-e511-80d0-00155db07cb1\n  \
    dop hint       4 (x-ms-dop-hint: parallel requests the server recommends)\n\n\
    Each failing step (tenant, application, secret or certificate, environment URL, application \
    user, role) is named with how to fix it. --check reads each mapping's table, columns, keys and \
    the privileges its operation needs, and writes nothing; row-level access, plug-ins, field \
    security and data values can only be proven by writing (try `dvload run --dry-run`, then a \
    small --source file).\n\n\
    Exit codes: 0 all is well, 2 a mapping is unusable (unknown table, column or key; this wins \
    over 3), 3 the set-up failed or a privilege is missing.")]
pub struct Args {
    /// Check these mappings against the environment (tables, columns, keys, privileges); writes nothing.
    #[arg(long, value_name = "MAPPING", num_args = 1..)]
    pub check: Vec<PathBuf>,
    /// Connection options.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// What `--check` cannot prove without writing.
pub const NOT_CHECKED: &str = "not checked without writing: row-level access (a privilege at Basic \
or Local depth covers only rows the user or its business unit owns), field-level security on \
columns, plug-ins, business rules and duplicate detection that may refuse rows, required columns \
and the values themselves (run `dvload validate` and `dvload run --dry-run` for those), and whether \
lookup targets exist";

/// Runs `dvload whoami`.
pub fn run(args: Args) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(whoami(args))
}

async fn whoami(args: Args) -> anyhow::Result<Exit> {
    let conn =
        super::connect::connect(&args.connect, &crate::writer::RetryPolicy::default()).await?;
    let who = &conn.whoami;
    println!("environment    {}", conn.url);
    println!("settings from  {}", conn.origin);
    let user = get_json(
        &conn,
        &format!(
            "systemusers({})?$select=fullname,applicationid,isdisabled",
            who.user_id
        ),
    )
    .await;
    match &user {
        Ok(u) => {
            let name = u.get("fullname").and_then(Value::as_str).unwrap_or("");
            let app = u
                .get("applicationid")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let disabled = u.get("isdisabled").and_then(Value::as_bool) == Some(true);
            println!(
                "user           {} ({name}, application {app}{})",
                who.user_id,
                if disabled { ", DISABLED" } else { "" }
            );
        }
        Err(e) => println!("user           {} (name not available: {e})", who.user_id),
    }
    match get_json(
        &conn,
        &format!("businessunits({})?$select=name", who.business_unit_id),
    )
    .await
    {
        Ok(b) => println!(
            "business unit  {} ({})",
            who.business_unit_id,
            b.get("name").and_then(Value::as_str).unwrap_or("")
        ),
        Err(e) => println!(
            "business unit  {} (name not available: {e})",
            who.business_unit_id
        ),
    }
    println!("organization   {}", who.organization_id);
    match conn.dop_hint {
        Some(n) => {
            println!("dop hint       {n} (x-ms-dop-hint: parallel requests the server recommends)")
        }
        None => {
            println!("dop hint       none (the server sent no x-ms-dop-hint; dvload starts with 4)")
        }
    }
    if args.check.is_empty() {
        return Ok(Exit::Success);
    }
    check_all(&conn, &args.check).await
}

/// GETs a path below the Web API root and returns its JSON, or what went wrong in one line.
async fn get_json(conn: &Connection, path: &str) -> Result<Value, String> {
    let reply = conn.client.get(path).await.map_err(|e| e.to_string())?;
    if reply.status != 200 {
        let error = crate::odata::ODataError::from_response(reply.status, &reply.body);
        return Err(crate::writer::decide::describe(reply.status, &error));
    }
    serde_json::from_slice(&reply.body).map_err(|e| format!("not JSON: {e}"))
}

/// A table as `EntityDefinitions` describes it.
#[derive(Debug, Clone)]
struct Entity {
    logical: String,
    set: String,
    schema: String,
    primary_id: String,
}

/// A column.
#[derive(Debug, Clone)]
struct Attr {
    kind: String,
    create: bool,
    update: bool,
    targets: Vec<String>,
}

/// An alternate key.
#[derive(Debug, Clone)]
struct Key {
    name: String,
    attributes: Vec<String>,
    status: String,
}

/// What is known of one table's columns and keys.
#[derive(Debug, Clone, Default)]
struct Columns {
    attrs: HashMap<String, Attr>,
    keys: Vec<Key>,
}

/// The environment's metadata, fetched once per table.
struct Metadata<'c> {
    conn: &'c Connection,
    entities: Vec<Entity>,
    columns: HashMap<String, Result<Columns, String>>,
}

impl<'c> Metadata<'c> {
    async fn load(conn: &'c Connection) -> Result<Metadata<'c>, String> {
        let v = get_json(
            conn,
            "EntityDefinitions?$select=LogicalName,EntitySetName,SchemaName,PrimaryIdAttribute",
        )
        .await?;
        let text = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let entities = v
            .get("value")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|e| Entity {
                        logical: text(e, "LogicalName"),
                        set: text(e, "EntitySetName"),
                        schema: text(e, "SchemaName"),
                        primary_id: text(e, "PrimaryIdAttribute"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Metadata {
            conn,
            entities,
            columns: HashMap::new(),
        })
    }

    fn by_set(&self, set: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.set == set)
    }

    fn suggest_set(&self, set: &str) -> String {
        suggest(set, self.entities.iter().map(|e| e.set.as_str()))
            .map(|s| format!(" (did you mean '{s}'?)"))
            .unwrap_or_default()
    }

    async fn columns(&mut self, logical: &str) -> Result<Columns, String> {
        if let Some(c) = self.columns.get(logical) {
            return c.clone();
        }
        let c = self.fetch_columns(logical).await;
        self.columns.insert(logical.to_string(), c.clone());
        c
    }

    async fn fetch_columns(&self, logical: &str) -> Result<Columns, String> {
        let base = format!("EntityDefinitions(LogicalName='{logical}')");
        let attrs = get_json(
            self.conn,
            &format!(
                "{base}/Attributes?$select=LogicalName,AttributeType,IsValidForCreate,IsValidForUpdate"
            ),
        )
        .await?;
        let lookups = get_json(
            self.conn,
            &format!("{base}/Attributes/Microsoft.Dynamics.CRM.LookupAttributeMetadata?$select=LogicalName,Targets"),
        )
        .await?;
        let keys = get_json(
            self.conn,
            &format!("{base}/Keys?$select=LogicalName,KeyAttributes,EntityKeyIndexStatus"),
        )
        .await?;
        let list = |v: &Value| {
            v.get("value")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let strings = |v: &Value, k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut out = Columns::default();
        for a in list(&attrs) {
            out.attrs.insert(
                s(&a, "LogicalName"),
                Attr {
                    kind: s(&a, "AttributeType"),
                    create: a.get("IsValidForCreate").and_then(Value::as_bool) != Some(false),
                    update: a.get("IsValidForUpdate").and_then(Value::as_bool) != Some(false),
                    targets: Vec::new(),
                },
            );
        }
        for l in list(&lookups) {
            if let Some(a) = out.attrs.get_mut(&s(&l, "LogicalName")) {
                a.targets = strings(&l, "Targets");
            }
        }
        out.keys = list(&keys)
            .iter()
            .map(|k| Key {
                name: s(k, "LogicalName"),
                attributes: strings(k, "KeyAttributes"),
                status: s(k, "EntityKeyIndexStatus"),
            })
            .collect();
        Ok(out)
    }
}

/// The privileges the user holds: lower-cased name → depth.
type Privileges = HashMap<String, String>;

async fn privileges(conn: &Connection) -> Result<Privileges, String> {
    let v = get_json(
        conn,
        &format!(
            "systemusers({})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()",
            conn.whoami.user_id
        ),
    )
    .await?;
    let list = v
        .get("RolePrivileges")
        .and_then(Value::as_array)
        .ok_or("the answer has no RolePrivileges")?;
    let mut out = Privileges::new();
    for p in list {
        if let Some(name) = p.get("PrivilegeName").and_then(Value::as_str) {
            let depth = match p.get("Depth") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            out.insert(name.to_lowercase(), depth);
        }
    }
    Ok(out)
}

/// One mapping's verdict.
#[derive(Default)]
struct Verdict {
    unusable: Vec<String>,
    missing: Vec<String>,
}

async fn check_all(conn: &Connection, mappings: &[PathBuf]) -> anyhow::Result<Exit> {
    println!();
    let mut metadata = match Metadata::load(conn).await {
        Ok(m) => m,
        Err(e) => {
            println!("cannot read the table definitions (EntityDefinitions): {e}");
            println!(
                "  the application user's role needs read access to metadata (every role has it by default)"
            );
            return Ok(Exit::Auth);
        }
    };
    let privileges = privileges(conn).await;
    let mut exit = Exit::Success;
    for path in mappings {
        let verdict = check_one(&mut metadata, &privileges, path).await;
        if !verdict.unusable.is_empty() {
            println!("  verdict      UNUSABLE: {}", verdict.unusable.join("; "));
            exit = Exit::Unusable;
        } else if !verdict.missing.is_empty() {
            println!(
                "  verdict      MISSING PRIVILEGES: {}",
                verdict.missing.join(", ")
            );
            println!(
                "               add them to the application user's security role (Power Platform admin centre > \
                 Environments > <environment> > Settings > Users + permissions > Security roles)"
            );
            if exit == Exit::Success {
                exit = Exit::Auth;
            }
        } else {
            println!("  verdict      ready");
        }
        println!();
    }
    println!("{NOT_CHECKED}.");
    Ok(exit)
}

fn privilege_purpose(right: &str, op: OperationKind) -> &'static str {
    match (right, op) {
        ("Create", _) => "create rows",
        ("Write", _) => "update rows that exist",
        ("Read", OperationKind::Delete) => "find the rows to delete",
        ("Read", _) => "find rows by key",
        ("Delete", _) => "delete rows",
        ("Append", _) => "set lookups on this table",
        _ => "be the target of a lookup",
    }
}

async fn check_one(
    metadata: &mut Metadata<'_>,
    privileges: &Result<Privileges, String>,
    path: &Path,
) -> Verdict {
    let mut v = Verdict::default();
    let spec = match MappingSpec::load(path) {
        Ok(s) => s,
        Err(e) => {
            println!("{}", path.display());
            v.unusable.push(format!("the mapping cannot be read: {e}"));
            return v;
        }
    };
    let op = spec.target.operation;
    println!(
        "{} -> {} ({})",
        path.display(),
        spec.target.entity_set,
        op.name()
    );
    let Some(entity) = metadata.by_set(&spec.target.entity_set).cloned() else {
        let hint = metadata.suggest_set(&spec.target.entity_set);
        println!(
            "  entity set   '{}' not found{hint}",
            spec.target.entity_set
        );
        v.unusable.push(format!(
            "unknown entity set '{}'{hint}",
            spec.target.entity_set
        ));
        return v;
    };
    println!(
        "  entity set   {} found: table {} ({})",
        entity.set, entity.logical, entity.schema
    );
    let columns = match metadata.columns(&entity.logical).await {
        Ok(c) => c,
        Err(e) => {
            v.unusable.push(format!(
                "cannot read the columns of {}: {e}",
                entity.logical
            ));
            return v;
        }
    };
    // The key.
    let key_columns: Vec<String> = spec.target.key.iter().map(|k| k.column.clone()).collect();
    if !key_columns.is_empty() {
        check_key(&mut v, "key", &entity, &columns, &key_columns);
    }
    // Columns.
    let mut found = 0usize;
    let mut unknown = Vec::new();
    let mut readonly = Vec::new();
    let mut lookups: Vec<(String, Entity, bool)> = Vec::new();
    if op != OperationKind::Delete {
        for f in &spec.fields {
            match &f.kind {
                FieldKind::Value(_) => match columns.attrs.get(&f.column) {
                    Some(a) => {
                        found += 1;
                        let writable = match op {
                            OperationKind::Create => a.create,
                            OperationKind::Update => a.update,
                            _ => a.create || a.update,
                        };
                        if !writable {
                            readonly.push(f.column.clone());
                        }
                    }
                    None => unknown.push(unknown_column(&f.column, &columns)),
                },
                FieldKind::Lookup { entity_set, key } => {
                    let Some(target) = metadata.by_set(entity_set).cloned() else {
                        let hint = metadata.suggest_set(entity_set);
                        v.unusable.push(format!(
                            "lookup '{}': unknown entity set '{entity_set}'{hint}",
                            f.column
                        ));
                        continue;
                    };
                    match lookup_attribute(&f.column, &target.logical, &columns) {
                        Some(attr) => {
                            found += 1;
                            println!(
                                "  lookup       {} -> {} ({}): column {attr} ({}) targets {}",
                                f.column,
                                target.set,
                                target.logical,
                                columns.attrs[&attr].kind,
                                target.logical
                            );
                        }
                        None => unknown.push(format!(
                            "'{}' is not a lookup to {} on {}{}",
                            f.column,
                            target.logical,
                            entity.logical,
                            lookup_hint(&target.logical, &columns)
                        )),
                    }
                    let by_key = match key {
                        LookupKey::Id(_) => false,
                        LookupKey::Alternate(parts) => {
                            let cols: Vec<String> =
                                parts.iter().map(|p| p.column.clone()).collect();
                            match metadata.columns(&target.logical).await {
                                Ok(tc) => check_key(&mut v, "lookup key", &target, &tc, &cols),
                                Err(e) => v.unusable.push(format!(
                                    "cannot read the keys of {}: {e}",
                                    target.logical
                                )),
                            }
                            true
                        }
                    };
                    lookups.push((f.column.clone(), target, by_key));
                }
            }
        }
        if unknown.is_empty() {
            println!("  columns      {found} found, none unknown");
        } else {
            println!(
                "  columns      {found} found; unknown: {}",
                unknown.join("; ")
            );
            v.unusable
                .push(format!("unknown columns: {}", unknown.join("; ")));
        }
        if !readonly.is_empty() {
            println!(
                "  read-only    {} (not valid for {})",
                readonly.join(", "),
                op.name()
            );
            v.unusable
                .push(format!("read-only columns: {}", readonly.join(", ")));
        }
    }
    // Privileges.
    let mut needed: Vec<(String, String)> = Vec::new();
    let rights: &[&str] = match op {
        OperationKind::Create => &["Create"],
        OperationKind::Update => &["Write", "Read"],
        OperationKind::Upsert => &["Create", "Write", "Read"],
        OperationKind::Delete => &["Delete", "Read"],
    };
    for r in rights {
        needed.push((
            format!("prv{r}{}", entity.schema),
            privilege_purpose(r, op).into(),
        ));
    }
    if !lookups.is_empty() {
        needed.push((
            format!("prvAppend{}", entity.schema),
            privilege_purpose("Append", op).into(),
        ));
    }
    for (column, target, by_key) in &lookups {
        let name = format!("prvAppendTo{}", target.schema);
        if !needed.iter().any(|(n, _)| n == &name) {
            needed.push((name, format!("be the target of lookup {column}")));
        }
        let read = format!("prvRead{}", target.schema);
        if *by_key && !needed.iter().any(|(n, _)| n == &read) {
            needed.push((read, format!("resolve lookup {column} by its key")));
        }
    }
    match privileges {
        Err(e) => println!(
            "  privileges   not checked: RetrieveUserPrivileges failed ({e}); needed: {}",
            needed
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ok(held) => {
            let mut present = Vec::new();
            for (name, purpose) in &needed {
                match held.get(&name.to_lowercase()) {
                    Some(depth) => present.push(match depth.as_str() {
                        "Basic" => format!("{name} (Basic: only rows the user owns)"),
                        "Local" => format!("{name} (Local: only rows of its business unit)"),
                        _ => format!("{name} ({depth})"),
                    }),
                    None => v.missing.push(format!("{name} (to {purpose})")),
                }
            }
            if !present.is_empty() {
                println!("  privileges   present: {}", present.join(", "));
            }
            if !v.missing.is_empty() {
                println!("  privileges   missing: {}", v.missing.join(", "));
            }
        }
    }
    v
}

/// Checks that `cols` are the table's primary id or one of its alternate keys.
fn check_key(v: &mut Verdict, what: &str, entity: &Entity, columns: &Columns, cols: &[String]) {
    if cols.len() == 1 && cols[0] == entity.primary_id {
        println!(
            "  {what:<12} {} (primary id of {})",
            cols[0], entity.logical
        );
        return;
    }
    for c in cols {
        if !columns.attrs.contains_key(c) {
            let u = unknown_column(c, columns);
            v.unusable
                .push(format!("{what} column {u} on {}", entity.logical));
        }
    }
    let key = columns.keys.iter().find(|k| {
        k.attributes.len() == cols.len() && cols.iter().all(|c| k.attributes.contains(c))
    });
    match key {
        Some(k) => {
            println!(
                "  {what:<12} {} on {}: alternate key {} ({})",
                cols.join(", "),
                entity.logical,
                k.name,
                if k.status.is_empty() {
                    "status unknown"
                } else {
                    &k.status
                }
            );
            if !k.status.is_empty() && k.status != "Active" {
                v.unusable.push(format!(
                    "alternate key {} of {} is {}, not Active: requests by this key fail until its index is built",
                    k.name, entity.logical, k.status
                ));
            }
        }
        None => {
            let defined: Vec<String> = columns
                .keys
                .iter()
                .map(|k| format!("{} ({})", k.name, k.attributes.join(", ")))
                .collect();
            println!(
                "  {what:<12} {} on {}: no such key",
                cols.join(", "),
                entity.logical
            );
            v.unusable.push(format!(
                "{} has no alternate key on ({}); its keys: {}",
                entity.logical,
                cols.join(", "),
                if defined.is_empty() {
                    "none".to_string()
                } else {
                    defined.join(", ")
                }
            ));
        }
    }
}

fn unknown_column(column: &str, columns: &Columns) -> String {
    let hint = suggest(column, columns.attrs.keys().map(String::as_str))
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default();
    format!("'{column}'{hint}")
}

/// The lookup column that navigation property `nav` sets towards `target`: the column itself
/// (single-target lookups name their navigation property like the column), or `<column>_<suffix>`
/// for a polymorphic one (`parentcustomerid_account`) whose Targets include `target`. The Web API
/// metadata names navigation properties in relationships, which this check does not read.
fn lookup_attribute(nav: &str, target: &str, columns: &Columns) -> Option<String> {
    let is_target = |a: &Attr| a.targets.iter().any(|t| t == target);
    if columns.attrs.get(nav).is_some_and(is_target) {
        return Some(nav.to_string());
    }
    columns
        .attrs
        .iter()
        .filter(|(name, a)| {
            nav.len() > name.len() + 1
                && nav.starts_with(name.as_str())
                && nav.as_bytes()[name.len()] == b'_'
                && is_target(a)
        })
        .max_by_key(|(name, _)| name.len())
        .map(|(name, _)| name.clone())
}

fn lookup_hint(target: &str, columns: &Columns) -> String {
    let mut to_target: Vec<&str> = columns
        .attrs
        .iter()
        .filter(|(_, a)| a.targets.iter().any(|t| t == target))
        .map(|(n, _)| n.as_str())
        .collect();
    to_target.sort_unstable();
    if to_target.is_empty() {
        format!(" (no lookup column targets {target})")
    } else {
        format!(" (lookups to {target}: {})", to_target.join(", "))
    }
}
