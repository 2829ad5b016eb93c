//! Bad input of every kind: each case gets a clear error naming where, and loses nothing.

use crate::support::{Workdir, accounts_mapping};

fn csv_case(csv: &[u8], extra_fields: &str) -> (Workdir, crate::support::Output) {
    let w = Workdir::new();
    w.write("m.toml", accounts_mapping(extra_fields));
    w.write("accounts.csv", csv);
    let out = w.dvload(&["validate", "m.toml", "--rejects", "rejects.csv"]);
    (w, out)
}

#[test]
fn a_utf8_bom_is_not_part_of_the_first_column_name() {
    let (_, out) = csv_case(b"\xEF\xBB\xBFAccount No,Company\r\nA-1,Acme\r\n", "");
    out.expect_code(0)
        .stdout_has("read 1  would write 1  rejected 0");
}

#[test]
fn a_ragged_row_is_rejected_with_its_line_and_the_rest_goes_on() {
    let (w, out) = csv_case(b"Account No,Company\nA-1,Acme\nA-2\nA-3,Initech\n", "");
    out.expect_code(1)
        .stdout_has("read 3  would write 2  rejected 1")
        .stdout_has("row 2 (line 3): ")
        .stdout_has("has 1 field, the header has 2 columns");
    assert!(
        w.read("rejects.csv").contains("\nA-2,2,"),
        "{}",
        w.read("rejects.csv")
    );
}

#[test]
fn invalid_utf8_rejects_the_row_and_names_the_column() {
    let (w, out) = csv_case(b"Account No,Company\nA-1,Caf\xE9\nA-2,Globex\n", "");
    out.expect_code(1)
        .stdout_has("read 2  would write 1  rejected 1")
        .stdout_has("row 1 (line 2): ")
        .stdout_has("'Company'")
        .stdout_has("windows-1252");
    let rejects = std::fs::read(w.path().join("rejects.csv")).unwrap();
    assert!(
        rejects.windows(8).any(|win| win == b"A-1,Caf\xE9"),
        "the raw bytes are kept: {rejects:?}"
    );
}

#[test]
fn windows_1252_is_read_when_the_mapping_says_so() {
    let w = Workdir::new();
    w.write(
        "m.toml",
        accounts_mapping("").replace(
            "path = \"accounts.csv\"",
            "path = \"accounts.csv\"\nencoding = \"windows-1252\"",
        ),
    );
    w.write("accounts.csv", b"Account No,Company\nA-1,Caf\xE9 \x80\n");
    w.dvload(&["run", "m.toml", "--dry-run", "--emit-batches", "out"])
        .expect_code(0);
    assert!(
        w.read("out/batch-000001.http")
            .contains("{\"name\":\"Café €\"}")
    );
}

#[test]
fn an_unterminated_quote_rejects_that_row_and_keeps_the_rest_of_the_file_in_it() {
    let (w, out) = csv_case(
        b"Account No,Company\nA-1,Acme\nA-2,\"Globex\nA-3,Initech\n",
        "",
    );
    out.expect_code(1)
        .stdout_has("read 2  would write 1  rejected 1")
        .stdout_has("row 2 (line 3): ")
        .stdout_has("unterminated");
    let rejects = w.read("rejects.csv");
    assert!(
        rejects.contains("A-3,Initech"),
        "nothing is lost: the swallowed lines are in the rejects file:\n{rejects}"
    );
}

#[test]
fn an_empty_file_is_unusable() {
    let (_, out) = csv_case(b"", "");
    out.expect_code(2)
        .stderr_has("accounts.csv: the file is empty; a CSV source needs a header row");
}

#[test]
fn a_missing_header_row_is_caught_before_any_row_is_read() {
    // The first line is data, so the mapping's fields are not among the "columns".
    let (_, out) = csv_case(b"A-1,Acme\nA-2,Globex\n", "");
    out.expect_code(2)
        .stderr_has("m.toml:7:")
        .stderr_has("source field 'Account No' is not a column of accounts.csv")
        .stderr_has("the columns are: 'A-1', 'Acme'");
}

#[test]
fn duplicate_header_names_are_unusable() {
    let (_, out) = csv_case(b"Account No,Company,Company\nA-1,Acme,X\n", "");
    out.expect_code(2)
        .stderr_has("accounts.csv: line 1: ")
        .stderr_has("'Company'")
        .stderr_has("2 and 3");
}

#[test]
fn a_comma_decimal_needs_the_mapping_to_say_so() {
    let (_, out) = csv_case(
        b"Account No,Company,Revenue\nA-1,Acme,\"1.234,5\"\n",
        "revenue = { from = \"Revenue\", type = \"decimal\" }\n",
    );
    out.expect_code(1).stdout_has(
        "row 1 (line 2): column 'revenue' (from 'Revenue'): '1.234,5' is not a number with '.' as the decimal separator and ',' between thousands (set decimal = \",\" on this field for numbers written like 1.234,5)",
    );
    let (w, out) = csv_case(
        b"Account No,Company,Revenue\nA-1,Acme,\"1.234,5\"\n",
        "revenue = { from = \"Revenue\", type = \"decimal\", decimal = \",\" }\n",
    );
    out.expect_code(0);
    w.dvload(&["run", "m.toml", "--dry-run", "--emit-batches", "out"])
        .expect_code(0);
    assert!(
        w.read("out/batch-000001.http")
            .contains("\"revenue\":1234.5")
    );
}

#[test]
fn a_date_that_does_not_exist_is_rejected() {
    let (_, out) = csv_case(
        b"Account No,Company,Since\nA-1,Acme,31/02/2024\n",
        "new_customersince = { from = \"Since\", type = \"dateonly\", format = \"%d/%m/%Y\" }\n",
    );
    out.expect_code(1)
        .stdout_has("row 1 (line 2): column 'new_customersince' (from 'Since'): '31/02/2024' is not a valid date (format '%d/%m/%Y')");
}

#[test]
fn an_unknown_choice_label_lists_the_allowed_ones() {
    let (_, out) = csv_case(
        b"Account No,Company,Industry\nA-1,Acme,Aerospace\n",
        "industrycode = { from = \"Industry\", type = \"choice\", map = { \"Accounting\" = 1, \"Consulting\" = 7 } }\n",
    );
    out.expect_code(1).stdout_has(
        "row 1 (line 2): column 'industrycode' (from 'Industry'): unknown label 'Aerospace'; allowed: Accounting, Consulting",
    );
}

#[test]
fn an_unknown_mapping_key_is_an_error_with_its_position() {
    let (_, out) = csv_case(
        b"Account No,Company\nA-1,Acme\n",
        "revenue = { from = \"Revenue\", typ = \"money\" }\n",
    );
    out.expect_code(2).stderr_has(
        "m.toml:11:31: unknown key 'typ' in field 'revenue' (did you mean 'type'?); allowed: from, value, template, type,",
    );
}

#[test]
fn a_misspelt_source_field_is_an_error_before_any_row() {
    let (w, out) = csv_case(
        b"Account No,Company,Revenue\nA-1,Acme,1\n",
        "revenue = { from = \"Revnue\", type = \"money\" }\n",
    );
    out.expect_code(2).stderr_has("m.toml:11:20: source field 'Revnue' is not a column of accounts.csv; did you mean 'Revenue'?");
    assert!(!w.path().join("rejects.csv").exists());
}

fn json_case(name: &str, source: &[u8], records: &str) -> (Workdir, crate::support::Output) {
    let w = Workdir::new();
    let pointer = if records.is_empty() {
        String::new()
    } else {
        format!("records = \"{records}\"\n")
    };
    w.write(
        "m.toml",
        format!(
            "[source]\npath = \"{name}\"\n{pointer}\n[target]\nentity_set = \"leads\"\noperation = \"create\"\n\n\
             [fields]\nsubject = {{ from = \"topic\", required = true }}\nfirstname = \"person.first\"\n"
        ),
    );
    w.write(name, source);
    let out = w.dvload(&["validate", "m.toml", "--rejects", "rejects.jsonl"]);
    (w, out)
}

#[test]
fn a_json_document_cut_short_stops_with_the_byte_offset() {
    let (_, out) = json_case(
        "leads.json",
        br#"{"value":[{"topic":"a"},{"topic":"b","person":{"first":"#,
        "/value",
    );
    out.expect_code(2).stderr_has("leads.json: byte offset ");
}

#[test]
fn json_at_a_pointer_and_nested_paths() {
    let (w, out) = json_case(
        "leads.json",
        br#"{"@odata.context":"x","value":[{"topic":"a","person":{"first":"Ann"}},{"topic":""}]}"#,
        "/value",
    );
    out.expect_code(1)
        .stdout_has("read 2  would write 1  rejected 1")
        .stdout_has("column 'subject' (from 'topic'): is required but the value is empty");
    assert_eq!(
        w.read("rejects.jsonl"),
        "{\"row\":2,\"error\":\"column 'subject' (from 'topic'): is required but the value is empty\",\"record\":{\"topic\":\"\"}}\n"
    );
}

#[test]
fn a_malformed_json_line_rejects_that_line_only() {
    let (w, out) = json_case(
        "leads.jsonl",
        b"{\"topic\":\"a\"}\n{\"topic\":\n{\"topic\":\"c\"}\n",
        "",
    );
    out.expect_code(1)
        .stdout_has("read 3  would write 2  rejected 1")
        .stdout_has("line 2");
    let rejects = w.read("rejects.jsonl");
    assert!(rejects.starts_with("{\"row\":2,\"error\":"), "{rejects}");
    assert!(rejects.contains("\"raw\":\"{\\\"topic\\\":\""), "{rejects}");
}
