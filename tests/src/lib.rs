//! Shared fixtures of the integration tests in `tests/tests/`.

pub mod export_fixture;
pub mod fake_upstream;
pub mod moto;
pub mod scripted;

/// The keys of the routing decision that `docs/http-api.md` fixes (extra keys are allowed).
pub const DECISION_KEYS: [&str; 11] = [
    "query_id",
    "model",
    "tier",
    "predicted_tier",
    "confidence",
    "escalated",
    "decided_by",
    "fallbacks",
    "estimated_cost_usd",
    "baseline_cost_usd",
    "router_ms",
];
