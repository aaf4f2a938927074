//! What the comparison reads of one answer (`Facts`): its short form when it has one, its
//! words, numbers, negation, leading yes/no and the choice letters it names, and the final
//! answer a text marks ([`final_marker`]).

use super::CompareSettings;
use super::normalize::{has_negation, matching_brace, normalize_words};
use super::numbers::{Num, text_numbers};
use super::short::{Short, classify_short};

/// What the comparison needs of one answer.
pub(super) struct Facts {
    pub(super) short: Option<Short>,
    pub(super) words: Vec<String>,
    pub(super) numbers: Vec<Num>,
    pub(super) negated: bool,
    pub(super) leading_yes_no: Option<bool>,
    /// Choice letters the text names (`(B)`, `option B`, `B)`).
    pub(super) letters: Vec<char>,
}

impl Facts {
    pub(super) fn of(text: &str, options: &[(char, String)], settings: &CompareSettings) -> Self {
        let words = normalize_words(text);
        let short = match final_marker(text) {
            Some(m) if normalize_words(&m).len() <= settings.short_max_words => {
                Some(classify_short(&m, options))
            }
            _ if words.len() <= settings.short_max_words => Some(classify_short(text, options)),
            _ => None,
        };
        let leading_yes_no = match words.first().map(String::as_str) {
            Some("yes") => Some(true),
            Some("no") => Some(false),
            _ => None,
        };
        Self {
            short,
            numbers: text_numbers(text),
            negated: has_negation(&words),
            leading_yes_no,
            letters: named_letters(text),
            words,
        }
    }
}

/// Letters named as choices in free text: `(B)`, `option B`, `choice B`.
fn named_letters(text: &str) -> Vec<char> {
    let mut out: Vec<char> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    for i in 0..chars.len() {
        let c = chars[i];
        if !('A'..='J').contains(&c) {
            continue;
        }
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        let paren = prev == '(' && next == ')';
        let before: String = chars[i.saturating_sub(7)..i]
            .iter()
            .collect::<String>()
            .to_lowercase();
        let named =
            (before.ends_with("option ") || before.ends_with("choice ")) && !next.is_alphanumeric();
        if (paren || named) && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// The final answer a text marks: the last `\boxed{..}`, else what follows the last "answer is" /
/// "answer:" (to the end of its line or sentence).
pub fn final_marker(text: &str) -> Option<String> {
    if let Some(i) = text.rfind("\\boxed{") {
        let open = i + "\\boxed{".len();
        if let Some(close) = matching_brace(text, open) {
            return Some(text[open..close].trim().to_string());
        }
    }
    // ASCII lowercase keeps byte offsets aligned with `text`.
    let lower = text.to_ascii_lowercase();
    let lower = lower.replace("**", "  ");
    let mut best: Option<usize> = None;
    for marker in ["answer is", "answer:", "answer would be", "answer ="] {
        if let Some(i) = lower.rfind(marker) {
            let end = i + marker.len();
            if best.is_none_or(|b| end > b) {
                best = Some(end);
            }
        }
    }
    let start = best?;
    let rest = &lower[start..];
    let mut end = rest.len();
    for stop in ["\n", ". ", ", ", "; ", " because", " since", " as "] {
        if let Some(i) = rest.find(stop) {
            end = end.min(i);
        }
    }
    let original = text.get(start..start + end)?;
    let answer = original
        .trim()
        .trim_start_matches([':', '*', ' '])
        .trim_end_matches(['.', '*', ' '])
        .trim();
    (!answer.is_empty()).then(|| answer.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_answers_are_found_behind_markers() {
        assert_eq!(final_marker("so x = 4, \\boxed{4}").as_deref(), Some("4"));
        assert_eq!(
            final_marker("Adding them up, the answer is 1,250.").as_deref(),
            Some("1,250")
        );
        assert_eq!(
            final_marker("Reasoning...\n**Answer:** B\nDone").as_deref(),
            Some("B")
        );
        assert_eq!(
            final_marker("Final answer: Paris, because it is").as_deref(),
            Some("Paris")
        );
        assert_eq!(final_marker("no marker here"), None);
    }
}
