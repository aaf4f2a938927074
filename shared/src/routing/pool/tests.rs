//! Tests of the pool: parsing, validation with the field named, defaults, providers and
//! capabilities, costs.
use super::*;

/// A small valid pool; tests break one thing at a time with `str::replace`.
const POOL: &str = r#"
pricing_version = "2026-11-01"
baseline_model = "b/strong"

[[tiers]]
name = "tier1"
[[tiers.models]]
id = "a/cheap"
input_usd_per_m = 0.1
output_usd_per_m = 0.4
context_window = 1000
max_output_tokens = 100
provider = "p"

[[tiers]]
name = "tier2"
[[tiers.models]]
id = "a/mid"
input_usd_per_m = 1.0
output_usd_per_m = 2.0
context_window = 1000
max_output_tokens = 100
provider = "p"

[[tiers]]
name = "tier3"
[[tiers.models]]
id = "b/strong"
input_usd_per_m = 2.5
output_usd_per_m = 10.0
context_window = 1000
max_output_tokens = 100
provider = "p"

[providers.p]
base_url = "https://example.com/v1"
api_key_ref = "TIERWISE_P_API_KEY"
"#;

fn field_of(err: ConfigError) -> (String, String) {
    match err {
        ConfigError::Invalid { field, message } => (field, message),
        other => panic!("expected ConfigError::Invalid, got {other:?}"),
    }
}

fn assert_close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn bundled_pool_loads_with_design_prices() {
    let pool = PoolConfig::bundled().unwrap();
    assert_eq!(pool.pricing_version(), "2026-11-01");
    assert_eq!(pool.models().count(), 6);
    let ids = |t| {
        pool.tier_models(t)
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(Tier::Tier1),
        ["deepseek/deepseek-v3", "google/gemini-3.1-flash-lite"]
    );
    assert_eq!(
        ids(Tier::Tier2),
        ["openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet"]
    );
    assert_eq!(
        ids(Tier::Tier3),
        ["openai/gpt-4o", "anthropic/claude-opus-4.7"]
    );
    let price = |id: &str| {
        let (_, m) = pool.model(id).unwrap();
        (m.input_usd_per_m, m.output_usd_per_m)
    };
    assert_eq!(price("deepseek/deepseek-v3"), (0.14, 0.28));
    assert_eq!(price("google/gemini-3.1-flash-lite"), (0.10, 0.40));
    assert_eq!(price("openai/gpt-4o-mini"), (0.15, 0.60));
    assert_eq!(price("anthropic/claude-3.5-sonnet"), (3.00, 15.00));
    assert_eq!(price("openai/gpt-4o"), (2.50, 10.00));
    assert_eq!(price("anthropic/claude-opus-4.7"), (5.00, 25.00));

    assert_eq!(pool.baseline().id, "openai/gpt-4o");
    assert_eq!(pool.baseline_tier(), Tier::Tier3);
    assert_eq!(pool.confidence_threshold(), 0.6);
    assert_eq!(
        pool.task_kinds().len(),
        23,
        "every kind of the default table"
    );
    assert_eq!(pool.task_kinds()["summary"], Tier::Tier1);
    assert_eq!(pool.task_kinds()["system_design"], Tier::Tier3);
    assert_eq!(pool.shadow_rate(), 0.05);
    assert_eq!(pool.max_request_cost_usd(), Some(0.50));
    assert_eq!(pool.expected_output_tokens(), 300);
    for (_, m) in pool.models() {
        let p = pool.provider(&m.provider).unwrap();
        assert!(p.base_url.starts_with("https://"));
        assert!(!p.api_key_ref.is_empty());
    }
    assert_eq!(
        pool.model("openai/gpt-4o-mini").map(|(t, _)| t),
        Some(Tier::Tier2)
    );
    assert!(pool.model("openai/gpt-5").is_none());
}

#[test]
fn a_bad_rule_fails_the_load() {
    let err = PoolConfig::from_toml_str(&format!(
        "{POOL}\n[rules]\n[[rules.rule]]\nname = \"x\"\ntier = \"tier9\"\n"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("rules"), "{err}");
}

#[test]
fn defaults_apply_and_rules_are_passed_on_raw() {
    let text =
        format!("{POOL}\n[[rules.rule]]\nname = \"greeting\"\nmax_words = 3\ntier = \"tier1\"\n");
    let pool = PoolConfig::from_toml_str(&text).unwrap();
    assert_eq!(pool.confidence_threshold(), DEFAULT_CONFIDENCE_THRESHOLD);
    assert_eq!(pool.shadow_rate(), DEFAULT_SHADOW_RATE);
    assert_eq!(pool.max_request_cost_usd(), None);
    assert_eq!(
        pool.expected_output_tokens(),
        DEFAULT_EXPECTED_OUTPUT_TOKENS
    );
    assert_eq!(pool.rules.len(), 1);
    assert!(pool.rules.contains_key("rule"));
    assert!(PoolConfig::from_toml_str(POOL).unwrap().rules.is_empty());
}

#[test]
fn unknown_field_is_rejected_naming_it() {
    let top = POOL.replacen("baseline_model", "shadow_rte = 0.1\nbaseline_model", 1);
    let err = PoolConfig::from_toml_str(&top).unwrap_err();
    assert!(matches!(err, ConfigError::Parse(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("shadow_rte") && msg.contains("line 3"),
        "{msg}"
    );

    let in_model = POOL.replacen("provider = \"p\"", "provider = \"p\"\ncolour = \"red\"", 1);
    let err = PoolConfig::from_toml_str(&in_model).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");

    let in_provider = POOL.replace("api_key_ref =", "api_key = \"k\"\napi_key_ref =");
    let err = PoolConfig::from_toml_str(&in_provider).unwrap_err();
    assert!(err.to_string().contains("api_key"), "{err}");
}

#[test]
fn tier_without_models_is_rejected() {
    let text = POOL.replacen(
        "name = \"tier2\"\n[[tiers.models]]\nid = \"a/mid\"\ninput_usd_per_m = 1.0\noutput_usd_per_m = 2.0\ncontext_window = 1000\nmax_output_tokens = 100\nprovider = \"p\"\n",
        "name = \"tier2\"\n",
        1,
    );
    assert_ne!(text, POOL);
    let (field, message) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "tiers[1].models");
    assert!(message.contains("tier2"), "{message}");
}

#[test]
fn missing_or_duplicate_tier_is_rejected() {
    let twice = POOL.replace("name = \"tier3\"", "name = \"tier2\"");
    let (field, message) = field_of(PoolConfig::from_toml_str(&twice).unwrap_err());
    assert_eq!(field, "tiers[2].name");
    assert!(message.contains("tier2 is defined twice"), "{message}");

    let without_tier3 = &POOL[..POOL.find("[[tiers]]\nname = \"tier3\"").unwrap()];
    let text = format!(
        "{without_tier3}{}",
        &POOL[POOL.find("[providers.p]").unwrap()..]
    );
    let (field, message) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "tiers");
    assert!(message.contains("missing tier3"), "{message}");

    let unknown = POOL.replace("name = \"tier3\"", "name = \"tier4\"");
    let err = PoolConfig::from_toml_str(&unknown).unwrap_err();
    assert!(err.to_string().contains("tier4"), "{err}");
}

#[test]
fn tiers_may_be_written_in_any_order() {
    let (head, rest) = POOL.split_at(POOL.find("[[tiers]]").unwrap());
    let (tiers, providers) = rest.split_at(rest.find("[providers.p]").unwrap());
    let mut blocks: Vec<&str> = tiers
        .split("[[tiers]]")
        .filter(|b| !b.trim().is_empty())
        .collect();
    blocks.reverse();
    let text = format!(
        "{head}{}{providers}",
        blocks
            .iter()
            .map(|b| format!("[[tiers]]{b}"))
            .collect::<String>()
    );
    let pool = PoolConfig::from_toml_str(&text).unwrap();
    assert_eq!(pool.tier_models(Tier::Tier1)[0].id, "a/cheap");
    assert_eq!(pool.tier_models(Tier::Tier3)[0].id, "b/strong");
}

#[test]
fn out_of_range_thresholds_are_rejected_naming_the_field() {
    let text = format!("confidence_threshold = 1.5\n{POOL}");
    let err = PoolConfig::from_toml_str(&text).unwrap_err();
    assert!(err.to_string().contains("confidence_threshold"), "{err}");
    let (field, _) = field_of(err);
    assert_eq!(field, "confidence_threshold");

    let text = format!("shadow_rate = -0.1\n{POOL}");
    let (field, _) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "shadow_rate");

    let text = format!("confidence_threshold = nan\n{POOL}");
    let (field, _) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "confidence_threshold");

    let text = format!("max_request_cost_usd = 0.0\n{POOL}");
    let (field, _) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "max_request_cost_usd");

    let text = format!("expected_output_tokens = 0\n{POOL}");
    let (field, _) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "expected_output_tokens");
}

#[test]
fn negative_price_is_rejected_naming_the_field_path() {
    let text = POOL.replace("input_usd_per_m = 1.0", "input_usd_per_m = -1");
    let err = PoolConfig::from_toml_str(&text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid pool config: tiers[1].models[0].input_usd_per_m: must be a finite number >= 0, got -1"
    );

    let text = POOL.replace("output_usd_per_m = 10.0", "output_usd_per_m = inf");
    let (field, _) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "tiers[2].models[0].output_usd_per_m");
}

#[test]
fn bad_limits_and_duplicate_ids_are_rejected() {
    let text = POOL.replacen("context_window = 1000", "context_window = 0", 1);
    let (field, _) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "tiers[0].models[0].context_window");

    let text = POOL.replacen("max_output_tokens = 100", "max_output_tokens = 0", 1);
    let (field, _) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "tiers[0].models[0].max_output_tokens");

    let text = POOL.replacen("max_output_tokens = 100", "max_output_tokens = 2000", 1);
    let (field, _) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "tiers[0].models[0].max_output_tokens");

    let text = POOL.replace("id = \"a/mid\"", "id = \"a/cheap\"");
    let (field, message) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "tiers[1].models[0].id");
    assert!(message.contains("tiers[0].models[0]"), "{message}");
}

#[test]
fn baseline_not_in_pool_is_rejected() {
    let text = POOL.replace(
        "baseline_model = \"b/strong\"",
        "baseline_model = \"x/none\"",
    );
    let (field, message) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "baseline_model");
    assert!(message.contains("x/none"), "{message}");
}

#[test]
fn unknown_provider_is_rejected() {
    let text = POOL.replacen("provider = \"p\"", "provider = \"q\"", 2);
    let (field, message) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "tiers[0].models[0].provider");
    assert!(
        message.contains("\"q\"") && message.contains("defined: p"),
        "{message}"
    );
}

#[test]
fn bad_provider_specs_are_rejected() {
    let text = POOL.replace("https://example.com/v1", "example.com/v1");
    let (field, _) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
    assert_eq!(field, "providers.p.base_url");

    for key_ref in ["", "sk-or-v1-abc123", "MY KEY"] {
        let text = POOL.replace("TIERWISE_P_API_KEY", key_ref);
        let (field, _) = field_of(PoolConfig::from_toml_str(&text).unwrap_err());
        assert_eq!(field, "providers.p.api_key_ref", "{key_ref:?}");
    }
}

#[test]
fn providers_as_users_have_them_and_capabilities() {
    let azure = POOL.replace(
        "api_key_ref = \"TIERWISE_P_API_KEY\"",
        "api_key_ref = \"TIERWISE_P_API_KEY\"\nauth = \"api_key_header\"\nquery = { api-version = \"2024-10-21\" }\nheaders = { x-team = \"ml\" }",
    );
    let pool = PoolConfig::from_toml_str(&azure).unwrap();
    let p = pool.provider("p").unwrap();
    assert_eq!(p.auth, ProviderAuth::ApiKeyHeader);
    assert_eq!(
        p.query.get("api-version").map(String::as_str),
        Some("2024-10-21")
    );
    for (bad, field) in [
        (
            "headers = { Authorization = \"Bearer x\" }",
            "providers.p.headers.Authorization",
        ),
        ("headers = { \"x y\" = \"1\" }", "providers.p.headers.x y"),
        ("auth = \"basic\"", ""),
    ] {
        let text = POOL.replace(
            "api_key_ref = \"TIERWISE_P_API_KEY\"",
            &format!("api_key_ref = \"TIERWISE_P_API_KEY\"\n{bad}"),
        );
        let err = PoolConfig::from_toml_str(&text).unwrap_err();
        if !field.is_empty() {
            assert_eq!(field_of(err).0, field, "{bad}");
        }
    }
    let open = POOL.replace("api_key_ref = \"TIERWISE_P_API_KEY\"", "auth = \"none\"");
    assert!(
        PoolConfig::from_toml_str(&open).is_ok(),
        "a local server without a key"
    );
    let missing = POOL.replace("api_key_ref = \"TIERWISE_P_API_KEY\"", "");
    assert_eq!(
        field_of(PoolConfig::from_toml_str(&missing).unwrap_err()).0,
        "providers.p.api_key_ref"
    );

    let m = pool.models().next().unwrap().1.clone();
    assert_eq!(m.upstream_name(), m.id);
    let aliased = ModelSpec {
        upstream_model: Some("gpt-4o-mini-prod".into()),
        capabilities: Some([Capability::Tools, Capability::Streaming].into()),
        ..m
    };
    assert_eq!(aliased.upstream_name(), "gpt-4o-mini-prod");
    assert!(aliased.supports(&[Capability::Tools].into()));
    assert!(!aliased.supports(&[Capability::Tools, Capability::Vision].into()));
    assert!(
        pool.models()
            .next()
            .unwrap()
            .1
            .supports(&[Capability::Vision].into())
    );
}

#[test]
fn load_reads_a_file_and_reports_io_errors_with_the_path() {
    let dir = std::env::temp_dir().join(format!("tierwise-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pool.toml");
    std::fs::write(&path, POOL).unwrap();
    let pool = PoolConfig::load(&path).unwrap();
    assert_eq!(pool.baseline().id, "b/strong");

    // A bad value: the file, then the field.
    std::fs::write(
        &path,
        POOL.replacen("context_window = 1000", "context_window = 0", 1),
    )
    .unwrap();
    let err = PoolConfig::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("pool.toml: invalid pool config: ") && err.contains("context_window"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let err = PoolConfig::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("pool.toml"), "{err}");
}

#[test]
fn tier_parses_displays_and_orders() {
    for t in Tier::ALL {
        assert_eq!(t.to_string().parse::<Tier>(), Ok(t));
        assert_eq!(Tier::from_index(t.index()), Some(t));
    }
    assert_eq!(Tier::Tier2.to_string(), "tier2");
    let err = "tier9".parse::<Tier>().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("tier9") && msg.contains("tier1, tier2, tier3"),
        "{msg}"
    );
    assert!(Tier::Tier1 < Tier::Tier2 && Tier::Tier2 < Tier::Tier3);
    assert_eq!(Tier::Tier1.up(), Tier::Tier2);
    assert_eq!(Tier::Tier2.up(), Tier::Tier3);
    assert_eq!(Tier::Tier3.up(), Tier::Tier3);
    assert_eq!(Tier::from_index(3), None);
    assert_eq!(serde_json::to_string(&Tier::Tier3).unwrap(), "\"tier3\"");
    assert_eq!(
        serde_json::from_str::<Tier>("\"tier1\"").unwrap(),
        Tier::Tier1
    );
}

#[test]
fn cost_is_tokens_times_price_per_million() {
    let m = ModelSpec {
        id: "openai/gpt-4o".into(),
        input_usd_per_m: 2.50,
        output_usd_per_m: 10.0,
        cached_input_usd_per_m: None,
        context_window: 128_000,
        max_output_tokens: 16_384,
        provider: "openrouter".into(),
        upstream_model: None,
        capabilities: None,
    };
    assert_close(m.cost_usd(1000, 500), 0.0075);
    assert_close(m.cost_usd(0, 0), 0.0);
    assert_close(m.cost_usd(1_000_000, 0), 2.50);
}
