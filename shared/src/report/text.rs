//! The report as plain text for a terminal.

use super::format::*;
use super::model::Report;

/// How many models the terminal table lists.
const TOP_MODELS: usize = 10;

/// A name from the data, safe to print on a terminal: control characters (escape sequences)
/// replaced, at most 60 characters.
fn terminal_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(60)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// Aligned columns: the first left-aligned, the others right-aligned; two-space indent.
fn text_table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    text_line(out, &widths, headers.iter().copied());
    for row in rows {
        text_line(out, &widths, row.iter().map(String::as_str));
    }
}

fn text_line<'a>(out: &mut String, widths: &[usize], cells: impl Iterator<Item = &'a str>) {
    let mut s = String::new();
    for (i, (cell, w)) in cells.zip(widths).enumerate() {
        let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
        s.push_str("  ");
        if i == 0 {
            s.push_str(cell);
            s.push_str(&pad);
        } else {
            s.push_str(&pad);
            s.push_str(cell);
        }
    }
    out.push_str(s.trim_end());
    out.push('\n');
}

/// The report as plain text for a terminal: headline figures, tier mix, top models and the
/// `group_by` lines when present.
pub fn render_table(report: &Report) -> String {
    let r = report;
    let mut out = String::new();
    let tenant = match &r.tenant {
        Some(t) => format!("tenant {}", terminal_safe(t)),
        None => "all tenants".to_string(),
    };
    out.push_str(&format!(
        "tierwise cost report: {} to {} ({tenant})\n\n",
        r.from, r.to
    ));
    let rows = headline(r);
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (label, value) in &rows {
        out.push_str(&format!("  {label:<width$}  {value}\n"));
    }

    out.push_str("\nTier mix\n");
    text_table(
        &mut out,
        &["tier", "queries", "share", "cost", "baseline"],
        &tier_rows(r, terminal_safe),
    );

    out.push_str("\nTop models by cost\n");
    let models = models_by_cost(r);
    if models.is_empty() {
        out.push_str("  (no traffic)\n");
    } else {
        let top = &models[..models.len().min(TOP_MODELS)];
        text_table(
            &mut out,
            &["model", "tier", "queries", "cost", "baseline"],
            &model_rows(top, terminal_safe),
        );
        if models.len() > TOP_MODELS {
            out.push_str(&format!("  ... and {} more\n", models.len() - TOP_MODELS));
        }
    }

    if let Some(groups) = &r.groups {
        let g = GroupTable::of(groups, terminal_safe);
        out.push_str(&format!("\nBy {}\n", g.title));
        text_table(&mut out, &g.headers, &g.rows);
    }
    out
}
