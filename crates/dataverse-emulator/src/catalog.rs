//! The validated table catalogue: tables by logical and entity-set name, columns, navigation.

use std::collections::HashMap;

use crate::config::{ColumnConfig, ColumnType, Config, KeyConfig, TableConfig};

/// A single-valued navigation property: which lookup column it sets and to which table.
#[derive(Debug, Clone)]
pub struct Nav {
    /// Navigation property name (case-sensitive).
    pub name: String,
    /// Lookup column it writes.
    pub attribute: String,
    /// The tables it may point at: one, or for an Owner lookup systemuser and team (the
    /// property's type is then their base type `principal`).
    pub targets: Vec<String>,
}

impl Nav {
    /// Whether it may point at table `logical`.
    pub fn reaches(&self, logical: &str) -> bool {
        self.targets.iter().any(|t| t == logical)
    }

    /// The entity type it is declared with: its one target's, or `principal` (the base type of
    /// systemuser and team; Microsoft's `principal` EntityType reference) for an Owner lookup.
    pub fn entity_type(&self) -> &str {
        match self.targets.as_slice() {
            [one] => one,
            _ => "principal",
        }
    }

    /// The referenced entity of its relationship: its one target, or `owner` (the relationship
    /// `owner_accounts` references the `owner` table, whose key `ownerid` is a systemuserid or a
    /// teamid).
    pub fn referenced_entity(&self) -> &str {
        match self.targets.as_slice() {
            [one] => one,
            _ => "owner",
        }
    }
}

/// A table with its indexes.
#[derive(Debug, Clone)]
pub struct Table {
    /// The configuration.
    pub cfg: TableConfig,
    /// Columns by logical name (including the primary id column).
    pub columns: HashMap<String, ColumnConfig>,
    /// Single-valued navigation properties by name.
    pub navs: HashMap<String, Nav>,
}

impl Table {
    /// Logical name.
    pub fn logical(&self) -> &str {
        &self.cfg.logical_name
    }

    /// Entity set name.
    pub fn set(&self) -> &str {
        &self.cfg.entity_set
    }

    /// Primary id attribute.
    pub fn pk(&self) -> &str {
        &self.cfg.primary_id
    }

    /// The alternate key whose attributes are exactly `names` (any order).
    pub fn key_for(&self, names: &[&str]) -> Option<&KeyConfig> {
        self.cfg.keys.iter().find(|k| {
            k.attributes.len() == names.len()
                && names.iter().all(|n| k.attributes.iter().any(|a| a == n))
        })
    }

    /// Whether its rows have an owner (a user or a team): only then has it `prvAssign…`.
    pub fn user_owned(&self) -> bool {
        self.cfg.columns.iter().any(|c| c.kind == ColumnType::Owner)
    }

    /// Whether it has a privilege for `right` (`Assign` belongs to user-owned tables only).
    pub fn has_right(&self, right: crate::config::Right) -> bool {
        right != crate::config::Right::Assign || self.user_owned()
    }

    /// The name of its privilege for `right` (`prvCreateAccount`, `prvReadActivity` for a task).
    pub fn privilege(&self, right: crate::config::Right) -> String {
        let stem = self
            .cfg
            .privileges_as
            .as_deref()
            .unwrap_or(&self.cfg.schema_name);
        format!("{}{stem}", right.prefix())
    }

    /// The collection-valued navigation property called `name`.
    pub fn collection(&self, name: &str) -> Option<&crate::config::CollectionConfig> {
        self.cfg.collections.iter().find(|c| c.name == name)
    }
}

/// All tables.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Tables in configuration order.
    pub tables: Vec<Table>,
    by_logical: HashMap<String, usize>,
    by_set: HashMap<String, usize>,
    /// The global option sets (`GlobalOptionSetDefinitions`).
    pub global_option_sets: Vec<crate::config::GlobalOptionSetConfig>,
}

impl Catalog {
    /// Validates the table part of `config`.
    pub fn build(config: &Config) -> Result<Catalog, String> {
        let mut catalog = Catalog::default();
        let tables = with_global_options(config)?;
        catalog.global_option_sets = config.global_option_sets.clone();
        for t in &tables {
            if catalog.by_logical.contains_key(&t.logical_name) {
                return Err(format!("table '{}' is defined twice", t.logical_name));
            }
            if catalog.by_set.contains_key(&t.entity_set) {
                return Err(format!("entity set '{}' is defined twice", t.entity_set));
            }
            let mut columns = HashMap::new();
            let mut pk = ColumnConfig::new(&t.primary_id, ColumnType::Uniqueidentifier);
            pk.read_only = false;
            columns.insert(t.primary_id.clone(), pk);
            let mut navs = HashMap::new();
            for c in &t.columns {
                if columns.insert(c.name.clone(), c.clone()).is_some() {
                    return Err(format!(
                        "column '{}.{}' is defined twice",
                        t.logical_name, c.name
                    ));
                }
                match (&c.behavior, c.kind) {
                    (None, _) => {}
                    (Some(b), ColumnType::DateTime)
                        if b == "UserLocal" || b == "TimeZoneIndependent" => {}
                    (Some(b), _) => {
                        return Err(format!(
                            "column '{}.{}': behavior '{b}' is not one a DateTime column takes (UserLocal, TimeZoneIndependent)",
                            t.logical_name, c.name
                        ));
                    }
                }
                let is_lookup = c.kind.is_lookup();
                if is_lookup {
                    if c.targets.is_empty() {
                        return Err(format!(
                            "lookup '{}.{}' has no targets",
                            t.logical_name, c.name
                        ));
                    }
                    // An Owner column has one navigation property named as the column, of
                    // type principal; a single-target lookup one named as the column.
                    // A user- or team-owned table has one Owner column, `ownerid`, to both.
                    let owner = c.kind == ColumnType::Owner;
                    let both = c.targets.len() == 2
                        && ["systemuser", "team"]
                            .iter()
                            .all(|x| c.targets.iter().any(|t| t == x));
                    if owner && (c.name != "ownerid" || !c.navigation.is_empty() || !both) {
                        return Err(format!(
                            "owner '{}.{}': a table's Owner column is ownerid, with targets = [\"systemuser\", \"team\"] and no navigation (its one navigation property is ownerid)",
                            t.logical_name, c.name
                        ));
                    }
                    if !owner && c.navigation.is_empty() && c.targets.len() != 1 {
                        return Err(format!(
                            "lookup '{}.{}' has several targets: name its navigation properties",
                            t.logical_name, c.name
                        ));
                    }
                    if c.navigation.is_empty() {
                        navs.insert(
                            c.name.clone(),
                            Nav {
                                name: c.name.clone(),
                                attribute: c.name.clone(),
                                targets: c.targets.clone(),
                            },
                        );
                    }
                    for n in &c.navigation {
                        navs.insert(
                            n.name.clone(),
                            Nav {
                                name: n.name.clone(),
                                attribute: c.name.clone(),
                                targets: vec![n.target.clone()],
                            },
                        );
                    }
                }
                if matches!(
                    c.kind,
                    ColumnType::Picklist | ColumnType::MultiSelectPicklist
                ) && c.options.is_empty()
                {
                    return Err(format!(
                        "choice '{}.{}' has no options",
                        t.logical_name, c.name
                    ));
                }
            }
            for k in &t.keys {
                if k.attributes.is_empty() || k.attributes.len() > 16 {
                    return Err(format!(
                        "key '{}.{}' must have 1 to 16 columns",
                        t.logical_name, k.name
                    ));
                }
                for a in &k.attributes {
                    if !columns.contains_key(a) {
                        return Err(format!(
                            "key '{}.{}' names unknown column '{a}'",
                            t.logical_name, k.name
                        ));
                    }
                }
            }
            let index = catalog.tables.len();
            catalog.by_logical.insert(t.logical_name.clone(), index);
            catalog.by_set.insert(t.entity_set.clone(), index);
            catalog.tables.push(Table {
                cfg: t.clone(),
                columns,
                navs,
            });
        }
        // Cross-table references.
        for t in &catalog.tables {
            for n in t.navs.values() {
                if let Some(unknown) = n
                    .targets
                    .iter()
                    .find(|target| !catalog.by_logical.contains_key(*target))
                {
                    return Err(format!(
                        "navigation '{}.{}' targets unknown table '{unknown}'",
                        t.logical(),
                        n.name,
                    ));
                }
            }
            for c in &t.cfg.collections {
                let Some(related) = catalog.table(&c.table) else {
                    return Err(format!(
                        "collection '{}.{}' names unknown table '{}'",
                        t.logical(),
                        c.name,
                        c.table
                    ));
                };
                if !related.columns.contains_key(&c.attribute) {
                    return Err(format!(
                        "collection '{}.{}' names unknown column '{}.{}'",
                        t.logical(),
                        c.name,
                        c.table,
                        c.attribute
                    ));
                }
            }
        }
        for role in &config.roles {
            for p in &role.privileges {
                if catalog.table(&p.table).is_none() {
                    return Err(format!(
                        "role '{}' names unknown table '{}'",
                        role.name, p.table
                    ));
                }
            }
        }
        Ok(catalog)
    }

    /// Table by logical name.
    pub fn table(&self, logical: &str) -> Option<&Table> {
        self.by_logical.get(logical).map(|&i| &self.tables[i])
    }

    /// Table by entity set name.
    pub fn by_set(&self, set: &str) -> Option<&Table> {
        self.by_set.get(set).map(|&i| &self.tables[i])
    }
}

/// The configured tables, each choice column that names a global option set given its options.
fn with_global_options(config: &Config) -> Result<Vec<crate::config::TableConfig>, String> {
    let mut tables = config.tables.clone();
    for t in &mut tables {
        for c in &mut t.columns {
            let Some(name) = &c.global_option_set else {
                continue;
            };
            let set = config
                .global_option_sets
                .iter()
                .find(|s| &s.name == name)
                .ok_or_else(|| {
                    format!(
                        "column '{}.{}': no global option set is named '{name}'",
                        t.logical_name, c.name
                    )
                })?;
            if !matches!(
                c.kind,
                ColumnType::Picklist | ColumnType::MultiSelectPicklist
            ) {
                return Err(format!(
                    "column '{}.{}': a global option set belongs to a Picklist or MultiSelectPicklist column",
                    t.logical_name, c.name
                ));
            }
            if !c.options.is_empty() {
                return Err(format!(
                    "column '{}.{}': options and global_option_set both given; keep one",
                    t.logical_name, c.name
                ));
            }
            c.options = set.options.clone();
        }
    }
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_has_one_owner_column_ownerid_to_users_and_teams() {
        let with = |name: &str, targets: &[&str]| {
            let mut config = Config::default();
            let product = config
                .tables
                .iter_mut()
                .find(|t| t.logical_name == "product")
                .unwrap();
            let mut c = ColumnConfig::new(name, ColumnType::Owner);
            c.targets = targets.iter().map(|t| t.to_string()).collect();
            product.columns.push(c);
            Catalog::build(&config).err()
        };
        assert_eq!(with("ownerid", &["team", "systemuser"]), None);
        let refused = "a table's Owner column is ownerid, with targets = [\"systemuser\", \"team\"] and no navigation (its one navigation property is ownerid)";
        assert_eq!(
            with("backupowner", &["systemuser", "team"]),
            Some(format!("owner 'product.backupowner': {refused}"))
        );
        assert_eq!(
            with("ownerid", &["team"]),
            Some(format!("owner 'product.ownerid': {refused}"))
        );
    }

    #[test]
    fn a_date_time_behavior_is_one_a_date_time_column_takes() {
        let mut config = Config::default();
        let account = config
            .tables
            .iter_mut()
            .find(|t| t.logical_name == "account")
            .unwrap();
        let mut c = ColumnConfig::new("new_openedon", ColumnType::DateTime);
        c.behavior = Some("TimeZoneIndependent".into());
        account.columns.push(c);
        assert!(Catalog::build(&config).is_ok());
        let account = config
            .tables
            .iter_mut()
            .find(|t| t.logical_name == "account")
            .unwrap();
        account.columns.last_mut().unwrap().behavior = Some("Local".into());
        assert_eq!(
            Catalog::build(&config).unwrap_err(),
            "column 'account.new_openedon': behavior 'Local' is not one a DateTime column takes (UserLocal, TimeZoneIndependent)"
        );
    }
}
