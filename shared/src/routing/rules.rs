//! Cheap, named routing rules, run before the classifier.
//!
//! A rule matches on the query's surface (word and token counts, keywords, code, math) and
//! either *decides* a tier on its own (the classifier is then skipped: `decided_by =
//! "rule:<name>"`) or *bounds* it (`min_tier` / `max_tier`). Rules come from the pool file's
//! `[[rules.rule]]` tables; which ones ship enabled is decided by measurement
//! (`tierwise eval --no-rules` vs with rules; see models/README.md).

use serde::Deserialize;

use crate::routing::pool::Tier;

/// Errors in the rules configuration.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("invalid [rules] table: {0}")]
    Parse(String),
    #[error("rules.rule[{index}] ({name}): {message}")]
    Invalid {
        index: usize,
        name: String,
        message: String,
    },
}

/// The `[rules]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    #[serde(default)]
    pub rule: Vec<RuleSpec>,
}

/// One rule: conditions (all that are set must hold) and one action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// The query has at most this many words.
    pub max_words: Option<usize>,
    /// The query has at least this many tokens.
    pub min_tokens: Option<usize>,
    /// The query contains one of these (case-insensitive, whole words).
    #[serde(default)]
    pub keywords_any: Vec<String>,
    /// The query starts with one of these (case-insensitive).
    #[serde(default)]
    pub starts_with_any: Vec<String>,
    /// The query holds code (a fence or code-shaped lines).
    pub code: Option<bool>,
    /// Action: decide this tier.
    pub tier: Option<Tier>,
    /// Action: at least this tier.
    pub min_tier: Option<Tier>,
    /// Action: at most this tier.
    pub max_tier: Option<Tier>,
}

fn enabled_default() -> bool {
    true
}

/// What the rules made of a query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleOutcome {
    /// A rule decided the tier: (rule name, tier).
    pub decided: Option<(String, Tier)>,
    /// Bounds from rules that matched, with the names of the rules that set them.
    pub min_tier: Option<(String, Tier)>,
    pub max_tier: Option<(String, Tier)>,
}

/// The compiled rule set.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<RuleSpec>,
}

/// The query facts rules look at, computed once.
pub struct QueryFacts<'a> {
    pub text: &'a str,
    pub tokens: usize,
}

impl Rules {
    /// Parses and validates the `[rules]` table of a pool file.
    pub fn from_table(table: &toml::Table) -> Result<Self, RulesError> {
        let cfg: RulesConfig = table
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| RulesError::Parse(e.to_string()))?;
        Self::new(cfg)
    }

    /// Validates a rules configuration.
    pub fn new(cfg: RulesConfig) -> Result<Self, RulesError> {
        for (index, r) in cfg.rule.iter().enumerate() {
            let bad = |message: &str| RulesError::Invalid {
                index,
                name: r.name.clone(),
                message: message.to_string(),
            };
            if r.name.trim().is_empty()
                || !r
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(bad("name must be non-empty [A-Za-z0-9_-]"));
            }
            if cfg.rule[..index].iter().any(|o| o.name == r.name) {
                return Err(bad("duplicate rule name"));
            }
            let actions = [r.tier.is_some(), r.min_tier.is_some(), r.max_tier.is_some()];
            if actions.iter().filter(|a| **a).count() != 1 {
                return Err(bad("needs exactly one action: tier, min_tier or max_tier"));
            }
            let conditions = r.max_words.is_some()
                || r.min_tokens.is_some()
                || !r.keywords_any.is_empty()
                || !r.starts_with_any.is_empty()
                || r.code.is_some();
            if !conditions {
                return Err(bad("needs at least one condition"));
            }
            if r.keywords_any
                .iter()
                .chain(&r.starts_with_any)
                .any(|k| k.trim().is_empty())
            {
                return Err(bad("empty keyword"));
            }
        }
        Ok(Self { rules: cfg.rule })
    }

    /// The same rules with all of them switched off (to measure what they add).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Names of the enabled rules.
    pub fn enabled(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .filter(|r| r.enabled)
            .map(|r| r.name.as_str())
    }

    /// Applies the enabled rules in order: the first deciding rule that matches decides; bounds
    /// combine (the highest `min_tier`, the lowest `max_tier`).
    pub fn apply(&self, facts: &QueryFacts<'_>) -> RuleOutcome {
        let mut out = RuleOutcome::default();
        let lower = facts.text.to_lowercase();
        let mut words: Option<Vec<&str>> = None;
        for r in self.rules.iter().filter(|r| r.enabled) {
            let ws = words.get_or_insert_with(|| {
                lower
                    .split(|c: char| !c.is_alphanumeric() && c != '\'')
                    .filter(|w| !w.is_empty())
                    .collect()
            });
            if !matches(r, facts, &lower, ws) {
                continue;
            }
            if let Some(t) = r.tier
                && out.decided.is_none()
            {
                out.decided = Some((r.name.clone(), t));
            }
            if let Some(t) = r.min_tier
                && out.min_tier.as_ref().is_none_or(|(_, m)| t > *m)
            {
                out.min_tier = Some((r.name.clone(), t));
            }
            if let Some(t) = r.max_tier
                && out.max_tier.as_ref().is_none_or(|(_, m)| t < *m)
            {
                out.max_tier = Some((r.name.clone(), t));
            }
        }
        out
    }
}

fn matches(r: &RuleSpec, facts: &QueryFacts<'_>, lower: &str, words: &[&str]) -> bool {
    if r.max_words.is_some_and(|max| words.len() > max) {
        return false;
    }
    if r.min_tokens.is_some_and(|min| facts.tokens < min) {
        return false;
    }
    if !r.keywords_any.is_empty() && !r.keywords_any.iter().any(|k| contains_phrase(words, k)) {
        return false;
    }
    if !r.starts_with_any.is_empty()
        && !r
            .starts_with_any
            .iter()
            .any(|p| lower.trim_start().starts_with(&p.to_lowercase()))
    {
        return false;
    }
    if r.code.is_some_and(|want| has_code(facts.text) != want) {
        return false;
    }
    true
}

/// Whole-word (or whole-phrase) match of `phrase` in the word list.
fn contains_phrase(words: &[&str], phrase: &str) -> bool {
    let p: Vec<String> = phrase.split_whitespace().map(str::to_lowercase).collect();
    !p.is_empty()
        && words
            .windows(p.len())
            .any(|w| w.iter().zip(&p).all(|(a, b)| *a == b))
}

/// A code fence, or at least two code-shaped lines.
pub fn has_code(text: &str) -> bool {
    if text.contains("```") {
        return true;
    }
    text.lines()
        .filter(|l| {
            let t = l.trim();
            t.starts_with("def ")
                || t.starts_with("#include")
                || t.starts_with("function ")
                || t.starts_with("public static")
                || (t.ends_with(';') && t.contains('('))
                || (t.ends_with('{') && t.contains('('))
        })
        .count()
        >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(toml_text: &str) -> Rules {
        let table: toml::Table = toml::from_str(toml_text).unwrap();
        Rules::from_table(&table).unwrap()
    }

    const SET: &str = r#"
        [[rule]]
        name = "greeting"
        max_words = 4
        keywords_any = ["hi", "hello", "thank you"]
        tier = "tier1"
        [[rule]]
        name = "code"
        code = true
        min_tier = "tier2"
        [[rule]]
        name = "huge"
        min_tokens = 1000
        min_tier = "tier3"
        [[rule]]
        name = "off"
        enabled = false
        max_words = 100
        tier = "tier3"
    "#;

    #[test]
    fn deciding_rule_and_bounds() {
        let r = rules(SET);
        let out = r.apply(&QueryFacts {
            text: "Hello there!",
            tokens: 5,
        });
        assert_eq!(out.decided, Some(("greeting".into(), Tier::Tier1)));
        let out = r.apply(&QueryFacts {
            text: "hello, can you explain quantum field theory",
            tokens: 12,
        });
        assert_eq!(out.decided, None, "too many words");
        let code = "Fix this:\n```\nfn main() {}\n```";
        let out = r.apply(&QueryFacts {
            text: code,
            tokens: 2000,
        });
        assert_eq!(
            out.min_tier,
            Some(("huge".into(), Tier::Tier3)),
            "highest bound wins"
        );
        assert_eq!(
            r.enabled().collect::<Vec<_>>(),
            ["greeting", "code", "huge"]
        );
    }

    #[test]
    fn keywords_match_whole_words_only() {
        let r = rules(SET);
        let out = r.apply(&QueryFacts {
            text: "this one",
            tokens: 3,
        });
        assert_eq!(out.decided, None, "'hi' inside 'this' is no greeting");
        let out = r.apply(&QueryFacts {
            text: "Thank you!",
            tokens: 3,
        });
        assert!(out.decided.is_some());
    }

    #[test]
    fn invalid_rules_are_named() {
        let bad = |s: &str| {
            let table: toml::Table = toml::from_str(s).unwrap();
            Rules::from_table(&table).unwrap_err().to_string()
        };
        assert!(bad("[[rule]]\nname = \"x\"\nmax_words = 3").contains("exactly one action"));
        assert!(bad("[[rule]]\nname = \"x\"\ntier = \"tier1\"").contains("at least one condition"));
        assert!(bad("[[rule]]\nname = \"x\"\nmax_words = 1\ntier = \"tier7\"").contains("tier7"));
        assert!(bad("[[rule]]\nname = \"x\"\nmax_word = 1\ntier = \"tier1\"").contains("max_word"));
        assert!(
            bad("[[rule]]\nname = \"x\"\nmax_words = 1\ntier = \"tier1\"\n[[rule]]\nname = \"x\"\nmax_words = 1\ntier = \"tier1\"")
                .contains("duplicate")
        );
    }

    #[test]
    fn code_detection() {
        assert!(has_code("```python\nprint(1)\n```"));
        assert!(has_code("int main() {\n  printf(\"x\");\n}"));
        assert!(!has_code("What is the capital of France?"));
    }
}
