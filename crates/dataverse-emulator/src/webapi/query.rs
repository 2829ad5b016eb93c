//! Collection reads: `$select`, `$filter`, `$orderby`, `$top`, `$count` and server-driven paging.
//!
//! Paging follows query-data-web-api.md: `Prefer: odata.maxpagesize=N` (default 5,000) and an
//! `@odata.nextLink`. The emulator's `$skiptoken` is an offset, opaque to clients (Dataverse uses
//! a paging cookie). `$filter` supports comparisons, `and`/`or`/`not`, parentheses,
//! `contains`/`startswith`/`endswith` and the query functions `Microsoft.Dynamics.CRM.In` and
//! `NotIn`; anything else is refused explicitly.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::crud::{no_such_property, parse_select, property_value_name, read_property, represent};
use super::{Ctx, OpRequest};
use crate::catalog::Table;
use crate::config::Right;
use crate::error::{ApiError, OpResponse};
use crate::keys::{self, KeyLiteral};
use crate::state::{Record, Store};

/// Dataverse's default page size.
const DEFAULT_PAGE_SIZE: usize = 5000;

/// Where `$count=true` and `/$count` stop counting for a standard table (count-rows.md).
const COUNT_LIMIT: usize = 5000;

/// A `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `prop op literal`
    Compare(String, CmpOp, Value),
    /// `contains|startswith|endswith(prop,'text')`
    Text(String, TextFn, String),
    /// `Microsoft.Dynamics.CRM.In(PropertyName='prop',PropertyValues=["a","b"])`: the values are
    /// text, which the service converts to the column's type.
    In(String, Vec<String>),
    /// `prop eq 'a' [or prop eq 'b' …]` on text, compared as the environment's collation
    /// compares strings (made by [`prepare`] from `Compare` and `Or`).
    AnyOf {
        /// The property.
        prop: String,
        /// The values, folded by [`crate::state::fold_text`].
        folded: std::collections::HashSet<String>,
        /// The collation ignores accents.
        accent_insensitive: bool,
        /// The values came from `In`: a number matches its decimal text too.
        numbers: bool,
    },
}

/// Makes text equality compare as SQL Server does under the environment's collation (case,
/// trailing spaces and, under `_CI_AI`, accents ignored: the "Dataverse language collations"
/// page, learn.microsoft.com/power-platform/admin/language-collations), and an `or` of equalities
/// on one property one set lookup (a lookup by name asks for hundreds of names at once).
pub fn prepare(e: Expr, accent_insensitive: bool) -> Expr {
    match e {
        Expr::Compare(p, op @ (CmpOp::Eq | CmpOp::Ne), Value::String(s)) => {
            let any = Expr::AnyOf {
                prop: p,
                folded: std::iter::once(crate::state::fold_text(&s, accent_insensitive)).collect(),
                accent_insensitive,
                numbers: false,
            };
            if op == CmpOp::Eq {
                any
            } else {
                Expr::Not(Box::new(any))
            }
        }
        Expr::Or(a, b) => match (
            prepare(*a, accent_insensitive),
            prepare(*b, accent_insensitive),
        ) {
            (
                Expr::AnyOf {
                    prop,
                    mut folded,
                    accent_insensitive,
                    numbers,
                },
                Expr::AnyOf {
                    prop: p2,
                    folded: f2,
                    numbers: n2,
                    ..
                },
            ) if prop == p2 && numbers == n2 => {
                folded.extend(f2);
                Expr::AnyOf {
                    prop,
                    folded,
                    accent_insensitive,
                    numbers,
                }
            }
            (a, b) => Expr::Or(Box::new(a), Box::new(b)),
        },
        Expr::And(a, b) => Expr::And(
            Box::new(prepare(*a, accent_insensitive)),
            Box::new(prepare(*b, accent_insensitive)),
        ),
        Expr::Not(a) => Expr::Not(Box::new(prepare(*a, accent_insensitive))),
        Expr::In(prop, values) => Expr::AnyOf {
            prop,
            folded: values
                .iter()
                .map(|v| crate::state::fold_text(v, accent_insensitive))
                .collect(),
            accent_insensitive,
            numbers: true,
        },
        other => other,
    }
}

/// The items of a JSON array of text (`["a", 'b', 3]`) as text: double- or single-quoted strings
/// with backslash escapes, or bare numbers.
fn json_text_array(text: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = text.trim().chars().collect();
    if chars.first() != Some(&'[') || chars.last() != Some(&']') {
        return Err("it is not in [ ]".into());
    }
    let inner = &chars[1..chars.len() - 1];
    let mut out = Vec::new();
    let mut i = 0;
    let skip = |i: &mut usize| {
        while inner.get(*i).is_some_and(|c| c.is_whitespace()) {
            *i += 1;
        }
    };
    skip(&mut i);
    while i < inner.len() {
        let item = match inner[i] {
            q @ ('"' | '\'') => {
                // The string as written, escapes kept, turned into a JSON string and decoded
                // by serde_json (`\u0030`, `\r`, … as any JSON reader decodes them); in a
                // single-quoted one `\'` is a quote and `"` needs no escape.
                i += 1;
                let mut json = String::from('"');
                loop {
                    match inner.get(i) {
                        None => return Err(format!("unterminated string {q}…")),
                        Some('\\') => {
                            let escaped = *inner.get(i + 1).ok_or("a lone backslash")?;
                            if escaped == '\'' {
                                json.push('\'');
                            } else {
                                json.push('\\');
                                json.push(escaped);
                            }
                            i += 2;
                        }
                        Some(&c) if c == q => {
                            i += 1;
                            break;
                        }
                        Some('"') => {
                            json.push_str("\\\"");
                            i += 1;
                        }
                        Some(&c) => {
                            json.push(c);
                            i += 1;
                        }
                    }
                }
                json.push('"');
                serde_json::from_str::<String>(&json).map_err(|e| format!("{json}: {e}"))?
            }
            _ => {
                let start = i;
                while i < inner.len() && inner[i] != ',' && !inner[i].is_whitespace() {
                    i += 1;
                }
                let word: String = inner[start..i].iter().collect();
                if word.parse::<f64>().is_err() {
                    return Err(format!("{word} is neither a string nor a number"));
                }
                word
            }
        };
        out.push(item);
        skip(&mut i);
        match inner.get(i) {
            None => break,
            Some(',') => {
                i += 1;
                skip(&mut i);
            }
            Some(c) => {
                return Err(format!(
                    "'{c}' after {:?}; items are separated by commas",
                    out.last().unwrap_or(&String::new())
                ));
            }
        }
    }
    Ok(out)
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CmpOp {
    /// eq
    Eq,
    /// ne
    Ne,
    /// gt
    Gt,
    /// ge
    Ge,
    /// lt
    Lt,
    /// le
    Le,
}

/// String function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TextFn {
    /// contains
    Contains,
    /// startswith
    StartsWith,
    /// endswith
    EndsWith,
}

/// Parses a `$filter` value.
pub fn parse_filter(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    let mut p = FilterParser { tokens, pos: 0 };
    let e = p.or()?;
    if p.pos != p.tokens.len() {
        return Err(format!("syntax error at position {} in '{text}'", p.pos));
    }
    Ok(e)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Lit(String),
    /// `[…]` with its brackets, kept whole (the `In` function's values).
    Array(String),
    Open,
    Close,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '[' => {
                let start = i;
                let mut quote: Option<char> = None;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("unterminated '[' (the values of In end with ']')".into());
                    };
                    i += 1;
                    match (quote, c) {
                        (Some(_), '\\') => i += 1,
                        (Some(q), c) if c == q => quote = None,
                        (None, '\'' | '"') => quote = Some(c),
                        (None, ']') => break,
                        _ => {}
                    }
                }
                out.push(Tok::Array(chars[start..i].iter().collect()));
            }
            '\'' => {
                let start = i;
                i += 1;
                loop {
                    if i >= chars.len() {
                        return Err("unterminated string literal".into());
                    }
                    if chars[i] == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                out.push(Tok::Lit(chars[start..i].iter().collect()));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !matches!(chars[i], ' ' | '\t' | '(' | ')' | ',' | '\'' | '[')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let first = word.chars().next().unwrap_or(' ');
                if first.is_ascii_digit()
                    || first == '-'
                    || matches!(word.as_str(), "true" | "false" | "null")
                {
                    out.push(Tok::Lit(word));
                } else {
                    out.push(Tok::Ident(word));
                }
            }
        }
    }
    Ok(out)
}

struct FilterParser {
    tokens: Vec<Tok>,
    pos: usize,
}

impl FilterParser {
    fn peek_ident(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Tok::Ident(w)) if w == word)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_ident("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek_ident("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// The arguments of the query function `In`/`NotIn` (filter-rows.md, "Dataverse query
    /// functions"; the In function's reference:
    /// `Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=["a","b"])`). The values are
    /// a JSON array of text, read as the service's JSON reader reads it: double-quoted strings
    /// with backslash escapes (`"O'Brian"` needs none), single-quoted ones too, bare numbers; a
    /// doubled quote (`'O''Brian'`) is not JSON and is refused.
    fn in_function(&mut self, name: &str) -> Result<Expr, String> {
        let malformed = || {
            format!(
                "malformed call of '{name}': write {name}(PropertyName='column',PropertyValues=[\"a\",\"b\"])"
            )
        };
        let (Some(Tok::Open), Some(Tok::Ident(p)), Some(Tok::Lit(prop))) =
            (self.next(), self.next(), self.next())
        else {
            return Err(malformed());
        };
        let Ok(KeyLiteral::String(prop)) = keys::parse_literal(&prop) else {
            return Err(malformed());
        };
        if p != "PropertyName=" || !matches!(self.next(), Some(Tok::Comma)) {
            return Err(malformed());
        }
        let (Some(Tok::Ident(p)), Some(Tok::Array(array)), Some(Tok::Close)) =
            (self.next(), self.next(), self.next())
        else {
            return Err(malformed());
        };
        if p != "PropertyValues=" {
            return Err(malformed());
        }
        let values = json_text_array(&array)
            .map_err(|e| format!("PropertyValues of '{name}' is not a JSON array of text: {e}"))?;
        if values.is_empty() {
            return Err(malformed());
        }
        Ok(Expr::In(prop, values))
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_ident("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Tok::Open) => {
                let e = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(e),
                    _ => Err("expected ')'".into()),
                }
            }
            Some(Tok::Ident(name))
                if matches!(
                    name.as_str(),
                    "Microsoft.Dynamics.CRM.In" | "Microsoft.Dynamics.CRM.NotIn"
                ) =>
            {
                let any = self.in_function(&name)?;
                Ok(if name.ends_with("NotIn") {
                    Expr::Not(Box::new(any))
                } else {
                    any
                })
            }
            Some(Tok::Ident(name)) => {
                let f = match name.as_str() {
                    "contains" => Some(TextFn::Contains),
                    "startswith" => Some(TextFn::StartsWith),
                    "endswith" => Some(TextFn::EndsWith),
                    _ => None,
                };
                if let Some(f) = f {
                    let (
                        Some(Tok::Open),
                        Some(Tok::Ident(prop)),
                        Some(Tok::Comma),
                        Some(Tok::Lit(lit)),
                        Some(Tok::Close),
                    ) = (
                        self.next(),
                        self.next(),
                        self.next(),
                        self.next(),
                        self.next(),
                    )
                    else {
                        return Err(format!("malformed call of '{name}'"));
                    };
                    let Ok(KeyLiteral::String(s)) = keys::parse_literal(&lit) else {
                        return Err(format!("'{name}' needs a string literal"));
                    };
                    return Ok(Expr::Text(prop, f, s));
                }
                let op = match self.next() {
                    Some(Tok::Ident(op)) => match op.as_str() {
                        "eq" => CmpOp::Eq,
                        "ne" => CmpOp::Ne,
                        "gt" => CmpOp::Gt,
                        "ge" => CmpOp::Ge,
                        "lt" => CmpOp::Lt,
                        "le" => CmpOp::Le,
                        other => return Err(format!("unsupported operator '{other}'")),
                    },
                    _ => return Err(format!("expected an operator after '{name}'")),
                };
                let value = match self.next() {
                    Some(Tok::Lit(lit)) => keys::parse_literal(&lit).map_err(|e| e.0)?.to_json(),
                    // An enum literal, `Microsoft.Dynamics.CRM.AttributeTypeDisplayName'StringType'`:
                    // its member name, compared as text.
                    Some(Tok::Ident(word))
                        if word.contains('.')
                            && matches!(self.tokens.get(self.pos), Some(Tok::Lit(l)) if l.starts_with('\'')) =>
                    {
                        let Some(Tok::Lit(lit)) = self.next() else {
                            unreachable!("peeked")
                        };
                        match keys::parse_literal(&lit) {
                            Ok(KeyLiteral::String(member)) => Value::String(member),
                            _ => return Err(format!("malformed enum literal {word}{lit}")),
                        }
                    }
                    Some(Tok::Ident(word)) => {
                        // A bare GUID starting with a letter, e.g. ab12…
                        keys::parse_literal(&word).map_err(|e| e.0)?.to_json()
                    }
                    _ => return Err(format!("expected a literal after '{name}'")),
                };
                Ok(Expr::Compare(name, op, value))
            }
            _ => Err("expected a property name".into()),
        }
    }
}

fn props(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            props(a, out);
            props(b, out);
        }
        Expr::Not(a) => props(a, out),
        Expr::Compare(p, _, _)
        | Expr::Text(p, _, _)
        | Expr::In(p, _)
        | Expr::AnyOf { prop: p, .. } => out.push(p.clone()),
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        // SQL collation: case-insensitive.
        (Value::String(x), Value::String(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

fn eval(table: &Table, row: &Record, e: &Expr) -> bool {
    eval_with(&|p: &str| read_property(table, row, p), e)
}

/// Evaluates `e` with `read` giving each property's value (a record's column, or a path into a
/// metadata object).
pub fn eval_with(read: &dyn Fn(&str) -> Value, e: &Expr) -> bool {
    match e {
        Expr::And(a, b) => eval_with(read, a) && eval_with(read, b),
        Expr::Or(a, b) => eval_with(read, a) || eval_with(read, b),
        Expr::Not(a) => !eval_with(read, a),
        Expr::Compare(p, op, lit) => {
            let v = read(p);
            let ord = compare(&v, lit);
            match op {
                CmpOp::Eq => ord == Some(Ordering::Equal),
                CmpOp::Ne => ord != Some(Ordering::Equal),
                CmpOp::Gt => ord == Some(Ordering::Greater),
                CmpOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
                CmpOp::Lt => ord == Some(Ordering::Less),
                CmpOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
            }
        }
        Expr::AnyOf {
            prop,
            folded,
            accent_insensitive,
            numbers,
        } => match read(prop) {
            Value::String(v) => folded.contains(&crate::state::fold_text(&v, *accent_insensitive)),
            Value::Number(n) if *numbers => folded.contains(&n.to_string()),
            _ => false,
        },
        // Unprepared (a metadata filter): compared as `eq` compares.
        Expr::In(p, values) => {
            let v = read(p);
            values.iter().any(|x| match &v {
                Value::Number(n) => n.to_string() == *x,
                other => compare(other, &Value::String(x.clone())) == Some(Ordering::Equal),
            })
        }
        Expr::Text(p, f, s) => {
            let Value::String(v) = read(p) else {
                return false;
            };
            let (v, s) = (v.to_lowercase(), s.to_lowercase());
            match f {
                TextFn::Contains => v.contains(&s),
                TextFn::StartsWith => v.starts_with(&s),
                TextFn::EndsWith => v.ends_with(&s),
            }
        }
    }
}

/// Parses and checks a `$filter` option against `table`'s properties.
fn filter_option(
    table: &Table,
    text: Option<&str>,
    accent_insensitive: bool,
) -> Result<Option<Expr>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let e = parse_filter(text)
        .map_err(|m| ApiError::bad_uri(format!("Syntax error in $filter: {m}")))?;
    let mut names = Vec::new();
    props(&e, &mut names);
    for n in names {
        if property_value_name(table, &n).is_none() && n != table.pk() {
            return Err(no_such_property(table, &n));
        }
    }
    Ok(Some(prepare(e, accent_insensitive)))
}

/// `GET {set}/$count[?$filter=…]`: the number of matching rows as `text/plain`, stopping at
/// 5,000 like `$count=true` (count-rows.md).
pub fn count(
    ctx: &Ctx,
    store: &Store,
    req: &OpRequest,
    table: &Table,
) -> Result<OpResponse, ApiError> {
    ctx.user.require(table, Right::Read)?;
    let pairs = req.query_pairs();
    let text = pairs
        .iter()
        .find(|(k, _)| k == "$filter")
        .map(|(_, v)| v.as_str());
    let filter = filter_option(table, text, store.accent_insensitive)?;
    let n = store
        .rows(table.logical())
        .into_iter()
        .filter(|r| filter.as_ref().is_none_or(|f| eval(table, r, f)))
        .count();
    Ok(OpResponse {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "text/plain".into()),
            ("OData-Version".into(), "4.0".into()),
        ],
        body: n.min(COUNT_LIMIT).to_string().into_bytes(),
        entity_id: None,
    })
}

/// `GET {set}` or, with `related = Some((id, collection))`, `GET {set}(id)/{collection}`.
pub fn list(
    ctx: &Ctx,
    store: &mut Store,
    req: &OpRequest,
    parent: &Table,
    related: Option<(Uuid, &str)>,
) -> Result<OpResponse, ApiError> {
    if related.is_none() {
        if let Some((_, xml)) = req.query_pairs().into_iter().find(|(k, _)| k == "fetchXml") {
            return super::fetch::execute(ctx, store, req, parent, &xml);
        }
    }
    let (table, link) = match related {
        Some((id, coll_name)) => {
            let coll = parent.collection(coll_name).expect("checked by caller");
            let t = ctx.catalog.table(&coll.table).expect("validated catalogue");
            (t, Some((id, coll.attribute.clone())))
        }
        None => (parent, None),
    };
    ctx.user.require(table, Right::Read)?;
    let select = parse_select(table, req)?;
    let expands = super::expand::parse(ctx, table, req)?;
    let pairs = req.query_pairs();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let filter = filter_option(table, get("$filter"), store.accent_insensitive)?;
    let top = match get("$top") {
        Some(t) => Some(t.trim().parse::<usize>().map_err(|_| {
            ApiError::bad_uri(format!("Invalid value '{t}' for $top query option found."))
        })?),
        None => None,
    };
    let count = get("$count").is_some_and(|c| c.eq_ignore_ascii_case("true"));
    let mut orderby = Vec::new();
    if let Some(o) = get("$orderby") {
        for part in o.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let mut words = part.split_whitespace();
            let name = words.next().unwrap_or_default().to_string();
            let desc = match words.next() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => {
                    return Err(ApiError::bad_uri(format!(
                        "Invalid $orderby direction '{other}'."
                    )));
                }
            };
            if property_value_name(table, &name).is_none() && name != table.pk() {
                return Err(no_such_property(table, &name));
            }
            orderby.push((name, desc));
        }
    }
    let skip = match get("$skiptoken") {
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| ApiError::bad_uri(format!("Invalid $skiptoken '{s}'.")))?,
        None => 0,
    };
    let page_size = req
        .prefer_value("odata.maxpagesize")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0);

    let mut rows: Vec<&Record> = store
        .rows(table.logical())
        .into_iter()
        .filter(|r| {
            link.as_ref()
                .is_none_or(|(id, attr)| r.lookup(attr).is_some_and(|(rid, _)| rid == *id))
        })
        .filter(|r| filter.as_ref().is_none_or(|f| eval(table, r, f)))
        .collect();
    if !orderby.is_empty() {
        rows.sort_by(|a, b| {
            for (name, desc) in &orderby {
                let (va, vb) = (read_property(table, a, name), read_property(table, b, name));
                let ord = match (&va, &vb) {
                    (Value::Null, Value::Null) => Ordering::Equal,
                    (Value::Null, _) => Ordering::Less,
                    (_, Value::Null) => Ordering::Greater,
                    _ => compare(&va, &vb).unwrap_or(Ordering::Equal),
                };
                let ord = if *desc { ord.reverse() } else { ord };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            a.seq.cmp(&b.seq)
        });
    }
    let total = rows.len();
    if let Some(top) = top {
        rows.truncate(top);
    }
    let limit = page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    let remaining: Vec<&Record> = rows.into_iter().skip(skip).collect();
    let more = remaining.len() > limit;
    let page: Vec<Value> = remaining
        .iter()
        .take(limit)
        .map(|r| {
            let mut m = represent(table, r, select.as_deref());
            super::expand::decorate(ctx.catalog, store, req, table, r, &expands, &mut m);
            Value::Object(m)
        })
        .collect();

    let set_path = match related {
        Some((id, coll)) => format!("{}({})/{}", parent.set(), id, coll),
        None => table.set().to_string(),
    };
    let context = match &select {
        Some(names) => ctx.context(&format!("{}({})", table.set(), names.join(","))),
        None => ctx.context(table.set()),
    };
    let mut body = Map::new();
    body.insert("@odata.context".into(), Value::String(context));
    if count {
        // count-rows.md: the count stops at 5,000 for standard tables; the two annotations say
        // whether it stopped, when `Prefer: odata.include-annotations` asks for them.
        body.insert("@odata.count".into(), Value::from(total.min(COUNT_LIMIT)));
        if req.wants_annotation("Microsoft.Dynamics.CRM.totalrecordcount") {
            body.insert(
                "@Microsoft.Dynamics.CRM.totalrecordcount".into(),
                Value::from(total.min(COUNT_LIMIT)),
            );
        }
        if req.wants_annotation("Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded") {
            body.insert(
                "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded".into(),
                Value::Bool(total > COUNT_LIMIT),
            );
        }
    }
    body.insert("value".into(), Value::Array(page));
    if more {
        let mut q: Vec<String> = req
            .query
            .split('&')
            .filter(|p| {
                !p.is_empty() && !p.starts_with("$skiptoken=") && !p.starts_with("%24skiptoken=")
            })
            .map(str::to_string)
            .collect();
        if top.is_some() {
            // The remaining rows are already bounded by the original $top.
        }
        q.push(format!("$skiptoken={}", skip + limit));
        body.insert(
            "@odata.nextLink".into(),
            Value::String(format!("{}{}?{}", ctx.api_root(), set_path, q.join("&"))),
        );
    }
    let mut resp = OpResponse::json(200, &Value::Object(body));
    resp.headers[0].1 = "application/json; odata.metadata=minimal; odata.streaming=true".into();
    if let Some(n) = page_size {
        resp.headers.push((
            "Preference-Applied".into(),
            format!("odata.maxpagesize={n}"),
        ));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_filters() {
        assert_eq!(
            parse_filter("name eq 'A''s' and revenue gt 5").unwrap(),
            Expr::And(
                Box::new(Expr::Compare("name".into(), CmpOp::Eq, json!("A's"))),
                Box::new(Expr::Compare("revenue".into(), CmpOp::Gt, json!(5)))
            )
        );
        assert!(parse_filter("name eq").is_err());
        assert!(parse_filter("(name eq 'a'").is_err());
        assert!(parse_filter("contains(name,'x') or not (a ne null)").is_ok());
        let values = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_filter(
                "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[\"O'Brian\", 'b, c', 3])"
            ),
            Ok(Expr::In("name".into(), values(&["O'Brian", "b, c", "3"])))
        );
        assert_eq!(
            parse_filter(
                "Microsoft.Dynamics.CRM.NotIn(PropertyName='name',PropertyValues=[\"a\\\"b\"])"
            ),
            Ok(Expr::Not(Box::new(Expr::In(
                "name".into(),
                values(&["a\"b"])
            ))))
        );
        assert_eq!(
            parse_filter(
                "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[\"N\\u0030\\r\", 'it\\'s \"x\"'])"
            ),
            Ok(Expr::In("name".into(), values(&["N0\r", "it's \"x\""])))
        );
        for bad in [
            "Microsoft.Dynamics.CRM.In(PropertyName='name')",
            "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[])",
            "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=['O''Brian'])",
            "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[a])",
            "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[\"a\"]",
            "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[\"a\"",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
        // Prepared, the values match text by collation and numbers by their decimal text.
        let e = prepare(
            parse_filter("Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=['0','Café'])")
                .unwrap(),
            true,
        );
        assert!(eval_with(&|_: &str| Value::from(0), &e));
        assert!(eval_with(&|_: &str| Value::String("CAFE ".into()), &e));
        assert!(!eval_with(&|_: &str| Value::from(1), &e));
    }

    #[test]
    fn text_equality_compares_by_collation_and_an_or_of_names_is_one_set() {
        let e = prepare(
            parse_filter("name eq 'cafe' or name eq 'B' or name eq 'c'").unwrap(),
            true,
        );
        let Expr::AnyOf { folded, .. } = &e else {
            panic!("not merged: {e:?}");
        };
        assert_eq!(folded.len(), 3);
        let read = |v: &'static str| move |_: &str| Value::String(v.into());
        assert!(eval_with(&read("Café  "), &e));
        assert!(!eval_with(&read("cafes"), &e));
        let sensitive = prepare(parse_filter("name eq 'cafe'").unwrap(), false);
        assert!(!eval_with(&read("Café"), &sensitive));
        assert!(eval_with(&read("CAFE "), &sensitive));
        let ne = prepare(parse_filter("name ne 'cafe'").unwrap(), true);
        assert!(!eval_with(&read("CAFÉ"), &ne));
        assert!(eval_with(&|_: &str| Value::Null, &ne));
    }
}
