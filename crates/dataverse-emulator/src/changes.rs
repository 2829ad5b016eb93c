//! Changes to the environment while a client runs ([`crate::config::ChangeConfig`]): the table
//! catalogue and the rights taken away at each stage, built once at start and chosen per request.

use std::collections::HashSet;
use std::sync::Arc;

use crate::auth::AppUser;
use crate::catalog::Catalog;
use crate::config::{ChangeConfig, Config, Right};

/// The environment from a number of `$batch` requests on.
#[derive(Debug)]
pub struct Stage {
    /// `$batch` requests received before this stage starts.
    pub after_batches: u64,
    /// The catalogue without the tables and columns deleted so far.
    pub catalog: Arc<Catalog>,
    /// Rights taken away so far: (table logical name, right).
    pub revoked: Vec<(String, Right)>,
}

impl Stage {
    /// `user` without the rights this stage took away.
    pub fn restrict(&self, user: &mut AppUser) {
        for (table, right) in &self.revoked {
            if let Some(rights) = user.privileges.get_mut(table) {
                rights.remove(right);
            }
        }
    }
}

/// The stages of `config.changes`, in order; each one holds the changes before it too.
pub fn stages(config: &Config) -> Result<Vec<Stage>, String> {
    let mut changes: Vec<&ChangeConfig> = config.changes.iter().collect();
    changes.sort_by_key(|c| c.after_batches);
    let mut current = config.clone();
    let mut revoked = Vec::new();
    let mut out = Vec::with_capacity(changes.len());
    for change in changes {
        let at = |e: String| format!("change after {} batches: {e}", change.after_batches);
        apply(&mut current, change).map_err(at)?;
        for p in &change.revoke {
            if current.tables.iter().all(|t| t.logical_name != p.table) {
                return Err(at(format!("revoke names unknown table '{}'", p.table)));
            }
            revoked.extend(p.rights.iter().map(|r| (p.table.clone(), *r)));
        }
        out.push(Stage {
            after_batches: change.after_batches,
            catalog: Arc::new(Catalog::build(&current).map_err(at)?),
            revoked: revoked.clone(),
        });
    }
    Ok(out)
}

/// Deletes the tables and columns `change` names from `config`, with what refers to them.
fn apply(config: &mut Config, change: &ChangeConfig) -> Result<(), String> {
    let dropped: HashSet<&str> = change.drop_tables.iter().map(String::as_str).collect();
    for t in &dropped {
        if config.tables.iter().all(|x| x.logical_name != *t) {
            return Err(format!("drop_tables names unknown table '{t}'"));
        }
    }
    config
        .tables
        .retain(|t| !dropped.contains(t.logical_name.as_str()));
    for role in &mut config.roles {
        role.privileges
            .retain(|p| !dropped.contains(p.table.as_str()));
    }
    for t in &mut config.tables {
        for c in &mut t.columns {
            c.targets.retain(|x| !dropped.contains(x.as_str()));
            c.navigation
                .retain(|n| !dropped.contains(n.target.as_str()));
        }
        t.columns
            .retain(|c| !c.kind.is_lookup() || !c.targets.is_empty());
    }
    for d in &change.drop_columns {
        let Some(t) = config.tables.iter_mut().find(|t| t.logical_name == d.table) else {
            return Err(format!("drop_columns names unknown table '{}'", d.table));
        };
        for name in &d.columns {
            if t.columns.iter().all(|c| &c.name != name) {
                return Err(format!(
                    "drop_columns names unknown column '{}.{name}'",
                    d.table
                ));
            }
            if t.keys.iter().any(|k| k.attributes.contains(name)) {
                return Err(format!(
                    "drop_columns: '{}.{name}' is a key column (not supported)",
                    d.table
                ));
            }
        }
        t.columns.retain(|c| !d.columns.contains(&c.name));
    }
    // Collections whose related table or lookup column is gone.
    let columns: HashSet<(String, String)> = config
        .tables
        .iter()
        .flat_map(|t| {
            t.columns
                .iter()
                .map(|c| (t.logical_name.clone(), c.name.clone()))
        })
        .collect();
    for t in &mut config.tables {
        t.collections
            .retain(|c| columns.contains(&(c.table.clone(), c.attribute.clone())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{TableColumnsConfig, TablePrivilegesConfig};

    #[test]
    fn stages_add_up_and_drop_what_refers_to_a_deleted_table() {
        let config = Config {
            changes: vec![
                ChangeConfig {
                    after_batches: 5,
                    drop_tables: vec!["contact".into()],
                    ..ChangeConfig::default()
                },
                ChangeConfig {
                    after_batches: 2,
                    revoke: vec![TablePrivilegesConfig {
                        table: "account".into(),
                        rights: vec![Right::Create],
                    }],
                    drop_columns: vec![TableColumnsConfig {
                        table: "account".into(),
                        columns: vec!["telephone1".into()],
                    }],
                    ..ChangeConfig::default()
                },
            ],
            ..Config::default()
        };
        let stages = stages(&config).expect("valid changes");
        assert_eq!(
            stages.iter().map(|s| s.after_batches).collect::<Vec<_>>(),
            [2, 5]
        );
        let account = stages[0].catalog.table("account").expect("account");
        assert!(!account.columns.contains_key("telephone1"));
        assert!(stages[0].catalog.by_set("contacts").is_some());
        assert!(stages[1].catalog.by_set("contacts").is_none());
        let account = stages[1].catalog.table("account").expect("account");
        assert!(
            !account.columns.contains_key("telephone1"),
            "the later stage keeps the earlier change"
        );
        assert_eq!(stages[1].revoked, [("account".to_string(), Right::Create)]);
        let mut user = AppUser::superuser(&config);
        stages[1].restrict(&mut user);
        assert!(!user.privileges["account"].contains(&Right::Create));
        assert!(user.privileges["account"].contains(&Right::Write));
    }

    #[test]
    fn a_change_naming_an_unknown_table_or_a_key_column_is_refused() {
        let mut config = Config {
            changes: vec![ChangeConfig {
                drop_tables: vec!["salesorder".into()],
                ..ChangeConfig::default()
            }],
            ..Config::default()
        };
        assert!(
            stages(&config)
                .unwrap_err()
                .contains("unknown table 'salesorder'")
        );
        config.changes = vec![ChangeConfig {
            drop_columns: vec![TableColumnsConfig {
                table: "account".into(),
                columns: vec!["accountnumber".into()],
            }],
            ..ChangeConfig::default()
        }];
        assert!(stages(&config).unwrap_err().contains("key column"));
    }
}
