//! Input limits and strict reading: over-long records, UTF-16, stray text after a quote,
//! duplicate JSON members, and what the rejects file keeps (row numbers on replay, line endings).

use std::io::Write;

use crate::support::{Workdir, accounts_mapping, read_rejects_csv};

/// The default `max_record_bytes` (8 MiB).
const DEFAULT_MAX: u64 = 8 * 1024 * 1024;

/// Writes `head`, then `chunk` `times` times over, then `tail` into the work directory's `name`
/// (generated on the fly: the big part is never held in memory).
fn write_big(w: &Workdir, name: &str, head: &[u8], chunk: &[u8], times: usize, tail: &[u8]) -> u64 {
    let path = w.path().join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    f.write_all(head).unwrap();
    for _ in 0..times {
        f.write_all(chunk).unwrap();
    }
    f.write_all(tail).unwrap();
    f.flush().unwrap();
    std::fs::metadata(&path).unwrap().len()
}

/// A mapping of `file` (JSON or JSON Lines) with `id` as the key and `name` as the name.
fn json_mapping(file: &str) -> String {
    format!(
        "[source]\npath = \"{file}\"\n\n[target]\nentity_set = \"accounts\"\noperation = \"upsert\"\n\
         key = {{ accountnumber = \"id\" }}\n\n[fields]\nname = \"name\"\n"
    )
}

fn file_size(w: &Workdir, name: &str) -> u64 {
    std::fs::metadata(w.path().join(name)).unwrap().len()
}

#[test]
fn an_over_long_csv_row_is_rejected_cut_and_the_rows_after_it_are_read() {
    let w = Workdir::new();
    w.write("m.toml", accounts_mapping(""));
    // 12 MB in one field of row 2, with quotes, delimiters and line breaks inside.
    write_big(
        &w,
        "accounts.csv",
        b"Account No,Company\nA-1,Acme\nA-2,\"",
        b"a \"\"big\"\", long\nvalue;",
        12 * 1024 * 1024 / 24,
        b"\"\nA-3,Initech\n",
    );
    let out = w.dvload(&["validate", "m.toml", "--rejects", "rejects.csv"]);
    out.expect_code(1)
        .stdout_has("read 3  would write 2  rejected 1")
        .stdout_has("row 2 (line 3): the row is ")
        .stdout_has(&format!(
            "bytes long, more than the limit of {DEFAULT_MAX} bytes (max_record_bytes in the \
             mapping's [source]); it was not read"
        ));
    // The rejects file holds the row's start and a note, not 12 MB.
    assert!(
        file_size(&w, "rejects.csv") < 4096,
        "{}",
        file_size(&w, "rejects.csv")
    );
    let rejects = read_rejects_csv(&w.path().join("rejects.csv"), b',');
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].row, 2);
    assert!(rejects[0].fields["Account No"].starts_with("A-2,\"a \"\"big"));
    assert!(rejects[0].fields["Account No"].contains("...[cut by dvload: the first "));
    // Replayed as it is, the row is rejected again (and keeps its number).
    let out = w.dvload(&[
        "validate",
        "m.toml",
        "--source",
        "rejects.csv",
        "--rejects",
        "again.csv",
    ]);
    out.expect_code(1)
        .stdout_has("read 1  would write 0  rejected 1");
    assert_eq!(
        read_rejects_csv(&w.path().join("again.csv"), b',')[0].row,
        2
    );
}

#[test]
fn an_unterminated_quote_in_a_big_csv_stops_with_an_error_naming_its_line() {
    let w = Workdir::new();
    w.write("m.toml", accounts_mapping(""));
    write_big(
        &w,
        "accounts.csv",
        b"Account No,Company\nA-1,\"Acme\n",
        b"A-9,Globex Corporation of Springfield\n",
        20 * 1024 * 1024 / 38,
        b"",
    );
    let out = w.dvload(&["validate", "m.toml", "--rejects", "rejects.csv"]);
    out.expect_code(2)
        .stderr_has("accounts.csv: line 2: unterminated quoted field: the quote opened on line 2 (column 'Company') is never closed")
        .stderr_has(&format!("more than the limit of {DEFAULT_MAX} bytes"))
        .stderr_has("nothing after line 1 was read");
    if w.path().join("rejects.csv").exists() {
        assert!(file_size(&w, "rejects.csv") < 4096);
    }
}

#[test]
fn max_record_bytes_is_set_in_the_mapping_and_checked() {
    let w = Workdir::new();
    let mapping = accounts_mapping("").replace(
        "path = \"accounts.csv\"",
        "path = \"accounts.csv\"\nmax_record_bytes = 2048",
    );
    w.write("m.toml", &mapping);
    let long = "x".repeat(3000);
    w.write(
        "accounts.csv",
        format!("Account No,Company\nA-1,{long}\nA-2,ok\n"),
    );
    w.dvload(&["validate", "m.toml"])
        .expect_code(1)
        .stdout_has("read 2  would write 1  rejected 1")
        .stdout_has(
            "row 1 (line 2): the row is 3004 bytes long, more than the limit of 2048 bytes",
        );
    w.write("m.toml", mapping.replace("= 2048", "= 100"));
    w.dvload(&["validate", "m.toml"])
        .expect_code(2)
        .stderr_has("max_record_bytes must be a number of bytes, at least 1024");
}

#[test]
fn an_over_long_json_lines_line_is_rejected_and_the_next_line_read() {
    let w = Workdir::new();
    w.write("m.toml", json_mapping("leads.jsonl"));
    write_big(
        &w,
        "leads.jsonl",
        b"{\"id\": \"L-1\", \"name\": \"a\"}\n{\"id\": \"L-2\", \"name\": \"",
        &[b'x'; 4096],
        12 * 256,
        b"\"}\n{\"id\": \"L-3\", \"name\": \"c\"}\n",
    );
    w.dvload(&["validate", "m.toml", "--rejects", "rejects.jsonl"])
        .expect_code(1)
        .stdout_has("read 3  would write 2  rejected 1")
        .stdout_has("row 2 (line 2): the line is ");
    assert!(file_size(&w, "rejects.jsonl") < 4096);
    let line: serde_json::Value = serde_json::from_str(w.read("rejects.jsonl").trim()).unwrap();
    assert_eq!(line["row"], 2);
    let raw = line["raw"].as_str().unwrap();
    assert!(
        raw.starts_with("{\"id\": \"L-2\", \"name\": \"xxx"),
        "{raw}"
    );
    assert!(raw.ends_with(" of 12582937 bytes]"), "{raw}");
}

#[test]
fn a_60_mb_text_value_in_a_json_array_is_rejected_not_written() {
    let w = Workdir::new();
    w.write("m.toml", json_mapping("leads.json"));
    write_big(
        &w,
        "leads.json",
        b"[{\"id\": \"L-1\", \"name\": \"a\"},\n{\"id\": \"L-2\", \"name\": \"",
        &[b'y'; 64 * 1024],
        60 * 16,
        b"\"},\n{\"id\": \"L-3\", \"name\": \"c\"}]\n",
    );
    w.dvload(&["validate", "m.toml", "--rejects", "rejects.jsonl"])
        .expect_code(1)
        .stdout_has("read 3  would write 2  rejected 1")
        .stdout_has("row 2 (line 2): element 2 (from byte offset 29) is 62914585 bytes long");
    assert!(file_size(&w, "rejects.jsonl") < 4096);
}

#[test]
fn a_utf16_csv_is_named_as_such_with_what_is_accepted() {
    let w = Workdir::new();
    w.write("m.toml", accounts_mapping(""));
    let text: Vec<u8> = "Account No,Company\r\nA-1,Acme\r\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    for bytes in [[&[0xFF, 0xFE][..], &text].concat(), text.clone()] {
        w.write("accounts.csv", &bytes);
        let out = w.dvload(&["validate", "m.toml"]);
        out.expect_code(2)
            .stderr_has("accounts.csv: line 1: the file is UTF-16 (little-endian")
            .stderr_has("dvload reads UTF-8 and windows-1252 only: save it as UTF-8")
            .stderr_has("set encoding = \"windows-1252\"");
        assert!(!out.stderr.contains("not valid UTF-8"), "{}", out.stderr);
    }
}

#[test]
fn text_after_a_closing_quote_rejects_the_row_and_keeps_it_in_the_rejects_file() {
    let w = Workdir::new();
    w.write("m.toml", accounts_mapping(""));
    w.write(
        "accounts.csv",
        "Account No,Company\nA-1,\"B\"x\nA-2,\"Globex\"\n",
    );
    w.dvload(&["validate", "m.toml", "--rejects", "rejects.csv"])
        .expect_code(1)
        .stdout_has("read 2  would write 1  rejected 1")
        .stdout_has(
            "row 1 (line 2): column 'Company': text after the closing quote ('x' on line 2)",
        );
    assert!(
        w.read("rejects.csv").contains("\nA-1,\"B\"x,1,"),
        "{}",
        w.read("rejects.csv")
    );
}

#[test]
fn duplicate_json_members_reject_the_record_naming_the_member() {
    let w = Workdir::new();
    w.write("m.toml", json_mapping("leads.jsonl"));
    w.write(
        "leads.jsonl",
        "{\"id\": \"L-1\", \"name\": \"a\", \"name\": \"b\"}\n{\"id\": \"L-2\", \"name\": \"c\"}\n",
    );
    w.dvload(&["validate", "m.toml"])
        .expect_code(1)
        .stdout_has("read 2  would write 1  rejected 1")
        .stdout_has("row 1 (line 1): member 'name' appears twice in the same object (column ");
    w.write("m.toml", json_mapping("leads.json"));
    w.write(
        "leads.json",
        "[{\"id\": \"L-1\", \"name\": \"c\"},\n {\"id\": \"L-2\", \"id\": \"L-3\", \"name\": \"a\"}]",
    );
    w.dvload(&["validate", "m.toml"])
        .expect_code(1)
        .stdout_has("read 2  would write 1  rejected 1")
        .stdout_has("row 2 (line 2): element 2: member 'id' appears twice in the same object, at byte offset ");
}

#[test]
fn a_replayed_csv_rejects_file_keeps_the_original_row_numbers() {
    let w = Workdir::new();
    w.write(
        "m.toml",
        accounts_mapping("numberofemployees = { from = \"Staff\", type = \"int\" }\n"),
    );
    w.write(
        "accounts.csv",
        "Account No,Company,Staff\nA-1,Acme,1\nA-2,Globex,lots\nA-3,Initech,3\nA-4\nA-5,Umbrella,many\n",
    );
    w.dvload(&["validate", "m.toml", "--rejects", "rejects.csv"])
        .expect_code(1)
        .stdout_has("rejected 3");
    let first: Vec<u64> = read_rejects_csv(&w.path().join("rejects.csv"), b',')
        .iter()
        .map(|r| r.row)
        .collect();
    assert_eq!(first, [2, 4, 5]);
    // The replay reads them as its rows 1, 2 and 3; its rejects keep 2, 4 and 5.
    w.dvload(&[
        "validate",
        "m.toml",
        "--source",
        "rejects.csv",
        "--rejects",
        "again.csv",
    ])
    .expect_code(1)
    .stdout_has("row 1 (line 2): ")
    .stdout_has("read 3  would write 0  rejected 3");
    let again = w.read("again.csv");
    let rows: Vec<u64> = read_rejects_csv(&w.path().join("again.csv"), b',')
        .iter()
        .map(|r| r.row)
        .collect();
    assert_eq!(rows, [2, 4, 5], "{again}");
    // The ragged row does not grow by two columns on each replay.
    assert!(again.contains("\nA-4,4,"), "{again}");
    assert!(!again.contains("A-4,4,the row has"), "{again}");
}

#[test]
fn a_replayed_json_lines_rejects_file_keeps_the_original_row_numbers() {
    let w = Workdir::new();
    w.write(
        "m.toml",
        json_mapping("leads.jsonl") + "numberofemployees = { from = \"staff\", type = \"int\" }\n",
    );
    w.write(
        "leads.jsonl",
        "{\"id\": \"L-1\", \"staff\": 1}\n{\"id\": \"L-2\", \"staff\": \"lots\"}\n\
         {\"id\": \"L-3\", \"staff\": 3}\n{\"id\": \n{\"id\": \"L-5\", \"staff\": \"many\"}\n",
    );
    w.dvload(&["validate", "m.toml", "--rejects", "rejects.jsonl"])
        .expect_code(1)
        .stdout_has("rejected 3");
    let rows = |name: &str| -> Vec<u64> {
        w.read(name)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["row"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(rows("rejects.jsonl"), [2, 4, 5]);
    w.dvload(&[
        "validate",
        "m.toml",
        "--source",
        "rejects.jsonl",
        "--rejects",
        "again.jsonl",
    ])
    .expect_code(1)
    .stdout_has("read 3  would write 0  rejected 3");
    assert_eq!(rows("again.jsonl"), [2, 4, 5]);
}

#[test]
fn a_crlf_source_gets_a_crlf_rejects_file() {
    let w = Workdir::new();
    w.write("m.toml", accounts_mapping(""));
    w.write(
        "accounts.csv",
        "Account No,Company\r\nA-1,Acme\r\nA-2\r\nA-3,\"Multi\nline\"x\r\n",
    );
    w.dvload(&["validate", "m.toml", "--rejects", "rejects.csv"])
        .expect_code(1)
        .stdout_has("rejected 2");
    let rejects = w.read("rejects.csv");
    assert!(
        rejects.starts_with("Account No,Company,dvload_row,dvload_error\r\nA-2,2,"),
        "{rejects:?}"
    );
    // Every line ends with CRLF (the line break inside the quoted field is the row's own).
    assert_eq!(rejects.matches("\r\n").count(), 3, "{rejects:?}");
    assert!(rejects.ends_with("\r\n"));
    assert!(
        !rejects
            .replace("\r\n", "")
            .replace("Multi\nline", "")
            .contains('\n'),
        "{rejects:?}"
    );
}
