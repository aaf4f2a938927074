//! Evaluator throughput (`cargo bench -p tierwise-tests --bench evaluator_throughput`): shadow
//! samples evaluated per second by one instance (one thread, as in Lambda), through the
//! evaluator handler (`App::handle`) in SQS batches of 10, against the fake upstream on
//! loopback (no added latency: the cost of tierwise plus the loopback HTTP) and
//!
//! - DynamoDB in a `moto_server` the bench starts (claim, completion transaction: moto answers
//!   from Python, so this is mostly moto's speed), and
//! - the in-memory store (no I/O beyond the upstream: tierwise's own share: parsing, the HTTP
//!   call, the comparison with MiniLM embeddings for free text).
//!
//! Half the samples have short answers (exact match), half free text (two MiniLM embeddings).
//! Prints one JSON line per configuration. `TIERWISE_BENCH_ITERS` sets the number of samples
//! per configuration (default 400).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use benchkit::{iters_override, round};
use serde_json::{Value, json};
use tierwise::aws::evaluations::DynamoEvaluationStore;
use tierwise::aws::{dynamodb_client, sdk_config_at, setup};
use tierwise::proxy::upstream::{ApiKey, Endpoint, Endpoints, HttpUpstream, UpstreamSettings};
use tierwise::routing::embed::Embedder;
use tierwise::routing::pool::PoolConfig;
use tierwise::serve::settings::AwsCallSettings;
use tierwise::shadow::evaluator::Evaluator;
use tierwise::shadow::settings::EvaluatorSettings;
use tierwise::shadow::store::{EvaluationStore, MemoryEvaluationStore};
use tierwise_evaluator::App;
use tierwise_tests::fake_upstream::{Behaviour, FakeUpstream};
use tierwise_tests::moto::{Moto, unique_name};

const ROUTED: &str = "deepseek/deepseek-v3";
const REFERENCE: &str = "openai/gpt-4o";
const BATCH: usize = 10;

const FREE_ROUTED: &str = "The sky looks blue because air molecules scatter short blue \
    wavelengths of sunlight much more strongly than the longer red wavelengths.";
const FREE_REFERENCE: &str = "Sunlight is scattered by the molecules of the atmosphere, and \
    blue light, with its shorter wavelength, is scattered far more than red light.";

fn sample(i: usize, run: &str) -> String {
    let free = i % 2 == 1;
    let (q, answer) = if free {
        ("Explain briefly why the sky is blue.", FREE_ROUTED)
    } else {
        ("What is 6 x 7?", "42")
    };
    json!({
        "version": 1,
        "query_id": format!("{run}-{i:06}"),
        "ts": "2026-11-28T10:00:00.000Z",
        "tenant": "bench",
        "query": q,
        "routed_model": ROUTED,
        "routed_tier": "tier1",
        "predicted_tier": "tier1",
        "decided_by": "classifier",
        "confidence": 0.9,
        "reference_model": REFERENCE,
        "routed_answer": {
            "id": "x", "object": "chat.completion", "model": ROUTED,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 30},
        },
        "pricing_version": "2026-11-01",
    })
    .to_string()
}

fn event(batch: &[(String, String)]) -> SqsEvent {
    let records: Vec<Value> = batch
        .iter()
        .map(|(id, body)| json!({"messageId": id, "body": body, "attributes": {}}))
        .collect();
    match serde_json::from_value(json!({ "Records": records })) {
        Ok(e) => e,
        Err(e) => panic!("bad event: {e}"),
    }
}

async fn run<S: EvaluationStore>(
    label: &str,
    store: S,
    fake: &FakeUpstream,
    embedder: &Arc<Embedder>,
    n: usize,
) -> Result<(), String> {
    let settings = EvaluatorSettings::from_vars([(
        "TIERWISE_TABLE".to_string(),
        "unused-by-memory".to_string(),
    )])
    .map_err(|e| e.to_string())?;
    let pool = PoolConfig::bundled().map_err(|e| e.to_string())?;
    let endpoints: Endpoints = pool
        .providers()
        .map(|(name, _)| {
            (
                name.to_string(),
                Endpoint::new(fake.base_url(), ApiKey::new("sk-bench")),
            )
        })
        .collect();
    let upstream =
        HttpUpstream::new(endpoints, &UpstreamSettings::default()).map_err(|e| e.to_string())?;
    let evaluator = Evaluator::new(upstream, store, Arc::clone(embedder), pool, settings)
        .map_err(|e| e.to_string())?;
    let app = App::new(evaluator, Box::new(|_| {}));
    let run_id = unique_name("b");
    let messages: Vec<(String, String)> = (0..n)
        .map(|i| (format!("m-{i}"), sample(i, &run_id)))
        .collect();
    // Warm-up (connections, first embeddings), not counted.
    let warm: Vec<(String, String)> = (0..BATCH)
        .map(|i| (format!("w-{i}"), sample(i, &format!("{run_id}-warm"))))
        .collect();
    app.handle(event(&warm)).await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut failed = 0;
    for chunk in messages.chunks(BATCH) {
        let res = app.handle(event(chunk)).await.map_err(|e| e.to_string())?;
        failed += res.batch_item_failures.len();
    }
    let secs = started.elapsed().as_secs_f64();
    if failed > 0 {
        return Err(format!("{label}: {failed} samples failed"));
    }
    println!(
        "{}",
        json!({
            "bench": "evaluator_throughput",
            "store": label,
            "samples": n,
            "batch": BATCH,
            "concurrency": app.evaluator().settings().concurrency,
            "samples_per_s": round(n as f64 / secs),
            "ms_per_sample": round(secs * 1e3 / n as f64),
        })
    );
    Ok(())
}

fn main() -> Result<(), String> {
    let n = iters_override()?.unwrap_or(400);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let fake = FakeUpstream::start().map_err(|e| e.to_string())?;
    fake.set_default(ROUTED, Behaviour::content("42"));
    fake.set_default(
        REFERENCE,
        Behaviour::Answer {
            content: Some(FREE_REFERENCE.into()),
            usage: Some((12, 30)),
        },
    );
    let embedder = Arc::new(Embedder::bundled().map_err(|e| e.to_string())?);
    let moto = Moto::start()?;
    rt.block_on(async {
        run("memory", MemoryEvaluationStore::new(), &fake, &embedder, n).await?;
        let sdk = sdk_config_at(
            &AwsCallSettings {
                operation_timeout: Duration::from_secs(10),
                attempt_timeout: Duration::from_secs(5),
                max_attempts: 3,
            },
            moto.endpoint(),
        )
        .await;
        let ddb = dynamodb_client(&sdk);
        let table = unique_name("bench-evals");
        setup::create_table(&ddb, &table)
            .await
            .map_err(|e| e.to_string())?;
        let store = DynamoEvaluationStore::new(ddb, &table, 90);
        run("moto", store, &fake, &embedder, n).await
    })
}
