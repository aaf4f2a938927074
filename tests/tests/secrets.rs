//! Provider API keys read at init from SSM Parameter Store, Secrets Manager (plain and JSON
//! secrets) and environment variables, against moto; a missing parameter fails with an error
//! that names the provider and the reference and leaks no value; nothing prints a key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tierwise::aws::secrets::{
    SecretError, load_endpoints, setup_parameter, setup_secret, ssm_pool,
};
use tierwise::aws::{SdkConfig, sdk_config_at};
use tierwise::routing::pool::PoolConfig;
use tierwise::serve::settings::AwsCallSettings;
use tierwise_tests::moto::{moto, unique_name};

/// Generous timeouts: moto loads a service's backend on its first request, which can take
/// seconds (at init, the router can afford them too).
async fn sdk() -> SdkConfig {
    let calls = AwsCallSettings {
        operation_timeout: Duration::from_secs(20),
        attempt_timeout: Duration::from_secs(10),
        max_attempts: 2,
    };
    sdk_config_at(&calls, moto().endpoint()).await
}

/// A valid pool whose providers read their keys from `refs` (provider name -> reference);
/// every provider serves one model of tier1.
fn pool(refs: &[(&str, &str)]) -> PoolConfig {
    let mut toml = String::from("pricing_version = \"test\"\nbaseline_model = \"x/strong\"\n");
    toml.push_str("[[tiers]]\nname = \"tier1\"\n");
    for (i, (provider, _)) in refs.iter().enumerate() {
        toml.push_str(&format!(
            "[[tiers.models]]\nid = \"x/m{i}\"\ninput_usd_per_m = 0.1\noutput_usd_per_m = 0.2\n\
             context_window = 1000\nmax_output_tokens = 100\nprovider = \"{provider}\"\n"
        ));
    }
    for tier in ["tier2", "tier3"] {
        let id = if tier == "tier3" { "x/strong" } else { "x/mid" };
        toml.push_str(&format!(
            "[[tiers]]\nname = \"{tier}\"\n[[tiers.models]]\nid = \"{id}\"\ninput_usd_per_m = 1.0\n\
             output_usd_per_m = 2.0\ncontext_window = 1000\nmax_output_tokens = 100\n\
             provider = \"{}\"\n",
            refs[0].0
        ));
    }
    for (provider, reference) in refs {
        toml.push_str(&format!(
            "[providers.{provider}]\nbase_url = \"https://{provider}.example.com/v1\"\n\
             api_key_ref = \"{reference}\"\n"
        ));
    }
    PoolConfig::from_toml_str(&toml).unwrap()
}

#[tokio::test]
async fn keys_come_from_ssm_secrets_manager_and_the_environment() {
    let sdk = sdk().await;
    let param = format!("/tierwise/test/{}", unique_name("openrouter"));
    setup_parameter(&sdk, &param, "k-ssm-0001\n").await.unwrap();
    let plain = unique_name("plain");
    setup_secret(&sdk, &plain, "k-plain-0002").await.unwrap();
    let json = unique_name("json");
    let json_arn = setup_secret(
        &sdk,
        &json,
        r#"{"api_key": "k-json-0003", "organization": "org-1"}"#,
    )
    .await
    .unwrap();
    assert!(json_arn.starts_with("arn:"), "{json_arn}");

    // `cargo test` sets CARGO_PKG_NAME for the test process: an environment variable that
    // exists without the test having to set one.
    let env_value = std::env::var("CARGO_PKG_NAME").expect("cargo test sets CARGO_PKG_NAME");
    let ssm_ref = format!("ssm:{param}");
    let plain_ref = format!("secretsmanager:{plain}");
    let json_ref = format!("secretsmanager:{json}");
    let refs = [
        ("ssmp", ssm_ref.as_str()),
        ("smplain", plain_ref.as_str()),
        ("smjson", json_ref.as_str()),
        ("smarn", json_arn.as_str()),
        ("envp", "env:CARGO_PKG_NAME"),
        ("barep", "CARGO_PKG_NAME"),
    ];
    let endpoints = load_endpoints(&pool(&refs), &sdk).await.unwrap();
    let key = |p: &str| endpoints[p].key.expose().to_string();
    assert_eq!(endpoints.len(), 6);
    assert_eq!(key("ssmp"), "k-ssm-0001", "decrypted and trimmed");
    assert_eq!(key("smplain"), "k-plain-0002");
    assert_eq!(key("smjson"), "k-json-0003");
    assert_eq!(key("smarn"), "k-json-0003");
    assert_eq!(key("envp"), env_value);
    assert_eq!(key("barep"), env_value);
    assert_eq!(endpoints["ssmp"].base_url, "https://ssmp.example.com/v1");

    let debug = format!("{endpoints:?}");
    for secret in ["k-ssm-0001", "k-plain-0002", "k-json-0003", "org-1"] {
        assert!(!debug.contains(secret), "Debug shows a key: {debug}");
    }
    assert!(debug.contains("ApiKey(***)"), "{debug}");
}

#[tokio::test]
async fn a_missing_parameter_names_the_provider_and_reference_only() {
    let sdk = sdk().await;
    let present = format!("/tierwise/test/{}", unique_name("present"));
    setup_parameter(&sdk, &present, "k-present-0004")
        .await
        .unwrap();
    let missing = format!("/tierwise/test/{}", unique_name("missing"));
    let present_ref = format!("ssm:{present}");
    let missing_ref = format!("ssm:{missing}");
    let err = load_endpoints(
        &pool(&[("good", &present_ref), ("broken", &missing_ref)]),
        &sdk,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, SecretError::NotFound { provider, reference }
            if provider == "broken" && reference == &missing_ref),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(err.provider(), "broken");
    let shown = format!("{err} / {err:?}");
    assert!(
        shown.contains("broken") && shown.contains(&missing),
        "{shown}"
    );
    assert!(!shown.contains("k-present-0004"), "{shown}");
}

#[tokio::test]
async fn unusable_keys_are_errors() {
    let sdk = sdk().await;
    let empty = unique_name("empty");
    setup_secret(&sdk, &empty, "   ").await.unwrap();
    let no_field = unique_name("nofield");
    setup_secret(&sdk, &no_field, r#"{"token": "k-hidden-0005"}"#)
        .await
        .unwrap();
    let missing_secret = unique_name("nosecret");
    let missing_var = format!("TIERWISE_TEST_UNSET_{}", std::process::id());

    let cases = [
        (format!("secretsmanager:{empty}"), "empty"),
        (format!("secretsmanager:{no_field}"), "unusable"),
        (format!("secretsmanager:{missing_secret}"), "not_found"),
        (format!("env:{missing_var}"), "not_found"),
        ("vault:something".to_string(), "bad_reference"),
    ];
    for (reference, want) in cases {
        let err = load_endpoints(&pool(&[("p", &reference)]), &sdk)
            .await
            .unwrap_err();
        let got = match &err {
            SecretError::Empty { .. } => "empty",
            SecretError::Unusable { .. } => "unusable",
            SecretError::NotFound { .. } => "not_found",
            SecretError::BadReference { .. } => "bad_reference",
            SecretError::Service { .. } => "service",
        };
        assert_eq!(got, want, "{reference}: {err}");
        let shown = format!("{err} / {err:?}");
        assert!(shown.contains(&reference), "{shown}");
        assert!(!shown.contains("k-hidden-0005"), "{shown}");
    }
}

#[tokio::test]
async fn an_unreachable_service_is_a_retryable_error() {
    let sdk = sdk_config_at(&AwsCallSettings::default(), "http://127.0.0.1:9").await;
    let err = load_endpoints(&pool(&[("p", "ssm:/tierwise/key")]), &sdk)
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Service { .. }), "{err:?}");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("ssm:/tierwise/key"), "{err}");
}

#[tokio::test]
async fn the_pool_can_come_from_an_ssm_parameter() {
    let sdk = sdk().await;
    let name = format!("/tierwise/test/{}", unique_name("pool"));
    // The bundled pool with another pricing version: what an operator changes without a
    // rebuild.
    let text = include_str!("../../shared/config/pool.toml").replacen(
        "pricing_version = \"",
        "pricing_version = \"ssm-",
        1,
    );
    setup_parameter(&sdk, &name, &text).await.unwrap();
    let refs = [(
        "openrouter".to_string(),
        "secretsmanager:arn:aws:secretsmanager:us-east-1:1:secret:x".to_string(),
    )];
    let pool = ssm_pool(&sdk, &name, &refs).await.unwrap();
    assert!(
        pool.pricing_version().starts_with("ssm-"),
        "{}",
        pool.pricing_version()
    );
    assert_eq!(
        pool.provider("openrouter").unwrap().api_key_ref,
        refs[0].1,
        "the deployment's key references are laid over"
    );

    // A missing parameter and a bad pool: errors that name the parameter (and the field).
    let missing = format!("{name}-missing");
    let err = ssm_pool(&sdk, &missing, &[]).await.unwrap_err();
    assert!(err.to_string().contains(&missing), "{err}");
    let bad = format!("{name}-bad");
    setup_parameter(
        &sdk,
        &bad,
        &text.replacen("shadow_rate = ", "shadow_rate = 7 #", 1),
    )
    .await
    .unwrap();
    let err = ssm_pool(&sdk, &bad, &[]).await.unwrap_err();
    assert!(
        err.to_string().contains(&bad) && err.to_string().contains("shadow_rate"),
        "{err}"
    );
}
