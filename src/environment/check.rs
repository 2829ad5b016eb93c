//! The pre-flight check, one implementation for `whoami --check`, `run` (before its first write)
//! and `undo` (before its first delete): each job's table, key, columns, lookups and privileges.
//!
//! What it asks (all reads, each once per run): `EntityDefinitions` (entity sets), per table its
//! attributes, lookup targets and alternate keys, and the bound function
//! `systemusers(<id>)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()` (the privileges the user
//! holds through its roles, with their depth). What only a write can tell is in [`NOT_CHECKED`].

use std::collections::HashMap;

use serde_json::Value;

use super::connect::Connection;
use super::metadata::{list, text};
use crate::exit::Exit;
use crate::job::Job;
use crate::mapping::convert::Converter;
use crate::mapping::spec::{EmptyValues, FieldKind, LookupKey};
use crate::mapping::{MappingSpec, OperationKind};
use crate::outcome::Console;
use crate::toml_reader::suggest;
use crate::writer::RetryPolicy;

/// What the check cannot prove without writing.
pub const NOT_CHECKED: &str = "not checked without writing: row-level access (a privilege at Basic \
or Local depth covers only rows the user or its business unit owns), field-level security on \
columns, plug-ins, business rules and duplicate detection that may refuse rows, required columns \
and the values themselves (run `dvload validate` and `dvload run --dry-run` for those), and whether \
lookup targets exist";

/// Where missing privileges are granted.
pub const ROLE_HINT: &str = "add them to the application user's security role (Power Platform admin \
centre > Environments > <environment> > Settings > Users + permissions > Security roles)";

/// What the check found for one job.
#[derive(Debug, Default)]
pub struct JobCheck {
    /// `MAPPING -> SET (operation)`.
    pub header: String,
    /// What was found, one line each (`  entity set   accounts found: ...`).
    pub lines: Vec<String>,
    /// Why the mapping cannot run in this environment (exit 2).
    pub unusable: Vec<String>,
    /// Privileges the operation needs that the user lacks, with what for (exit 3).
    pub missing: Vec<String>,
    /// What may go wrong but need not (a business-required column a create leaves empty): said,
    /// never a refusal.
    pub warnings: Vec<String>,
}

impl JobCheck {
    /// A job whose mapping could not be read.
    pub fn unreadable(path: &std::path::Path, error: &dyn std::fmt::Display) -> JobCheck {
        JobCheck {
            header: path.display().to_string(),
            unusable: vec![format!("the mapping cannot be read: {error}")],
            ..JobCheck::default()
        }
    }

    /// Exit 2 for an unusable mapping (this wins), 3 for missing privileges, 0 when ready.
    pub fn exit(&self) -> Exit {
        if !self.unusable.is_empty() {
            Exit::Unusable
        } else if !self.missing.is_empty() {
            Exit::Auth
        } else {
            Exit::Success
        }
    }

    /// The verdict lines (`  verdict      ...`).
    pub fn verdict(&self) -> Vec<String> {
        if !self.unusable.is_empty() {
            vec![format!(
                "  verdict      UNUSABLE: {}",
                self.unusable.join("; ")
            )]
        } else if !self.missing.is_empty() {
            vec![
                format!(
                    "  verdict      MISSING PRIVILEGES: {}",
                    self.missing.join(", ")
                ),
                format!("               {ROLE_HINT}"),
            ]
        } else {
            vec!["  verdict      ready".into()]
        }
    }

    /// The whole report: header, findings, verdict.
    pub fn report(&self) -> Vec<String> {
        let mut out = vec![self.header.clone()];
        out.extend(self.lines.iter().cloned());
        out.extend(self.warnings.iter().map(|w| format!("  warning      {w}")));
        out.extend(self.verdict());
        out
    }

    /// The problems in one line (empty when ready).
    pub fn problems(&self) -> String {
        if !self.unusable.is_empty() {
            self.unusable.join("; ")
        } else if !self.missing.is_empty() {
            format!("missing privileges: {}", self.missing.join(", "))
        } else {
            String::new()
        }
    }
}

/// The worst exit of several checks: 2 wins over 3, 3 over 0.
pub fn worst(checks: &[JobCheck]) -> Exit {
    let exits: Vec<Exit> = checks.iter().map(JobCheck::exit).collect();
    if exits.contains(&Exit::Unusable) {
        Exit::Unusable
    } else if exits.contains(&Exit::Auth) {
        Exit::Auth
    } else {
        Exit::Success
    }
}

/// The environment's metadata and the user's privileges, each table read once.
pub struct Checker<'c> {
    /// The connection; `None` when the metadata comes from files (`validate --metadata DIR`).
    conn: Option<&'c Connection>,
    /// The folder the metadata was read from, when it was.
    offline: Option<std::path::PathBuf>,
    policy: RetryPolicy,
    entities: Vec<Entity>,
    columns: HashMap<String, Result<Columns, String>>,
    /// Each table's metadata as read (by logical name): what fills a mapping's gaps.
    metadata: HashMap<String, super::metadata::TableMetadata>,
    /// The casts read of each table (a live check reads those its mappings need).
    fetched: HashMap<String, std::collections::HashSet<&'static str>>,
    /// The privileges the user holds, or why they could not be read (then they are not checked).
    pub privileges: Result<Privileges, String>,
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
    /// A date column whose behaviour is `DateOnly` (known from pulled metadata only).
    date_only: bool,
    /// A choice's options, value and label (known from pulled metadata only).
    options: Vec<(i64, String)>,
    /// A text column's longest value (known from pulled metadata only).
    max_length: Option<i64>,
    /// A number column's range (known from pulled metadata only).
    min: Option<f64>,
    max: Option<f64>,
    /// `ApplicationRequired` or `SystemRequired`, when the column is.
    required: Option<String>,
    create: bool,
    update: bool,
    targets: Vec<String>,
    /// A lookup's navigation properties by referenced table, from the table's relationships
    /// (`owner` for an Owner lookup's one property).
    navigation: std::collections::BTreeMap<String, String>,
}

impl Attr {
    /// The navigation property that binds this lookup to `target`, when the metadata names it.
    fn navigation_to(&self, target: &str) -> Option<&str> {
        if !self.targets.iter().any(|t| t == target) {
            return None;
        }
        self.navigation
            .get(target)
            .or_else(|| {
                (self.kind == "Owner")
                    .then(|| self.navigation.get("owner"))
                    .flatten()
            })
            .map(String::as_str)
    }
}

/// Why a field's type does not fit a column of kind `a.kind` (Dataverse's `AttributeType`), or
/// `None` when it does or when the column's kind is one this check does not judge (it then
/// leaves the decision to the service). Only clear mistakes: a type the service refuses for that
/// column (text on a number, a bare GUID on a lookup), or one that refuses the source's values
/// the column would take (`int` on Money refuses every amount with cents).
fn type_problem(converter: &Converter, a: &Attr) -> Option<String> {
    let kind = a.kind.as_str();
    let wanted = match kind {
        "String" | "Memo" => "text",
        "Integer" => "int",
        "BigInt" => "bigint",
        "Decimal" => "decimal",
        "Double" => "float",
        "Money" => "money",
        "Boolean" => "bool",
        "DateTime" if a.date_only => "dateonly",
        "DateTime" => "datetime or dateonly",
        "Picklist" | "State" | "Status" => "choice",
        // A multi-select choice is `Virtual` (type name MultiSelectPicklistType), but so are
        // other computed columns: `choices` fits it, nothing else is judged.
        "MultiSelectPicklist" => "choices",
        "Virtual" => return None,
        "Lookup" | "Customer" | "Owner" => "a lookup",
        _ => return None,
    };
    let fits = match converter {
        Converter::Text { .. } => matches!(kind, "String" | "Memo"),
        Converter::Integer { wide: false, .. } => kind == "Integer",
        Converter::Integer { wide: true, .. } => matches!(kind, "BigInt" | "Integer"),
        Converter::Number { money: true, .. } => kind == "Money",
        Converter::Number { float: true, .. } => matches!(kind, "Double" | "Decimal"),
        Converter::Number { .. } => matches!(kind, "Decimal" | "Money" | "Double"),
        Converter::Bool(_) => kind == "Boolean",
        Converter::DateTime { .. } => kind == "DateTime" && !a.date_only,
        Converter::DateOnly { .. } => kind == "DateTime",
        Converter::Choice(_) => matches!(kind, "Picklist" | "State" | "Status"),
        Converter::Choices { .. } => matches!(kind, "Virtual" | "MultiSelectPicklist"),
        // A GUID fills a unique identifier (a kind this check leaves alone) or a text; a lookup
        // is bound with `lookup = "<entity set>"`, never set to a bare GUID.
        Converter::Guid { .. } => matches!(kind, "String" | "Memo"),
    };
    if fits {
        return None;
    }
    let how = if wanted == "a lookup" {
        "bind it with lookup = \"<entity set>\" and a key".to_string()
    } else {
        format!("use type = \"{wanted}\"")
    };
    let behaviour = if a.date_only {
        " (DateOnly behaviour)"
    } else {
        ""
    };
    Some(format!(
        "is {} but the column is {kind}{behaviour}: {how}",
        converter_name(converter)
    ))
}

/// The values of a choice's `map` that are not options of its column (when the column's options
/// are known), with the options there are.
fn option_problem(converter: &Converter, a: &Attr) -> Option<String> {
    let map = match converter {
        Converter::Choice(map) | Converter::Choices { map, .. } => map,
        _ => return None,
    };
    if a.options.is_empty() {
        return None;
    }
    let wrong: Vec<String> = map
        .pairs()
        .filter(|(_, v)| !a.options.iter().any(|(o, _)| o == v))
        .map(|(label, v)| format!("'{label}' = {v}"))
        .collect();
    if wrong.is_empty() {
        return None;
    }
    Some(format!(
        "maps {} to no option of the column (its options: {})",
        wrong.join(", "),
        listed_options(a)
    ))
}

/// A column's options as a message lists them: `1 Preferred Customer, 2 Standard` (twelve at most).
fn listed_options(a: &Attr) -> String {
    let there: Vec<String> = a
        .options
        .iter()
        .take(12)
        .map(|(v, l)| format!("{v} {l}"))
        .collect();
    let more = if a.options.len() > 12 { ", …" } else { "" };
    format!("{}{more}", there.join(", "))
}

/// A constant `value` or a `default` the column cannot hold: a number outside its range, a text
/// longer than its length, a choice value that is not one of its options. Every row would carry
/// it, and the service would refuse every one of them. `None` when it fits or cannot be told.
fn constant_problem(value: &crate::mapping::spec::ValueSpec, a: &Attr) -> Option<String> {
    let mut found = Vec::new();
    let constant = match &value.input {
        crate::mapping::spec::Input::Constant { json, .. } => Some(("constant value", json)),
        _ => None,
    };
    let default = value.default.as_ref().map(|json| ("default", json));
    for (what, json) in constant.into_iter().chain(default) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
            continue;
        };
        let problem = match &v {
            serde_json::Value::Number(n) if !a.options.is_empty() => {
                let known = n
                    .as_i64()
                    .is_some_and(|n| a.options.iter().any(|(o, _)| *o == n));
                (!known).then(|| {
                    format!(
                        "{what} {n} is no option of the column (its options: {})",
                        listed_options(a)
                    )
                })
            }
            serde_json::Value::Number(n) => {
                let x = n.as_f64()?;
                let below = a.min.is_some_and(|min| x < min);
                let above = a.max.is_some_and(|max| x > max);
                (below || above).then(|| {
                    format!(
                        "{what} {n} is outside the column's range ({} to {})",
                        a.min.map_or("-".into(), |m| m.to_string()),
                        a.max.map_or("-".into(), |m| m.to_string())
                    )
                })
            }
            serde_json::Value::String(t) if matches!(a.kind.as_str(), "String" | "Memo") => {
                let n = t.chars().count();
                let max = usize::try_from(a.max_length?).ok()?;
                (n > max).then(|| format!("{what} is {n} characters long; the column holds {max}"))
            }
            _ => None,
        };
        found.extend(problem);
    }
    (!found.is_empty()).then(|| found.join("; "))
}

/// A text field's `max_length` longer than its column holds (when the column's length is known):
/// the rows between the two would pass the mapping and be refused by the service.
fn length_problem(converter: &Converter, a: &Attr) -> Option<String> {
    let Converter::Text {
        max_length: Some(ours),
    } = converter
    else {
        return None;
    };
    let theirs = usize::try_from(a.max_length?).ok()?;
    (*ours > theirs).then(|| {
        format!(
            "has max_length = {ours} but the column holds at most {theirs} characters: set max_length = {theirs} or less"
        )
    })
}

/// The mapping type a converter was written as.
fn converter_name(c: &Converter) -> &'static str {
    match c {
        Converter::Text { .. } => "text",
        Converter::Integer { wide: false, .. } => "int",
        Converter::Integer { wide: true, .. } => "bigint",
        Converter::Number { money: true, .. } => "money",
        Converter::Number { float: true, .. } => "float",
        Converter::Number { .. } => "decimal",
        Converter::Bool(_) => "bool",
        Converter::DateTime { .. } => "datetime",
        Converter::DateOnly { .. } => "dateonly",
        Converter::Guid { .. } => "guid",
        Converter::Choice(_) => "choice",
        Converter::Choices { .. } => "choices",
    }
}

/// An alternate key.
#[derive(Debug, Clone)]
struct Key {
    name: String,
    attributes: Vec<String>,
    status: String,
}

/// A table's columns and keys as the checks read them, from its metadata.
fn columns_of(t: &super::metadata::TableMetadata) -> Columns {
    let attrs = t
        .columns
        .iter()
        .map(|(name, c)| {
            (
                name.clone(),
                Attr {
                    kind: c.attribute_type.clone(),
                    date_only: c.date_time_behavior.as_deref() == Some("DateOnly"),
                    options: c
                        .options
                        .iter()
                        .map(|o| {
                            let label = o
                                .labels
                                .get("1033")
                                .or_else(|| o.labels.values().next())
                                .cloned()
                                .unwrap_or_default();
                            (o.value, label)
                        })
                        .collect(),
                    max_length: c.max_length,
                    min: c.min_value,
                    max: c.max_value,
                    required: matches!(
                        c.required_level.as_str(),
                        "ApplicationRequired" | "SystemRequired"
                    )
                    .then(|| c.required_level.clone()),
                    create: c.valid_for_create,
                    update: c.valid_for_update,
                    targets: c.targets.clone(),
                    navigation: c.navigation.clone(),
                },
            )
        })
        .collect();
    let keys = t
        .keys
        .iter()
        .map(|(name, k)| Key {
            name: name.clone(),
            attributes: k.attributes.clone(),
            status: k.index_status.clone(),
        })
        .collect();
    Columns { attrs, keys }
}

/// What is known of one table's columns and keys.
#[derive(Debug, Clone, Default)]
struct Columns {
    attrs: HashMap<String, Attr>,
    keys: Vec<Key>,
}

/// The privileges the user holds: lower-cased name → depth.
pub type Privileges = HashMap<String, String>;

/// GETs a path below the Web API root and returns its JSON, or what went wrong in one line. A
/// transient failure (a lost answer, 408/5xx, a token refused because it expired or was revoked)
/// is tried again within `policy`, and throttling (429) is waited out as the service asks, by
/// the one GET driver [`super::connect::get_retrying`]: one unlucky answer must not stop a run as
/// if its set-up were wrong.
pub async fn get_json(
    conn: &Connection,
    policy: &RetryPolicy,
    path: &str,
) -> Result<Value, String> {
    super::connect::get_retrying(&conn.client, path, &conn.url, policy)
        .await
        .map_err(|e| format!("{e:#}"))?
        .json()
}

impl<'c> Checker<'c> {
    /// Reads the list of tables and the user's privileges. An error means the table definitions
    /// cannot be read at all (the role lacks metadata access): nothing can be checked.
    pub async fn load(conn: &'c Connection, policy: &RetryPolicy) -> Result<Checker<'c>, String> {
        let v = get_json(
            conn,
            policy,
            "EntityDefinitions?$select=LogicalName,EntitySetName,SchemaName,PrimaryIdAttribute",
        )
        .await?;
        let entities = list(&v, "value")
            .iter()
            .map(|e| Entity {
                logical: text(e, "LogicalName"),
                set: text(e, "EntitySetName"),
                schema: text(e, "SchemaName"),
                primary_id: text(e, "PrimaryIdAttribute"),
            })
            .collect();
        let privileges = privileges(conn, policy).await;
        Ok(Checker {
            conn: Some(conn),
            offline: None,
            policy: *policy,
            entities,
            columns: HashMap::new(),
            metadata: HashMap::new(),
            fetched: HashMap::new(),
            privileges,
        })
    }

    /// The message when [`Checker::load`] failed, and its exit code.
    pub fn load_failed(error: &str) -> String {
        format!(
            "cannot read the table definitions (EntityDefinitions): {error}\n  the application user's role \
             needs read access to metadata (every role has it by default)"
        )
    }

    /// A checker of mappings against metadata pulled into `dir` (`dvload metadata pull`), with no
    /// network: the tables, columns, keys and lookups are checked as a run checks them before its
    /// first write; privileges are not (they belong to the application user, not the files).
    pub fn offline(
        dir: &std::path::Path,
        tables: &[super::metadata::TableMetadata],
    ) -> Checker<'static> {
        let entities = tables
            .iter()
            .map(|t| Entity {
                logical: t.logical_name.clone(),
                set: t.entity_set.clone(),
                schema: t.schema_name.clone(),
                primary_id: t.primary_id.clone(),
            })
            .collect();
        let columns = tables
            .iter()
            .map(|t| (t.logical_name.clone(), Ok(columns_of(t))))
            .collect();
        let metadata = tables
            .iter()
            .map(|t| (t.logical_name.clone(), t.clone()))
            .collect();
        Checker {
            conn: None,
            offline: Some(dir.to_path_buf()),
            policy: RetryPolicy::default(),
            entities,
            columns,
            metadata,
            fetched: HashMap::new(),
            privileges: Err("the metadata files say nothing of the application user".into()),
        }
    }

    fn by_set(&self, set: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.set == set)
    }

    fn suggest_set(&self, set: &str) -> String {
        let hint = suggest(set, self.entities.iter().map(|e| e.set.as_str()))
            .map(|s| format!(" (did you mean '{s}'?)"))
            .unwrap_or_default();
        match &self.offline {
            Some(dir) if hint.is_empty() => format!(
                " in the metadata of {} (if the environment has it, `dvload metadata pull` its table into that folder)",
                dir.display()
            ),
            _ => hint,
        }
    }

    /// The columns of table `logical`, with the properties of `casts` (see
    /// [`super::metadata::casts_for`]): read as `dvload metadata pull` reads them, so that a live
    /// check and one against pulled files judge by the same facts, but only the casts a mapping
    /// needs (each is one more request before the first write).
    async fn columns(&mut self, logical: &str, casts: &[&'static str]) -> Result<Columns, String> {
        let Some(conn) = self.conn else {
            return self
                .columns
                .get(logical)
                .cloned()
                .unwrap_or_else(|| Err(format!("no metadata of table {logical}")));
        };
        if let Some(Err(e)) = self.columns.get(logical) {
            return Err(e.clone());
        }
        if !self.metadata.contains_key(logical) {
            match super::metadata::pull_entity(conn, &self.policy, logical).await {
                Ok(t) => {
                    self.metadata.insert(logical.to_string(), t);
                }
                Err(e) => {
                    self.columns.insert(logical.to_string(), Err(e.clone()));
                    return Err(e);
                }
            }
        }
        let fetched = self.fetched.entry(logical.to_string()).or_default();
        let missing: Vec<&str> = casts
            .iter()
            .copied()
            .filter(|c| !fetched.contains(c))
            .collect();
        let table = self.metadata.get_mut(logical).expect("read above");
        if !missing.is_empty() {
            super::metadata::pull_casts(conn, &self.policy, table, &missing).await?;
            fetched.extend(missing);
        }
        let c = columns_of(table);
        self.columns.insert(logical.to_string(), Ok(c.clone()));
        Ok(c)
    }

    /// The metadata read of the table behind `entity_set`, once a check has read it.
    pub fn table(&self, entity_set: &str) -> Option<&super::metadata::TableMetadata> {
        self.metadata.get(&self.by_set(entity_set)?.logical)
    }

    /// Checks one mapping: its table, key, columns, lookups and the privileges its operation needs.
    pub async fn check_spec(&mut self, spec: &MappingSpec) -> JobCheck {
        let op = spec.target.operation;
        let mut v = JobCheck {
            header: format!(
                "{} -> {} ({})",
                spec.file.display(),
                spec.target.entity_set,
                op.name()
            ),
            ..JobCheck::default()
        };
        let Some(entity) = self.by_set(&spec.target.entity_set).cloned() else {
            let hint = self.suggest_set(&spec.target.entity_set);
            v.lines.push(format!(
                "  entity set   '{}' not found{hint}",
                spec.target.entity_set
            ));
            v.unusable.push(format!(
                "unknown entity set '{}'{hint}",
                spec.target.entity_set
            ));
            return v;
        };
        v.lines.push(format!(
            "  entity set   {} found: table {} ({})",
            entity.set, entity.logical, entity.schema
        ));
        let mut casts: Vec<&'static str> = Vec::new();
        for f in &spec.fields {
            let needed = match &f.kind {
                FieldKind::Value(value) => super::metadata::casts_for_value(value),
                FieldKind::Lookup { .. } => &["LookupAttributeMetadata"],
            };
            casts.extend(
                needed
                    .iter()
                    .filter(|c| !casts.contains(c))
                    .collect::<Vec<_>>(),
            );
        }
        let columns = match self.columns(&entity.logical, &casts).await {
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
        // Where a field is written, for each problem found with it.
        let at = |f: &crate::mapping::spec::FieldSpec| {
            let (line, column) = crate::toml_reader::line_col(&spec.text, f.span.start);
            format!(" ({}:{line}:{column})", spec.file.display())
        };
        let mut found = 0usize;
        let mut unknown = Vec::new();
        let mut readonly = Vec::new();
        let mut mistyped = Vec::new();
        let mut lookups: Vec<(String, Entity, bool)> = Vec::new();
        // Each field found, with the column it sets (a lookup's column, not its navigation
        // property).
        let mut sets = Vec::new();
        if op != OperationKind::Delete {
            for f in &spec.fields {
                match &f.kind {
                    FieldKind::Value(value) => match columns.attrs.get(&f.column) {
                        Some(a) => {
                            found += 1;
                            sets.push((f, f.column.clone()));
                            if let Some(why) = type_problem(&value.converter, a) {
                                mistyped.push(format!("'{}' {why}{}", f.column, at(f)));
                            } else if let Some(why) = option_problem(&value.converter, a)
                                .or_else(|| length_problem(&value.converter, a))
                                .or_else(|| constant_problem(value, a))
                            {
                                mistyped.push(format!("'{}' {why}{}", f.column, at(f)));
                            }
                            let writable = match op {
                                OperationKind::Create => a.create,
                                OperationKind::Update => a.update,
                                _ => a.create || a.update,
                            };
                            if !writable {
                                readonly.push(format!("{}{}", f.column, at(f)));
                            }
                        }
                        None => unknown.push(format!(
                            "{}{}",
                            unknown_column(&f.column, &columns),
                            at(f)
                        )),
                    },
                    FieldKind::Lookup { entity_set, key } => {
                        let Some(target) = self.by_set(entity_set).cloned() else {
                            let hint = self.suggest_set(entity_set);
                            v.unusable.push(format!(
                                "lookup '{}': unknown entity set '{entity_set}'{hint}",
                                f.column
                            ));
                            continue;
                        };
                        match lookup_attribute(&f.column, &target.logical, &columns) {
                            Some(attr) => {
                                found += 1;
                                sets.push((f, attr.clone()));
                                v.lines.push(format!(
                                    "  lookup       {} -> {} ({}): column {attr} ({}) targets {}",
                                    f.column,
                                    target.set,
                                    target.logical,
                                    columns.attrs[&attr].kind,
                                    target.logical
                                ));
                            }
                            None => {
                                // A lookup of the table that points elsewhere (`ownerid` to an
                                // account) says where it does point; one named by its column
                                // (`parentcustomerid`) or by a guess (`ownerid_systemuser`)
                                // says the navigation property that binds it.
                                let elsewhere = columns
                                    .attrs
                                    .get(&f.column)
                                    .filter(|a| {
                                        !a.targets.is_empty()
                                            && !a.targets.contains(&target.logical)
                                    })
                                    .map(|a| {
                                        format!(
                                            ": it is a lookup ({}) to {}",
                                            a.kind,
                                            a.targets.join(", ")
                                        )
                                    })
                                    .or_else(|| {
                                        let column =
                                            lookup_by_name(&f.column, &target.logical, &columns)?;
                                        let right = columns.attrs[&column]
                                            .navigation_to(&target.logical)?;
                                        Some(format!(
                                            ": column {column} is bound to {} through the navigation property '{right}'",
                                            target.logical
                                        ))
                                    })
                                    .unwrap_or_default();
                                unknown.push(format!(
                                    "'{}' is not a lookup to {} on {}{elsewhere}{}",
                                    f.column,
                                    target.logical,
                                    entity.logical,
                                    lookup_hint(&target.logical, &columns)
                                ))
                            }
                        }
                        let by_key = match key {
                            LookupKey::Id(_) => false,
                            LookupKey::Alternate(parts) => {
                                let cols: Vec<String> =
                                    parts.iter().map(|p| p.column.clone()).collect();
                                match self.columns(&target.logical, &[]).await {
                                    Ok(tc) => check_key(&mut v, "lookup key", &target, &tc, &cols),
                                    Err(e) => v.unusable.push(format!(
                                        "cannot read the keys of {}: {e}",
                                        target.logical
                                    )),
                                }
                                true
                            }
                            LookupKey::Match { parts, .. } => {
                                match self.columns(&target.logical, &[]).await {
                                    Ok(tc) => {
                                        let mut known = Vec::new();
                                        for p in parts {
                                            if tc.attrs.contains_key(&p.column) {
                                                known.push(p.column.as_str());
                                            } else {
                                                let (line, col) = crate::toml_reader::line_col(
                                                    &spec.text,
                                                    p.span.start,
                                                );
                                                v.unusable.push(format!(
                                                    "lookup '{}' matches on {} of {}, which has no such column ({}:{line}:{col})",
                                                    f.column,
                                                    unknown_column(&p.column, &tc),
                                                    target.logical,
                                                    spec.file.display()
                                                ));
                                            }
                                        }
                                        if known.len() == parts.len() {
                                            v.lines.push(format!(
                                                "  lookup by   {} -> {} where {}",
                                                f.column,
                                                target.set,
                                                known.join(", ")
                                            ));
                                        }
                                    }
                                    Err(e) => v.unusable.push(format!(
                                        "cannot read the columns of {}: {e}",
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
                v.lines
                    .push(format!("  columns      {found} found, none unknown"));
            } else {
                v.lines.push(format!(
                    "  columns      {found} found; unknown: {}",
                    unknown.join("; ")
                ));
                v.unusable
                    .push(format!("unknown columns: {}", unknown.join("; ")));
            }
            if !mistyped.is_empty() {
                v.lines
                    .push(format!("  types        {}", mistyped.join("; ")));
                v.unusable.push(format!(
                    "types that do not fit their columns: {}",
                    mistyped.join("; ")
                ));
            }
            // Business-required columns a create leaves out: the service takes the row
            // (ApplicationRequired is a form rule, not enforced by the Web API: PROTOCOL.md §12.2)
            // unless a plug-in or the level says otherwise, so this is said, not refused. An
            // Owner column (`ownerid`, SystemRequired) left out is the caller: the service
            // assigns the calling user, so there is nothing to say.
            if matches!(op, OperationKind::Create | OperationKind::Upsert) {
                let mut left: Vec<String> = columns
                    .attrs
                    .iter()
                    .filter(|(name, a)| {
                        a.required.is_some()
                            && a.create
                            && a.kind != "Owner"
                            && name.as_str() != entity.primary_id
                            && !spec.fields.iter().any(|f| &f.column == *name)
                            && !spec.target.key.iter().any(|k| &k.column == *name)
                    })
                    .map(|(name, a)| {
                        format!("{name} ({})", a.required.as_deref().unwrap_or_default())
                    })
                    .collect();
                left.sort();
                if !left.is_empty() {
                    v.warnings.push(format!(
                        "required columns this mapping leaves out of its creates: {} (the Web API enforces only SystemRequired; map them, or a create may be refused or leave them empty)",
                        left.join(", ")
                    ));
                }
            }
            if !readonly.is_empty() {
                v.lines.push(format!(
                    "  read-only    {} (not valid for {})",
                    readonly.join(", "),
                    op.name()
                ));
                v.unusable
                    .push(format!("read-only columns: {}", readonly.join(", ")));
            }
        }
        // An empty value that clears a SystemRequired column (`ownerid`, `lastname` of a user):
        // the service refuses the null, so every row with such a value is rejected.
        if op != OperationKind::Delete {
            for (f, column) in sets.iter().filter(|(f, _)| f.empty != EmptyValues::Keep) {
                let a = &columns.attrs[column];
                if a.required.as_deref() == Some("SystemRequired") {
                    let instead = if a.kind == "Owner" {
                        " (an empty value left as it is makes a create the caller's)"
                    } else {
                        ""
                    };
                    v.warnings.push(format!(
                        "'{}' is cleared by an empty value (empty = \"{}\") but the column is SystemRequired: the service refuses null, so each row with an empty value there will be rejected; use empty = \"keep\"{instead}{}",
                        f.column,
                        f.empty.name(),
                        at(f)
                    ));
                }
            }
        }
        // Privileges.
        let rights: &[&str] = match op {
            OperationKind::Create => &["Create"],
            OperationKind::Update => &["Write", "Read"],
            OperationKind::Upsert => &["Create", "Write", "Read"],
            OperationKind::Delete => &["Delete", "Read"],
        };
        let mut needed: Vec<(String, String)> = Vec::new();
        for r in rights {
            let name = self.privilege(&entity, r).await;
            needed.push((name, privilege_purpose(r, op).into()));
        }
        if !lookups.is_empty() {
            let name = self.privilege(&entity, "Append").await;
            needed.push((name, privilege_purpose("Append", op).into()));
        }
        // Giving an existing row another owner is an assignment: prvAssign, beside prvWrite
        // (Microsoft's "Data operations and access rights"). Only the rows whose owner changes
        // need it (a create sets its owner with prvCreate, at a depth this check does not
        // judge), so without it the run may still be right: said, not refused.
        let owner = sets
            .iter()
            .map(|(_, column)| column)
            .find(|column| columns.attrs[*column].kind == "Owner");
        if let Some(column) = owner
            && matches!(op, OperationKind::Update | OperationKind::Upsert)
        {
            let name = self.privilege(&entity, "Assign").await;
            if let Ok(held) = &self.privileges
                && !held.contains_key(&name.to_lowercase())
            {
                v.warnings.push(format!(
                    "{name} is missing: rows this mapping gives another owner ({column}) will be refused; rows it creates and rows that keep their owner are not"
                ));
            }
        }
        for (column, target, by_key) in &lookups {
            let name = self.privilege(target, "AppendTo").await;
            if !needed.iter().any(|(n, _)| n == &name) {
                needed.push((name, format!("be the target of lookup {column}")));
            }
            let read = self.privilege(target, "Read").await;
            if *by_key && !needed.iter().any(|(n, _)| n == &read) {
                needed.push((read, format!("resolve lookup {column} by its key or match")));
            }
        }
        self.check_privileges(&mut v, &needed);
        v
    }

    /// Checks that the user may delete rows of `entity_set` by their id (`undo`).
    pub async fn check_delete(&mut self, entity_set: &str) -> JobCheck {
        let mut v = JobCheck {
            header: format!("{entity_set} (delete by id)"),
            ..JobCheck::default()
        };
        let Some(entity) = self.by_set(entity_set).cloned() else {
            v.unusable.push(format!(
                "unknown entity set '{entity_set}': the table was deleted since the run"
            ));
            return v;
        };
        let needed = [(
            self.privilege(&entity, "Delete").await,
            "delete rows".to_string(),
        )];
        self.check_privileges(&mut v, &needed);
        v
    }

    /// The name of `entity`'s privilege of type `kind` (`Create`, `AppendTo`, …) as the table's
    /// metadata lists it (`EntityMetadata.Privileges`): not always `prv<kind><SchemaName>`, since
    /// every activity table's are `prv<kind>Activity` and systemuser's `prv<kind>User`. When the
    /// metadata cannot be read (or offline, where privileges are not judged) the composed name.
    async fn privilege(&mut self, entity: &Entity, kind: &str) -> String {
        if let Some(conn) = self.conn
            && !self.metadata.contains_key(&entity.logical)
            && let Ok(t) = super::metadata::pull_entity(conn, &self.policy, &entity.logical).await
        {
            self.metadata.insert(entity.logical.clone(), t);
        }
        self.metadata
            .get(&entity.logical)
            .and_then(|t| t.privileges.get(kind))
            .cloned()
            .unwrap_or_else(|| format!("prv{kind}{}", entity.schema))
    }

    fn check_privileges(&self, v: &mut JobCheck, needed: &[(String, String)]) {
        match &self.privileges {
            Err(e) => {
                let names: Vec<&str> = needed.iter().map(|(n, _)| n.as_str()).collect();
                let why = if self.offline.is_some() {
                    e.clone()
                } else {
                    format!("RetrieveUserPrivileges failed ({e})")
                };
                v.lines.push(format!(
                    "  privileges   not checked: {why}; needed: {}",
                    names.join(", ")
                ));
            }
            Ok(held) => {
                let mut present = Vec::new();
                for (name, purpose) in needed {
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
                    v.lines
                        .push(format!("  privileges   present: {}", present.join(", ")));
                }
                if !v.missing.is_empty() {
                    v.lines
                        .push(format!("  privileges   missing: {}", v.missing.join(", ")));
                }
            }
        }
    }
}

async fn privileges(conn: &Connection, policy: &RetryPolicy) -> Result<Privileges, String> {
    let v = get_json(
        conn,
        policy,
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

/// Checks every job of a run before anything is sent (`run`, right after connecting). Ready:
/// one line. Otherwise each job with a problem is reported as `whoami --check` reports it, and
/// the error lists every problem, with exit 2 (a mapping that does not fit the environment; this
/// wins) or 3 (missing privileges).
pub async fn preflight(
    conn: &Connection,
    policy: &RetryPolicy,
    jobs: &mut [Job],
    headers: &[(String, String)],
    console: &mut dyn Console,
) -> crate::Result<PrimaryIds> {
    let mut checker = Checker::load(conn, policy)
        .await
        .map_err(|e| crate::Error::Setup(format!("nothing sent: {}", Checker::load_failed(&e))))?;
    let mut checks = Vec::with_capacity(jobs.len());
    let extra = header_privileges(headers);
    for job in jobs.iter() {
        let mut check = checker.check_spec(&job.spec).await;
        if !extra.is_empty() && check.unusable.is_empty() {
            checker.check_privileges(&mut check, &extra);
        }
        checks.push(check);
    }
    refuse_unless_ready(&checks, jobs.len(), "mapping", "nothing sent", console)?;
    for c in &checks {
        for w in &c.warnings {
            console.line(&format!("{}: warning: {w}", c.header));
        }
    }
    for job in jobs.iter_mut() {
        if let Some(table) = checker.table(&job.plan.entity_set) {
            if let Some(line) = job.complete(table, conn.language)? {
                console.line(&format!("{}: {line}", job.mapping.display()));
            }
        }
        job.plan.ready()?;
    }
    if let Err(e) = &checker.privileges {
        console.line(&format!(
            "warning: privileges not checked (RetrieveUserPrivileges failed: {e})"
        ));
    }
    console.line(&format!(
        "checked against the environment: {} mapping{} ready (tables, columns, keys{})",
        jobs.len(),
        if jobs.len() == 1 { "" } else { "s" },
        if checker.privileges.is_ok() {
            ", privileges"
        } else {
            ""
        }
    ));
    Ok(checker
        .entities
        .iter()
        .filter(|e| !e.set.is_empty() && !e.primary_id.is_empty())
        .map(|e| (e.set.clone(), e.primary_id.clone()))
        .collect())
}

/// The privileges the run's optional-behaviour headers need (PROTOCOL.md §9):
/// `MSCRM.BypassCustomPluginExecution: true` needs `prvBypassCustomPlugins`,
/// `MSCRM.BypassBusinessLogicExecution` needs `prvBypassCustomBusinessLogic`.
pub fn header_privileges(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut needed = Vec::new();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("MSCRM.BypassCustomPluginExecution")
            && value.eq_ignore_ascii_case("true")
        {
            needed.push((
                "prvBypassCustomPlugins".to_string(),
                "skip custom plug-ins (--bypass-plugins)".to_string(),
            ));
        }
        if name.eq_ignore_ascii_case("MSCRM.BypassBusinessLogicExecution") {
            needed.push((
                "prvBypassCustomBusinessLogic".to_string(),
                "skip custom business logic (--bypass-logic)".to_string(),
            ));
        }
    }
    needed
}

/// Each table's primary id column by entity set (`accounts` → `accountid`), from its metadata.
pub type PrimaryIds = HashMap<String, String>;

/// Checks that the user may delete rows of each of `entity_sets` (`undo`, before its first
/// delete); the refusal is as [`preflight`]'s.
pub async fn preflight_delete(
    conn: &Connection,
    policy: &RetryPolicy,
    entity_sets: &[&str],
    console: &mut dyn Console,
) -> crate::Result<()> {
    let mut checker = Checker::load(conn, policy).await.map_err(|e| {
        crate::Error::Setup(format!("nothing deleted: {}", Checker::load_failed(&e)))
    })?;
    let mut checks = Vec::with_capacity(entity_sets.len());
    for set in entity_sets {
        checks.push(checker.check_delete(set).await);
    }
    refuse_unless_ready(
        &checks,
        entity_sets.len(),
        "table",
        "nothing deleted",
        console,
    )
}

/// Prints the report of each check with a problem and returns the refusal naming every problem;
/// `Ok` when all are ready. `what` names the checked things in the message, `nothing` opens it.
pub fn refuse_unless_ready(
    checks: &[JobCheck],
    total: usize,
    what: &str,
    nothing: &str,
    console: &mut dyn Console,
) -> crate::Result<()> {
    let exit = worst(checks);
    if exit == Exit::Success {
        return Ok(());
    }
    let failing: Vec<&JobCheck> = checks
        .iter()
        .filter(|c| c.exit() != Exit::Success)
        .collect();
    for c in &failing {
        for line in c.report() {
            console.line(&line);
        }
        console.line("");
    }
    let mut message = format!(
        "{nothing}: the check against the environment refused {} of {total} {what}{}:",
        failing.len(),
        if total == 1 { "" } else { "s" }
    );
    for c in &failing {
        message.push_str(&format!("\n  {}: {}", c.header, c.problems()));
    }
    if failing.iter().any(|c| !c.missing.is_empty()) {
        message.push_str(&format!("\n  {ROLE_HINT}"));
    }
    // A mapping that does not fit the environment wins over missing privileges.
    Err(if exit == Exit::Auth {
        crate::Error::Setup(message)
    } else {
        crate::Error::Unusable(message)
    })
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

/// Checks that `cols` are the table's primary id or one of its alternate keys.
fn check_key(v: &mut JobCheck, what: &str, entity: &Entity, columns: &Columns, cols: &[String]) {
    if cols.len() == 1 && cols[0] == entity.primary_id {
        v.lines.push(format!(
            "  {what:<12} {} (primary id of {})",
            cols[0], entity.logical
        ));
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
            v.lines.push(format!(
                "  {what:<12} {} on {}: alternate key {} ({})",
                cols.join(", "),
                entity.logical,
                k.name,
                if k.status.is_empty() {
                    "status unknown"
                } else {
                    &k.status
                }
            ));
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
            v.lines.push(format!(
                "  {what:<12} {} on {}: no such key",
                cols.join(", "),
                entity.logical
            ));
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

/// The lookup column that navigation property `nav` sets towards `target`. The table's
/// relationships name each navigation property (`ReferencingEntityNavigationPropertyName`):
/// when they are known, `nav` must be one of them. Otherwise (metadata pulled before dvload
/// read relationships) by name: the column itself (single-target lookups name their navigation
/// property like the column), or `<column>_<suffix>` for a polymorphic one
/// (`parentcustomerid_account`) whose Targets include `target`.
fn lookup_attribute(nav: &str, target: &str, columns: &Columns) -> Option<String> {
    if columns.attrs.values().any(|a| !a.navigation.is_empty()) {
        return columns
            .attrs
            .iter()
            .find(|(_, a)| a.navigation_to(target) == Some(nav))
            .map(|(name, _)| name.clone());
    }
    lookup_by_name(nav, target, columns)
}

/// The lookup column whose name `nav` is, or begins (`parentcustomerid_account`), that targets
/// `target`.
fn lookup_by_name(nav: &str, target: &str, columns: &Columns) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Quiet;

    /// A writable column of `kind` with nothing else known.
    fn plain(kind: &str, date_only: bool) -> Attr {
        Attr {
            kind: kind.into(),
            date_only,
            options: Vec::new(),
            max_length: None,
            min: None,
            max: None,
            required: None,
            create: true,
            update: true,
            targets: Vec::new(),
            navigation: Default::default(),
        }
    }

    #[test]
    fn a_lookup_is_bound_by_the_navigation_property_its_relationship_names() {
        let lookup = |kind: &str, targets: &[&str], navs: &[(&str, &str)]| Attr {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            navigation: navs
                .iter()
                .map(|(t, n)| (t.to_string(), n.to_string()))
                .collect(),
            ..plain(kind, false)
        };
        let mut columns = Columns::default();
        columns.attrs.insert(
            "parentcustomerid".into(),
            lookup(
                "Customer",
                &["account", "contact"],
                &[
                    ("account", "parentcustomerid_account"),
                    ("contact", "parentcustomerid_contact"),
                ],
            ),
        );
        columns.attrs.insert(
            "ownerid".into(),
            lookup("Owner", &["systemuser", "team"], &[("owner", "ownerid")]),
        );
        let bound = |nav: &str, target: &str| lookup_attribute(nav, target, &columns);
        assert_eq!(
            bound("parentcustomerid_account", "account").as_deref(),
            Some("parentcustomerid")
        );
        assert_eq!(bound("parentcustomerid_contact", "account"), None);
        assert_eq!(
            bound("parentcustomerid", "account"),
            None,
            "named by its column"
        );
        assert_eq!(bound("ownerid", "systemuser").as_deref(), Some("ownerid"));
        assert_eq!(bound("ownerid", "team").as_deref(), Some("ownerid"));
        assert_eq!(bound("ownerid", "account"), None);
        assert_eq!(bound("ownerid_systemuser", "systemuser"), None);
        // Without relationships (metadata pulled by an older dvload): by name.
        for a in columns.attrs.values_mut() {
            a.navigation.clear();
        }
        let bound = |nav: &str, target: &str| lookup_attribute(nav, target, &columns);
        assert_eq!(
            bound("parentcustomerid_account", "account").as_deref(),
            Some("parentcustomerid")
        );
    }

    #[test]
    fn a_type_that_cannot_fill_its_column_is_named_with_the_one_that_can() {
        use crate::mapping::convert::ChoiceMap;
        let attr = plain;
        let int = Converter::Integer {
            wide: false,
            decimal: '.',
        };
        let text = Converter::Text { max_length: None };
        let datetime = Converter::DateTime {
            formats: Vec::new(),
            tz: jiff::tz::TimeZone::UTC,
        };
        // The mismatches the metadata issue names.
        let cases = [
            (
                &int,
                attr("Money", false),
                "is int but the column is Money: use type = \"money\"",
            ),
            (&datetime, attr("DateTime", true), "use type = \"dateonly\""),
            (
                &text,
                attr("Lookup", false),
                "bind it with lookup = \"<entity set>\"",
            ),
            (
                &Converter::Choice(ChoiceMap::default()),
                attr("Boolean", false),
                "is choice but the column is Boolean: use type = \"bool\"",
            ),
        ];
        for (converter, a, want) in cases {
            let got = type_problem(converter, &a).unwrap_or_default();
            assert!(got.contains(want), "{got}");
        }
        // What fits, and kinds this check does not know, pass.
        assert_eq!(type_problem(&int, &attr("Integer", false)), None);
        assert_eq!(type_problem(&datetime, &attr("DateTime", false)), None);
        assert_eq!(type_problem(&text, &attr("Memo", false)), None);
        assert_eq!(type_problem(&text, &attr("EntityName", false)), None);
        assert_eq!(
            type_problem(
                &Converter::Guid { derive: None },
                &attr("Uniqueidentifier", false)
            ),
            None
        );
    }

    #[test]
    fn an_unusable_mapping_wins_over_missing_privileges() {
        let ready = JobCheck::default();
        let missing = JobCheck {
            header: "contacts.toml -> contacts (upsert)".into(),
            missing: vec!["prvAppendToAccount (to be the target of lookup x)".into()],
            ..JobCheck::default()
        };
        let unusable = JobCheck {
            header: "o.toml -> opportunities (create)".into(),
            unusable: vec!["unknown entity set 'opportunities'".into()],
            ..JobCheck::default()
        };
        assert_eq!(worst(&[]), Exit::Success);
        assert_eq!(worst(&[JobCheck::default()]), Exit::Success);
        assert_eq!(worst(&[ready, missing]), Exit::Auth);
        let missing = JobCheck {
            missing: vec!["p".into()],
            ..JobCheck::default()
        };
        assert_eq!(worst(&[missing, unusable]), Exit::Unusable);
    }

    #[test]
    fn a_refusal_lists_every_problem_and_the_role_hint() {
        let checks = [
            JobCheck {
                header: "accounts.toml -> accounts (upsert)".into(),
                ..JobCheck::default()
            },
            JobCheck {
                header: "contacts.toml -> contacts (upsert)".into(),
                missing: vec!["prvAppendToAccount (to be the target of lookup p)".into()],
                ..JobCheck::default()
            },
            JobCheck {
                header: "o.toml -> opportunities (create)".into(),
                unusable: vec!["unknown entity set 'opportunities'".into()],
                ..JobCheck::default()
            },
        ];
        let e = refuse_unless_ready(&checks, 3, "mapping", "nothing sent", &mut Quiet).unwrap_err();
        assert_eq!(Exit::for_error(&e), Exit::Unusable);
        let text = e.to_string();
        assert!(
            text.starts_with(
                "nothing sent: the check against the environment refused 2 of 3 mappings:"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "contacts.toml -> contacts (upsert): missing privileges: prvAppendToAccount"
            ),
            "{text}"
        );
        assert!(
            text.contains("o.toml -> opportunities (create): unknown entity set 'opportunities'"),
            "{text}"
        );
        assert!(text.contains("Security roles"), "{text}");
        assert!(
            !text.contains("accounts.toml"),
            "a ready mapping is not listed: {text}"
        );
        assert!(
            refuse_unless_ready(&checks[..1], 1, "mapping", "nothing sent", &mut Quiet).is_ok()
        );
    }
}
