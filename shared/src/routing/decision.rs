//! The routing decision: rules -> classifier -> escalation -> bounds -> a healthy model of the
//! tier -> fallbacks, with cost estimates for the chosen model and the baseline.
//!
//! [`Router`] owns the embedder, classifier, rules and pool, built once at init; a decision
//! takes `&self`, so one router serves every request of a process.

use std::collections::BTreeSet;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::ledger::money::Usd;
use crate::routing::classifier::{ClassifierError, TierClassifier, TierProbs};
use crate::routing::embed::{EmbedError, Embedder};
use crate::routing::features::{self, ROUTER_WINDOW};
use crate::routing::input_tokens;
use crate::routing::pool::{Capability, ConfigError, ModelSpec, PoolConfig, Tier};
use crate::routing::rules::{QueryFacts, Rules, RulesError};

/// Tokens a chat message costs beyond its text (role, separators), as providers count them.
const TOKENS_PER_MESSAGE: usize = 4;
/// Longest query text accepted (bytes). Longer requests are refused with 413.
pub const MAX_QUERY_BYTES: usize = 1024 * 1024;

/// The tenant of requests that name none.
pub const DEFAULT_TENANT: &str = "default";
/// Longest tenant name accepted.
pub const MAX_TENANT_LEN: usize = 64;

/// The request's tenant, validated, or the default one.
fn tenant_of(req: &RouteRequest) -> Result<String, RouteError> {
    match &req.tenant {
        Some(t) => {
            validate_tenant(t)?;
            Ok(t.clone())
        }
        None => Ok(DEFAULT_TENANT.to_string()),
    }
}

/// A tenant names a customer or team in records and reports: 1-64 characters of ASCII letters,
/// digits and `. _ - : @` (no `#`, which separates the parts of table keys).
pub fn validate_tenant(tenant: &str) -> Result<(), RouteError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= MAX_TENANT_LEN
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RouteError::InvalidRequest(format!(
            "`tenant` must be 1-{MAX_TENANT_LEN} characters of letters, digits and . _ - : @"
        )))
    }
}

/// Errors building a router (at init).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Classifier(#[from] ClassifierError),
}

/// Why a request could not be routed. Every variant but `Internal` is the caller's to fix;
/// `crate::serve::errors` says how each is answered over HTTP.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the query is {0} bytes; the limit is {MAX_QUERY_BYTES}")]
    TooLarge(usize),
    #[error("the query needs about {tokens} tokens, more than any model of the pool accepts")]
    ContextTooLong { tokens: usize },
    #[error("no healthy model in tiers {min}..{max}")]
    NoHealthyModel { min: Tier, max: Tier },
    #[error("no model of the pool in tiers {min}..{max} supports {needs}")]
    Unsupported { needs: String, min: Tier, max: Tier },
    #[error("internal routing error")]
    Internal(#[source] EmbedError),
}

impl RouteError {
    /// Whether retrying the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RouteError::NoHealthyModel { .. } | RouteError::Internal(_)
        )
    }
}

/// A chat message (OpenAI shape): `content` is a string or a list of parts.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: MessageContent,
}

/// Message content: text, or OpenAI content parts (`text` parts are routed on; image parts
/// count toward the input tokens, [`input_tokens::image_part_tokens`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<serde_json::Value>),
    Null(()),
}

impl Default for MessageContent {
    fn default() -> Self {
        MessageContent::Null(())
    }
}

impl MessageContent {
    /// The text of the content (text parts joined by newlines).
    pub fn text(&self) -> String {
        match self {
            MessageContent::Text(s) => s.clone(),
            MessageContent::Parts(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
                .collect::<Vec<_>>()
                .join("\n"),
            MessageContent::Null(()) => String::new(),
        }
    }

    /// The texts of the content, to cut in place (the text, or each text part's).
    pub fn texts_mut(&mut self) -> Vec<&mut String> {
        match self {
            MessageContent::Text(s) => vec![s],
            MessageContent::Parts(parts) => parts
                .iter_mut()
                .filter_map(|p| match p.get_mut("text") {
                    Some(serde_json::Value::String(s)) => Some(s),
                    _ => None,
                })
                .collect(),
            MessageContent::Null(()) => Vec::new(),
        }
    }

    /// Drops the parts that are not text (images, audio); whether any was dropped.
    pub fn drop_non_text(&mut self) -> bool {
        match self {
            MessageContent::Parts(parts) => {
                let before = parts.len();
                parts.retain(|p| p.get("text").is_some_and(serde_json::Value::is_string));
                parts.len() != before
            }
            _ => false,
        }
    }
}

/// `POST /v1/route` body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    pub query: Option<String>,
    pub messages: Option<Vec<Message>>,
    pub require_confidence: Option<f64>,
    pub min_tier: Option<Tier>,
    pub max_tier: Option<Tier>,
    pub tenant: Option<String>,
    /// What the answering model must support (`tools`, `vision`, `json_schema`, `json_mode`,
    /// `streaming`): only models whose pool entry declares it (or declares nothing) are picked.
    /// The chat flow fills it from the request's body.
    #[serde(default)]
    pub needs: BTreeSet<Capability>,
    /// Tool (function) definitions sent with the request, counted in its input tokens
    /// ([`input_tokens::tools_tokens`]). The chat flow fills it from the body's `tools` and
    /// `functions`; not a `/v1/route` field.
    #[serde(skip)]
    pub tools: Vec<serde_json::Value>,
}

impl RouteRequest {
    /// A request for one query text.
    pub fn query(text: impl Into<String>) -> Self {
        Self {
            query: Some(text.into()),
            ..Self::default()
        }
    }
}

/// The routing decision (the `/v1/route` response).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    pub query_id: String,
    pub model: String,
    pub tier: Tier,
    pub predicted_tier: Tier,
    pub confidence: f64,
    pub escalated: bool,
    /// What decided the tier: `rule:<name>`, `classifier` or `passthrough`.
    pub decided_by: DecidedBy,
    pub fallbacks: Vec<String>,
    pub estimated_cost_usd: Usd,
    pub baseline_cost_usd: Usd,
    pub router_ms: f64,
    /// The task kind the classifier recognised (absent when a rule decided before it ran,
    /// or for a pass-through request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_kind: Option<String>,
    /// Input tokens estimated with the router's tokenizer (the provider's count may differ).
    pub input_tokens: u64,
    /// Output tokens assumed for the estimates (the pool's `expected_output_tokens`).
    pub output_tokens: u64,
    pub tenant: String,
    pub pricing_version: String,
    pub router_version: String,
}

/// What decided a query's tier. Serialised (JSON, DynamoDB, the `x-tierwise-decided-by`
/// header) as `rule:<name>`, `classifier` or `passthrough`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DecidedBy {
    /// A cheap rule decided the tier, or bounded the classifier's (`rule:<name>`).
    Rule(String),
    /// The classifier (with escalation when unsure).
    Classifier,
    /// The request named a model of the pool: no routing.
    Passthrough,
}

/// A `decided_by` text that is none of `rule:<name>`, `classifier`, `passthrough`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a decision source (rule:<name>, classifier or passthrough)")]
pub struct UnknownDecidedBy(pub String);

impl DecidedBy {
    const RULE_PREFIX: &'static str = "rule:";

    /// Decided (or bounded) by the rule `name`.
    pub fn rule(name: impl Into<String>) -> Self {
        DecidedBy::Rule(name.into())
    }

    /// Whether a rule decided.
    pub fn is_rule(&self) -> bool {
        matches!(self, DecidedBy::Rule(_))
    }
}

impl std::fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecidedBy::Rule(name) => write!(f, "{}{name}", Self::RULE_PREFIX),
            DecidedBy::Classifier => f.write_str("classifier"),
            DecidedBy::Passthrough => f.write_str("passthrough"),
        }
    }
}

impl std::str::FromStr for DecidedBy {
    type Err = UnknownDecidedBy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "classifier" => Ok(DecidedBy::Classifier),
            "passthrough" => Ok(DecidedBy::Passthrough),
            _ => match s.strip_prefix(Self::RULE_PREFIX) {
                Some(name) => Ok(DecidedBy::rule(name)),
                None => Err(UnknownDecidedBy(s.to_string())),
            },
        }
    }
}

impl Serialize for DecidedBy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DecidedBy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which models are healthy right now (circuit breakers); the policy skips the others.
pub trait HealthView: Send + Sync {
    fn is_healthy(&self, model_id: &str) -> bool;
}

/// Every model healthy (no breaker state known).
pub struct AllHealthy;

impl HealthView for AllHealthy {
    fn is_healthy(&self, _model_id: &str) -> bool {
        true
    }
}

/// The tier choice before a model is picked (also what `tierwise eval` scores).
#[derive(Debug, Clone, PartialEq)]
pub struct TierChoice {
    pub tier: Tier,
    pub predicted_tier: Tier,
    pub confidence: f64,
    pub escalated: bool,
    pub decided_by: DecidedBy,
    /// P(a tier1 model's answer would be judged worse), from outcome data ([`TierProbs::strong`]),
    /// rules included: 1 if rules exclude tier1, 0 if a rule decides tier1.
    pub strong_score: f64,
    /// The classifier's probabilities, when it ran.
    pub probs: Option<TierProbs>,
    /// The task kind the classifier recognised, when it ran and has a kind head.
    pub task_kind: Option<String>,
    /// Tokens of the whole input (for cost).
    pub input_tokens: usize,
}

/// The model a decision picked, its tier and its fallbacks.
struct Picked<'a> {
    model: &'a ModelSpec,
    tier: Tier,
    fallbacks: Vec<String>,
}

/// The router: everything a decision needs, built once.
pub struct Router {
    pool: PoolConfig,
    rules: Rules,
    embedder: Embedder,
    classifier: TierClassifier,
}

impl Router {
    /// The bundled pool, model and classifier.
    pub fn bundled() -> Result<Self, InitError> {
        Self::with_pool(PoolConfig::bundled()?)
    }

    /// The bundled model and classifier with the given pool (and the pool's rules).
    pub fn with_pool(pool: PoolConfig) -> Result<Self, InitError> {
        Self::with_pool_and_classifier(pool, None)
    }

    /// The bundled model with the given pool and a classifier artifact file (the bundled
    /// classifier when `None`). The pool's `[task_kinds]` table is applied to the classifier.
    pub fn with_pool_and_classifier(
        pool: PoolConfig,
        classifier: Option<&std::path::Path>,
    ) -> Result<Self, InitError> {
        let rules = Rules::from_table(&pool.rules)?;
        let (embedder, classifier) = std::thread::scope(|s| {
            let c = s.spawn(|| TierClassifier::load_or_bundled(classifier));
            let e = Embedder::bundled();
            (e, c.join())
        });
        let classifier = classifier
            .map_err(|_| ClassifierError::Parse("classifier loader panicked".into()))??
            .with_kind_tiers(pool.task_kinds())?;
        Ok(Self {
            pool,
            rules,
            embedder: embedder?,
            classifier,
        })
    }

    /// Assembles a router from parts (the pool's `[task_kinds]` applied to the classifier).
    pub fn new(
        pool: PoolConfig,
        rules: Rules,
        embedder: Embedder,
        classifier: TierClassifier,
    ) -> Result<Self, InitError> {
        let classifier = classifier.with_kind_tiers(pool.task_kinds())?;
        Ok(Self {
            pool,
            rules,
            embedder,
            classifier,
        })
    }

    /// The classifier (kinds and their tiers, provenance).
    pub fn classifier(&self) -> &TierClassifier {
        &self.classifier
    }

    /// The pool.
    pub fn pool(&self) -> &PoolConfig {
        &self.pool
    }

    /// The embedder (shared with the evaluator's similarity checks).
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// This router with other rules (e.g. [`Rules::disabled`] to measure what rules add).
    pub fn with_rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    /// Routes a request to a model.
    pub fn route(
        &self,
        req: &RouteRequest,
        health: &dyn HealthView,
    ) -> Result<Decision, RouteError> {
        let started = Instant::now();
        let input = self.request_text(req)?;
        let threshold = self.threshold(req)?;
        let tenant = tenant_of(req)?;
        let mut choice = self.choose_tier(&input.routed, threshold)?;
        if let Some(all) = input.messages_tokens {
            choice.input_tokens = all.max(choice.input_tokens);
        }
        choice.input_tokens += input.tools_tokens;
        let lo = req.min_tier.unwrap_or(Tier::Tier1);
        let hi = req.max_tier.unwrap_or(Tier::Tier3);
        let picked = self.pick_model(&choice, lo, hi, &req.needs, health)?;
        Ok(Decision {
            predicted_tier: choice.predicted_tier,
            confidence: round6(choice.confidence),
            escalated: choice.escalated,
            decided_by: choice.decided_by,
            task_kind: choice.task_kind,
            ..self.priced(
                started,
                picked.model,
                picked.tier,
                choice.input_tokens as u64,
                tenant,
                picked.fallbacks,
            )
        })
    }

    /// The request's confidence threshold (the pool's when it names none), after checking
    /// the request's own bounds.
    fn threshold(&self, req: &RouteRequest) -> Result<f64, RouteError> {
        let threshold = match req.require_confidence {
            Some(t) if !(0.0..=1.0).contains(&t) || t.is_nan() => {
                return Err(RouteError::InvalidRequest(format!(
                    "require_confidence must be between 0 and 1, got {t}"
                )));
            }
            Some(t) => t,
            None => self.pool.confidence_threshold(),
        };
        if let (Some(lo), Some(hi)) = (req.min_tier, req.max_tier)
            && lo > hi
        {
            return Err(RouteError::InvalidRequest(format!(
                "min_tier {lo} is above max_tier {hi}"
            )));
        }
        Ok(threshold)
    }

    /// The model for a tier choice within `lo..=hi`: the chosen tier bounded, then the
    /// context windows (the tiers above, else the ones below), then health; its fallbacks.
    fn pick_model(
        &self,
        choice: &TierChoice,
        lo: Tier,
        hi: Tier,
        needs: &BTreeSet<Capability>,
        health: &dyn HealthView,
    ) -> Result<Picked<'_>, RouteError> {
        let start = choice.tier.clamp(lo, hi);
        let output_tokens = u64::from(self.pool.expected_output_tokens());
        let input_tokens = choice.input_tokens as u64;
        let fits = |m: &ModelSpec| {
            u64::from(m.context_window)
                >= input_tokens + output_tokens.min(u64::from(m.max_output_tokens))
        };
        // Tiers to try: the chosen one and up to `hi`, then (when nothing there fits the
        // context) down to `lo` — a cheaper model that can read the query beats a refusal.
        let order: Vec<Tier> = Tier::ALL
            .iter()
            .copied()
            .filter(|t| *t >= start && *t <= hi)
            .chain(
                Tier::ALL
                    .iter()
                    .rev()
                    .copied()
                    .filter(|t| *t < start && *t >= lo),
            )
            .collect();
        let candidates = || order.iter().flat_map(|t| self.pool.tier_models(*t));
        if !candidates().any(|m| m.supports(needs)) {
            return Err(unsupported(needs, lo, hi));
        }
        if !candidates().any(|m| fits(m) && m.supports(needs)) {
            return Err(RouteError::ContextTooLong {
                tokens: choice.input_tokens,
            });
        }
        let usable = |m: &ModelSpec| fits(m) && m.supports(needs) && health.is_healthy(&m.id);
        let (pos, model) = order
            .iter()
            .enumerate()
            .find_map(|(i, t)| {
                self.pool
                    .tier_models(*t)
                    .iter()
                    .find(|m| usable(m))
                    .map(|m| (i, m))
            })
            .ok_or(RouteError::NoHealthyModel { min: lo, max: hi })?;
        let tier = order[pos];
        // Fallbacks never go down in quality: the rest of the tier, then the tiers above.
        let fallbacks = order[pos..]
            .iter()
            .filter(|t| **t >= tier)
            .flat_map(|t| self.pool.tier_models(*t))
            .filter(|m| m.id != model.id && usable(m))
            .map(|m| m.id.clone())
            .collect();
        Ok(Picked {
            model,
            tier,
            fallbacks,
        })
    }

    /// The decision for a request that names a model of the pool itself: no routing, that
    /// model (decided by `passthrough`, confidence 1), its tier, no fallbacks; tokens counted
    /// for the cost estimate as for a routed request.
    pub fn passthrough(&self, req: &RouteRequest, model_id: &str) -> Result<Decision, RouteError> {
        let started = Instant::now();
        let (tier, model) = self.pool.model(model_id).ok_or_else(|| {
            RouteError::InvalidRequest(format!("`{model_id}` is not a model of the pool"))
        })?;
        if !model.supports(&req.needs) {
            return Err(unsupported(&req.needs, tier, tier));
        }
        let input = self.request_text(req)?;
        let tenant = tenant_of(req)?;
        let text_tokens = match input.messages_tokens {
            Some(n) => n,
            None => self
                .embedder
                .tokenizer()
                .count(&input.routed)
                .map_err(RouteError::Internal)?,
        };
        let input_tokens = (text_tokens + input.tools_tokens) as u64;
        Ok(self.priced(started, model, tier, input_tokens, tenant, Vec::new()))
    }

    /// The decision for `model` at `tier`, priced for `input_tokens` and the pool's expected
    /// output (capped by the model's), as taken without routing: predicted tier = `tier`,
    /// confidence 1, decided by `passthrough`. [`Router::route`] sets the routing fields.
    fn priced(
        &self,
        started: Instant,
        model: &ModelSpec,
        tier: Tier,
        input_tokens: u64,
        tenant: String,
        fallbacks: Vec<String>,
    ) -> Decision {
        let out =
            u64::from(self.pool.expected_output_tokens()).min(u64::from(model.max_output_tokens));
        let baseline = self.pool.baseline();
        Decision {
            query_id: uuid::Uuid::now_v7().to_string(),
            model: model.id.clone(),
            tier,
            predicted_tier: tier,
            confidence: 1.0,
            escalated: false,
            decided_by: DecidedBy::Passthrough,
            fallbacks,
            estimated_cost_usd: Usd::from_f64(model.cost_usd(input_tokens, out)),
            baseline_cost_usd: Usd::from_f64(baseline.cost_usd(input_tokens, out)),
            router_ms: round3(started.elapsed().as_secs_f64() * 1e3),
            task_kind: None,
            input_tokens,
            output_tokens: out,
            tenant,
            pricing_version: self.pool.pricing_version().to_string(),
            router_version: crate::ROUTER_VERSION.to_string(),
        }
    }

    /// Rules, then the classifier and escalation: the tier for a query text.
    pub fn choose_tier(&self, text: &str, threshold: f64) -> Result<TierChoice, RouteError> {
        // One tokenisation serves the rules, the cost estimate and the embedding.
        let tokenized = self
            .embedder
            .tokenizer()
            .encode_window(text, ROUTER_WINDOW)
            .map_err(RouteError::Internal)?;
        let tokens = tokenized.total_tokens;
        let rules = self.rules.apply(&QueryFacts { text, tokens });
        if let Some((name, tier)) = rules.decided {
            return Ok(TierChoice {
                tier,
                predicted_tier: tier,
                confidence: 1.0,
                escalated: false,
                decided_by: DecidedBy::rule(name),
                strong_score: if tier == Tier::Tier1 { 0.0 } else { 1.0 },
                probs: None,
                task_kind: None,
                input_tokens: tokens,
            });
        }
        let features = features::from_tokens(&self.embedder, text, &tokenized)
            .map_err(RouteError::Internal)?;
        let probs = self.classifier.predict(&features);
        let (predicted, confidence) = probs.predicted();
        let (mut tier, escalated) = if confidence < threshold && predicted < Tier::Tier3 {
            (predicted.up(), true)
        } else {
            (predicted, false)
        };
        let mut decided_by = DecidedBy::Classifier;
        let mut strong_score = probs.strong;
        if let Some((name, min)) = rules.min_tier {
            if min > tier {
                tier = min;
                decided_by = DecidedBy::rule(name);
            }
            if min > Tier::Tier1 {
                strong_score = 1.0;
            }
        }
        if let Some((name, max)) = rules.max_tier {
            if max < tier {
                tier = max;
                decided_by = DecidedBy::rule(name);
            }
            if max == Tier::Tier1 {
                strong_score = 0.0;
            }
        }
        let task_kind = probs
            .kind
            .and_then(|(i, _)| self.classifier.kind_names().get(i).cloned());
        Ok(TierChoice {
            tier,
            predicted_tier: predicted,
            confidence,
            escalated,
            decided_by,
            strong_score,
            probs: Some(probs),
            task_kind,
            input_tokens: tokens,
        })
    }

    /// The text to route on and what the rest of the input counts: for a conversation the
    /// tokens of all its messages, images included (a single query is counted by the routing
    /// pass itself), and the tokens of the tool definitions.
    fn request_text(&self, req: &RouteRequest) -> Result<RequestInput, RouteError> {
        let count = |s: &str| {
            self.embedder
                .tokenizer()
                .count(s)
                .map_err(RouteError::Internal)
        };
        let (routed, messages_tokens) = match (&req.query, &req.messages) {
            (Some(_), Some(_)) => {
                return Err(RouteError::InvalidRequest(
                    "give `query` or `messages`, not both".into(),
                ));
            }
            (None, None) => {
                return Err(RouteError::InvalidRequest(
                    "`query` or `messages` is required".into(),
                ));
            }
            (Some(q), None) => {
                if q.len() > MAX_QUERY_BYTES {
                    return Err(RouteError::TooLarge(q.len()));
                }
                if q.trim().is_empty() {
                    return Err(RouteError::InvalidRequest("`query` is empty".into()));
                }
                (q.clone(), None)
            }
            (None, Some(msgs)) => {
                let texts: Vec<String> = msgs.iter().map(|m| m.content.text()).collect();
                let bytes: usize = texts.iter().map(String::len).sum();
                if bytes > MAX_QUERY_BYTES {
                    return Err(RouteError::TooLarge(bytes));
                }
                let routed = routed_text_of(msgs.iter().map(|m| m.role.as_str()).zip(&texts))?;
                let mut tokens = 0;
                for (m, t) in msgs.iter().zip(&texts) {
                    tokens += count(t)? + TOKENS_PER_MESSAGE + images_tokens(&m.content);
                }
                (routed, Some(tokens))
            }
        };
        Ok(RequestInput {
            routed,
            messages_tokens,
            tools_tokens: input_tokens::tools_tokens(&req.tools, count)?,
        })
    }
}

/// A request's input as the router sees it ([`Router::route`], [`Router::passthrough`]).
struct RequestInput {
    /// The text to route on.
    routed: String,
    /// For a conversation, the tokens of every message (text, per-message overhead, images).
    messages_tokens: Option<usize>,
    /// The tokens of the tool definitions (0 without).
    tools_tokens: usize,
}

/// The tokens of a message's image parts ([`input_tokens::image_part_tokens`]).
fn images_tokens(content: &MessageContent) -> usize {
    match content {
        MessageContent::Parts(parts) => parts
            .iter()
            .filter_map(input_tokens::image_part_tokens)
            .sum(),
        _ => 0,
    }
}

/// A last user turn shorter than this (in words) is routed with the user turn before it: a
/// follow-up ("now the second one") is the same kind of task as what it follows.
const FOLLOW_UP_WORDS: usize = 8;

/// The text a conversation is routed on: its system prompt (an application's instruction
/// usually says what kind of task every request is), then the last non-empty user turn
/// (with the user turn before it when the last one is a short follow-up). Roles and texts
/// in conversation order.
pub fn routed_text_of<'a>(
    turns: impl DoubleEndedIterator<Item = (&'a str, &'a String)> + Clone,
) -> Result<String, RouteError> {
    let system: Vec<&str> = turns
        .clone()
        .filter(|(role, t)| (*role == "system" || *role == "developer") && !t.trim().is_empty())
        .map(|(_, t)| t.trim())
        .collect();
    let mut users = turns
        .rev()
        .filter(|(role, t)| *role == "user" && !t.trim().is_empty())
        .map(|(_, t)| t.trim());
    let last = users.next().ok_or_else(|| {
        RouteError::InvalidRequest("`messages` has no non-empty user message".into())
    })?;
    let mut parts = system;
    if last.split_whitespace().count() < FOLLOW_UP_WORDS
        && let Some(before) = users.next()
    {
        parts.push(before);
    }
    parts.push(last);
    Ok(parts.join("\n\n"))
}

/// No model of tiers `lo..=hi` serves what the request `needs`.
fn unsupported(needs: &BTreeSet<Capability>, lo: Tier, hi: Tier) -> RouteError {
    let needs: Vec<&str> = needs.iter().map(|c| c.as_str()).collect();
    RouteError::Unsupported {
        needs: needs.join(", "),
        min: lo,
        max: hi,
    }
}

/// `x` rounded to 3 decimals (milliseconds, confidences on the wire).
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(list: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
        (
            list.iter().map(|(r, _)| r.to_string()).collect(),
            list.iter().map(|(_, t)| t.to_string()).collect(),
        )
    }

    fn routed(list: &[(&str, &str)]) -> Result<String, RouteError> {
        let (roles, texts) = turns(list);
        routed_text_of(roles.iter().map(String::as_str).zip(&texts))
    }

    #[test]
    fn conversations_route_on_system_prompt_and_last_user_turn() {
        let text = routed(&[
            ("system", "You are a support-ticket classifier."),
            (
                "user",
                "first ticket text, long enough to stand on its own here",
            ),
            ("assistant", "billing"),
            (
                "user",
                "My card was charged twice for the same order last night",
            ),
        ])
        .unwrap();
        assert_eq!(
            text,
            "You are a support-ticket classifier.\n\nMy card was charged twice for the same order last night"
        );
        // A short follow-up brings the user turn before it.
        let text = routed(&[
            (
                "user",
                "Translate 'the shop opens at ten' into French please",
            ),
            ("assistant", "La boutique ouvre à dix heures."),
            ("user", "now Italian"),
        ])
        .unwrap();
        assert_eq!(
            text,
            "Translate 'the shop opens at ten' into French please\n\nnow Italian"
        );
        // Empty turns are skipped; no user turn is a 400.
        assert_eq!(
            routed(&[("user", "hello"), ("user", "  ")]).unwrap(),
            "hello"
        );
        let err = routed(&[("system", "x"), ("assistant", "y")]).unwrap_err();
        assert!(matches!(err, RouteError::InvalidRequest(_)), "{err:?}");
    }

    /// A pool whose tier1 model reads 1,000 tokens (50 of them output) and whose tier2 and
    /// tier3 models read 128,000; a greeting rule sends "hello!" to tier1.
    fn small_tier1_router() -> Router {
        let models = [
            ("tier1", "deepseek/deepseek-v3", "0.14", "0.28", 1_000, 50),
            (
                "tier2",
                "openai/gpt-4o-mini",
                "0.15",
                "0.60",
                128_000,
                16_384,
            ),
            ("tier3", "openai/gpt-4o", "2.50", "10.00", 128_000, 16_384),
        ];
        let tiers: String = models
            .iter()
            .map(|(tier, id, input, output, window, max_output)| {
                format!(
                    "[[tiers]]\nname = \"{tier}\"\n[[tiers.models]]\nid = \"{id}\"\n\
                     input_usd_per_m = {input}\noutput_usd_per_m = {output}\n\
                     context_window = {window}\nmax_output_tokens = {max_output}\n\
                     provider = \"openrouter\"\n"
                )
            })
            .collect();
        let text = format!(
            "pricing_version = \"2026-11-01\"\nbaseline_model = \"openai/gpt-4o\"\n\
             confidence_threshold = 0.85\nexpected_output_tokens = 300\n{tiers}\
             [providers.openrouter]\nbase_url = \"https://openrouter.ai/api/v1\"\n\
             api_key_ref = \"TIERWISE_OPENROUTER_API_KEY\"\n\
             [[rules.rule]]\nname = \"greeting\"\nmax_words = 6\n\
             keywords_any = [\"hi\", \"hello\"]\ntier = \"tier1\"\n"
        );
        Router::with_pool(PoolConfig::from_toml_str(&text).unwrap()).unwrap()
    }

    fn conversation(content: serde_json::Value) -> RouteRequest {
        RouteRequest {
            messages: Some(vec![
                serde_json::from_value(serde_json::json!({"role": "user", "content": content}))
                    .unwrap(),
            ]),
            ..RouteRequest::default()
        }
    }

    #[test]
    fn tool_definitions_count_toward_the_context_window() {
        let router = small_tier1_router();
        let hello = conversation("hello!".into());
        let plain = router.route(&hello, &AllHealthy).unwrap();
        assert_eq!(
            (plain.tier, plain.decided_by.to_string().as_str()),
            (Tier::Tier1, "rule:greeting")
        );
        // The text fits tier1's 1,000 tokens; the tool's schema (~1,500 tokens) does not.
        let ticket = serde_json::json!({"type": "function", "function": {
            "name": "file_ticket",
            "description": "Files a support ticket. ".repeat(300),
            "parameters": {"type": "object", "properties": {
                "title": {"type": "string"}, "body": {"type": "string"}}}
        }});
        let with_tools = RouteRequest {
            tools: vec![ticket],
            ..hello.clone()
        };
        let d = router.route(&with_tools, &AllHealthy).unwrap();
        assert!(d.input_tokens > plain.input_tokens + 1_000, "{d:?}");
        assert_eq!(
            (d.tier, d.model.as_str()),
            (Tier::Tier2, "openai/gpt-4o-mini"),
            "{d:?}"
        );
        assert!(d.estimated_cost_usd > plain.estimated_cost_usd);
        // Held to tier1, it is refused rather than sent to a model that cannot read it.
        let held = RouteRequest {
            max_tier: Some(Tier::Tier1),
            ..with_tools.clone()
        };
        let err = router.route(&held, &AllHealthy).unwrap_err();
        assert!(
            matches!(err, RouteError::ContextTooLong { tokens } if tokens as u64 == d.input_tokens),
            "{err:?}"
        );
        // A pass-through request is priced on the same count; a single query too.
        let p = router
            .passthrough(&with_tools, "openai/gpt-4o-mini")
            .unwrap();
        assert_eq!(p.input_tokens, d.input_tokens);
        let query = RouteRequest {
            tools: with_tools.tools.clone(),
            ..RouteRequest::query("hello!")
        };
        let q = router.route(&query, &AllHealthy).unwrap();
        assert_eq!(q.tier, Tier::Tier2, "{q:?}");
        assert!(q.input_tokens > 1_000, "{q:?}");
    }

    #[test]
    fn image_parts_count_toward_the_input_tokens_and_the_cost() {
        let router = small_tier1_router();
        let text = serde_json::json!({"type": "text", "text": "hello! what is in this picture?"});
        let image = |detail: &str| {
            serde_json::json!({"type": "image_url",
                "image_url": {"url": "https://example.com/cat.png", "detail": detail}})
        };
        let route = |parts: Vec<serde_json::Value>| {
            router
                .route(&conversation(parts.into()), &AllHealthy)
                .unwrap()
        };
        let plain = route(vec![text.clone()]);
        let high = route(vec![text.clone(), image("high")]);
        let low = route(vec![text.clone(), image("low")]);
        assert_eq!(plain.tier, Tier::Tier1, "{plain:?}");
        for (d, extra) in [(&high, 765), (&low, 85)] {
            assert_eq!(d.model, plain.model, "the same text is routed the same way");
            assert_eq!(d.input_tokens, plain.input_tokens + extra, "{d:?}");
            assert!(d.estimated_cost_usd > plain.estimated_cost_usd, "{d:?}");
            assert!(d.baseline_cost_usd > plain.baseline_cost_usd, "{d:?}");
        }
        // Two high-detail images (1,530 tokens) no longer fit tier1's window.
        let two = route(vec![text, image("auto"), image("high")]);
        assert_eq!(two.input_tokens, plain.input_tokens + 2 * 765);
        assert_eq!(two.tier, Tier::Tier2, "{two:?}");
    }

    #[test]
    fn decision_sources_keep_their_text() {
        for (by, text) in [
            (DecidedBy::rule("greeting"), "rule:greeting"),
            (DecidedBy::Classifier, "classifier"),
            (DecidedBy::Passthrough, "passthrough"),
        ] {
            assert_eq!(by.to_string(), text);
            assert_eq!(text.parse::<DecidedBy>().unwrap(), by);
            assert_eq!(serde_json::to_value(&by).unwrap(), text);
            assert_eq!(
                serde_json::from_value::<DecidedBy>(text.into()).unwrap(),
                by
            );
        }
        assert!(DecidedBy::rule("code").is_rule());
        assert!(!DecidedBy::Classifier.is_rule());
        assert!("escalated".parse::<DecidedBy>().is_err());
        assert!(serde_json::from_value::<DecidedBy>("router".into()).is_err());
    }
}
