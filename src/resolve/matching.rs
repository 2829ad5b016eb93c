//! What lookups by match have found, and how a row's values are matched to the records a query
//! returned. Pure: no network.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use uuid::Uuid;

use crate::keys::Collation;
use crate::mapping::MatchLookup;
use crate::mapping::spec::OnMany;
use crate::odata::Operation;

/// What a lookup's values matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// One record (or the first created, with `on_many = "first"`).
    One(Uuid),
    /// None.
    Nothing,
    /// Several: their ids, in the order the service gave them, and how many there were.
    Many(Vec<Uuid>, usize),
}

/// Why a row's lookup by match could not be bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// Which lookup.
    pub lookup: usize,
    /// The source field(s) its values come from.
    pub field: Option<String>,
    /// What was looked for and what was found.
    pub reason: String,
}

/// Every answer a job's lookups by match have had, by the values' identity under the
/// environment's collation.
pub struct Matches {
    lookups: Vec<MatchLookup>,
    collation: Collation,
    found: Vec<HashMap<String, Found>>,
}

/// Candidates named in a reject.
const SHOWN: usize = 5;

impl Matches {
    /// Nothing found yet for `lookups`.
    pub fn new(lookups: Vec<MatchLookup>, collation: Collation) -> Matches {
        let found = vec![HashMap::new(); lookups.len()];
        Matches {
            lookups,
            collation,
            found,
        }
    }

    /// Lookup `i`.
    pub fn lookup(&self, i: usize) -> &MatchLookup {
        &self.lookups[i]
    }

    /// What lookup `i` found for `values`, if it was asked.
    pub fn get(&self, i: usize, values: &[String]) -> Option<&Found> {
        self.found[i].get(&self.identity(values.iter().map(String::as_str)))
    }

    /// The values of `ops`' lookups not asked for yet, per lookup, each once, in the order met.
    pub fn missing<'a>(
        &self,
        ops: impl Iterator<Item = &'a Operation>,
    ) -> Vec<(usize, Vec<Vec<String>>)> {
        let mut seen: Vec<HashSet<String>> = vec![HashSet::new(); self.lookups.len()];
        let mut wanted: Vec<Vec<Vec<String>>> = vec![Vec::new(); self.lookups.len()];
        for op in ops {
            for u in &op.lookups {
                let id = self.identity(u.values.iter().map(String::as_str));
                if !self.found[u.lookup].contains_key(&id) && seen[u.lookup].insert(id) {
                    wanted[u.lookup].push(u.values.clone());
                }
            }
        }
        wanted
            .into_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .collect()
    }

    /// Keeps what a query for `asked` returned (`rows`, with `primary` and the lookup's columns):
    /// each value gets the records whose columns equal it, under the collation.
    pub fn learn(&mut self, lookup: usize, primary: &str, asked: &[Vec<String>], rows: &[Value]) {
        let l = &self.lookups[lookup];
        let mut by_identity: HashMap<String, Vec<Uuid>> = HashMap::new();
        for row in rows {
            let Some(id) = row
                .get(primary)
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
            else {
                continue;
            };
            let texts: Option<Vec<(bool, String)>> =
                l.columns.iter().map(|c| json_text(row.get(c)?)).collect();
            let Some(texts) = texts else { continue };
            let identity = self.identity_of_texts(texts.iter().map(|(q, t)| (*q, t.as_str())));
            let ids = by_identity.entry(identity).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        for values in asked {
            let identity = self.identity(values.iter().map(String::as_str));
            let found = match by_identity.get(&identity).map(Vec::as_slice) {
                None | Some([]) => Found::Nothing,
                Some([one]) => Found::One(*one),
                Some(many) if l.on_many == OnMany::First => Found::One(many[0]),
                Some(many) => Found::Many(many.iter().take(SHOWN).copied().collect(), many.len()),
            };
            self.found[lookup].insert(identity, found);
        }
    }

    /// Binds `op`'s lookups by match to the records found, or says why one cannot be bound
    /// (then `op` is left as it was).
    pub fn apply(&self, op: &mut Operation) -> Result<(), Miss> {
        let mut ids = Vec::with_capacity(op.lookups.len());
        for u in &op.lookups {
            let l = &self.lookups[u.lookup];
            let condition = || {
                l.columns
                    .iter()
                    .zip(&u.values)
                    .map(|(c, v)| format!("{c} = {v}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            };
            let miss = |reason: String| Miss {
                lookup: u.lookup,
                field: {
                    let f: Vec<&str> = l.fields.iter().flatten().map(String::as_str).collect();
                    (!f.is_empty()).then(|| f.join(", "))
                },
                reason,
            };
            match self.get(u.lookup, &u.values) {
                Some(Found::One(id)) => ids.push(*id),
                Some(Found::Nothing) => {
                    return Err(miss(format!(
                        "no {} record has {} (compared as the environment compares text: {}); fix the value, or create the record first",
                        l.entity_set,
                        condition(),
                        self.rules()
                    )));
                }
                Some(Found::Many(shown, count)) => {
                    let list: Vec<String> = shown.iter().map(Uuid::to_string).collect();
                    let more = if *count > shown.len() {
                        format!(" and {} more", count - shown.len())
                    } else {
                        String::new()
                    };
                    return Err(miss(format!(
                        "{count} {} records have {}: {}{more}; make the value unique, or set on_many = \"first\" to bind the one created first",
                        l.entity_set,
                        condition(),
                        list.join(", ")
                    )));
                }
                None => {
                    return Err(miss(format!(
                        "{} was not looked up in {} (a defect: please report it)",
                        condition(),
                        l.entity_set
                    )));
                }
            }
        }
        let Some(body) = op.body.as_mut() else {
            op.lookups.clear();
            return Ok(());
        };
        for (u, id) in op.lookups.iter().zip(&ids).rev() {
            body.insert_str(u.at, &format!("({id})"));
        }
        op.lookups.clear();
        Ok(())
    }

    /// The matching rules, as a reject states them.
    fn rules(&self) -> &'static str {
        match self.collation {
            Collation::AccentInsensitive => "case, accents and trailing spaces ignored",
            Collation::AccentSensitive => "case and trailing spaces ignored, accents not",
        }
    }

    /// The identity of a row's values (OData literals).
    fn identity<'a>(&self, literals: impl Iterator<Item = &'a str>) -> String {
        let texts: Vec<(bool, String)> = literals.map(literal_text).collect();
        self.identity_of_texts(texts.iter().map(|(q, t)| (*q, t.as_str())))
    }

    /// The identity of values given as (is a string, text): a string folded as the collation
    /// folds a quoted key value; a number by its value (`1.50` = `1.5`); anything else (a GUID,
    /// a date, `true`) in lower case, as a string holding it would fold. Joined.
    fn identity_of_texts<'a>(&self, texts: impl Iterator<Item = (bool, &'a str)>) -> String {
        let mut out = String::new();
        for (string, t) in texts {
            match t.parse::<f64>() {
                Ok(f) if !string && f.is_finite() => out.push_str(&format!("{f}")),
                _ => {
                    let quoted = format!("'{}'", t.replace('\'', "''"));
                    let folded = self.collation.fold(&quoted);
                    out.push_str(&folded[1..folded.len() - 1]);
                }
            }
            out.push('\u{1f}');
        }
        out
    }
}

/// An OData literal's value: (true, a string's content) for `'O''Neil'` (`O'Neil`), (false, as
/// written) for anything else.
fn literal_text(literal: &str) -> (bool, String) {
    match literal
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
    {
        Some(inner) => (true, inner.replace("''", "'")),
        None => (false, literal.to_string()),
    }
}

/// A JSON column value as (is a string, text), `None` for null (which matches nothing).
fn json_text(v: &Value) -> Option<(bool, String)> {
    match v {
        Value::String(s) => Some((true, s.clone())),
        Value::Number(n) => Some((false, n.to_string())),
        Value::Bool(b) => Some((false, b.to_string())),
        _ => None,
    }
}

/// `$filter` texts asking for `values` of `columns`, each at most `max` bytes long (but for a
/// single condition longer than that): `name eq 'A' or name eq 'B'`, or with several columns
/// `(name eq 'A' and city eq 'X') or (…)`.
pub fn filters(columns: &[String], values: &[Vec<String>], max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for v in values {
        let parts: Vec<String> = columns
            .iter()
            .zip(v)
            .map(|(c, v)| format!("{c} eq {v}"))
            .collect();
        let term = if parts.len() == 1 {
            parts.into_iter().next().unwrap_or_default()
        } else {
            format!("({})", parts.join(" and "))
        };
        if !current.is_empty() && current.len() + 4 + term.len() > max {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push_str(" or ");
        }
        current.push_str(&term);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::{Method, Precondition, Unresolved};
    use crate::source::RowPos;

    fn lookup(columns: &[&str], on_many: OnMany) -> MatchLookup {
        MatchLookup {
            column: "parentcustomerid_account".into(),
            entity_set: "accounts".into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            fields: vec![Some("Company".into())],
            on_many,
        }
    }

    fn op(values: &[&str]) -> Operation {
        let body = r#"{"lastname":"A","parentcustomerid_account@odata.bind":"/accounts"}"#;
        Operation {
            row: RowPos { row: 1, line: 2 },
            method: Method::Post,
            url: "contacts".into(),
            precondition: Precondition::None,
            body: Some(body.into()),
            key: String::new(),
            lookups: vec![Unresolved {
                at: body.len() - 2,
                lookup: 0,
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
        }
    }

    const A: &str = "11111111-1111-1111-1111-111111111111";
    const B: &str = "22222222-2222-2222-2222-222222222222";

    fn rows(pairs: &[(&str, &str)]) -> Vec<Value> {
        pairs
            .iter()
            .map(|(id, name)| serde_json::json!({ "accountid": id, "name": name }))
            .collect()
    }

    #[test]
    fn a_value_binds_the_one_record_equal_to_it_under_the_collation() {
        let mut m = Matches::new(
            vec![lookup(&["name"], OnMany::Reject)],
            Collation::AccentInsensitive,
        );
        let mut o = op(&["'cafe  '"]);
        let missing = m.missing(std::iter::once(&o));
        assert_eq!(missing, vec![(0, vec![vec!["'cafe  '".to_string()]])]);
        m.learn(0, "accountid", &missing[0].1, &rows(&[(A, "Café")]));
        m.apply(&mut o).unwrap();
        assert_eq!(
            o.body.as_deref(),
            Some(
                format!(
                    r#"{{"lastname":"A","parentcustomerid_account@odata.bind":"/accounts({A})"}}"#
                )
                .as_str()
            )
        );
        assert!(o.lookups.is_empty());
        assert!(m.missing(std::iter::once(&op(&["'CAFÉ'"]))).is_empty());
    }

    #[test]
    fn accents_count_under_an_accent_sensitive_collation() {
        let mut m = Matches::new(
            vec![lookup(&["name"], OnMany::Reject)],
            Collation::AccentSensitive,
        );
        let asked = vec![vec!["'cafe'".to_string()]];
        m.learn(0, "accountid", &asked, &rows(&[(A, "Café")]));
        let err = m.apply(&mut op(&["'cafe'"])).unwrap_err();
        assert_eq!(
            err.reason,
            "no accounts record has name = 'cafe' (compared as the environment compares text: case and trailing spaces ignored, accents not); fix the value, or create the record first"
        );
        assert_eq!(err.field.as_deref(), Some("Company"));
    }

    #[test]
    fn several_matches_reject_listing_them_unless_the_first_is_asked_for() {
        let asked = vec![vec!["'Contoso'".to_string()]];
        let found = rows(&[(A, "Contoso"), (B, "CONTOSO")]);
        let mut m = Matches::new(
            vec![lookup(&["name"], OnMany::Reject)],
            Collation::AccentInsensitive,
        );
        m.learn(0, "accountid", &asked, &found);
        let mut o = op(&["'Contoso'"]);
        let before = o.clone();
        let err = m.apply(&mut o).unwrap_err();
        assert_eq!(
            err.reason,
            format!(
                "2 accounts records have name = 'Contoso': {A}, {B}; make the value unique, or set on_many = \"first\" to bind the one created first"
            )
        );
        assert_eq!(o, before, "a row that cannot be bound is left as it was");
        let mut m = Matches::new(
            vec![lookup(&["name"], OnMany::First)],
            Collation::AccentInsensitive,
        );
        m.learn(0, "accountid", &asked, &found);
        m.apply(&mut o).unwrap();
        assert!(o.body.unwrap().ends_with(&format!("/accounts({A})\"}}")));
    }

    #[test]
    fn numbers_and_several_columns_match_by_value() {
        let mut m = Matches::new(
            vec![lookup(&["name", "employees"], OnMany::Reject)],
            Collation::AccentInsensitive,
        );
        let asked = vec![vec!["'O''Neil'".to_string(), "42".to_string()]];
        let found = vec![
            serde_json::json!({"accountid": A, "name": "o'neil", "employees": 42}),
            serde_json::json!({"accountid": B, "name": "o'neil", "employees": 43}),
        ];
        m.learn(0, "accountid", &asked, &found);
        assert_eq!(m.get(0, &asked[0]), Some(&Found::One(A.parse().unwrap())));
    }

    #[test]
    fn filters_split_to_stay_short_and_group_several_columns() {
        let values: Vec<Vec<String>> = (0..10).map(|i| vec![format!("'N{i}'")]).collect();
        let f = filters(&["name".into()], &values, 40);
        assert_eq!(f[0], "name eq 'N0' or name eq 'N1'");
        assert_eq!(f.len(), 5);
        let two = filters(
            &["name".into(), "city".into()],
            &[
                vec!["'A'".into(), "'X'".into()],
                vec!["'B'".into(), "'Y'".into()],
            ],
            1000,
        );
        assert_eq!(
            two,
            vec!["(name eq 'A' and city eq 'X') or (name eq 'B' and city eq 'Y')"]
        );
    }
}
