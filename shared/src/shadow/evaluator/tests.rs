//! Tests of the evaluator flow over a scripted upstream and the in-memory store.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::proxy::upstream::{
    ChatCall, ChatStream, ChatUpstream, Completion, UpstreamError, Usage,
};
use crate::shadow::store::MemoryEvaluationStore;

/// Answers from a script (then "42"), counting calls.
#[derive(Default)]
struct Stub {
    script: Mutex<VecDeque<Result<String, UpstreamError>>>,
    calls: AtomicUsize,
}

impl ChatUpstream for Stub {
    async fn complete(&self, _call: ChatCall<'_>) -> Result<Completion, UpstreamError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let next = self.script.lock().unwrap().pop_front();
        let text = next.unwrap_or_else(|| Ok("42".into()))?;
        Ok(Completion {
            status: 200,
            content_type: "application/json".into(),
            body: Bytes::new(),
            json: json!({"choices": [{"message": {"role": "assistant", "content": text}}]}),
            usage: Some(Usage {
                prompt_tokens: 1_000,
                completion_tokens: 100,
                ..Usage::default()
            }),
            elapsed_ms: 1.0,
        })
    }

    async fn stream(&self, _call: ChatCall<'_>) -> Result<ChatStream, UpstreamError> {
        Err(UpstreamError::Connect)
    }
}

fn evaluator(stub: Stub) -> Evaluator<Stub, MemoryEvaluationStore> {
    let settings =
        EvaluatorSettings::from_vars([("TIERWISE_TABLE".to_string(), "t".to_string())]).unwrap();
    Evaluator::new(
        stub,
        MemoryEvaluationStore::new(),
        Arc::new(Embedder::bundled().unwrap()),
        PoolConfig::bundled().unwrap(),
        settings,
    )
    .unwrap()
}

fn sample(routed_model: &str, answer: Option<serde_json::Value>) -> ShadowSample {
    serde_json::from_value(json!({
        "version": 1, "query_id": "q-1", "ts": "2026-11-28T10:00:00.000Z",
        "tenant": "acme", "query": "What is 6 x 7?", "routed_model": routed_model,
        "routed_tier": "tier1", "predicted_tier": "tier1", "decided_by": "classifier",
        "confidence": 0.9, "reference_model": "openai/gpt-4o", "routed_answer": answer,
        "pricing_version": "2026-11-01"
    }))
    .unwrap()
}

#[tokio::test]
async fn evaluates_once_and_prices_the_shadow_calls() {
    let ev = evaluator(Stub::default());
    let s = sample("deepseek/deepseek-v3", None);
    let SampleOutcome::Recorded(rec) = ev.evaluate(&s).await.unwrap() else {
        panic!("not recorded")
    };
    assert_eq!(
        (rec.verdict.as_str(), rec.method.as_str()),
        ("equivalent", "exact")
    );
    assert_eq!(ev.upstream().calls.load(Ordering::SeqCst), 2);
    // deepseek 1000 x 0.14 + 100 x 0.28, gpt-4o 1000 x 2.5 + 100 x 10 (per M).
    let expected = (140.0 + 28.0 + 2_500.0 + 1_000.0) / 1e6;
    assert!(
        (rec.shadow_cost_usd.as_f64() - expected).abs() < 1e-9,
        "{rec:?}"
    );
    assert_eq!(ev.evaluate(&s).await.unwrap(), SampleOutcome::AlreadyDone);
    assert_eq!(ev.upstream().calls.load(Ordering::SeqCst), 2);
    assert_eq!(ev.store().rollups()[0].counters.evaluations, 1);
}

#[tokio::test]
async fn a_failed_call_releases_the_claim() {
    let stub = Stub::default();
    stub.script
        .lock()
        .unwrap()
        .push_back(Err(UpstreamError::Server {
            status: 500,
            retry_after: None,
        }));
    let ev = evaluator(stub);
    let s = sample(
        "deepseek/deepseek-v3",
        Some(json!({"choices": [{"message":
        {"content": "42"}}], "usage": {"prompt_tokens": 5, "completion_tokens": 1}})),
    );
    let e = ev.evaluate(&s).await.unwrap_err();
    assert_eq!(e.kind(), "upstream");
    assert!(e.is_retryable());
    assert!(!ev.store().is_claimed("q-1"));
    assert!(ev.store().records().is_empty());
    assert!(matches!(
        ev.evaluate(&s).await.unwrap(),
        SampleOutcome::Recorded(_)
    ));
    assert_eq!(
        ev.upstream().calls.load(Ordering::SeqCst),
        2,
        "reference only"
    );
}

#[tokio::test]
async fn nothing_to_compare_costs_nothing() {
    let ev = evaluator(Stub::default());
    // The routed model is the reference.
    let SampleOutcome::Recorded(rec) = ev.evaluate(&sample("openai/gpt-4o", None)).await.unwrap()
    else {
        panic!("not recorded")
    };
    assert_eq!(
        (rec.verdict.as_str(), rec.method.as_str()),
        ("equivalent", "same_model")
    );
    assert_eq!(rec.shadow_cost_usd, Usd::ZERO);
    // A proxied answer without text (a tool call): skipped, no call.
    let tool = json!({"choices": [{"message": {"content": null, "tool_calls": []}}]});
    let mut s = sample("deepseek/deepseek-v3", Some(tool));
    s.query_id = "q-2".into();
    assert!(matches!(
        ev.evaluate(&s).await.unwrap(),
        SampleOutcome::Skipped { .. }
    ));
    // An unknown routed model without its answer cannot be evaluated.
    let mut s = sample("nobody/none", None);
    s.query_id = "q-3".into();
    let e = ev.evaluate(&s).await.unwrap_err();
    assert_eq!(e.kind(), "poisoned");
    assert!(!e.is_retryable());
    assert_eq!(ev.upstream().calls.load(Ordering::SeqCst), 0);
    assert!(matches!(
        Evaluator::<Stub, MemoryEvaluationStore>::parse("{\"version\": 7}"),
        Err(EvaluatorError::Poisoned(m)) if m.contains("version 7")
    ));
}
