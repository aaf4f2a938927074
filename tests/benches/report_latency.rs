//! Report latency over rollups (`cargo bench -p tierwise-tests --bench report_latency`): a
//! 31-day month of rollup items (31 days x 3 tenants x 6 models x 4 shards, written with the
//! router's own rollup update) in a `moto_server` the bench starts; then the reporter
//! handler's `GET /v1/reports` for the month, all tenants and one tenant, against a one-day
//! report measured in the same run, and the report built from the month's rows in memory (no
//! I/O: tierwise's own share). moto answers each Query from Python (about 4 ms an item here),
//! so the end-to-end figures are moto's; the item counts and the build time are ours.
//! `TIERWISE_BENCH_ITERS` sets the runs (default 30).

use std::time::Instant;

use benchkit::{Stats, iters_override, ms, round};
use serde_json::json;
use tierwise::aws::dynamo::{read_rollups, rollup_update};
use tierwise::aws::{dynamodb_client, sdk_config_at, setup};
use tierwise::ledger::money::{Timestamp, Usd};
use tierwise::ledger::records::{CostRecord, RecordStatus};
use tierwise::report::{ReportBuilder, ReportParams};
use tierwise::routing::pool::Tier;
use tierwise::serve::settings::{AwsCallSettings, ReporterSettings};
use tierwise_reporter::App;
use tierwise_tests::moto::{Moto, unique_name};

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const MODELS: [(&str, Tier); 6] = [
    ("deepseek/deepseek-v3", Tier::Tier1),
    ("google/gemini-3.1-flash-lite", Tier::Tier1),
    ("openai/gpt-4o-mini", Tier::Tier2),
    ("anthropic/claude-3.5-sonnet", Tier::Tier2),
    ("openai/gpt-4o", Tier::Tier3),
    ("anthropic/claude-opus-4.7", Tier::Tier3),
];
const SHARDS: u32 = 4;

fn record(day: u32, tenant: &str, model: &str, tier: Tier, n: u64) -> CostRecord {
    CostRecord {
        record: "cost".into(),
        query_id: format!("bench-{day}-{tenant}-{model}-{n}"),
        ts: Timestamp::parse(&format!("2026-10-{day:02}T12:00:00.000Z"))
            .unwrap_or_else(Timestamp::now),
        tenant: tenant.into(),
        model: model.into(),
        tier,
        predicted_tier: tier,
        confidence: 0.9,
        escalated: n.is_multiple_of(7),
        decided_by: tierwise::routing::decision::DecidedBy::Classifier,
        task_kind: None,
        input_tokens: 40 + n,
        output_tokens: 300,
        tokens_estimated: true,
        cost_usd: Usd::from_f64(0.0001 * (1 + tier.index()) as f64),
        baseline_model: "openai/gpt-4o".into(),
        baseline_cost_usd: Usd::from_f64(0.0031),
        router_ms: 5.0 + (n % 9) as f64,
        upstream_ms: None,
        status: RecordStatus::Routed,
        shadow: false,
        pricing_version: "2026-11-01".into(),
        router_version: "bench".into(),
        upstream: None,
    }
}

fn main() -> anyhow::Result<()> {
    let iters = iters_override().map_err(anyhow::Error::msg)?.unwrap_or(30);
    let moto = Moto::start().map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let sdk = sdk_config_at(&AwsCallSettings::default(), moto.endpoint()).await;
        let ddb = dynamodb_client(&sdk);
        let table = unique_name("report-bench");
        setup::create_table(&ddb, &table).await?;
        // Every (day, tenant, model, shard) rollup item once: each write adds one record's
        // counters through the update the router sends.
        let mut items = 0;
        for day in 1..=31u32 {
            for tenant in TENANTS {
                for (model, tier) in MODELS {
                    let mut n = 0u64;
                    let mut shards_seen = std::collections::HashSet::new();
                    while shards_seen.len() < SHARDS as usize {
                        let rec = record(day, tenant, model, tier, n);
                        let (key, expr, names, values) = rollup_update(&rec, SHARDS);
                        if shards_seen.insert(rec.rollup_key(SHARDS).shard) {
                            ddb.update_item()
                                .table_name(&table)
                                .set_key(Some(key))
                                .update_expression(expr)
                                .set_expression_attribute_names(Some(names))
                                .set_expression_attribute_values(Some(values))
                                .send()
                                .await?;
                            items += 1;
                        }
                        n += 1;
                    }
                }
            }
        }
        let settings = ReporterSettings::from_vars([
            ("TIERWISE_TABLE".to_string(), table),
            // moto serialises queries (one Python process): long timeouts, so none fires.
            ("TIERWISE_AWS_ATTEMPT_TIMEOUT_MS".to_string(), "60000".to_string()),
            ("TIERWISE_AWS_OPERATION_TIMEOUT_MS".to_string(), "120000".to_string()),
        ])?;
        // The reporter's own timeouts (longer than the router's write timeouts).
        let reader = dynamodb_client(&sdk_config_at(&settings.aws, moto.endpoint()).await);
        // tierwise's own share: building the month's report from rows already read.
        let params = ReportParams::parse(Some("2026-10-01"), Some("2026-10-31"), None, Some("model"))?;
        let rows = read_rollups(&reader, &settings.table, &params.day_strings(), None, 8).await?;
        let mut build = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = Instant::now();
            let mut b = ReportBuilder::new(&params);
            for r in &rows {
                b.add(r);
            }
            let body = serde_json::to_string(&b.finish())?;
            std::hint::black_box(body);
            build.push(ms(t));
        }
        let build = Stats::of(&build);
        let app = App::new(reader, &settings, Box::new(|_| {}));
        let moto = &moto;
        let run = |query: String| {
            let app = &app;
            async move {
                let mut times = Vec::with_capacity(iters);
                let mut queries = 0;
                for i in 0..iters + 3 {
                    let ev = json!({
                        "version": "2.0", "routeKey": "GET /v1/reports", "rawPath": "/v1/reports",
                        "rawQueryString": query,
                        "queryStringParameters": query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                        "headers": {}, "isBase64Encoded": false,
                        "requestContext": {"http": {"method": "GET", "path": "/v1/reports", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
                            "accountId": "1", "apiId": "b", "domainName": "x", "requestId": "r", "routeKey": "GET /v1/reports", "stage": "$default", "time": "t", "timeEpoch": 0}
                    });
                    let req = lambda_http::request::from_str(&ev.to_string())?;
                    let t = Instant::now();
                    let res = app.handle(req).await;
                    let took = ms(t);
                    anyhow::ensure!(
                        res.status() == 200,
                        "report answered {}: {:?}\nmoto: {}",
                        res.status(),
                        res.body(),
                        moto.stderr_tail()
                    );
                    let body: serde_json::Value = serde_json::from_slice(res.body().as_ref())?;
                    queries = body["rows_read"].as_u64().unwrap_or(0);
                    if i >= 3 {
                        times.push(took);
                    }
                }
                anyhow::Ok((Stats::of(&times), queries))
            }
        };
        let (day, day_rows) = run("from=2026-10-15&to=2026-10-15".into()).await?;
        let (month, month_rows) = run("from=2026-10-01&to=2026-10-31&group_by=model".into()).await?;
        let (tenant, tenant_rows) = run("from=2026-10-01&to=2026-10-31&tenant=acme".into()).await?;
        println!("report latency over rollups ({items} rollup items in the table, moto on loopback, {iters} runs)");
        println!("{:<28} {:>6} {:>9} {:>9} {:>10}", "report", "items", "P50 ms", "P99 ms", "P50 ratio");
        println!(
            "{:<28} {:>6} {:>9.3} {:>9.3}   (report built from rows in memory, no I/O)",
            "31 days, build + JSON only",
            rows.len(),
            build.p50,
            build.p99
        );
        for (name, s, rows) in [("1 day, all tenants", day, day_rows), ("31 days, all tenants", month, month_rows), ("31 days, one tenant", tenant, tenant_rows)] {
            println!("{name:<28} {rows:>6} {:>9.1} {:>9.1} {:>9.1}x", s.p50, s.p99, s.p50 / day.p50);
        }
        println!("{}", json!({
            "items": items,
            "day": {"rows": day_rows, "p50_ms": round(day.p50), "p99_ms": round(day.p99)},
            "month": {"rows": month_rows, "p50_ms": round(month.p50), "p99_ms": round(month.p99)},
            "month_one_tenant": {"rows": tenant_rows, "p50_ms": round(tenant.p50), "p99_ms": round(tenant.p99)},
            "month_build_only": {"rows": rows.len(), "p50_ms": round(build.p50), "p99_ms": round(build.p99)},
        }));
        anyhow::Ok(())
    })
}
