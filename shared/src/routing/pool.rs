//! The model pool configuration: which models each tier routes to, what they cost and how to
//! reach them, plus the routing thresholds and the pricing version stamped on records.
//!
//! The pool is a TOML file (the default one, `shared/config/pool.toml`, is bundled in the
//! binary: [`PoolConfig::bundled`]). It is parsed and validated once, at load: a [`PoolConfig`]
//! value is always valid (three tiers, each with at least one model, known providers, sane
//! prices and thresholds, a baseline taken from the pool), so code holding one never re-checks.
//! The classifier predicts a [`Tier`], never a model: models and prices can be edited here
//! without retraining.
//!
//! Routing rules live in the same file under `[rules]`; that table is owned by the rules module,
//! checked here at load and passed on raw ([`PoolConfig::rules`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Default minimum classifier confidence for the predicted tier to be trusted.
pub const DEFAULT_CONFIDENCE_THRESHOLD: f64 = 0.6;
/// Default fraction of queries also answered by the baseline model.
pub const DEFAULT_SHADOW_RATE: f64 = 0.05;
/// Default output length, in tokens, assumed for cost estimates before the answer is known.
pub const DEFAULT_EXPECTED_OUTPUT_TOKENS: u32 = 300;

/// The default pool, bundled in the binary.
const BUNDLED_POOL: &str = include_str!("../../config/pool.toml");

/// Errors loading or validating a pool configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read pool config {}: {source}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The text is not valid TOML or does not have the pool's shape (unknown or missing key,
    /// wrong type); the message is toml's, which names the key and the line.
    #[error("invalid pool config: {0}")]
    Parse(String),
    /// The TOML is well formed but a value is not acceptable.
    #[error("invalid pool config: {field}: {message}")]
    Invalid {
        /// Path of the offending field, e.g. `tiers[1].models[0].input_usd_per_m`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A model tier, ordered from cheapest (`Tier1`) to strongest (`Tier3`).
///
/// Serialised, parsed and displayed as `"tier1"`, `"tier2"`, `"tier3"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// The cheapest tier.
    Tier1,
    /// The middle tier.
    Tier2,
    /// The strongest (and most expensive) tier.
    Tier3,
}

impl Tier {
    /// All tiers, cheapest first.
    pub const ALL: [Tier; 3] = [Tier::Tier1, Tier::Tier2, Tier::Tier3];

    /// Position of the tier in [`Tier::ALL`]: 0 for `Tier1` .. 2 for `Tier3`.
    pub fn index(self) -> usize {
        match self {
            Tier::Tier1 => 0,
            Tier::Tier2 => 1,
            Tier::Tier3 => 2,
        }
    }

    /// The tier at `index` in [`Tier::ALL`], or `None` if out of range.
    pub fn from_index(index: usize) -> Option<Tier> {
        Tier::ALL.get(index).copied()
    }

    /// The next stronger tier; `Tier3` stays `Tier3`.
    pub fn up(self) -> Tier {
        Tier::from_index(self.index() + 1).unwrap_or(self)
    }

    /// The tier's name: `"tier1"`, `"tier2"` or `"tier3"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Tier1 => "tier1",
            Tier::Tier2 => "tier2",
            Tier::Tier3 => "tier3",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tier name that is not one of `tier1`, `tier2`, `tier3`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier {name:?}: valid tiers are {}", valid_tier_names())]
pub struct ParseTierError {
    /// The name that was given.
    pub name: String,
}

fn valid_tier_names() -> String {
    Tier::ALL.map(Tier::as_str).join(", ")
}

impl FromStr for Tier {
    type Err = ParseTierError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| ParseTierError { name: s.to_owned() })
    }
}

/// A model of the pool: its prices, limits and the provider serving it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Provider-style model id, e.g. `"openai/gpt-4o"`; unique in the pool.
    pub id: String,
    /// Price of input (prompt) tokens, USD per million.
    pub input_usd_per_m: f64,
    /// Price of output (completion) tokens, USD per million.
    pub output_usd_per_m: f64,
    /// Price of cached prompt tokens (provider-reported `cached_tokens`), USD per million;
    /// the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_usd_per_m: Option<f64>,
    /// Context window, in tokens (input and output together).
    pub context_window: u32,
    /// Maximum number of output tokens per request.
    pub max_output_tokens: u32,
    /// Name of the provider serving the model, a key of the pool's `[providers]` table.
    pub provider: String,
    /// The provider's name for the model when it differs from `id` (an Azure deployment, a
    /// vLLM served-model name); sent as the request's `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_model: Option<String>,
    /// What the model can serve. Absent: not declared, any request may be routed to it;
    /// present: a request that needs a capability the list lacks never goes to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<BTreeSet<Capability>>,
}

/// Something a request may need of a model beyond plain chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// `tools` / `functions` (tool calls).
    Tools,
    /// Image parts in messages.
    Vision,
    /// `response_format: {"type": "json_schema"}`.
    JsonSchema,
    /// `response_format: {"type": "json_object"}`.
    JsonMode,
    /// `stream: true`.
    Streaming,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Tools => "tools",
            Capability::Vision => "vision",
            Capability::JsonSchema => "json_schema",
            Capability::JsonMode => "json_mode",
            Capability::Streaming => "streaming",
        }
    }
}

impl ModelSpec {
    /// Cost in USD of a request with `input_tokens` in and `output_tokens` out, at list prices.
    pub fn cost_usd(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_usd_per_m + output_tokens as f64 * self.output_usd_per_m)
            / 1_000_000.0
    }

    /// The model name sent to the provider.
    pub fn upstream_name(&self) -> &str {
        self.upstream_model.as_deref().unwrap_or(&self.id)
    }

    /// Whether the model can serve a request needing `needs` (undeclared capabilities: yes).
    pub fn supports(&self, needs: &BTreeSet<Capability>) -> bool {
        self.capabilities
            .as_ref()
            .is_none_or(|have| needs.is_subset(have))
    }
}

/// How to reach a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Base URL of the provider's API, `http://` or `https://`; `/chat/completions` is
    /// appended.
    pub base_url: String,
    /// Name of the secret / parameter / environment variable holding the API key; never the
    /// key itself. May be empty only with `auth = "none"`.
    #[serde(default)]
    pub api_key_ref: String,
    /// How the key is sent: `bearer` (`Authorization: Bearer <key>`, OpenAI, OpenRouter,
    /// Together, Groq, vLLM), `api_key_header` (`api-key: <key>`, Azure OpenAI) or `none`.
    #[serde(default)]
    pub auth: ProviderAuth,
    /// Extra headers sent on every call (not secrets: those belong behind `api_key_ref`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Query parameters added to every call, e.g. Azure's `api-version`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
}

/// How a provider expects its key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderAuth {
    #[default]
    Bearer,
    ApiKeyHeader,
    None,
}

/// The pool file as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolFile {
    pricing_version: String,
    baseline_model: String,
    #[serde(default = "default_confidence_threshold")]
    confidence_threshold: f64,
    #[serde(default = "default_shadow_rate")]
    shadow_rate: f64,
    #[serde(default)]
    max_request_cost_usd: Option<f64>,
    #[serde(default = "default_expected_output_tokens")]
    expected_output_tokens: u32,
    tiers: Vec<TierFile>,
    providers: BTreeMap<String, ProviderSpec>,
    #[serde(default)]
    task_kinds: BTreeMap<String, Tier>,
    #[serde(default)]
    rules: toml::Table,
}

/// One `[[tiers]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierFile {
    name: Tier,
    // Defaulted so that a tier without models gets the validation error, which names the tier.
    #[serde(default)]
    models: Vec<ModelSpec>,
}

fn default_confidence_threshold() -> f64 {
    DEFAULT_CONFIDENCE_THRESHOLD
}

fn default_shadow_rate() -> f64 {
    DEFAULT_SHADOW_RATE
}

fn default_expected_output_tokens() -> u32 {
    DEFAULT_EXPECTED_OUTPUT_TOKENS
}

/// A validated model pool: three tiers of models in preference order, their providers, the
/// baseline model and the routing thresholds.
///
/// Only built by [`PoolConfig::from_toml_str`], [`PoolConfig::load`] or
/// [`PoolConfig::bundled`], which validate it; its fields are read through accessors so it
/// stays valid.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    pricing_version: String,
    confidence_threshold: f64,
    shadow_rate: f64,
    max_request_cost_usd: Option<f64>,
    expected_output_tokens: u32,
    /// Models of each tier, indexed by [`Tier::index`], in preference order; never empty.
    tiers: [Vec<ModelSpec>; 3],
    providers: BTreeMap<String, ProviderSpec>,
    baseline_tier: Tier,
    baseline: ModelSpec,
    /// Task kind -> tier (`[task_kinds]`), over the classifier's defaults.
    task_kinds: BTreeMap<String, Tier>,
    /// The raw `[rules]` table (empty if absent), parsed by the rules module.
    pub rules: toml::Table,
}

impl PoolConfig {
    /// Parses and validates a pool from TOML text.
    pub fn from_toml_str(s: &str) -> Result<PoolConfig, ConfigError> {
        let file: PoolFile = toml::from_str(s).map_err(|e| ConfigError::Parse(e.to_string()))?;
        validate(file)
    }

    /// Reads, parses and validates the pool file at `path`.
    pub fn load(path: &Path) -> Result<PoolConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        PoolConfig::from_toml_str(&text)
    }

    /// The default pool bundled in the binary (`shared/config/pool.toml`).
    pub fn bundled() -> Result<PoolConfig, ConfigError> {
        PoolConfig::from_toml_str(BUNDLED_POOL)
    }

    /// The bundled pool file's text, e.g. to write out as a starting point.
    pub fn bundled_toml() -> &'static str {
        BUNDLED_POOL
    }

    /// Models of `tier`, in preference order (first = preferred); never empty.
    pub fn tier_models(&self, tier: Tier) -> &[ModelSpec] {
        &self.tiers[tier.index()]
    }

    /// All models of the pool with their tier, cheapest tier first, in preference order.
    pub fn models(&self) -> impl Iterator<Item = (Tier, &ModelSpec)> {
        Tier::ALL
            .into_iter()
            .flat_map(move |t| self.tier_models(t).iter().map(move |m| (t, m)))
    }

    /// The model with id `id` and its tier, if it is in the pool.
    pub fn model(&self, id: &str) -> Option<(Tier, &ModelSpec)> {
        self.models().find(|(_, m)| m.id == id)
    }

    /// The baseline model savings are measured against (one of the pool's models).
    pub fn baseline(&self) -> &ModelSpec {
        &self.baseline
    }

    /// The tier the baseline model belongs to.
    pub fn baseline_tier(&self) -> Tier {
        self.baseline_tier
    }

    /// The provider named `name`, if defined.
    pub fn provider(&self, name: &str) -> Option<&ProviderSpec> {
        self.providers.get(name)
    }

    /// All providers, by name.
    /// Points a provider's `api_key_ref` elsewhere (a deployment's own secret), without
    /// editing the pool file.
    pub fn set_api_key_ref(&mut self, provider: &str, key_ref: &str) -> Result<(), ConfigError> {
        match self.providers.get_mut(provider) {
            Some(p) if !key_ref.trim().is_empty() => {
                p.api_key_ref = key_ref.trim().to_string();
                Ok(())
            }
            Some(_) => Err(invalid(
                format!("providers.{provider}.api_key_ref"),
                "must not be empty",
            )),
            None => Err(invalid(
                format!("providers.{provider}"),
                "no such provider in the pool",
            )),
        }
    }

    pub fn providers(&self) -> impl Iterator<Item = (&str, &ProviderSpec)> {
        self.providers.iter().map(|(n, p)| (n.as_str(), p))
    }

    /// Version of the price list (e.g. `"2026-11-01"`), stamped on decisions and records.
    pub fn pricing_version(&self) -> &str {
        &self.pricing_version
    }

    /// Minimum classifier confidence for the predicted tier to be trusted, in [0, 1].
    pub fn confidence_threshold(&self) -> f64 {
        self.confidence_threshold
    }

    /// Fraction of queries also answered by the baseline model, in [0, 1].
    pub fn shadow_rate(&self) -> f64 {
        self.shadow_rate
    }

    /// Default cap on the estimated cost of one request, in USD (> 0), if any.
    pub fn max_request_cost_usd(&self) -> Option<f64> {
        self.max_request_cost_usd
    }

    /// Output length, in tokens (> 0), assumed for cost estimates before the answer is known.
    pub fn expected_output_tokens(&self) -> u32 {
        self.expected_output_tokens
    }

    /// The tier of each task kind the pool sets (`[task_kinds]`); kinds it does not name keep
    /// the classifier's default tier. The router checks every name against its classifier.
    pub fn task_kinds(&self) -> &BTreeMap<String, Tier> {
        &self.task_kinds
    }
}

/// Checks every value of `file` and builds the pool; the first problem found is returned.
fn validate(file: PoolFile) -> Result<PoolConfig, ConfigError> {
    check_settings(&file)?;
    check_providers(&file.providers)?;
    // The rules are compiled by the rules module when a router is built; checking them here
    // too makes a bad rule fail at load (and in `tierwise validate-pool`), not later.
    crate::routing::rules::Rules::from_table(&file.rules)
        .map_err(|e| invalid("rules", e.to_string()))?;
    let tiers = tiers_of(&file)?;
    let (baseline_tier, baseline) = baseline_of(&tiers, &file.baseline_model)?;
    Ok(PoolConfig {
        pricing_version: file.pricing_version,
        confidence_threshold: file.confidence_threshold,
        shadow_rate: file.shadow_rate,
        max_request_cost_usd: file.max_request_cost_usd,
        expected_output_tokens: file.expected_output_tokens,
        tiers,
        providers: file.providers,
        baseline_tier,
        baseline,
        task_kinds: file.task_kinds,
        rules: file.rules,
    })
}

/// The scalar settings and the task-kind names.
fn check_settings(file: &PoolFile) -> Result<(), ConfigError> {
    if file.pricing_version.trim().is_empty() {
        return Err(invalid("pricing_version", "must not be empty"));
    }
    check_unit_interval("confidence_threshold", file.confidence_threshold)?;
    check_unit_interval("shadow_rate", file.shadow_rate)?;
    if let Some(cap) = file.max_request_cost_usd
        && !(cap.is_finite() && cap > 0.0)
    {
        return Err(invalid(
            "max_request_cost_usd",
            format!("must be a finite number > 0 when set, got {cap}"),
        ));
    }
    if file.expected_output_tokens == 0 {
        return Err(invalid("expected_output_tokens", "must be > 0"));
    }
    for name in file.task_kinds.keys() {
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(invalid(
                format!("task_kinds.{name}"),
                "a task kind is a name of lowercase letters, digits and _",
            ));
        }
    }
    Ok(())
}

fn check_providers(providers: &BTreeMap<String, ProviderSpec>) -> Result<(), ConfigError> {
    for (name, p) in providers {
        let field = format!("providers.{name}");
        if !(p.base_url.starts_with("https://") || p.base_url.starts_with("http://")) {
            return Err(invalid(
                format!("{field}.base_url"),
                format!("must start with http:// or https://, got {:?}", p.base_url),
            ));
        }
        if p.auth != ProviderAuth::None || !p.api_key_ref.is_empty() {
            check_key_ref(&format!("{field}.api_key_ref"), &p.api_key_ref)?;
        }
        for (name, value) in &p.headers {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
            if !token || value.chars().any(char::is_control) {
                return Err(invalid(
                    format!("{field}.headers.{name}"),
                    "a header name of letters, digits, - and _, and a value without control characters",
                ));
            }
            let lower = name.to_ascii_lowercase();
            if [
                "authorization",
                "api-key",
                "content-type",
                "content-length",
                "host",
            ]
            .contains(&lower.as_str())
            {
                return Err(invalid(
                    format!("{field}.headers.{name}"),
                    "is set by tierwise (keys go behind api_key_ref and auth)",
                ));
            }
        }
    }
    Ok(())
}

/// The three tiers, each defined once with at least one model, model ids unique in the pool.
fn tiers_of(file: &PoolFile) -> Result<[Vec<ModelSpec>; 3], ConfigError> {
    let mut tiers: [Option<Vec<ModelSpec>>; 3] = [None, None, None];
    let mut first_at: [usize; 3] = [0; 3];
    let mut ids: HashMap<&str, String> = HashMap::new();
    for (i, tier) in file.tiers.iter().enumerate() {
        let slot = tier.name.index();
        if tiers[slot].is_some() {
            return Err(invalid(
                format!("tiers[{i}].name"),
                format!(
                    "{} is defined twice (first at tiers[{}])",
                    tier.name, first_at[slot]
                ),
            ));
        }
        if tier.models.is_empty() {
            return Err(invalid(
                format!("tiers[{i}].models"),
                format!("{} has no models; at least one is required", tier.name),
            ));
        }
        for (j, m) in tier.models.iter().enumerate() {
            let field = format!("tiers[{i}].models[{j}]");
            check_model(&field, m, &file.providers)?;
            if let Some(first) = ids.insert(&m.id, field.clone()) {
                return Err(invalid(
                    format!("{field}.id"),
                    format!("duplicate model id {:?} (first at {first})", m.id),
                ));
            }
        }
        tiers[slot] = Some(tier.models.clone());
        first_at[slot] = i;
    }
    let [Some(t1), Some(t2), Some(t3)] = tiers else {
        let missing: Vec<&str> = Tier::ALL
            .into_iter()
            .filter(|t| tiers[t.index()].is_none())
            .map(Tier::as_str)
            .collect();
        return Err(invalid(
            "tiers",
            format!(
                "missing {}: {} must each be defined once",
                missing.join(", "),
                valid_tier_names()
            ),
        ));
    };
    Ok([t1, t2, t3])
}

/// The baseline model's tier and spec; it must be a model of the pool.
fn baseline_of(
    tiers: &[Vec<ModelSpec>; 3],
    baseline_model: &str,
) -> Result<(Tier, ModelSpec), ConfigError> {
    Tier::ALL
        .into_iter()
        .find_map(|t| {
            tiers[t.index()]
                .iter()
                .find(|m| m.id == baseline_model)
                .map(|m| (t, m.clone()))
        })
        .ok_or_else(|| {
            let all: Vec<&str> = tiers.iter().flatten().map(|m| m.id.as_str()).collect();
            invalid(
                "baseline_model",
                format!(
                    "{baseline_model:?} is not a model of the pool (models: {})",
                    all.join(", ")
                ),
            )
        })
}

fn check_unit_interval(field: &str, v: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be a number in [0, 1], got {v}"),
        ))
    }
}

fn check_price(field: String, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be a finite number >= 0, got {v}"),
        ))
    }
}

/// `api_key_ref` must name a secret, not be one: non-empty, no whitespace, and not shaped like
/// a well-known API key.
fn check_key_ref(field: &str, key_ref: &str) -> Result<(), ConfigError> {
    if key_ref.is_empty() {
        return Err(invalid(
            field,
            "must not be empty: give the name of the secret / parameter / environment variable holding the key",
        ));
    }
    if key_ref.chars().any(char::is_whitespace) {
        return Err(invalid(
            field,
            format!(
                "must be a secret / parameter / variable name, without whitespace, got {key_ref:?}"
            ),
        ));
    }
    if key_ref.starts_with("sk-") || key_ref.starts_with("AIza") {
        return Err(invalid(
            field,
            "looks like an API key: put the name of the secret / parameter / environment variable holding the key here, never the key itself",
        ));
    }
    Ok(())
}

fn check_model(
    field: &str,
    m: &ModelSpec,
    providers: &BTreeMap<String, ProviderSpec>,
) -> Result<(), ConfigError> {
    if m.id.trim().is_empty() {
        return Err(invalid(format!("{field}.id"), "must not be empty"));
    }
    check_price(format!("{field}.input_usd_per_m"), m.input_usd_per_m)?;
    check_price(format!("{field}.output_usd_per_m"), m.output_usd_per_m)?;
    if let Some(p) = m.cached_input_usd_per_m {
        check_price(format!("{field}.cached_input_usd_per_m"), p)?;
    }
    if m.context_window == 0 {
        return Err(invalid(format!("{field}.context_window"), "must be > 0"));
    }
    if m.max_output_tokens == 0 {
        return Err(invalid(format!("{field}.max_output_tokens"), "must be > 0"));
    }
    if m.max_output_tokens > m.context_window {
        return Err(invalid(
            format!("{field}.max_output_tokens"),
            format!(
                "must not exceed context_window ({}), got {}",
                m.context_window, m.max_output_tokens
            ),
        ));
    }
    if m.upstream_model
        .as_deref()
        .is_some_and(|u| u.trim().is_empty())
    {
        return Err(invalid(
            format!("{field}.upstream_model"),
            "must not be empty when set (leave it out to send the id)",
        ));
    }
    if !providers.contains_key(&m.provider) {
        let defined: Vec<&str> = providers.keys().map(String::as_str).collect();
        return Err(invalid(
            format!("{field}.provider"),
            format!(
                "unknown provider {:?}: not defined under [providers] (defined: {})",
                m.provider,
                if defined.is_empty() {
                    "none".to_owned()
                } else {
                    defined.join(", ")
                }
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
        let text = format!(
            "{POOL}\n[[rules.rule]]\nname = \"greeting\"\nmax_words = 3\ntier = \"tier1\"\n"
        );
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
}
