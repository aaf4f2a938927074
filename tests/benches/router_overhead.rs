//! Router overhead in the local stack (`cargo bench -p tierwise-tests --bench router_overhead`):
//! the same 32-token query through
//!   (a) the decision alone (`Router::route`, in process),
//!   (b) the Lambda handler with its DynamoDB write (conditional put + rollup, one transaction),
//!   (c) the handler with the DynamoDB write and the SQS shadow sample (every query sampled),
//! with DynamoDB and SQS served by a `moto_server` the bench starts on loopback, and (b), (c)
//! again against a loopback endpoint answering every call at once (what remains is tierwise's
//! own cost of a write: serialise, sign, HTTP). Prints P50/P99 per path and the ratios to (a)
//! measured in the same run. moto is a Python server that copies the whole table for every
//! transaction: its figures bound the write from above and grow with the table.
//! `TIERWISE_BENCH_ITERS` sets the measured runs (default 300, after 30 warm-ups).

use std::time::Instant;

use benchkit::{Stats, iters_override, ms, round};
use serde_json::json;
use tierwise::aws::{dynamodb_client, sdk_config_at, setup, sqs_client};
use tierwise::routing::decision::{AllHealthy, RouteRequest, Router};
use tierwise::serve::settings::{AwsCallSettings, RouterSettings};
use tierwise_router::{App, build_service};
use tierwise_tests::moto::{Moto, unique_name};
use tierwise_tests::scripted::{Reply, ScriptedServer};

/// 32 tokens with the bundled tokenizer ([CLS] + 30 + [SEP]).
const QUERY: &str = "Summarize the main arguments for and against nuclear power as a climate solution, in three short bullet points for a general audience.";

fn main() -> anyhow::Result<()> {
    let iters = iters_override().map_err(anyhow::Error::msg)?.unwrap_or(300);
    let warmup = 30;
    let moto = Moto::start().map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let router = Router::bundled()?;
    let tokens = router.embedder().tokenizer().count(QUERY)?;
    let req = RouteRequest::query(QUERY);
    let mut decision = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let t = Instant::now();
        let d = router.route(&req, &AllHealthy)?;
        std::hint::black_box(d);
        if i >= warmup {
            decision.push(ms(t));
        }
    }

    // A loopback endpoint that answers every call at once with an empty success: what is left
    // is tierwise's own cost of a write (serialise, sign, HTTP), without moto's Python.
    let canned =
        ScriptedServer::start(vec![], Reply::json(200, "application/x-amz-json-1.0", "{}"))?;
    let handler = |rate: f64, endpoint: &str| -> anyhow::Result<Vec<f64>> {
        rt.block_on(async {
            let sdk = sdk_config_at(&AwsCallSettings::default(), moto.endpoint()).await;
            let app_sdk = sdk_config_at(&AwsCallSettings::default(), endpoint).await;
            let (ddb, sqs) = (dynamodb_client(&sdk), sqs_client(&sdk));
            let r = setup::create_router_resources(
                &ddb,
                &sqs,
                &unique_name("bench"),
                &unique_name("q"),
            )
            .await?;
            let (table, shadow, fallback) = (r.table, r.shadow_queue_url, r.fallback_queue_url);
            let settings = RouterSettings::from_vars([
                ("TIERWISE_TABLE".to_string(), table),
                ("TIERWISE_SHADOW_QUEUE_URL".to_string(), shadow),
                ("TIERWISE_FALLBACK_QUEUE_URL".to_string(), fallback),
                ("TIERWISE_SHADOW_RATE".to_string(), rate.to_string()),
            ])?;
            let app = App::new(
                build_service(Router::bundled()?, &app_sdk, &app_sdk, &settings),
                false,
                0.0,
                Box::new(|_| {}),
            );
            let body = json!({"query": QUERY, "tenant": "bench"}).to_string();
            let mut times = Vec::with_capacity(iters);
            for i in 0..warmup + iters {
                let req = lambda_http::http::Request::builder()
                    .method("POST")
                    .uri("/v1/route")
                    .header("content-type", "application/json")
                    .body(lambda_http::Body::Text(body.clone()))?;
                let t = Instant::now();
                let res = app.handle(req).await;
                let took = ms(t);
                anyhow::ensure!(res.status() == 200, "handler answered {}", res.status());
                if i >= warmup {
                    times.push(took);
                }
            }
            Ok(times)
        })
    };
    let with_record = handler(0.0, moto.endpoint())?;
    let with_sample = handler(1.0, moto.endpoint())?;
    let canned_record = handler(0.0, canned.url())?;
    let canned_sample = handler(1.0, canned.url())?;

    let base = Stats::of(&decision);
    let rows = [
        ("decision", Stats::of(&decision)),
        ("decision+dynamodb", Stats::of(&with_record)),
        ("decision+dynamodb+sqs", Stats::of(&with_sample)),
        ("decision+write (instant)", Stats::of(&canned_record)),
        ("decision+write+sqs (inst)", Stats::of(&canned_sample)),
    ];
    println!("router overhead, {tokens}-token query, {iters} runs each (moto_server on loopback)");
    println!(
        "{:<24} {:>9} {:>9} {:>10} {:>10}",
        "path", "P50 ms", "P99 ms", "P50 ratio", "P99 ratio"
    );
    for (name, s) in &rows {
        println!(
            "{name:<26} {:>9.2} {:>9.2} {:>9.1}x {:>9.1}x",
            s.p50,
            s.p99,
            s.p50 / base.p50,
            s.p99 / base.p99
        );
    }
    let summary: Vec<_> = rows
        .iter()
        .map(|(name, s)| json!({"path": name, "p50_ms": round(s.p50), "p99_ms": round(s.p99)}))
        .collect();
    println!(
        "{}",
        json!({"tokens": tokens, "runs": iters, "paths": summary})
    );
    Ok(())
}
