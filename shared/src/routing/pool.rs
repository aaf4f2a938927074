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
    /// A pool file was read but is not a valid pool ([`PoolConfig::load`]): the file, then
    /// what is wrong with it (a `Parse` or `Invalid` error).
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with its text.
        error: Box<ConfigError>,
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

    /// Reads, parses and validates the pool file at `path`; every error names the file.
    pub fn load(path: &Path) -> Result<PoolConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        PoolConfig::from_toml_str(&text).map_err(|e| ConfigError::File {
            path: path.to_path_buf(),
            error: Box::new(e),
        })
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
mod tests;
