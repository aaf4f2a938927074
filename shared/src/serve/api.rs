//! The HTTP API's shared shapes: the `GET /v1/models` list (error bodies are
//! [`crate::serve::errors`]'s).

use serde_json::{Value, json};

use crate::routing::pool::PoolConfig;

/// `GET /v1/models`: `auto` (the routed model) first, then the pool as an OpenAI-style model
/// list, with tiers and prices — tools that fill a model picker from this list can route.
pub fn models_list(pool: &PoolConfig) -> Value {
    let auto = json!({
        "id": "auto",
        "object": "model",
        "created": 0,
        "owned_by": "tierwise",
        "description": "routes each request to the cheapest adequate tier of the pool",
    });
    let data: Vec<Value> = std::iter::once(auto)
        .chain(pool.models().map(|(tier, m)| {
            json!({
                "id": m.id,
                "object": "model",
                "created": 0,
                "owned_by": m.provider,
                "tier": tier,
                "pricing": {
                    "input_usd_per_m": m.input_usd_per_m,
                    "output_usd_per_m": m.output_usd_per_m,
                },
                "context_window": m.context_window,
                "max_output_tokens": m.max_output_tokens,
            })
        }))
        .collect();
    json!({
        "object": "list",
        "data": data,
        "baseline_model": pool.baseline().id,
        "pricing_version": pool.pricing_version(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_list_has_every_pool_model() {
        let pool = PoolConfig::bundled().unwrap();
        let v = models_list(&pool);
        assert_eq!(v["object"], "list");
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), pool.models().count() + 1);
        assert_eq!(data[0]["id"], "auto", "the routed model comes first");
        assert_eq!(data[1]["tier"], "tier1");
        assert!(data[1]["pricing"]["input_usd_per_m"].as_f64().unwrap() > 0.0);
        assert_eq!(v["baseline_model"], pool.baseline().id);
    }
}
