//! Text normalisation and the word lists the comparison reads: refusals, markup unwrapped
//! ([`strip_markup`]), normalised words ([`normalize_words`]), negations and function words.

const REFUSALS: &[&str] = &[
    "i can't help",
    "i cannot help",
    "i can't assist",
    "i cannot assist",
    "i can't provide",
    "i cannot provide",
    "i can't answer",
    "i cannot answer",
    "i'm unable to",
    "i am unable to",
    "i'm not able to",
    "i am not able to",
    "i won't be able to",
    "i'm sorry, but i",
    "i am sorry, but i",
    "sorry, i can't",
    "sorry, i cannot",
    "as an ai",
    "i don't know",
    "i do not know",
    "i'm not sure",
    "i am not sure",
];

/// A refusal or a non-answer: starts with a refusal phrase, or is short and contains one.
pub fn is_refusal(text: &str) -> bool {
    let lower = text.trim().to_lowercase().replace('\u{2019}', "'");
    if lower.is_empty() {
        return false;
    }
    if REFUSALS.iter().any(|p| lower.starts_with(p)) {
        return true;
    }
    lower.split_whitespace().count() <= 30 && REFUSALS.iter().any(|p| lower.contains(p))
}

/// Unwraps LaTeX and markdown wrappers: `\boxed{x}`, `\text{x}`, `\frac{a}{b}` (to `a/b`), `$`,
/// `\(`, `**`, `__`, backticks.
pub fn strip_markup(text: &str) -> String {
    let mut s = text.to_string();
    for cmd in [
        "boxed", "text", "textbf", "mathrm", "mathbf", "fbox", "emph",
    ] {
        s = unwrap_command(&s, cmd);
    }
    for cmd in ["dfrac", "tfrac", "frac"] {
        s = unwrap_frac(&s, cmd);
    }
    for (from, to) in [
        ("\\$", "$"),
        ("\\%", "%"),
        ("\\(", " "),
        ("\\)", " "),
        ("\\[", " "),
        ("\\]", " "),
        ("\\,", ""),
        ("\\!", ""),
        ("**", ""),
        ("__", ""),
        ("`", ""),
    ] {
        s = s.replace(from, to);
    }
    // `$` around maths goes, but a currency `$5` keeps its meaning either way (dropped later).
    s.replace('$', " ")
}

/// Replaces every `\cmd{inner}` with `inner` (braces matched).
fn unwrap_command(s: &str, cmd: &str) -> String {
    let pat = format!("\\{cmd}{{");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(&pat) {
        let open = i + pat.len();
        match matching_brace(rest, open) {
            Some(close) => {
                out.push_str(&rest[..i]);
                out.push_str(&rest[open..close]);
                rest = &rest[close + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// Replaces every `\frac{a}{b}` with `a/b`.
fn unwrap_frac(s: &str, cmd: &str) -> String {
    let pat = format!("\\{cmd}{{");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(&pat) {
        let open = i + pat.len();
        let Some(close) = matching_brace(rest, open) else {
            break;
        };
        if !rest[close + 1..].starts_with('{') {
            break;
        }
        let Some(close2) = matching_brace(rest, close + 2) else {
            break;
        };
        out.push_str(&rest[..i]);
        out.push_str(&rest[open..close]);
        out.push('/');
        out.push_str(&rest[close + 2..close2]);
        rest = &rest[close2 + 1..];
    }
    out.push_str(rest);
    out
}

/// The index of the `}` closing the brace group whose content starts at `start`.
pub(super) fn matching_brace(s: &str, start: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.get(start..)?.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(start + i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Normalised words: markup unwrapped, lowercase, punctuation dropped (except inside numbers:
/// `1,000.5`, `-3`, `1/2`, `50%`), apostrophes dropped (`don't` -> `dont`), articles dropped.
pub fn normalize_words(text: &str) -> Vec<String> {
    let s = strip_markup(text).to_lowercase();
    let chars: Vec<char> = s.chars().collect();
    let mut cleaned = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        let keep = c.is_alphanumeric()
            || (matches!(c, '.' | ',' | '/') && prev.is_ascii_digit() && next.is_ascii_digit())
            || (c == '.' && next.is_ascii_digit() && !prev.is_alphanumeric())
            || (c == '-' && next.is_ascii_digit() && !prev.is_alphanumeric())
            || (c == '%' && prev.is_ascii_digit());
        if keep {
            cleaned.push(c);
        } else if c == '\'' || c == '\u{2019}' {
            // contractions stay one word
        } else {
            cleaned.push(' ');
        }
    }
    cleaned
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .map(str::to_string)
        .collect()
}

/// The normalised answer text (see [`normalize_words`]).
pub fn normalize(text: &str) -> String {
    normalize_words(text).join(" ")
}

pub(super) const NEGATIONS: &[&str] = &[
    "not", "no", "never", "cannot", "none", "nobody", "nothing", "neither", "nor", "dont",
    "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "cant", "couldnt", "wont", "wouldnt",
    "shouldnt", "hasnt", "havent", "hadnt", "aint", "mustnt", "neednt",
];

pub(super) fn has_negation(words: &[String]) -> bool {
    words.iter().any(|w| NEGATIONS.contains(&w.as_str()))
}

/// Function words, left out when counting content and reading negation scopes.
pub(super) const STOPWORDS: &[&str] = &[
    "is", "are", "was", "were", "be", "been", "being", "to", "of", "in", "on", "and", "or", "it",
    "its", "that", "this", "with", "for", "by", "as", "at", "from", "so", "which", "do", "does",
    "did", "have", "has", "had", "can", "will", "would", "should", "could", "very", "really",
    "just", "there", "their", "they", "you", "your", "we", "our", "i", "my", "me",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_drops_case_punctuation_articles_and_markup() {
        assert_eq!(normalize("  The  Eiffel Tower. "), "eiffel tower");
        assert_eq!(normalize("**Paris**"), "paris");
        assert_eq!(normalize("`HashMap`"), "hashmap");
        assert_eq!(normalize("$\\boxed{42}$"), "42");
        assert_eq!(normalize("\\text{an apple}"), "apple");
        assert_eq!(normalize("It's 1,000.5!"), "its 1,000.5");
        assert_eq!(normalize("\\frac{1}{2}"), "1/2");
        assert_eq!(normalize("-3 and 50%."), "-3 and 50%");
        assert_eq!(normalize("don't"), "dont");
    }
}
