//! The run's words: counts, summaries, and what a job reads and writes, as the console shows them.

use std::path::Path;

use crate::outcome::Counts;

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The one-line summary of a job's counts.
pub fn summary_line(counts: &Counts, written_word: &str, secs: f64) -> String {
    let rate = if secs > 0.0 {
        counts.read as f64 / secs
    } else {
        0.0
    };
    format!(
        "read {}  {written_word} {}  rejected {}  skipped {}{}  in {secs:.2} s ({} rows/s)",
        thousands(counts.read),
        thousands(counts.written),
        thousands(counts.rejected),
        thousands(counts.skipped),
        if counts.unchanged > 0 {
            format!("  unchanged {}", thousands(counts.unchanged))
        } else {
            String::new()
        },
        self::rate(rate)
    )
}

/// A rate rounded for people: two significant digits from 100 up (1,548 -> 1,500; 127,387 ->
/// 130,000), whole numbers below (87.6 -> 88), one decimal under 10 (3.14 -> 3.1).
pub fn rate(r: f64) -> String {
    if !r.is_finite() || r <= 0.0 {
        return "0".to_string();
    }
    if r < 10.0 {
        return format!("{r:.1}");
    }
    if r < 100.0 {
        return format!("{}", r.round() as u64);
    }
    let digits = r.log10().floor() as i32;
    let unit = 10f64.powi(digits - 1);
    thousands(((r / unit).round() * unit) as u64)
}

/// Where a job reads from and writes to.
pub fn describe_job(job: &crate::job::Job) -> String {
    let key: Vec<String> = job
        .spec
        .target
        .key
        .iter()
        .map(|k| k.column.clone())
        .collect();
    let key = if key.is_empty() {
        String::new()
    } else {
        format!(" by {}", key.join(", "))
    };
    let columns = job
        .reader
        .columns()
        .map(|c| format!(", {} columns", c.len()))
        .unwrap_or_default();
    format!(
        "{} -> {} ({}{key})\nsource {} ({}{columns})",
        job.mapping.display(),
        job.plan.entity_set,
        job.plan.operation.name(),
        job.source_path.display(),
        job.options.format.name()
    )
}

/// What the job's empty values do, for `validate` and the dry run: which fields clear their
/// column when a row's value is empty (`empty = "clear"`), or only for a JSON `null`
/// (`empty = "clear-on-null"`), and that the others leave it as it is. `None` for a delete.
pub fn describe_empty(job: &crate::job::Job) -> Option<String> {
    use crate::mapping::spec::{EmptyValues, OperationKind};
    if job.spec.target.operation == OperationKind::Delete {
        return None;
    }
    let with = |e: EmptyValues| -> Vec<&str> {
        job.spec
            .fields
            .iter()
            .filter(|f| f.empty == e)
            .map(|f| f.column.as_str())
            .collect()
    };
    let (clear, on_null) = (with(EmptyValues::Clear), with(EmptyValues::ClearOnNull));
    let mut parts = Vec::new();
    if !clear.is_empty() {
        parts.push(format!(
            "an empty value clears {} (empty = \"{}\")",
            clear.join(", "),
            EmptyValues::Clear.name()
        ));
    }
    if !on_null.is_empty() {
        parts.push(format!(
            "a JSON null clears {} (empty = \"{}\")",
            on_null.join(", "),
            EmptyValues::ClearOnNull.name()
        ));
    }
    Some(if parts.is_empty() {
        "empty values leave every column as it is (empty = \"keep\", the default)".to_string()
    } else if clear.len() + on_null.len() == job.spec.fields.len() {
        parts.join("; ")
    } else {
        format!(
            "{}; the other fields' empty values leave their columns as they are",
            parts.join("; ")
        )
    })
}

/// The current time in RFC 3339 (UTC, seconds).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A job's first row errors (up to five) and where its rejects went, as lines for the console.
pub fn rejects_lines(
    first_errors: &[String],
    rejected: u64,
    rejects_file: Option<&Path>,
) -> Vec<String> {
    let mut lines = Vec::new();
    if !first_errors.is_empty() {
        lines.push("first row errors:".to_string());
        let shown = first_errors.len().min(5);
        for e in &first_errors[..shown] {
            lines.push(format!("  {e}"));
        }
        let more = rejected.saturating_sub(shown as u64);
        if more > 0 {
            lines.push(match rejects_file {
                Some(p) => format!("  ... and {} more in {}", thousands(more), p.display()),
                None => format!("  ... and {} more", thousands(more)),
            });
        }
    }
    if let Some(p) = rejects_file {
        lines.push(format!("rejected rows written to {}", p.display()));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_rounded_for_people() {
        assert_eq!(rate(1548.0), "1,500");
        assert_eq!(rate(127_387.0), "130,000");
        assert_eq!(rate(87.6), "88");
        assert_eq!(rate(2.47), "2.5");
        assert_eq!(rate(0.0), "0");
        assert_eq!(rate(f64::NAN), "0");
    }

    #[test]
    fn the_console_says_how_many_more_rejects_the_file_holds() {
        let errors: Vec<String> = (1..=7).map(|i| format!("row {i}: bad")).collect();
        let lines = rejects_lines(&errors, 1234, Some(Path::new("a.rejects.csv")));
        assert_eq!(lines.len(), 1 + 5 + 1 + 1);
        assert_eq!(lines[6], "  ... and 1,229 more in a.rejects.csv");
        let lines = rejects_lines(&errors[..2], 2, None);
        assert_eq!(lines, ["first row errors:", "  row 1: bad", "  row 2: bad"]);
    }
}
