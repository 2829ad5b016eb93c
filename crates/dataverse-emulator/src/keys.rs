//! Key literals in URLs: `accounts(<guid>)`, `accounts(accountnumber='A''1')`, `x(k1=2,k2=3)`.
//!
//! Grammar from the OData ABNF (odata-abnf-construction-rules.txt, PROTOCOL.md §4):
//! `compoundKey = "(" keyValuePair *( "," keyValuePair ) ")"`, string literals in single quotes
//! with `''` for an embedded quote, GUIDs and numbers bare. The input is already percent-decoded.
//! Never panics: every malformed input is a [`KeyError`].

use uuid::Uuid;

/// A literal value in a key.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyLiteral {
    /// Bare GUID.
    Guid(Uuid),
    /// Integer.
    Int(i64),
    /// Decimal number (kept as text).
    Decimal(String),
    /// Quoted string, unescaped.
    String(String),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl KeyLiteral {
    /// The literal as the JSON value a column would hold.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            KeyLiteral::Guid(g) => serde_json::Value::String(g.to_string()),
            KeyLiteral::Int(i) => serde_json::Value::from(*i),
            KeyLiteral::Decimal(d) => d
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            KeyLiteral::String(s) => serde_json::Value::String(s.clone()),
            KeyLiteral::Bool(b) => serde_json::Value::Bool(*b),
            KeyLiteral::Null => serde_json::Value::Null,
        }
    }
}

/// A parsed key: the primary key alone, or named key properties.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySpec {
    /// `(literal)`: the primary key.
    Single(KeyLiteral),
    /// `(name=literal,…)`.
    Named(Vec<(String, KeyLiteral)>),
}

/// A malformed key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// Splits a path segment `name(keys)` into the name and the text between the parentheses.
/// `name` alone gives `None`. The closing parenthesis must end the segment (quotes respected).
pub fn split_segment(segment: &str) -> Result<(&str, Option<&str>), KeyError> {
    let Some(open) = segment.find('(') else {
        return Ok((segment, None));
    };
    let name = &segment[..open];
    let rest = &segment[open + 1..];
    let mut in_quote = false;
    let mut close = None;
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => in_quote = !in_quote,
            b')' if !in_quote => {
                close = Some(i);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let Some(close) = close else {
        return Err(KeyError(format!(
            "Bad Request - Error in query syntax: missing ')' in '{segment}'."
        )));
    };
    if close + 1 != rest.len() {
        return Err(KeyError(format!(
            "Bad Request - Error in query syntax: unexpected text after ')' in '{segment}'."
        )));
    }
    Ok((name, Some(&rest[..close])))
}

/// Parses the text between the parentheses of a key.
pub fn parse_key(text: &str) -> Result<KeySpec, KeyError> {
    let mut p = Parser { s: text, pos: 0 };
    p.skip_ws();
    if p.at_end() {
        return Err(KeyError(
            "Bad Request - Error in query syntax: empty key.".into(),
        ));
    }
    // Named form if an identifier is followed by '='.
    let save = p.pos;
    let ident = p.ident();
    p.skip_ws();
    if !ident.is_empty() && p.peek() == Some('=') {
        p.pos = save;
        let mut pairs = Vec::new();
        loop {
            p.skip_ws();
            let name = p.ident().to_string();
            if name.is_empty() {
                return Err(KeyError(format!(
                    "Bad Request - Error in query syntax: expected a key property name in '{text}'."
                )));
            }
            p.skip_ws();
            if p.peek() != Some('=') {
                return Err(KeyError(format!(
                    "Bad Request - Error in query syntax: expected '=' after '{name}'."
                )));
            }
            p.pos += 1;
            p.skip_ws();
            let value = p.literal()?;
            if pairs.iter().any(|(n, _)| n == &name) {
                return Err(KeyError(format!(
                    "Bad Request - Error in query syntax: duplicate key property '{name}'."
                )));
            }
            pairs.push((name, value));
            p.skip_ws();
            match p.peek() {
                None => break,
                Some(',') => p.pos += 1,
                Some(c) => {
                    return Err(KeyError(format!(
                        "Bad Request - Error in query syntax: unexpected '{c}' in key '{text}'."
                    )));
                }
            }
        }
        return Ok(KeySpec::Named(pairs));
    }
    p.pos = save;
    let value = p.literal()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(KeyError(format!(
            "Bad Request - Error in query syntax: unexpected text in key '{text}'."
        )));
    }
    Ok(KeySpec::Single(value))
}

/// Parses one literal (also used by `$filter`).
pub fn parse_literal(text: &str) -> Result<KeyLiteral, KeyError> {
    let mut p = Parser { s: text, pos: 0 };
    p.skip_ws();
    let v = p.literal()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(KeyError(format!(
            "Bad Request - Error in query syntax: unexpected text after literal '{text}'."
        )));
    }
    Ok(v)
}

/// Formats a string as an OData string literal (`'O''Neil'`).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.pos..).and_then(|r| r.chars().next())
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c == ' ' || c == '\t' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn ident(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.s[start..self.pos]
    }

    fn literal(&mut self) -> Result<KeyLiteral, KeyError> {
        match self.peek() {
            None => Err(KeyError(
                "Bad Request - Error in query syntax: missing key value.".into(),
            )),
            Some('\'') => {
                self.pos += 1;
                let mut out = String::new();
                loop {
                    let Some(c) = self.peek() else {
                        return Err(KeyError(
                            "Bad Request - Error in query syntax: unterminated string literal."
                                .into(),
                        ));
                    };
                    self.pos += c.len_utf8();
                    if c == '\'' {
                        if self.peek() == Some('\'') {
                            self.pos += 1;
                            out.push('\'');
                        } else {
                            return Ok(KeyLiteral::String(out));
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
            Some(_) => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if c == ',' || c == ')' || c == ' ' {
                        break;
                    }
                    self.pos += c.len_utf8();
                }
                let token = &self.s[start..self.pos];
                classify(token)
            }
        }
    }
}

fn is_guid(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn classify(token: &str) -> Result<KeyLiteral, KeyError> {
    if is_guid(token) {
        return Uuid::parse_str(token).map(KeyLiteral::Guid).map_err(|_| {
            KeyError(format!(
                "Bad Request - Error in query syntax: invalid GUID '{token}'."
            ))
        });
    }
    match token {
        "true" => return Ok(KeyLiteral::Bool(true)),
        "false" => return Ok(KeyLiteral::Bool(false)),
        "null" => return Ok(KeyLiteral::Null),
        _ => {}
    }
    if let Ok(i) = token.parse::<i64>() {
        return Ok(KeyLiteral::Int(i));
    }
    let numeric = token.trim_end_matches(['m', 'M', 'd', 'D']);
    if !numeric.is_empty()
        && numeric
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        && numeric.parse::<f64>().is_ok_and(f64::is_finite)
    {
        return Ok(KeyLiteral::Decimal(numeric.to_string()));
    }
    Err(KeyError(format!(
        "Bad Request - Error in query syntax: '{token}' is not a valid literal (GUID, number, or quoted string)."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_documented_forms() {
        let g = "00000000-0000-0000-0000-000000000001";
        assert_eq!(
            parse_key(g).unwrap(),
            KeySpec::Single(KeyLiteral::Guid(Uuid::parse_str(g).unwrap()))
        );
        assert_eq!(
            parse_key("accountnumber='ABC123'").unwrap(),
            KeySpec::Named(vec![(
                "accountnumber".into(),
                KeyLiteral::String("ABC123".into())
            )])
        );
        assert_eq!(
            parse_key("firstname='Joe',emailaddress1='abc@example.com'").unwrap(),
            KeySpec::Named(vec![
                ("firstname".into(), KeyLiteral::String("Joe".into())),
                (
                    "emailaddress1".into(),
                    KeyLiteral::String("abc@example.com".into())
                )
            ])
        );
        assert_eq!(
            parse_key("example_key1=2,example_key2=2").unwrap(),
            KeySpec::Named(vec![
                ("example_key1".into(), KeyLiteral::Int(2)),
                ("example_key2".into(), KeyLiteral::Int(2))
            ])
        );
        assert_eq!(
            parse_key("name='O''Neil'").unwrap(),
            KeySpec::Named(vec![("name".into(), KeyLiteral::String("O'Neil".into()))])
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "'unterminated",
            "abc",
            "a=",
            "a='x' b",
            "a=1,a=2",
            "not-a-guid-0000",
        ] {
            assert!(parse_key(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn splits_segments() {
        assert_eq!(split_segment("accounts").unwrap(), ("accounts", None));
        assert_eq!(
            split_segment("accounts(name='a)b')").unwrap(),
            ("accounts", Some("name='a)b'"))
        );
        assert!(split_segment("accounts(1)x").is_err());
        assert!(split_segment("accounts(1").is_err());
    }

    proptest! {
        #[test]
        fn key_parser_never_panics(s in ".{0,64}") {
            let _ = parse_key(&s);
            let _ = split_segment(&s);
            let _ = parse_literal(&s);
        }

        #[test]
        fn key_parser_never_panics_on_key_like_input(s in "[a-z_=',()0-9 -]{0,40}") {
            let _ = parse_key(&s);
            let _ = split_segment(&s);
        }

        #[test]
        fn quoted_strings_round_trip(s in "\\PC{0,30}") {
            let text = format!("k={}", quote(&s));
            prop_assert_eq!(parse_key(&text).unwrap(), KeySpec::Named(vec![("k".into(), KeyLiteral::String(s))]));
        }
    }
}
