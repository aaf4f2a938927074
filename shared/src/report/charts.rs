//! The HTML report's charts, as inline SVG: daily spend against the baseline's, and queries per
//! day stacked by tier.

use super::format::{fmt_count, fmt_dollars, fmt_share};
use super::html::esc;
use super::model::{DayLine, Report};
use crate::ledger::money::Usd;
use crate::routing::pool::Tier;

const COST_COLOR: &str = "#2f6fb3";
const BASELINE_COLOR: &str = "#8a8f98";
pub(super) const TIER_COLORS: [&str; 3] = ["#4e9a6a", "#e0a030", "#c8504a"];

/// Chart geometry (SVG user units).
const CHART_W: f64 = 760.0;
const CHART_H: f64 = 280.0;
const PAD_LEFT: f64 = 76.0;
const PAD_RIGHT: f64 = 16.0;
const PAD_TOP: f64 = 30.0;
const PAD_BOTTOM: f64 = 46.0;

/// The plot area's size.
const PLOT_W: f64 = CHART_W - PAD_LEFT - PAD_RIGHT;
const PLOT_H: f64 = CHART_H - PAD_TOP - PAD_BOTTOM;

/// A chart's y axis: `0..=top`.
struct YAxis {
    top: f64,
}

impl YAxis {
    /// Where the value `v` is on the chart.
    fn y_of(&self, v: f64) -> f64 {
        PAD_TOP + PLOT_H * (1.0 - (v / self.top).clamp(0.0, 1.0))
    }
}

/// Opens a chart of days: the svg element, the grid with y labels in round steps up to
/// `max` (whole numbers when `integer`) and the axes' titles.
fn chart_open(
    out: &mut String,
    label: &str,
    (max, integer): (f64, bool),
    fmt: &dyn Fn(f64) -> String,
    y_title: &str,
) -> YAxis {
    let (step, steps) = nice_scale(max, integer);
    let axis = YAxis {
        top: step * steps as f64,
    };
    svg_open(out, label);
    svg_axes(
        out,
        step,
        steps,
        &|v| axis.y_of(v),
        fmt,
        y_title,
        "day (UTC)",
    );
    axis
}

/// A round step (1, 2 or 5 x 10^k) and a number of steps (1..=5) covering `0..=max`.
pub(super) fn nice_scale(max: f64, integer: bool) -> (f64, usize) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 1);
    }
    let raw = max / 4.0;
    let pow = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow);
    if integer {
        step = step.max(1.0).round();
    }
    let steps = ((max / step) - 1e-9).ceil().max(1.0) as usize;
    (step, steps)
}

/// Where the x-axis labels go: about 8 of them at most.
fn label_every(n: usize) -> usize {
    n.div_ceil(8).max(1)
}

/// `MM-DD` of a `YYYY-MM-DD` day (the year is in the title).
fn short_day(day: &str) -> &str {
    day.get(5..).unwrap_or(day)
}

fn svg_open(out: &mut String, label: &str) {
    out.push_str(&format!(
        "<svg viewBox=\"0 0 {CHART_W} {CHART_H}\" role=\"img\" aria-label=\"{}\" \
         class=\"chart\">\n",
        esc(label)
    ));
}

/// Horizontal grid lines with y labels, the axes' titles.
fn svg_axes(
    out: &mut String,
    step: f64,
    steps: usize,
    y_of: &dyn Fn(f64) -> f64,
    fmt: &dyn Fn(f64) -> String,
    y_title: &str,
    x_title: &str,
) {
    for k in 0..=steps {
        let v = step * k as f64;
        let y = y_of(v);
        out.push_str(&format!(
            "<line x1=\"{PAD_LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"ylab\">{}</text>\n",
            CHART_W - PAD_RIGHT,
            PAD_LEFT - 6.0,
            y + 4.0,
            esc(&fmt(v))
        ));
    }
    out.push_str(&format!(
        "<text x=\"14\" y=\"{:.1}\" class=\"axis-title\" transform=\"rotate(-90 14 {:.1})\">{}</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis-title\">{}</text>\n",
        PAD_TOP + (CHART_H - PAD_TOP - PAD_BOTTOM) / 2.0,
        PAD_TOP + (CHART_H - PAD_TOP - PAD_BOTTOM) / 2.0,
        esc(y_title),
        PAD_LEFT + (CHART_W - PAD_LEFT - PAD_RIGHT) / 2.0,
        CHART_H - 6.0,
        esc(x_title)
    ));
}

/// A legend entry at (`x`, 16): a swatch and a label; returns the x of the next entry.
fn svg_legend(out: &mut String, x: f64, color: &str, dashed: bool, label: &str) -> f64 {
    let dash = dash_attr(dashed);
    out.push_str(&format!(
        "<line x1=\"{x:.1}\" y1=\"12\" x2=\"{:.1}\" y2=\"12\" stroke=\"{color}\" \
         stroke-width=\"6\"{dash}/>\n<text x=\"{:.1}\" y=\"16\" class=\"legend\">{}</text>\n",
        x + 18.0,
        x + 24.0,
        esc(label)
    ));
    x + 34.0 + 7.0 * label.chars().count() as f64
}

/// The stroke attribute of a dashed line, or nothing.
fn dash_attr(dashed: bool) -> &'static str {
    if dashed {
        " stroke-dasharray=\"6 4\""
    } else {
        ""
    }
}

/// A day's label under the x axis, centred on `x`.
fn x_label(out: &mut String, x: f64, day: &str) {
    out.push_str(&format!(
        "<text x=\"{x:.1}\" y=\"{:.1}\" class=\"xlab\">{}</text>\n",
        CHART_H - PAD_BOTTOM + 16.0,
        esc(short_day(day))
    ));
}

/// A figure of a day (a chart series).
type DayValue = fn(&DayLine) -> f64;

/// Daily spend against the baseline's, as two lines.
pub(super) fn spend_chart(r: &Report) -> String {
    let n = r.days.len();
    if n == 0 {
        return "<p class=\"muted\">No days in the range.</p>\n".to_string();
    }
    let max = r
        .days
        .iter()
        .flat_map(|d| [d.cost_usd, d.baseline_cost_usd])
        .map(Usd::as_f64)
        .fold(0.0, f64::max);
    let x_of = |i: usize| {
        if n == 1 {
            PAD_LEFT + PLOT_W / 2.0
        } else {
            PAD_LEFT + PLOT_W * i as f64 / (n - 1) as f64
        }
    };
    let mut out = String::new();
    let axis = chart_open(
        &mut out,
        "Daily spend against the baseline model's",
        (max, false),
        &fmt_dollars,
        "USD per day",
    );
    let y_of = |v: f64| axis.y_of(v);
    for i in (0..n).step_by(label_every(n)) {
        if let Some(d) = r.days.get(i) {
            x_label(&mut out, x_of(i), &d.day);
        }
    }
    let series: [(&str, &str, bool, DayValue); 2] = [
        ("baseline", BASELINE_COLOR, true, |d| {
            d.baseline_cost_usd.as_f64()
        }),
        ("actual cost", COST_COLOR, false, |d| d.cost_usd.as_f64()),
    ];
    for (name, color, dashed, value) in series {
        spend_line(
            &mut out,
            &r.days,
            (name, color, dashed),
            value,
            &x_of,
            &y_of,
        );
    }
    let x = svg_legend(&mut out, PAD_LEFT, COST_COLOR, false, "actual cost");
    svg_legend(
        &mut out,
        x,
        BASELINE_COLOR,
        true,
        "baseline model, same tokens",
    );
    out.push_str("</svg>\n");
    out
}

/// One series of the spend chart: a line through the days (dashed or not), and a dot with a
/// tooltip on each day when there are few enough.
fn spend_line(
    out: &mut String,
    days: &[DayLine],
    (name, color, dashed): (&str, &str, bool),
    value: DayValue,
    x_of: &dyn Fn(usize) -> f64,
    y_of: &dyn Fn(f64) -> f64,
) {
    let points: Vec<String> = days
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{:.1},{:.1}", x_of(i), y_of(value(d))))
        .collect();
    out.push_str(&format!(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{}/>\n",
        points.join(" "),
        dash_attr(dashed)
    ));
    if days.len() <= 62 {
        for (i, d) in days.iter().enumerate() {
            out.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\">\
                 <title>{} {name}: {}</title></circle>\n",
                x_of(i),
                y_of(value(d)),
                esc(&d.day),
                esc(&fmt_dollars(value(d)))
            ));
        }
    }
}

/// Queries per day, stacked by tier.
pub(super) fn tier_chart(r: &Report) -> String {
    let n = r.days.len();
    if n == 0 {
        return String::new();
    }
    let tier_queries = |d: &DayLine, t: Tier| d.tiers.get(t.as_str()).copied().unwrap_or(0);
    let max = r
        .days
        .iter()
        .map(|d| Tier::ALL.iter().map(|t| tier_queries(d, *t)).sum::<u64>())
        .max()
        .unwrap_or(0);
    let band = PLOT_W / n as f64;
    let bar = (band * 0.8).max(0.5);
    let mut out = String::new();
    let axis = chart_open(
        &mut out,
        "Queries per day by tier",
        (max as f64, true),
        &|v| fmt_count(v.round() as u64),
        "queries per day",
    );
    let h_of = |q: u64| PLOT_H * (q as f64 / axis.top).clamp(0.0, 1.0);
    for (i, d) in r.days.iter().enumerate() {
        let x = PAD_LEFT + band * i as f64 + (band - bar) / 2.0;
        let mut base = PAD_TOP + PLOT_H;
        for (t, color) in Tier::ALL.iter().zip(TIER_COLORS) {
            let q = tier_queries(d, *t);
            if q == 0 {
                continue;
            }
            let h = h_of(q);
            base -= h;
            out.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{base:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" \
                 fill=\"{color}\"><title>{} {}: {} queries</title></rect>\n",
                esc(&d.day),
                t.as_str(),
                fmt_count(q)
            ));
        }
        if i % label_every(n) == 0 {
            x_label(&mut out, PAD_LEFT + band * (i as f64 + 0.5), &d.day);
        }
    }
    let mut x = PAD_LEFT;
    for (t, color) in Tier::ALL.iter().zip(TIER_COLORS) {
        let share = r.tiers.get(t.as_str()).and_then(|l| l.share);
        let label = format!("{} {}", t.as_str(), fmt_share(share));
        x = svg_legend(&mut out, x, color, false, &label);
    }
    out.push_str("</svg>\n");
    out
}
