//! OData key literals and URL percent-encoding for `set(key='value')` segments (PROTOCOL.md §4).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left as they are in a key literal: unreserved, and the sub-delimiters OData keys use
/// (`'` quotes, `(`, `)`, `,`, `=`). Everything else, `:` included (PROTOCOL.md §4), is encoded.
const KEY_LITERAL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'\'')
    .remove(b'!')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b',')
    .remove(b';')
    .remove(b'$')
    .remove(b'=')
    .remove(b'@');

/// Percent-encodes a key literal (already quoted, with `'` doubled) for use in a URL.
pub fn encode_key_literal(literal: &str) -> String {
    utf8_percent_encode(literal, KEY_LITERAL).to_string()
}

/// Characters that Dataverse cannot address by key even when percent-encoded (PROTOCOL.md §4).
pub const UNADDRESSABLE: &[char] = &['/', '<', '>', '*', '%', '&', ':', '\\', '?', '+'];

/// Refuses a string key value that Dataverse cannot address by key, naming the character.
pub fn check_addressable(value: &str) -> Result<(), String> {
    match value.chars().find(|c| UNADDRESSABLE.contains(c)) {
        Some(c) => Err(format!(
            "key value '{value}' contains '{c}', which Dataverse cannot address in a key URL even when encoded (refused: / < > * % & : \\ ? +)"
        )),
        None => Ok(()),
    }
}
