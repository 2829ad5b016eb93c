//! The rows an environment starts with: each application user's `systemuser` record and the
//! configuration's `[[records]]` (people, teams, reference data), checked against their tables.

use serde_json::{Map, json};
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::config::{ColumnType, Config, RecordConfig};
use crate::state::{Record, Store};

/// Inserts the configured rows into `store`. A row naming an unknown table or column, a lookup,
/// a value its column cannot hold, or an id twice is an error naming the row.
pub fn seed(store: &mut Store, catalog: &Catalog, config: &Config) -> Result<(), String> {
    // Each row with the name an error gives it.
    let mut rows: Vec<(String, RecordConfig)> = Vec::new();
    if catalog.table("systemuser").is_some() {
        // The application users' own records, named as the app registration (what `whoami`
        // shows as the user's full name).
        for u in &config.application_users {
            let name = config
                .apps
                .iter()
                .find(|a| a.client_id.eq_ignore_ascii_case(&u.app_id))
                .map_or_else(|| u.app_id.clone(), |a| a.name.clone());
            let fields = json!({
                "lastname": name,
                "domainname": format!("{}@application", u.app_id.to_lowercase()),
                "applicationid": u.app_id,
                "isdisabled": u.disabled,
            });
            rows.push((
                format!("application user {}", u.app_id),
                RecordConfig {
                    table: "systemuser".into(),
                    id: u.systemuser_id.clone(),
                    fields: fields.as_object().cloned().unwrap_or_default(),
                },
            ));
        }
    }
    rows.extend(
        config
            .records
            .iter()
            .enumerate()
            .map(|(n, r)| (format!("records[{n}] ({} {})", r.table, r.id), r.clone())),
    );
    let solutions = solution_rows(catalog, config)?;
    // Rows of user-owned tables are the first application user's.
    let owner = config
        .application_users
        .first()
        .map(|u| json!({ "id": u.systemuser_id, "table": "systemuser" }));
    // Rows of the configuration take plain values; a solution component's `solutionid`, set
    // here, is the one lookup.
    let rows = rows
        .iter()
        .map(|(at, row)| (at, row, false))
        .chain(solutions.iter().map(|(at, row)| (at, row, true)));
    for (at, row, lookups) in rows {
        let table = catalog
            .table(&row.table)
            .ok_or_else(|| format!("{at}: no table is named '{}'", row.table))?;
        let id: Uuid = row
            .id
            .parse()
            .map_err(|_| format!("{at}: id '{}' is not a GUID", row.id))?;
        let mut fields = Map::new();
        for (name, value) in &row.fields {
            if lookups && value.get("table").is_some() {
                fields.insert(name.clone(), value.clone());
                continue;
            }
            let col = table
                .columns
                .get(name)
                .filter(|_| name != table.pk())
                .ok_or_else(|| format!("{at}: table {} has no column '{name}'", table.logical()))?;
            if col.kind.is_lookup() {
                return Err(format!(
                    "{at}: '{name}' is a lookup; records take text, numbers and booleans"
                ));
            }
            let v = crate::values::coerce(table, col, value)
                .map_err(|e| format!("{at}: column '{name}': {}", e.message))?;
            fields.insert(name.clone(), v);
        }
        for col in table
            .cfg
            .columns
            .iter()
            .filter(|c| c.kind == ColumnType::Owner)
        {
            if let Some(owner) = &owner {
                fields.insert(col.name.clone(), owner.clone());
            }
        }
        let version = store.bump_version();
        crate::webapi::crud::finish_fields(table, &mut fields, None, version);
        let record = Record {
            id,
            seq: store.next_seq(),
            version,
            fields,
        };
        store
            .seed(table, record)
            .map_err(|e| format!("{at}: {}", e.message))?;
    }
    Ok(())
}

/// The `solution` row of each `[[solutions]]` and a `solutioncomponent` row (type 1, Entity,
/// `objectid` the table's `MetadataId`) for each of its tables.
fn solution_rows(
    catalog: &Catalog,
    config: &Config,
) -> Result<Vec<(String, RecordConfig)>, String> {
    let mut out = Vec::new();
    if config.solutions.is_empty() {
        return Ok(out);
    }
    if catalog.table("solution").is_none() || catalog.table("solutioncomponent").is_none() {
        return Err(
            "[[solutions]] need the tables solution and solutioncomponent (the built-in configuration has them)"
                .into(),
        );
    }
    let id = |parts: &[&str]| crate::webapi::metadata::metadata_id(parts).to_string();
    for (n, s) in config.solutions.iter().enumerate() {
        let at = format!("solutions[{n}] ({})", s.unique_name);
        let solution_id = id(&["solution", &s.unique_name]);
        let fields = json!({
            "uniquename": s.unique_name,
            "friendlyname": s.friendly_name.clone().unwrap_or_else(|| s.unique_name.clone()),
            "version": "1.0.0.0",
            "ismanaged": false,
        });
        out.push((
            at.clone(),
            RecordConfig {
                table: "solution".into(),
                id: solution_id.clone(),
                fields: fields.as_object().cloned().unwrap_or_default(),
            },
        ));
        for (i, t) in s.tables.iter().enumerate() {
            if catalog.table(t).is_none() {
                return Err(format!("{at}: no table is named '{t}'"));
            }
            if s.tables[..i].contains(t) {
                return Err(format!("{at}: table '{t}' is listed twice"));
            }
            let fields = json!({
                "solutionid": { "id": solution_id, "table": "solution" },
                "objectid": id(&[t]),
                "componenttype": 1,
            });
            out.push((
                format!("{at}: table {t}"),
                RecordConfig {
                    table: "solutioncomponent".into(),
                    id: id(&["solutioncomponent", &s.unique_name, t]),
                    fields: fields.as_object().cloned().unwrap_or_default(),
                },
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn seeded(config: &Config) -> Result<Store, String> {
        let catalog = std::sync::Arc::new(Catalog::build(config)?);
        let mut store = Store::new(catalog.clone(), 0);
        seed(&mut store, &catalog, config)?;
        Ok(store)
    }

    #[test]
    fn the_built_in_environment_has_its_people_teams_and_application_user() {
        let store = seeded(&Config::default()).unwrap();
        let users = store.rows("systemuser");
        assert_eq!(users.len(), 4);
        let app = store
            .get(
                "systemuser",
                &crate::defaults::APP_USER_ID.parse::<Uuid>().unwrap(),
            )
            .unwrap();
        assert_eq!(app.fields["fullname"], "dvload");
        assert!(users.iter().any(|u| u.fields["fullname"] == "Avery Howard"
            && u.fields["internalemailaddress"] == "avery.howard@emulator.onmicrosoft.com"));
        assert_eq!(store.rows("team").len(), 2);
    }

    #[test]
    fn a_solution_is_a_row_and_one_entity_component_per_table() {
        let mut config = Config::default();
        config.solutions.push(crate::config::SolutionConfig {
            unique_name: "Sales".into(),
            friendly_name: None,
            tables: vec!["product".into()],
        });
        let store = seeded(&config).unwrap();
        let solutions = store.rows("solution");
        assert_eq!(solutions.len(), 1);
        assert_eq!(solutions[0].fields["friendlyname"], "Sales");
        let components = store.rows("solutioncomponent");
        assert_eq!(components.len(), 1);
        assert_eq!(
            components[0].fields["objectid"],
            crate::webapi::metadata::metadata_id(&["product"]).to_string()
        );
        assert_eq!(components[0].fields["componenttype"], 1);
        assert_eq!(
            components[0].lookup("solutionid").map(|(id, _)| id),
            Some(solutions[0].id)
        );
        config.solutions[0].tables.push("product".into());
        assert_eq!(
            seeded(&config).err().unwrap_or_default(),
            "solutions[0] (Sales): table 'product' is listed twice"
        );
        config.solutions[0].tables[1] = "prodcut".into();
        assert_eq!(
            seeded(&config).err().unwrap_or_default(),
            "solutions[0] (Sales): no table is named 'prodcut'"
        );
    }

    #[test]
    fn records_print_as_plain_toml_and_read_back() {
        let config = Config::default();
        let text = config.to_toml_string();
        assert!(text.contains("teamtype = 0"), "{text}");
        assert!(!text.contains("serde_json"), "{text}");
        let back = Config::from_toml_str(&text, "printed").unwrap();
        assert_eq!(back.records, config.records);
    }

    #[test]
    fn a_record_the_table_cannot_hold_is_named() {
        let with = |table: &str, id: &str, field: (&str, Value)| {
            let config = Config {
                records: vec![RecordConfig {
                    table: table.into(),
                    id: id.into(),
                    fields: [(field.0.to_string(), field.1)].into_iter().collect(),
                }],
                ..Config::default()
            };
            seeded(&config).err().unwrap_or_default()
        };
        let id = "c0000000-0000-4000-8000-000000000001";
        assert_eq!(
            with("people", id, ("name", json!("x"))),
            format!("records[0] (people {id}): no table is named 'people'")
        );
        assert_eq!(
            with("team", "7", ("name", json!("x"))),
            "records[0] (team 7): id '7' is not a GUID"
        );
        assert_eq!(
            with("team", id, ("nmae", json!("x"))),
            format!("records[0] (team {id}): table team has no column 'nmae'")
        );
        assert_eq!(
            with("account", id, ("parentaccountid", json!(id))),
            format!(
                "records[0] (account {id}): 'parentaccountid' is a lookup; records take text, numbers and booleans"
            )
        );
        assert!(
            with("team", id, ("teamtype", json!("Owner")))
                .starts_with(&format!("records[0] (team {id}): column 'teamtype': "))
        );
    }
}
