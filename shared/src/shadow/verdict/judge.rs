//! The LLM judge: its settings, the blind request in an order fixed per query id, and the
//! reading of its answer. The evaluator sends the request through its upstream client.

use serde::{Deserialize, Serialize};

use super::{Comparison, Method, Verdict, VerdictError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSettings {
    /// The judge model, as the upstream names it.
    pub model: String,
    /// A template with `{question}`, `{answer_a}` and `{answer_b}`; [`DEFAULT_JUDGE_PROMPT`]
    /// when absent.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Token cap of the judge's answer.
    #[serde(default = "default_judge_max_tokens")]
    pub max_tokens: u32,
}

fn default_judge_max_tokens() -> u32 {
    200
}

impl JudgeSettings {
    /// A judge on `model` with the built-in prompt.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            prompt: None,
            max_tokens: default_judge_max_tokens(),
        }
    }

    /// Checks the model name, the token cap and that a custom prompt has the three placeholders.
    pub fn validate(&self) -> Result<(), VerdictError> {
        if self.model.trim().is_empty() {
            return Err(VerdictError::Settings("the judge model is empty".into()));
        }
        if self.max_tokens == 0 {
            return Err(VerdictError::Settings(
                "the judge's max_tokens must be at least 1".into(),
            ));
        }
        if let Some(p) = &self.prompt {
            for ph in ["{question}", "{answer_a}", "{answer_b}"] {
                if !p.contains(ph) {
                    return Err(VerdictError::Settings(format!(
                        "the judge prompt lacks the placeholder {ph}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The judge's system message.
pub const JUDGE_SYSTEM: &str = "You are an impartial grader of answers. \
You compare two anonymous answers to the same question and reply with JSON only.";

/// The built-in judge prompt. It names the answers "A" and "B" only: nothing says where they
/// come from.
pub const DEFAULT_JUDGE_PROMPT: &str = "Compare two answers to the same question.\n\
Decide which answer is better: correctness first, then completeness and helpfulness. \
Length and style alone do not make an answer better. If both are equally good, or equally \
wrong, it is a tie.\n\n\
Question:\n<<<\n{question}\n>>>\n\n\
Answer A:\n<<<\n{answer_a}\n>>>\n\n\
Answer B:\n<<<\n{answer_b}\n>>>\n\n\
Reply with one JSON object and nothing else: \
{\"winner\": \"A\" or \"B\" or \"tie\", \"score\": your confidence in that verdict, from 0 to 1}";

/// Seed of [`judge_order`]'s hash, so the order is independent of the shadow sampling (which
/// hashes the same query id with plain xxh3).
const JUDGE_ORDER_SEED: u64 = 0x6a75_6467_655f_6f72; // "judge_or"

/// Whether the routed answer is shown to the judge as "A": fixed per query id (a retried
/// evaluation asks the same question), about half of the ids each way.
pub fn judge_order(query_id: &str) -> bool {
    xxhash_rust::xxh3::xxh3_64_with_seed(query_id.as_bytes(), JUDGE_ORDER_SEED) & 1 == 1
}

/// Fills a judge template in one pass, so an answer that contains `{answer_b}` stays as it is.
fn render(template: &str, question: &str, a: &str, b: &str) -> String {
    let mut out = String::with_capacity(template.len() + question.len() + a.len() + b.len());
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (value, len) = if tail.starts_with("{question}") {
            (question, "{question}".len())
        } else if tail.starts_with("{answer_a}") {
            (a, "{answer_a}".len())
        } else if tail.starts_with("{answer_b}") {
            (b, "{answer_b}".len())
        } else {
            ("{", 1)
        };
        out.push_str(value);
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// The judge's request: an OpenAI chat-completions body at temperature 0. `routed_first` (from
/// [`judge_order`]) says whether the routed answer is "A".
pub fn judge_request(
    settings: &JudgeSettings,
    question: &str,
    routed: &str,
    reference: &str,
    routed_first: bool,
) -> serde_json::Value {
    let (a, b) = if routed_first {
        (routed, reference)
    } else {
        (reference, routed)
    };
    let template = settings.prompt.as_deref().unwrap_or(DEFAULT_JUDGE_PROMPT);
    serde_json::json!({
        "model": settings.model,
        "temperature": 0,
        "max_tokens": settings.max_tokens,
        "messages": [
            {"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": render(template, question, a, b)},
        ],
    })
}

/// Reads the judge's answer: the first JSON object with a `winner` in the text (code fences and
/// surrounding prose are fine). `tie` is equivalent; the routed answer winning is better, the
/// reference winning is worse. `score`, when present, must be within 0..1.
pub fn read_judge(answer_text: &str, routed_first: bool) -> Result<Comparison, VerdictError> {
    let object = answer_text
        .char_indices()
        .filter(|(_, c)| *c == '{')
        .find_map(|(i, _)| {
            let mut stream = serde_json::Deserializer::from_str(&answer_text[i..])
                .into_iter::<serde_json::Value>();
            match stream.next() {
                Some(Ok(serde_json::Value::Object(m))) if m.contains_key("winner") => Some(m),
                _ => None,
            }
        })
        .ok_or_else(|| {
            VerdictError::JudgeAnswer(format!(
                "no JSON object with a \"winner\" in {:?}",
                truncate(answer_text, 200)
            ))
        })?;
    let winner = object
        .get("winner")
        .and_then(|w| w.as_str())
        .ok_or_else(|| VerdictError::JudgeAnswer("\"winner\" is not a string".into()))?;
    let winner = winner.trim().to_ascii_lowercase();
    let winner = winner.strip_prefix("answer ").unwrap_or(&winner);
    let a_wins = match winner {
        "a" => Some(true),
        "b" => Some(false),
        "tie" | "equal" | "draw" | "both" => None,
        other => {
            return Err(VerdictError::JudgeAnswer(format!(
                "\"winner\" is {other:?}, not A, B or tie"
            )));
        }
    };
    let score = match object.get("score") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(s) if (0.0..=1.0).contains(&s) => Some(s),
            _ => {
                return Err(VerdictError::JudgeAnswer(format!(
                    "\"score\" {v} is not a number within 0..1"
                )));
            }
        },
    };
    let (verdict, detail) = match a_wins {
        None => (Verdict::Equivalent, "judge_tie"),
        Some(a) if a == routed_first => (Verdict::Better, "judge_routed_wins"),
        Some(_) => (Verdict::Worse, "judge_reference_wins"),
    };
    Ok(Comparison {
        verdict,
        method: Method::Judge,
        similarity: None,
        judge_score: score,
        detail,
    })
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_request_is_blind_and_ordered_by_query_id() {
        let settings = JudgeSettings::new("judge-model-x");
        assert!(settings.validate().is_ok());
        let body = judge_request(
            &settings,
            "Q?",
            "cheap says {answer_b}",
            "strong says",
            true,
        );
        assert_eq!(body["model"], "judge-model-x");
        assert_eq!(body["temperature"], 0);
        assert_eq!(body["max_tokens"], 200);
        let texts: String = body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["content"].as_str().expect("content").to_string())
            .collect();
        let lower = texts.to_lowercase();
        for word in [
            "routed",
            "reference",
            "cheap model",
            "strong model",
            "baseline",
        ] {
            assert!(!lower.contains(word), "the prompt says {word:?}");
        }
        let user = body["messages"][1]["content"].as_str().expect("user");
        let a = user
            .find("cheap says {answer_b}")
            .expect("answer A, placeholder kept");
        let b = user.find("strong says").expect("answer B");
        assert!(a < b, "routed first");
        let body = judge_request(&settings, "Q?", "cheap says", "strong says", false);
        let user = body["messages"][1]["content"].as_str().expect("user");
        assert!(user.find("strong says") < user.find("cheap says"));

        // Deterministic per id, and about half each way.
        assert_eq!(judge_order("q-1"), judge_order("q-1"));
        let firsts = (0..1000)
            .filter(|i| judge_order(&format!("query-{i}")))
            .count();
        assert!(
            (400..=600).contains(&firsts),
            "{firsts} of 1000 routed first"
        );

        let custom = JudgeSettings {
            prompt: Some("{question} {answer_a}".into()),
            ..settings
        };
        assert!(custom.validate().is_err());
    }

    #[test]
    fn judge_answers_are_read_through_fences_and_prose() {
        let c =
            read_judge("```json\n{\"winner\": \"A\", \"score\": 0.8}\n```", true).expect("fenced");
        assert_eq!((c.verdict, c.method), (Verdict::Better, Method::Judge));
        assert_eq!(c.judge_score, Some(0.8));
        let c = read_judge(
            "Sure. {\"winner\": \"A\", \"score\": 0.8} Hope that helps",
            false,
        )
        .expect("prose");
        assert_eq!(c.verdict, Verdict::Worse);
        let c = read_judge(
            "{\"note\": {}} then {\"winner\": \"b\", \"score\": 1}",
            false,
        )
        .expect("second object");
        assert_eq!(c.verdict, Verdict::Better);
        let c = read_judge("{\"winner\": \"tie\", \"score\": 0.5}", true).expect("tie");
        assert_eq!((c.verdict, c.detail), (Verdict::Equivalent, "judge_tie"));
        for garbage in [
            "I think A is better",
            "{\"winner\": \"C\"}",
            "{\"winner\": \"A\", \"score\": 7}",
            "{\"winner\": 1}",
            "",
        ] {
            assert!(
                matches!(read_judge(garbage, true), Err(VerdictError::JudgeAnswer(_))),
                "{garbage:?}"
            );
        }
    }
}
