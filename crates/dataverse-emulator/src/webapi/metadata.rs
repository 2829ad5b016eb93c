//! Metadata: service document, `$metadata` CSDL, `EntityDefinitions` (attributes, keys, one-to-many
//! and many-to-one relationships, option sets by attribute cast), `sdkmessagefilters`.
//!
//! Shapes from query-metadata-web-api.md, retrieve-metadata-name-metadataid.md and the
//! PowerApps-Samples metadata types (PROTOCOL.md §12). Unlike Dataverse, expanded `Attributes`
//! always carry their type-specific properties (MaxLength, OptionSet, Targets, …) so that one
//! request gives dvload everything it validates offline.

use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use uuid::Uuid;

use super::{Ctx, OpRequest};
use crate::catalog::{Catalog, Nav, Table};
use crate::config::{ColumnConfig, ColumnType, RequiredLevel};
use crate::error::{ApiError, OpResponse};
use crate::keys::{self, KeyLiteral, KeySpec};
use crate::values::edm_type;

/// A stable MetadataId derived from names.
pub fn metadata_id(parts: &[&str]) -> Uuid {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// `GET /api/data/v9.2/` (web-api-service-documents.md).
pub fn service_document(ctx: &Ctx) -> OpResponse {
    let value: Vec<Value> = ctx
        .catalog
        .tables
        .iter()
        .map(|t| json!({"name": t.set(), "kind": "EntitySet", "url": t.set()}))
        .collect();
    OpResponse::json(
        200,
        &json!({"@odata.context": format!("{}$metadata", ctx.api_root()), "value": value}),
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET $metadata`: a CSDL document for the catalogue (web-api-service-documents.md).
pub fn csdl(ctx: &Ctx) -> OpResponse {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<edmx:Edmx Version=\"4.0\" xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\">\n<edmx:DataServices>\n<Schema Namespace=\"Microsoft.Dynamics.CRM\" Alias=\"mscrm\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\">\n",
    );
    // systemuser and team derive from `principal`, whose key `ownerid` they inherit (an Owner
    // lookup's navigation property is of that type; PROTOCOL.md §4 on `systemusers(ownerid=…)`).
    let principal = |t: &Table| matches!(t.logical(), "systemuser" | "team");
    if ctx.catalog.tables.iter().any(principal) {
        x.push_str("<EntityType Name=\"principal\" Abstract=\"true\"><Key><PropertyRef Name=\"ownerid\" /></Key>\n<Property Name=\"ownerid\" Type=\"Edm.Guid\" />\n</EntityType>\n");
    }
    for t in &ctx.catalog.tables {
        if principal(t) {
            x.push_str(&format!(
                "<EntityType Name=\"{}\" BaseType=\"mscrm.principal\">\n<Property Name=\"{}\" Type=\"Edm.Guid\" />\n",
                t.logical(),
                t.pk()
            ));
        } else {
            x.push_str(&format!(
                "<EntityType Name=\"{}\"><Key><PropertyRef Name=\"{}\" /></Key>\n<Property Name=\"{}\" Type=\"Edm.Guid\" />\n",
                t.logical(),
                t.pk(),
                t.pk()
            ));
        }
        for c in &t.cfg.columns {
            if c.kind.is_lookup() {
                x.push_str(&format!(
                    "<Property Name=\"_{}_value\" Type=\"Edm.Guid\" />\n",
                    c.name
                ));
            } else {
                x.push_str(&format!(
                    "<Property Name=\"{}\" Type=\"{}\" />\n",
                    c.name,
                    edm_type(c.kind)
                ));
            }
        }
        let mut navs: Vec<_> = t.navs.values().collect();
        navs.sort_by(|a, b| a.name.cmp(&b.name));
        for n in navs {
            x.push_str(&format!(
                "<NavigationProperty Name=\"{}\" Type=\"mscrm.{}\"><ReferentialConstraint Property=\"_{}_value\" ReferencedProperty=\"{}\" /></NavigationProperty>\n",
                xml_escape(&n.name),
                n.entity_type(),
                n.attribute,
                match n.targets.as_slice() {
                    [one] => ctx.catalog.table(one).map_or("", |tt| tt.pk()),
                    _ => "ownerid",
                }
            ));
        }
        for c in &t.cfg.collections {
            x.push_str(&format!(
                "<NavigationProperty Name=\"{}\" Type=\"Collection(mscrm.{})\" />\n",
                xml_escape(&c.name),
                c.table
            ));
        }
        x.push_str("</EntityType>\n");
    }
    x.push_str("<ComplexType Name=\"WhoAmIResponse\"><Property Name=\"BusinessUnitId\" Type=\"Edm.Guid\" Nullable=\"false\" /><Property Name=\"UserId\" Type=\"Edm.Guid\" Nullable=\"false\" /><Property Name=\"OrganizationId\" Type=\"Edm.Guid\" Nullable=\"false\" /></ComplexType>\n");
    x.push_str("<Function Name=\"WhoAmI\"><ReturnType Type=\"mscrm.WhoAmIResponse\" Nullable=\"false\" /></Function>\n");
    x.push_str("<EntityContainer Name=\"System\">\n");
    for t in &ctx.catalog.tables {
        x.push_str(&format!(
            "<EntitySet Name=\"{}\" EntityType=\"Microsoft.Dynamics.CRM.{}\" />\n",
            t.set(),
            t.logical()
        ));
    }
    x.push_str("<FunctionImport Name=\"WhoAmI\" Function=\"Microsoft.Dynamics.CRM.WhoAmI\" />\n</EntityContainer>\n</Schema>\n</edmx:DataServices>\n</edmx:Edmx>\n");
    OpResponse {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/xml".into()),
            ("OData-Version".into(), "4.0".into()),
        ],
        body: x.into_bytes(),
        entity_id: None,
    }
}

/// A display name: English (or the schema name) first, then the other languages configured.
fn display_label(
    english: Option<&str>,
    schema: &str,
    others: &std::collections::BTreeMap<String, String>,
) -> Value {
    let one = |text: &str, lcid: u32| json!({"Label": text, "LanguageCode": lcid, "IsManaged": true, "MetadataId": metadata_id(&["label", text, &lcid.to_string()]).to_string(), "HasChanged": null});
    let first = one(english.unwrap_or(schema), 1033);
    let mut labels = vec![first.clone()];
    for (lcid, text) in others {
        labels.push(one(text, lcid.parse().unwrap_or(0)));
    }
    json!({"LocalizedLabels": labels, "UserLocalizedLabel": first})
}

fn label(text: &str) -> Value {
    let l = json!({"Label": text, "LanguageCode": 1033, "IsManaged": true, "MetadataId": metadata_id(&["label", text]).to_string(), "HasChanged": null});
    json!({"LocalizedLabels": [l.clone()], "UserLocalizedLabel": l})
}

fn type_names(kind: ColumnType) -> (&'static str, &'static str, &'static str) {
    // (AttributeType, AttributeTypeName.Value, @odata.type suffix) per PROTOCOL.md §12.2.
    match kind {
        ColumnType::String => ("String", "StringType", "StringAttributeMetadata"),
        ColumnType::Memo => ("Memo", "MemoType", "MemoAttributeMetadata"),
        ColumnType::Integer => ("Integer", "IntegerType", "IntegerAttributeMetadata"),
        ColumnType::BigInt => ("BigInt", "BigIntType", "BigIntAttributeMetadata"),
        ColumnType::Decimal => ("Decimal", "DecimalType", "DecimalAttributeMetadata"),
        ColumnType::Double => ("Double", "DoubleType", "DoubleAttributeMetadata"),
        ColumnType::Money => ("Money", "MoneyType", "MoneyAttributeMetadata"),
        ColumnType::Boolean => ("Boolean", "BooleanType", "BooleanAttributeMetadata"),
        ColumnType::Picklist => ("Picklist", "PicklistType", "PicklistAttributeMetadata"),
        ColumnType::MultiSelectPicklist => (
            "Virtual",
            "MultiSelectPicklistType",
            "MultiSelectPicklistAttributeMetadata",
        ),
        ColumnType::Status => ("Status", "StatusType", "StatusAttributeMetadata"),
        ColumnType::State => ("State", "StateType", "StateAttributeMetadata"),
        ColumnType::DateTime | ColumnType::DateOnly => {
            ("DateTime", "DateTimeType", "DateTimeAttributeMetadata")
        }
        ColumnType::Lookup => ("Lookup", "LookupType", "LookupAttributeMetadata"),
        ColumnType::Customer => ("Customer", "CustomerType", "LookupAttributeMetadata"),
        ColumnType::Owner => ("Owner", "OwnerType", "LookupAttributeMetadata"),
        ColumnType::Uniqueidentifier => (
            "Uniqueidentifier",
            "UniqueidentifierType",
            "AttributeMetadata",
        ),
    }
}

fn required_level(level: RequiredLevel) -> Value {
    let v = match level {
        RequiredLevel::None => "None",
        RequiredLevel::SystemRequired => "SystemRequired",
        RequiredLevel::ApplicationRequired => "ApplicationRequired",
        RequiredLevel::Recommended => "Recommended",
    };
    json!({"Value": v, "CanBeChanged": level != RequiredLevel::SystemRequired, "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"})
}

/// An attribute's metadata object.
pub fn attribute_json(table: &Table, col: &ColumnConfig) -> Map<String, Value> {
    let (at, atn, odata) = type_names(col.kind);
    let is_pk = col.name == table.pk();
    let mut m = Map::new();
    m.insert(
        "@odata.type".into(),
        json!(format!("#Microsoft.Dynamics.CRM.{odata}")),
    );
    m.insert("LogicalName".into(), json!(col.name));
    let schema = col.schema_name.clone().unwrap_or_else(|| col.name.clone());
    // Without a display name in the configuration, the schema name stands in for one.
    m.insert(
        "DisplayName".into(),
        display_label(col.display_name.as_deref(), &schema, &col.labels),
    );
    m.insert("SchemaName".into(), json!(schema));
    m.insert("EntityLogicalName".into(), json!(table.logical()));
    m.insert("AttributeType".into(), json!(at));
    m.insert("AttributeTypeName".into(), json!({"Value": atn}));
    m.insert("IsPrimaryId".into(), json!(is_pk));
    m.insert(
        "IsPrimaryName".into(),
        json!(col.name == table.cfg.primary_name),
    );
    m.insert("IsValidForCreate".into(), json!(!col.read_only));
    m.insert("IsValidForUpdate".into(), json!(!col.read_only && !is_pk));
    m.insert("IsValidForRead".into(), json!(true));
    m.insert(
        "IsCustomAttribute".into(),
        json!(col.name.starts_with("new_")),
    );
    m.insert(
        "RequiredLevel".into(),
        required_level(if is_pk {
            RequiredLevel::SystemRequired
        } else {
            col.required
        }),
    );
    m.insert(
        "MetadataId".into(),
        json!(metadata_id(&[table.logical(), &col.name]).to_string()),
    );
    if let Some(max) = col.max_length {
        m.insert("MaxLength".into(), json!(max));
        m.insert("DatabaseLength".into(), json!(max * 2));
    }
    if let Some(min) = col.min {
        m.insert("MinValue".into(), json!(min));
    }
    if let Some(max) = col.max {
        m.insert("MaxValue".into(), json!(max));
    }
    if let Some(p) = col.precision {
        m.insert("Precision".into(), json!(p));
    }
    if !col.targets.is_empty() {
        m.insert("Targets".into(), json!(col.targets));
    }
    match col.kind {
        ColumnType::DateTime => {
            let behavior = col.behavior.as_deref().unwrap_or("UserLocal");
            m.insert("DateTimeBehavior".into(), json!({"Value": behavior}));
            m.insert("Format".into(), json!("DateAndTime"));
        }
        ColumnType::DateOnly => {
            m.insert("DateTimeBehavior".into(), json!({"Value": "DateOnly"}));
            m.insert("Format".into(), json!("DateOnly"));
        }
        _ => {}
    }
    if col.kind == ColumnType::Boolean {
        // A BooleanOptionSetMetadata: TrueOption and FalseOption, no Options (query-metadata-
        // web-api.md, BooleanOptionSetMetadata); labels as configured (values 1 and 0), else
        // Yes / No, the labels of a new Yes/No column.
        let option = |value: i64, default: &str| {
            let text = col
                .options
                .iter()
                .find(|o| o.value == value)
                .map_or(default, |o| o.label.as_str());
            json!({"Value": value, "Label": label(text), "Description": {"LocalizedLabels": [], "UserLocalizedLabel": null}})
        };
        m.insert(
            "OptionSet".into(),
            json!({"MetadataId": metadata_id(&[table.logical(), &col.name, "options"]).to_string(), "Name": format!("{}_{}", table.logical(), col.name), "OptionSetType": "Boolean", "TrueOption": option(1, "Yes"), "FalseOption": option(0, "No")}),
        );
    } else if let Some(global) = &col.global_option_set {
        let set = json!({"MetadataId": metadata_id(&["globaloptionset", global]).to_string(), "Name": global, "IsGlobal": true, "OptionSetType": "Picklist", "Options": options_json(&col.options)});
        m.insert("OptionSet".into(), set.clone());
        m.insert("GlobalOptionSet".into(), set);
    } else if !col.options.is_empty() {
        m.insert(
            "OptionSet".into(),
            json!({"MetadataId": metadata_id(&[table.logical(), &col.name, "options"]).to_string(), "Name": format!("{}_{}", table.logical(), col.name), "IsGlobal": false, "OptionSetType": "Picklist", "Options": options_json(&col.options)}),
        );
    }
    m
}

fn options_json(options: &[crate::config::OptionConfig]) -> Vec<Value> {
    options
        .iter()
        .map(|o| json!({"Value": o.value, "Label": label(&o.label), "Description": {"LocalizedLabels": [], "UserLocalizedLabel": null}}))
        .collect()
}

/// `GET GlobalOptionSetDefinitions` and `GlobalOptionSetDefinitions(Name='…')`
/// (query-metadata-web-api.md, "Query global option sets"): `OptionSetMetadata`, `$select` only.
pub fn global_option_sets(
    ctx: &Ctx,
    req: &OpRequest,
    segment: &str,
) -> Result<OpResponse, ApiError> {
    let set_json = |g: &crate::config::GlobalOptionSetConfig| {
        let mut m = json!({
            "@odata.type": "#Microsoft.Dynamics.CRM.OptionSetMetadata",
            "MetadataId": metadata_id(&["globaloptionset", &g.name]).to_string(),
            "Name": g.name,
            "IsGlobal": true,
            "OptionSetType": "Picklist",
            "DisplayName": label(g.display_name.as_deref().unwrap_or(&g.name)),
            "Options": options_json(&g.options),
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        if let Some(select) = req
            .query_pairs()
            .into_iter()
            .find(|(k, _)| k == "$select")
            .map(|(_, v)| v)
        {
            let names: Vec<&str> = select.split(',').map(str::trim).collect();
            m.retain(|k, _| k == "MetadataId" || k == "@odata.type" || names.contains(&k.as_str()));
        }
        m
    };
    let sets = &ctx.catalog.global_option_sets;
    match segment.strip_prefix("GlobalOptionSetDefinitions") {
        Some("") => Ok(OpResponse::json(
            200,
            &json!({
                "@odata.context": ctx.context("GlobalOptionSetDefinitions"),
                "value": sets.iter().map(|g| Value::Object(set_json(g))).collect::<Vec<_>>(),
            }),
        )),
        Some(key) => {
            let name = key
                .strip_prefix("(Name='")
                .and_then(|k| k.strip_suffix("')"))
                .ok_or_else(|| ApiError::bad_uri(format!("The key '{key}' of GlobalOptionSetDefinitions is not (Name='…'); the emulator reads them by name")))?;
            let g = sets.iter().find(|g| g.name == name).ok_or_else(|| {
                ApiError::new(
                    404,
                    "0x80040217",
                    format!("Could not find optionset with name {name}"),
                )
            })?;
            let mut m = set_json(g);
            m.insert(
                "@odata.context".into(),
                json!(ctx.context("GlobalOptionSetDefinitions/$entity")),
            );
            Ok(OpResponse::json(200, &Value::Object(m)))
        }
        None => Err(ApiError::resource_not_found(segment)),
    }
}

fn all_attributes(table: &Table) -> Vec<Map<String, Value>> {
    let pk = table.columns[table.pk()].clone();
    std::iter::once(attribute_json(table, &pk))
        .chain(table.cfg.columns.iter().map(|c| attribute_json(table, c)))
        .collect()
}

fn keys_json(table: &Table) -> Vec<Map<String, Value>> {
    table
        .cfg
        .keys
        .iter()
        .map(|k| {
            let v = json!({
                "LogicalName": k.name,
                "SchemaName": k.name,
                "KeyAttributes": k.attributes,
                "EntityKeyIndexStatus": "Active",
                "EntityLogicalName": table.logical(),
                "MetadataId": metadata_id(&[table.logical(), "key", &k.name]).to_string(),
            });
            v.as_object().cloned().unwrap_or_default()
        })
        .collect()
}

/// The relationship a lookup makes: `referencing`'s navigation property `nav` to its target
/// (OneToManyRelationshipMetadata, entity-relationship-metadata.md: the same type describes a
/// relationship from either end; `ManyToOneRelationships` lists those of the referencing table).
fn relationship_json(catalog: &Catalog, referencing: &Table, nav: &Nav) -> Map<String, Value> {
    // An Owner lookup's relationship references the `owner` table (`owner_accounts`, the
    // partner of `ownerid` in Microsoft's `principal` EntityType reference).
    let owner = nav.targets.len() > 1;
    let referenced = catalog.table(nav.referenced_entity());
    let schema = if owner {
        format!("owner_{}", referencing.set())
    } else {
        format!(
            "{}_{}_{}",
            nav.referenced_entity(),
            referencing.logical(),
            nav.attribute
        )
    };
    // The referenced table's collection-valued navigation property for this lookup, when
    // configured; Dataverse names it after the relationship otherwise.
    let back = referenced
        .and_then(|t| {
            t.cfg
                .collections
                .iter()
                .find(|c| c.table == referencing.logical() && c.attribute == nav.attribute)
        })
        .map_or_else(|| schema.clone(), |c| c.name.clone());
    let v = json!({
        "@odata.type": "#Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "MetadataId": metadata_id(&[referencing.logical(), "relationship", &nav.name]).to_string(),
        "SchemaName": schema,
        "RelationshipType": "OneToManyRelationship",
        "IsCustomRelationship": false,
        "IsValidForAdvancedFind": true,
        "ReferencedEntity": nav.referenced_entity(),
        "ReferencedAttribute": if owner { "ownerid" } else { referenced.map_or("", |t| t.pk()) },
        "ReferencingEntity": referencing.logical(),
        "ReferencingAttribute": nav.attribute,
        "ReferencedEntityNavigationPropertyName": back,
        "ReferencingEntityNavigationPropertyName": nav.name,
    });
    v.as_object().cloned().unwrap_or_default()
}

/// The relationships in which `table` holds the lookup, ordered by navigation property.
fn many_to_one(catalog: &Catalog, table: &Table) -> Vec<Map<String, Value>> {
    let mut navs: Vec<&Nav> = table.navs.values().collect();
    navs.sort_by(|a, b| a.name.cmp(&b.name));
    navs.into_iter()
        .map(|n| relationship_json(catalog, table, n))
        .collect()
}

/// The relationships in which another table's lookup points at `table`.
fn one_to_many(catalog: &Catalog, table: &Table) -> Vec<Map<String, Value>> {
    catalog
        .tables
        .iter()
        .flat_map(|t| many_to_one(catalog, t))
        .filter(|r| r.get("ReferencedEntity").and_then(Value::as_str) == Some(table.logical()))
        .collect()
}

/// A collection-valued property of `EntityMetadata` (`Attributes`, `Keys`, the relationships),
/// or `None` when the entity type has none of that name. The emulator has no many-to-many
/// relationships: that list is empty.
pub(super) fn entity_collection(
    catalog: &Catalog,
    table: &Table,
    name: &str,
) -> Option<Vec<Map<String, Value>>> {
    Some(match name {
        "Attributes" => all_attributes(table),
        "Keys" => keys_json(table),
        "ManyToOneRelationships" => many_to_one(catalog, table),
        "OneToManyRelationships" => one_to_many(catalog, table),
        "ManyToManyRelationships" => Vec::new(),
        _ => return None,
    })
}

/// An attribute as `$select` and `$expand=OptionSet,GlobalOptionSet` ask, on one attribute or
/// on a cast collection of them (query-metadata-web-api.md: option sets come only expanded).
fn attribute_with_options(item: Map<String, Value>, options: &Options) -> Map<String, Value> {
    let option_set = item.get("OptionSet").cloned();
    let global = item.get("GlobalOptionSet").cloned();
    let mut item = project(item, &options.select);
    // Option sets are navigation properties: they come only expanded.
    item.remove("OptionSet");
    item.remove("GlobalOptionSet");
    for (n, nested) in &options.expand {
        let set = match n.as_str() {
            "OptionSet" => option_set.clone(),
            // A local option set is not a global one: null.
            "GlobalOptionSet" => Some(global.clone().unwrap_or(Value::Null)),
            _ => None,
        };
        if let Some(os) = set {
            let os = match os {
                Value::Object(m) => Value::Object(project(m, &nested.select)),
                other => other,
            };
            item.insert(n.clone(), os);
        }
    }
    item
}

pub(super) fn entity_json(table: &Table) -> Map<String, Value> {
    let v = json!({
        "LogicalName": table.logical(),
        "SchemaName": table.cfg.schema_name,
        "EntitySetName": table.set(),
        "LogicalCollectionName": table.set(),
        "PrimaryIdAttribute": table.pk(),
        "PrimaryNameAttribute": table.cfg.primary_name,
        "ObjectTypeCode": table.cfg.object_type_code,
        "IsOptimisticConcurrencyEnabled": true,
        // What clients filter on (`EntityDefinitions?$filter=IsPrivate eq false`): no table of
        // the emulator is private or an intersect table; a custom one carries a publisher
        // prefix (`new_project`); an activity has `activityid` for its primary id.
        "IsPrivate": false,
        "IsIntersect": false,
        "IsCustomEntity": table.logical().contains('_'),
        "IsActivity": table.pk() == "activityid",
        "DisplayName": display_label(table.cfg.display_name.as_deref(), &table.cfg.schema_name, &table.cfg.labels),
        "MetadataId": metadata_id(&[table.logical()]).to_string(),
        "Privileges": privileges_json(table),
    });
    v.as_object().cloned().unwrap_or_default()
}

/// `EntityMetadata.Privileges`: a `SecurityPrivilegeMetadata` for each right the emulator models
/// (learn.microsoft.com/…/webapi/reference/securityprivilegemetadata: `Name`, `PrivilegeId`,
/// `PrivilegeType` of the `PrivilegeType` enum, and the depths it can take). Clients read the
/// names here rather than composing them: an activity's are `prv…Activity`, systemuser's
/// `prv…User`.
fn privileges_json(table: &Table) -> Value {
    let list: Vec<Value> = crate::config::Right::ALL
        .iter()
        .filter(|&&right| table.has_right(right))
        .map(|&right| {
            let name = table.privilege(right);
            json!({
                "Name": name,
                "PrivilegeId": metadata_id(&["privilege", &name]).to_string(),
                "PrivilegeType": right.privilege_type(),
                "CanBeBasic": true,
                "CanBeLocal": true,
                "CanBeDeep": true,
                "CanBeGlobal": true,
                "CanBeEntityReference": false,
                "CanBeParentEntityReference": false,
            })
        })
        .collect();
    Value::Array(list)
}

/// Query options parsed from `$select`/`$filter`/`$expand` (nested options use `;`).
#[derive(Debug, Default)]
struct Options {
    select: Option<Vec<String>>,
    filter: Option<super::query::Expr>,
    expand: Vec<(String, Options)>,
}

fn split_top(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quote = false;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '\'' => quote = !quote,
            '(' if !quote => depth += 1,
            ')' if !quote => depth -= 1,
            _ => {}
        }
        if c == sep && depth == 0 && !quote {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn parse_options(pairs: &[(String, String)]) -> Result<Options, ApiError> {
    let mut o = Options::default();
    for (k, v) in pairs {
        match k.as_str() {
            "$select" => {
                o.select = Some(
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                )
            }
            "$filter" => {
                // Comparisons joined by and/or/not; a path `A/B` reads A.B, and a managed
                // property (`{"Value": …}`) compares by its value.
                o.filter = Some(
                    super::query::parse_filter(v)
                        .map_err(|m| ApiError::bad_uri(format!("Syntax error in $filter: {m}")))?,
                );
            }
            "$expand" => {
                for item in split_top(v, ',') {
                    let item = item.trim();
                    let (name, inner) = match item.find('(') {
                        Some(i) if item.ends_with(')') => {
                            (&item[..i], &item[i + 1..item.len() - 1])
                        }
                        _ => (item, ""),
                    };
                    let nested: Vec<(String, String)> = split_top(inner, ';')
                        .into_iter()
                        .filter_map(|p| {
                            p.split_once('=')
                                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                        })
                        .collect();
                    o.expand.push((name.to_string(), parse_options(&nested)?));
                }
            }
            // Top-level options were checked by the router; this is a nested one.
            other => {
                return Err(ApiError::bad_request(format!(
                    "The query parameter {other} is not supported"
                )));
            }
        }
    }
    Ok(o)
}

fn matches_filter(m: &Map<String, Value>, filter: &Option<super::query::Expr>) -> bool {
    let Some(filter) = filter else {
        return true;
    };
    let read = |path: &str| {
        let mut v = m.get(path.split('/').next().unwrap_or_default());
        for seg in path.split('/').skip(1) {
            v = v.and_then(|x| x.get(seg));
        }
        match v {
            Some(Value::Object(o)) if o.contains_key("Value") => o["Value"].clone(),
            Some(other) => other.clone(),
            None => Value::Null,
        }
    };
    super::query::eval_with(&read, filter)
}

fn project(mut m: Map<String, Value>, select: &Option<Vec<String>>) -> Map<String, Value> {
    if let Some(names) = select {
        m.retain(|k, _| k == "MetadataId" || k == "@odata.type" || names.iter().any(|n| n == k));
    }
    m
}

fn entity_with_options(
    catalog: &Catalog,
    table: &Table,
    o: &Options,
) -> Result<Map<String, Value>, ApiError> {
    let mut m = project(entity_json(table), &o.select);
    for (name, nested) in &o.expand {
        let Some(items) = entity_collection(catalog, table, name) else {
            return Err(ApiError::bad_uri(format!(
                "Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.EntityMetadata'."
            )));
        };
        let list: Vec<Value> = items
            .into_iter()
            .filter(|i| matches_filter(i, &nested.filter))
            .map(|i| Value::Object(project(i, &nested.select)))
            .collect();
        m.insert(name.clone(), Value::Array(list));
    }
    Ok(m)
}

fn find_table<'c>(ctx: &Ctx<'c>, seg: &str) -> Result<&'c Table, ApiError> {
    let (_, key) = keys::split_segment(seg).map_err(|e| ApiError::bad_uri(e.0))?;
    let key = key.unwrap_or_default();
    let spec = keys::parse_key(key).map_err(|e| ApiError::bad_uri(e.0))?;
    let table = match spec {
        KeySpec::Named(pairs) if pairs.len() == 1 && pairs[0].0 == "LogicalName" => {
            match &pairs[0].1 {
                KeyLiteral::String(name) => ctx.catalog.table(name),
                _ => None,
            }
        }
        KeySpec::Single(KeyLiteral::Guid(id)) => ctx
            .catalog
            .tables
            .iter()
            .find(|t| metadata_id(&[t.logical()]) == id),
        _ => None,
    };
    // Dataverse answers 404 "Could not find entity" for an unknown table (UNVERIFIED wording).
    table.ok_or_else(|| {
        ApiError::new(
            404,
            "0x80040217",
            format!("Could not find entity with key '{key}'."),
        )
    })
}

/// `GET EntityDefinitions…`
pub fn entity_definitions(
    ctx: &Ctx,
    req: &OpRequest,
    segs: &[String],
) -> Result<OpResponse, ApiError> {
    if req.method != "GET" {
        return Err(ApiError::new(
            405,
            "0x80060888",
            "The emulator's metadata is read-only (configure tables in the config file).",
        ));
    }
    let pairs = req.query_pairs();
    let options = parse_options(&pairs)?;
    let root = ctx.api_root();
    if segs[0] == "EntityDefinitions" && segs.len() == 1 {
        let list: Vec<Value> = ctx
            .catalog
            .tables
            .iter()
            // The filter reads the whole entity, whatever `$select` keeps.
            .filter(|t| matches_filter(&entity_json(t), &options.filter))
            .map(|t| entity_with_options(ctx.catalog, t, &options))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .map(Value::Object)
            .collect();
        return Ok(OpResponse::json(
            200,
            &json!({"@odata.context": format!("{root}$metadata#EntityDefinitions"), "value": list}),
        ));
    }
    let table = find_table(ctx, &segs[0])?;
    match segs.len() {
        1 => {
            let mut body = Map::new();
            body.insert(
                "@odata.context".into(),
                json!(format!(
                    "{root}$metadata#EntityDefinitions('{}')/$entity",
                    table.logical()
                )),
            );
            body.extend(entity_with_options(ctx.catalog, table, &options)?);
            Ok(OpResponse::json(200, &Value::Object(body)))
        }
        2 | 3 => {
            let (name, key) = keys::split_segment(&segs[1]).map_err(|e| ApiError::bad_uri(e.0))?;
            let Some(items) = entity_collection(ctx.catalog, table, name) else {
                return Err(ApiError::resource_not_found(name));
            };
            let cast = segs.get(2).map(|c| format!("#{c}"));
            let mut items: Vec<Map<String, Value>> = items
                .into_iter()
                .filter(|i| {
                    cast.as_ref().is_none_or(|c| {
                        i.get("@odata.type").and_then(Value::as_str) == Some(c.as_str())
                    })
                })
                .filter(|i| matches_filter(i, &options.filter))
                .collect();
            if let Some(key) = key {
                let Ok(KeySpec::Named(p)) = keys::parse_key(key) else {
                    return Err(ApiError::bad_uri(format!("Invalid key '{key}'.")));
                };
                let want = match p.first() {
                    Some((n, KeyLiteral::String(s))) if n == "LogicalName" => s.clone(),
                    _ => return Err(ApiError::bad_uri(format!("Invalid key '{key}'."))),
                };
                items.retain(|i| {
                    i.get("LogicalName").and_then(Value::as_str) == Some(want.as_str())
                });
                let Some(item) = items.pop() else {
                    return Err(ApiError::new(
                        404,
                        "0x80040217",
                        format!(
                            "Could not find attribute '{want}' on entity '{}'.",
                            table.logical()
                        ),
                    ));
                };
                let mut body = Map::new();
                body.insert(
                    "@odata.context".into(),
                    json!(format!(
                        "{root}$metadata#EntityDefinitions('{}')/{}/$entity",
                        table.logical(),
                        name
                    )),
                );
                body.extend(attribute_with_options(item, &options));
                return Ok(OpResponse::json(200, &Value::Object(body)));
            }
            let list: Vec<Value> = items
                .into_iter()
                .map(|i| Value::Object(attribute_with_options(i, &options)))
                .collect();
            Ok(OpResponse::json(
                200,
                &json!({"@odata.context": format!("{root}$metadata#EntityDefinitions('{}')/{}", table.logical(), name), "value": list}),
            ))
        }
        _ => Err(ApiError::resource_not_found(
            segs.last().map_or("", String::as_str),
        )),
    }
}

/// `GET sdkmessagefilters?…@message='CreateMultiple'&@table='account'`: the availability check of
/// bulk-operations.md; non-empty `value` means supported.
pub fn sdkmessagefilters(ctx: &Ctx, req: &OpRequest) -> Result<OpResponse, ApiError> {
    let pairs = req.query_pairs();
    let param = |n: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.trim().trim_matches('\'').to_string())
    };
    let (Some(message), Some(table)) = (param("@message"), param("@table")) else {
        return Err(ApiError::bad_uri(
            "The emulator answers sdkmessagefilters only for the bulk-operation availability query (@message, @table).",
        ));
    };
    let supported = matches!(
        message.as_str(),
        "CreateMultiple" | "UpdateMultiple" | "UpsertMultiple"
    ) && ctx
        .catalog
        .table(&table)
        .is_some_and(|t| t.cfg.bulk_operations);
    let value: Vec<Value> = if supported {
        vec![
            json!({"@odata.etag": "W/\"1\"", "sdkmessagefilterid": metadata_id(&[&message, &table]).to_string()}),
        ]
    } else {
        Vec::new()
    };
    Ok(OpResponse::json(
        200,
        &json!({"@odata.context": format!("{}$metadata#sdkmessagefilters(sdkmessagefilterid)", ctx.api_root()), "value": value}),
    ))
}
