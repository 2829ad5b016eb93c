//! The run's report as one self-contained HTML file (`--report-html`, `runs show --html`): counts,
//! throughput and the batches in flight over time with the throttle pauses, rejects grouped by
//! reason with examples (new and known), what the run chose, and how to go on when it stopped.
//! Inline CSS and SVG only: no script, font or anything fetched, so it opens anywhere, offline,
//! and can be mailed or attached to a ticket as it is.

use std::fmt::Write as _;

use crate::ledger::{JobReport, RunReport};
use crate::writer::timeline::Sample;

/// Rejected rows of one mapping that share a reason (numbers and ids aside).
#[derive(Debug, Clone, PartialEq)]
pub struct RejectGroup {
    /// The mapping's position in the run.
    pub seq: usize,
    /// The reason, as its first row had it.
    pub reason: String,
    /// How many rows.
    pub rows: u64,
    /// How many of them an earlier run rejected too (`None`: not known without a ledger).
    pub known: Option<u64>,
    /// The first few row numbers.
    pub examples: Vec<u64>,
}

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    /// The heading (`dvload run #12`).
    pub title: String,
    /// The run's counts and jobs.
    pub report: &'a RunReport,
    /// The run over time (empty: not recorded, e.g. a report rebuilt from the ledger).
    pub samples: &'a [Sample],
    /// Rejects grouped by mapping and reason.
    pub rejects: &'a [RejectGroup],
    /// What the run chose: (what, value).
    pub choices: &'a [(String, String)],
    /// Why it stopped, with the command that continues it, when it stopped early.
    pub stopped: Option<&'a str>,
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number with thousands separators.
fn n(v: u64) -> String {
    super::text::thousands(v)
}

const STYLE: &str = "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;max-width:62rem;padding:0 1rem;color:#1d2430;background:#fff}\
h1{font-size:1.6rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:2rem 0 .6rem;border-bottom:1px solid #dde3ea;padding-bottom:.3rem}\
.sub{color:#5b6676;margin:0 0 1.2rem}.cards{display:flex;flex-wrap:wrap;gap:.8rem}.card{border:1px solid #dde3ea;border-radius:8px;padding:.7rem 1rem;min-width:8.5rem}\
.card b{display:block;font-size:1.5rem}.card span{color:#5b6676;font-size:.85rem}.ok b{color:#1a7f37}.bad b{color:#c62828}.warn b{color:#9a6700}\
table{border-collapse:collapse;width:100%;font-size:.92rem}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eef1f4;vertical-align:top}td{overflow-wrap:anywhere}\
th{color:#5b6676;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.tag{display:inline-block;border-radius:4px;padding:0 .35rem;font-size:.8rem}.new{background:#ffebe9;color:#c62828}.known{background:#eef1f4;color:#5b6676}\
.stop{border-left:4px solid #c62828;background:#fff5f5;padding:.6rem 1rem;white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88rem}\
svg{width:100%;height:auto;border:1px solid #eef1f4;border-radius:6px;background:#fbfcfd}.legend{color:#5b6676;font-size:.85rem;margin:.2rem 0 1rem}\
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88rem}";

/// The page's HTML.
pub fn render(page: &Page) -> String {
    let r = page.report;
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>",
        esc(&page.title)
    );
    let verdict = match r.exit_code {
        0 => "finished: nothing that fails the run",
        1 => "finished with rejects that fail the run",
        2 => "refused: the mapping, the source or the command line",
        3 => "refused: authentication or authorisation",
        4 => "stopped early: it can be resumed",
        5 => "not run: another run held the state directory",
        _ => "ended",
    };
    let _ = writeln!(
        h,
        "<h1>{}</h1><p class=\"sub\">started {} · {:.1} s · exit {} ({verdict}){}</p>",
        esc(&page.title),
        esc(&r.started_at),
        r.duration_ms as f64 / 1000.0,
        r.exit_code,
        if r.dry_run {
            " · dry run: nothing sent"
        } else {
            ""
        }
    );
    if let Some(stop) = page.stopped {
        let _ = writeln!(h, "<div class=\"stop\">{}</div>", esc(stop));
    }
    // Counts.
    let secs = (r.duration_ms as f64 / 1000.0).max(0.001);
    let card = |class: &str, value: String, label: &str| {
        format!("<div class=\"card {class}\"><b>{value}</b><span>{label}</span></div>")
    };
    let _ = writeln!(
        h,
        "<div class=\"cards\">{}{}{}{}{}{}{}</div>",
        card("", n(r.counts.read), "read"),
        card("ok", n(r.counts.written), "written"),
        card(
            if r.counts.rejected > 0 { "bad" } else { "" },
            n(r.counts.rejected),
            "rejected"
        ),
        card("", n(r.counts.skipped), "skipped"),
        card("", n((r.counts.read as f64 / secs) as u64), "rows/s"),
        card(
            if r.retries > 0 { "warn" } else { "" },
            n(r.retries),
            "operations retried"
        ),
        card(
            if r.throttle_waits > 0 { "warn" } else { "" },
            format!(
                "{} ({:.1} s)",
                n(r.throttle_waits),
                r.waited_ms as f64 / 1000.0
            ),
            "throttle pauses"
        ),
    );
    // Over time.
    h.push_str("<h2>Over time</h2>\n");
    if page.samples.len() < 2 {
        h.push_str("<p class=\"legend\">Not recorded for this run (only a run that writes, with <code>--report-html</code>, samples itself as it goes).</p>\n");
    } else {
        h.push_str(&charts(page.samples));
    }
    // Mappings.
    h.push_str("<h2>Mappings</h2>\n<table><tr><th>mapping</th><th>source</th><th>target</th><th class=\"num\">read</th><th class=\"num\">written</th><th class=\"num\">rejected</th><th class=\"num\">new</th><th class=\"num\">known</th><th class=\"num\">skipped</th><th>rejects file</th></tr>\n");
    for j in &r.jobs {
        h.push_str(&job_row(j));
    }
    h.push_str("</table>\n");
    // Rejects.
    h.push_str("<h2>Rejects by reason</h2>\n");
    if page.rejects.is_empty() {
        h.push_str("<p class=\"legend\">No row was rejected.</p>\n");
    } else {
        h.push_str("<table><tr><th>mapping</th><th class=\"num\">rows</th><th></th><th>reason</th><th>example rows</th></tr>\n");
        for g in page.rejects {
            let mapping = r
                .jobs
                .get(g.seq)
                .map(|j| j.mapping.display().to_string())
                .unwrap_or_default();
            let tag = match g.known {
                Some(k) if k == g.rows => "<span class=\"tag known\">known</span>".to_string(),
                Some(0) => "<span class=\"tag new\">new</span>".to_string(),
                Some(k) => format!(
                    "<span class=\"tag new\">{} new</span> <span class=\"tag known\">{} known</span>",
                    n(g.rows - k),
                    n(k)
                ),
                None => String::new(),
            };
            let examples: Vec<String> = g.examples.iter().map(|e| format!("row {e}")).collect();
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td>{tag}</td><td>{}</td><td>{}</td></tr>",
                esc(&mapping),
                n(g.rows),
                esc(&g.reason),
                esc(&examples.join(", "))
            );
        }
        h.push_str("</table>\n");
    }
    // Choices.
    if !page.choices.is_empty() {
        h.push_str("<h2>What the run chose</h2>\n<table>\n");
        for (what, value) in page.choices {
            let _ = writeln!(
                h,
                "<tr><th>{}</th><td><code>{}</code></td></tr>",
                esc(what),
                esc(value)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<p class=\"legend\">Written by dvload. Known rejects are rows an earlier run of the same mapping rejected for the same reason; new ones are the others.</p>\n</body></html>\n");
    h
}

fn job_row(j: &JobReport) -> String {
    let opt = |v: Option<u64>| v.map_or_else(|| "–".to_string(), n);
    format!(
        "<tr><td>{}</td><td>{}</td><td>{} ({})</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
        esc(&j.mapping.display().to_string()),
        esc(&j.source.display().to_string()),
        esc(&j.entity_set),
        esc(&j.operation),
        n(j.counts.read),
        n(j.counts.written),
        n(j.counts.rejected),
        opt(j.rejects_new),
        opt(j.rejects_known),
        n(j.counts.skipped),
        esc(&j
            .rejects_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default())
    )
}

/// Two charts: rows per second, and batches in flight with the throttle pauses marked.
fn charts(samples: &[Sample]) -> String {
    // Time from the first sample (the first row settled), not from before the pre-flight.
    let t0 = samples.first().map_or(0, |s| s.t_ms);
    let t = |s: &Sample| s.t_ms.saturating_sub(t0) as f64;
    let end = samples.last().map_or(1.0, t).max(1.0);
    // Rows per second over spans of at least a quarter of a second (a sample taken just after
    // another would make a spike of nothing).
    let mut rate = Vec::with_capacity(samples.len());
    let mut from = &samples[0];
    for s in &samples[1..] {
        let dt = (s.t_ms.saturating_sub(from.t_ms)) as f64 / 1000.0;
        if dt >= 0.25 {
            let rows = (s.written + s.rejected).saturating_sub(from.written + from.rejected);
            rate.push((t(s), rows as f64 / dt));
            from = s;
        }
    }
    let limit: Vec<(f64, f64)> = samples.iter().map(|s| (t(s), s.limit as f64)).collect();
    let pauses: Vec<f64> = samples
        .windows(2)
        .filter(|w| w[1].throttles > w[0].throttles)
        .map(|w| t(&w[1]))
        .collect();
    let retries: Vec<f64> = samples
        .windows(2)
        .filter(|w| w[1].retries > w[0].retries)
        .map(|w| t(&w[1]))
        .collect();
    let mut out = String::new();
    out.push_str(&chart(
        "rows per second",
        &rate,
        end,
        &[],
        &[],
        "#2563eb",
        false,
    ));
    out.push_str("<p class=\"legend\">Rows settled (written or rejected) per second.</p>\n");
    out.push_str(&chart(
        "batches in flight allowed",
        &limit,
        end,
        &pauses,
        &retries,
        "#0f766e",
        true,
    ));
    let _ = writeln!(
        out,
        "<p class=\"legend\">Batches the run allowed in flight (it backs off when the service throttles); <span style=\"color:#c62828\">red</span>: a throttle pause began ({}), <span style=\"color:#9a6700\">amber</span>: operations were retried ({}).</p>",
        pauses.len(),
        retries.len()
    );
    out
}

/// One line chart as inline SVG: `points` (milliseconds, value) over `0..=end`, with vertical
/// marks at `red` and `amber` (milliseconds); `step` draws a step line.
fn chart(
    title: &str,
    points: &[(f64, f64)],
    end: f64,
    red: &[f64],
    amber: &[f64],
    color: &str,
    step: bool,
) -> String {
    let (w, h, left, bottom, top) = (900.0, 220.0, 56.0, 28.0, 14.0);
    let plot_w = w - left - 12.0;
    let plot_h = h - bottom - top;
    let max = points.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1.0);
    let x = |t: f64| left + t / end * plot_w;
    let y = |v: f64| top + plot_h - v / max * plot_h;
    let mut s = format!(
        "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(title)
    );
    // Axes and labels.
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#c9d1da\"/><line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#c9d1da\"/>",
        top + plot_h,
        top + plot_h,
        left + plot_w,
        top + plot_h
    );
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\" fill=\"#5b6676\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\" fill=\"#5b6676\">0</text>",
        left - 6.0,
        top + 10.0,
        esc(&round_label(max)),
        left - 6.0,
        top + plot_h
    );
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{}\" font-size=\"12\" fill=\"#5b6676\">0 s</text><text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\" fill=\"#5b6676\">{:.1} s</text>",
        h - 8.0,
        left + plot_w,
        h - 8.0,
        end / 1000.0
    );
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"13\" fill=\"#1d2430\">{}</text>",
        left + 8.0,
        top + 14.0,
        esc(title)
    );
    for (marks, c) in [(red, "#c62828"), (amber, "#9a6700")] {
        for t in marks {
            let _ = write!(
                s,
                "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"{c}\" stroke-opacity=\".55\"/>",
                x(*t),
                top + plot_h
            );
        }
    }
    let mut d = String::new();
    let mut prev: Option<(f64, f64)> = None;
    for &(t, v) in points {
        let (px, py) = (x(t), y(v));
        match prev {
            None => {
                let _ = write!(d, "M{px:.1},{py:.1}");
            }
            Some((_, last_y)) if step => {
                let _ = write!(d, " L{px:.1},{last_y:.1} L{px:.1},{py:.1}");
            }
            Some(_) => {
                let _ = write!(d, " L{px:.1},{py:.1}");
            }
        }
        prev = Some((px, py));
    }
    if !d.is_empty() {
        let _ = write!(
            s,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>"
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A value rounded for people: 1234 -> "1,234", 12.3456 -> "12.3".
fn round_label(v: f64) -> String {
    if v >= 100.0 {
        n(v.round() as u64)
    } else {
        format!("{v:.1}")
    }
}

/// Groups `(seq, row, reason, known)` rejects by mapping and reason (numbers and ids folded, as
/// the ledger's fingerprints fold them), largest first, with up to three example rows each.
pub fn group_rejects(rejects: &[(usize, u64, String, Option<bool>)]) -> Vec<RejectGroup> {
    let mut groups: Vec<(String, RejectGroup)> = Vec::new();
    for (seq, row, reason, known) in rejects {
        let key = format!("{seq}\u{1f}{}", crate::ledger::journal::fold_reason(reason));
        let g = match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g,
            None => {
                groups.push((
                    key,
                    RejectGroup {
                        seq: *seq,
                        reason: reason.clone(),
                        rows: 0,
                        known: known.map(|_| 0),
                        examples: Vec::new(),
                    },
                ));
                &mut groups.last_mut().expect("pushed").1
            }
        };
        g.rows += 1;
        if let (Some(k), Some(true)) = (g.known.as_mut(), known) {
            *k += 1;
        }
        if g.examples.len() < 3 {
            g.examples.push(*row);
        }
    }
    let mut out: Vec<RejectGroup> = groups.into_iter().map(|(_, g)| g).collect();
    out.sort_by(|a, b| a.seq.cmp(&b.seq).then(b.rows.cmp(&a.rows)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_group_by_reason_with_numbers_folded() {
        let r = |seq, row, reason: &str, known| (seq, row, reason.to_string(), Some(known));
        let groups = group_rejects(&[
            r(0, 3, "'twelve' is not a whole number", false),
            r(
                0,
                9,
                "is 169 characters long; at most 160 are allowed",
                true,
            ),
            r(
                0,
                12,
                "is 170 characters long; at most 160 are allowed",
                false,
            ),
            r(
                1,
                4,
                "is 170 characters long; at most 160 are allowed",
                false,
            ),
        ]);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].rows, 2);
        assert_eq!(groups[0].known, Some(1));
        assert_eq!(groups[0].examples, [9, 12]);
        assert_eq!(groups[2].seq, 1);
    }

    #[test]
    fn the_page_escapes_what_it_shows_and_loads_nothing() {
        let report = RunReport::new(
            "run",
            false,
            "2026-12-07T00:00:00Z".into(),
            1500,
            1,
            Vec::new(),
        );
        let samples = [
            Sample {
                t_ms: 0,
                written: 0,
                rejected: 0,
                limit: 4,
                throttles: 0,
                retries: 0,
            },
            Sample {
                t_ms: 1000,
                written: 900,
                rejected: 1,
                limit: 2,
                throttles: 1,
                retries: 5,
            },
        ];
        let rejects = [RejectGroup {
            seq: 0,
            reason: "<script>alert(1)</script>".into(),
            rows: 1,
            known: Some(0),
            examples: vec![7],
        }];
        let html = render(&Page {
            title: "dvload run #1".into(),
            report: &report,
            samples: &samples,
            rejects: &rejects,
            choices: &[("fail_on".into(), "new-rejects".into())],
            stopped: None,
        });
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<script"), "no script at all");
        for fetch in ["src=", "href=", "@import", "url("] {
            assert!(!html.contains(fetch), "nothing fetched: {fetch}");
        }
        assert!(html.contains("<svg"), "{html}");
        assert!(html.contains("a throttle pause began (1)"));
    }
}
