//! Mapping-file checks seen from the command line: each refused before any row is read, at the
//! mapping's line and column, with exit code 2.

use crate::support::{Workdir, accounts_mapping};

#[test]
fn a_quote_equal_to_the_delimiter_is_reported_at_the_mapping_not_the_csv() {
    let w = Workdir::new();
    w.write(
        "m.toml",
        accounts_mapping("").replace("[source]\n", "[source]\ndelimiter = \";\"\nquote = \";\"\n"),
    );
    w.write("accounts.csv", "Account No;Company\nA-1;Acme\n");
    w.dvload(&["validate", "m.toml"])
        .expect_code(2)
        .stderr_has("m.toml:3:9: [source] quote \";\" is also the delimiter (line 2, column 13); allowed: one ASCII punctuation character other than the delimiter");
}

#[test]
fn a_key_column_mapped_differently_in_fields_stops_validate() {
    let w = Workdir::new();
    w.write("m.toml", accounts_mapping("accountnumber = \"Company\"\n"));
    w.write("accounts.csv", "Account No,Company\nA-1,Acme\n");
    w.dvload(&["validate", "m.toml"])
        .expect_code(2)
        .stderr_has("field 'accountnumber' maps the key column 'accountnumber' differently from [target] key (line 7, column 9)");
}
