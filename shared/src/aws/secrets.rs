//! Provider API keys, read once at init from where the pool's `api_key_ref` says:
//! - `ssm:<parameter name or ARN>`: SSM Parameter Store (`GetParameter`, decrypted);
//! - `secretsmanager:<secret id or ARN>` (or a bare `arn:...:secretsmanager:...` ARN): Secrets
//!   Manager (`GetSecretValue`); the `SecretString`, or its `api_key` field when it is a JSON
//!   object;
//! - `env:<NAME>` or a bare `NAME`: an environment variable (local runs).
//!
//! Keys only ever live in [`ApiKey`] (whose `Debug` is redacted); errors name the provider and
//! the reference, never a value. [`setup_parameter`] / [`setup_secret`] create parameters and
//! secrets for local stacks (moto) and tests.

use aws_config::SdkConfig;

use super::store_error;
use crate::ledger::store::StoreError;
use crate::proxy::upstream::{ApiKey, Endpoint, Endpoints};
use crate::routing::pool::{ConfigError, PoolConfig};

/// Where a key reference points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource<'a> {
    /// An SSM parameter name or ARN.
    Ssm(&'a str),
    /// A Secrets Manager secret id or ARN.
    SecretsManager(&'a str),
    /// An environment variable.
    Env(&'a str),
}

/// An API key could not be read. Names the provider and the reference, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "provider `{provider}`: API key reference `{reference}` is not understood (use `ssm:NAME`, `secretsmanager:ID`, `env:NAME` or a variable name)"
    )]
    BadReference { provider: String, reference: String },
    #[error("provider `{provider}`: API key reference `{reference}` not found")]
    NotFound { provider: String, reference: String },
    #[error("provider `{provider}`: API key reference `{reference}` holds an empty key")]
    Empty { provider: String, reference: String },
    #[error("provider `{provider}`: API key reference `{reference}` cannot be used: {reason}")]
    Unusable {
        provider: String,
        reference: String,
        reason: &'static str,
    },
    #[error("provider `{provider}`: API key reference `{reference}` could not be read: {source}")]
    Service {
        provider: String,
        reference: String,
        #[source]
        source: StoreError,
    },
}

impl SecretError {
    /// Whether reading the keys again may succeed (throttling, timeouts, outages).
    pub fn is_retryable(&self) -> bool {
        match self {
            SecretError::Service { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    /// The provider whose key could not be read.
    pub fn provider(&self) -> &str {
        match self {
            SecretError::BadReference { provider, .. }
            | SecretError::NotFound { provider, .. }
            | SecretError::Empty { provider, .. }
            | SecretError::Unusable { provider, .. }
            | SecretError::Service { provider, .. } => provider,
        }
    }
}

/// Parses an `api_key_ref`; `None` when its scheme is unknown.
pub fn key_source(reference: &str) -> Option<KeySource<'_>> {
    if let Some(rest) = reference.strip_prefix("ssm:") {
        return (!rest.is_empty()).then_some(KeySource::Ssm(rest));
    }
    if let Some(rest) = reference.strip_prefix("secretsmanager:") {
        return (!rest.is_empty()).then_some(KeySource::SecretsManager(rest));
    }
    if let Some(rest) = reference.strip_prefix("env:") {
        return (!rest.is_empty()).then_some(KeySource::Env(rest));
    }
    if reference.starts_with("arn:") {
        // arn:<partition>:<service>:...
        return match reference.split(':').nth(2) {
            Some("secretsmanager") => Some(KeySource::SecretsManager(reference)),
            Some("ssm") => Some(KeySource::Ssm(reference)),
            _ => None,
        };
    }
    let is_var = !reference.is_empty()
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    is_var.then_some(KeySource::Env(reference))
}

/// The key in a secret string: the string itself, or its `api_key` field when it is a JSON
/// object; surrounding whitespace dropped. A parse error is not passed on (it may quote the
/// text).
fn extract_key(secret: &str) -> Result<String, &'static str> {
    let text = secret.trim();
    if !text.starts_with('{') {
        return Ok(text.to_string());
    }
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|_| "the secret starts with `{` but is not a JSON object")?;
    match object.get("api_key") {
        Some(serde_json::Value::String(k)) => Ok(k.trim().to_string()),
        _ => Err("the secret is a JSON object without a string `api_key` field"),
    }
}

/// The pool a function serves: the file at `path` (the bundled pool when `None`), with the
/// deployment's key references (`provider`, `ref` pairs of `TIERWISE_API_KEY_REFS`) in place of
/// the pool's own `api_key_ref`s — the pool whose keys [`load_endpoints`] then reads.
pub fn deployment_pool(
    path: Option<&std::path::Path>,
    key_refs: &[(String, String)],
) -> Result<PoolConfig, ConfigError> {
    let mut pool = match path {
        Some(p) => PoolConfig::load(p)?,
        None => PoolConfig::bundled()?,
    };
    for (provider, key_ref) in key_refs {
        pool.set_api_key_ref(provider, key_ref)?;
    }
    Ok(pool)
}

/// The pool could not be read from its SSM parameter.
#[derive(Debug, thiserror::Error)]
pub enum PoolSourceError {
    /// The parameter could not be read (missing, empty, refused, SSM unavailable).
    #[error("pool parameter {name}: {reason}")]
    Unreadable { name: String, reason: String },
    /// The parameter's text is not a valid pool (the message names the field).
    #[error("pool parameter {name}: {source}")]
    Invalid {
        name: String,
        #[source]
        source: ConfigError,
    },
}

impl PoolSourceError {
    /// Whether reading again may succeed (SSM throttled or unavailable).
    pub fn is_retryable(&self) -> bool {
        matches!(self, PoolSourceError::Unreadable { reason, .. } if reason.starts_with("SSM"))
    }
}

/// The pool a function serves, from the SSM parameter `name` (`TIERWISE_POOL_SSM_PARAMETER`;
/// a `String` or `SecureString` holding the pool's TOML): a price change or a moved model is a
/// parameter update and a new cold start, no rebuild. Key references as in
/// [`deployment_pool`].
pub async fn ssm_pool(
    sdk: &SdkConfig,
    name: &str,
    key_refs: &[(String, String)],
) -> Result<PoolConfig, PoolSourceError> {
    let clients = Clients {
        ssm: aws_sdk_ssm::Client::new(sdk),
        secrets: aws_sdk_secretsmanager::Client::new(sdk),
    };
    let unreadable = |reason: String| PoolSourceError::Unreadable {
        name: name.to_string(),
        reason,
    };
    let text = match read_key(&clients, KeySource::Ssm(name)).await {
        Ok(t) if t.is_empty() => return Err(unreadable("the parameter is empty".into())),
        Ok(t) => t,
        Err(Unread::NotFound) => return Err(unreadable("no such parameter".into())),
        Err(Unread::Service(e)) => return Err(unreadable(format!("SSM: {e}"))),
        Err(_) => return Err(unreadable("the parameter cannot be read".into())),
    };
    let invalid = |source| PoolSourceError::Invalid {
        name: name.to_string(),
        source,
    };
    let mut pool = PoolConfig::from_toml_str(&text).map_err(invalid)?;
    for (provider, key_ref) in key_refs {
        pool.set_api_key_ref(provider, key_ref).map_err(invalid)?;
    }
    Ok(pool)
}

/// The clients, built once per [`load_endpoints`].
struct Clients {
    ssm: aws_sdk_ssm::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

/// Resolves every provider's API key (concurrently) and returns the endpoints by provider.
/// The first failure (in provider order) is returned; nothing is logged about the values.
pub async fn load_endpoints(pool: &PoolConfig, sdk: &SdkConfig) -> Result<Endpoints, SecretError> {
    let clients = Clients {
        ssm: aws_sdk_ssm::Client::new(sdk),
        secrets: aws_sdk_secretsmanager::Client::new(sdk),
    };
    let clients = &clients;
    let lookups = pool.providers().map(|(name, spec)| async move {
        let key = resolve(clients, name, &spec.api_key_ref).await?;
        Ok::<_, SecretError>((name.to_string(), Endpoint::of(spec, key)))
    });
    let results = futures_util::future::join_all(lookups).await;
    let mut endpoints = Endpoints::new();
    for r in results {
        let (name, endpoint) = r?;
        endpoints.insert(name, endpoint);
    }
    tracing::info!(providers = endpoints.len(), "provider API keys loaded");
    Ok(endpoints)
}

/// Why a key could not be read, before the provider and reference are attached.
enum Unread {
    BadReference,
    NotFound,
    Empty,
    Unusable(&'static str),
    Service(StoreError),
}

impl Unread {
    /// The error, naming the provider and the reference.
    fn named(self, provider: &str, reference: &str) -> SecretError {
        let (provider, reference) = (provider.to_string(), reference.to_string());
        match self {
            Unread::BadReference => SecretError::BadReference {
                provider,
                reference,
            },
            Unread::NotFound => SecretError::NotFound {
                provider,
                reference,
            },
            Unread::Empty => SecretError::Empty {
                provider,
                reference,
            },
            Unread::Unusable(reason) => SecretError::Unusable {
                provider,
                reference,
                reason,
            },
            Unread::Service(source) => SecretError::Service {
                provider,
                reference,
                source,
            },
        }
    }
}

async fn resolve(
    clients: &Clients,
    provider: &str,
    reference: &str,
) -> Result<ApiKey, SecretError> {
    let named = |u: Unread| u.named(provider, reference);
    let source = key_source(reference).ok_or_else(|| named(Unread::BadReference))?;
    let key = read_key(clients, source).await.map_err(named)?;
    if key.is_empty() {
        return Err(named(Unread::Empty));
    }
    Ok(ApiKey::new(key))
}

/// The key text at `source`, trimmed (empty when the source holds nothing).
async fn read_key(clients: &Clients, source: KeySource<'_>) -> Result<String, Unread> {
    match source {
        KeySource::Env(var) => match std::env::var(var) {
            Ok(v) => Ok(v.trim().to_string()),
            Err(std::env::VarError::NotPresent) => Err(Unread::NotFound),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(Unread::Unusable("the variable is not valid UTF-8"))
            }
        },
        KeySource::Ssm(name) => {
            let res = clients
                .ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await;
            match res {
                Ok(out) => Ok(out
                    .parameter
                    .and_then(|p| p.value)
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_parameter_not_found()) =>
                {
                    Err(Unread::NotFound)
                }
                Err(e) => Err(Unread::Service(store_error("SSM", &e))),
            }
        }
        KeySource::SecretsManager(id) => {
            let res = clients
                .secrets
                .get_secret_value()
                .secret_id(id)
                .send()
                .await;
            match res {
                Ok(out) => match out.secret_string {
                    Some(secret) => extract_key(&secret).map_err(Unread::Unusable),
                    None => Err(Unread::Unusable(
                        "the secret has no SecretString (binary secrets are not supported)",
                    )),
                },
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_resource_not_found_exception()) =>
                {
                    Err(Unread::NotFound)
                }
                Err(e) => Err(Unread::Service(store_error("Secrets Manager", &e))),
            }
        }
    }
}

/// Creates (or overwrites) an encrypted SSM parameter: for local stacks and tests.
pub async fn setup_parameter(sdk: &SdkConfig, name: &str, value: &str) -> Result<(), StoreError> {
    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .map_err(|e| store_error("SSM", &e))?;
    Ok(())
}

/// Creates a Secrets Manager secret holding `value` (or stores `value` as the current version
/// of an existing one) and returns its ARN: for local stacks and tests.
pub async fn setup_secret(sdk: &SdkConfig, name: &str, value: &str) -> Result<String, StoreError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let created = client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await;
    let arn = match created {
        Ok(out) => out.arn,
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_exists_exception()) =>
        {
            client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .map_err(|e| store_error("Secrets Manager", &e))?
                .arn
        }
        Err(e) => return Err(store_error("Secrets Manager", &e)),
    };
    arn.ok_or(StoreError::Rejected {
        service: "Secrets Manager",
        detail: "no secret ARN returned".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_parsed() {
        assert_eq!(
            key_source("ssm:/tierwise/key"),
            Some(KeySource::Ssm("/tierwise/key"))
        );
        assert_eq!(
            key_source("secretsmanager:tierwise/openrouter"),
            Some(KeySource::SecretsManager("tierwise/openrouter"))
        );
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf";
        assert_eq!(key_source(arn), Some(KeySource::SecretsManager(arn)));
        let arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/k";
        assert_eq!(key_source(arn), Some(KeySource::Ssm(arn)));
        assert_eq!(
            key_source("env:OPENROUTER_API_KEY"),
            Some(KeySource::Env("OPENROUTER_API_KEY"))
        );
        assert_eq!(
            key_source("OPENROUTER_API_KEY"),
            Some(KeySource::Env("OPENROUTER_API_KEY"))
        );
        for bad in ["", "ssm:", "env:", "vault:x", "arn:aws:s3:::bucket", "a-b"] {
            assert_eq!(key_source(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keys_are_taken_from_plain_or_json_secrets() {
        assert_eq!(extract_key("  k-123\n").unwrap(), "k-123");
        assert_eq!(
            extract_key(r#"{"api_key": "k-456", "org": "x"}"#).unwrap(),
            "k-456"
        );
        assert!(extract_key(r#"{"key": "k-789"}"#).is_err());
        assert!(extract_key(r#"{"api_key": 5}"#).is_err());
        let err = extract_key(r#"{"api_key": "k-secret"#).unwrap_err();
        assert!(!err.contains("k-secret"));
    }
}
