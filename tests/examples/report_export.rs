//! Writes a DynamoDB export of 28 days of varied routed traffic (two tenants, every tier,
//! the bundled pool's models priced at their pool prices, escalations, a few upstream errors)
//! to a folder, for `tierwise report --export DIR`: the data behind `tests/report_browser.sh`,
//! which renders the HTML report from it and checks the page in headless chromium.
//!
//! `cargo run -p tierwise-tests --example report_export -- DIR` prints the export's folder.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tierwise::ledger::money::Usd;
use tierwise::ledger::records::{CostRecord, RecordStatus};
use tierwise::routing::decision::DecidedBy;
use tierwise::routing::pool::Tier;
use tierwise_tests::export_fixture::{ExportWriter, cost_item_json, line, routed_record};

/// The export's id (DynamoDB names exports `<epoch ms>-<8 hex>`).
const EXPORT_ID: &str = "01764547200000-b20e5e00";
/// The first day; the export covers `DAYS` days from it.
const FIRST_DAY: (i32, u8, u8) = (2026, 11, 1);
const DAYS: u32 = 28;

/// A model of the bundled pool: its tier and prices (USD per million input / output tokens).
struct Model {
    id: &'static str,
    tier: Tier,
    input_per_m: f64,
    output_per_m: f64,
}

/// Models of `shared/config/pool.toml`, with the share of their tier's traffic each serves.
const MODELS: [(Model, u32); 5] = [
    (model("deepseek/deepseek-v3", Tier::Tier1, 0.14, 0.28), 70),
    (
        model("google/gemini-3.1-flash-lite", Tier::Tier1, 0.10, 0.40),
        30,
    ),
    (model("openai/gpt-4o-mini", Tier::Tier2, 0.15, 0.60), 80),
    (
        model("anthropic/claude-3.5-sonnet", Tier::Tier2, 3.00, 15.00),
        20,
    ),
    (model("openai/gpt-4o", Tier::Tier3, 2.50, 10.00), 100),
];

/// The pool's baseline model's prices (`openai/gpt-4o`).
const BASELINE: (f64, f64) = (2.50, 10.00);

const fn model(id: &'static str, tier: Tier, input_per_m: f64, output_per_m: f64) -> Model {
    Model {
        id,
        tier,
        input_per_m,
        output_per_m,
    }
}

/// A small deterministic generator (xorshift64*): the same export on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The cost of `input` and `output` tokens at per-million prices, in nano-dollars.
fn nanos(input: u64, output: u64, (input_per_m, output_per_m): (f64, f64)) -> i64 {
    ((input as f64 * input_per_m + output as f64 * output_per_m) * 1_000.0).round() as i64
}

fn main() -> anyhow::Result<()> {
    let root: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: report_export DIR")?;
    let first = time::Date::from_calendar_date(
        FIRST_DAY.0,
        time::Month::try_from(FIRST_DAY.1)?,
        FIRST_DAY.2,
    )?;
    let mut writer = ExportWriter::create(&root, EXPORT_ID)?;
    let ttl = Duration::from_secs(90 * 86_400);
    let mut rng = Rng(0x7132_5eed_0bad_cafe);
    let mut n = 0u64;
    for d in 0..DAYS {
        let date = first + time::Duration::days(i64::from(d));
        let day = format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        );
        // Weekdays busier than weekends, and traffic growing over the month.
        let weekend = matches!(
            date.weekday(),
            time::Weekday::Saturday | time::Weekday::Sunday
        );
        let queries = if weekend { 60 } else { 150 } + u64::from(d) * 4 + rng.below(40);
        let mut lines = Vec::new();
        for q in 0..queries {
            n += 1;
            // Tier mix about 62 / 28 / 10, drifting towards tier1 as the month goes on.
            let roll = rng.below(100) + u64::from(d) / 4;
            let tier = match roll {
                r if r >= 38 => Tier::Tier1,
                r if r >= 10 => Tier::Tier2,
                _ => Tier::Tier3,
            };
            let mut pick = rng.below(100) as u32;
            let m = MODELS
                .iter()
                .filter(|(m, _)| m.tier == tier)
                .find(|(_, share)| {
                    let hit = pick < *share;
                    pick = pick.saturating_sub(*share);
                    hit
                })
                .map(|(m, _)| m)
                .context("every tier has a model")?;
            let input = 40 + rng.below(900);
            let output = 60 + rng.below(700);
            let failed = rng.below(100) < 2;
            let (cost, baseline) = if failed {
                (0, 0)
            } else {
                (
                    nanos(input, output, (m.input_per_m, m.output_per_m)),
                    nanos(input, output, BASELINE),
                )
            };
            let secs = q * 86_000 / queries;
            let ts = format!(
                "{day}T{:02}:{:02}:{:02}.000Z",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            );
            let rec = CostRecord {
                tenant: if rng.below(3) == 0 { "globex" } else { "acme" }.into(),
                model: m.id.into(),
                tier,
                predicted_tier: if rng.below(100) < 6 && tier != Tier::Tier1 {
                    Tier::Tier1
                } else {
                    tier
                },
                escalated: rng.below(100) < 6,
                decided_by: if rng.below(100) < 35 {
                    DecidedBy::Rule("short_chitchat".into())
                } else {
                    DecidedBy::Classifier
                },
                input_tokens: input,
                output_tokens: if failed { 0 } else { output },
                tokens_estimated: false,
                cost_usd: Usd::from_nanos(cost),
                baseline_cost_usd: Usd::from_nanos(baseline),
                router_ms: 3.0 + rng.below(80) as f64 / 10.0,
                upstream_ms: Some(300.0 + rng.below(2_500) as f64),
                status: if failed {
                    RecordStatus::UpstreamError
                } else {
                    RecordStatus::Ok
                },
                ..routed_record(&format!("0190c3e0-0000-7000-8000-{n:012}"), &ts)
            };
            lines.push(line(&cost_item_json(&rec, ttl)));
        }
        writer.data_file(&format!("{day}.json.gz"), lines)?;
    }
    let dir = writer.finish()?;
    eprintln!("{n} cost records over {DAYS} days");
    println!("{}", dir.display());
    Ok(())
}
