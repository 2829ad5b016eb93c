//! Tests of the JSON array reader and its scanner.

use super::*;
use serde_json::json;
use std::io::Write;

fn write_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

fn with_pointer(records: &str) -> SourceOptions {
    SourceOptions {
        format: super::super::Format::Json,
        records: records.into(),
        ..SourceOptions::default()
    }
}

fn open_at(bytes: &[u8], records: &str) -> Result<JsonArraySource, SourceError> {
    let f = write_file(bytes);
    JsonArraySource::open(f.path(), &with_pointer(records))
}

fn read_all(bytes: &[u8], records: &str) -> Vec<Result<SourceItem, SourceError>> {
    open_at(bytes, records).unwrap().collect()
}

fn record(item: &Result<SourceItem, SourceError>) -> (RowPos, serde_json::Value) {
    match item {
        Ok(SourceItem::Record(Record {
            pos,
            data: RecordData::Json(v),
        })) => (*pos, v.clone()),
        other => panic!("expected a JSON record, got {other:?}"),
    }
}

fn bad(item: &Result<SourceItem, SourceError>) -> &BadRecord {
    match item {
        Ok(SourceItem::Bad(b)) => b,
        other => panic!("expected a bad record, got {other:?}"),
    }
}

/// (offset, line, column, reason) of a `SourceError::Json`.
fn json_err(e: &SourceError) -> (u64, u64, u64, &str) {
    match e {
        SourceError::Json {
            offset,
            line,
            column,
            reason,
            ..
        } => (*offset, *line, *column, reason.as_str()),
        other => panic!("expected a JSON error, got {other}"),
    }
}

fn records_err(e: SourceError) -> String {
    match e {
        SourceError::Records { reason, .. } => reason,
        other => panic!("expected a records error, got {other}"),
    }
}

fn pos(row: u64, line: u64) -> RowPos {
    RowPos { row, line }
}

#[test]
fn top_level_array_of_objects() {
    let items = read_all(b"[\n  {\"a\": 1, \"b\": \"x\"},\n  {\"a\": 2}\n]\n", "");
    assert_eq!(items.len(), 2);
    assert_eq!(record(&items[0]), (pos(1, 2), json!({"a": 1, "b": "x"})));
    assert_eq!(record(&items[1]), (pos(2, 3), json!({"a": 2})));
}

#[test]
fn keeps_member_order() {
    let items = read_all(br#"[{"z": 1, "a": 2, "m": 3}]"#, "");
    let (_, v) = record(&items[0]);
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["z", "a", "m"]);
}

#[test]
fn empty_array_and_bom() {
    assert!(read_all(b"[]", "").is_empty());
    assert!(read_all(b"\xEF\xBB\xBF [ ] \n", "").is_empty());
    let items = read_all(b"\xEF\xBB\xBF[{\"a\":1}]", "");
    assert_eq!(record(&items[0]), (pos(1, 1), json!({"a": 1})));
}

#[test]
fn array_at_a_pointer() {
    let doc = br#"{
  "@odata.context": "https://x/$metadata#accounts",
  "skip": {"value": [1, 2, {"deep": [true, false, null]}], "s": "a \"quoted\" \\ \u00e9"},
  "value": [
{"name": "A", "n": -1.5e3},
{"name": "B", "tags": ["x", {"y": null}]}
  ],
  "@odata.nextLink": "https://x/next"
}
"#;
    let items = read_all(doc, "/value");
    assert_eq!(items.len(), 2);
    assert_eq!(
        record(&items[0]),
        // The number as written (no f64 on the way: "Values arrive as written").
        (
            pos(1, 5),
            serde_json::from_str::<serde_json::Value>(r#"{"name": "A", "n": -1.5e3}"#).unwrap()
        )
    );
    assert_eq!(
        record(&items[1]),
        (pos(2, 6), json!({"name": "B", "tags": ["x", {"y": null}]}))
    );
}

#[test]
fn nested_pointer_with_index_and_escapes() {
    let doc = br#"{"data": {"a/b": [{"x": 0}, {"items~": [{"id": 7}]}]}}"#;
    let items = read_all(doc, "/data/a~1b/1/items~0");
    assert_eq!(items.len(), 1);
    assert_eq!(record(&items[0]), (pos(1, 1), json!({"id": 7})));
}

#[test]
fn first_of_duplicate_keys_is_followed() {
    let items = read_all(br#"{"v": [{"a": 1}], "v": [{"a": 2}, {"a": 3}]}"#, "/v");
    assert_eq!(items.len(), 1);
    assert_eq!(record(&items[0]).1, json!({"a": 1}));
}

#[test]
fn non_object_elements_are_bad_and_reading_continues() {
    let items = read_all(
        b"[{\"a\":1},\n 2,\n \"s\", [1, 2], null, true, {\"a\":3}]",
        "",
    );
    assert_eq!(items.len(), 7);
    let b = bad(&items[1]);
    assert_eq!(b.pos, pos(2, 2));
    assert_eq!(
        b.reason,
        "element 2 is a number; each record must be a JSON object"
    );
    assert_eq!(b.raw, b"2");
    assert_eq!(
        bad(&items[2]).reason,
        "element 3 is a string; each record must be a JSON object"
    );
    assert_eq!(bad(&items[2]).raw, b"\"s\"");
    assert_eq!(
        bad(&items[3]).reason,
        "element 4 is an array; each record must be a JSON object"
    );
    assert_eq!(bad(&items[3]).raw, b"[1, 2]");
    assert_eq!(
        bad(&items[4]).reason,
        "element 5 is null; each record must be a JSON object"
    );
    assert_eq!(
        bad(&items[5]).reason,
        "element 6 is a boolean; each record must be a JSON object"
    );
    assert_eq!(record(&items[6]), (pos(7, 3), json!({"a": 3})));
}

#[test]
fn invalid_utf8_inside_an_element_is_bad() {
    let items = read_all(b"[{\"a\": \"x\xFFy\"},\n{\"a\": 2}]", "");
    let b = bad(&items[0]);
    assert_eq!(b.pos, pos(1, 1));
    assert!(
        b.reason
            .starts_with("element 1 is not valid JSON: invalid unicode code point at byte offset"),
        "{}",
        b.reason
    );
    assert_eq!(b.raw, b"{\"a\": \"x\xFFy\"}");
    assert_eq!(record(&items[1]), (pos(2, 2), json!({"a": 2})));
}

#[test]
fn document_cut_short_names_the_end_offset() {
    let doc = b"[{\"a\": 1}, {\"a\": 2}, {\"a\": \"thr";
    let items = read_all(doc, "");
    assert_eq!(items.len(), 3);
    record(&items[0]);
    record(&items[1]);
    let e = items[2].as_ref().err().unwrap();
    assert_eq!(
        json_err(e),
        (
            doc.len() as u64,
            1,
            doc.len() as u64 + 1,
            "the document ends too soon (is the file cut short?): expected the end of a \
             string ('\"')"
        )
    );
    assert_eq!(
        e.to_string().split_once(": ").unwrap().1,
        format!(
            "byte offset {} (line 1, column {}): the document ends too soon (is the file \
             cut short?): expected the end of a string ('\"')",
            doc.len(),
            doc.len() + 1
        )
    );
    // Cut between elements.
    let doc = b"[{\"a\": 1},\n";
    let items = read_all(doc, "");
    assert_eq!(
        json_err(items[1].as_ref().err().unwrap()),
        (
            11,
            2,
            1,
            "the document ends too soon (is the file cut short?): expected element 2"
        )
    );
    let items = read_all(b"[{\"a\": 1}", "");
    assert_eq!(
        json_err(items[1].as_ref().err().unwrap()).3,
        "the document ends too soon (is the file cut short?): expected ',' or ']' after \
         element 1 of the records array"
    );
    // Cut before the array closes its enclosing object.
    let items = read_all(b"{\"value\": [{\"a\": 1}]", "/value");
    assert_eq!(items.len(), 2);
    assert_eq!(
        json_err(items[1].as_ref().err().unwrap()),
        (
            20,
            1,
            21,
            "the document ends too soon (is the file cut short?): expected ',' or '}'"
        )
    );
}

#[test]
fn syntax_errors_stop_the_source() {
    let items = read_all(b"[{\"a\": 1} {\"a\": 2}]", "");
    assert_eq!(
        json_err(items[1].as_ref().err().unwrap()),
        (
            10,
            1,
            11,
            "expected ',' or ']' after element 1 of the records array, found '{'"
        )
    );
    assert_eq!(items.len(), 2);
    let items = read_all(b"[{\"a\": 1},]", "");
    assert_eq!(
        json_err(items[1].as_ref().err().unwrap()),
        (
            10,
            1,
            11,
            "expected element 2 after ',', found ']' (JSON does not allow a trailing comma)"
        )
    );
    let items = read_all(b"[\n{\"a\": tru}]", "");
    assert_eq!(
        json_err(items[0].as_ref().err().unwrap()),
        (11, 2, 10, "expected 'true', found '}'")
    );
    let items = read_all(b"[{\"a\": 1 \"b\": 2}]", "");
    assert_eq!(
        json_err(items[0].as_ref().err().unwrap()),
        (
            9,
            1,
            10,
            "expected ',' or '}', found '\"' (is a comma missing?)"
        )
    );
    let items = read_all(b"[{'a': 1}]", "");
    assert_eq!(
        json_err(items[0].as_ref().err().unwrap()).3,
        "expected a member name (a string in double quotes), found \"'\" (JSON strings use \
         double quotes)"
    );
    let items = read_all(b"[{\"a\": \"x\ny\"}]", "");
    assert!(
        json_err(items[0].as_ref().err().unwrap())
            .3
            .starts_with("a control character (byte 0x0A) inside a string")
    );
    let items = read_all(b"[{\"a\": \"\\x\"}]", "");
    assert!(
        json_err(items[0].as_ref().err().unwrap())
            .3
            .starts_with("invalid escape '\\x' in a string")
    );
    let items = read_all(b"[{\"a\": -}]", "");
    assert_eq!(
        json_err(items[0].as_ref().err().unwrap()),
        (8, 1, 9, "expected a digit, found '}'")
    );
    let items = read_all(b"[{\"a\": 1.}]", "");
    assert_eq!(
        json_err(items[0].as_ref().err().unwrap()).3,
        "expected a digit after the decimal point, found '}'"
    );
}

#[test]
fn pretty_printed_elements_have_exact_lines_and_errors() {
    let doc =
        b"[\n  {\n    \"a\": 1\n  },\n  {\n    \"a\": [1,\n 2]\n  },\n  {\n    \"b\": x\n  }\n]";
    let items = read_all(doc, "");
    assert_eq!(items.len(), 3);
    assert_eq!(record(&items[0]), (pos(1, 2), json!({"a": 1})));
    assert_eq!(record(&items[1]), (pos(2, 5), json!({"a": [1, 2]})));
    let x = doc.iter().position(|&b| b == b'x').unwrap() as u64;
    assert_eq!(
        json_err(items[2].as_ref().err().unwrap()),
        (x, 10, 10, "expected a value, found 'x'")
    );
    // Brackets in strings and escaped quotes do not confuse the search for the end.
    let items = read_all(br#"[{"s": "}]\"{["}, {"t": "\\"}]"#, "");
    assert_eq!(record(&items[0]).1, json!({"s": "}]\"{["}));
    assert_eq!(record(&items[1]).1, json!({"t": "\\"}));
    // A mismatched bracket is found by the check after serde_json refuses the element.
    let items = read_all(b"[{\"a\": [1}]", "");
    assert_eq!(
        json_err(items[0].as_ref().err().unwrap()),
        (9, 1, 10, "expected ',' or ']', found '}'")
    );
}

#[test]
fn content_after_the_document_is_an_error_unless_whitespace() {
    assert!(
        read_all(b"[{\"a\":1}] \r\n\t ", "")
            .iter()
            .all(|i| i.is_ok())
    );
    let items = read_all(b"[{\"a\":1}]\n[{\"a\":2}]", "");
    let (offset, line, column, reason) = json_err(items[1].as_ref().err().unwrap());
    assert_eq!((offset, line, column), (10, 2, 1));
    assert!(
        reason.starts_with("unexpected '[' after the end of the JSON document; only whitespace may follow it (a file of one JSON object per line is JSON Lines"),
        "{reason}"
    );
    let items = read_all(b"{\"value\": []} x", "/value");
    assert_eq!(
        json_err(items[0].as_ref().err().unwrap()),
        (
            14,
            1,
            15,
            "unexpected 'x' after the end of the JSON document; only whitespace may follow it"
        )
    );
    // Members after the array are read and checked.
    let items = read_all(b"{\"value\": [], \"next\": [1, }", "/value");
    assert_eq!(
        json_err(items[0].as_ref().err().unwrap()).3,
        "expected a value after ',', found '}' (JSON does not allow a trailing comma)"
    );
}

#[test]
fn pointer_problems_are_records_errors() {
    let e = open_at(br#"{"data": {"x": []}}"#, "/data/items")
        .err()
        .unwrap();
    assert_eq!(
        records_err(e),
        "the records pointer '/data/items' leads nowhere: the object at '/data' has no member 'items'"
    );
    let e = open_at(br#"{"data": "text"}"#, "/data/items")
        .err()
        .unwrap();
    assert_eq!(
        records_err(e),
        "the records pointer '/data/items' leads nowhere: '/data' is a string, not an object or an array"
    );
    let e = open_at(br#"{"value": {"a": 1}}"#, "/value").err().unwrap();
    assert_eq!(
        records_err(e),
        "the records pointer '/value' leads to an object, not an array of records"
    );
    let e = open_at(br#"{"value": 3}"#, "/value").err().unwrap();
    assert_eq!(
        records_err(e),
        "the records pointer '/value' leads to a number, not an array of records"
    );
    let e = open_at(br#"[[1], [2]]"#, "/5").err().unwrap();
    assert_eq!(
        records_err(e),
        "the records pointer '/5' leads nowhere: the array at '/' has 2 elements"
    );
    let e = open_at(br#"[[1], [2]]"#, "/x").err().unwrap();
    assert_eq!(
        records_err(e),
        "the records pointer '/x' leads nowhere: '/' is an array and 'x' is not an element index"
    );
    let e = open_at(b"[]", "value").err().unwrap();
    assert_eq!(
        records_err(e),
        "the records pointer 'value' must start with '/' (a JSON pointer, such as '/value')"
    );
}

#[test]
fn top_level_object_suggests_a_pointer() {
    let e = open_at(
        br#"{"@odata.context": "x", "value": [{"a": 1}], "n": 2}"#,
        "",
    )
    .err()
    .unwrap();
    assert_eq!(
        records_err(e),
        "the document is an object, not an array of records; its member 'value' is an array: set records = \"/value\" in the mapping's [source]"
    );
    let e = open_at(br#"{"a": [], "b/c": []}"#, "").err().unwrap();
    assert_eq!(
        records_err(e),
        "the document is an object, not an array of records; these members are arrays: \"/a\", \"/b~1c\"; set records to the JSON pointer of the one to read in the mapping's [source]"
    );
    let e = open_at(br#"{"a": 1}"#, "").err().unwrap();
    assert!(records_err(e).starts_with(
        "the document is an object, not an array of records; set records = \"/name\""
    ));
    let e = open_at(b"\"just text\"", "").err().unwrap();
    assert_eq!(
        records_err(e),
        "the document is a string, not an array of records"
    );
}

#[test]
fn empty_or_broken_start_is_a_json_error() {
    for doc in [&b""[..], b"\xEF\xBB\xBF", b"  \n "] {
        let e = open_at(doc, "").err().unwrap();
        assert!(
            json_err(&e).3.starts_with("the file is empty")
                || json_err(&e).3.starts_with("the document ends too soon"),
            "{e}"
        );
    }
    let e = open_at(b"", "").err().unwrap();
    assert_eq!(
        json_err(&e),
        (
            0,
            1,
            1,
            "the file is empty; expected a JSON array of records (or an object holding one)"
        )
    );
    let e = open_at(b"\n  x", "").err().unwrap();
    assert_eq!(json_err(&e), (3, 2, 3, "expected a JSON value, found 'x'"));
    let e = open_at(b"{\"value\": ", "/value").err().unwrap();
    assert_eq!(
        json_err(&e),
        (
            10,
            1,
            11,
            "the document ends too soon (is the file cut short?): expected a value"
        )
    );
}

#[test]
fn elements_spanning_buffers() {
    let big = "é".repeat(BUF_SIZE);
    let mut doc = String::from("{\"value\": [\n");
    for i in 0..5 {
        if i > 0 {
            doc.push_str(",\n");
        }
        doc.push_str(&format!(
            "{{\"i\": {i}, \"s\": \"{big}\", \"esc\": \"\\u00e9\\n\"}}"
        ));
    }
    doc.push_str("\n]}");
    let items = read_all(doc.as_bytes(), "/value");
    assert_eq!(items.len(), 5);
    for (i, item) in items.iter().enumerate() {
        let (p, v) = record(item);
        assert_eq!(p, pos(i as u64 + 1, i as u64 + 2));
        assert_eq!(v, json!({"i": i, "s": big, "esc": "é\n"}));
    }
}

fn generated(data: super::super::Generated, max: usize) -> JsonArraySource {
    let options = SourceOptions {
        max_record_bytes: max,
        ..with_pointer("")
    };
    JsonArraySource::from_reader(Path::new("big.json"), Box::new(data), &options).unwrap()
}

const MIB: usize = 1024 * 1024;

#[test]
fn an_over_long_element_is_rejected_and_the_next_one_read_within_the_cap() {
    // A 30 MB text value (with escapes and brackets inside the string), then more records.
    let data = super::super::Generated::new()
        .then(b"[{\"a\": 1},\n {\"big\": \"")
        .repeat(b"[{\\\"x\\\"}] ", 3_000_000)
        .then(b"\", \"n\": [1, {\"m\": 2}]},\n \"")
        .repeat(b"s", 2 * MIB as u64)
        .then(b"\",\n {\"a\": 3}]");
    let mut src = generated(data, MIB);
    assert_eq!(record(&src.next().unwrap()), (pos(1, 1), json!({"a": 1})));
    let item = src.next().unwrap();
    let b = bad(&item);
    assert_eq!(b.pos, pos(2, 2));
    let len = 9 + 30_000_000 + 22;
    assert_eq!(
        b.reason,
        format!(
            "element 2 (from byte offset 12) is {len} bytes long, more than the limit of \
             1048576 bytes (max_record_bytes in the mapping's [source]); it was not read"
        )
    );
    assert_eq!(b.cut, Some(len));
    assert!(b.raw.starts_with(b"{\"big\": \"[{"));
    assert_eq!(b.raw.len(), super::super::PREVIEW_BYTES);
    // Not an object either: a string element.
    let item = src.next().unwrap();
    let b = bad(&item);
    assert_eq!(b.pos, pos(3, 3));
    assert_eq!(b.cut, Some(2 * MIB as u64 + 2));
    assert_eq!(record(&src.next().unwrap()), (pos(4, 4), json!({"a": 3})));
    assert!(src.next().is_none());
    assert!(src.sc.peak <= MIB, "peak {}", src.sc.peak);
}

#[test]
fn a_document_that_ends_inside_an_over_long_element_stops_naming_where_it_started() {
    // A quote never closed: the rest of the file is inside the string.
    let data = super::super::Generated::new()
        .then(b"[{\"a\": 1}, {\"b\": \"oops}, {\"c\": 2}")
        .repeat(b", {\"c\": 2}", 200_000);
    let mut src = generated(data, MIB);
    record(&src.next().unwrap());
    let err = src.next().unwrap().unwrap_err();
    let (offset, line, _, reason) = json_err(&err);
    assert_eq!(offset, 33 + 10 * 200_000);
    assert_eq!(line, 1);
    assert_eq!(
        reason,
        "the document ends too soon (is the file cut short?): expected the end of element \
         2, which starts at byte offset 11 (line 1) and is already longer than the limit \
         of 1048576 bytes (max_record_bytes in the mapping's [source]); is a closing \
         bracket or quote missing?"
    );
    assert!(src.next().is_none());
    assert!(src.sc.peak <= MIB);
}

#[test]
fn a_duplicate_member_rejects_the_element_naming_it() {
    let items = read_all(
        b"[{\"a\": 1, \"a\": 2},\n {\"x\": {\"b\": 1, \"b\": 1}}, {\"a\": 3}]",
        "",
    );
    let b = bad(&items[0]);
    assert_eq!(b.pos, pos(1, 1));
    assert_eq!(
        b.reason,
        "element 1: member 'a' appears twice in the same object, at byte offset 16 (line 1, \
         column 17); a record may have each member name once"
    );
    assert_eq!(b.raw, b"{\"a\": 1, \"a\": 2}");
    assert!(
        bad(&items[1])
            .reason
            .starts_with("element 2: member 'b' appears twice")
    );
    assert_eq!(record(&items[2]).1, json!({"a": 3}));
}

#[test]
fn utf16_is_an_encoding_error() {
    let text: Vec<u8> = "[{\"a\":1}]"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    for bytes in [[&[0xFE, 0xFF][..], &text].concat(), text.clone()] {
        match open_at(&bytes, "") {
            Err(SourceError::Encoding { reason, .. }) => assert!(
                reason.starts_with("the file is UTF-16 (big-endian")
                    && reason.ends_with("save it as UTF-8"),
                "{reason}"
            ),
            other => panic!("expected an encoding error, got {:?}", other.err()),
        }
    }
}

#[test]
fn deep_nesting_is_skipped_without_recursion() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let doc = format!("{{\"skip\": {deep}, \"value\": [{{\"a\": 1}}]}}");
    let items = read_all(doc.as_bytes(), "/value");
    assert_eq!(record(&items[0]).1, json!({"a": 1}));
    // Too deep for serde_json inside a record: that record is bad, the next one is read.
    let doc = format!(
        "[{{\"a\": {}{}}}, {{\"b\": 2}}]",
        "[".repeat(200),
        "]".repeat(200)
    );
    let items = read_all(doc.as_bytes(), "");
    assert!(
        bad(&items[0])
            .reason
            .starts_with("element 1 is not valid JSON: recursion limit exceeded")
    );
    assert_eq!(record(&items[1]).1, json!({"b": 2}));
}

mod prop {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn text() -> impl Strategy<Value = String> {
        proptest::string::string_regex("(?s)[a-z\"\\\\/{}\\[\\],:\n\t\u{1} é€😀]{0,8}").unwrap()
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            text().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        scalar().prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::vec((text(), inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn object() -> impl Strategy<Value = Value> {
        proptest::collection::vec((text(), value()), 0..5)
            .prop_map(|kv| Value::Object(kv.into_iter().collect()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn written_arrays_read_back_identically(
            objects in proptest::collection::vec(object(), 0..8),
            pretty in any::<bool>(),
            nested in any::<bool>(),
        ) {
            let mut doc = String::new();
            if nested {
                doc.push_str("{\"skip\": [1, {\"value\": [2]}],\n \"value\": ");
            }
            doc.push_str("[\n");
            let mut lines = Vec::new();
            for (i, o) in objects.iter().enumerate() {
                if i > 0 {
                    doc.push_str(",\n");
                }
                lines.push(doc.matches('\n').count() as u64 + 1);
                let s = if pretty {
                    serde_json::to_string_pretty(o).unwrap()
                } else {
                    serde_json::to_string(o).unwrap()
                };
                doc.push_str(&s);
            }
            doc.push_str("\n]");
            if nested {
                doc.push_str(", \"after\": {\"x\": [null]}}");
            }
            doc.push('\n');
            let items = read_all(doc.as_bytes(), if nested { "/value" } else { "" });
            prop_assert_eq!(items.len(), objects.len());
            for (i, item) in items.iter().enumerate() {
                let (p, v) = record(item);
                prop_assert_eq!(p, pos(i as u64 + 1, lines[i]));
                prop_assert_eq!(&v, &objects[i]);
            }
        }
    }
}
