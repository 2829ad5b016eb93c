//! What a mapping leaves to the environment, filled from the table's metadata before any row is
//! converted: a choice's labels, a Boolean column's own labels, a text column's length.
//!
//! The same filling runs before a live run's first write (with the metadata the pre-flight check
//! read) and in `validate` and the dry run given `--metadata DIR`, so the three convert a row
//! alike. What the mapping says always wins: a `map`, a `max_length`.

use crate::mapping::convert::{BoolLabels, ChoiceMap, Converter};
use crate::mapping::spec::{FieldKind, Input, MappingError, MappingSpec, ValueSpec};
use crate::toml_reader::Ctx;

use super::metadata::{ColumnMetadata, OptionMetadata, TableMetadata};

/// What [`complete`] took from the metadata.
#[derive(Debug, Default, PartialEq)]
pub struct Filled {
    /// Text fields that took their column's length: (column, length).
    pub lengths: Vec<(String, usize)>,
    /// Choice and Boolean fields that took labels: what each took.
    pub labels: Vec<String>,
}

impl Filled {
    /// One line for the run's output, or `None` when nothing was taken.
    pub fn line(&self) -> Option<String> {
        let mut parts = self.labels.clone();
        if !self.lengths.is_empty() {
            let lengths: Vec<String> = self
                .lengths
                .iter()
                .map(|(c, n)| format!("{c}={n}"))
                .collect();
            parts.push(format!("max_length {}", lengths.join(", ")));
        }
        (!parts.is_empty()).then(|| format!("from the table's metadata: {}", parts.join("; ")))
    }
}

/// Fills `spec`'s gaps from `table`: a `choice`/`choices` field without `map` takes the option
/// set's labels (`language`'s first, then every other language's, matched ignoring case); a
/// `bool` field also accepts the column's two labels; a `text` field without `max_length` takes
/// the column's.
///
/// Then a constant or a default that is a label of such a column is converted; one that is not
/// one of its labels is the error, at its place in the mapping.
pub fn complete(
    spec: &mut MappingSpec,
    table: &TableMetadata,
    language: Option<u32>,
) -> Result<Filled, MappingError> {
    let language = language.map(|l| l.to_string());
    let mut filled = Filled::default();
    let ctx = Ctx {
        file: &spec.file,
        text: &spec.text,
    };
    for field in &mut spec.fields {
        let FieldKind::Value(value) = &mut field.kind else {
            continue;
        };
        let Some(column) = table.columns.get(&field.column) else {
            continue;
        };
        let text_before = matches!(value.converter, Converter::Text { max_length: None });
        if let Some(what) = fill(&mut value.converter, column, language.as_deref()) {
            match &value.converter {
                Converter::Text {
                    max_length: Some(n),
                } if text_before => filled.lengths.push((field.column.clone(), *n)),
                _ => filled.labels.push(format!("'{}' {what}", field.column)),
            }
        }
        if !value.converter.labels_from_metadata() {
            convert_labels(&ctx, &field.column, value)?;
        }
    }
    Ok(filled)
}

/// Converts `value`'s constant and default that waited for the column's labels.
fn convert_labels(ctx: &Ctx<'_>, column: &str, value: &mut ValueSpec) -> Result<(), MappingError> {
    for later in std::mem::take(&mut value.labels_later) {
        let mut json = String::new();
        if later.default {
            let text = value.default_text.clone().unwrap_or_default();
            value
                .converter
                .write_json(text.trim(), &mut json)
                .map_err(|e| {
                    ctx.err(later.span.clone(), format!("field '{column}': default {e}"))
                })?;
            value.default = Some(json);
        } else if let Input::Constant {
            text,
            json: converted,
        } = &mut value.input
        {
            value.converter.write_json(text, &mut json).map_err(|e| {
                ctx.err(
                    later.span.clone(),
                    format!("field '{column}': constant value {e}"),
                )
            })?;
            *converted = json;
        }
    }
    Ok(())
}

/// Fills one converter; says what it took, or `None` when it took nothing.
fn fill(
    converter: &mut Converter,
    column: &ColumnMetadata,
    language: Option<&str>,
) -> Option<String> {
    match converter {
        Converter::Choice(map) | Converter::Choices { map, .. }
            if map.is_empty() && !column.options.is_empty() =>
        {
            let (labels, aliases) = option_labels(&column.options, language);
            let listed = labels
                .iter()
                .take(6)
                .map(|(l, _)| l.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let more = if labels.len() > 6 { ", …" } else { "" };
            let what = format!(
                "takes the labels of its {} options ({listed}{more})",
                labels.len()
            );
            *map = ChoiceMap::of_options(labels, aliases);
            Some(what)
        }
        Converter::Bool(labels)
            if column.attribute_type == "Boolean"
                && labels.yes.is_empty()
                && labels.no.is_empty() =>
        {
            let words = |value: i64| -> Vec<String> {
                column
                    .options
                    .iter()
                    .filter(|o| o.value == value)
                    .flat_map(|o| o.labels.values())
                    .map(|l| l.trim().to_lowercase())
                    .filter(|l| !l.is_empty())
                    .collect()
            };
            let (yes, no) = (words(1), words(0));
            if yes.is_empty() || no.is_empty() || yes.iter().any(|y| no.contains(y)) {
                return None;
            }
            // Labels that are the usual words already (Yes / No) add nothing.
            let usual = |words: &[String], meaning: bool| {
                words
                    .iter()
                    .all(|w| crate::mapping::convert::parse_bool(w) == Ok(meaning))
            };
            if usual(&yes, true) && usual(&no, false) {
                return None;
            }
            let what = format!(
                "also takes the column's labels '{}' / '{}'",
                pick(&column.options, 1, language),
                pick(&column.options, 0, language)
            );
            *labels = BoolLabels { yes, no };
            Some(what)
        }
        Converter::Text { max_length } if max_length.is_none() => {
            let n = usize::try_from(column.max_length?)
                .ok()
                .filter(|n| *n > 0)?;
            *max_length = Some(n);
            Some(format!("takes the column's max_length = {n}"))
        }
        _ => None,
    }
}

/// Labels and their option values.
type Labels = Vec<(String, i64)>;

/// Each option's label in `language` (else its first) and, as aliases, its other labels.
fn option_labels(options: &[OptionMetadata], language: Option<&str>) -> (Labels, Labels) {
    let mut labels = Vec::new();
    let mut aliases = Vec::new();
    for o in options {
        let main = pick(options, o.value, language);
        for l in o.labels.values() {
            if *l != main && !l.trim().is_empty() {
                aliases.push((l.clone(), o.value));
            }
        }
        if !main.trim().is_empty() {
            labels.push((main, o.value));
        }
    }
    (labels, aliases)
}

/// The label of option `value` in `language`, else English, else its first.
fn pick(options: &[OptionMetadata], value: i64, language: Option<&str>) -> String {
    let Some(o) = options.iter().find(|o| o.value == value) else {
        return String::new();
    };
    language
        .and_then(|l| o.labels.get(l))
        .or_else(|| o.labels.get("1033"))
        .or_else(|| o.labels.values().next())
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(value: i64, labels: &[(&str, &str)]) -> OptionMetadata {
        OptionMetadata {
            value,
            labels: labels
                .iter()
                .map(|(l, t)| (l.to_string(), t.to_string()))
                .collect(),
        }
    }

    fn column(kind: &str, options: Vec<OptionMetadata>, max_length: Option<i64>) -> ColumnMetadata {
        ColumnMetadata {
            attribute_type: kind.into(),
            options,
            max_length,
            ..ColumnMetadata::default()
        }
    }

    #[test]
    fn a_choice_without_map_takes_the_labels_in_the_users_language_then_any() {
        let col = column(
            "Picklist",
            vec![
                option(1, &[("1033", "Accounting"), ("1031", "Buchhaltung")]),
                option(2, &[("1033", "Consulting"), ("1031", "Beratung")]),
            ],
            None,
        );
        let mut c = Converter::Choice(ChoiceMap::default());
        let what = fill(&mut c, &col, Some("1031")).unwrap();
        assert!(what.contains("2 options (Buchhaltung, Beratung)"), "{what}");
        let Converter::Choice(map) = &c else { panic!() };
        assert_eq!(map.resolve("beratung"), Ok(2));
        assert_eq!(map.resolve("ACCOUNTING"), Ok(1), "another language's label");
        assert_eq!(map.resolve("2"), Ok(2), "an option's value");
        let err = map.resolve("Legal").unwrap_err();
        assert_eq!(err, "unknown label 'Legal'; allowed: Buchhaltung, Beratung");
        assert!(map.resolve("7").is_err(), "a value that is no option");
        // A map the mapping gives is kept.
        let mut given = Converter::Choice(ChoiceMap::new([("Acc".to_string(), 1)]));
        assert_eq!(fill(&mut given, &col, None), None);
    }

    #[test]
    fn a_bool_takes_the_columns_labels_and_text_its_length() {
        let col = column(
            "Boolean",
            vec![
                option(0, &[("1033", "Allow")]),
                option(1, &[("1033", "Do Not Allow")]),
            ],
            None,
        );
        let mut c = Converter::Bool(BoolLabels::default());
        let what = fill(&mut c, &col, None).unwrap();
        assert_eq!(
            what,
            "also takes the column's labels 'Do Not Allow' / 'Allow'"
        );
        let mut json = String::new();
        c.write_json("do not allow", &mut json).unwrap();
        assert_eq!(json, "true");
        json.clear();
        c.write_json("Yes", &mut json).unwrap();
        assert_eq!(json, "true", "the usual words still hold");
        let err = c.write_json("Maybe", &mut json).unwrap_err();
        assert!(
            err.contains("or the column's labels: do not allow / allow"),
            "{err}"
        );

        let mut text = Converter::Text { max_length: None };
        let col = column("String", Vec::new(), Some(160));
        assert_eq!(
            fill(&mut text, &col, None).as_deref(),
            Some("takes the column's max_length = 160")
        );
        assert_eq!(
            text,
            Converter::Text {
                max_length: Some(160)
            }
        );
        let mut ours = Converter::Text {
            max_length: Some(50),
        };
        assert_eq!(fill(&mut ours, &col, None), None, "the mapping's own wins");
    }
}
