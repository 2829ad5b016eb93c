//! Single-record operations, queries, validation errors, bulk actions, metadata.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn create_upsert_update_delete_and_read_back() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    // Create → 204 + OData-EntityId.
    let r = api.req(Method::POST, "accounts").json(&json!({"name": "A", "accountnumber": "A-1", "revenue": 5000000, "industrycode": 7, "new_customersince": "2020-02-03"})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let id_url = r.headers()["odata-entityid"].to_str().unwrap().to_string();
    assert!(id_url.starts_with(&format!("{}/api/data/v9.2/accounts(", api.base)));
    // Create with representation → 201, no OData-EntityId.
    let r = api
        .req(Method::POST, "accounts?$select=name")
        .header("Prefer", "return=representation")
        .json(&json!({"name": "B"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("odata-entityid").is_none());
    assert_eq!(r.headers()["preference-applied"], "return=representation");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["name"], "B");
    // Upsert by alternate key: update → 204 echoing the key form; create with representation → 201.
    let r = api
        .req(Method::PATCH, "accounts(accountnumber='A-1')")
        .header("If-None-Match", "null")
        .json(&json!({"name": "A2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["odata-entityid"],
        format!("{}/api/data/v9.2/accounts(accountnumber='A-1')", api.base).as_str()
    );
    let r = api
        .req(Method::PATCH, "accounts(accountnumber='A-2')")
        .header("Prefer", "return=representation")
        .json(&json!({"name": "new"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = api
        .req(Method::PATCH, "accounts(accountnumber='A-2')")
        .header("Prefer", "return=representation")
        .json(&json!({"name": "new2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // If-None-Match: * on an existing row → 412; If-Match: * on a missing row → 404.
    let r = api
        .req(Method::PATCH, "accounts(accountnumber='A-1')")
        .header("If-None-Match", "*")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error": {"code": "", "message": "A record with matching key values already exists."}})
    );
    let r = api
        .req(
            Method::PATCH,
            "accounts(00000000-0000-0000-0000-000000000001)",
        )
        .header("If-Match", "*")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "account With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist"
    );
    // Stale ETag → 412.
    let r = api
        .req(Method::PATCH, "accounts(accountnumber='A-1')")
        .header("If-Match", "W/\"1\"")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    // Read back with $select/$filter/$orderby/$count/$top.
    let v: Value = api.req(Method::GET, "accounts?$select=name,accountnumber&$filter=accountnumber eq 'A-1' and name ne 'zzz'&$count=true").send().await.unwrap().json().await.unwrap();
    assert_eq!(v["@odata.count"], 1);
    assert_eq!(v["value"][0]["name"], "A2");
    let v: Value = api
        .req(
            Method::GET,
            "accounts?$select=name&$orderby=name desc&$top=2",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["new2", "B"]);
    // Delete.
    let id = id_url
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    assert_eq!(
        api.req(Method::DELETE, &format!("accounts({id})"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        api.req(Method::DELETE, &format!("accounts({id})"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(emu.state.count("account"), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn paging_with_maxpagesize_and_next_link() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    for i in 0..7 {
        api.req(Method::POST, "contacts")
            .json(&json!({"lastname": format!("c{i}")}))
            .send()
            .await
            .unwrap();
    }
    let mut url = format!("{}/api/data/v9.2/contacts?$select=lastname", api.base);
    let mut seen = Vec::new();
    loop {
        let v: Value = client()
            .get(&url)
            .bearer_auth(&api.token)
            .header("Prefer", "odata.maxpagesize=3")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(
            v["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["lastname"].as_str().unwrap().to_string()),
        );
        match v["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("c{i}")).collect::<Vec<_>>());
    emu.shutdown().await;
}

async fn error_of(r: reqwest::Response) -> (u16, String, String) {
    let s = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    (
        s,
        v["error"]["code"].as_str().unwrap().to_string(),
        v["error"]["message"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn validation_errors_like_dataverse() {
    let mut c = dataverse_emulator::Config::default();
    c.validation.enforce_application_required = true;
    let emu = emulator_with(c).await;
    let api = Api::new(&emu).await;
    let post = |body: Value| api.req(Method::POST, "accounts").json(&body).send();
    let (s, code, msg) = error_of(post(json!({"name": "x", "bogus": 1})).await.unwrap()).await;
    assert_eq!((s, code.as_str()), (400, "0x80048d19"));
    assert!(
        msg.contains(
            "Invalid property 'bogus' was found in entity 'Microsoft.Dynamics.CRM.account'"
        ),
        "{msg}"
    );
    let (s, code, msg) = error_of(post(json!({"name": "x".repeat(161)})).await.unwrap()).await;
    assert_eq!((s, code.as_str()), (400, "0x80044331"));
    assert_eq!(
        msg,
        "A validation error occurred.  The length of the 'name' attribute of the 'account' entity exceeded the maximum allowed length of '160'."
    );
    let (s, code, _) = error_of(post(json!({"accountnumber": "no name"})).await.unwrap()).await;
    assert_eq!((s, code.as_str()), (400, "0x80040203"));
    let (s, code, _) = error_of(
        post(json!({"name": "x", "numberofemployees": "ten"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (400, "0x80048d19"));
    let (s, code, msg) = error_of(
        post(json!({"name": "x", "industrycode": 99}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (400, "0x8004431a"));
    assert!(msg.contains("Accepted Values: 1,2,3"), "{msg}");
    let (s, _, _) = error_of(
        api.req(Method::GET, "accounts(not-a-guid)")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _, msg) = error_of(post(json!({"name": "x", "parentaccountid@odata.bind": "/accounts(00000000-0000-0000-0000-0000000000ff)"})).await.unwrap()).await;
    assert_eq!(s, 404);
    assert!(msg.contains("Does Not Exist"), "{msg}");
    let (s, code, msg) = error_of(post(json!({"name": "x", "ParentAccountId@odata.bind": "/accounts(00000000-0000-0000-0000-0000000000ff)"})).await.unwrap()).await;
    assert_eq!((s, code.as_str()), (400, "0x0"));
    assert!(
        msg.contains("An undeclared property 'ParentAccountId'"),
        "{msg}"
    );
    // Duplicate key on create.
    let body = json!({"name": "d", "accountid": "00000000-0000-0000-0000-0000000000aa", "accountnumber": "D"});
    assert_eq!(post(body.clone()).await.unwrap().status(), 204);
    let (s, _, msg) = error_of(post(body).await.unwrap()).await;
    assert_eq!((s, msg.as_str()), (412, "Cannot insert duplicate key."));
    let (s, code, _) = error_of(
        post(json!({"name": "e", "accountnumber": "D"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, code.as_str()), (412, "0x80060892"));
    let (s, code, msg) = error_of(
        api.req(Method::GET, "accounts?$select=fullname")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, code.as_str(), msg.as_str()),
        (
            400,
            "0x0",
            "Could not find a property named 'fullname' on type 'Microsoft.Dynamics.CRM.account'."
        )
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn lookups_by_guid_and_alternate_key() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    api.req(Method::POST, "accounts")
        .json(&json!({"name": "P", "accountnumber": "P-1"}))
        .send()
        .await
        .unwrap();
    let r = api.req(Method::POST, "contacts").header("Prefer", "return=representation")
        .json(&json!({"lastname": "L", "emailaddress1": "l@x.org", "parentcustomerid_account@odata.bind": "/accounts(accountnumber='P-1')", "new_interests": "1, 3", "birthdate": "1990-05-01"}))
        .send().await.unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert!(v["_parentcustomerid_value"].is_string());
    assert_eq!(v["new_interests"], "1,3");
    let v: Value = api
        .req(
            Method::GET,
            "contacts(emailaddress1='l@x.org')?$select=lastname",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["lastname"], "L");
    emu.shutdown().await;
}

#[tokio::test]
async fn bulk_actions_are_all_or_nothing() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    let t = |n: &str| json!({"@odata.type": "Microsoft.Dynamics.CRM.lead", "subject": n, "lastname": n});
    let r = api
        .req(Method::POST, "leads/Microsoft.Dynamics.CRM.CreateMultiple")
        .json(&json!({"Targets": [t("a"), t("b")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["Ids"].as_array().unwrap().len(), 2);
    let mut bad = t("c");
    bad["subject"] = json!("x".repeat(301));
    let r = api
        .req(Method::POST, "leads/Microsoft.Dynamics.CRM.CreateMultiple")
        .json(&json!({"Targets": [t("d"), bad]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(emu.state.count("lead"), 2);
    let r = api.req(Method::POST, "accounts/Microsoft.Dynamics.CRM.UpsertMultiple")
        .json(&json!({"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.account", "@odata.id": "accounts(accountnumber='U1')", "name": "u1"}, {"@odata.type": "Microsoft.Dynamics.CRM.account", "@odata.id": "accounts(accountnumber='U1')", "name": "u1b"}]}))
        .send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(emu.state.count("account"), 1);
    let r = api
        .req(
            Method::POST,
            "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
        )
        .json(&json!({"Targets": [{"name": "no type"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    emu.shutdown().await;
}

#[tokio::test]
async fn entity_definitions_for_offline_validation() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    let v: Value = api.req(Method::GET, "EntityDefinitions(LogicalName='account')?$select=LogicalName,EntitySetName&$expand=Attributes,Keys").send().await.unwrap().json().await.unwrap();
    assert_eq!(v["EntitySetName"], "accounts");
    let attrs = v["Attributes"].as_array().unwrap();
    let name = attrs.iter().find(|a| a["LogicalName"] == "name").unwrap();
    assert_eq!(name["MaxLength"], 160);
    assert_eq!(name["RequiredLevel"]["Value"], "ApplicationRequired");
    let ind = attrs
        .iter()
        .find(|a| a["LogicalName"] == "industrycode")
        .unwrap();
    assert_eq!(ind["OptionSet"]["Options"].as_array().unwrap().len(), 33);
    assert_eq!(v["Keys"][0]["KeyAttributes"][0], "accountnumber");
    emu.shutdown().await;
}

#[tokio::test]
async fn relationship_metadata_and_option_sets_by_cast() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    let get = |path: &str| {
        let r = api.req(Method::GET, path);
        async move { r.send().await.unwrap() }
    };
    // A contact's lookups, from the referencing end: each with its navigation property.
    let r = get("EntityDefinitions(LogicalName='contact')/ManyToOneRelationships?$select=ReferencingAttribute,ReferencedEntity,ReferencingEntityNavigationPropertyName").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let list = v["value"].as_array().unwrap();
    let to_account = list
        .iter()
        .find(|r| {
            r["ReferencingAttribute"] == "parentcustomerid" && r["ReferencedEntity"] == "account"
        })
        .expect("parentcustomerid to account");
    assert_eq!(
        to_account["ReferencingEntityNavigationPropertyName"],
        "parentcustomerid_account"
    );
    assert!(to_account.get("SchemaName").is_none(), "$select applies");
    // The same relationship from the referenced end, with the collection-valued property.
    let v: Value = get("EntityDefinitions(LogicalName='account')/OneToManyRelationships?$filter=ReferencingEntity eq 'contact'").await.json().await.unwrap();
    let back = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ReferencingAttribute"] == "parentcustomerid")
        .expect("contact's parentcustomerid");
    assert_eq!(
        back["ReferencedEntityNavigationPropertyName"],
        "contact_customer_accounts"
    );
    assert_eq!(back["ReferencedAttribute"], "accountid");
    assert_eq!(
        back["@odata.type"],
        "#Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata"
    );
    // Expanded on the entity; no many-to-many relationships in the emulator.
    let v: Value = get("EntityDefinitions(LogicalName='contact')?$select=LogicalName&$expand=ManyToOneRelationships($select=ReferencingAttribute),ManyToManyRelationships").await.json().await.unwrap();
    assert!(!v["ManyToOneRelationships"].as_array().unwrap().is_empty());
    assert_eq!(v["ManyToManyRelationships"], json!([]));
    // Option sets come with their cast collection when expanded, whatever $select says.
    let v: Value = get("EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options)").await.json().await.unwrap();
    let industry = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["LogicalName"] == "industrycode")
        .unwrap();
    assert_eq!(
        industry["OptionSet"]["Options"].as_array().unwrap().len(),
        33
    );
    assert!(industry.get("AttributeType").is_none(), "$select applies");
    // A collection the entity type does not have.
    assert_eq!(
        get("EntityDefinitions(LogicalName='account')/Relationships")
            .await
            .status(),
        404
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn entity_properties_clients_filter_on_are_there() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    // A client listing the tables it may use filters on IsPrivate: every table answers.
    let v: Value = api
        .req(
            Method::GET,
            "EntityDefinitions?$select=LogicalName,IsActivity,IsCustomEntity&$filter=IsPrivate eq false",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = v["value"].as_array().unwrap();
    let table = |name: &str| {
        list.iter()
            .find(|t| t["LogicalName"] == name)
            .unwrap()
            .clone()
    };
    assert!(list.len() >= 4, "{v}");
    assert_eq!(table("task")["IsActivity"], true);
    assert_eq!(table("account")["IsActivity"], false);
    assert_eq!(table("account")["IsCustomEntity"], false);
    let custom: Value = api
        .req(
            Method::GET,
            "EntityDefinitions?$select=LogicalName&$filter=IsCustomEntity eq true",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        custom["value"],
        json!([]),
        "the built-in tables are all Microsoft's"
    );
    emu.shutdown().await;
}
