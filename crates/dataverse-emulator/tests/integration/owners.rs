//! Users, teams and Owner lookups: `systemuser` as a table whose rows come from the
//! configuration, `ownerid` bound to a user or a team, and the caller as the default owner.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;
use dataverse_emulator::Config;
use dataverse_emulator::config::Right;
use dataverse_emulator::defaults;

const AVERY: &str = "a1d2c3b4-0001-4e5f-8a9b-000000000001";
const SALES: &str = "b2e3d4c5-0002-4f6a-9b8c-000000000001";

/// Creates an account and reads its owner back with the annotation naming the owner's table.
async fn create(api: &Api, body: Value) -> (u16, Value) {
    let r = api
        .req(Method::POST, "accounts?$select=accountid")
        .header("Prefer", "return=representation")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let created: Value = r.json().await.unwrap_or(Value::Null);
    if status != 201 {
        return (status, created);
    }
    let r = api
        .req(
            Method::GET,
            &format!(
                "accounts({})?$select=_ownerid_value",
                created["accountid"].as_str().unwrap_or_default()
            ),
        )
        .header(
            "Prefer",
            "odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname\"",
        )
        .send()
        .await
        .unwrap();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_owner_is_a_user_or_a_team_and_the_caller_by_default() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    let (status, v) = create(&api, json!({"name": "Mine"})).await;
    assert_eq!(status, 201, "{v}");
    let mine = v["accountid"].as_str().unwrap().to_string();
    assert_eq!(v["_ownerid_value"], defaults::APP_USER_ID);
    assert_eq!(
        v["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "systemuser"
    );
    let (status, v) = create(
        &api,
        json!({"name": "Avery's", "ownerid@odata.bind": format!("/systemusers({AVERY})")}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["_ownerid_value"], AVERY);
    let (status, v) = create(
        &api,
        json!({"name": "Sales'", "ownerid@odata.bind": format!("/teams({SALES})")}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["_ownerid_value"], SALES);
    assert_eq!(
        v["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "team"
    );
    // Neither a user nor a team: the type the property expects is principal.
    let (status, v) = create(
        &api,
        json!({"name": "x", "ownerid@odata.bind": format!("/accounts({mine})")}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("expects an entity of type 'Microsoft.Dynamics.CRM.principal'"),
        "{message}"
    );
    // A user that does not exist.
    let (status, _) = create(
        &api,
        json!({"name": "x", "ownerid@odata.bind": "/systemusers(00000000-0000-4000-8000-0000000000ff)"}),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn users_are_read_and_matched_like_any_table_but_not_written() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    let (status, v) = api
        .get(&format!(
            "systemusers?$select=fullname,title&$filter={}",
            urlencode("internalemailaddress eq 'AVERY.HOWARD@emulator.onmicrosoft.com'")
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["value"][0]["fullname"], "Avery Howard");
    assert_eq!(v["value"][0]["systemuserid"], AVERY);
    assert_eq!(v["value"].as_array().map(Vec::len), Some(1));
    // The query function In, as the service takes it, compared as `eq` compares text.
    let (status, v) = api
        .get(&format!(
            "systemusers?$select=fullname&$orderby=fullname&$filter={}",
            urlencode(
                "Microsoft.Dynamics.CRM.In(PropertyName='internalemailaddress',PropertyValues=[\"avery.howard@emulator.onmicrosoft.com\", \"Dana.Whitfield@emulator.onmicrosoft.com \"])"
            )
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    let names: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["fullname"].as_str())
        .collect();
    assert_eq!(names, ["Avery Howard", "Dana Whitfield"]);
    // On a choice column the text values are read as the column's numbers.
    let (status, v) = api
        .get(&format!(
            "teams?$select=name&$filter={}",
            urlencode("Microsoft.Dynamics.CRM.In(PropertyName='teamtype',PropertyValues=[\"0\"])")
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["value"].as_array().map(Vec::len), Some(2));
    // The caller's own record, as whoami reads it.
    let (status, v) = api
        .get(&format!(
            "systemusers({})?$select=fullname,applicationid,domainname,_businessunitid_value",
            defaults::APP_USER_ID
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["fullname"], "dvload");
    assert!(
        v["domainname"]
            .as_str()
            .is_some_and(|d| d.ends_with("@application")),
        "{v}"
    );
    assert!(v["_businessunitid_value"].is_string(), "{v}");
    // Users come from the configuration.
    let r = api
        .req(Method::POST, "systemusers")
        .json(&json!({"lastname": "New", "domainname": "new@x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("[[records]]"),
        "{body}"
    );
}

#[tokio::test]
async fn reading_other_users_takes_prv_read_user_and_the_own_record_does_not() {
    let mut config = Config::default();
    for p in &mut config.roles[0].privileges {
        if p.table == "systemuser" {
            p.rights.retain(|r| *r != Right::Read);
        }
    }
    let emu = emulator_with(config).await;
    let api = Api::new(&emu).await;
    let (status, v) = api.get(&format!("systemusers({AVERY})")).await;
    assert_eq!(status, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("is missing prvReadUser privilege"),
        "{v}"
    );
    let (status, _) = api
        .get(&format!(
            "systemusers({})?$select=fullname",
            defaults::APP_USER_ID
        ))
        .await;
    assert_eq!(status, 200);
    let (status, _) = api
        .get(&format!(
            "systemusers({})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()",
            defaults::APP_USER_ID
        ))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn metadata_describes_owner_lookups_as_the_service_does() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    let (status, v) = api
        .get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='ownerid')?$select=AttributeType,RequiredLevel")
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["AttributeType"], "Owner");
    assert_eq!(v["RequiredLevel"]["Value"], "SystemRequired");
    let (status, v) = api
        .get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='ownerid')/Microsoft.Dynamics.CRM.LookupAttributeMetadata?$select=Targets")
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["Targets"], json!(["systemuser", "team"]));
    let (status, v) = api
        .get("EntityDefinitions(LogicalName='account')?$select=LogicalName&$expand=ManyToOneRelationships($select=SchemaName,ReferencedEntity,ReferencedAttribute,ReferencingAttribute,ReferencingEntityNavigationPropertyName)")
        .await;
    assert_eq!(status, 200, "{v}");
    let owner = v["ManyToOneRelationships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ReferencingAttribute"] == "ownerid")
        .cloned()
        .unwrap();
    assert_eq!(owner["SchemaName"], "owner_accounts");
    assert_eq!(owner["ReferencedEntity"], "owner");
    assert_eq!(owner["ReferencedAttribute"], "ownerid");
    assert_eq!(owner["ReferencingEntityNavigationPropertyName"], "ownerid");
    let (status, v) = api
        .get("EntityDefinitions(LogicalName='systemuser')?$select=Privileges")
        .await;
    assert_eq!(status, 200, "{v}");
    let names: Vec<&str> = v["Privileges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["Name"].as_str())
        .collect();
    assert!(names.contains(&"prvReadUser"), "{names:?}");
    let r = api.req(Method::GET, "$metadata").send().await.unwrap();
    let csdl = r.text().await.unwrap();
    assert!(csdl.contains("<EntityType Name=\"systemuser\" BaseType=\"mscrm.principal\">"));
    assert!(csdl.contains("<NavigationProperty Name=\"ownerid\" Type=\"mscrm.principal\">"));
}

#[tokio::test]
async fn giving_a_row_another_owner_takes_prv_assign() {
    let mut config = Config::default();
    for p in &mut config.roles[0].privileges {
        p.rights.retain(|r| *r != Right::Assign);
    }
    let emu = emulator_with(config).await;
    let api = Api::new(&emu).await;
    // A create may name its owner (what depth of prvCreate allows is not modelled).
    let (status, v) = create(
        &api,
        json!({"name": "Avery's", "ownerid@odata.bind": format!("/systemusers({AVERY})")}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let id = v["accountid"].as_str().unwrap().to_string();
    let patch = |owner: String| {
        api.req(Method::PATCH, &format!("accounts({id})"))
            .header("If-Match", "*")
            .json(&json!({ "ownerid@odata.bind": owner }))
            .send()
    };
    // The same owner again is no assignment; another one is.
    let r = patch(format!("/systemusers({AVERY})")).await.unwrap();
    assert_eq!(r.status(), 204);
    let r = patch(format!("/teams({SALES})")).await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("is missing prvAssignAccount privilege"),
        "{body}"
    );
    // Only user-owned tables have the privilege.
    let names = |v: &Value| -> Vec<String> {
        v["Privileges"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["Name"].as_str().map(str::to_string))
            .collect()
    };
    let (_, v) = api
        .get("EntityDefinitions(LogicalName='account')?$select=Privileges")
        .await;
    assert!(names(&v).contains(&"prvAssignAccount".to_string()));
    let (_, v) = api
        .get("EntityDefinitions(LogicalName='product')?$select=Privileges")
        .await;
    assert!(!names(&v).iter().any(|n| n.starts_with("prvAssign")), "{v}");
}
