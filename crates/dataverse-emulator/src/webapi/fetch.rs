//! FetchXML on collection reads (`GET accounts?fetchXml=<url-encoded xml>`), a documented subset
//! executed exactly; everything else in a FetchXML document is refused, never ignored.
//!
//! Sources: "Use FetchXml to query data" and "Page results using FetchXml"
//! (learn.microsoft.com/power-apps/developer/data-platform/fetchxml/overview, …/page-results),
//! "Use FetchXML with Web API" (…/webapi/use-fetchxml-web-api): the query goes URL-encoded in the
//! `fetchXml` parameter of the entity set of its `<entity>`; results leave out null values, always
//! carry the primary id, and lookups come as `_<name>_value`; `count` is the page size (5,000 when
//! absent), `page` the page, `top` a limit that cannot be combined with paging; with
//! `Prefer: odata.include-annotations` asking, a page that has more after it carries
//! `@Microsoft.Dynamics.CRM.morerecords` and `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie`
//! (`<cookie pagenumber="2" pagingcookie="…" istracking="False" />`, the inner cookie URL-encoded
//! twice), which the client passes back as `paging-cookie` with `page`.
//!
//! Implemented: `<fetch>` with `top`, `count`, `page`, `paging-cookie`, `mapping`, `version`,
//! `no-lock`, `distinct="false"`; `<entity name>` with `<attribute name>`, `<all-attributes/>`,
//! `<order attribute descending>`, `<filter type="and|or">` (nested) and `<condition attribute
//! operator value>` with `eq`, `ne`/`neq`, `gt`, `ge`, `lt`, `le`, `like`, `not-like`,
//! `begins-with`, `not-begin-with`, `ends-with`, `not-end-with`, `in`/`not-in` (with `<value>`
//! children), `null`, `not-null`. Text compares as the environment's collation compares it;
//! a comparison with a null column is false (SQL), but for `null` and `not-null`. The emulator
//! pages by `page` alone: the cookie it is given back is checked to be XML, not read.
//! Refused (400): link-entity, aggregates and grouping, aliases, `distinct="true"`, other
//! operators, other elements and attributes, a document that is not XML.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::crud::represent;
use super::{Ctx, OpRequest};
use crate::catalog::Table;
use crate::config::Right;
use crate::error::{ApiError, OpResponse};
use crate::state::{Record, Store, fold_text};

/// The page size when `count` is not given.
const DEFAULT_COUNT: usize = 5000;

/// A parsed `<filter>`.
#[derive(Debug)]
pub enum Filter {
    /// Every part holds (`type="and"`).
    All(Vec<Filter>),
    /// One part holds (`type="or"`).
    Any(Vec<Filter>),
    /// `<condition attribute operator value>`.
    Condition {
        /// The column.
        attribute: String,
        /// The FetchXML operator (`eq`, `like`, `in`, ...).
        operator: String,
        /// Its values, as written.
        values: Vec<String>,
    },
}

/// What a `<fetch>` asks.
#[derive(Debug)]
struct Fetch {
    columns: Option<Vec<String>>,
    orders: Vec<(String, bool)>,
    filter: Option<Filter>,
    top: Option<usize>,
    count: Option<usize>,
    page: usize,
}

fn unsupported(what: &str) -> ApiError {
    ApiError::emulator_limit(format!("{what} in fetchXml"))
}

/// `GET {set}?fetchXml=…`.
pub fn execute(
    ctx: &Ctx,
    store: &Store,
    req: &OpRequest,
    table: &Table,
    xml: &str,
) -> Result<OpResponse, ApiError> {
    ctx.user.require(table, Right::Read)?;
    if let Some((other, _)) = req
        .query_pairs()
        .into_iter()
        .find(|(k, _)| k != "fetchXml" && !k.is_empty())
    {
        return Err(unsupported(&format!(
            "the query option {other} beside fetchXml (the query belongs in the FetchXML)"
        )));
    }
    let fetch = parse(xml, table)?;
    let ai = store.accent_insensitive;
    let mut rows: Vec<&Record> = store
        .rows(table.logical())
        .into_iter()
        .filter(|r| {
            fetch
                .filter
                .as_ref()
                .is_none_or(|f| matches(r, f, ai, table.pk()))
        })
        .collect();
    rows.sort_by(|a, b| {
        for (name, descending) in &fetch.orders {
            let ord = order(a.fields.get(name), b.fields.get(name));
            let ord = if *descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.seq.cmp(&b.seq)
    });
    let (skip, take) = match fetch.top {
        Some(top) => (0, top),
        None => {
            let count = fetch.count.unwrap_or(DEFAULT_COUNT);
            ((fetch.page - 1) * count, count)
        }
    };
    let after: Vec<&Record> = rows.into_iter().skip(skip).collect();
    let more = fetch.top.is_none() && after.len() > take;
    let page: Vec<&Record> = after.into_iter().take(take).collect();
    let select: Option<Vec<String>> = fetch.columns.as_ref().map(|cols| {
        cols.iter()
            .filter(|c| *c != table.pk())
            .map(|c| property_name(table, c))
            .collect()
    });
    let value: Vec<Value> = page
        .iter()
        .map(|r| {
            let mut m = represent(table, r, select.as_deref());
            // FetchXML leaves null values out.
            m.retain(|_, v| !v.is_null());
            Value::Object(m)
        })
        .collect();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(ctx.context(table.set())),
    );
    body.insert("value".into(), Value::Array(value));
    if more && req.wants_annotation("Microsoft.Dynamics.CRM.fetchxmlpagingcookie") {
        let (first, last) = (page.first(), page.last());
        let inner = format!(
            "<cookie page=\"{}\"><{pk} last=\"{{{}}}\" first=\"{{{}}}\" /></cookie>",
            fetch.page,
            last.map(|r| r.id.to_string().to_uppercase())
                .unwrap_or_default(),
            first
                .map(|r| r.id.to_string().to_uppercase())
                .unwrap_or_default(),
            pk = table.pk()
        );
        let twice = encode(&encode(&inner));
        body.insert(
            "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie".into(),
            Value::String(format!(
                "<cookie pagenumber=\"{}\" pagingcookie=\"{twice}\" istracking=\"False\" />",
                fetch.page + 1
            )),
        );
    }
    if req.wants_annotation("Microsoft.Dynamics.CRM.morerecords") {
        body.insert(
            "@Microsoft.Dynamics.CRM.morerecords".into(),
            Value::Bool(more),
        );
    }
    Ok(OpResponse::json(200, &Value::Object(body)))
}

/// The Web API name of column `c` (`_parentaccountid_value` for a lookup).
fn property_name(table: &Table, c: &str) -> String {
    match table.columns.get(c).map(|col| col.kind) {
        Some(k) if k.is_lookup() => format!("_{c}_value"),
        _ => c.to_string(),
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn parse(xml: &str, table: &Table) -> Result<Fetch, ApiError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| {
        ApiError::invalid_argument(format!("The fetchXml is not well-formed XML: {e}"))
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "fetch" {
        return Err(ApiError::invalid_argument(format!(
            "The fetchXml's root element is '{}'; expected 'fetch'",
            root.tag_name().name()
        )));
    }
    let mut fetch = Fetch {
        columns: Some(Vec::new()),
        orders: Vec::new(),
        filter: None,
        top: None,
        count: None,
        page: 1,
    };
    for a in root.attributes() {
        let number = |what: &str| {
            a.value()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ApiError::invalid_argument(format!(
                        "The fetch attribute {what} must be a positive whole number, not '{}'",
                        a.value()
                    ))
                })
        };
        match a.name() {
            "top" => fetch.top = Some(number("top")?),
            "count" => fetch.count = Some(number("count")?),
            "page" => fetch.page = number("page")?,
            "paging-cookie" => {
                roxmltree::Document::parse(a.value()).map_err(|e| {
                    ApiError::invalid_argument(format!("The paging-cookie is not XML: {e}"))
                })?;
            }
            "mapping" | "version" | "no-lock" => {}
            "distinct" if a.value() == "false" => {}
            other => {
                return Err(unsupported(&format!(
                    "the fetch attribute {other}=\"{}\"",
                    a.value()
                )));
            }
        }
    }
    if fetch.top.is_some() && (fetch.count.is_some() || fetch.page != 1) {
        return Err(ApiError::invalid_argument(
            "The top attribute can't be specified with paging attribute page or count.",
        ));
    }
    let mut entities = root.children().filter(roxmltree::Node::is_element);
    let entity = match (entities.next(), entities.next()) {
        (Some(e), None) if e.tag_name().name() == "entity" => e,
        _ => {
            return Err(ApiError::invalid_argument(
                "A fetch holds exactly one entity element",
            ));
        }
    };
    let name = entity.attribute("name").unwrap_or_default();
    if name != table.logical() {
        return Err(ApiError::invalid_argument(format!(
            "The entity '{name}' of the fetchXml is not the table of the entity set '{}' ({})",
            table.set(),
            table.logical()
        )));
    }
    for child in entity.children().filter(roxmltree::Node::is_element) {
        match child.tag_name().name() {
            "attribute" => {
                only(&child, &["name"])?;
                let c = column(table, &child, "name")?;
                if let Some(cols) = &mut fetch.columns {
                    cols.push(c);
                }
            }
            "all-attributes" => fetch.columns = None,
            "order" => {
                only(&child, &["attribute", "descending"])?;
                let c = column(table, &child, "attribute")?;
                fetch
                    .orders
                    .push((c, child.attribute("descending") == Some("true")));
            }
            "filter" => {
                if fetch.filter.is_some() {
                    return Err(unsupported("a second filter element directly under entity"));
                }
                fetch.filter = Some(filter(table, &child)?);
            }
            other => return Err(unsupported(&format!("the element {other}"))),
        }
    }
    if fetch.columns.as_ref().is_some_and(Vec::is_empty) {
        // No attribute asked: the primary id only.
        fetch.columns = Some(vec![table.pk().to_string()]);
    }
    Ok(fetch)
}

/// Refuses an attribute of `node` outside `allowed`.
fn only(node: &roxmltree::Node, allowed: &[&str]) -> Result<(), ApiError> {
    match node.attributes().find(|a| !allowed.contains(&a.name())) {
        Some(a) => Err(unsupported(&format!(
            "the attribute {} of {}",
            a.name(),
            node.tag_name().name()
        ))),
        None => Ok(()),
    }
}

/// The column `node`'s attribute `attr` names, which must be one of the table's.
fn column(table: &Table, node: &roxmltree::Node, attr: &str) -> Result<String, ApiError> {
    let name = node.attribute(attr).ok_or_else(|| {
        ApiError::invalid_argument(format!(
            "The {} element needs the attribute {attr}",
            node.tag_name().name()
        ))
    })?;
    if name == table.pk() || table.columns.contains_key(name) {
        Ok(name.to_string())
    } else {
        Err(unknown_attribute(table, name))
    }
}

/// A query naming a column the table does not have: the service's words, as recalled from its
/// responses (UNVERIFIED in PROTOCOL.md).
pub fn unknown_attribute(table: &Table, name: &str) -> ApiError {
    ApiError::new(
        400,
        "0x80041103",
        format!(
            "'{}' entity doesn't contain attribute with Name = '{name}' and NameMapping = 'Logical'.",
            table.logical()
        ),
    )
}

const OPERATORS: &[&str] = &[
    "eq",
    "ne",
    "neq",
    "gt",
    "ge",
    "lt",
    "le",
    "like",
    "not-like",
    "begins-with",
    "not-begin-with",
    "ends-with",
    "not-end-with",
    "in",
    "not-in",
    "null",
    "not-null",
];

fn filter(table: &Table, node: &roxmltree::Node) -> Result<Filter, ApiError> {
    only(node, &["type"])?;
    let mut parts = Vec::new();
    for child in node.children().filter(roxmltree::Node::is_element) {
        match child.tag_name().name() {
            "filter" => parts.push(filter(table, &child)?),
            "condition" => {
                only(&child, &["attribute", "operator", "value"])?;
                let attribute = column(table, &child, "attribute")?;
                let operator = child.attribute("operator").unwrap_or_default().to_string();
                if !OPERATORS.contains(&operator.as_str()) {
                    return Err(unsupported(&format!("the condition operator '{operator}'")));
                }
                let mut values: Vec<String> = child
                    .attribute("value")
                    .map(str::to_string)
                    .into_iter()
                    .collect();
                for v in child.children().filter(roxmltree::Node::is_element) {
                    if v.tag_name().name() != "value" {
                        return Err(unsupported(&format!(
                            "the element {} in a condition",
                            v.tag_name().name()
                        )));
                    }
                    values.push(v.text().unwrap_or_default().to_string());
                }
                let wanted = match operator.as_str() {
                    "null" | "not-null" => 0..=0,
                    "in" | "not-in" => 1..=usize::MAX,
                    _ => 1..=1,
                };
                if !wanted.contains(&values.len()) {
                    return Err(ApiError::invalid_argument(format!(
                        "The condition operator '{operator}' on {attribute} takes {} value(s); it has {}",
                        match operator.as_str() {
                            "null" | "not-null" => "no",
                            "in" | "not-in" => "one or more",
                            _ => "one",
                        },
                        values.len()
                    )));
                }
                parts.push(Filter::Condition {
                    attribute,
                    operator,
                    values,
                });
            }
            other => return Err(unsupported(&format!("the element {other} in a filter"))),
        }
    }
    match node.attribute("type").unwrap_or("and") {
        "and" => Ok(Filter::All(parts)),
        "or" => Ok(Filter::Any(parts)),
        other => Err(ApiError::invalid_argument(format!(
            "The filter type '{other}' is not and or or"
        ))),
    }
}

/// Whether record `r` (of a table whose primary id is `pk`) passes `f`.
pub fn matches(r: &Record, f: &Filter, ai: bool, pk: &str) -> bool {
    match f {
        Filter::All(parts) => parts.iter().all(|p| matches(r, p, ai, pk)),
        Filter::Any(parts) => parts.iter().any(|p| matches(r, p, ai, pk)),
        Filter::Condition {
            attribute,
            operator,
            values,
        } => {
            let v = if attribute == pk {
                Value::String(r.id.to_string())
            } else {
                r.fields.get(attribute).cloned().unwrap_or(Value::Null)
            };
            condition(&v, operator, values, ai)
        }
    }
}

/// A column value as comparable text: a string as the collation folds it, a number by value, a
/// lookup by its id, a Boolean as 1/0. `None` for null.
fn text_of(v: &Value, ai: bool) -> Option<Key> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Key::Text(fold_text(s.trim_matches(['{', '}']), ai))),
        Value::Number(n) => n.as_f64().map(Key::Number),
        Value::Bool(b) => Some(Key::Number(if *b { 1.0 } else { 0.0 })),
        Value::Object(o) => o
            .get("id")
            .and_then(Value::as_str)
            .map(|id| Key::Text(id.to_lowercase())),
        Value::Array(_) => None,
    }
}

#[derive(Debug, PartialEq, PartialOrd)]
enum Key {
    Text(String),
    Number(f64),
}

/// A condition's value read as `column` holds them.
fn value_key(column: &Key, text: &str, ai: bool) -> Option<Key> {
    match column {
        Key::Number(_) => match text.trim() {
            "true" => Some(Key::Number(1.0)),
            "false" => Some(Key::Number(0.0)),
            t => t.parse::<f64>().ok().map(Key::Number),
        },
        Key::Text(_) => Some(Key::Text(fold_text(text.trim_matches(['{', '}']), ai))),
    }
}

/// Whether column value `v` passes `operator` with `values`.
pub fn condition(v: &Value, operator: &str, values: &[String], ai: bool) -> bool {
    let column = text_of(v, ai);
    match operator {
        "null" => return column.is_none(),
        "not-null" => return column.is_some(),
        _ => {}
    }
    // SQL: any other comparison with a null column is not true.
    let Some(column) = column else {
        return false;
    };
    let keys: Vec<Key> = values
        .iter()
        .filter_map(|t| value_key(&column, t, ai))
        .collect();
    let first = keys.first();
    let like = |pattern: &str| match &column {
        Key::Text(s) => like_match(s, &fold_text(pattern, ai)),
        Key::Number(_) => false,
    };
    let pattern = values.first().map(String::as_str).unwrap_or_default();
    match operator {
        "eq" => first == Some(&column),
        "ne" | "neq" => first.is_some_and(|k| k != &column),
        "gt" => first.is_some_and(|k| column.partial_cmp(k) == Some(Ordering::Greater)),
        "ge" => first.is_some_and(|k| {
            matches!(
                column.partial_cmp(k),
                Some(Ordering::Greater | Ordering::Equal)
            )
        }),
        "lt" => first.is_some_and(|k| column.partial_cmp(k) == Some(Ordering::Less)),
        "le" => first.is_some_and(|k| {
            matches!(
                column.partial_cmp(k),
                Some(Ordering::Less | Ordering::Equal)
            )
        }),
        "in" => keys.contains(&column),
        "not-in" => !keys.contains(&column),
        "like" => like(pattern),
        "not-like" => !like(pattern),
        "begins-with" => like(&format!("{}%", escape_like(pattern))),
        "not-begin-with" => !like(&format!("{}%", escape_like(pattern))),
        "ends-with" => like(&format!("%{}", escape_like(pattern))),
        "not-end-with" => !like(&format!("%{}", escape_like(pattern))),
        _ => false,
    }
}

/// `text` with the LIKE wildcards taken literally (`[%]`, `[_]`).
fn escape_like(text: &str) -> String {
    text.replace('[', "[[]")
        .replace('%', "[%]")
        .replace('_', "[_]")
}

/// SQL LIKE: `%` any run, `_` one character, `[abc]` one of them; both sides already folded.
fn like_match(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Positions in `s` the pattern so far can end at.
    let mut at = vec![false; s.len() + 1];
    at[0] = true;
    let mut i = 0;
    while i < p.len() {
        let mut next = vec![false; s.len() + 1];
        match p[i] {
            '%' => {
                let mut reached = false;
                for j in 0..=s.len() {
                    reached |= at[j];
                    next[j] = reached;
                }
                i += 1;
            }
            '[' if p[i + 1..].contains(&']') => {
                let end = i + 1 + p[i + 1..].iter().position(|c| *c == ']').unwrap_or(0);
                let set: Vec<char> = p[i + 1..end].to_vec();
                for j in 0..s.len() {
                    if at[j] && set.contains(&s[j]) {
                        next[j + 1] = true;
                    }
                }
                i = end + 1;
            }
            c => {
                for j in 0..s.len() {
                    if at[j] && (c == '_' || s[j] == c) {
                        next[j + 1] = true;
                    }
                }
                i += 1;
            }
        }
        at = next;
    }
    at[s.len()]
}

fn order(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let key = |v: Option<&Value>| v.and_then(|v| text_of(v, true));
    match (key(a), key(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_takes_sql_wildcards() {
        assert!(like_match("contoso ltd", "cont%"));
        assert!(like_match("contoso ltd", "%ltd"));
        assert!(like_match("contoso", "c_ntoso"));
        assert!(like_match("contoso", "[bc]ontoso"));
        assert!(!like_match("contoso", "c_toso"));
        assert!(like_match("50% off", &format!("{}%", escape_like("50%"))));
        assert!(!like_match("50 off", &format!("{}%", escape_like("50%"))));
    }

    #[test]
    fn conditions_compare_as_sql_does() {
        let s = |t: &str| Value::String(t.into());
        let v = |t: &[&str]| t.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(condition(&s("Café  "), "eq", &v(&["CAFE"]), true));
        assert!(!condition(&Value::Null, "ne", &v(&["x"]), true));
        assert!(condition(&Value::Null, "null", &[], true));
        assert!(condition(&Value::from(42), "in", &v(&["1", "42"]), true));
        assert!(
            condition(&Value::from(42), "gt", &v(&["9"]), true),
            "numbers by value, not text"
        );
        assert!(condition(&s("Contoso"), "begins-with", &v(&["cont"]), true));
        assert!(condition(&Value::Bool(true), "eq", &v(&["1"]), true));
    }
}
