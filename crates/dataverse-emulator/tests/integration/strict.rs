//! Strictness: what the emulator does not implement is refused, never answered 200 (issue 25).

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Api, emulator};

/// Creates an account and returns its id.
async fn account(api: &Api, name: &str) -> String {
    let r = api
        .req(Method::POST, "accounts")
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let url = r.headers()["OData-EntityId"].to_str().unwrap().to_string();
    url[url.find('(').unwrap() + 1..url.len() - 1].to_string()
}

#[tokio::test]
async fn every_option_the_emulator_does_not_implement_is_refused() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    let id = account(&api, "Fourth Coffee").await;
    // FetchXML is implemented (fetchxml.rs); what it does not implement is refused.
    let fetch = "fetchXml=%3Cfetch%3E%3Centity%20name%3D%27account%27%3E%3Clink-entity%20name%3D%27contact%27%20from%3D%27contactid%27%20to%3D%27primarycontactid%27%2F%3E%3C%2Fentity%3E%3C%2Ffetch%3E";
    // (method, path and query, the message's start)
    let refusals: Vec<(Method, String, &str)> = vec![
        // Parameters that are not options at all: the service's own words.
        (
            Method::GET,
            "accounts?utm_source=x".into(),
            "The query parameter utm_source is not supported",
        ),
        (
            Method::GET,
            "accounts?sql=SELECT%20name%20FROM%20account".into(),
            "The query parameter sql is not supported",
        ),
        (
            Method::GET,
            format!("accounts({id})?$bogus=1"),
            "The query parameter $bogus is not supported",
        ),
        (
            Method::GET,
            "WhoAmI?$select=UserId".into(),
            "The query parameter $select is not supported by the emulator",
        ),
        // Options the service answers and the emulator does not: refused, never ignored.
        (
            Method::GET,
            format!("accounts?{fetch}"),
            "the element link-entity in fetchXml is not supported by the emulator",
        ),
        (
            Method::GET,
            format!("accounts({id})?$expand=contact_customer_accounts"),
            "The emulator does not implement $expand of the collection-valued navigation property",
        ),
        (
            Method::PATCH,
            format!("accounts({id})?$expand=primarycontactid"),
            "The query parameter $expand is not supported by the emulator",
        ),
        (
            Method::GET,
            "accounts?$apply=aggregate($count%20as%20n)".into(),
            "The query parameter $apply is not supported by the emulator",
        ),
        (
            Method::GET,
            "accounts?$filter=name%20eq%20@p1&@p1='x'".into(),
            "The query parameter @p1 is not supported by the emulator",
        ),
        (
            Method::DELETE,
            format!("accounts({id})?$select=name"),
            "The query parameter $select is not supported by the emulator",
        ),
        (
            Method::GET,
            "accounts?$top=1&$top=2".into(),
            "Query option '$top' was specified more than once",
        ),
        (
            Method::GET,
            "EntityDefinitions(LogicalName='account')?$expand=Attributes($select=LogicalName;$top=1)"
                .into(),
            "The query parameter $top is not supported",
        ),
    ];
    for (method, path, message) in refusals {
        let r = api.req(method.clone(), &path).send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "0x0", "{method} {path}: {body}");
        let text = body["error"]["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{method} {path}: {text}");
    }
    // The refused delete removed nothing.
    let r = api
        .req(Method::GET, &format!("accounts({id})?$select=name"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn counts_stop_at_five_thousand_and_say_so() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    for name in ["A. Datum", "Adventure Works", "Contoso"] {
        account(&api, name).await;
    }
    let r = api
        .req(Method::GET, "accounts/$count?$filter=startswith(name,'A')")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.text().await.unwrap(), "2");
    let v: Value = api
        .req(Method::GET, "accounts?$select=name&$count=true&$top=1")
        .header(
            "Prefer",
            "odata.include-annotations=\"Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded\"",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["@odata.count"], 3, "{v}");
    assert_eq!(v["@Microsoft.Dynamics.CRM.totalrecordcount"], 3, "{v}");
    assert_eq!(
        v["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"],
        false
    );
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn metadata_filters_combine_conditions() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    let v: Value = api
        .req(
            Method::GET,
            "EntityDefinitions?$select=LogicalName&$filter=IsPrivate eq false and (LogicalName eq 'account' or LogicalName eq 'contact')",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["LogicalName"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["account", "contact"], "{v}");
    // An enum literal, as clients write AttributeType conditions.
    let v: Value = api
        .req(
            Method::GET,
            "EntityDefinitions(LogicalName='account')/Attributes?$select=LogicalName&$filter=(AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Money' or LogicalName eq 'name') and not (LogicalName eq 'name')",
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
        .map(|t| t["LogicalName"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"revenue") && !names.contains(&"name"),
        "{v}"
    );
}

/// Sends `method path` and returns (status, code, message).
async fn refusal(api: &Api, method: Method, path: &str) -> (u16, String, String) {
    let r = api.req(method, path).json(&json!({})).send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap().to_string(),
        body["error"]["message"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn privileges_are_checked_before_the_message_exists() {
    // The default role has table privileges only.
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    for (path, privilege) in [
        ("BulkDelete", "prvBulkDelete"),
        ("Microsoft.Dynamics.CRM.CreateEntities", "prvCreateEntity"),
    ] {
        let (status, code, message) = refusal(&api, Method::POST, path).await;
        assert_eq!((status, code.as_str()), (403, "0x80040220"), "{path}");
        assert!(
            message.contains(&format!("is missing {privilege} privilege")),
            "{path}: {message}"
        );
    }
    // A function anyone may call, with a parameter alias: not implemented, and said so (never
    // a 404 a client would retry).
    let (status, _, message) = refusal(
        &api,
        Method::GET,
        "RetrieveTotalRecordCount(EntityNames=@p1)?@p1=%5B%22account%22%5D",
    )
    .await;
    assert_eq!(status, 501, "{message}");
    assert!(message.contains("does not implement the RetrieveTotalRecordCount message"));
    // Metadata the service serves and the emulator does not: 501 too, never "not found".
    for path in ["RelationshipDefinitions(SchemaName='account_parent_account')"] {
        let r = api.req(Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), 501, "{path}");
    }

    // With the privilege in a role, the request is read: without its parameters, refused.
    let mut config = dataverse_emulator::builtin::builtin_config();
    config.roles[0].global.push("prvBulkDelete".into());
    let emu = crate::support::emulator_with(config).await;
    let api = Api::new(&emu).await;
    let (status, code, message) = refusal(&api, Method::POST, "BulkDelete").await;
    assert_eq!((status, code.as_str()), (400, "0x80040203"), "{message}");
}

#[tokio::test]
async fn bulk_delete_is_a_job_that_deletes_what_its_query_matches() {
    let mut config = dataverse_emulator::builtin::builtin_config();
    config.roles[0].global.push("prvBulkDelete".into());
    let emu = crate::support::emulator_with(config).await;
    let api = Api::new(&emu).await;
    for name in ["Contoso", "Contoso Pharma", "Fabrikam", "Litware"] {
        account(&api, name).await;
    }
    // delete-data-bulk.md: a QuerySet of QueryExpressions, a JobName, and the notification and
    // recurrence parameters.
    let body = json!({
        "QuerySet": [{
            "EntityName": "account",
            "ColumnSet": {"AllColumns": false, "Columns": []},
            "Criteria": {
                "FilterOperator": "Or",
                "Conditions": [
                    {"AttributeName": "name", "Operator": "BeginsWith", "Values": [{"Value": "contoso", "Type": "System.String"}]},
                    {"AttributeName": "name", "Operator": "Equal", "Values": [{"Value": "LITWARE", "Type": "System.String"}]}
                ]
            }
        }],
        "JobName": "Remove the test accounts",
        "SendEmailNotification": false,
        "ToRecipients": [],
        "CCRecipients": [],
        "RecurrencePattern": "",
        "StartDateTime": "2026-12-07T00:00:00Z"
    });
    let r = api
        .req(Method::POST, "BulkDelete")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#Microsoft.Dynamics.CRM.BulkDeleteResponse"),
        "{v}"
    );
    let job = v["JobId"].as_str().unwrap().to_string();
    // The job is read as a client polls it: in progress, then succeeded.
    let mut states = Vec::new();
    for _ in 0..2 {
        let (_, j) = api
            .get(&format!(
                "asyncoperations({job})?$select=statecode,statuscode"
            ))
            .await;
        assert_eq!(j["name"], "Remove the test accounts");
        assert_eq!(j["operationtype"], 13);
        states.push((
            j["statecode"].as_i64().unwrap(),
            j["statuscode"].as_i64().unwrap(),
        ));
    }
    assert_eq!(states, [(2, 20), (3, 30)]);
    let left: Vec<String> = emu
        .state
        .rows("account")
        .iter()
        .map(|r| r.fields["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["Fabrikam"]);
    // A job that does not exist; a query on a column that does not exist deletes nothing.
    let r = api
        .req(
            Method::GET,
            "asyncoperations(00000000-0000-0000-0000-000000000001)",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let mut bad = body.clone();
    bad["QuerySet"][0]["Criteria"]["Conditions"][0]["AttributeName"] = json!("nmae");
    let r = api
        .req(Method::POST, "BulkDelete")
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "0x80041103", "{e}");
    assert_eq!(emu.state.count("account"), 1);
}

#[tokio::test]
async fn records_expand_their_lookups_and_carry_the_annotations_asked_for() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    let r = api
        .req(Method::POST, "accounts")
        .json(
            &json!({"name": "Contoso", "accountnumber": "A-1", "industrycode": 7,
                      "revenue": 1250000.5, "creditonhold": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let account = r.headers()["OData-EntityId"].to_str().unwrap().to_string();
    let account_id = &account[account.find('(').unwrap() + 1..account.len() - 1];
    let r = api
        .req(Method::POST, "contacts")
        .json(&json!({"lastname": "Smith",
                      "parentcustomerid_account@odata.bind": format!("/accounts({account_id})")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let contact = r.headers()["OData-EntityId"].to_str().unwrap().to_string();
    let contact_id = &contact[contact.find('(').unwrap() + 1..contact.len() - 1];

    // $expand of a single-valued navigation property, with its own $select.
    let v: Value = api
        .req(
            Method::GET,
            &format!("contacts({contact_id})?$select=lastname&$expand=parentcustomerid_account($select=name,accountnumber)"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["lastname"], "Smith");
    assert_eq!(v["parentcustomerid_account"]["name"], "Contoso", "{v}");
    assert_eq!(v["parentcustomerid_account"]["accountid"], account_id);
    assert!(
        v["parentcustomerid_account"].get("revenue").is_none(),
        "{v}"
    );
    // The other target of the polymorphic lookup is empty: null.
    let v: Value = api
        .req(
            Method::GET,
            "contacts?$select=lastname&$expand=parentcustomerid_contact($select=lastname)",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["value"][0]["parentcustomerid_contact"],
        Value::Null,
        "{v}"
    );
    // An unknown navigation property is the service's unknown-property error.
    let r = api
        .req(
            Method::GET,
            &format!("contacts({contact_id})?$expand=parentaccount"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Formatted values when the Prefer header asks, and only then.
    let get = |path: String, prefer: Option<&'static str>| {
        let mut req = api.req(Method::GET, &path);
        if let Some(p) = prefer {
            req = req.header("Prefer", p);
        }
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let path = format!("accounts({account_id})?$select=industrycode,revenue,creditonhold");
    let plain = get(path.clone(), None).await;
    assert!(
        plain
            .get("industrycode@OData.Community.Display.V1.FormattedValue")
            .is_none()
    );
    let v = get(
        path,
        Some("odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\""),
    )
    .await;
    assert_eq!(
        v["industrycode@OData.Community.Display.V1.FormattedValue"],
        "Consulting"
    );
    assert_eq!(
        v["revenue@OData.Community.Display.V1.FormattedValue"],
        "$1,250,000.50"
    );
    assert_eq!(
        v["creditonhold@OData.Community.Display.V1.FormattedValue"],
        "Yes"
    );
    let v = get(
        "contacts?$select=_parentcustomerid_value".to_string(),
        Some("odata.include-annotations=\"*\""),
    )
    .await;
    let c = &v["value"][0];
    assert_eq!(
        c["_parentcustomerid_value@OData.Community.Display.V1.FormattedValue"], "Contoso",
        "{v}"
    );
    assert_eq!(
        c["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "account"
    );
    assert_eq!(
        c["_parentcustomerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"],
        "parentcustomerid_account"
    );
}

#[tokio::test]
async fn optional_behaviour_headers_are_checked_never_ignored() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    let post = |name: &'static str, value: &'static str| {
        api.req(Method::POST, "accounts")
            .header(name, value)
            .json(&json!({"name": "Contoso"}))
    };
    // (header, value, status, code, the message's start)
    let cases = [
        (
            "MSCRM.BypassCustomPluginExecution",
            "true",
            403,
            "0x80040220",
            "Principal user",
        ),
        (
            "MSCRM.BypassBusinessLogicExecution",
            "CustomSync",
            403,
            "0x80040220",
            "Principal user",
        ),
        (
            "MSCRM.BypassBusinessLogicExecution",
            "Everything",
            400,
            "0x80040203",
            "The value 'Everything' of the header MSCRM.BypassBusinessLogicExecution is not valid",
        ),
        (
            "MSCRM.SuppressDuplicateDetection",
            "maybe",
            400,
            "0x80040203",
            "The value 'maybe' of the header MSCRM.SuppressDuplicateDetection is not valid",
        ),
        (
            "MSCRM.CallerID",
            "00000000-0000-0000-0000-000000000001",
            400,
            "0x0",
            "The header MSCRM.CallerID is not supported by the emulator",
        ),
        (
            "CallerObjectId",
            "00000000-0000-0000-0000-000000000001",
            400,
            "0x0",
            "The header CallerObjectId is not supported by the emulator",
        ),
        (
            "MSCRM.SolutionUniqueName",
            "MySolution",
            400,
            "0x0",
            "The header MSCRM.SolutionUniqueName is not supported by the emulator",
        ),
    ];
    for (name, value, status, code, message) in cases {
        let r = post(name, value).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{name}: {value}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
        let text = body["error"]["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{name}: {text}");
        if status == 403 {
            assert!(text.contains("is missing prvBypassCustom"), "{text}");
        }
    }
    assert_eq!(emu.state.count("account"), 0, "nothing refused was written");
    // What the emulator takes: a header that asks for what it never does anyway.
    for (name, value) in [
        ("MSCRM.SuppressDuplicateDetection", "false"),
        ("MSCRM.SuppressCallbackRegistrationExpanderJob", "true"),
        ("MSCRM.BypassCustomPluginExecution", "false"),
    ] {
        let r = post(name, value).send().await.unwrap();
        assert_eq!(r.status(), 204, "{name}: {value}");
    }
    // With the privileges in a role, the bypass headers are taken.
    let mut config = dataverse_emulator::builtin::builtin_config();
    config.roles[0].global.extend([
        "prvBypassCustomPlugins".into(),
        "prvBypassCustomBusinessLogic".into(),
    ]);
    let emu = crate::support::emulator_with(config).await;
    let api = Api::new(&emu).await;
    for (name, value) in [
        ("MSCRM.BypassCustomPluginExecution", "true"),
        (
            "MSCRM.BypassBusinessLogicExecution",
            "CustomSync,CustomAsync",
        ),
    ] {
        let r = api
            .req(Method::POST, "accounts")
            .header(name, value)
            .json(&json!({"name": "Contoso"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{name}: {value}");
    }
}

#[tokio::test]
async fn retrieve_metadata_changes_answers_the_attribute_queries_clients_make() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    // The choice columns of two tables, their option labels in English: what a client that
    // turns labels into values asks (query-schema-definitions.md).
    let query = json!({
        "Criteria": {"FilterOperator": "And", "Conditions": [
            {"PropertyName": "LogicalName", "ConditionOperator": "In",
             "Value": {"Type": "System.String[]", "Value": ["account", "contact"]}}
        ]},
        "Properties": {"AllProperties": false, "PropertyNames": ["LogicalName", "DisplayName", "Attributes"]},
        "AttributeQuery": {
            "Criteria": {"FilterOperator": "And", "Conditions": [
                {"PropertyName": "AttributeType", "ConditionOperator": "Equals",
                 "Value": {"Type": "Microsoft.Xrm.Sdk.Metadata.AttributeTypeCode", "Value": "Picklist"}}
            ]},
            "Properties": {"AllProperties": false, "PropertyNames": ["LogicalName", "OptionSet"]}
        },
        "LabelQuery": {"FilterLanguages": [1033], "MissingLabelBehavior": 0}
    });
    let encoded: String = form_urlencoded::byte_serialize(query.to_string().as_bytes()).collect();
    let r = api
        .req(
            Method::GET,
            &format!("RetrieveMetadataChanges(Query=@p1)?@p1={encoded}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#Microsoft.Dynamics.CRM.RetrieveMetadataChangesResponse")
    );
    let entities = v["EntityMetadata"].as_array().unwrap();
    let names: Vec<&str> = entities
        .iter()
        .map(|e| e["LogicalName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["account", "contact"]);
    let account = &entities[0];
    assert!(
        account.get("EntitySetName").is_none(),
        "only the properties asked: {account}"
    );
    // German labels are left out: only English was asked.
    assert_eq!(
        account["DisplayName"]["LocalizedLabels"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let attributes: Vec<&str> = account["Attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["LogicalName"].as_str().unwrap())
        .collect();
    assert_eq!(attributes, ["industrycode", "accountcategorycode"]);
    let category = &account["Attributes"][1];
    assert!(category.get("AttributeType").is_none());
    assert_eq!(
        category["OptionSet"]["Options"][0]["Label"]["LocalizedLabels"][0]["Label"],
        "Preferred Customer"
    );
    let stamp = v["ServerVersionStamp"].as_str().unwrap().to_string();

    // The stamp given back: nothing changed. Another stamp: expired, as the service says.
    let stamp_json: String =
        form_urlencoded::byte_serialize(json!(stamp).to_string().as_bytes()).collect();
    let r = api
        .req(Method::GET, &format!("RetrieveMetadataChanges(Query=@p1,ClientVersionStamp=@p2)?@p1={encoded}&@p2={stamp_json}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["EntityMetadata"], json!([]));
    let old: String = form_urlencoded::byte_serialize(b"\"1!old\"").collect();
    let (status, code, _) = refusal(
        &api,
        Method::GET,
        &format!(
            "RetrieveMetadataChanges(Query=@p1,ClientVersionStamp=@p2)?@p1={encoded}&@p2={old}"
        ),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "0x80044352"));
    // What the emulator does not implement is refused.
    let relationships: String = form_urlencoded::byte_serialize(
        json!({"RelationshipQuery": {"Properties": {"AllProperties": true}}})
            .to_string()
            .as_bytes(),
    )
    .collect();
    let (status, code, message) = refusal(
        &api,
        Method::GET,
        &format!("RetrieveMetadataChanges(Query=@p1)?@p1={relationships}"),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "0x0"), "{message}");
    assert!(message.starts_with(
        "RelationshipQuery in RetrieveMetadataChanges is not supported by the emulator"
    ));
}

#[tokio::test]
async fn global_option_sets_are_shared_by_their_columns_and_read_on_their_own() {
    use dataverse_emulator::config::{
        ColumnConfig, ColumnType, GlobalOptionSetConfig, OptionConfig,
    };
    let mut config = dataverse_emulator::builtin::builtin_config();
    config.global_option_sets.push(GlobalOptionSetConfig {
        name: "new_region".into(),
        display_name: Some("Region".into()),
        options: vec![
            OptionConfig {
                value: 100000000,
                label: "North".into(),
            },
            OptionConfig {
                value: 100000001,
                label: "South".into(),
            },
        ],
    });
    for table in ["account", "lead"] {
        let t = config
            .tables
            .iter_mut()
            .find(|t| t.logical_name == table)
            .unwrap();
        let mut c = ColumnConfig::new("new_region", ColumnType::Picklist);
        c.global_option_set = Some("new_region".into());
        t.columns.push(c);
    }
    let emu = crate::support::emulator_with(config).await;
    let api = Api::new(&emu).await;
    // The column's option set is the global one, expanded either way.
    let (status, v) = api.get("EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='new_region')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet,GlobalOptionSet").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["OptionSet"]["Name"], "new_region");
    assert_eq!(v["OptionSet"]["IsGlobal"], true);
    assert_eq!(
        v["GlobalOptionSet"]["Options"][1]["Label"]["UserLocalizedLabel"]["Label"],
        "South"
    );
    // A local option set is no global one.
    let (_, v) = api.get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='industrycode')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet,GlobalOptionSet").await;
    assert_eq!(v["OptionSet"]["IsGlobal"], false);
    assert_eq!(v["GlobalOptionSet"], Value::Null);
    // GlobalOptionSetDefinitions: the list, and one by name.
    let (status, v) = api.get("GlobalOptionSetDefinitions?$select=Name").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["value"][0]["Name"], "new_region");
    assert!(v["value"][0].get("Options").is_none());
    let (status, v) = api
        .get("GlobalOptionSetDefinitions(Name='new_region')")
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["Options"][0]["Value"], 100000000);
    let (status, _) = api
        .get("GlobalOptionSetDefinitions(Name='new_nothing')")
        .await;
    assert_eq!(status, 404);
    // Both tables take the shared values.
    let r = api
        .req(Method::POST, "leads")
        .json(&json!({"subject": "S", "lastname": "L", "new_region": 100000001}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = api
        .req(Method::POST, "accounts")
        .json(&json!({"name": "A", "new_region": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a value outside the global set is refused");
}
