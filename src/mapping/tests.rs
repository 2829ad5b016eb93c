//! Tests of the mapping language end to end: TOML text in, operations or errors out.

use std::path::Path;

use super::*;
use crate::mapping::spec::MappingError;
use crate::odata::{Method, Precondition};
use crate::source::{CsvRow, Record, RecordData, RowPos};

const HEADER: &[&str] = &[
    "Account No",
    "Company",
    "Parent No",
    "Industry",
    "Revenue",
    "Employees",
    "Since",
];

fn spec(text: &str) -> Result<MappingSpec, MappingError> {
    MappingSpec::parse(Path::new("m/accounts.toml"), text.to_string())
}

fn plan(text: &str) -> Plan {
    let spec = spec(text).unwrap();
    let cols: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
    Plan::compile(&spec, Some(&cols), "accounts.csv").unwrap()
}

fn csv(fields: &[&str]) -> Record {
    Record {
        pos: RowPos { row: 4, line: 5 },
        data: RecordData::Csv(CsvRow::of(fields)),
    }
}

fn op(p: &Plan, rec: &Record) -> crate::odata::Operation {
    match p.apply(rec).unwrap() {
        Mapped::Operation(op) => op,
        other => panic!("expected an operation, got {other:?}"),
    }
}

const ACCOUNTS: &str = r#"
[source]
path = "../samples/accounts.csv"

[target]
entity_set = "accounts"
operation = "upsert"
key = { accountnumber = "Account No" }

[fields]
name = "Company"
revenue = { from = "Revenue", type = "money" }
numberofemployees = { from = "Employees", type = "int", null_if = ["n/a"] }
industrycode = { from = "Industry", type = "choice", map = { "Agriculture" = 2, "Consulting" = 7 } }
new_customersince = { from = "Since", type = "dateonly", format = "%d/%m/%Y" }
address1_country = { value = "United Kingdom" }
parentaccountid = { lookup = "accounts", key = { accountnumber = "Parent No" } }
"#;

#[test]
fn a_full_row_becomes_an_upsert_by_alternate_key() {
    let p = plan(ACCOUNTS);
    let o = op(
        &p,
        &csv(&[
            "ACC-1",
            " O'Brien & Co ",
            "ACC-0",
            "consulting",
            "1,250,000.00",
            "n/a",
            "03/11/2014",
        ]),
    );
    assert_eq!(o.method, Method::Patch);
    assert_eq!(o.precondition, Precondition::None);
    assert_eq!(o.url, "accounts(accountnumber='ACC-1')");
    assert_eq!(o.key, "accountnumber='ACC-1'");
    assert_eq!(o.row, RowPos { row: 4, line: 5 });
    assert_eq!(
        o.body.unwrap(),
        r#"{"name":"O'Brien & Co","revenue":1250000.00,"industrycode":7,"new_customersince":"2014-11-03","address1_country":"United Kingdom","parentaccountid@odata.bind":"/accounts(accountnumber='ACC-0')"}"#
    );
}

#[test]
fn empty_values_keep_their_columns_unless_the_mapping_says_clear() {
    // The default: an empty value (a lookup's too) leaves its column out of the body.
    let p = plan(ACCOUNTS);
    let o = op(&p, &csv(&["ACC-1", "X", "", "", "", "", ""]));
    assert_eq!(
        o.body.unwrap(),
        r#"{"name":"X","address1_country":"United Kingdom"}"#
    );
    // empty = "clear" for the mapping: every empty value is sent as null.
    let p = plan(&ACCOUNTS.replace(
        "operation = \"upsert\"",
        "operation = \"upsert\"\nempty = \"clear\"",
    ));
    let o = op(&p, &csv(&["ACC-1", "X", "", "", "", "", ""]));
    let body = o.body.unwrap();
    assert!(body.contains(r#""revenue":null"#), "{body}");
    assert!(
        body.ends_with(r#""parentaccountid@odata.bind":null}"#),
        "{body}"
    );
    // The older omit_empty still reads: false is "clear", true is "keep".
    let p = plan(&ACCOUNTS.replace(
        "operation = \"upsert\"",
        "operation = \"upsert\"\nomit_empty = false",
    ));
    let o = op(&p, &csv(&["ACC-1", "X", "", "", "", "", ""]));
    assert!(o.body.unwrap().contains(r#""revenue":null"#));
    // Per field, over the mapping's choice.
    let p = plan(
        &ACCOUNTS
            .replace(
                "operation = \"upsert\"",
                "operation = \"upsert\"\nempty = \"clear\"",
            )
            .replace(
                "revenue = { from = \"Revenue\", type = \"money\" }",
                "revenue = { from = \"Revenue\", type = \"money\", empty = \"keep\" }",
            ),
    );
    let o = op(&p, &csv(&["ACC-1", "X", "", "", "", "", ""]));
    let body = o.body.unwrap();
    assert!(!body.contains("revenue"), "{body}");
    assert!(body.contains(r#""numberofemployees":null"#), "{body}");
}

#[test]
fn clear_on_null_clears_only_for_an_explicit_json_null() {
    let text = "[source]\nformat = \"jsonl\"\n\n[target]\nentity_set = \"contacts\"\noperation = \"update\"\n\
                key = { emailaddress1 = \"email\" }\nempty = \"clear-on-null\"\n\n[fields]\n\
                jobtitle = \"job\"\ntelephone1 = \"phone\"\nfax = \"fax\"\n";
    let spec = spec(text).unwrap();
    let p = Plan::compile(&spec, None, "c.jsonl").unwrap();
    let rec = Record {
        pos: RowPos { row: 1, line: 1 },
        data: RecordData::Json(serde_json::json!({"email": "a@b.c", "job": null, "phone": "  "})),
    };
    // job is null: cleared; phone is blank and fax missing: both kept.
    assert_eq!(op(&p, &rec).body.unwrap(), r#"{"jobtitle":null}"#);
}

#[test]
fn empty_choices_are_named_with_what_is_accepted() {
    for (line, wanted) in [
        (
            "empty = \"erase\"",
            "empty = \"erase\" is not a choice; allowed: \"keep\"",
        ),
        (
            "empty = \"keep\"\nomit_empty = true",
            "give empty = \"keep\" | \"clear\" | \"clear-on-null\" or the older omit_empty, not both",
        ),
    ] {
        let err = spec_err(&ACCOUNTS.replace(
            "operation = \"upsert\"",
            &format!("operation = \"upsert\"\n{line}"),
        ));
        assert!(err.contains(wanted), "{err}");
        assert!(err.starts_with("m/accounts.toml:"), "{err}");
    }
}

#[test]
fn an_unknown_choice_label_is_a_row_error_listing_the_labels() {
    let p = plan(ACCOUNTS);
    let err = p
        .apply(&csv(&["ACC-1", "X", "", "Aerospace", "", "", ""]))
        .unwrap_err();
    assert_eq!(
        err,
        RowError {
            row: RowPos { row: 4, line: 5 },
            column: Some("industrycode".into()),
            field: Some("Industry".into()),
            reason: "unknown label 'Aerospace'; allowed: Agriculture, Consulting".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "row 4 (line 5): column 'industrycode' (from 'Industry'): unknown label 'Aerospace'; allowed: Agriculture, Consulting"
    );
}

#[test]
fn an_impossible_date_is_a_row_error() {
    let err = plan(ACCOUNTS)
        .apply(&csv(&["ACC-1", "X", "", "", "", "", "31/02/2024"]))
        .unwrap_err();
    assert_eq!(err.column.as_deref(), Some("new_customersince"));
    assert!(
        err.reason
            .starts_with("'31/02/2024' is not a valid date (format '%d/%m/%Y')"),
        "{}",
        err.reason
    );
}

#[test]
fn key_values_are_quoted_doubled_and_encoded() {
    let p = plan(ACCOUNTS);
    let o = op(&p, &csv(&["O'Neil 1", "X", "", "", "", "", ""]));
    assert_eq!(o.url, "accounts(accountnumber='O''Neil%201')");
    assert_eq!(o.key, "accountnumber='O''Neil 1'");
    let err = p
        .apply(&csv(&["A/1", "X", "", "", "", "", ""]))
        .unwrap_err();
    assert_eq!(err.column.as_deref(), Some("accountnumber"));
    assert!(err.reason.contains("contains '/'"), "{}", err.reason);
    let err = p.apply(&csv(&["  ", "X", "", "", "", "", ""])).unwrap_err();
    assert_eq!(err.reason, "is empty; a key value is required");
}

#[test]
fn operations_pick_method_and_precondition() {
    let base = "[target]\nentity_set = \"accounts\"\n";
    let create = plan(&format!(
        "{base}operation = \"create\"\n[fields]\nname = \"Company\"\n"
    ));
    let o = op(&create, &csv(&["A", "X", "", "", "", "", ""]));
    assert_eq!(
        (o.method, o.precondition, o.url.as_str(), o.key.as_str()),
        (Method::Post, Precondition::None, "accounts", "")
    );
    let keyed = plan(&format!(
        "{base}operation = \"create\"\nkey = {{ accountnumber = \"Account No\" }}\n[fields]\nname = \"Company\"\n"
    ));
    let o = op(&keyed, &csv(&["A", "X", "", "", "", "", ""]));
    assert_eq!(
        (o.method, o.precondition),
        (Method::Patch, Precondition::IfNoneMatchAny)
    );
    let update = plan(&format!(
        "{base}operation = \"update\"\nkey = {{ accountnumber = \"Account No\" }}\n[fields]\nname = \"Company\"\n"
    ));
    assert_eq!(
        op(&update, &csv(&["A", "X", "", "", "", "", ""])).precondition,
        Precondition::IfMatchAny
    );
    let delete = plan(&format!(
        "{base}operation = \"delete\"\nkey = {{ accountid = {{ from = \"Account No\", type = \"guid\" }} }}\n"
    ));
    let o = op(
        &delete,
        &csv(&[
            "{00000000-0000-0000-0000-00000000000A}",
            "",
            "",
            "",
            "",
            "",
            "",
        ]),
    );
    assert_eq!(
        (o.method, o.url.as_str(), o.body),
        (
            Method::Delete,
            "accounts(00000000-0000-0000-0000-00000000000a)",
            None
        )
    );
}

#[test]
fn filters_skip_rows() {
    let p = plan(&format!(
        "{ACCOUNTS}\n[filter]\nskip_empty = [\"Company\"]\nskip_equal = {{ Industry = [\"Closed\", \"Test\"] }}\n"
    ));
    assert_eq!(
        p.apply(&csv(&["A", " ", "", "", "", "", ""])).unwrap(),
        Mapped::Skipped("'Company' is empty".into())
    );
    assert_eq!(
        p.apply(&csv(&["A", "X", "", "Test", "", "", ""])).unwrap(),
        Mapped::Skipped("'Industry' is 'Test'".into())
    );
}

#[test]
fn templates_required_and_defaults() {
    let p = plan(
        "[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\n\
         name = { template = \"{Company} ({Account No})\" }\n\
         description = { from = \"Parent No\", default = \"none\" }\n\
         numberofemployees = { from = \"Employees\", type = \"int\", required = true }\n",
    );
    let o = op(&p, &csv(&["A-1", "Acme", "", "", "", "12", ""]));
    assert_eq!(
        o.body.unwrap(),
        r#"{"name":"Acme (A-1)","description":"none","numberofemployees":12}"#
    );
    let err = p
        .apply(&csv(&["A-1", "Acme", "", "", "", "", ""]))
        .unwrap_err();
    assert_eq!(err.reason, "is required but the value is empty");
}

#[test]
fn json_paths_arrays_and_typed_values() {
    let spec = spec(
        "[source]\nformat = \"jsonl\"\n[target]\nentity_set = \"leads\"\noperation = \"create\"\n\
         key = { leadid = { from = \"id\", type = \"guid\", derive_uuid = true } }\n[fields]\n\
         firstname = \"person.first\"\nestimatedamount = { from = \"value\", type = \"money\" }\n\
         new_interests = { from = \"tags\", type = \"choices\", map = { Music = 2, Travel = 3 } }\n\
         donotemail = { from = \"optout\", type = \"bool\" }\ncity = \"address.city\"\n",
    )
    .unwrap();
    let p = Plan::compile(&spec, None, "leads.jsonl").unwrap();
    let rec = Record {
        pos: RowPos { row: 1, line: 1 },
        data: RecordData::Json(serde_json::json!({
            "id": "L-1", "person": {"first": "Ann"}, "value": 12500.5, "tags": ["travel", "Music"], "optout": false
        })),
    };
    let o = op(&p, &rec);
    assert_eq!(
        (o.method, o.precondition),
        (Method::Patch, Precondition::IfNoneMatchAny)
    );
    assert!(
        o.url.starts_with("leads(") && o.url.len() == "leads()".len() + 36,
        "{}",
        o.url
    );
    assert_eq!(
        o.body.unwrap(),
        r#"{"firstname":"Ann","estimatedamount":12500.5,"new_interests":"3,2","donotemail":false}"#
    );
    let again = op(&p, &rec);
    assert_eq!(again.url, o.url, "derived ids are deterministic");
}

fn spec_err(text: &str) -> String {
    spec(text).unwrap_err().to_string()
}

#[test]
fn unknown_keys_are_errors_with_positions() {
    assert_eq!(
        spec_err(
            "[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\nname = { form = \"Company\" }\n"
        ),
        "m/accounts.toml:5:10: unknown key 'form' in field 'name' (did you mean 'from'?); allowed: from, value, template, type, trim, null_if, default, required, max_length, map, format, timezone, decimal, separator, derive_uuid, empty, omit_empty"
    );
    assert_eq!(
        spec_err("[sorce]\npath = \"a.csv\"\n"),
        "m/accounts.toml:1:2: unknown key 'sorce' in the mapping file (did you mean 'source'?); allowed: source, target, filter, fields, run"
    );
}

#[test]
fn bad_values_in_the_mapping_are_errors_with_positions() {
    let base = "[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\n";
    assert_eq!(
        spec_err(&format!(
            "{base}revenue = {{ from = \"R\", type = \"mony\" }}\n"
        )),
        "m/accounts.toml:5:32: unknown type 'mony' (did you mean 'money'?); allowed: text, int, bigint, decimal, float, money, bool, datetime, dateonly, guid, choice, choices, lookup"
    );
    assert!(
        spec_err(&format!(
            "{base}x = {{ from = \"R\", type = \"int\", map = {{ A = 1 }} }}\n"
        ))
        .contains("'map' applies to type choice or choices only, and this field is int")
    );
    assert!(
        spec_err(&format!("{base}x = {{ from = \"R\", value = 1 }}\n"))
            .contains("has from and value")
    );
    // A word that is not yes or no may be one of the column's own labels ("Allow"): the plan
    // waits for the column's metadata, and says so.
    assert_eq!(
        plan(&format!(
            "{base}x = {{ value = \"maybe\", type = \"bool\" }}\n"
        ))
        .ready()
        .unwrap_err()
        .to_string(),
        "m/accounts.toml:5:15: field 'x': constant value 'maybe' is not a yes/no value (true/false, yes/no, 1/0), nor yet one of the column's own labels: check against the environment, whose metadata has them (a run does; validate and --dry-run do with --metadata DIR)"
    );
    assert_eq!(
        plan(&format!(
            "{base}x = {{ from = \"Industry\", type = \"choice\", default = \"Retail\" }}\n"
        ))
        .ready()
        .unwrap_err()
        .to_string(),
        "m/accounts.toml:5:53: field 'x': default 'Retail' is a label, and no map gives its value: add map = { \"Retail\" = <value> }, or check against the environment, whose option set has the labels (a run does; validate and --dry-run do with --metadata DIR)"
    );
    assert!(
        spec_err(&format!(
            "{base}x = {{ from = \"R\", type = \"datetime\", timezone = \"Mars/Base\" }}\n"
        ))
        .contains("unknown time zone 'Mars/Base'")
    );
    assert!(
        spec_err("[target]\nentity_set = \"accounts\"\noperation = \"merge\"\n")
            .contains("unknown operation 'merge'; allowed: create, update, upsert, delete")
    );
    assert!(
        spec_err(
            "[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n[fields]\nname = \"C\"\n"
        )
        .contains("needs a key for upsert")
    );
    assert!(spec_err("[target\n").starts_with("m/accounts.toml:1:"));
}

#[test]
fn a_misspelt_source_field_is_an_error_before_any_row() {
    let s = spec("[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\nname = \"Compnay\"\n").unwrap();
    let cols: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
    let err = Plan::compile(&s, Some(&cols), "accounts.csv")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "m/accounts.toml:5:8: source field 'Compnay' is not a column of accounts.csv; did you mean 'Company'? the columns are: 'Account No', 'Company', 'Parent No', 'Industry', 'Revenue', 'Employees', 'Since'"
    );
}

#[test]
fn an_empty_choices_separator_is_a_mapping_error_at_its_position() {
    let base = "[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\n";
    assert_eq!(
        spec_err(&format!(
            "{base}x = {{ from = \"R\", type = \"choices\", separator = \"\" }}\n"
        )),
        "m/accounts.toml:5:49: field 'x': separator must not be empty; give the text between labels, such as \",\" (the default), \";\" or \"|\""
    );
    let ok = spec(&format!(
        "{base}x = {{ from = \"R\", type = \"choices\", separator = \" \" }}\n"
    ));
    assert!(ok.is_ok(), "a space is a separator: {ok:?}");
}

const KEYED: &str = "[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
                     key = { accountnumber = \"Account No\" }\n[fields]\nname = \"Company\"\n";

#[test]
fn a_key_column_mapped_differently_in_fields_is_a_mapping_error_naming_both_places() {
    assert_eq!(
        spec_err(&format!("{KEYED}accountnumber = \"Parent No\"\n")),
        "m/accounts.toml:7:1: field 'accountnumber' maps the key column 'accountnumber' differently from \
         [target] key (line 4, column 9): the URL would name one record and the body give the column \
         another value; leave it out of [fields] (the key sets it) or write it exactly as in the key \
         (same from, type and options)"
    );
    for field in [
        "accountnumber = { from = \"Account No\", type = \"int\" }",
        "accountnumber = { from = \"Account No\", null_if = [\"n/a\"] }",
        "accountnumber = { from = \"Account No\", trim = false }",
        "accountnumber = { from = \"Account No\", default = \"X\" }",
        "accountnumber = { template = \"{Account No}-1\" }",
        "accountnumber = { value = \"A-1\" }",
        "accountnumber = { lookup = \"accounts\", from = \"Account No\" }",
    ] {
        let err = spec_err(&format!("{KEYED}{field}\n"));
        assert!(
            err.starts_with("m/accounts.toml:7:1: field 'accountnumber' maps the key column"),
            "{field}: {err}"
        );
    }
}

#[test]
fn a_key_column_mapped_the_same_way_in_fields_is_sent_in_the_body_too() {
    let p = plan(&format!(
        "{KEYED}accountnumber = {{ from = \"Account No\", required = true }}\n"
    ));
    let o = op(&p, &csv(&["A-1", "Acme", "", "", "", "", ""]));
    assert_eq!(o.url, "accounts(accountnumber='A-1')");
    assert_eq!(o.body.unwrap(), r#"{"name":"Acme","accountnumber":"A-1"}"#);
    // A derived primary id is derived the same way in the URL and in the body.
    let p = plan(
        "[target]\nentity_set = \"accounts\"\noperation = \"create\"\n\
         key = { accountid = { from = \"Account No\", type = \"guid\", derive_uuid = true } }\n\
         [fields]\naccountid = { from = \"Account No\", type = \"guid\", derive_uuid = true }\n",
    );
    let o = op(&p, &csv(&["A-1", "Acme", "", "", "", "", ""]));
    let id = o.url.trim_start_matches("accounts(").trim_end_matches(')');
    assert_eq!(o.body.unwrap(), format!(r#"{{"accountid":"{id}"}}"#));
}

/// The error of a mapping whose `[source]` holds `source_lines`.
fn source_err(source_lines: &str) -> String {
    spec_err(&format!(
        "[source]\n{source_lines}\n[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\nname = \"Company\"\n"
    ))
}

#[test]
fn a_bad_quote_is_a_mapping_error_at_the_quote_saying_what_is_accepted() {
    let allowed = "allowed: one ASCII punctuation character other than the delimiter, such as '\"' (the default) or \"'\"";
    for (line, why) in [
        ("quote = \"ab\"", "\"ab\" is more than one character"),
        ("quote = \"\"", "\"\" is empty"),
        (
            "quote = \",\"",
            "\",\" is also the delimiter (the default ',')",
        ),
        (
            "quote = \"\\n\"",
            "\"\\n\" is a space, line break or control character",
        ),
        (
            "quote = \" \"",
            "\" \" is a space, line break or control character",
        ),
        ("quote = \"x\"", "\"x\" is a letter or digit"),
        ("quote = \"«\"", "\"«\" is not an ASCII character"),
    ] {
        assert_eq!(
            source_err(line),
            format!("m/accounts.toml:2:9: [source] quote {why}; {allowed}"),
            "{line}"
        );
    }
    assert_eq!(
        source_err("delimiter = \"|\"\nquote = \"|\""),
        format!(
            "m/accounts.toml:3:9: [source] quote \"|\" is also the delimiter (line 2, column 13); {allowed}"
        )
    );
    for (line, quote) in [
        ("quote = \"'\"", b'\''),
        ("quote = '\"'", b'"'),
        ("quote = \"~\"", b'~'),
    ] {
        assert_eq!(
            spec(&format!("[source]\n{line}\n{KEYED}"))
                .unwrap()
                .source
                .quote,
            quote
        );
    }
}

#[test]
fn a_bad_delimiter_is_a_mapping_error_at_the_delimiter_saying_what_is_accepted() {
    let allowed = "allowed: \",\", \";\", \"\\t\" (or \"tab\"), \"|\"";
    for (line, why) in [
        ("delimiter = \"\"", "\"\" is empty"),
        ("delimiter = \";;\"", "\";;\" is more than one character"),
        ("delimiter = \"\\n\"", "\"\\n\" is not supported"),
        ("delimiter = '\"'", "\"\\\"\" is not supported"),
        (
            "delimiter = \"tabs\"",
            "\"tabs\" is more than one character",
        ),
    ] {
        assert_eq!(
            source_err(line),
            format!("m/accounts.toml:2:13: [source] delimiter {why}; {allowed}"),
            "{line}"
        );
    }
    for (line, delimiter) in [
        ("delimiter = \"tab\"", b'\t'),
        ("delimiter = '\\t'", b'\t'),
        ("delimiter = \"\\t\"", b'\t'),
        ("delimiter = \";\"", b';'),
    ] {
        assert_eq!(
            spec(&format!("[source]\n{line}\n{KEYED}"))
                .unwrap()
                .source
                .delimiter,
            delimiter
        );
    }
}

/// The error of a mapping whose one field is `field` (on line 5).
fn field_err(field: &str) -> String {
    spec_err(&format!(
        "[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\n{field}\n"
    ))
}

#[test]
fn choice_maps_that_cannot_work_are_mapping_errors() {
    assert_eq!(
        field_err("x = { from = \"R\", type = \"choice\", map = {} }"),
        "m/accounts.toml:5:42: field 'x': map is empty; list label = value pairs such as { \"Hot\" = 1 }, or leave map out to accept option values only"
    );
    assert_eq!(
        field_err("x = { from = \"R\", type = \"choice\", map = { Hot = 1, \" hot\" = 2 } }"),
        "m/accounts.toml:5:53: field 'x': map label ' hot' is the same as 'Hot' (labels are matched trimmed and ignoring case); keep one"
    );
    assert_eq!(
        field_err("x = { from = \"R\", type = \"choices\", map = { Hot = 3000000000 } }"),
        "m/accounts.toml:5:51: field 'x': map value for 'Hot' must be an integer option value (-2147483648 to 2147483647)"
    );
    assert!(
        field_err("x = { from = \"R\", type = \"choice\", map = { \" \" = 1 } }")
            .contains("a map label is empty")
    );
}

#[test]
fn toml_integers_are_read_in_their_radix_and_range() {
    let s = spec(
        "[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\n\
         x = { value = 0x10, type = \"int\" }\ny = { from = \"R\", max_length = 0x10 }\n",
    )
    .unwrap();
    let spec::FieldKind::Value(x) = &s.fields[0].kind else {
        panic!("a value")
    };
    assert!(matches!(&x.input, spec::Input::Constant { json, .. } if json == "16"));
    let spec::FieldKind::Value(y) = &s.fields[1].kind else {
        panic!("a value")
    };
    assert!(matches!(
        y.converter,
        convert::Converter::Text {
            max_length: Some(16)
        }
    ));
    for bad in ["0", "-1", "\"5\"", "1.5"] {
        assert!(
            field_err(&format!("x = {{ from = \"R\", max_length = {bad} }}"))
                .contains("max_length must be a positive integer"),
            "{bad}"
        );
    }
    assert_eq!(
        field_err("x = { value = 99999999999999999999, type = \"bigint\" }"),
        "m/accounts.toml:5:15: field 'x': value is out of range for a whole number (-9223372036854775808 to 9223372036854775807)"
    );
}

#[test]
fn lookups_check_their_entity_set_and_type() {
    assert_eq!(
        field_err("x = { lookup = \"acc ounts\", from = \"R\" }"),
        "m/accounts.toml:5:16: field 'x': lookup 'acc ounts' is not an entity set name (letters, digits and _)"
    );
    assert_eq!(
        field_err("x = { lookup = \"accounts\", from = \"R\", type = \"int\" }"),
        "m/accounts.toml:5:47: field 'x': a lookup's type is \"lookup\" (or \"guid\", the target's id), not 'int': it binds the target record by its key"
    );
    assert!(
        field_err(
            "x = { lookup = \"accounts\", key = { accountnumber = \"R\" }, type = \"guid\" }"
        )
        .contains("a lookup's type is \"lookup\", not 'guid'")
    );
    for ok in [
        "x = { lookup = \"accounts\", from = \"R\", type = \"lookup\" }",
        "x = { lookup = \"accounts\", from = \"R\", type = \"guid\" }",
        "x = { type = \"lookup\", lookup = \"accounts\", key = { accountnumber = \"R\" } }",
    ] {
        let text = format!(
            "[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\n{ok}\n"
        );
        assert!(spec(&text).is_ok(), "{ok}");
    }
}

#[test]
fn lookups_by_match_take_their_options_and_refuse_what_cannot_apply() {
    assert_eq!(
        field_err(
            "x = { lookup = \"accounts\", key = { accountnumber = \"R\" }, match = { name = \"C\" } }"
        ),
        "m/accounts.toml:5:67: field 'x': a lookup takes one of from (a GUID field), key (an alternate key) or match (any columns of the target), not two"
    );
    assert_eq!(
        field_err(
            "x = { lookup = \"accounts\", key = { accountnumber = \"R\" }, on_many = \"first\" }"
        ),
        "m/accounts.toml:5:69: field 'x': on_many applies to a lookup by match = {...}; a GUID or an alternate key finds one record at most"
    );
    assert_eq!(
        field_err("x = { lookup = \"accounts\", match = { name = \"C\" }, on_many = \"any\" }"),
        "m/accounts.toml:5:62: field 'x': on_many = \"any\" is not a choice; allowed: \"reject\" (the row, listing the candidates; the default), \"first\" (the one created first)"
    );
    assert_eq!(
        field_err("x = { lookup = \"accounts\", match = { name = \"C\" }, trim = false }"),
        "m/accounts.toml:5:59: field 'x': with match = {...}, put 'trim' on the match's columns"
    );
    assert_eq!(
        field_err("x = { lookup = \"accounts\", match = {} }"),
        "m/accounts.toml:5:36: field 'x' match is empty; name at least one column"
    );
    let text = "[target]\nentity_set = \"contacts\"\noperation = \"create\"\n[fields]\n\
                x = { lookup = \"accounts\", match = { name = \"C\", address1_city = { from = \"City\", trim = false } }, on_many = \"first\" }\n";
    let s = spec(text).unwrap();
    let crate::mapping::spec::FieldKind::Lookup {
        key: crate::mapping::spec::LookupKey::Match { parts, on_many },
        ..
    } = &s.fields[0].kind
    else {
        panic!("not a match lookup: {:?}", s.fields[0].kind);
    };
    assert_eq!(*on_many, crate::mapping::spec::OnMany::First);
    assert_eq!(
        parts.iter().map(|p| p.column.as_str()).collect::<Vec<_>>(),
        ["name", "address1_city"]
    );
}

#[test]
fn a_lookup_by_match_leaves_its_target_to_find_and_says_what_it_stands_for() {
    let p = plan(
        "[target]\nentity_set = \"contacts\"\noperation = \"create\"\n[fields]\nlastname = \"Account No\"\n\
         parentcustomerid_account = { lookup = \"accounts\", match = { name = \"Company\" } }\n",
    );
    let row = |company: &str| csv(&["Smith", company, "", "", "", "", ""]);
    let o = op(&p, &row("O'Neil & Sons"));
    assert_eq!(o.lookups.len(), 1);
    assert_eq!(o.lookups[0].values, ["'O''Neil & Sons'"]);
    let body = o.body.clone().unwrap();
    assert_eq!(&body[o.lookups[0].at - 9..o.lookups[0].at], "/accounts");
    let shown = o
        .body_with_conditions(&|i| p.match_lookups()[i].columns.clone())
        .unwrap();
    assert_eq!(
        shown,
        r#"{"lastname":"Smith","parentcustomerid_account@odata.bind":"/accounts(<name eq 'O''Neil & Sons'>)"}"#
    );
    let empty = op(&p, &row(" "));
    assert!(empty.lookups.is_empty());
    assert_eq!(empty.body.as_deref(), Some(r#"{"lastname":"Smith"}"#));
}

#[test]
fn options_that_cannot_apply_are_mapping_errors() {
    assert_eq!(
        field_err("x = { from = \"R\", required = true, default = \"n/a\" }"),
        "m/accounts.toml:5:46: field 'x': required = true and a default contradict each other (an empty value would take the default, never reject the row); keep one"
    );
    for (field, key) in [
        ("x = { value = \"v\", trim = false }", "trim"),
        ("x = { value = \"v\", null_if = [\"v\"] }", "null_if"),
        ("x = { value = \"v\", default = \"d\" }", "default"),
        ("x = { value = \"v\", required = true }", "required"),
    ] {
        assert!(
            field_err(field).contains(&format!(
                "field 'x': '{key}' applies to values read from the source (from or template), not to a constant value"
            )),
            "{field}"
        );
    }
    assert_eq!(
        field_err("x = { from = \"R\", type = \"dateonly\", format = [] }"),
        "m/accounts.toml:5:47: field 'x': format is an empty list; give one or more strftime formats such as \"%d/%m/%Y\", or leave format out for ISO 8601"
    );
    assert_eq!(
        field_err("\"\" = \"R\""),
        "m/accounts.toml:5:1: column name \"\" is empty; write the column's logical name, such as name or accountnumber"
    );
}

#[test]
fn key_constants_and_defaults_are_checked_like_row_keys() {
    let keyed = |key: &str| {
        spec_err(&format!(
            "[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\nkey = {{ accountnumber = {key} }}\n[fields]\nname = \"Company\"\n"
        ))
    };
    assert!(
        keyed("{ from = \"R\", default = \" \" }")
            .contains("key column 'accountnumber': default is empty; a key value cannot be empty"),
    );
    assert!(
        keyed("{ value = \"A/1\" }")
            .contains("key column 'accountnumber': constant value key value 'A/1' contains '/'"),
        "{}",
        keyed("{ value = \"A/1\" }")
    );
    assert!(keyed("{ from = \"R\", default = \"A:1\" }").contains("contains ':'"));
    assert_eq!(
        spec_err(
            "[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\nkey = { \"\" = \"R\" }\n[fields]\nname = \"Company\"\n"
        ),
        "m/accounts.toml:4:9: column name \"\" is empty; write the column's logical name, such as name or accountnumber"
    );
}

#[test]
fn a_choices_label_holding_the_separator_is_a_mapping_error() {
    assert_eq!(
        field_err("x = { from = \"R\", type = \"choices\", map = { \"Food, Drink\" = 1 } }"),
        "m/accounts.toml:5:45: field 'x': map label 'Food, Drink' contains the separator \",\", so no value can select it; set separator to text no label holds, such as \"|\" or \";\""
    );
    let ok = "[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\n\
              x = { from = \"R\", type = \"choices\", separator = \"|\", map = { \"Food, Drink\" = 1 } }\n\
              y = { from = \"R\", type = \"choice\", map = { \"Food, Drink\" = 1 } }\n";
    assert!(spec(ok).is_ok());
}

#[test]
fn numeric_constants_keep_their_value_under_a_comma_decimal() {
    let p = plan(
        "[source]\ndecimal = \",\"\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = { new_rate = { value = 2.5, type = \"decimal\" } }\n[fields]\n\
         revenue = { value = 1.500, type = \"money\" }\nexchangerate = { value = 1.5e3, type = \"float\" }\n\
         numberofemployees = { value = 1000 }\nname = { value = 1.5, type = \"text\" }\n\
         description = { from = \"Revenue\", type = \"decimal\" }\n",
    );
    let o = op(&p, &csv(&["", "", "", "", "1.234,5", "", ""]));
    assert_eq!(o.url, "accounts(new_rate=2.5)");
    assert_eq!(
        o.body.unwrap(),
        r#"{"revenue":1.500,"exchangerate":1500,"numberofemployees":1000,"name":"1.5","description":1234.5}"#
    );
}

#[test]
fn skip_equal_values_are_trimmed_and_not_empty() {
    let p = plan(&format!(
        "{ACCOUNTS}\n[filter]\nskip_equal = {{ Industry = [\" Closed \"] }}\n"
    ));
    assert_eq!(
        p.apply(&csv(&["A", "X", "", "Closed", "", "", ""]))
            .unwrap(),
        Mapped::Skipped("'Industry' is 'Closed'".into())
    );
    assert!(
        spec_err(&format!(
            "{ACCOUNTS}\n[filter]\nskip_equal = {{ Industry = [] }}\n"
        ))
        .contains("skip_equal for 'Industry' is an empty list, which skips nothing")
    );
}

#[test]
fn a_date_format_that_cannot_read_a_date_is_a_mapping_error() {
    for (ty, format) in [
        ("dateonly", "%d/%m"),
        ("dateonly", "%J/%m/%Y"),
        ("datetime", "%H:%M"),
        ("datetime", "%d/%m/%Y %H:%M %Z"),
        ("dateonly", "%A %m %Y"),
    ] {
        let err = field_err(&format!(
            "x = {{ from = \"R\", type = \"{ty}\", format = \"{format}\" }}"
        ));
        assert!(
            err.contains(&format!("field 'x': format '{format}' ")),
            "{ty} {format}: {err}"
        );
        eprintln!("{err}");
    }
    for (ty, format) in [
        ("dateonly", "%d/%m/%Y"),
        ("dateonly", "%d.%m.%y"),
        ("dateonly", "%B %d, %Y"),
        ("dateonly", "%d %b %Y %H:%M"),
        ("datetime", "%d/%m/%Y"),
        ("datetime", "%m/%d/%Y %I:%M %p"),
        ("datetime", "%Y-%m-%dT%H:%M:%S%.f%z"),
        ("datetime", "%d/%m/%Y %H:%M %Q"),
        ("datetime", "%s"),
        ("dateonly", "%Y%m%d"),
        ("dateonly", "%e/%m/%Y"),
        ("dateonly", "%-d/%-m/%Y"),
        ("dateonly", "%Y-%j"),
    ] {
        let text = format!(
            "[target]\nentity_set = \"accounts\"\noperation = \"create\"\n[fields]\n\
             x = {{ from = \"R\", type = \"{ty}\", format = \"{format}\" }}\n"
        );
        assert!(
            spec(&text).is_ok(),
            "{ty} {format}: {:?}",
            spec(&text).err()
        );
    }
}

#[test]
fn a_json_path_with_an_empty_part_is_a_mapping_error() {
    for path in ["", " ", "person..first", "person.", ".first"] {
        let s = spec(&format!(
            "[source]\nformat = \"jsonl\"\n[target]\nentity_set = \"leads\"\noperation = \"create\"\n\
             [fields]\nfirstname = {{ from = \"{path}\" }}\n"
        ))
        .unwrap();
        let err = Plan::compile(&s, None, "leads.jsonl")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "m/accounts.toml:7:22: source field '{path}' is not a JSON path: it has an empty part; write member names joined by dots, such as \"address.city\" or \"items.0.sku\""
            )
        );
    }
}

#[test]
fn defaults_and_constants_are_converted_when_the_mapping_is_read() {
    assert_eq!(
        field_err("x = { from = \"R\", type = \"int\", default = \"many\" }"),
        "m/accounts.toml:5:43: field 'x': default 'many' is not a whole number"
    );
    assert!(
        field_err("x = { value = \"31/02/2024\", type = \"dateonly\", format = \"%d/%m/%Y\" }")
            .starts_with("m/accounts.toml:5:15: field 'x': constant value '31/02/2024' is not a valid date (format '%d/%m/%Y')")
    );
    assert!(
        field_err("x = { from = \"R\", max_length = 3, default = \"four\" }")
            .contains("field 'x': default is 4 characters long; at most 3 are allowed")
    );
}
