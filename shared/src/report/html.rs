//! The report as a self-contained HTML page.

use super::charts::{TIER_COLORS, spend_chart, tier_chart};
use super::format::*;
use super::model::Report;
use crate::routing::pool::Tier;

/// Escapes text for HTML element content and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The whole range's tier mix as one 100% bar.
fn mix_bar(r: &Report) -> String {
    let mut out = String::from("<div class=\"mix\" role=\"img\" aria-label=\"Tier mix\">");
    let mut any = false;
    for (t, color) in Tier::ALL.iter().zip(TIER_COLORS) {
        let share = r.tiers.get(t.as_str()).and_then(|l| l.share).unwrap_or(0.0);
        if share <= 0.0 {
            continue;
        }
        any = true;
        let pct = share * 100.0;
        let text = if pct >= 8.0 {
            format!("{} {pct:.1}%", t.as_str())
        } else {
            String::new()
        };
        out.push_str(&format!(
            "<span style=\"width:{pct:.3}%;background:{color}\" title=\"{} {pct:.1}%\">{text}</span>",
            t.as_str()
        ));
    }
    if !any {
        out.push_str("<span class=\"empty\">no traffic</span>");
    }
    out.push_str("</div>\n");
    out
}

fn html_table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table>\n<thead><tr>");
    for (i, h) in headers.iter().enumerate() {
        let class = if i == 0 { "" } else { " class=\"num\"" };
        out.push_str(&format!("<th{class}>{}</th>", esc(h)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if i == 0 { "" } else { " class=\"num\"" };
            out.push_str(&format!("<td{class}>{}</td>", esc(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

const STYLE: &str = "\
:root{color-scheme:light;--fg:#1d2330;--muted:#5d6675;--line:#dfe3ea;--bg:#f6f7f9}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);\
font:15px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,Helvetica,Arial,sans-serif}
main{max-width:880px;margin:0 auto;padding:28px 20px 48px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:17px;margin:32px 0 10px}
.muted,.sub{color:var(--muted)}
.sub{margin:0 0 20px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.card .k{color:var(--muted);font-size:13px}
.card .v{font-size:21px;font-weight:600;font-variant-numeric:tabular-nums}
.card .d{color:var(--muted);font-size:13px}
.chart{width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:8px;\
margin:0 0 12px}
.chart text{font-size:12px;fill:var(--muted)}
.chart .ylab{text-anchor:end}
.chart .xlab,.chart .axis-title{text-anchor:middle}
.chart .legend{fill:var(--fg)}
.chart .grid{stroke:var(--line);stroke-width:1}
.mix{display:flex;height:28px;border-radius:6px;overflow:hidden;margin:0 0 12px;\
background:var(--line)}
.mix span{display:flex;align-items:center;justify-content:center;color:#fff;font-size:12px;\
white-space:nowrap;overflow:hidden}
.mix .empty{color:var(--muted);width:100%}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left}
th{font-size:13px;color:var(--muted);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td:first-child{word-break:break-all}
footer{margin-top:32px;color:var(--muted);font-size:13px}
";

/// The report as a self-contained HTML page (no scripts, external styles, fonts or other
/// requests; a content security policy forbids them): headline cards, daily spend against the
/// baseline's and the tier mix as inline SVG charts, and the headline, tier, model and
/// `group_by` tables. Every string from the data is escaped.
pub fn render_html(report: &Report) -> String {
    let r = report;
    let tenant = match &r.tenant {
        Some(t) => format!("tenant {}", esc(t)),
        None => "all tenants".to_string(),
    };
    let range = format!("{} to {}", esc(&r.from), esc(&r.to));
    let mut out = String::new();
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\n\
         <title>tierwise cost report, {range}</title>\n<style>\n{STYLE}</style>\n</head>\n\
         <body>\n<main>\n<h1>tierwise cost report</h1>\n<p class=\"sub\">{range} (UTC), \
         {tenant}</p>\n"
    ));
    cards(&mut out, r);

    out.push_str("<h2>Daily spend</h2>\n");
    out.push_str(&spend_chart(r));

    out.push_str("<h2>Tier mix</h2>\n");
    out.push_str(&mix_bar(r));
    out.push_str(&tier_chart(r));
    html_table(
        &mut out,
        &["Tier", "Queries", "Share", "Cost", "Baseline"],
        &tier_rows(r, str::to_string),
    );

    tables(&mut out, r);

    out.push_str(&format!(
        "<footer>Generated by tierwise from {} rows. Costs are the routed queries' \
         estimated or reported token costs; the baseline prices the same tokens at the \
         baseline model. Router latency percentiles are histogram bucket upper bounds.\
         </footer>\n</main>\n</body>\n</html>\n",
        fmt_count(r.rows_read)
    ));
    out
}

/// The headline cards: cost, baseline, savings, per 1K queries.
fn cards(out: &mut String, r: &Report) {
    let cards = [
        (
            "Cost",
            fmt_usd(r.cost_usd),
            format!("{} queries", fmt_count(r.queries)),
        ),
        (
            "Baseline",
            fmt_usd(r.baseline_cost_usd),
            "same tokens, baseline model".to_string(),
        ),
        (
            "Savings",
            fmt_usd(r.savings_usd),
            format!("{} of the baseline", fmt_pct(r.savings_pct)),
        ),
        (
            "Per 1K queries",
            fmt_usd_opt(r.cost_per_1k_usd),
            format!("baseline {}", fmt_usd_opt(r.baseline_cost_per_1k_usd)),
        ),
    ];
    out.push_str("<section class=\"cards\">\n");
    for (k, v, d) in &cards {
        out.push_str(&format!(
            "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div>\
             <div class=\"d\">{}</div></div>\n",
            esc(k),
            esc(v),
            esc(d)
        ));
    }
    out.push_str("</section>\n");
}

/// The headline figures, models and `group_by` tables.
fn tables(out: &mut String, r: &Report) {
    out.push_str("<h2>Headline figures</h2>\n");
    let rows: Vec<Vec<String>> = headline(r)
        .into_iter()
        .map(|(k, v)| vec![k.to_string(), v])
        .collect();
    html_table(out, &["Figure", "Value"], &rows);

    out.push_str("<h2>Models</h2>\n");
    let models = models_by_cost(r);
    if models.is_empty() {
        out.push_str("<p class=\"muted\">No traffic in the range.</p>\n");
    } else {
        html_table(
            out,
            &["Model", "Tier", "Queries", "Cost", "Baseline"],
            &model_rows(&models, str::to_string),
        );
    }

    if let Some(groups) = &r.groups {
        let g = GroupTable::of(groups, str::to_string);
        out.push_str(&format!("<h2>By {}</h2>\n", g.title));
        html_table(out, &g.headers, &g.rows);
    }
}
