//! Load test of the proxy (`cargo bench -p tierwise-tests --bench proxy_load`): the router
//! Lambda's handler in process answering `POST /v1/chat/completions` against the fake
//! OpenAI-compatible upstream on loopback (fixed latency per call), with DynamoDB and SQS
//! served by a loopback endpoint that answers every call at once (moto is neither fast nor
//! safe under concurrent transactions; the write's own cost is in the router_overhead bench).
//!
//! Runs, in one process: (a) the upstream client alone against the fake (the baseline: what
//! any client pays for the same call), (b) the proxy one request at a time (what one Lambda
//! instance does), (c) the proxy with `TIERWISE_BENCH_CONCURRENCY` requests in flight on one
//! thread, (d) as (c) with faults: every 10th call of the routed model answers 500 and every
//! 25th 429 (Retry-After: 0), so fallbacks and retries run. Prints throughput, latency and
//! the proxy's overhead (total minus the upstream time it reports in `x-tierwise-upstream-ms`)
//! P50/P99, and the count of requests that did not get a 200 (must be 0).
//! `TIERWISE_BENCH_ITERS` (default 1000 per run), `TIERWISE_BENCH_CONCURRENCY` (16),
//! `TIERWISE_BENCH_UPSTREAM_MS` (20).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benchkit::{Stats, iters_override, ms, round};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use tierwise::aws::sdk_config_at;
use tierwise::proxy::upstream::{
    ApiKey, ChatCall, ChatUpstream, Endpoint, HttpUpstream, UpstreamSettings,
};
use tierwise::routing::decision::Router;
use tierwise::serve::settings::{AwsCallSettings, RouterSettings};
use tierwise_router::{App, UPSTREAM_MS_HEADER, build_proxy, build_service};
use tierwise_tests::fake_upstream::{Behaviour, FakeUpstream};
use tierwise_tests::scripted::{Reply, ScriptedServer};

const QUERY: &str = "Summarize the main arguments for and against nuclear power as a climate solution, in three short bullet points for a general audience.";

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => Ok(v.parse()?),
        Err(_) => Ok(default),
    }
}

struct Run {
    name: &'static str,
    total: Stats,
    overhead: Stats,
    per_sec: f64,
    errors: usize,
    n: usize,
}

fn main() -> anyhow::Result<()> {
    let iters = iters_override()
        .map_err(anyhow::Error::msg)?
        .unwrap_or(1000);
    let concurrency = env_usize("TIERWISE_BENCH_CONCURRENCY", 16)?;
    let latency = Duration::from_millis(env_usize("TIERWISE_BENCH_UPSTREAM_MS", 20)? as u64);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let fake = Arc::new(FakeUpstream::start()?);
    fake.set_latency(latency);
    let canned =
        ScriptedServer::start(vec![], Reply::json(200, "application/x-amz-json-1.0", "{}"))?;
    let endpoints = BTreeMap::from([(
        "openrouter".to_string(),
        Endpoint::new(fake.base_url(), ApiKey::new("sk-bench")),
    )]);

    rt.block_on(async {
        // (a) The upstream client alone.
        let client = HttpUpstream::new(endpoints.clone(), &UpstreamSettings::default())?;
        let body = Bytes::from(
            json!({"model": "deepseek/deepseek-v3", "messages": [{"role": "user", "content": QUERY}]})
                .to_string(),
        );
        let mut direct = Vec::with_capacity(iters);
        let started = Instant::now();
        for _ in 0..iters {
            let t = Instant::now();
            client
                .complete(ChatCall {
                    provider: "openrouter",
                    body: body.clone(),
                    deadline: Duration::from_secs(10),
                })
                .await?;
            direct.push(ms(t));
        }
        let direct_rate = iters as f64 / started.elapsed().as_secs_f64();

        let sdk = sdk_config_at(&AwsCallSettings::default(), canned.url()).await;
        let settings = RouterSettings::from_vars([
            ("TIERWISE_TABLE".to_string(), "bench".to_string()),
            ("TIERWISE_SHADOW_QUEUE_URL".to_string(), canned.url().to_string()),
            ("TIERWISE_FALLBACK_QUEUE_URL".to_string(), canned.url().to_string()),
            ("TIERWISE_SHADOW_RATE".to_string(), "0.05".to_string()),
            // Fault runs must not open breakers: this measures the chain, not the breaker.
            ("TIERWISE_BREAKER_FAILURES".to_string(), "1000000".to_string()),
        ])?;
        let app = Arc::new(
            App::new(
                build_service(Router::bundled()?, &sdk, &sdk, &settings),
                false,
                0.0,
                Box::new(|_| {}),
            )
            .with_proxy(
                Some(build_proxy(endpoints.clone(), &sdk, &settings)?),
                Duration::from_secs(30),
            ),
        );
        let request = || {
            lambda_http::http::Request::builder()
                .method("POST")
                .uri("/v1/chat/completions")
                .header("content-type", "application/json")
                .body(lambda_http::Body::Text(
                    json!({"model": "auto", "messages": [{"role": "user", "content": QUERY}]})
                        .to_string(),
                ))
        };
        // Warm-up, and the model the query routes to.
        let mut routed = String::new();
        for _ in 0..20 {
            let res = app.handle(request()?).await;
            anyhow::ensure!(res.status() == 200, "warm-up answered {}", res.status());
            routed = res.headers()["x-tierwise-model"].to_str()?.to_string();
        }

        let run = |name: &'static str, conc: usize| {
            let app = Arc::clone(&app);
            async move {
                let started = Instant::now();
                let results: Vec<anyhow::Result<(u16, f64, f64)>> =
                    futures_util::stream::iter(0..iters)
                        .map(|_| {
                            let app = Arc::clone(&app);
                            async move {
                                let t = Instant::now();
                                let res = app.handle(request()?).await;
                                let total = ms(t);
                                let upstream: f64 = res
                                    .headers()
                                    .get(UPSTREAM_MS_HEADER)
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.parse().ok())
                                    .unwrap_or(0.0);
                                Ok((res.status().as_u16(), total, total - upstream))
                            }
                        })
                        .buffer_unordered(conc)
                        .collect()
                        .await;
                let secs = started.elapsed().as_secs_f64();
                let mut total = Vec::new();
                let mut overhead = Vec::new();
                let mut errors = 0;
                for r in results {
                    let (status, t, o) = r?;
                    if status != 200 {
                        errors += 1;
                    }
                    total.push(t);
                    overhead.push(o);
                }
                anyhow::Ok(Run {
                    name,
                    total: Stats::of(&total),
                    overhead: Stats::of(&overhead),
                    per_sec: iters as f64 / secs,
                    errors,
                    n: iters,
                })
            }
        };
        let sequential = run("proxy, 1 in flight", 1).await?;
        let concurrent = run("proxy, N in flight", concurrency).await?;
        // Faults on the routed model: every 10th call a 500, every 25th a 429 (Retry-After 0).
        let script: Vec<Behaviour> = (1..=iters * 2)
            .map(|i| {
                if i % 10 == 0 {
                    Behaviour::Status { status: 500, retry_after: None, body: "{}".into() }
                } else if i % 25 == 0 {
                    Behaviour::Status { status: 429, retry_after: Some("0".into()), body: "{}".into() }
                } else {
                    Behaviour::answer()
                }
            })
            .collect();
        fake.script(&routed, script);
        let faults = run("proxy, N in flight, faults", concurrency).await?;

        let base = Stats::of(&direct);
        println!(
            "proxy load: {iters} requests a run, upstream latency {} ms, {concurrency} in flight for N (one thread), routed to {routed}",
            latency.as_millis()
        );
        println!(
            "{:<30} {:>9} {:>9} {:>9} {:>12} {:>12} {:>7}",
            "run", "req/s", "P50 ms", "P99 ms", "ovh P50 ms", "ovh P99 ms", "errors"
        );
        println!(
            "{:<30} {:>9.1} {:>9.2} {:>9.2} {:>12} {:>12} {:>7}",
            "upstream client alone", direct_rate, base.p50, base.p99, "-", "-", 0
        );
        for r in [&sequential, &concurrent, &faults] {
            println!(
                "{:<30} {:>9.1} {:>9.2} {:>9.2} {:>12.2} {:>12.2} {:>7}",
                r.name, r.per_sec, r.total.p50, r.total.p99, r.overhead.p50, r.overhead.p99, r.errors
            );
        }
        println!(
            "ratio of the proxy's P50 (1 in flight) to the client alone: {:.2}x",
            sequential.total.p50 / base.p50
        );
        let rows: Vec<_> = [&sequential, &concurrent, &faults]
            .iter()
            .map(|r| {
                json!({"run": r.name, "n": r.n, "req_per_s": round(r.per_sec), "p50_ms": round(r.total.p50),
                       "p99_ms": round(r.total.p99), "overhead_p50_ms": round(r.overhead.p50),
                       "overhead_p99_ms": round(r.overhead.p99), "errors": r.errors})
            })
            .collect();
        println!(
            "{}",
            json!({"upstream_ms": latency.as_millis() as u64, "concurrency": concurrency,
                   "client_alone": {"p50_ms": round(base.p50), "p99_ms": round(base.p99), "req_per_s": round(direct_rate)},
                   "runs": rows})
        );
        anyhow::ensure!(
            sequential.errors + concurrent.errors + faults.errors == 0,
            "requests failed under load"
        );
        Ok(())
    })
}
