//! Value conversions: one source text in, one JSON value out (or a reason it is not acceptable).
//! Pure functions; every type of the mapping language has its converter here.

use std::collections::HashMap;
use std::fmt::Write as _;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

use crate::odata::KeyValue;

/// The earliest date Dataverse stores (PROTOCOL.md §6: min date 1753-01-01).
const MIN_DATE: Date = jiff::civil::date(1753, 1, 1);

/// dvload's UUID v5 namespace for ids derived from source values (`derive_uuid = true`).
pub const DERIVE_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f1c_2a3e_8d4b_5c7a_9e0f_1b2c_3d4e_5f60);

/// Words accepted as `true` by a `bool` field (case-insensitive).
pub const TRUE_WORDS: &[&str] = &["true", "yes", "y", "1"];
/// Words accepted as `false` by a `bool` field (case-insensitive).
pub const FALSE_WORDS: &[&str] = &["false", "no", "n", "0"];

/// A column type of the mapping language, with its options, ready to convert values. Two equal
/// converters convert every text the same way.
#[derive(Debug, Clone, PartialEq)]
pub enum Converter {
    /// Text, optionally limited in length (characters).
    Text {
        /// Longest accepted value, in characters.
        max_length: Option<usize>,
    },
    /// Whole number, 32 bits (`int`) or 64 bits (`bigint`).
    Integer {
        /// True for `bigint`.
        wide: bool,
        /// Decimal separator, which decides the thousands separators.
        decimal: char,
    },
    /// Decimal, money or float number.
    Number {
        /// Decimal separator (`.` or `,`).
        decimal: char,
        /// True for `money`: a currency symbol and accounting parentheses are accepted (see
        /// [`write_money`]).
        money: bool,
        /// True for `float`: an exponent is accepted.
        float: bool,
    },
    /// Yes/No: the usual words, and the column's own labels when its metadata gave them.
    Bool(BoolLabels),
    /// Date and time, converted to UTC.
    DateTime {
        /// strftime formats tried in turn; empty = ISO 8601.
        formats: Vec<String>,
        /// The zone of values that carry no offset.
        tz: TimeZone,
    },
    /// Date only (never shifted by a time zone).
    DateOnly {
        /// strftime formats tried in turn; empty = ISO 8601.
        formats: Vec<String>,
    },
    /// Unique identifier.
    Guid {
        /// When set, a value that is not a GUID becomes a UUID v5 of this prefix and the value.
        derive: Option<String>,
    },
    /// Choice: a label (via `map`) or an integer option value.
    Choice(ChoiceMap),
    /// Choices (multi-select): labels separated by `separator`, sent as `"1,2"`.
    Choices {
        /// Labels to option values.
        map: ChoiceMap,
        /// Separator between labels in the source.
        separator: String,
    },
}

/// A Boolean column's own option labels (`"Allow"` / `"Do Not Allow"`), accepted beside the usual
/// yes/no words, compared ignoring case; empty unless filled from the column's metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoolLabels {
    /// Labels of the true option, trimmed and lower-cased.
    pub yes: Vec<String>,
    /// Labels of the false option, trimmed and lower-cased.
    pub no: Vec<String>,
}

/// Choice labels to option values, matched case-insensitively.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChoiceMap {
    by_label: HashMap<String, i64>,
    labels: Vec<String>,
    /// The labels trimmed and lower-cased as `by_label`'s keys are (compared with ASCII values
    /// ignoring ASCII case, which is the same test; `labels` keeps them as written for messages).
    lowered: Vec<String>,
    values: Vec<i64>,
    /// How many of the first labels an error lists (the rest are other languages' labels of
    /// the same options, accepted but not listed); `None` lists them all.
    shown: Option<usize>,
}

impl ChoiceMap {
    /// A map of a column's options: `labels` (in the user's language) are listed in errors,
    /// `aliases` (the same options' labels in other languages) are accepted too.
    pub fn of_options(
        labels: impl IntoIterator<Item = (String, i64)>,
        aliases: impl IntoIterator<Item = (String, i64)>,
    ) -> ChoiceMap {
        let labels: Vec<(String, i64)> = labels.into_iter().collect();
        let shown = labels.len();
        let mut map = ChoiceMap::new(labels.into_iter().chain(aliases));
        map.shown = Some(shown);
        map
    }

    /// The (label, value) pairs, in the order written.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, i64)> {
        self.labels
            .iter()
            .map(String::as_str)
            .zip(self.values.iter().copied())
    }

    /// Builds a map from (label, value) pairs in the order written.
    pub fn new(pairs: impl IntoIterator<Item = (String, i64)>) -> ChoiceMap {
        let mut map = ChoiceMap::default();
        for (label, value) in pairs {
            // The first of two labels that fold alike wins, as in the scan of `resolve`.
            map.by_label
                .entry(label.trim().to_lowercase())
                .or_insert(value);
            map.lowered.push(label.trim().to_lowercase());
            map.labels.push(label);
            map.values.push(value);
        }
        map
    }

    /// True when no labels are defined (only integer values are accepted then).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The option value of a label or of an integer written as text.
    pub fn resolve(&self, s: &str) -> Result<i64, String> {
        // Option sets are small: a scan without allocation beats lower-casing and hashing.
        if s.is_ascii() && self.labels.len() <= 32 {
            if let Some(i) = self.lowered.iter().position(|l| {
                l.len() == s.len()
                    && l.bytes()
                        .zip(s.bytes())
                        .all(|(l, c)| l == c.to_ascii_lowercase())
            }) {
                return Ok(self.values[i]);
            }
        } else if let Some(v) = self.by_label.get(&s.to_lowercase()) {
            return Ok(*v);
        }
        if let Ok(n) = s.parse::<i64>() {
            if self.is_empty() || self.by_label.values().any(|v| *v == n) {
                return Ok(n);
            }
        }
        if self.is_empty() {
            Err(format!(
                "'{s}' is not an option value (a whole number); add a `map` of labels to values to accept labels"
            ))
        } else {
            let shown = &self.labels[..self.shown.unwrap_or(usize::MAX).min(self.labels.len())];
            Err(format!(
                "unknown label '{s}'; allowed: {}",
                shown.join(", ")
            ))
        }
    }
}

impl Converter {
    /// Writes the JSON form of `s` (already trimmed, not empty) to `out`.
    pub fn write_json(&self, s: &str, out: &mut String) -> Result<(), String> {
        match self {
            Converter::Text { max_length } => {
                check_length(s, *max_length)?;
                write_json_string(s, out);
            }
            Converter::Integer { wide, decimal } => {
                let n = parse_integer_in_range(s, *wide, *decimal)?;
                out.push_str(itoa::Buffer::new().format(n));
            }
            Converter::Number {
                decimal,
                money,
                float,
            } => {
                if *float {
                    let canonical = normalize_number(s, *decimal, true)
                        .map_err(|e| number_error(s, *decimal, e))?;
                    let f: f64 = canonical
                        .parse()
                        .map_err(|_| format!("'{s}' is not a number"))?;
                    if !f.is_finite() {
                        return Err(format!("'{s}' is not a finite number"));
                    }
                    let _ = write!(out, "{f}");
                } else if *money {
                    write_money(s, *decimal, out).map_err(|e| money_error(s, *decimal, e))?;
                } else {
                    write_number(s, *decimal, false, out)
                        .map_err(|e| number_error(s, *decimal, e))?;
                }
            }
            Converter::Bool(labels) => out.push_str(if parse_bool_labelled(s, labels)? {
                "true"
            } else {
                "false"
            }),
            Converter::DateTime { formats, tz } => {
                let ts = parse_datetime(s, formats, tz)?;
                let _ = write!(out, "\"{}\"", ts.strftime("%Y-%m-%dT%H:%M:%SZ"));
            }
            Converter::DateOnly { formats } => {
                let date = parse_date(s, formats)?;
                out.push('"');
                write_date(date, out);
                out.push('"');
            }
            Converter::Guid { derive } => {
                let id = parse_guid(s, derive.as_deref())?;
                let _ = write!(out, "\"{id}\"");
            }
            Converter::Choice(map) => {
                let v = map.resolve(s)?;
                out.push_str(itoa::Buffer::new().format(v));
            }
            Converter::Choices { map, separator } => {
                let values = parse_choices(s, map, separator)?;
                out.push('"');
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{v}");
                }
                out.push('"');
            }
        }
        Ok(())
    }

    /// Checks text as [`Converter::write_json`] and [`Converter::key_value`] check a `text`
    /// value (its length); values of other types are not checked here.
    pub fn check_text(&self, s: &str) -> Result<(), String> {
        match self {
            Converter::Text { max_length } => check_length(s, *max_length),
            _ => Ok(()),
        }
    }

    /// The value as a typed key value (rendered by `odata::key` as `'text'` with quotes doubled,
    /// or bare numbers, GUIDs and dates).
    /// True for a choice or a Boolean whose labels the mapping does not give (no `map`, no
    /// labels): a run takes them from the column's metadata (`environment::complete`).
    pub fn labels_from_metadata(&self) -> bool {
        match self {
            Converter::Choice(map) | Converter::Choices { map, .. } => map.is_empty(),
            Converter::Bool(labels) => labels.yes.is_empty() && labels.no.is_empty(),
            _ => false,
        }
    }

    pub fn key_value(&self, s: &str) -> Result<KeyValue, String> {
        Ok(match self {
            Converter::Text { max_length } => {
                check_length(s, *max_length)?;
                KeyValue::String(s.to_string())
            }
            Converter::Integer { wide, decimal } => {
                KeyValue::Integer(parse_integer_in_range(s, *wide, *decimal)?)
            }
            Converter::Number { .. } => {
                let mut json = String::new();
                self.write_json(s, &mut json)?;
                KeyValue::Decimal(json)
            }
            Converter::Bool(labels) => KeyValue::Bool(parse_bool_labelled(s, labels)?),
            Converter::DateTime { formats, tz } => {
                KeyValue::DateTimeOffset(parse_datetime(s, formats, tz)?)
            }
            Converter::DateOnly { formats } => KeyValue::Date(parse_date(s, formats)?),
            Converter::Guid { derive } => KeyValue::Guid(parse_guid(s, derive.as_deref())?),
            Converter::Choice(map) => KeyValue::Integer(map.resolve(s)?),
            Converter::Choices { .. } => {
                return Err("a multi-select choices column cannot be part of a key".into());
            }
        })
    }
}

/// Refuses text longer than `max` characters.
fn check_length(s: &str, max: Option<usize>) -> Result<(), String> {
    if let Some(max) = max {
        // A character is at least one byte: short text needs no counting.
        if s.len() > max {
            let n = s.chars().count();
            if n > max {
                return Err(format!("is {n} characters long; at most {max} are allowed"));
            }
        }
    }
    Ok(())
}

/// Parses a whole number and checks that it fits 32 bits unless `wide`.
fn parse_integer_in_range(s: &str, wide: bool, decimal: char) -> Result<i64, String> {
    let n = parse_integer(s, decimal)?;
    if !wide && i32::try_from(n).is_err() {
        return Err(format!(
            "'{s}' is out of range for a whole number ({} to {}); use type = \"bigint\"",
            i32::MIN,
            i32::MAX
        ));
    }
    Ok(n)
}

/// `s.trim()`, without decoding characters when both ends are printable ASCII (which
/// whitespace never is): the common case, checked on every value of every row.
#[inline]
pub fn trim(s: &str) -> &str {
    let plain = |b: u8| b > b' ' && b < 0x80;
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(&first), Some(&last)) if plain(first) && plain(last) => s,
        _ => s.trim(),
    }
}

/// True when `s` holds a byte that JSON escapes (`"`, `\\`, control characters). Eight bytes
/// at a time ("has less than" / "has zero byte" tricks): this runs on every text value.
fn needs_escape(s: &[u8]) -> bool {
    let word = |i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let n = s.len();
    if n < 8 {
        // Padded with spaces, which need no escaping.
        let mut last = [b' '; 8];
        for (d, &b) in last.iter_mut().zip(s) {
            *d = b;
        }
        return word_needs_escape(u64::from_le_bytes(last));
    }
    let mut i = 0;
    while i + 8 < n {
        if word_needs_escape(word(i)) {
            return true;
        }
        i += 8;
    }
    // The last eight bytes (some perhaps checked already, harmlessly).
    word_needs_escape(word(n - 8))
}

/// True when one of the eight bytes of `x` is a control character, `"` or `\\`.
#[inline]
fn word_needs_escape(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let control = x.wrapping_sub(ONES * 0x20) & !x;
    let q = x ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = x ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (control | quote | backslash) & HIGHS != 0
}

/// Appends `s` as a JSON string literal.
#[inline]
pub fn write_json_string(s: &str, out: &mut String) {
    if !needs_escape(s.as_bytes()) {
        // Most values need no escaping: one reservation, one copy.
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Parses a yes/no word or one of the column's own labels.
pub fn parse_bool_labelled(s: &str, labels: &BoolLabels) -> Result<bool, String> {
    if labels.yes.is_empty() && labels.no.is_empty() {
        return parse_bool(s);
    }
    let folded = s.trim().to_lowercase();
    if labels.yes.contains(&folded) {
        return Ok(true);
    }
    if labels.no.contains(&folded) {
        return Ok(false);
    }
    parse_bool(s).map_err(|e| {
        format!(
            "{e}; or the column's labels: {} / {}",
            labels.yes.join(", "),
            labels.no.join(", ")
        )
    })
}

/// Parses a yes/no word.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    if TRUE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        Ok(true)
    } else if FALSE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        Ok(false)
    } else {
        Err(format!(
            "'{s}' is not a yes/no value; allowed: {} / {}",
            TRUE_WORDS.join(", "),
            FALSE_WORDS.join(", ")
        ))
    }
}

/// Why a number was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum NumberError {
    /// Not a number at all.
    NotNumber,
    /// A thousands separator in the wrong place.
    Grouping,
    /// More than one decimal separator.
    TwoDecimals,
}

fn number_error(s: &str, decimal: char, e: NumberError) -> String {
    let other = if decimal == '.' { ',' } else { '.' };
    match e {
        NumberError::NotNumber => format!("'{s}' is not a number"),
        NumberError::Grouping | NumberError::TwoDecimals => format!(
            "'{s}' is not a number with '{decimal}' as the decimal separator and '{other}' between thousands \
             (set decimal = \"{other}\" on this field for numbers written like {})",
            if decimal == '.' { "1.234,5" } else { "1,234.5" }
        ),
    }
}

fn is_group_separator(c: char, decimal: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\'')
        || (decimal == '.' && c == ',')
        || (decimal == ',' && c == '.')
}

/// A JSON number's text (kept as written: serde_json's `arbitrary_precision`) in plain decimal
/// notation, exactly: `-1.5e3` → `-1500`, `25E-3` → `0.025`; text without an exponent, or with
/// one too large to expand (beyond ±400, far outside every column's range), is returned as it is.
/// No digit passes through a float.
pub fn plain_number(text: &str) -> String {
    let Some(e_at) = text.find(['e', 'E']) else {
        return text.to_string();
    };
    let (mantissa, exponent) = (&text[..e_at], &text[e_at + 1..]);
    let Ok(exponent) = exponent.parse::<i32>() else {
        return text.to_string();
    };
    if exponent.abs() > 400 {
        return text.to_string();
    }
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = format!("{int}{frac}");
    // The decimal point sits after `point` digits of `digits`.
    let point = int.len() as i32 + exponent;
    let mut out = String::from(sign);
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else if point as usize >= digits.len() {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    // Leading zeros of the whole part, and trailing zeros of a fraction, say nothing.
    let body = &out[sign.len()..];
    let body = match body.split_once('.') {
        Some((i, f)) => {
            let f = f.trim_end_matches('0');
            let i = i.trim_start_matches('0');
            let i = if i.is_empty() { "0" } else { i };
            if f.is_empty() {
                i.to_string()
            } else {
                format!("{i}.{f}")
            }
        }
        None => {
            let i = body.trim_start_matches('0');
            if i.is_empty() {
                "0".to_string()
            } else {
                i.to_string()
            }
        }
    };
    if body == "0" {
        body
    } else {
        format!("{sign}{body}")
    }
}

/// Normalises a number written with `decimal` as decimal separator and optional thousands
/// separators (groups of three) into JSON number text: `"1.234,50"` with `,` → `"1234.50"`.
pub fn normalize_number(
    s: &str,
    decimal: char,
    allow_exponent: bool,
) -> Result<String, NumberError> {
    let mut out = String::with_capacity(s.len());
    write_number(s, decimal, allow_exponent, &mut out)?;
    Ok(out)
}

/// Appends the JSON number text of `s` to `out` (see [`normalize_number`]); on error `out` is
/// left as it was. Writes straight into `out`: this runs for every number of every row.
pub fn write_number(
    s: &str,
    decimal: char,
    allow_exponent: bool,
    out: &mut String,
) -> Result<(), NumberError> {
    let mark = out.len();
    let result = write_number_inner(s, decimal, allow_exponent, out);
    if result.is_err() {
        out.truncate(mark);
    } else {
        drop_negative_zero(out, mark);
    }
    result
}

/// Removes the minus of a negative zero (`-0`, `-0.00`) written at `mark`.
#[inline]
fn drop_negative_zero(out: &mut String, mark: usize) {
    if out[mark..].starts_with('-') && out[mark + 1..].bytes().all(|b| b == b'0' || b == b'.') {
        out.remove(mark);
    }
}

fn write_number_inner(
    s: &str,
    decimal: char,
    allow_exponent: bool,
    out: &mut String,
) -> Result<(), NumberError> {
    let body = if let Some(rest) = s.strip_prefix('-') {
        out.push('-');
        rest
    } else {
        s.strip_prefix('+').unwrap_or(s)
    };
    // Characters are decoded only when not ASCII: numbers rarely hold anything else.
    let bytes = body.as_bytes();
    let mut at = 0usize;
    let mut next = || -> Option<char> {
        let b = *bytes.get(at)?;
        if b < 0x80 {
            at += 1;
            Some(char::from(b))
        } else {
            let c = body[at..].chars().next()?;
            at += c.len_utf8();
            Some(c)
        }
    };
    let mut int_digits = 0usize;
    let mut wrote_nonzero = false;
    let mut group_sep: Option<char> = None;
    let mut group_len: Option<usize> = None; // digits since the last separator, once one was seen
    let mut first_group = 0usize;
    let mut frac_digits = 0usize;
    let mut exponent = false;
    while let Some(c) = next() {
        if c.is_ascii_digit() {
            int_digits += 1;
            if c != '0' || wrote_nonzero {
                out.push(c);
                wrote_nonzero = true;
            }
            match group_len.as_mut() {
                Some(n) => *n += 1,
                None => first_group += 1,
            }
        } else if c == decimal {
            if !wrote_nonzero {
                out.push('0');
                wrote_nonzero = true;
            }
            while let Some(c) = next() {
                if c.is_ascii_digit() {
                    if frac_digits == 0 {
                        out.push('.');
                    }
                    out.push(c);
                    frac_digits += 1;
                } else if allow_exponent && (c == 'e' || c == 'E') {
                    exponent = true;
                    break;
                } else if c == decimal {
                    return Err(NumberError::TwoDecimals);
                } else if is_group_separator(c, decimal) {
                    return Err(NumberError::Grouping);
                } else {
                    return Err(NumberError::NotNumber);
                }
            }
            break;
        } else if is_group_separator(c, decimal) {
            if int_digits == 0 || group_sep.is_some_and(|g| g != c) {
                return Err(NumberError::Grouping);
            }
            if let Some(n) = group_len {
                if n != 3 {
                    return Err(NumberError::Grouping);
                }
            } else if first_group > 3 {
                return Err(NumberError::Grouping);
            }
            group_sep = Some(c);
            group_len = Some(0);
        } else if allow_exponent && (c == 'e' || c == 'E') && int_digits > 0 {
            exponent = true;
            break;
        } else {
            return Err(NumberError::NotNumber);
        }
    }
    if group_len.is_some_and(|n| n != 3) {
        return Err(NumberError::Grouping);
    }
    if int_digits == 0 && frac_digits == 0 {
        return Err(NumberError::NotNumber);
    }
    if !wrote_nonzero {
        out.push('0');
    }
    if exponent {
        let rest = &body[at..];
        let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NumberError::NotNumber);
        }
        out.push('e');
        out.push_str(rest);
    }
    Ok(())
}

/// The currency symbols a `money` value may carry.
pub const CURRENCY_SYMBOLS: &[char] = &['£', '$', '€', '¥', '₹', '₣', 'ƒ'];

/// Appends the JSON number of an amount of money to `out`; on error `out` is left as it was.
///
/// An amount is a number (as [`write_number`] reads it, without exponent) with at most one
/// currency symbol of [`CURRENCY_SYMBOLS`], before or after it, spaces allowed beside the symbol
/// (`£5`, `£ 5`, `5 €`, `- £5`), and at most one sign, before or after a leading symbol (`-£5`, `£-5`,
/// `-5 €`). A negative amount may instead be written the accounting way, in parentheses, with
/// the symbol inside or outside them (`(£5)`, `£ (5)`, `(5 €)`), but then without a sign.
/// Not accepted: two symbols (`£5£`), two signs (`-£-5`), a trailing sign (`5-`), a sign apart
/// from the number by a space (`- 5`).
pub fn write_money(s: &str, decimal: char, out: &mut String) -> Result<(), NumberError> {
    // Most amounts are plain numbers: digits at both ends, perhaps a leading minus. No symbol,
    // parenthesis or space can be at the ends then, and the general path would hand the same
    // text to `write_number` (the property test `plain_amounts_take_the_general_path_s_answer`
    // checks that the two agree).
    if is_plain_amount(s) {
        return write_number(s, decimal, false, out);
    }
    write_money_general(s, decimal, out)
}

/// True when [`write_money`] may hand `s` to [`write_number`] as it is.
#[inline]
fn is_plain_amount(s: &str) -> bool {
    let b = s.as_bytes();
    let unsigned = b.strip_prefix(b"-").unwrap_or(b);
    matches!((unsigned.first(), b.last()), (Some(f), Some(l)) if f.is_ascii_digit() && l.is_ascii_digit())
}

/// [`write_money`] for any text: takes the symbol, parentheses and sign apart, then writes the
/// unsigned number.
fn write_money_general(s: &str, decimal: char, out: &mut String) -> Result<(), NumberError> {
    fn symbol(t: &str) -> Option<&str> {
        if let Some(rest) = t.strip_prefix(CURRENCY_SYMBOLS) {
            Some(rest.trim_start())
        } else {
            t.strip_suffix(CURRENCY_SYMBOLS).map(str::trim_end)
        }
    }
    fn sign(t: &str) -> Option<(bool, &str)> {
        let negative = t.starts_with('-');
        t.strip_prefix(['-', '+']).map(|rest| (negative, rest))
    }
    let mut t = s.trim();
    // A symbol outside parentheses (or the only one): `£ (5)`, `£5`, `5 €`.
    let mut has_symbol = false;
    if let Some(rest) = symbol(t) {
        t = rest;
        has_symbol = true;
    }
    let parenthesised = t.len() >= 2 && t.starts_with('(') && t.ends_with(')');
    if parenthesised {
        t = t[1..t.len() - 1].trim();
    }
    // A sign before the symbol (`-£5`), then the symbol (inside parentheses: `(£5)`).
    let mut negative = None;
    if let Some((neg, rest)) = sign(t) {
        negative = Some(neg);
        t = rest;
    }
    if !has_symbol {
        if let Some(rest) = symbol(t.trim_start()) {
            t = rest;
        }
    }
    // A sign after the symbol: `£-5`.
    if negative.is_none() {
        if let Some((neg, rest)) = sign(t) {
            negative = Some(neg);
            t = rest;
        }
    }
    let starts_plain = t
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == decimal);
    if !starts_plain || (parenthesised && negative.is_some()) {
        // Empty, a second sign or symbol, a space after the sign, a sign inside parentheses.
        return Err(NumberError::NotNumber);
    }
    let negative = parenthesised || negative == Some(true);
    let mark = out.len();
    if negative {
        out.push('-');
    }
    let result = write_number(t, decimal, false, out);
    if result.is_err() {
        out.truncate(mark);
    } else {
        drop_negative_zero(out, mark);
    }
    result
}

/// The message for an amount of money [`write_money`] refused.
fn money_error(s: &str, decimal: char, e: NumberError) -> String {
    match e {
        NumberError::NotNumber => format!(
            "'{s}' is not a number; an amount of money is a number with at most one currency symbol \
             ({}) and one sign (such as £1250.50 or -£5 or £-5 or 5 €) or in parentheses when negative: (£5)",
            CURRENCY_SYMBOLS
                .iter()
                .map(char::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => number_error(s, decimal, other),
    }
}

/// Parses a whole number (thousands separators allowed; a fraction of zeros is accepted).
pub fn parse_integer(s: &str, decimal: char) -> Result<i64, String> {
    // Plain digits (with an optional sign) need no normalising; `i64::from_str` accepts exactly
    // those, and anything else (separators, fractions, overflow) takes the general path.
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let canonical = normalize_number(s, decimal, false).map_err(|e| match e {
        NumberError::NotNumber => format!("'{s}' is not a whole number"),
        other => number_error(s, decimal, other),
    })?;
    let int_part = match canonical.split_once('.') {
        Some((int, frac)) if frac.bytes().all(|b| b == b'0') => int,
        Some(_) => return Err(format!("'{s}' is not a whole number (it has a fraction)")),
        None => canonical.as_str(),
    };
    int_part
        .parse::<i64>()
        .map_err(|_| format!("'{s}' is out of range for a whole number"))
}

/// Parses a GUID, or derives one from the value when `derive` (a name prefix) is set.
pub fn parse_guid(s: &str, derive: Option<&str>) -> Result<uuid::Uuid, String> {
    match (uuid::Uuid::try_parse(s), derive) {
        (Ok(id), _) => Ok(id),
        (Err(_), Some(prefix)) => Ok(uuid::Uuid::new_v5(
            &DERIVE_NAMESPACE,
            format!("{prefix}/{s}").as_bytes(),
        )),
        (Err(_), None) => Err(format!(
            "'{s}' is not a GUID (expected 32 hex digits such as 00000000-0000-0000-0000-000000000001)"
        )),
    }
}

fn check_min(date: Date, s: &str) -> Result<(), String> {
    if date < MIN_DATE {
        Err(format!(
            "'{s}' is before 1753-01-01, the earliest date Dataverse stores"
        ))
    } else {
        Ok(())
    }
}

fn formats_hint(formats: &[String]) -> String {
    if formats.is_empty() {
        "ISO 8601".to_string()
    } else {
        formats
            .iter()
            .map(|f| format!("'{f}'"))
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

/// Appends `YYYY-MM-DD` (years 1753 to 9999, the range Dataverse stores).
fn write_date(date: Date, out: &mut String) {
    let (year, month, day) = (date.year(), date.month(), date.day());
    if (0..=9999).contains(&year) {
        // Ten ASCII digits and dashes, without formatting machinery.
        let digit = |n: i16| b'0' + (n % 10) as u8;
        let text = [
            digit(year / 1000),
            digit(year / 100),
            digit(year / 10),
            digit(year),
            b'-',
            digit(i16::from(month) / 10),
            digit(i16::from(month)),
            b'-',
            digit(i16::from(day) / 10),
            digit(i16::from(day)),
        ];
        out.reserve(text.len());
        for b in text {
            out.push(char::from(b));
        }
        return;
    }
    let mut buf = itoa::Buffer::new();
    let year = buf.format(year);
    for _ in year.len()..4 {
        out.push('0');
    }
    out.push_str(year);
    for part in [month, day] {
        out.push('-');
        if part < 10 {
            out.push('0');
        }
        out.push_str(buf.format(part));
    }
}

/// The day, month and year of `s` when `format` is one of the common all-numeric layouts
/// (`%d/%m/%Y`, `%m/%d/%Y`, `%Y-%m-%d`, with `/`, `-` or `.`), without the general parser.
/// `None` when the format or the text does not fit; the general parser then decides (and
/// explains what is wrong).
fn quick_date(format: &str, s: &str) -> Option<Date> {
    let f = format.as_bytes();
    if f.len() != 8 || f[0] != b'%' || f[3] != b'%' || f[6] != b'%' || f[2] != f[5] {
        return None;
    }
    // The separator is ASCII: a multi-byte character at f[2] would spill into f[3].
    let sep = f[2];
    let s = s.as_bytes();
    let i = s.iter().position(|&b| b == sep)?;
    let rest = &s[i + 1..];
    let j = rest.iter().position(|&b| b == sep)?;
    let (a, b, c) = (&s[..i], &rest[..j], &rest[j + 1..]);
    if c.contains(&sep) {
        return None;
    }
    let num = |t: &[u8], min: usize, max: usize| -> Option<i16> {
        if t.len() < min || t.len() > max {
            return None;
        }
        // At most four digits: no overflow.
        t.iter().try_fold(0i16, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i16::from(d - b'0'))
        })
    };
    let (y, m, d) = match (f[1], f[4], f[7]) {
        (b'd', b'm', b'Y') => (num(c, 4, 4)?, num(b, 1, 2)?, num(a, 1, 2)?),
        (b'm', b'd', b'Y') => (num(c, 4, 4)?, num(a, 1, 2)?, num(b, 1, 2)?),
        (b'Y', b'm', b'd') => (num(a, 4, 4)?, num(b, 1, 2)?, num(c, 1, 2)?),
        _ => return None,
    };
    Date::new(y, m as i8, d as i8).ok()
}

/// Parses a date (ISO 8601 `YYYY-MM-DD`, the date part of an ISO date-time, or one of `formats`).
pub fn parse_date(s: &str, formats: &[String]) -> Result<Date, String> {
    if let Some(date) = formats.iter().find_map(|f| quick_date(f, s)) {
        check_min(date, s)?;
        return Ok(date);
    }
    let date = if formats.is_empty() {
        let head = s.split(['T', ' ']).next().unwrap_or(s);
        head.parse::<Date>()
            .map_err(|e| format!("'{s}' is not a valid date (expected YYYY-MM-DD): {}", e))?
    } else {
        let mut last = String::new();
        let mut found = None;
        for f in formats {
            match jiff::fmt::strtime::parse(f, s).and_then(|tm| tm.to_date()) {
                Ok(d) => {
                    found = Some(d);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        found.ok_or_else(|| {
            format!(
                "'{s}' is not a valid date (format {}): {last}",
                formats_hint(formats)
            )
        })?
    };
    check_min(date, s)?;
    Ok(date)
}

/// Parses a date and time (sent in UTC as `YYYY-MM-DDTHH:MM:SSZ`). A value with an
/// offset keeps it; one without is read in `tz`. A local time that does not exist (the hour
/// skipped when clocks go forward) is refused; one that happens twice takes the earlier.
pub fn parse_datetime(
    s: &str,
    formats: &[String],
    tz: &TimeZone,
) -> Result<jiff::Timestamp, String> {
    let ts = if formats.is_empty() {
        if let Ok(ts) = s.parse::<jiff::Timestamp>() {
            ts
        } else {
            let dt = s
                .parse::<DateTime>()
                .map_err(|e| format!("'{s}' is not a valid date and time (expected ISO 8601 such as 2024-03-31T14:05:00Z): {}", e))?;
            local_to_timestamp(dt, tz, s)?
        }
    } else {
        let mut last = String::new();
        let mut found = None;
        for f in formats {
            let parsed = jiff::fmt::strtime::parse(f, s).and_then(|tm| {
                // An offset or a Unix timestamp (`%s`) places the value; otherwise `tz` does.
                if tm.offset().is_some() || tm.timestamp().is_some() {
                    tm.to_timestamp().map(Ok)
                } else {
                    tm.to_datetime().map(Err)
                }
            });
            match parsed {
                Ok(Ok(ts)) => {
                    found = Some(ts);
                    break;
                }
                Ok(Err(dt)) => {
                    found = Some(local_to_timestamp(dt, tz, s)?);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        found.ok_or_else(|| {
            format!(
                "'{s}' is not a valid date and time (format {}): {last}",
                formats_hint(formats)
            )
        })?
    };
    let utc = ts.to_zoned_datetime(TimeZone::UTC);
    check_min(utc.date(), s)?;
    Ok(ts)
}

fn local_to_timestamp(dt: DateTime, tz: &TimeZone, s: &str) -> Result<jiff::Timestamp, String> {
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    if matches!(ambiguous.offset(), jiff::tz::AmbiguousOffset::Gap { .. }) {
        return Err(format!(
            "'{s}' does not exist in time zone {} (the clocks went forward over it)",
            tz.iana_name().unwrap_or("of this field")
        ));
    }
    ambiguous
        .earlier()
        .map_err(|e| format!("'{s}' cannot be placed in time zone: {}", e))
}

/// Splits a multi-select value and resolves each label; duplicates are dropped.
pub fn parse_choices(s: &str, map: &ChoiceMap, separator: &str) -> Result<Vec<i64>, String> {
    let mut values = Vec::new();
    for part in s.split(separator).map(str::trim).filter(|p| !p.is_empty()) {
        let v = map.resolve(part)?;
        if !values.contains(&v) {
            values.push(v);
        }
    }
    if values.len() > 150 {
        return Err(format!(
            "{} options selected; Dataverse allows at most 150",
            values.len()
        ));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {

    #[test]
    fn json_numbers_are_expanded_exactly() {
        for (text, plain) in [
            ("-1.5e3", "-1500"),
            ("25E-3", "0.025"),
            ("1.2345678901234567891e+16", "12345678901234567.891"),
            ("1e0", "1"),
            ("0.0e5", "0"),
            ("-0e1", "0"),
            ("12345678901234.5678", "12345678901234.5678"),
            ("7E+2", "700"),
            ("1e999", "1e999"),
        ] {
            assert_eq!(plain_number(text), plain, "{text}");
        }
    }

    use super::*;

    fn json(c: &Converter, s: &str) -> Result<String, String> {
        let mut out = String::new();
        c.write_json(s, &mut out).map(|_| out)
    }

    fn dec(decimal: char) -> Converter {
        Converter::Number {
            decimal,
            money: false,
            float: false,
        }
    }

    #[test]
    fn numbers_with_separators() {
        assert_eq!(json(&dec('.'), "1,250,000.00").unwrap(), "1250000.00");
        assert_eq!(json(&dec(','), "1.234,5").unwrap(), "1234.5");
        assert_eq!(json(&dec(','), "1 234,5").unwrap(), "1234.5");
        assert_eq!(json(&dec('.'), "-0042.10").unwrap(), "-42.10");
        assert_eq!(json(&dec('.'), ".5").unwrap(), "0.5");
        assert_eq!(json(&dec('.'), "-0").unwrap(), "0");
        assert_eq!(json(&dec('.'), "-0.00").unwrap(), "0.00");
        assert_eq!(json(&dec('.'), "+7").unwrap(), "7");
    }

    #[test]
    fn comma_decimal_under_dot_setting_is_refused_with_the_fix() {
        let err = json(&dec('.'), "1.234,5").unwrap_err();
        assert_eq!(
            err,
            "'1.234,5' is not a number with '.' as the decimal separator and ',' between thousands \
             (set decimal = \",\" on this field for numbers written like 1.234,5)"
        );
    }

    #[test]
    fn bad_grouping_and_garbage() {
        assert!(json(&dec('.'), "1,23.5").is_err());
        assert!(json(&dec('.'), "1234,567").is_err());
        assert!(json(&dec('.'), "12a").is_err());
        assert!(json(&dec('.'), "1.2.3").is_err());
        assert!(json(&dec('.'), "-").is_err());
        assert!(json(&dec('.'), "1,000 000").is_err());
    }

    #[test]
    fn money_drops_currency_symbols() {
        let c = Converter::Number {
            decimal: '.',
            money: true,
            float: false,
        };
        assert_eq!(json(&c, "£1,250.50").unwrap(), "1250.50");
        assert_eq!(json(&c, "99 €").unwrap(), "99");
    }

    fn money() -> Converter {
        Converter::Number {
            decimal: '.',
            money: true,
            float: false,
        }
    }

    #[test]
    fn money_takes_a_sign_before_or_after_the_symbol() {
        let c = money();
        for s in [
            "-£5", "£-5", "-5£", "-5 £", "-$5", "$-5", "- $5", "$ -5", "-€ 5", "(£5)", "£(5)",
            "£ (5)", "(5 €)", "(5) €", "($5)", "-5", "(5)",
        ] {
            assert_eq!(json(&c, s).as_deref(), Ok("-5"), "{s}");
        }
        for s in ["+£5", "£+5", "+5 €", "£5", "$ 5"] {
            assert_eq!(json(&c, s).as_deref(), Ok("5"), "{s}");
        }
        assert_eq!(json(&c, "-£1,250.50").unwrap(), "-1250.50");
        assert_eq!(json(&c, "(£0.00)").unwrap(), "0.00");
        assert_eq!(json(&c, "-£0").unwrap(), "0");
        let comma = Converter::Number {
            decimal: ',',
            money: true,
            float: false,
        };
        assert_eq!(json(&comma, "-1.234,50 €").unwrap(), "-1234.50");
        assert_eq!(json(&comma, "(,5 €)").unwrap(), "-0.5");
    }

    #[test]
    fn money_refuses_two_signs_two_symbols_and_trailing_signs() {
        let c = money();
        for s in [
            "-£-5", "--5", "£5£", "££5", "$5€", "(-5)", "(£-5)", "-(5)", "5-", "£5-", "- 5", "£",
            "()", "-", "(5", "5)", "£ ", "1e3",
        ] {
            let err = json(&c, s).unwrap_err();
            assert!(
                err.contains("is not a number; an amount of money is"),
                "{s}: {err}"
            );
        }
        assert_eq!(
            json(&c, "£5£").unwrap_err(),
            "'£5£' is not a number; an amount of money is a number with at most one currency symbol \
             (£ $ € ¥ ₹ ₣ ƒ) and one sign (such as £1250.50 or -£5 or £-5 or 5 €) or in parentheses when negative: (£5)"
        );
        // A grouping mistake still says how to set the decimal separator.
        assert!(
            json(&c, "-£1.234,5")
                .unwrap_err()
                .contains("set decimal = \",\"")
        );
    }

    #[test]
    fn floats_accept_exponents() {
        let c = Converter::Number {
            decimal: '.',
            money: false,
            float: true,
        };
        assert_eq!(json(&c, "1.5e3").unwrap(), "1500");
        assert_eq!(json(&c, "47.639583").unwrap(), "47.639583");
        assert!(json(&c, "1e").is_err());
    }

    #[test]
    fn integers() {
        let c = Converter::Integer {
            wide: false,
            decimal: '.',
        };
        assert_eq!(json(&c, "1,234").unwrap(), "1234");
        assert_eq!(json(&c, "12.00").unwrap(), "12");
        assert_eq!(
            json(&c, "twelve").unwrap_err(),
            "'twelve' is not a whole number"
        );
        assert!(json(&c, "12.5").unwrap_err().contains("fraction"));
        assert!(json(&c, "3000000000").unwrap_err().contains("bigint"));
        let wide = Converter::Integer {
            wide: true,
            decimal: '.',
        };
        assert_eq!(json(&wide, "3000000000").unwrap(), "3000000000");
    }

    #[test]
    fn booleans() {
        for (s, v) in [
            ("Yes", "true"),
            ("n", "false"),
            ("TRUE", "true"),
            ("0", "false"),
            ("y", "true"),
        ] {
            assert_eq!(json(&Converter::Bool(BoolLabels::default()), s).unwrap(), v);
        }
        assert_eq!(
            json(&Converter::Bool(BoolLabels::default()), "maybe").unwrap_err(),
            "'maybe' is not a yes/no value; allowed: true, yes, y, 1 / false, no, n, 0"
        );
    }

    #[test]
    fn uk_dates_and_impossible_dates() {
        let c = Converter::DateOnly {
            formats: vec!["%d/%m/%Y".into()],
        };
        assert_eq!(json(&c, "03/11/2014").unwrap(), "\"2014-11-03\"");
        let err = json(&c, "31/02/2024").unwrap_err();
        assert!(
            err.starts_with("'31/02/2024' is not a valid date (format '%d/%m/%Y'): "),
            "{err}"
        );
        let iso = Converter::DateOnly { formats: vec![] };
        assert_eq!(json(&iso, "1985-03-14").unwrap(), "\"1985-03-14\"");
        assert_eq!(
            json(&iso, "1985-03-14T23:30:00-05:00").unwrap(),
            "\"1985-03-14\""
        );
        assert!(
            json(&iso, "1990-02-30")
                .unwrap_err()
                .starts_with("'1990-02-30' is not a valid date")
        );
        assert!(json(&iso, "1700-01-01").unwrap_err().contains("1753"));
    }

    #[test]
    fn datetimes_convert_to_utc() {
        let london = TimeZone::get("Europe/London").unwrap();
        let c = Converter::DateTime {
            formats: vec!["%d/%m/%Y %H:%M".into()],
            tz: london.clone(),
        };
        assert_eq!(
            json(&c, "15/07/2024 09:30").unwrap(),
            "\"2024-07-15T08:30:00Z\""
        );
        assert_eq!(
            json(&c, "15/01/2024 09:30").unwrap(),
            "\"2024-01-15T09:30:00Z\""
        );
        let gap = json(&c, "31/03/2024 01:30").unwrap_err();
        assert!(
            gap.contains("does not exist in time zone Europe/London"),
            "{gap}"
        );
        // 01:30 on 27/10/2024 happens twice in London; the earlier (BST) is taken.
        assert_eq!(
            json(&c, "27/10/2024 01:30").unwrap(),
            "\"2024-10-27T00:30:00Z\""
        );
        let iso = Converter::DateTime {
            formats: vec![],
            tz: london,
        };
        assert_eq!(
            json(&iso, "2026-03-14T09:21:00+01:00").unwrap(),
            "\"2026-03-14T08:21:00Z\""
        );
        assert_eq!(
            json(&iso, "2026-07-01T12:00:00").unwrap(),
            "\"2026-07-01T11:00:00Z\""
        );
        assert_eq!(
            json(&iso, "2026-07-01T12:00:00Z").unwrap(),
            "\"2026-07-01T12:00:00Z\""
        );
        let unix = Converter::DateTime {
            formats: vec!["%s".into()],
            tz: TimeZone::get("Europe/London").unwrap(),
        };
        assert_eq!(
            json(&unix, "981173106").unwrap(),
            "\"2001-02-03T04:05:06Z\""
        );
    }

    #[test]
    fn dateonly_never_shifts() {
        // A DateOnly column is a calendar date: no zone is applied, whatever the offset says.
        let c = Converter::DateOnly {
            formats: vec!["%d/%m/%Y %H:%M %z".into()],
        };
        assert_eq!(
            json(&c, "01/01/2024 23:30 -0800").unwrap(),
            "\"2024-01-01\""
        );
    }

    #[test]
    fn choices_and_labels() {
        let map = ChoiceMap::new([("Accounting".to_string(), 1), ("Consulting".to_string(), 7)]);
        let c = Converter::Choice(map.clone());
        assert_eq!(json(&c, "consulting").unwrap(), "7");
        assert_eq!(json(&c, "7").unwrap(), "7");
        assert_eq!(
            json(&c, "Aerospace").unwrap_err(),
            "unknown label 'Aerospace'; allowed: Accounting, Consulting"
        );
        assert!(json(&c, "9").is_err());
        let multi = Converter::Choices {
            map,
            separator: "|".into(),
        };
        assert_eq!(
            json(&multi, "Accounting| consulting|Accounting").unwrap(),
            "\"1,7\""
        );
        assert!(
            json(&multi, "Accounting|Knitting")
                .unwrap_err()
                .contains("'Knitting'")
        );
        let bare = Converter::Choice(ChoiceMap::default());
        assert_eq!(json(&bare, "3").unwrap(), "3");
        assert!(json(&bare, "Hot").unwrap_err().contains("map"));
    }

    #[test]
    fn labels_resolve_alike_in_small_and_large_maps() {
        // Small maps of ASCII values are scanned, large ones hashed: both fold case alike, even
        // for a label whose lower case is ASCII although it is not (the Kelvin sign).
        let label = |i: usize| (format!("Option {i}"), i as i64);
        let small = ChoiceMap::new([("\u{212a}elvin".to_string(), 99)]);
        let large = ChoiceMap::new(
            std::iter::once(("\u{212a}elvin".to_string(), 99)).chain((0..40).map(label)),
        );
        for s in ["kelvin", "KELVIN", "\u{212a}elvin"] {
            assert_eq!(small.resolve(s), Ok(99), "{s}");
            assert_eq!(large.resolve(s), Ok(99), "{s}");
        }
        assert_eq!(large.resolve("option 7"), Ok(7));
        // Labels that fold alike (refused in mapping files): the first wins either way.
        let twice = |n: usize| {
            ChoiceMap::new(
                [("Hot".to_string(), 1), ("HOT".to_string(), 2)]
                    .into_iter()
                    .chain((0..n).map(label)),
            )
        };
        assert_eq!(twice(0).resolve("hot"), Ok(1));
        assert_eq!(twice(40).resolve("hot"), Ok(1));
    }

    proptest::proptest! {
        #[test]
        fn the_escape_check_agrees_with_the_plain_one(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let plain = bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            proptest::prop_assert_eq!(needs_escape(&bytes), plain);
        }
    }

    proptest::proptest! {
        #[test]
        fn json_strings_round_trip_through_serde_json(s in "(\\PC|[\\x00-\\x1f\"\\\\\u{2028}\u{2029}\u{7f}é])*") {
            let mut out = String::new();
            write_json_string(&s, &mut out);
            let back: String = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(&back, &s);
            if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
                proptest::prop_assert_eq!(out, format!("\"{s}\""));
            }
        }

        #[test]
        fn fast_trim_is_str_trim(s in "[ \t\r\n\u{a0}\u{2028}\u{3000}\u{85}\u{1f}a-z0-9é]{0,12}") {
            proptest::prop_assert_eq!(trim(&s), s.trim());
        }

        #[test]
        fn quick_dates_agree_with_the_general_parser(s in "[0-9/\\-.]{0,12}") {
            for format in ["%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%d", "%d.%m.%Y"] {
                if let Some(fast) = quick_date(format, &s) {
                    let general = jiff::fmt::strtime::parse(format, &s).and_then(|tm| tm.to_date());
                    proptest::prop_assert_eq!(Some(fast), general.ok(), "{} {}", format, s);
                }
            }
        }

        #[test]
        fn plain_amounts_take_the_general_path_s_answer(s in "[-+ ()£$€0-9.,]{0,10}") {
            if is_plain_amount(&s) {
                for decimal in ['.', ','] {
                    let (mut fast, mut general) = (String::from("x"), String::from("x"));
                    let fast_result = write_number(&s, decimal, false, &mut fast);
                    let general_result = write_money_general(&s, decimal, &mut general);
                    proptest::prop_assert_eq!(fast_result, general_result, "{}", s);
                    proptest::prop_assert_eq!(fast, general, "{}", s);
                }
            }
        }

        #[test]
        fn every_way_of_writing_an_amount_gives_the_number(
            n in "[0-9]{1,7}(\\.[0-9]{1,2})?",
            symbol in proptest::sample::select(CURRENCY_SYMBOLS),
        ) {
            let positive = normalize_number(&n, '.', false).unwrap();
            let negative = if positive.bytes().all(|b| b == b'0' || b == b'.') {
                positive.clone()
            } else {
                format!("-{positive}")
            };
            let c = money();
            for form in ["{n}", "{s}{n}", "{s} {n}", "{n}{s}", "{n} {s}", "+{s}{n}", "{s}+{n}"] {
                let text = form.replace("{s}", &symbol.to_string()).replace("{n}", &n);
                proptest::prop_assert_eq!(json(&c, &text), Ok(positive.clone()), "{}", text);
            }
            for form in ["-{n}", "-{s}{n}", "{s}-{n}", "-{n}{s}", "-{n} {s}", "({s}{n})", "{s}({n})", "{s} ({n})", "({n} {s})", "({n})"] {
                let text = form.replace("{s}", &symbol.to_string()).replace("{n}", &n);
                proptest::prop_assert_eq!(json(&c, &text), Ok(negative.clone()), "{}", text);
            }
        }

        #[test]
        fn plain_integers_parse_like_normalised_ones(s in "[+-]?[0-9]{1,20}") {
            let general = normalize_number(&s, '.', false)
                .ok()
                .and_then(|c| c.parse::<i64>().ok());
            proptest::prop_assert_eq!(parse_integer(&s, '.').ok(), general);
        }
    }

    #[test]
    fn escaping_of_every_special_byte() {
        let mut out = String::new();
        write_json_string("\u{8}\u{c}\u{1f}\u{7f}\u{2028}é\"\\/\t", &mut out);
        assert_eq!(out, "\"\\u0008\\u000c\\u001f\u{7f}\u{2028}é\\\"\\\\/\\t\"");
        // Long strings: the special byte in the last, partial word is found.
        for len in 0..20 {
            let s = format!("{}\"", "a".repeat(len));
            assert!(needs_escape(s.as_bytes()), "{len}");
            assert!(!needs_escape("a".repeat(len).as_bytes()), "{len}");
        }
    }

    #[test]
    fn currency_and_numbers_with_unusual_ends() {
        let c = Converter::Number {
            decimal: '.',
            money: true,
            float: false,
        };
        assert_eq!(json(&c, "$5").unwrap(), "5");
        assert_eq!(json(&c, "5$").unwrap(), "5");
        assert_eq!(json(&c, " 5 ").unwrap(), "5");
        assert_eq!(json(&c, "1\u{a0}234.5").unwrap(), "1234.5");
        assert!(json(&c, "1 234.5e3").is_err());
        assert_eq!(parse_integer("-0", '.'), Ok(0));
        assert_eq!(parse_integer("+0042", '.'), Ok(42));
        assert!(
            parse_integer("99999999999999999999", '.')
                .unwrap_err()
                .contains("out of range")
        );
    }

    #[test]
    fn dates_are_written_with_four_digit_years() {
        for (y, m, d, text) in [
            (1753, 1, 1, "1753-01-01"),
            (2024, 12, 31, "2024-12-31"),
            (9999, 9, 9, "9999-09-09"),
            (7, 10, 5, "0007-10-05"),
        ] {
            let mut out = String::new();
            write_date(jiff::civil::date(y, m, d), &mut out);
            assert_eq!(out, text);
        }
    }

    #[test]
    fn text_length_counts_characters_not_bytes() {
        assert!(check_length(&"é".repeat(160), Some(160)).is_ok());
        assert!(check_length(&"é".repeat(161), Some(160)).is_err());
        assert!(check_length(&"a".repeat(161), Some(160)).is_err());
        assert!(check_length(&"a".repeat(161), None).is_ok());
    }

    #[test]
    fn common_date_layouts_parse_like_the_general_parser() {
        for (format, text) in [
            ("%d/%m/%Y", "3/1/2014"),
            ("%m/%d/%Y", "12/31/1999"),
            ("%Y.%m.%d", "2024.02.29"),
            ("%d-%m-%Y", "01-12-2020"),
        ] {
            let fast = quick_date(format, text).unwrap();
            let general = jiff::fmt::strtime::parse(format, text)
                .unwrap()
                .to_date()
                .unwrap();
            assert_eq!(fast, general, "{format} {text}");
        }
        assert_eq!(
            quick_date("%d/%m/%Y", "31/02/2024"),
            None,
            "left to the general parser, which explains"
        );
        assert_eq!(quick_date("%d/%m/%Y", "1/2/24"), None);
        assert_eq!(quick_date("%d %B %Y", "1 May 2024"), None);
    }

    #[test]
    fn guids() {
        let c = Converter::Guid { derive: None };
        assert_eq!(
            json(&c, "{6F9619FF-8B86-D011-B42D-00CF4FC964FF}").unwrap(),
            "\"6f9619ff-8b86-d011-b42d-00cf4fc964ff\""
        );
        assert!(json(&c, "L-000001").unwrap_err().contains("not a GUID"));
        let d = Converter::Guid {
            derive: Some("leads".into()),
        };
        assert_eq!(json(&d, "L-000001").unwrap(), json(&d, "L-000001").unwrap());
        assert_ne!(json(&d, "L-000001").unwrap(), json(&d, "L-000002").unwrap());
    }

    #[test]
    fn text_length_and_escaping() {
        let c = Converter::Text {
            max_length: Some(5),
        };
        assert_eq!(json(&c, "héllo").unwrap(), "\"héllo\"");
        assert_eq!(
            json(&c, "héllo!").unwrap_err(),
            "is 6 characters long; at most 5 are allowed"
        );
        let mut out = String::new();
        write_json_string("a\"b\\c\nd\u{1}", &mut out);
        assert_eq!(out, r#""a\"b\\c\nd\u0001""#);
    }

    #[test]
    fn key_values() {
        let t = Converter::Text {
            max_length: Some(3),
        };
        assert_eq!(t.key_value("O'N").unwrap(), KeyValue::String("O'N".into()));
        assert!(t.key_value("O'Neil").is_err());
        let i = Converter::Integer {
            wide: false,
            decimal: '.',
        };
        assert_eq!(i.key_value("1,200").unwrap(), KeyValue::Integer(1200));
        let c = Converter::Choice(ChoiceMap::new([("Hot".to_string(), 1)]));
        assert_eq!(c.key_value("hot").unwrap(), KeyValue::Integer(1));
    }
}
