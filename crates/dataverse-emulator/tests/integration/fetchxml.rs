//! FetchXML on collection reads (issue 25, item 3): the subset docs/emulator.md lists executed
//! exactly, paging by the paging cookie as Microsoft's "Page results using FetchXml" describes,
//! and everything else refused.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Api, emulator};

fn encode(xml: &str) -> String {
    form_urlencoded::byte_serialize(xml.as_bytes()).collect()
}

async fn fetch(api: &Api, xml: &str, prefer: Option<&str>) -> (u16, Value) {
    let mut r = api.req(Method::GET, &format!("accounts?fetchXml={}", encode(xml)));
    if let Some(p) = prefer {
        r = r.header("Prefer", p);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn names(body: &Value) -> Vec<String> {
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn seed(api: &Api) {
    for (name, number, employees) in [
        ("Contoso", Some("A-1"), Some(50)),
        ("Café Nord", Some("A-2"), None),
        ("Fabrikam", None, Some(500)),
        ("Contoso Pharma", Some("A-4"), Some(5)),
        ("Litware", Some("A-5"), Some(1200)),
    ] {
        let mut body = json!({ "name": name });
        if let Some(n) = number {
            body["accountnumber"] = json!(n);
        }
        if let Some(e) = employees {
            body["numberofemployees"] = json!(e);
        }
        let r = api
            .req(Method::POST, "accounts")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
}

#[tokio::test]
async fn fetchxml_selects_filters_and_orders_exactly() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    seed(&api).await;

    // Attributes, an or of conditions, order: null values are left out, the id is always there.
    let (status, body) = fetch(
        &api,
        "<fetch><entity name='account'><attribute name='name'/><attribute name='numberofemployees'/>\
         <order attribute='name' descending='true'/>\
         <filter type='or'><condition attribute='name' operator='like' value='cont%'/>\
         <condition attribute='numberofemployees' operator='null'/></filter></entity></fetch>",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["Contoso Pharma", "Contoso", "Café Nord"]);
    let cafe = &body["value"][2];
    assert!(
        cafe.get("numberofemployees").is_none(),
        "nulls are left out: {cafe}"
    );
    assert!(cafe["accountid"].is_string());
    assert!(body.get("@Microsoft.Dynamics.CRM.morerecords").is_none());

    // in, not-null, numbers by value, text by the collation.
    let (_, body) = fetch(
        &api,
        "<fetch><entity name='account'><attribute name='name'/><order attribute='numberofemployees'/>\
         <filter><condition attribute='numberofemployees' operator='ge' value='50'/>\
         <condition attribute='accountnumber' operator='not-null'/></filter></entity></fetch>",
        None,
    )
    .await;
    assert_eq!(names(&body), ["Contoso", "Litware"]);
    let (_, body) = fetch(
        &api,
        "<fetch><entity name='account'><attribute name='name'/>\
         <filter><condition attribute='name' operator='in'><value>CAFE NORD</value><value>litware  </value></condition>\
         </filter></entity></fetch>",
        None,
    )
    .await;
    assert_eq!(names(&body), ["Café Nord", "Litware"]);
    // ne leaves out the rows whose column is null (SQL), top limits.
    let (_, body) = fetch(
        &api,
        "<fetch top='2'><entity name='account'><attribute name='name'/>\
         <filter><condition attribute='accountnumber' operator='ne' value='A-1'/></filter></entity></fetch>",
        None,
    )
    .await;
    assert_eq!(names(&body), ["Café Nord", "Contoso Pharma"]);
}

#[tokio::test]
async fn fetchxml_pages_with_the_paging_cookie_until_no_more_records() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    seed(&api).await;
    let prefer = "odata.include-annotations=\"Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords\"";
    let mut page = 1;
    let mut cookie: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let paging = match &cookie {
            // The client puts the inner cookie, decoded twice and XML-escaped, in paging-cookie.
            Some(c) => format!(
                " paging-cookie='{}'",
                c.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&quot;")
            ),
            None => String::new(),
        };
        let xml = format!(
            "<fetch count='2' page='{page}'{paging}><entity name='account'><attribute name='name'/>\
             <order attribute='name'/></entity></fetch>"
        );
        let (status, body) = fetch(&api, &xml, Some(prefer)).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(names(&body));
        if body["@Microsoft.Dynamics.CRM.morerecords"] != json!(true) {
            assert!(
                body.get("@Microsoft.Dynamics.CRM.fetchxmlpagingcookie")
                    .is_none()
            );
            break;
        }
        let outer = body["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]
            .as_str()
            .unwrap();
        assert!(
            outer.starts_with(&format!(
                "<cookie pagenumber=\"{}\" pagingcookie=\"",
                page + 1
            )),
            "{outer}"
        );
        let encoded = outer
            .split("pagingcookie=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let once = percent_encoding::percent_decode_str(encoded)
            .decode_utf8()
            .unwrap()
            .to_string();
        let inner = percent_encoding::percent_decode_str(&once)
            .decode_utf8()
            .unwrap()
            .to_string();
        assert!(
            inner.starts_with(&format!("<cookie page=\"{page}\"><accountid last=\"{{")),
            "{inner}"
        );
        cookie = Some(inner);
        page += 1;
    }
    assert_eq!(
        seen,
        [
            "Café Nord",
            "Contoso",
            "Contoso Pharma",
            "Fabrikam",
            "Litware"
        ]
    );
    assert_eq!(page, 3);
}

#[tokio::test]
async fn fetchxml_the_emulator_does_not_implement_is_refused() {
    let emu = emulator().await;
    let api = Api::new(&emu).await;
    seed(&api).await;
    let cases = [
        (
            "<fetch aggregate='true'><entity name='account'><attribute name='name' aggregate='count' alias='n'/></entity></fetch>",
            "0x0",
            "the fetch attribute aggregate=\"true\" in fetchXml is not supported by the emulator",
        ),
        (
            "<fetch><entity name='account'><attribute name='nmae'/></entity></fetch>",
            "0x80041103",
            "'account' entity doesn't contain attribute with Name = 'nmae' and NameMapping = 'Logical'.",
        ),
        (
            "<fetch><entity name='account'><filter><condition attribute='name' operator='on-or-after' value='x'/></filter></entity></fetch>",
            "0x0",
            "the condition operator 'on-or-after' in fetchXml is not supported by the emulator",
        ),
        (
            "<fetch><entity name='contact'><attribute name='fullname'/></entity></fetch>",
            "0x80040203",
            "The entity 'contact' of the fetchXml is not the table of the entity set 'accounts' (account)",
        ),
        (
            "<fetch><entity name='account'>",
            "0x80040203",
            "The fetchXml is not well-formed XML",
        ),
        (
            "<fetch top='2' count='1'><entity name='account'/></fetch>",
            "0x80040203",
            "The top attribute can't be specified with paging attribute page or count.",
        ),
    ];
    for (xml, code, message) in cases {
        let (status, body) = fetch(&api, xml, None).await;
        assert_eq!(status, 400, "{xml}: {body}");
        assert_eq!(body["error"]["code"], code, "{xml}: {body}");
        let text = body["error"]["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{xml}: {text}");
    }
    // fetchXml with another query option.
    let r = api
        .req(
            Method::GET,
            &format!(
                "accounts?$select=name&fetchXml={}",
                encode("<fetch><entity name='account'/></fetch>")
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the query option $select beside fetchXml"),
        "{body}"
    );
}
