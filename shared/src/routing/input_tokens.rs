//! What a chat request's input costs in tokens beyond its messages' text: the tool (function)
//! definitions sent with it and its image parts. The router adds both to its input-token
//! estimate, so the context-window check and the cost estimates (the cost cap, the budgets)
//! see the whole prompt a provider bills, not only its text.
//!
//! Providers render tool definitions into the prompt in their own formats; the estimate counts
//! the definition's JSON text with the router's tokenizer plus a fixed overhead. Images follow
//! OpenAI's published vision pricing rule.

use serde_json::Value;

/// Tokens a tool definition costs beyond its JSON text (the wrapper a provider renders it in).
/// OpenAI's cookbook ("How to count tokens with tiktoken", function calling) counts 7 tokens to
/// open each function.
pub const TOKENS_PER_TOOL: usize = 7;
/// Tokens the list of tool definitions costs once, when there is one (the cookbook's 12 to
/// close the functions block).
pub const TOKENS_PER_TOOL_LIST: usize = 12;

/// An image at `detail: "low"`: OpenAI's fixed 85 tokens, whatever its size.
pub const IMAGE_LOW_DETAIL_TOKENS: usize = 85;
/// Each 512 px tile of an image at high detail costs this much on top of the base 85.
pub const IMAGE_TILE_TOKENS: usize = 170;
/// An image at `detail: "high"` or `"auto"` (or with no `detail`): OpenAI charges 85 tokens
/// plus 170 per 512 px tile of the image scaled to fit 2048 x 2048 and then to a shortest side
/// of 768 px. The request carries a URL or data URL, not the image's size, and the router
/// fetches and decodes nothing, so every such image is estimated as a 1024 x 1024 one: scaled
/// to 768 x 768, 4 tiles, 85 + 4 x 170 = 765 tokens. The real cost ranges from 255 (an image
/// of at most 512 x 512, one tile) to 1,445 (a long one scaled to 768 x 2048, 8 tiles).
pub const IMAGE_HIGH_DETAIL_TOKENS: usize = IMAGE_LOW_DETAIL_TOKENS + 4 * IMAGE_TILE_TOKENS;

/// The tokens of one message content part when it is an image (`type` `image_url`,
/// `input_image` or `image`): [`IMAGE_LOW_DETAIL_TOKENS`] at `detail: "low"`, else
/// [`IMAGE_HIGH_DETAIL_TOKENS`]. `detail` is read from the part's `image_url` object (Chat
/// Completions) or from the part itself (Responses-style parts). `None` for any other part.
pub fn image_part_tokens(part: &Value) -> Option<usize> {
    let kind = part.get("type").and_then(Value::as_str)?;
    if !matches!(kind, "image_url" | "input_image" | "image") {
        return None;
    }
    let detail = part
        .get("image_url")
        .and_then(|u| u.get("detail"))
        .or_else(|| part.get("detail"))
        .and_then(Value::as_str);
    Some(match detail {
        Some(d) if d.eq_ignore_ascii_case("low") => IMAGE_LOW_DETAIL_TOKENS,
        _ => IMAGE_HIGH_DETAIL_TOKENS,
    })
}

/// The text of a tool definition that is counted: a Chat Completions tool's `function` object
/// (`name`, `description`, `parameters`, ...) as compact JSON, or the whole entry for a legacy
/// `functions` entry or a tool of another type.
pub fn tool_text(tool: &Value) -> String {
    let definition = match tool.get("function") {
        Some(f @ Value::Object(_)) => f,
        _ => tool,
    };
    definition.to_string()
}

/// The tokens of a request's tool definitions: each one's [`tool_text`] counted by `count`,
/// plus [`TOKENS_PER_TOOL`] each and [`TOKENS_PER_TOOL_LIST`] once; 0 without tools.
pub fn tools_tokens<E>(
    tools: &[Value],
    mut count: impl FnMut(&str) -> Result<usize, E>,
) -> Result<usize, E> {
    if tools.is_empty() {
        return Ok(0);
    }
    let mut tokens = TOKENS_PER_TOOL_LIST;
    for tool in tools {
        tokens += count(&tool_text(tool))? + TOKENS_PER_TOOL;
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_parts_follow_the_detail_rule() {
        let url = "https://example.com/cat.png";
        let cases = [
            (
                json!({"type": "image_url", "image_url": {"url": url, "detail": "low"}}),
                85,
            ),
            (
                json!({"type": "image_url", "image_url": {"url": url, "detail": "LOW"}}),
                85,
            ),
            (
                json!({"type": "image_url", "image_url": {"url": url, "detail": "high"}}),
                765,
            ),
            (
                json!({"type": "image_url", "image_url": {"url": url, "detail": "auto"}}),
                765,
            ),
            (json!({"type": "image_url", "image_url": {"url": url}}), 765),
            (
                json!({"type": "input_image", "image_url": url, "detail": "low"}),
                85,
            ),
            (json!({"type": "input_image", "image_url": url}), 765),
        ];
        for (part, want) in cases {
            assert_eq!(image_part_tokens(&part), Some(want), "{part}");
        }
        for other in [
            json!({"type": "text", "text": "hello"}),
            json!({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}),
            json!({"image_url": {"url": url}}),
            json!("image_url"),
        ] {
            assert_eq!(image_part_tokens(&other), None, "{other}");
        }
        // The documented fixed estimate is the 1024 x 1024 high-detail cost.
        assert_eq!(IMAGE_HIGH_DETAIL_TOKENS, 765);
    }

    #[test]
    fn tools_count_their_definition_text_plus_overheads() {
        let weather = json!({"type": "function", "function": {
            "name": "get_weather",
            "description": "The current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
        }});
        // Only the function object is counted, not the `type` wrapper.
        assert_eq!(tool_text(&weather), weather["function"].to_string());
        let legacy = json!({"name": "get_weather", "parameters": {"type": "object"}});
        assert_eq!(tool_text(&legacy), legacy.to_string());

        // A counter of characters makes the sums checkable by hand.
        let chars = |s: &str| Ok::<_, ()>(s.chars().count());
        assert_eq!(tools_tokens(&[], chars), Ok(0));
        let one = tools_tokens(std::slice::from_ref(&weather), chars).unwrap();
        assert_eq!(
            one,
            TOKENS_PER_TOOL_LIST + tool_text(&weather).chars().count() + TOKENS_PER_TOOL
        );
        let two = tools_tokens(&[weather.clone(), legacy.clone()], chars).unwrap();
        assert_eq!(
            two,
            one + tool_text(&legacy).chars().count() + TOKENS_PER_TOOL
        );
        // The counter's error is passed on.
        assert_eq!(
            tools_tokens(&[weather], |_| Err::<usize, _>("boom")),
            Err("boom")
        );
    }
}
