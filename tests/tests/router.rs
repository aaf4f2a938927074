//! Integration tests of the routing decision through the library API (`tierwise::routing::decision`):
//! the decision's contract fields and cost arithmetic, rules, tier bounds, escalation,
//! request validation and status codes, size limits, model health, context windows, the
//! request/response JSON shapes, and sharing one router across threads.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] functions panic on bad fixtures too: that is what a test wants"
)]

use std::sync::OnceLock;

use tierwise::ledger::money::Usd;
use tierwise::routing::decision::{
    AllHealthy, DecidedBy, Decision, HealthView, RouteError, RouteRequest, Router,
};
use tierwise::routing::pool::{Capability, PoolConfig, Tier};
use tierwise::serve::errors::ApiError;

/// The HTTP status a routing error is answered with.
fn status(e: &RouteError) -> u16 {
    ApiError::from(e).status
}

/// A query no shipped rule decides or bounds (no greeting, no lookup prefix, no code, short).
const PLAIN: &str = "Explain the trade-offs between optimistic and pessimistic locking in a \
                     relational database, and when each one is the better choice.";
const HARD_MATH: &str = "Prove that for every prime p > 3, p^2 - 1 is divisible by 24, and then \
                         generalise the argument to show which integers n divide p^2 - 1 for all \
                         sufficiently large primes p, with a rigorous proof of maximality.";
const CODE: &str =
    "Why does this print None?\n```python\ndef add(a, b):\n    a + b\n\nprint(add(1, 2))\n```";

/// Queries of varied kinds, for properties that must hold on every decision.
const VARIED: [&str; 6] = [
    PLAIN,
    HARD_MATH,
    CODE,
    "hello!",
    "What is the capital of France?",
    "Summarise the main causes of the French Revolution in three paragraphs for a high-school \
     history class.",
];

fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| Router::bundled().expect("the bundled router loads"))
}

fn route(req: &RouteRequest) -> Result<Decision, RouteError> {
    router().route(req, &AllHealthy)
}

fn decide(query: &str) -> Decision {
    route(&RouteRequest::query(query)).unwrap_or_else(|e| panic!("routing {query:?}: {e}"))
}

fn route_err(req: &RouteRequest) -> RouteError {
    match route(req) {
        Ok(d) => panic!("expected an error, got a decision {d:?}"),
        Err(e) => e,
    }
}

fn request_json(json: serde_json::Value) -> RouteRequest {
    serde_json::from_value(json).expect("a valid RouteRequest")
}

/// Models marked unhealthy by id; every other model is healthy.
struct Unhealthy(Vec<String>);

impl HealthView for Unhealthy {
    fn is_healthy(&self, model_id: &str) -> bool {
        !self.0.iter().any(|m| m == model_id)
    }
}

/// About 2,000 words of ordinary prose (no code, no rule keywords).
fn two_thousand_words() -> String {
    "The committee reviewed the quarterly budget and discussed several open proposals. ".repeat(200)
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-9,
        "{what}: got {actual}, expected {expected}"
    );
}

#[test]
fn plain_query_decision_is_consistent_with_the_pool() {
    let pool = router().pool();
    for query in VARIED {
        let d = decide(query);
        let (model_tier, model) = pool
            .model(&d.model)
            .unwrap_or_else(|| panic!("{query:?}: model {} is not in the pool", d.model));
        assert_eq!(
            model_tier, d.tier,
            "{query:?}: model {} is not of tier {}",
            d.model, d.tier
        );

        assert!(
            !d.fallbacks.contains(&d.model),
            "{query:?}: fallbacks repeat the model: {d:?}"
        );
        for fb in &d.fallbacks {
            let (fb_tier, _) = pool
                .model(fb)
                .unwrap_or_else(|| panic!("{query:?}: fallback {fb} is not in the pool"));
            assert!(
                fb_tier >= d.tier,
                "{query:?}: fallback {fb} ({fb_tier}) is below {}",
                d.tier
            );
        }
        let mut unique = d.fallbacks.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            d.fallbacks.len(),
            "{query:?}: duplicate fallbacks {:?}",
            d.fallbacks
        );

        // UUID v7: 8-4-4-4-12 lowercase hex, version nibble 7, RFC 4122 variant.
        let id = &d.query_id;
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12],
            "{id} is not a UUID"
        );
        assert!(
            groups
                .iter()
                .all(|g| g.chars().all(|c| c.is_ascii_hexdigit())),
            "{id}"
        );
        let hex: Vec<char> = id.chars().filter(|c| *c != '-').collect();
        assert_eq!(hex[12], '7', "{id} is not a version 7 UUID");
        assert!(
            matches!(hex[16], '8' | '9' | 'a' | 'b' | 'A' | 'B'),
            "{id}: bad variant"
        );

        // Costs: the chosen model's and the baseline's prices on the decision's tokens.
        let ins = d.input_tokens as f64;
        let outs = d.output_tokens as f64;
        assert!(d.input_tokens > 0, "{query:?}: no input tokens");
        let expected_out = pool.expected_output_tokens().min(model.max_output_tokens);
        assert_eq!(d.output_tokens, u64::from(expected_out), "{query:?}");
        let expected = (ins * model.input_usd_per_m + outs * model.output_usd_per_m) / 1e6;
        assert_close(
            d.estimated_cost_usd.as_f64(),
            expected,
            "estimated_cost_usd",
        );
        let b = pool.baseline();
        let baseline = (ins * b.input_usd_per_m + outs * b.output_usd_per_m) / 1e6;
        assert_close(d.baseline_cost_usd.as_f64(), baseline, "baseline_cost_usd");
        assert!(d.estimated_cost_usd > Usd::ZERO && d.baseline_cost_usd > Usd::ZERO);

        assert_eq!(d.pricing_version, pool.pricing_version());
        assert!(!d.pricing_version.is_empty());
        assert_eq!(d.router_version, tierwise::ROUTER_VERSION);
        assert!(!d.router_version.is_empty());
        assert!(d.router_ms > 0.0, "{query:?}: router_ms {}", d.router_ms);
        assert!(
            (0.0..=1.0).contains(&d.confidence),
            "{query:?}: confidence {}",
            d.confidence
        );
        assert_eq!(d.tenant, "default");
    }
}

#[test]
fn query_ids_are_unique() {
    let a = decide(PLAIN);
    let b = decide(PLAIN);
    assert_ne!(a.query_id, b.query_id);
    assert_eq!(a.tier, b.tier, "routing is deterministic");
}

#[test]
fn tenant_is_carried_through() {
    let req = RouteRequest {
        tenant: Some("acme".into()),
        ..RouteRequest::query(PLAIN)
    };
    assert_eq!(route(&req).unwrap().tenant, "acme");
}

#[test]
fn greeting_is_decided_by_the_greeting_rule() {
    let d = decide("hello!");
    assert_eq!(d.decided_by, DecidedBy::rule("greeting"));
    assert_eq!(d.tier, Tier::Tier1);
    assert_eq!(d.predicted_tier, Tier::Tier1);
    assert!(!d.escalated);
}

#[test]
fn code_fence_is_at_least_tier2() {
    let d = decide(CODE);
    assert!(d.tier >= Tier::Tier2, "code routed to {}: {d:?}", d.tier);
}

#[test]
fn plain_query_is_decided_by_the_classifier() {
    let d = decide(PLAIN);
    assert_eq!(d.decided_by, DecidedBy::Classifier, "{d:?}");
}

#[test]
fn max_tier_caps_and_min_tier_raises() {
    for query in [HARD_MATH, PLAIN, CODE, "hello!"] {
        let capped = route(&RouteRequest {
            max_tier: Some(Tier::Tier1),
            ..RouteRequest::query(query)
        })
        .unwrap();
        assert_eq!(
            capped.tier,
            Tier::Tier1,
            "{query:?}: max_tier=tier1 gave {capped:?}"
        );
        assert_eq!(router().pool().model(&capped.model).unwrap().0, Tier::Tier1);
        for fb in &capped.fallbacks {
            assert_eq!(
                router().pool().model(fb).unwrap().0,
                Tier::Tier1,
                "{fb} is above max_tier"
            );
        }

        let raised = route(&RouteRequest {
            min_tier: Some(Tier::Tier3),
            ..RouteRequest::query(query)
        })
        .unwrap();
        assert_eq!(
            raised.tier,
            Tier::Tier3,
            "{query:?}: min_tier=tier3 gave {raised:?}"
        );
        assert_eq!(router().pool().model(&raised.model).unwrap().0, Tier::Tier3);

        let pinned = route(&RouteRequest {
            min_tier: Some(Tier::Tier2),
            max_tier: Some(Tier::Tier2),
            ..RouteRequest::query(query)
        })
        .unwrap();
        assert_eq!(pinned.tier, Tier::Tier2, "{query:?}");
    }
}

#[test]
fn min_tier_above_max_tier_is_a_400() {
    let req = RouteRequest {
        min_tier: Some(Tier::Tier3),
        max_tier: Some(Tier::Tier1),
        ..RouteRequest::query(PLAIN)
    };
    let err = route_err(&req);
    assert_eq!(status(&err), 400, "{err:?}");
    assert!(!err.is_retryable());
}

#[test]
fn require_confidence_one_escalates_classifier_decisions() {
    let mut classifier_decided = 0;
    for query in VARIED {
        let req = RouteRequest {
            require_confidence: Some(1.0),
            ..RouteRequest::query(query)
        };
        let d = route(&req).unwrap();
        if d.decided_by != DecidedBy::Classifier {
            continue;
        }
        classifier_decided += 1;
        if d.predicted_tier == Tier::Tier3 {
            assert!(!d.escalated, "{query:?}: nothing above tier3: {d:?}");
            assert_eq!(d.tier, Tier::Tier3);
        } else {
            assert!(
                d.escalated,
                "{query:?}: confidence {} < 1 must escalate: {d:?}",
                d.confidence
            );
            assert_eq!(d.tier, d.predicted_tier.up(), "{query:?}: {d:?}");
        }
    }
    assert!(
        classifier_decided > 0,
        "no query was decided by the classifier"
    );
}

#[test]
fn require_confidence_zero_never_escalates() {
    for query in VARIED {
        let req = RouteRequest {
            require_confidence: Some(0.0),
            ..RouteRequest::query(query)
        };
        let d = route(&req).unwrap();
        assert!(!d.escalated, "{query:?}: {d:?}");
        if d.decided_by == DecidedBy::Classifier {
            assert_eq!(d.tier, d.predicted_tier, "{query:?}: {d:?}");
        }
    }
}

#[test]
fn require_confidence_out_of_range_is_a_400() {
    for bad in [1.5, -0.1, f64::NAN, f64::INFINITY] {
        let req = RouteRequest {
            require_confidence: Some(bad),
            ..RouteRequest::query(PLAIN)
        };
        let err = route_err(&req);
        assert_eq!(status(&err), 400, "require_confidence {bad}: {err:?}");
        assert!(matches!(err, RouteError::InvalidRequest(_)), "{err:?}");
    }
}

#[test]
fn empty_or_ambiguous_requests_are_400() {
    let both = RouteRequest {
        messages: Some(vec![
            serde_json::from_value(serde_json::json!({"role": "user", "content": "hi"})).unwrap(),
        ]),
        ..RouteRequest::query(PLAIN)
    };
    let no_user = request_json(serde_json::json!({"messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "assistant", "content": "How can I help?"}
    ]}));
    let empty_user = request_json(serde_json::json!({"messages": [
        {"role": "user", "content": "   "}
    ]}));
    let cases = [
        ("empty query", RouteRequest::query("")),
        ("whitespace query", RouteRequest::query(" \n\t  ")),
        ("query and messages", both),
        ("neither", RouteRequest::default()),
        ("no user turn", no_user),
        ("blank user turn", empty_user),
        (
            "no messages",
            request_json(serde_json::json!({"messages": []})),
        ),
    ];
    for (what, req) in cases {
        let err = route_err(&req);
        assert_eq!(status(&err), 400, "{what}: {err:?}");
        assert!(
            matches!(err, RouteError::InvalidRequest(_)),
            "{what}: {err:?}"
        );
        assert!(
            !err.to_string().is_empty(),
            "{what}: the error must say why"
        );
    }
}

#[test]
fn messages_route_on_the_last_user_turn_and_count_all_tokens() {
    let last = HARD_MATH;
    let req = request_json(serde_json::json!({"messages": [
        {"role": "system", "content": "You are a patient tutor who explains every step of an argument."},
        {"role": "user", "content": "hello!"},
        {"role": "assistant", "content": "Hello! What would you like to work on today?"},
        {"role": "user", "content": last}
    ]}));
    let from_messages = route(&req).unwrap();
    let direct = decide(last);
    assert_eq!(
        from_messages.tier, direct.tier,
        "{from_messages:?} vs {direct:?}"
    );
    assert_eq!(from_messages.predicted_tier, direct.predicted_tier);
    assert_eq!(
        from_messages.decided_by, direct.decided_by,
        "routed on the last user turn, not the greeting"
    );
    assert!(
        from_messages.input_tokens > direct.input_tokens,
        "all messages count: {} vs {}",
        from_messages.input_tokens,
        direct.input_tokens
    );

    // A trailing assistant turn does not change which user turn is routed.
    let trailing = request_json(serde_json::json!({"messages": [
        {"role": "user", "content": "hello!"},
        {"role": "assistant", "content": "Hi there."}
    ]}));
    assert_eq!(
        route(&trailing).unwrap().decided_by,
        DecidedBy::rule("greeting")
    );
}

#[test]
fn content_parts_are_read() {
    let req = request_json(serde_json::json!({"messages": [
        {"role": "user", "content": [{"type": "text", "text": PLAIN}]}
    ]}));
    let parts = route(&req).unwrap();
    let direct = decide(PLAIN);
    assert_eq!(parts.tier, direct.tier);
    assert_eq!(parts.predicted_tier, direct.predicted_tier);
    assert_eq!(parts.decided_by, direct.decided_by);
    assert!((parts.confidence - direct.confidence).abs() < 1e-9);
    assert!(parts.input_tokens >= direct.input_tokens);

    let greeting = request_json(serde_json::json!({"messages": [
        {"role": "user", "content": [{"type": "text", "text": "hello!"}]}
    ]}));
    assert_eq!(
        route(&greeting).unwrap().decided_by,
        DecidedBy::rule("greeting")
    );
}

#[test]
fn long_query_under_the_byte_limit_routes() {
    // ~60k words: well past the embedder's 256-token window, within the pool's context windows.
    let query = "The committee reviewed the budget. ".repeat(12_000);
    assert!(query.len() < tierwise::routing::decision::MAX_QUERY_BYTES);
    let d = decide(&query);
    assert!(
        d.input_tokens > 256,
        "input_tokens {} must count the whole query",
        d.input_tokens
    );
    assert!(d.input_tokens > 50_000, "input_tokens {}", d.input_tokens);
    assert!(router().pool().model(&d.model).is_some());
    let model = router().pool().model(&d.model).unwrap().1;
    assert!(u64::from(model.context_window) >= d.input_tokens + d.output_tokens);
}

#[test]
fn query_over_one_mib_is_a_413() {
    let query = "a ".repeat(tierwise::routing::decision::MAX_QUERY_BYTES / 2 + 1);
    assert!(query.len() > tierwise::routing::decision::MAX_QUERY_BYTES);
    let err = route_err(&RouteRequest::query(query.clone()));
    assert_eq!(status(&err), 413, "{err:?}");
    assert!(matches!(err, RouteError::TooLarge(_)), "{err:?}");

    let req = request_json(serde_json::json!({"messages": [
        {"role": "system", "content": query},
        {"role": "user", "content": "hello!"}
    ]}));
    assert_eq!(status(&route_err(&req)), 413);
}

#[test]
fn unhealthy_model_moves_to_the_first_fallback() {
    for query in [PLAIN, "hello!", CODE] {
        let first = decide(query);
        assert!(
            !first.fallbacks.is_empty(),
            "{query:?}: no fallbacks: {first:?}"
        );
        let health = Unhealthy(vec![first.model.clone()]);
        let second = router()
            .route(&RouteRequest::query(query), &health)
            .unwrap();
        assert_eq!(second.model, first.fallbacks[0], "{query:?}");
        assert!(
            !second.fallbacks.contains(&first.model),
            "{query:?}: {second:?}"
        );
        assert_eq!(second.predicted_tier, first.predicted_tier);
    }
}

#[test]
fn every_model_unhealthy_is_a_retryable_503() {
    let all: Vec<String> = router()
        .pool()
        .models()
        .map(|(_, m)| m.id.clone())
        .collect();
    assert!(all.len() >= 3);
    let err = router()
        .route(&RouteRequest::query(PLAIN), &Unhealthy(all))
        .unwrap_err();
    assert_eq!(status(&err), 503, "{err:?}");
    assert!(err.is_retryable());
    assert!(matches!(err, RouteError::NoHealthyModel { .. }), "{err:?}");
}

/// A pool modelled on `shared/config/pool.toml`, with the given (context window, max output
/// tokens) for the models of each tier.
fn pool_with_windows(windows: [(u32, u32); 3]) -> PoolConfig {
    PoolConfig::from_toml_str(&pool_text(windows)).expect("a valid test pool")
}

/// The TOML of [`pool_with_windows`].
fn pool_text(windows: [(u32, u32); 3]) -> String {
    let models = [
        ("tier1", "deepseek/deepseek-v3", "0.14", "0.28"),
        ("tier2", "openai/gpt-4o-mini", "0.15", "0.60"),
        ("tier3", "openai/gpt-4o", "2.50", "10.00"),
    ];
    let tiers: String = models
        .iter()
        .zip(windows)
        .map(|((tier, id, input, output), (window, max_output))| {
            format!(
                r#"
[[tiers]]
name = "{tier}"
[[tiers.models]]
id = "{id}"
input_usd_per_m = {input}
output_usd_per_m = {output}
context_window = {window}
max_output_tokens = {max_output}
provider = "openrouter"
"#
            )
        })
        .collect();
    let text = format!(
        r#"
pricing_version = "2026-11-01"
baseline_model = "openai/gpt-4o"
confidence_threshold = 0.85
expected_output_tokens = 300
{tiers}
[providers.openrouter]
base_url = "https://openrouter.ai/api/v1"
api_key_ref = "TIERWISE_OPENROUTER_API_KEY"

[[rules.rule]]
name = "greeting"
max_words = 6
keywords_any = ["hi", "hello"]
tier = "tier1"
"#
    );
    text
}

#[test]
fn a_request_needing_a_capability_goes_up_to_a_model_that_has_it() {
    // tier1 declares no tools; tier2 declares tools; tier3 declares nothing (any request).
    let text = pool_text([(128_000, 16_384); 3])
        .replacen(
            "provider = \"openrouter\"",
            "provider = \"openrouter\"\ncapabilities = [\"streaming\"]",
            1,
        )
        .replacen(
            "id = \"openai/gpt-4o-mini\"",
            "id = \"openai/gpt-4o-mini\"\ncapabilities = [\"tools\", \"streaming\"]",
            1,
        );
    let router = Router::with_pool(PoolConfig::from_toml_str(&text).unwrap()).unwrap();
    let plain = router
        .route(&RouteRequest::query("hello!"), &AllHealthy)
        .unwrap();
    assert_eq!(plain.tier, Tier::Tier1);
    let tools = RouteRequest {
        needs: [Capability::Tools].into(),
        ..RouteRequest::query("hello!")
    };
    let d = router.route(&tools, &AllHealthy).unwrap();
    assert_eq!(
        (d.tier, d.model.as_str()),
        (Tier::Tier2, "openai/gpt-4o-mini")
    );
    assert!(!d.fallbacks.contains(&"deepseek/deepseek-v3".to_string()));
    // Nothing below tier3 reads images: up to the model that declares nothing.
    let vision = RouteRequest {
        needs: [Capability::Vision].into(),
        ..RouteRequest::query("hello!")
    };
    assert_eq!(
        router.route(&vision, &AllHealthy).unwrap().tier,
        Tier::Tier3
    );
    // Bounded below tier3: no model can serve it, and the error says so.
    let capped = RouteRequest {
        max_tier: Some(Tier::Tier2),
        ..vision
    };
    let err = router.route(&capped, &AllHealthy).unwrap_err();
    assert!(err.to_string().contains("vision"), "{err}");
}

#[test]
fn query_longer_than_every_context_window_is_a_400_context_length_exceeded() {
    let router = Router::with_pool(pool_with_windows([(100, 50); 3])).unwrap();
    // A short query fits (input + 50 output tokens <= 100) ...
    let short = router
        .route(&RouteRequest::query("hello!"), &AllHealthy)
        .unwrap();
    assert_eq!(short.tier, Tier::Tier1);
    assert_eq!(
        short.output_tokens, 50,
        "output is capped by max_output_tokens"
    );
    // ... 2,000 words do not.
    let err = router
        .route(&RouteRequest::query(two_thousand_words()), &AllHealthy)
        .unwrap_err();
    assert_eq!(status(&err), 400, "{err:?}");
    assert_eq!(ApiError::from(&err).code, "context_length_exceeded");
    assert!(
        matches!(err, RouteError::ContextTooLong { tokens } if tokens > 2000),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[test]
fn long_query_goes_to_the_only_tier_whose_window_fits() {
    let router =
        Router::with_pool(pool_with_windows([(100, 50), (100, 50), (128_000, 16_384)])).unwrap();
    let d = router
        .route(&RouteRequest::query(two_thousand_words()), &AllHealthy)
        .unwrap();
    assert_eq!(d.tier, Tier::Tier3, "{d:?}");
    assert_eq!(d.model, "openai/gpt-4o");
    assert!(d.input_tokens > 2000, "{d:?}");
    // A short greeting still goes to tier1 in the same pool.
    let hello = router
        .route(&RouteRequest::query("hello!"), &AllHealthy)
        .unwrap();
    assert_eq!(hello.tier, Tier::Tier1);
    assert_eq!(hello.fallbacks, ["openai/gpt-4o-mini", "openai/gpt-4o"]);
}

#[test]
fn route_request_json_is_strict() {
    let ok: RouteRequest = serde_json::from_str(
        r#"{"query": "hi", "require_confidence": 0.9, "min_tier": "tier1", "max_tier": "tier3", "tenant": "t"}"#,
    )
    .unwrap();
    assert_eq!(ok.min_tier, Some(Tier::Tier1));
    assert_eq!(ok.max_tier, Some(Tier::Tier3));
    assert_eq!(ok.require_confidence, Some(0.9));

    let unknown_field =
        serde_json::from_str::<RouteRequest>(r#"{"query": "hi", "temperature": 0.2}"#);
    let err = unknown_field
        .expect_err("an unknown field must be rejected")
        .to_string();
    assert!(err.contains("temperature"), "{err}");

    let unknown_tier =
        serde_json::from_str::<RouteRequest>(r#"{"query": "hi", "min_tier": "tier7"}"#);
    let err = unknown_tier
        .expect_err("tier7 must be rejected")
        .to_string();
    assert!(err.contains("tier7"), "{err}");
    assert!(
        serde_json::from_str::<RouteRequest>(r#"{"query": "hi", "max_tier": "Tier1"}"#).is_err()
    );
}

#[test]
fn decision_serialises_with_the_design_keys() {
    for query in VARIED {
        let d = decide(query);
        let json = serde_json::to_value(&d).unwrap();
        let obj = json.as_object().expect("a JSON object");
        for key in tierwise_tests::DECISION_KEYS {
            assert!(obj.contains_key(key), "{query:?}: missing {key} in {json}");
        }
        assert!(obj["query_id"].is_string() && obj["model"].is_string());
        for key in ["tier", "predicted_tier"] {
            let t = obj[key].as_str().unwrap();
            assert!(["tier1", "tier2", "tier3"].contains(&t), "{key} = {t}");
        }
        assert_eq!(obj["tier"], d.tier.as_str());
        assert!(obj["confidence"].is_f64() || obj["confidence"].is_number());
        assert!(obj["escalated"].is_boolean());
        assert!(
            obj["fallbacks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f.is_string())
        );
        for key in ["estimated_cost_usd", "baseline_cost_usd", "router_ms"] {
            assert!(obj[key].is_number(), "{key} is not a number: {json}");
        }
        let by = obj["decided_by"].as_str().unwrap();
        assert!(
            by == "classifier" || (by.starts_with("rule:") && by.len() > "rule:".len()),
            "decided_by {by:?}"
        );
        // And it reads back to the same decision.
        let back: Decision = serde_json::from_value(json).unwrap();
        assert_eq!(back, d);
    }
}

#[test]
fn router_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Router>();

    let r = router();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            r.route(&RouteRequest::query(HARD_MATH), &AllHealthy)
                .unwrap()
        });
        let b = s.spawn(|| {
            r.route(&RouteRequest::query(HARD_MATH), &AllHealthy)
                .unwrap()
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.tier, b.tier);
    assert_eq!(a.model, b.model);
    assert_eq!(a.predicted_tier, b.predicted_tier);
    assert_eq!(a.confidence, b.confidence);
    assert_ne!(a.query_id, b.query_id);
}

/// 300k short words (600 KB, under the 1 MiB limit, ~300k tokens): only the bundled pool's
/// 1M-token tier1 model can take it, whatever tier the classifier prefers: the router must go
/// down to it rather than answer a (retryable) 503 with every model healthy.
#[test]
fn very_long_query_that_only_a_lower_tier_fits_still_routes() {
    let query = "a ".repeat(300_000);
    assert!(query.len() < tierwise::routing::decision::MAX_QUERY_BYTES);
    let d = route(&RouteRequest::query(query)).unwrap_or_else(|e| panic!("{} {e:?}", status(&e)));
    assert!(d.input_tokens > 256, "{d:?}");
    let model = router().pool().model(&d.model).unwrap().1;
    assert!(
        u64::from(model.context_window) >= d.input_tokens + d.output_tokens,
        "{d:?}"
    );
}
