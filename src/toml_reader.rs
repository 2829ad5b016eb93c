//! A TOML reader that knows where every value is: byte offsets turned into line and column, a
//! table reader that names the key, the expected type and what is allowed at the value's
//! position, and suggestions for misspelt keys. The mapping reader (`mapping::spec`) reads with
//! it; the profile reader (`auth::settings`) places its errors with [`line_col`].

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// An error in a TOML file (a mapping, a profile), with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The mapping file.
    pub file: PathBuf,
    /// 1-based line (0 when the error is about the whole file).
    pub line: usize,
    /// 1-based column (0 when the error is about the whole file).
    pub column: usize,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for FileError {}

/// A TOML file's text, to turn byte offsets into positions.
pub(crate) struct Ctx<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn err(&self, span: Range<usize>, message: impl Into<String>) -> FileError {
        let (line, column) = line_col(self.text, span.start);
        FileError {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

pub(crate) type Val<'i> = Spanned<DeValue<'i>>;

/// Reads one TOML table, remembering which keys were used so that the rest can be reported.
pub(crate) struct TableReader<'c, 't, 'i> {
    pub(crate) ctx: &'c Ctx<'c>,
    /// The table.
    pub(crate) table: &'t DeTable<'i>,
    /// Where it is in the text.
    pub(crate) span: Range<usize>,
    /// How errors name it (`[source]`, `field 'name'`).
    pub(crate) what: String,
}

impl<'c, 't, 'i> TableReader<'c, 't, 'i> {
    pub(crate) fn new(
        ctx: &'c Ctx<'c>,
        table: &'t DeTable<'i>,
        span: Range<usize>,
        what: impl Into<String>,
    ) -> Self {
        TableReader {
            ctx,
            table,
            span,
            what: what.into(),
        }
    }

    pub(crate) fn check_keys(&self, allowed: &[&str]) -> Result<(), FileError> {
        for key in self.table.keys() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                let hint = suggest(key.get_ref(), allowed.iter().copied())
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                return Err(self.ctx.err(
                    key.span(),
                    format!(
                        "unknown key '{}' in {}{hint}; allowed: {}",
                        key.get_ref(),
                        self.what,
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'t Val<'i>> {
        self.table.get(key)
    }

    /// An error at `span` about this table: `{what}: {message}`.
    pub(crate) fn err(&self, span: Range<usize>, message: impl std::fmt::Display) -> FileError {
        self.ctx.err(span, format!("{}: {message}", self.what))
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<Spanned<String>>, FileError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.get_ref().as_str() {
                Some(s) => Ok(Some(Spanned::new(v.span(), s.to_string()))),
                None => Err(self.type_err(key, v, "a string")),
            },
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, FileError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .get_ref()
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.type_err(key, v, "true or false")),
        }
    }

    pub(crate) fn strings(&self, key: &str) -> Result<Option<Spanned<Vec<String>>>, FileError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let list = match v.get_ref() {
            DeValue::String(s) => vec![s.to_string()],
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref().as_str() {
                        Some(s) => out.push(s.to_string()),
                        None => return Err(self.type_err(key, item, "a string")),
                    }
                }
                out
            }
            _ => return Err(self.type_err(key, v, "a string or a list of strings")),
        };
        Ok(Some(Spanned::new(v.span(), list)))
    }

    pub(crate) fn type_err(&self, key: &str, v: &Val<'_>, expected: &str) -> FileError {
        self.ctx.err(
            v.span(),
            format!(
                "'{key}' in {} must be {expected}, not {}",
                self.what,
                describe(v.get_ref())
            ),
        )
    }
}

/// A TOML integer's value (in any radix: `0x10` is 16); `None` when it does not fit 64 bits.
pub(crate) fn toml_integer(i: &toml::de::DeInteger<'_>) -> Option<i64> {
    i64::from_str_radix(i.as_str(), i.radix()).ok()
}

pub(crate) fn describe(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The closest candidate to `word` by edit distance, if close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.chars().count() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
