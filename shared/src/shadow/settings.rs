//! The evaluator's settings: its `TIERWISE_*` environment variables, read once at init and
//! checked together ([`EvaluatorSettings`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::serve::settings::{AwsCallSettings, SettingsError, parse_key_refs, parse_prefixed};
use crate::shadow::verdict::{CompareSettings, JudgeSettings};

/// The evaluator function's settings (`TIERWISE_*` environment variables).
#[derive(Debug, Clone)]
pub struct EvaluatorSettings {
    /// `TIERWISE_TABLE`: the DynamoDB table (cost records, evaluations, rollups).
    pub table: String,
    /// `TIERWISE_POOL_PATH`: pool file; the bundled pool when absent.
    pub pool_path: Option<PathBuf>,
    /// `TIERWISE_POOL_SSM_PARAMETER`: the pool from an SSM parameter instead (as the router).
    pub pool_ssm_parameter: Option<String>,
    /// `TIERWISE_REFERENCE_MODEL`: answers every sample with this model (one of the pool's)
    /// instead of the sample's reference (the pool's baseline when the router sent it).
    pub reference_model: Option<String>,
    /// `TIERWISE_LOG_LEVEL` (`info`).
    pub log_level: String,
    /// `TIERWISE_KEEP_PROMPTS` (`true`): keep the prompt on the record, for the label export.
    pub keep_prompts: bool,
    /// `TIERWISE_PROMPT_MAX_BYTES` (16384): longer prompts are cut (on a character boundary)
    /// and the record says `prompt_truncated`.
    pub prompt_max_bytes: usize,
    /// `TIERWISE_EVAL_TTL_DAYS` (90): days an evaluation record (and its prompt) is kept.
    pub eval_ttl_days: u32,
    /// `TIERWISE_LEASE_SECS` (300): how long a claim keeps other evaluators off a query id.
    /// Must exceed the longest evaluation (the function's timeout); an evaluator that crashes
    /// holds the query that long.
    pub lease: Duration,
    /// `TIERWISE_UPSTREAM_TIMEOUT_MS` (60000): deadline of each model call.
    pub upstream_timeout: Duration,
    /// `TIERWISE_MAX_OUTPUT_TOKENS` (1024): `max_tokens` of the reference (and routed) call,
    /// capped by the model's own maximum.
    pub max_output_tokens: u32,
    /// `TIERWISE_CONCURRENCY` (8): samples of one SQS batch evaluated at once.
    pub concurrency: usize,
    /// `TIERWISE_COMPARE`: the comparison's thresholds as JSON ([`CompareSettings`], e.g.
    /// `{"equivalent_similarity": 0.85, "short_max_words": 4}`); defaults when absent.
    pub compare: CompareSettings,
    /// The LLM judge, when `TIERWISE_JUDGE_MODEL` (a model of the pool) is set: it decides
    /// free-text comparisons (short answers stay exact-matched), blind, order randomised per
    /// query id. `TIERWISE_JUDGE_MAX_TOKENS` (200), `TIERWISE_JUDGE_PROMPT` (a template with
    /// `{question}`, `{answer_a}`, `{answer_b}`; the built-in one when absent).
    pub judge: Option<JudgeSettings>,
    /// `TIERWISE_API_KEY_REFS`: where providers' keys are, overriding the pool's
    /// `api_key_ref`s: `provider=ref` pairs separated by commas (as the router's).
    pub api_key_refs: Vec<(String, String)>,
    /// `TIERWISE_AWS_OPERATION_TIMEOUT_MS` (5000), `TIERWISE_AWS_ATTEMPT_TIMEOUT_MS` (2000),
    /// `TIERWISE_AWS_MAX_ATTEMPTS` (3).
    pub aws: AwsCallSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvaluatorSettings {
    table: String,
    pool_path: Option<PathBuf>,
    pool_ssm_parameter: Option<String>,
    reference_model: Option<String>,
    log_level: Option<String>,
    keep_prompts: Option<bool>,
    prompt_max_bytes: Option<usize>,
    eval_ttl_days: Option<u32>,
    lease_secs: Option<u64>,
    upstream_timeout_ms: Option<u64>,
    max_output_tokens: Option<u32>,
    concurrency: Option<usize>,
    compare: Option<String>,
    judge_model: Option<String>,
    judge_max_tokens: Option<u32>,
    judge_prompt: Option<String>,
    api_key_refs: Option<String>,
    aws_operation_timeout_ms: Option<u64>,
    aws_attempt_timeout_ms: Option<u64>,
    aws_max_attempts: Option<u32>,
}

fn invalid(name: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        name,
        reason: reason.into(),
    }
}

impl RawEvaluatorSettings {
    /// `TIERWISE_COMPARE` as JSON, checked; the defaults when absent or blank.
    fn compare(&self) -> Result<CompareSettings, SettingsError> {
        let compare = match self.compare.as_deref().map(str::trim) {
            None | Some("") => CompareSettings::default(),
            Some(text) => {
                serde_json::from_str(text).map_err(|e| invalid("COMPARE", e.to_string()))?
            }
        };
        compare
            .validate()
            .map_err(|e| invalid("COMPARE", e.to_string()))?;
        Ok(compare)
    }

    /// The judge, when `TIERWISE_JUDGE_MODEL` is set (checked with its token cap and prompt).
    fn judge(&self) -> Result<Option<JudgeSettings>, SettingsError> {
        let Some(model) = self
            .judge_model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        else {
            return Ok(None);
        };
        let mut j = JudgeSettings::new(model);
        if let Some(t) = self.judge_max_tokens {
            j.max_tokens = t;
        }
        j.prompt = self.judge_prompt.clone().filter(|p| !p.trim().is_empty());
        j.validate()
            .map_err(|e| invalid("JUDGE_MODEL", e.to_string()))?;
        Ok(Some(j))
    }

    /// The AWS call settings, over the evaluator's defaults (5 s, 2 s, 3 attempts).
    fn aws(&self) -> AwsCallSettings {
        AwsCallSettings {
            operation_timeout: Duration::from_millis(
                self.aws_operation_timeout_ms.unwrap_or(5_000),
            ),
            attempt_timeout: Duration::from_millis(self.aws_attempt_timeout_ms.unwrap_or(2_000)),
            max_attempts: self.aws_max_attempts.unwrap_or(3),
        }
    }
}

impl EvaluatorSettings {
    /// From the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(std::env::vars())
    }

    /// From `(name, value)` pairs; names without the `TIERWISE_` prefix are ignored, unknown
    /// `TIERWISE_*` names are refused.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let raw: RawEvaluatorSettings = parse_prefixed(vars)?;
        let compare = raw.compare()?;
        let judge = raw.judge()?;
        let api_key_refs = parse_key_refs(raw.api_key_refs.as_deref())?;
        let aws = raw.aws();
        let s = EvaluatorSettings {
            table: raw.table,
            pool_path: raw.pool_path,
            pool_ssm_parameter: raw.pool_ssm_parameter.filter(|p| !p.trim().is_empty()),
            reference_model: raw.reference_model.filter(|m| !m.trim().is_empty()),
            log_level: raw.log_level.unwrap_or_else(|| "info".into()),
            keep_prompts: raw.keep_prompts.unwrap_or(true),
            prompt_max_bytes: raw.prompt_max_bytes.unwrap_or(16 * 1024),
            eval_ttl_days: raw.eval_ttl_days.unwrap_or(90),
            lease: Duration::from_secs(raw.lease_secs.unwrap_or(300)),
            upstream_timeout: Duration::from_millis(raw.upstream_timeout_ms.unwrap_or(60_000)),
            max_output_tokens: raw.max_output_tokens.unwrap_or(1024),
            concurrency: raw.concurrency.unwrap_or(8),
            compare,
            judge,
            api_key_refs,
            aws,
        };
        s.validate()?;
        Ok(s)
    }

    /// The ranges of the numeric settings, and the table's name.
    fn validate(&self) -> Result<(), SettingsError> {
        if self.table.trim().is_empty() {
            return Err(invalid("TABLE", "must not be empty"));
        }
        if !(1_024..=256 * 1024).contains(&self.prompt_max_bytes) {
            return Err(invalid(
                "PROMPT_MAX_BYTES",
                "must be between 1024 and 262144",
            ));
        }
        if self.eval_ttl_days == 0 {
            return Err(invalid("EVAL_TTL_DAYS", "must be at least 1"));
        }
        if self.lease < Duration::from_secs(5) {
            return Err(invalid("LEASE_SECS", "must be at least 5"));
        }
        if self.upstream_timeout.is_zero() {
            return Err(invalid("UPSTREAM_TIMEOUT_MS", "must be above 0"));
        }
        if self.upstream_timeout >= self.lease {
            return Err(invalid(
                "UPSTREAM_TIMEOUT_MS",
                "must be shorter than TIERWISE_LEASE_SECS",
            ));
        }
        if self.max_output_tokens == 0 {
            return Err(invalid("MAX_OUTPUT_TOKENS", "must be at least 1"));
        }
        if !(1..=64).contains(&self.concurrency) {
            return Err(invalid("CONCURRENCY", "must be between 1 and 64"));
        }
        let aws = &self.aws;
        if aws.attempt_timeout.is_zero() || aws.attempt_timeout > aws.operation_timeout {
            return Err(invalid(
                "AWS_ATTEMPT_TIMEOUT_MS",
                "must be above 0 and at most TIERWISE_AWS_OPERATION_TIMEOUT_MS",
            ));
        }
        if !(1..=10).contains(&aws.max_attempts) {
            return Err(invalid("AWS_MAX_ATTEMPTS", "must be between 1 and 10"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v = vec![("TIERWISE_TABLE".to_string(), "t".to_string())];
        v.extend(extra.iter().map(|(k, x)| (k.to_string(), x.to_string())));
        v
    }

    #[test]
    fn settings_defaults_and_checks() {
        let s = EvaluatorSettings::from_vars(vars(&[("PATH", "/bin")])).unwrap();
        assert_eq!(s.table, "t");
        assert_eq!(s.lease, Duration::from_secs(300));
        assert_eq!(s.upstream_timeout, Duration::from_secs(60));
        assert_eq!(
            (s.concurrency, s.max_output_tokens, s.eval_ttl_days),
            (8, 1024, 90)
        );
        assert!(s.keep_prompts && s.judge.is_none());
        assert_eq!(s.compare, CompareSettings::default());
        let s = EvaluatorSettings::from_vars(vars(&[
            ("TIERWISE_JUDGE_MODEL", "openai/gpt-4o"),
            ("TIERWISE_JUDGE_MAX_TOKENS", "50"),
            ("TIERWISE_KEEP_PROMPTS", "false"),
            (
                "TIERWISE_API_KEY_REFS",
                "openrouter=secretsmanager:arn:aws:secretsmanager:x",
            ),
        ]))
        .unwrap();
        assert_eq!(
            s.api_key_refs,
            [(
                "openrouter".to_string(),
                "secretsmanager:arn:aws:secretsmanager:x".to_string()
            )]
        );
        assert_eq!(s.judge.as_ref().map(|j| j.max_tokens), Some(50));
        assert!(!s.keep_prompts);
        for (k, v, named) in [
            ("TIERWISE_LEASE_SECS", "2", "LEASE_SECS"),
            (
                "TIERWISE_UPSTREAM_TIMEOUT_MS",
                "400000",
                "UPSTREAM_TIMEOUT_MS",
            ),
            ("TIERWISE_CONCURRENCY", "0", "CONCURRENCY"),
            ("TIERWISE_COMPARE", "{\"nope\": 1}", "COMPARE"),
            ("TIERWISE_JUDGE_PROMPT", "no placeholders", "JUDGE_PROMPT"),
            ("TIERWISE_EVAL_TTL_DAYS", "0", "EVAL_TTL_DAYS"),
            ("TIERWISE_API_KEY_REFS", "openrouter", "API_KEY_REFS"),
        ] {
            let mut extra = vec![(k, v)];
            if k == "TIERWISE_JUDGE_PROMPT" {
                extra.push(("TIERWISE_JUDGE_MODEL", "openai/gpt-4o"));
            }
            let e = EvaluatorSettings::from_vars(vars(&extra))
                .unwrap_err()
                .to_string();
            let named = if named == "JUDGE_PROMPT" {
                "JUDGE_MODEL"
            } else {
                named
            };
            assert!(e.contains(named), "{k}={v}: {e}");
        }
    }
}
