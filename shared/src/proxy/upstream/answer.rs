//! What is read out of a provider's answer: the token `usage` (of a completion or a stream
//! chunk) and the answer's text.

use serde_json::Value;

use super::Usage;

/// `value` cut at a char boundary at most `max` bytes long.
pub(super) fn truncate(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// A token count: a non-negative integer (also accepted as an integral float).
fn count(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 9.0e15)
            .map(|f| f as u64)
    })
}

/// The `usage` of a completion or stream chunk: `prompt_tokens`, `completion_tokens` (or
/// Anthropic-style `input_tokens` / `output_tokens`),
/// `completion_tokens_details.reasoning_tokens`, `prompt_tokens_details.cached_tokens` (or
/// `cache_read_input_tokens`). `None` when absent, `null`, or without any token count.
pub fn usage_of(v: &Value) -> Option<Usage> {
    let usage = v.get("usage").filter(|u| u.is_object())?;
    let prompt = count(usage.get("prompt_tokens")).or_else(|| count(usage.get("input_tokens")));
    let completion =
        count(usage.get("completion_tokens")).or_else(|| count(usage.get("output_tokens")));
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    let reasoning_tokens = count(
        usage
            .get("completion_tokens_details")
            .and_then(|d| d.get("reasoning_tokens")),
    );
    let cached_tokens = count(
        usage
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens")),
    )
    .or_else(|| count(usage.get("cache_read_input_tokens")));
    Some(Usage {
        prompt_tokens: prompt.unwrap_or(0),
        completion_tokens: completion.unwrap_or(0),
        reasoning_tokens,
        cached_tokens,
    })
}

/// The answer of a buffered completion: `choices[0].message.content`, a string or an array
/// of `{type: "text", text}` parts (joined). `None` when absent, `null`, or without text.
pub fn answer_text(completion: &Value) -> Option<String> {
    let content = completion
        .get("choices")?
        .get(0)?
        .get("message")?
        .get("content")?;
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| {
                    p.get("type")
                        .and_then(Value::as_str)
                        .is_none_or(|t| t == "text")
                })
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.concat())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_is_read() {
        let v = json!({"usage": {
            "prompt_tokens": 100, "completion_tokens": 40,
            "completion_tokens_details": {"reasoning_tokens": 30},
            "prompt_tokens_details": {"cached_tokens": 64}
        }});
        assert_eq!(
            usage_of(&v),
            Some(Usage {
                prompt_tokens: 100,
                completion_tokens: 40,
                reasoning_tokens: Some(30),
                cached_tokens: Some(64),
            })
        );
        let plain = json!({"usage": {"prompt_tokens": 5, "completion_tokens": 6,
            "completion_tokens_details": null}});
        assert_eq!(
            usage_of(&plain),
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 6,
                reasoning_tokens: None,
                cached_tokens: None,
            })
        );
        let anthropic = json!({"usage": {"prompt_tokens": 5, "completion_tokens": 6,
            "cache_read_input_tokens": 4}});
        assert_eq!(usage_of(&anthropic).and_then(|u| u.cached_tokens), Some(4));
        let floats = json!({"usage": {"prompt_tokens": 5.0, "completion_tokens": 6}});
        assert_eq!(usage_of(&floats).map(|u| u.prompt_tokens), Some(5));
        assert_eq!(usage_of(&json!({"usage": null})), None);
        assert_eq!(usage_of(&json!({"usage": {}})), None);
        assert_eq!(usage_of(&json!({"choices": []})), None);
        assert_eq!(usage_of(&json!({"usage": {"prompt_tokens": -3}})), None);
    }

    #[test]
    fn answer_text_forms() {
        let s = json!({"choices": [{"message": {"role": "assistant", "content": "Paris."}}]});
        assert_eq!(answer_text(&s).as_deref(), Some("Paris."));
        let parts = json!({"choices": [{"message": {"content": [
            {"type": "text", "text": "Hello, "},
            {"type": "image_url", "image_url": {"url": "x"}},
            {"type": "text", "text": "world"}
        ]}}]});
        assert_eq!(answer_text(&parts).as_deref(), Some("Hello, world"));
        assert_eq!(
            answer_text(&json!({"choices": [{"message": {"content": null}}]})),
            None
        );
        assert_eq!(answer_text(&json!({"choices": []})), None);
        assert_eq!(answer_text(&json!({"error": {}})), None);
    }
}
