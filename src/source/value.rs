//! JSON records parsed into `serde_json::Value` with each object's member names checked unique.
//!
//! `serde_json` keeps the last of two members with the same name without a word; a record with
//! `{"a":1,"a":2}` is ambiguous (RFC 8259: names SHOULD be unique), so it is refused instead, with
//! the name and the position just after the second occurrence's value.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// The member name under which `serde_json` (feature `arbitrary_precision`) passes a number's
/// text to `visit_map`: the value `serde_json::Number`'s own `Deserialize` looks for (its
/// `TOKEN`, serde_json/src/number.rs), the one stable way to receive the digits as written.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// The start of the message of a duplicate member (a `serde_json` data error).
const DUPLICATE: &str = "member '";

/// Parses one JSON value, refusing an object (at any depth) with a member name twice.
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Checked.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The duplicate member's message when `e` is that error (and not a syntax error).
pub fn duplicate_member(e: &serde_json::Error) -> Option<String> {
    if e.classify() != serde_json::error::Category::Data {
        return None;
    }
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg);
    msg.starts_with(DUPLICATE).then(|| msg.to_string())
}

/// A value whose objects have unique member names.
struct Checked;

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Checked)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.is_empty() && key == NUMBER_TOKEN {
                // A number, as `serde_json`'s `arbitrary_precision` hands it over: its text as
                // written, every digit kept (no `f64` on the way to a Decimal, Money or BigInt
                // column, DESIGN.md "Values arrive as written").
                let text: String = access.next_value()?;
                let number: serde_json::Number = text.parse().map_err(de::Error::custom)?;
                return Ok(Value::Number(number));
            }
            // The value first: a syntax error in it is told as such.
            let value = access.next_value_seed(Checked)?;
            match map.entry(key) {
                serde_json::map::Entry::Occupied(e) => {
                    return Err(de::Error::custom(format!(
                        "{DUPLICATE}{}' appears twice in the same object",
                        e.key()
                    )));
                }
                serde_json::map::Entry::Vacant(e) => {
                    e.insert(value);
                }
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unique_members_parse_as_serde_json_does() {
        let text = br#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": {"d": "\u00e9"}}"#;
        assert_eq!(
            from_slice(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
        // Member order is kept.
        let v = from_slice(br#"{"z": 1, "a": 2}"#).unwrap();
        assert_eq!(
            v.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["z", "a"]
        );
    }

    #[test]
    fn a_duplicate_member_is_an_error_naming_it_at_any_depth() {
        let e = from_slice(br#"{"a":1,"a":2}"#).unwrap_err();
        assert_eq!(
            duplicate_member(&e).as_deref(),
            Some("member 'a' appears twice in the same object")
        );
        assert_eq!((e.line(), e.column()), (1, 13));
        let e = from_slice(br#"{"x": [{"b": 1, "c": 2, "b": 3}]}"#).unwrap_err();
        assert_eq!(
            duplicate_member(&e).as_deref(),
            Some("member 'b' appears twice in the same object")
        );
        // The same name in two different objects is fine.
        assert_eq!(
            from_slice(br#"{"a": {"a": 1}, "b": {"a": 2}}"#).unwrap(),
            json!({"a": {"a": 1}, "b": {"a": 2}})
        );
        // A syntax error is not taken for a duplicate.
        let e = from_slice(br#"{"a":1,"a"}"#).unwrap_err();
        assert!(duplicate_member(&e).is_none() && e.is_syntax());
        let e = from_slice(br#"{"a" 1}"#).unwrap_err();
        assert!(duplicate_member(&e).is_none());
    }
}
