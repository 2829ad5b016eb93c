//! OData key literals and URL percent-encoding for `set(key='value')` segments (PROTOCOL.md §4).
//!
//! A key segment is rendered in two steps: each value becomes its OData literal (strings in single
//! quotes with embedded `'` doubled, GUIDs and numbers bare), then the literal is percent-encoded.
//!
//! Encoding decision: PROTOCOL.md §4 allows `!()*+,;$&=:@` to stay raw, but requires `:` to be
//! encoded inside `$batch` relative URLs, and raw `+`, `&`, `=`, `,` or `(` inside a quoted value
//! invite mis-parsing by proxies and naive servers. Percent-encoding is always valid, so this
//! module encodes **every byte except the unreserved set `A-Z a-z 0-9 - . _ ~` and the quote
//! `'`** (kept raw as the literal's delimiter and as its doubled escape). So
//! `abc@example.com` → `'abc%40example.com'` and `a b` → `'a%20b'`.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use uuid::Uuid;

/// Bytes that are percent-encoded in key names and values: everything except unreserved
/// characters and the single quote (see the module documentation for why).
const KEY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'\'');

/// True for the bytes that [`KEY_ENCODE_SET`] leaves as they are.
fn is_unreserved(b: u8) -> bool {
    UNRESERVED[usize::from(b)]
}

/// [`is_unreserved`] as a table: it is asked of every byte of every key.
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'\'');
        b += 1;
    }
    table
};

/// Characters that Dataverse cannot address by key even when percent-encoded (PROTOCOL.md §4,
/// source S9).
#[cfg(test)]
pub const UNADDRESSABLE_KEY_CHARS: &[char] = &['/', '<', '>', '*', '%', '&', ':', '\\', '?', '+'];

/// One value of a key column, typed so that it renders as the right OData literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    /// A single-line text column: rendered `'value'` with every `'` doubled.
    String(String),
    /// A whole-number or choice column: rendered bare (`42`, `-7`).
    Integer(i64),
    /// A decimal column, as its canonical text (`1.50`, `-3`): rendered bare.
    Decimal(String),
    /// A unique-identifier or lookup column: rendered bare, hyphenated lower case.
    Guid(Uuid),
    /// A Boolean column: rendered `true` or `false`.
    Bool(bool),
    /// A date-only column: rendered `YYYY-MM-DD`.
    Date(jiff::civil::Date),
    /// A date-and-time column: rendered as an RFC 3339 UTC timestamp (`2021-04-04T20:00:00Z`);
    /// the colons are percent-encoded in URLs. Dataverse support for these in key URLs is
    /// UNVERIFIED (PROTOCOL.md §4).
    DateTimeOffset(jiff::Timestamp),
}

impl KeyValue {
    /// Appends the value's OData literal, not percent-encoded (`'O''Neil'`), to `out`.
    pub fn write_literal(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self {
            KeyValue::String(s) => write_string_literal(s, out),
            KeyValue::Integer(n) => {
                let mut buf = itoa::Buffer::new();
                out.push_str(buf.format(*n));
            }
            KeyValue::Decimal(d) => out.push_str(d),
            KeyValue::Guid(g) => {
                let mut buf = Uuid::encode_buffer();
                out.push_str(g.hyphenated().encode_lower(&mut buf));
            }
            KeyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            KeyValue::Date(d) => {
                let _ = write!(out, "{d}");
            }
            KeyValue::DateTimeOffset(t) => {
                let _ = write!(out, "{t}");
            }
        }
    }

    /// The value's OData literal, not percent-encoded: `'O''Neil'`, `42`, `true`.
    pub fn literal(&self) -> String {
        let mut out = String::new();
        self.write_literal(&mut out);
        out
    }

    /// Appends the value's literal, percent-encoded for a URL, to `out`: `'O''Neil'`,
    /// `'abc%40example.com'`.
    pub fn write_url_literal(&self, out: &mut String) {
        match self {
            // Bare literals that are always URL-safe: skip the encoder.
            KeyValue::Integer(_) | KeyValue::Guid(_) | KeyValue::Bool(_) | KeyValue::Date(_) => {
                self.write_literal(out)
            }
            KeyValue::String(s) => write_string_url_literal(s, out),
            _ => {
                let literal = self.literal();
                out.extend(utf8_percent_encode(&literal, KEY_ENCODE_SET));
            }
        }
    }

    /// The value's literal, percent-encoded for a URL.
    #[cfg(test)]
    pub fn url_literal(&self) -> String {
        let mut out = String::new();
        self.write_url_literal(&mut out);
        out
    }

    /// Checks that Dataverse can address a record by this value; only string values can fail.
    /// See [`check_addressable`].
    pub fn check_addressable(&self) -> Result<(), UnaddressableKey> {
        match self {
            KeyValue::String(s) => check_addressable(s),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for KeyValue {
    /// Formats the unencoded OData literal (`'O''Neil'`), as used in messages and
    /// `Operation::key`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.literal())
    }
}

/// A string key value that Dataverse cannot address by key, even percent-encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "key value '{value}' contains '{ch}', which Dataverse cannot use in a key URL even when \
     percent-encoded (not allowed: / < > * % & : \\ ? +)"
)]
pub struct UnaddressableKey {
    /// The offending value.
    pub value: String,
    /// The first offending character in it.
    pub ch: char,
}

/// What a string key value holds, as far as writing its literals goes; found in one pass by
/// [`StringKey::new`], so that checking and writing a key do not scan it three times.
#[derive(Debug, Clone, Copy)]
pub struct StringKey<'a> {
    value: &'a str,
    /// `CLASS_*` bits of the bytes it holds.
    class: u8,
}

/// A byte that is percent-encoded in URLs.
const CLASS_ENCODED: u8 = 1;
/// The quote `'`, doubled in literals.
const CLASS_QUOTE: u8 = 2;
/// A byte of [`UNADDRESSABLE_KEY_CHARS`].
const CLASS_UNADDRESSABLE: u8 = 4;

/// The `CLASS_*` bits of every byte.
const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if !UNRESERVED[b] {
            table[b] |= CLASS_ENCODED;
        }
        if c == b'\'' {
            table[b] |= CLASS_QUOTE;
        }
        if is_unaddressable(c) {
            table[b] |= CLASS_UNADDRESSABLE;
        }
        b += 1;
    }
    table
};

impl<'a> StringKey<'a> {
    /// Reads the value once.
    pub fn new(value: &'a str) -> StringKey<'a> {
        let class = value
            .bytes()
            .fold(0, |class, b| class | CLASS[usize::from(b)]);
        StringKey { value, class }
    }

    /// What [`check_addressable`] says of the value.
    pub fn check_addressable(&self) -> Result<(), UnaddressableKey> {
        if self.class & CLASS_UNADDRESSABLE == 0 {
            Ok(())
        } else {
            check_addressable(self.value)
        }
    }

    /// Appends what [`write_string_literal`] does.
    pub fn write_literal(&self, out: &mut String) {
        if self.class & CLASS_QUOTE == 0 {
            out.reserve(self.value.len() + 2);
            out.push('\'');
            out.push_str(self.value);
            out.push('\'');
        } else {
            write_string_literal(self.value, out);
        }
    }

    /// Appends what [`write_string_url_literal`] does.
    pub fn write_url_literal(&self, out: &mut String) {
        if self.class & CLASS_ENCODED == 0 {
            self.write_literal(out);
        } else {
            write_string_url_literal(self.value, out);
        }
    }
}

/// Appends the OData literal of a string key value, not percent-encoded: `'O''Neil'`.
pub fn write_string_literal(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('\'');
    // Key values are short: a plain loop beats a `memchr` call.
    if !s.bytes().any(|b| b == b'\'') {
        out.push_str(s);
        out.push('\'');
        return;
    }
    let mut rest = s;
    while let Some(i) = rest.find('\'') {
        out.push_str(&rest[..=i]);
        out.push('\'');
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out.push('\'');
}

/// Appends the OData literal of a string key value, percent-encoded for a URL:
/// `'abc%40example.com'` (what [`KeyValue::write_url_literal`] writes for a string).
pub fn write_string_url_literal(s: &str, out: &mut String) {
    let mut quote = false;
    if s.bytes().all(|b| {
        quote |= b == b'\'';
        is_unreserved(b)
    }) {
        // Most string keys need no encoding (`'ACC-00001'`): copy them without the encoder.
        if quote {
            write_string_literal(s, out);
        } else {
            out.reserve(s.len() + 2);
            out.push('\'');
            out.push_str(s);
            out.push('\'');
        }
    } else {
        let mut literal = String::with_capacity(s.len() + 2);
        write_string_literal(s, &mut literal);
        out.extend(utf8_percent_encode(&literal, KEY_ENCODE_SET));
    }
}

/// A key column's name percent-encoded as it appears in a key URL (`name=` of
/// `set(name='v')`). Logical names are plain ASCII, so this is usually the name itself.
pub fn encode_key_name(name: &str) -> String {
    percent_encode(name)
}

/// `text` percent-encoded as key names and values are (everything but unreserved characters and
/// `'`): also what a query option's value needs (a `$filter` of OData literals).
pub fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, KEY_ENCODE_SET).to_string()
}

/// True for the bytes of [`UNADDRESSABLE_KEY_CHARS`] (all of them ASCII).
const fn is_unaddressable(b: u8) -> bool {
    matches!(
        b,
        b'/' | b'<' | b'>' | b'*' | b'%' | b'&' | b':' | b'\\' | b'?' | b'+'
    )
}

/// Checks that a string key value contains none of `/ < > * % & : \ ? +`, which Dataverse cannot
/// address by key even when percent-encoded (PROTOCOL.md §4). The error names the first such
/// character, so that the mapping can reject the row with a clear reason.
pub fn check_addressable(value: &str) -> Result<(), UnaddressableKey> {
    // The characters are ASCII, and no byte of a multi-byte character is: scan bytes.
    match value.bytes().find(|&b| is_unaddressable(b)) {
        None => Ok(()),
        Some(b) => Err(UnaddressableKey {
            value: value.to_owned(),
            ch: char::from(b),
        }),
    }
}

/// A capacity that fits `name=literal,…` for typical values, so that the URL is not regrown.
#[cfg(test)]
fn key_len_estimate<S: AsRef<str>>(key: &[(S, KeyValue)]) -> usize {
    key.iter()
        .map(|(c, v)| {
            c.as_ref().len()
                + 2
                + match v {
                    KeyValue::String(s) => s.len() + 8,
                    KeyValue::Decimal(d) => d.len(),
                    _ => 40,
                }
        })
        .sum()
}

/// Appends `name=literal,…` pairs, percent-encoded, to `out` (no parentheses).
#[cfg(test)]
fn write_url_predicate<S: AsRef<str>>(out: &mut String, key: &[(S, KeyValue)]) {
    for (i, (column, value)) in key.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let column = column.as_ref();
        if column.bytes().all(is_unreserved) {
            out.push_str(column);
        } else {
            out.extend(utf8_percent_encode(column, KEY_ENCODE_SET));
        }
        out.push('=');
        value.write_url_literal(out);
    }
}

/// The URL of a record addressed by its primary key, relative to the Web API root:
/// `accounts(00000000-0000-0000-0000-000000000001)`.
#[cfg(test)]
pub fn primary_key_url(entity_set: &str, id: Uuid) -> String {
    let mut out = String::with_capacity(entity_set.len() + 38);
    out.push_str(entity_set);
    out.push('(');
    KeyValue::Guid(id).write_literal(&mut out);
    out.push(')');
    out
}

/// The URL of a record addressed by an alternate key (one or more columns, in the given order),
/// relative to the Web API root and percent-encoded:
/// `contacts(firstname='Joe',emailaddress1='abc%40example.com')`.
///
/// Column names are the key columns' logical names. The values are not checked for
/// unaddressable characters: call [`check_addressable`] first to reject such rows.
#[cfg(test)]
pub fn alternate_key_url<S: AsRef<str>>(entity_set: &str, key: &[(S, KeyValue)]) -> String {
    let mut out = String::with_capacity(entity_set.len() + 2 + key_len_estimate(key));
    out.push_str(entity_set);
    out.push('(');
    write_url_predicate(&mut out, key);
    out.push(')');
    out
}

/// The `@odata.bind` value that points at a record by primary key:
/// `/accounts(00000000-0000-0000-0000-000000000001)`.
#[cfg(test)]
pub fn primary_key_bind(entity_set: &str, id: Uuid) -> String {
    let mut out = String::with_capacity(entity_set.len() + 39);
    out.push('/');
    out.push_str(&primary_key_url(entity_set, id));
    out
}

/// The `@odata.bind` value that points at a record by alternate key:
/// `/accounts(accountnumber='A-1')`.
#[cfg(test)]
pub fn alternate_key_bind<S: AsRef<str>>(entity_set: &str, key: &[(S, KeyValue)]) -> String {
    let mut out = String::with_capacity(entity_set.len() + 3 + key_len_estimate(key));
    out.push('/');
    out.push_str(entity_set);
    out.push('(');
    write_url_predicate(&mut out, key);
    out.push(')');
    out
}

/// The key as readable text, not percent-encoded: `firstname='Joe',emailaddress1='abc@example.com'`.
/// This is the form `Operation::key` holds and messages quote.
#[cfg(test)]
pub fn key_display<S: AsRef<str>>(key: &[(S, KeyValue)]) -> String {
    let mut out = String::with_capacity(key_len_estimate(key));
    for (i, (column, value)) in key.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(column.as_ref());
        out.push('=');
        value.write_literal(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_is_percent_encoded_for_a_query_string() {
        assert_eq!(
            percent_encode("(name eq 'A&B #1') or (name eq 'Café')"),
            "%28name%20eq%20'A%26B%20%231'%29%20or%20%28name%20eq%20'Caf%C3%A9'%29"
        );
    }
    use proptest::prelude::*;

    fn s(v: &str) -> KeyValue {
        KeyValue::String(v.to_owned())
    }

    #[test]
    fn quote_is_doubled() {
        assert_eq!(s("O'Neil").literal(), "'O''Neil'");
        assert_eq!(s("O'Neil").url_literal(), "'O''Neil'");
        assert_eq!(s("''").literal(), "''''''");
        assert_eq!(s("").literal(), "''");
    }

    #[test]
    fn single_string_key() {
        assert_eq!(
            alternate_key_url("accounts", &[("accountnumber", s("ABC123"))]),
            "accounts(accountnumber='ABC123')"
        );
    }

    #[test]
    fn compound_key_encodes_at_sign() {
        assert_eq!(
            alternate_key_url(
                "contacts",
                &[
                    ("firstname", s("Joe")),
                    ("emailaddress1", s("abc@example.com"))
                ]
            ),
            "contacts(firstname='Joe',emailaddress1='abc%40example.com')"
        );
    }

    #[test]
    fn spaces_and_reserved_characters_are_encoded() {
        assert_eq!(s("a b").url_literal(), "'a%20b'");
        assert_eq!(
            s("#?/%:,()=&+").url_literal(),
            "'%23%3F%2F%25%3A%2C%28%29%3D%26%2B'"
        );
        assert_eq!(s("A-1_x.y~z").url_literal(), "'A-1_x.y~z'");
    }

    #[test]
    fn unicode_is_utf8_percent_encoded() {
        assert_eq!(s("Zoë").url_literal(), "'Zo%C3%AB'");
        assert_eq!(s("東京").url_literal(), "'%E6%9D%B1%E4%BA%AC'");
        assert_eq!(s("Zoë").literal(), "'Zoë'");
    }

    #[test]
    fn numbers_are_unquoted() {
        assert_eq!(
            alternate_key_url(
                "example_records",
                &[
                    ("example_key1", KeyValue::Integer(2)),
                    ("example_key2", KeyValue::Integer(-2))
                ]
            ),
            "example_records(example_key1=2,example_key2=-2)"
        );
        assert_eq!(KeyValue::Decimal("1.50".into()).url_literal(), "1.50");
        assert_eq!(KeyValue::Bool(true).url_literal(), "true");
    }

    #[test]
    fn guid_is_bare() {
        let id = Uuid::parse_str("00000000-0000-0000-0000-000000000001").unwrap();
        assert_eq!(
            primary_key_url("accounts", id),
            "accounts(00000000-0000-0000-0000-000000000001)"
        );
        assert_eq!(
            primary_key_bind("accounts", id),
            "/accounts(00000000-0000-0000-0000-000000000001)"
        );
        let id2 = Uuid::parse_str("00000000-0000-0000-0000-0000000000AB").unwrap();
        assert_eq!(
            alternate_key_url(
                "accounts",
                &[("_primarycontactid_value", KeyValue::Guid(id2))]
            ),
            "accounts(_primarycontactid_value=00000000-0000-0000-0000-0000000000ab)"
        );
    }

    #[test]
    fn dates() {
        let d = jiff::civil::date(2021, 4, 4);
        assert_eq!(KeyValue::Date(d).url_literal(), "2021-04-04");
        let t: jiff::Timestamp = "2021-04-04T20:00:00Z".parse().unwrap();
        assert_eq!(
            KeyValue::DateTimeOffset(t).literal(),
            "2021-04-04T20:00:00Z"
        );
        assert_eq!(
            KeyValue::DateTimeOffset(t).url_literal(),
            "2021-04-04T20%3A00%3A00Z"
        );
    }

    #[test]
    fn bind_value_for_alternate_key() {
        assert_eq!(
            alternate_key_bind("accounts", &[("accountnumber", s("A-1"))]),
            "/accounts(accountnumber='A-1')"
        );
    }

    #[test]
    fn display_form_is_unencoded() {
        let key = vec![
            ("firstname".to_string(), s("Joe")),
            ("emailaddress1".to_string(), s("abc@example.com")),
        ];
        assert_eq!(
            key_display(&key),
            "firstname='Joe',emailaddress1='abc@example.com'"
        );
        assert_eq!(s("O'Neil").to_string(), "'O''Neil'");
    }

    #[test]
    fn unaddressable_characters_are_named() {
        assert!(check_addressable("A-1 Ltd. (UK) #3 'x' @y").is_ok());
        for ch in UNADDRESSABLE_KEY_CHARS {
            let value = format!("ab{ch}cd");
            let err = check_addressable(&value).unwrap_err();
            assert_eq!(err.ch, *ch);
            assert!(err.to_string().contains(&format!("'{ch}'")), "{err}");
        }
        let err = s("a/b:c").check_addressable().unwrap_err();
        assert_eq!(err.ch, '/');
        assert_eq!(
            err.to_string(),
            "key value 'a/b:c' contains '/', which Dataverse cannot use in a key URL even when \
             percent-encoded (not allowed: / < > * % & : \\ ? +)"
        );
        assert!(KeyValue::Integer(-1).check_addressable().is_ok());
    }

    #[test]
    fn unaddressable_byte_check_matches_the_list() {
        for b in 0..=255u8 {
            let listed = b.is_ascii() && UNADDRESSABLE_KEY_CHARS.contains(&char::from(b));
            assert_eq!(is_unaddressable(b), listed, "byte {b:#04x}");
        }
        assert!(check_addressable("Zoë東京'x'").is_ok());
    }

    proptest! {
        #[test]
        fn a_classified_key_writes_and_checks_like_the_plain_functions(value in "[a'/ é:%+A-Z0-9~-]{0,12}") {
            let key = StringKey::new(&value);
            let (mut fast, mut slow) = (String::new(), String::new());
            key.write_literal(&mut fast);
            write_string_literal(&value, &mut slow);
            prop_assert_eq!(&fast, &slow);
            let (mut fast, mut slow) = (String::new(), String::new());
            key.write_url_literal(&mut fast);
            write_string_url_literal(&value, &mut slow);
            prop_assert_eq!(&fast, &slow);
            prop_assert_eq!(key.check_addressable(), check_addressable(&value));
        }
    }

    #[test]
    fn the_unreserved_table_is_the_encode_set_complement() {
        for b in 0..=255u8 {
            let kept = percent_encoding::percent_encode(&[b], KEY_ENCODE_SET).to_string()
                == (b as char).to_string();
            assert_eq!(is_unreserved(b), b.is_ascii() && kept, "byte {b:#04x}");
        }
    }

    #[test]
    fn key_names_are_encoded_like_values() {
        assert_eq!(encode_key_name("accountnumber"), "accountnumber");
        assert_eq!(encode_key_name("a b:c"), "a%20b%3Ac");
        assert_eq!(alternate_key_url("s", &[("a b", s("x"))]), "s(a%20b='x')");
    }

    /// Undoes `url_literal` for a string: percent-decode, strip the quotes, un-double `''`.
    fn decode_string_literal(encoded: &str) -> String {
        let decoded = percent_encoding::percent_decode_str(encoded)
            .decode_utf8()
            .unwrap()
            .into_owned();
        assert!(decoded.len() >= 2 && decoded.starts_with('\'') && decoded.ends_with('\''));
        let inner = &decoded[1..decoded.len() - 1];
        // Every quote inside must come in pairs.
        assert!(!inner.replace("''", "").contains('\''), "{encoded}");
        inner.replace("''", "'")
    }

    proptest! {
        #[test]
        fn string_literal_round_trips(value in any::<String>()) {
            let encoded = s(&value).url_literal();
            // Only unreserved characters, quotes and %XX escapes survive encoding.
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~'%".contains(&b)));
            prop_assert_eq!(decode_string_literal(&encoded), value);
        }

        #[test]
        fn quote_heavy_values_round_trip(value in "[a' :/%]{0,12}") {
            prop_assert_eq!(decode_string_literal(&s(&value).url_literal()), value);
        }

        #[test]
        fn string_literal_doubles_every_quote(value in "[a'é]{0,12}") {
            let mut fast = String::new();
            write_string_literal(&value, &mut fast);
            let slow = format!("'{}'", value.split('\'').collect::<Vec<_>>().join("''"));
            prop_assert_eq!(fast, slow);
        }
    }
}
