//! The router's deployment settings, from `TIERWISE_*` environment variables (what a Lambda
//! is configured with), typed and validated once at init. An unknown `TIERWISE_*` variable
//! is an error, so a misspelt setting fails the deployment instead of being ignored.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Prefix of every setting's environment variable.
pub const ENV_PREFIX: &str = "TIERWISE_";

/// A setting is missing, malformed or out of range.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment: {0}")]
    Env(String),
    #[error("{ENV_PREFIX}{name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Timeouts and retries of every AWS call (DynamoDB, SQS).
#[derive(Debug, Clone, PartialEq)]
pub struct AwsCallSettings {
    /// Bound on one operation, retries included.
    pub operation_timeout: Duration,
    /// Bound on one attempt.
    pub attempt_timeout: Duration,
    /// Attempts per operation (1 = no retry), the SDK's standard retry with backoff.
    pub max_attempts: u32,
}

impl Default for AwsCallSettings {
    fn default() -> Self {
        Self {
            operation_timeout: Duration::from_millis(2_000),
            attempt_timeout: Duration::from_millis(500),
            max_attempts: 3,
        }
    }
}

/// The router function's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterSettings {
    /// DynamoDB table of cost records and rollups.
    pub table: String,
    /// SQS queue of shadow samples.
    pub shadow_queue_url: String,
    /// SQS queue where records and samples that could not be delivered are parked.
    pub fallback_queue_url: String,
    /// Pool file; the bundled pool when absent.
    pub pool_path: Option<PathBuf>,
    /// `TIERWISE_POOL_SSM_PARAMETER`: the pool from an SSM parameter instead (no rebuild to
    /// change a price); exclusive with `pool_path`.
    pub pool_ssm_parameter: Option<String>,
    /// `TIERWISE_CLASSIFIER_PATH`: a classifier artifact (`tierwise train`); the bundled one
    /// when absent.
    pub classifier_path: Option<PathBuf>,
    /// Overrides the pool's shadow rate.
    pub shadow_rate: Option<f64>,
    /// Whether log lines may carry the query text (off by default).
    pub log_query_text: bool,
    /// `tracing` filter, e.g. `info` or `tierwise=debug`.
    pub log_level: String,
    /// Items each rollup is spread over (write throughput per rollup; reads grow with it).
    pub rollup_shards: u32,
    /// Days a cost record is kept (its `ttl`); rollups are kept.
    pub record_ttl_days: u32,
    pub aws: AwsCallSettings,
    /// The proxy (`POST /v1/chat/completions`): its upstream calls and circuit breakers.
    pub proxy: ProxyCallSettings,
    /// `TIERWISE_AUTH`: who checks the caller (`iam` — the gateway, the default — or `keys`).
    pub auth: AuthMode,
    /// `TIERWISE_KEY_CACHE_SECS`: how long a key lookup is trusted (the revocation bound).
    pub key_cache: Duration,
    /// `TIERWISE_SAMPLING_SALT`: mixed into the shadow-sampling hash so that callers cannot
    /// choose sampled query ids; random per instance when unset.
    pub sampling_salt: Option<String>,
}

/// Who checks the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// The gateway (IAM, SigV4); the tenant is the request's.
    Iam,
    /// `Authorization: Bearer <key>`, checked by the function against the keys in the table;
    /// the tenant is the key's.
    Keys,
}

impl AuthMode {
    fn parse(raw: Option<&str>) -> Result<Self, SettingsError> {
        match raw.map(str::trim) {
            None | Some("iam") => Ok(AuthMode::Iam),
            Some("keys") => Ok(AuthMode::Keys),
            Some(other) => Err(SettingsError::Invalid {
                name: "AUTH",
                reason: format!("must be iam or keys, got {other:?}"),
            }),
        }
    }
}

/// The proxy's settings: whether it is on, how it calls providers, its breakers.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyCallSettings {
    /// Serve `POST /v1/chat/completions` (needs the providers' keys at init).
    pub enabled: bool,
    /// Answer through Lambda response streaming (a function URL with `RESPONSE_STREAM`);
    /// off behind API Gateway, which buffers.
    pub response_streaming: bool,
    /// Calls of one model before the next (1 = no retry of the same model).
    pub attempts_per_model: u32,
    /// Longest one upstream attempt may take (a stream: up to its first bytes).
    pub attempt_timeout: Duration,
    pub connect_timeout: Duration,
    /// Longest silence inside an answer (between two chunks of a stream).
    pub read_timeout: Duration,
    /// A `Retry-After` longer than this moves on to the next model.
    pub max_retry_after: Duration,
    /// Deadline used when the invocation has none (local runs, tests).
    pub default_deadline: Duration,
    /// Where providers' keys are, overriding the pool's `api_key_ref`s:
    /// `provider=ref` pairs (`TIERWISE_API_KEY_REFS="openrouter=secretsmanager:arn:..."`).
    pub api_key_refs: Vec<(String, String)>,
    /// Failures of a model within `breaker_window` (across instances) that open its breaker.
    pub breaker_failures: u32,
    pub breaker_window: Duration,
    /// First cool-down of an open breaker (doubled after a failed probe).
    pub breaker_cooldown: Duration,
}

impl Default for ProxyCallSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            response_streaming: false,
            attempts_per_model: 2,
            attempt_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(5),
            default_deadline: Duration::from_secs(120),
            api_key_refs: Vec::new(),
            breaker_failures: 5,
            breaker_window: Duration::from_secs(30),
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouterSettings {
    table: String,
    auth: Option<String>,
    key_cache_secs: Option<u64>,
    sampling_salt: Option<String>,
    shadow_queue_url: String,
    fallback_queue_url: String,
    pool_path: Option<PathBuf>,
    pool_ssm_parameter: Option<String>,
    classifier_path: Option<PathBuf>,
    shadow_rate: Option<f64>,
    #[serde(default)]
    log_query_text: bool,
    log_level: Option<String>,
    rollup_shards: Option<u32>,
    record_ttl_days: Option<u32>,
    aws_operation_timeout_ms: Option<u64>,
    aws_attempt_timeout_ms: Option<u64>,
    aws_max_attempts: Option<u32>,
    proxy: Option<bool>,
    response_streaming: Option<bool>,
    upstream_attempts_per_model: Option<u32>,
    upstream_attempt_timeout_ms: Option<u64>,
    upstream_connect_timeout_ms: Option<u64>,
    upstream_read_timeout_ms: Option<u64>,
    upstream_max_retry_after_ms: Option<u64>,
    upstream_default_deadline_ms: Option<u64>,
    api_key_refs: Option<String>,
    breaker_failures: Option<u32>,
    breaker_window_ms: Option<u64>,
    breaker_cooldown_ms: Option<u64>,
}

impl RouterSettings {
    /// From the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(std::env::vars())
    }

    /// From `(name, value)` pairs; names without the `TIERWISE_` prefix are ignored.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let raw: RawRouterSettings = parse_prefixed(vars)?;
        let aws = AwsCallSettings::from_raw(
            AwsCallSettings::default(),
            raw.aws_operation_timeout_ms,
            raw.aws_attempt_timeout_ms,
            raw.aws_max_attempts,
        );
        let s = RouterSettings {
            table: raw.table,
            shadow_queue_url: raw.shadow_queue_url,
            fallback_queue_url: raw.fallback_queue_url,
            pool_path: raw.pool_path,
            pool_ssm_parameter: raw.pool_ssm_parameter.filter(|p| !p.trim().is_empty()),
            classifier_path: raw.classifier_path,
            shadow_rate: raw.shadow_rate,
            log_query_text: raw.log_query_text,
            log_level: raw.log_level.unwrap_or_else(|| "info".into()),
            rollup_shards: raw.rollup_shards.unwrap_or(4),
            record_ttl_days: raw.record_ttl_days.unwrap_or(400),
            aws,
            auth: AuthMode::parse(raw.auth.as_deref())?,
            key_cache: Duration::from_secs(raw.key_cache_secs.unwrap_or(60)),
            sampling_salt: raw.sampling_salt,
            proxy: {
                let d = ProxyCallSettings::default();
                let ms = |v: Option<u64>, dflt: Duration| v.map_or(dflt, Duration::from_millis);
                ProxyCallSettings {
                    enabled: raw.proxy.unwrap_or(d.enabled),
                    response_streaming: raw.response_streaming.unwrap_or(d.response_streaming),
                    attempts_per_model: raw
                        .upstream_attempts_per_model
                        .unwrap_or(d.attempts_per_model),
                    attempt_timeout: ms(raw.upstream_attempt_timeout_ms, d.attempt_timeout),
                    connect_timeout: ms(raw.upstream_connect_timeout_ms, d.connect_timeout),
                    read_timeout: ms(raw.upstream_read_timeout_ms, d.read_timeout),
                    max_retry_after: ms(raw.upstream_max_retry_after_ms, d.max_retry_after),
                    default_deadline: ms(raw.upstream_default_deadline_ms, d.default_deadline),
                    api_key_refs: parse_key_refs(raw.api_key_refs.as_deref())?,
                    breaker_failures: raw.breaker_failures.unwrap_or(d.breaker_failures),
                    breaker_window: ms(raw.breaker_window_ms, d.breaker_window),
                    breaker_cooldown: ms(raw.breaker_cooldown_ms, d.breaker_cooldown),
                }
            },
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let bad = |name, reason: &str| {
            Err(SettingsError::Invalid {
                name,
                reason: reason.to_string(),
            })
        };
        if self.table.trim().is_empty() {
            return bad("TABLE", "must not be empty");
        }
        if self.pool_path.is_some() && self.pool_ssm_parameter.is_some() {
            return bad(
                "POOL_SSM_PARAMETER",
                "give the pool as a file (POOL_PATH) or an SSM parameter, not both",
            );
        }
        for (name, url) in [
            ("SHADOW_QUEUE_URL", &self.shadow_queue_url),
            ("FALLBACK_QUEUE_URL", &self.fallback_queue_url),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return bad(name, "must be a queue URL (http:// or https://)");
            }
        }
        if let Some(r) = self.shadow_rate
            && !(0.0..=1.0).contains(&r)
        {
            return bad("SHADOW_RATE", "must be between 0 and 1");
        }
        if !(1..=64).contains(&self.rollup_shards) {
            return bad("ROLLUP_SHARDS", "must be between 1 and 64");
        }
        if self.record_ttl_days == 0 {
            return bad("RECORD_TTL_DAYS", "must be at least 1");
        }
        let p = &self.proxy;
        if !(1..=5).contains(&p.attempts_per_model) {
            return bad("UPSTREAM_ATTEMPTS_PER_MODEL", "must be between 1 and 5");
        }
        for (name, d) in [
            ("UPSTREAM_ATTEMPT_TIMEOUT_MS", p.attempt_timeout),
            ("UPSTREAM_CONNECT_TIMEOUT_MS", p.connect_timeout),
            ("UPSTREAM_READ_TIMEOUT_MS", p.read_timeout),
            ("UPSTREAM_DEFAULT_DEADLINE_MS", p.default_deadline),
            ("BREAKER_WINDOW_MS", p.breaker_window),
            ("BREAKER_COOLDOWN_MS", p.breaker_cooldown),
        ] {
            if d.is_zero() {
                return bad(name, "must be above 0");
            }
        }
        if p.breaker_failures == 0 {
            return bad("BREAKER_FAILURES", "must be at least 1");
        }
        self.aws.validate()
    }
}

impl AwsCallSettings {
    fn from_raw(
        defaults: AwsCallSettings,
        operation_ms: Option<u64>,
        attempt_ms: Option<u64>,
        max_attempts: Option<u32>,
    ) -> Self {
        AwsCallSettings {
            operation_timeout: operation_ms
                .map_or(defaults.operation_timeout, Duration::from_millis),
            attempt_timeout: attempt_ms.map_or(defaults.attempt_timeout, Duration::from_millis),
            max_attempts: max_attempts.unwrap_or(defaults.max_attempts),
        }
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let bad = |name, reason: &str| {
            Err(SettingsError::Invalid {
                name,
                reason: reason.to_string(),
            })
        };
        if self.attempt_timeout.is_zero() || self.operation_timeout.is_zero() {
            return bad("AWS_OPERATION_TIMEOUT_MS", "timeouts must be above 0");
        }
        if self.attempt_timeout > self.operation_timeout {
            return bad(
                "AWS_ATTEMPT_TIMEOUT_MS",
                "must not exceed TIERWISE_AWS_OPERATION_TIMEOUT_MS",
            );
        }
        if !(1..=10).contains(&self.max_attempts) {
            return bad("AWS_MAX_ATTEMPTS", "must be between 1 and 10");
        }
        Ok(())
    }
}

/// The reporter function's settings (it only reads the table).
#[derive(Debug, Clone, PartialEq)]
pub struct ReporterSettings {
    /// DynamoDB table of cost records and rollups.
    pub table: String,
    /// `tracing` filter.
    pub log_level: String,
    /// Days read concurrently (one `Query` each).
    pub read_concurrency: usize,
    /// Reads are off the request path of the router: longer timeouts than the router's.
    pub aws: AwsCallSettings,
    /// `TIERWISE_AUTH`: `keys` scopes a report to the key's tenant (all tenants for an admin
    /// key); `iam` (the default) leaves it to the gateway.
    pub auth: AuthMode,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReporterSettings {
    table: String,
    auth: Option<String>,
    log_level: Option<String>,
    read_concurrency: Option<usize>,
    aws_operation_timeout_ms: Option<u64>,
    aws_attempt_timeout_ms: Option<u64>,
    aws_max_attempts: Option<u32>,
}

impl ReporterSettings {
    /// From the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(std::env::vars())
    }

    /// From `(name, value)` pairs; names without the `TIERWISE_` prefix are ignored.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let raw: RawReporterSettings = parse_prefixed(vars)?;
        let defaults = AwsCallSettings {
            operation_timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(3),
            max_attempts: 3,
        };
        let s = ReporterSettings {
            table: raw.table,
            log_level: raw.log_level.unwrap_or_else(|| "info".into()),
            read_concurrency: raw.read_concurrency.unwrap_or(8),
            auth: AuthMode::parse(raw.auth.as_deref())?,
            aws: AwsCallSettings::from_raw(
                defaults,
                raw.aws_operation_timeout_ms,
                raw.aws_attempt_timeout_ms,
                raw.aws_max_attempts,
            ),
        };
        if s.table.trim().is_empty() {
            return Err(SettingsError::Invalid {
                name: "TABLE",
                reason: "must not be empty".into(),
            });
        }
        if !(1..=64).contains(&s.read_concurrency) {
            return Err(SettingsError::Invalid {
                name: "READ_CONCURRENCY",
                reason: "must be between 1 and 64".into(),
            });
        }
        s.aws.validate()?;
        Ok(s)
    }
}

/// `provider=ref,provider=ref` (`TIERWISE_API_KEY_REFS`).
pub fn parse_key_refs(text: Option<&str>) -> Result<Vec<(String, String)>, SettingsError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((p, r)) if !p.trim().is_empty() && !r.trim().is_empty() => {
                Ok((p.trim().to_string(), r.trim().to_string()))
            }
            _ => Err(SettingsError::Invalid {
                name: "API_KEY_REFS",
                reason: "must be provider=reference pairs separated by commas".into(),
            }),
        })
        .collect()
}

/// The `TIERWISE_*` variables among `vars`, into a raw settings struct (`deny_unknown_fields`).
pub fn parse_prefixed<T: serde::de::DeserializeOwned>(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, SettingsError> {
    envy::prefixed(ENV_PREFIX)
        .from_iter(vars.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)))
        .map_err(|e| SettingsError::Env(env_error(e)))
}

/// envy's messages name fields in lower case without the prefix; name the variable instead.
fn env_error(e: envy::Error) -> String {
    let msg = e.to_string();
    match e {
        envy::Error::MissingValue(field) => {
            format!("{ENV_PREFIX}{} is required", field.to_uppercase())
        }
        envy::Error::Custom(_) if msg.starts_with("unknown field") => {
            // "unknown field `tabel`, expected one of ..."
            let field = msg.split('`').nth(1).unwrap_or("?").to_uppercase();
            format!("unknown setting {ENV_PREFIX}{field} (misspelt?)")
        }
        _ => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = [
            ("TIERWISE_TABLE", "costs"),
            (
                "TIERWISE_SHADOW_QUEUE_URL",
                "http://127.0.0.1:5000/1/shadow",
            ),
            (
                "TIERWISE_FALLBACK_QUEUE_URL",
                "http://127.0.0.1:5000/1/fallback",
            ),
            ("PATH", "/usr/bin"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, val) in extra {
            v.retain(|(name, _)| name != k);
            v.push((k.to_string(), val.to_string()));
        }
        v
    }

    #[test]
    fn defaults_apply() {
        let s = RouterSettings::from_vars(vars(&[])).unwrap();
        assert_eq!(s.table, "costs");
        assert_eq!(s.rollup_shards, 4);
        assert_eq!(s.record_ttl_days, 400);
        assert!(!s.log_query_text);
        assert_eq!(s.shadow_rate, None);
        assert_eq!(s.aws, AwsCallSettings::default());
    }

    #[test]
    fn typed_values_parse() {
        let s = RouterSettings::from_vars(vars(&[
            ("TIERWISE_SHADOW_RATE", "0.25"),
            ("TIERWISE_LOG_QUERY_TEXT", "true"),
            ("TIERWISE_AWS_ATTEMPT_TIMEOUT_MS", "150"),
            ("TIERWISE_AWS_MAX_ATTEMPTS", "5"),
        ]))
        .unwrap();
        assert_eq!(s.shadow_rate, Some(0.25));
        assert!(s.log_query_text);
        assert_eq!(s.aws.attempt_timeout, Duration::from_millis(150));
        assert_eq!(s.aws.max_attempts, 5);
    }

    #[test]
    fn unknown_and_missing_settings_are_named() {
        let e = RouterSettings::from_vars(vars(&[("TIERWISE_SHADOW_RATES", "0.1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("TIERWISE_SHADOW_RATES"), "{e}");
        let e =
            RouterSettings::from_vars(vars(&[]).into_iter().filter(|(k, _)| k != "TIERWISE_TABLE"))
                .unwrap_err()
                .to_string();
        assert!(e.contains("TIERWISE_TABLE is required"), "{e}");
    }

    #[test]
    fn reporter_settings_have_their_own_names_and_defaults() {
        let r =
            ReporterSettings::from_vars([("TIERWISE_TABLE".to_string(), "t".to_string())]).unwrap();
        assert_eq!((r.table.as_str(), r.read_concurrency), ("t", 8));
        assert_eq!(r.aws.operation_timeout, Duration::from_secs(10));
        let e = ReporterSettings::from_vars(vars(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("TIERWISE_SHADOW_QUEUE_URL"), "{e}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for (k, v, named) in [
            ("TIERWISE_SHADOW_RATE", "1.5", "SHADOW_RATE"),
            ("TIERWISE_ROLLUP_SHARDS", "0", "ROLLUP_SHARDS"),
            (
                "TIERWISE_AWS_ATTEMPT_TIMEOUT_MS",
                "5000",
                "AWS_ATTEMPT_TIMEOUT_MS",
            ),
            ("TIERWISE_AWS_MAX_ATTEMPTS", "0", "AWS_MAX_ATTEMPTS"),
            ("TIERWISE_SHADOW_QUEUE_URL", "shadow", "SHADOW_QUEUE_URL"),
        ] {
            let e = RouterSettings::from_vars(vars(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(named), "{k}={v}: {e}");
        }
        let e = RouterSettings::from_vars(vars(&[("TIERWISE_ROLLUP_SHARDS", "four")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("four") || e.contains("invalid"), "{e}");
    }
}
