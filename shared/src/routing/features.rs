//! The classifier's input: the query's MiniLM embedding plus cheap text statistics.
//!
//! One function builds the vector for training (`tierwise features`) and for serving, so the
//! trees see at serve time exactly what they were trained on. The trained artifact records the
//! feature names; the classifier refuses an artifact whose names differ from [`FEATURE_NAMES`].

use crate::routing::embed::DIM;

/// Names of the cheap text features, in vector order after the `DIM` embedding values.
pub const TEXT_FEATURES: [&str; 10] = [
    "log_tokens",
    "digit_frac",
    "math_frac",
    "code_markers",
    "log_lines",
    "question_marks",
    "choice_lines",
    "shots",
    "mean_word_len",
    "upper_frac",
];

/// Width of the full feature vector.
pub const N_FEATURES: usize = DIM + TEXT_FEATURES.len();

/// All feature names: `emb_0..emb_383`, then [`TEXT_FEATURES`].
pub fn feature_names() -> Vec<String> {
    (0..DIM)
        .map(|i| format!("emb_{i}"))
        .chain(TEXT_FEATURES.iter().map(|s| s.to_string()))
        .collect()
}

/// Cheap statistics of the text, in [`TEXT_FEATURES`] order. One pass over the characters plus
/// a pass over the lines; no allocation beyond the output.
pub fn text_features(text: &str, total_tokens: usize) -> [f32; TEXT_FEATURES.len()] {
    let mut chars = 0usize;
    let mut digits = 0usize;
    let mut math = 0usize;
    let mut upper = 0usize;
    let mut alpha = 0usize;
    let mut questions = 0usize;
    for c in text.chars() {
        chars += 1;
        if c.is_ascii_digit() {
            digits += 1;
        } else if matches!(
            c,
            '+' | '*' | '/' | '=' | '^' | '<' | '>' | '%' | '$' | '\\'
        ) {
            math += 1;
        } else if c == '?' {
            questions += 1;
        }
        if c.is_alphabetic() {
            alpha += 1;
            if c.is_uppercase() {
                upper += 1;
            }
        }
    }
    let mut lines = 0usize;
    let mut choice_lines = 0usize;
    let mut shots = 0usize;
    let mut code = 0usize;
    for line in text.lines() {
        lines += 1;
        let t = line.trim_start();
        if is_choice_line(t) {
            choice_lines += 1;
        }
        if t.starts_with("Answer:") || t.starts_with("A:") || t.starts_with("### Response") {
            shots += 1;
        }
        if t.starts_with("```")
            || t.starts_with("def ")
            || t.starts_with("class ")
            || t.starts_with("import ")
            || t.starts_with("return ")
            || t.starts_with("#include")
            || t.starts_with("function ")
            || t.ends_with('{')
            || t.ends_with(';')
        {
            code += 1;
        }
    }
    let words = text.split_whitespace().count();
    let frac = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f32 / d as f32 };
    [
        (1.0 + total_tokens as f32).ln(),
        frac(digits, chars),
        frac(math, chars),
        code as f32,
        (1.0 + lines as f32).ln(),
        questions as f32,
        choice_lines as f32,
        shots as f32,
        frac(alpha, words),
        frac(upper, alpha),
    ]
}

/// `A.`, `B)`, `(C)`, `D:` at the start of a line: a multiple-choice option.
fn is_choice_line(t: &str) -> bool {
    let b = t.as_bytes();
    let letter = |c: u8| (b'A'..=b'J').contains(&c);
    match b {
        [b'(', c, b')', ..] => letter(*c),
        [c, b'.' | b')' | b':', rest @ ..] => letter(*c) && rest.first().is_none_or(|r| *r == b' '),
        _ => false,
    }
}

/// The full vector: embedding then text statistics.
pub fn feature_vector(embedding: &[f32], text: &str, total_tokens: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(N_FEATURES);
    v.extend_from_slice(embedding);
    v.extend_from_slice(&text_features(text, total_tokens));
    v
}

/// How the router truncates an over-long query for the embedding (see [`Window::HeadTail`]).
pub const ROUTER_WINDOW: crate::routing::embed::Window =
    crate::routing::embed::Window::HeadTail { head: 32 };

/// Embeds `text` the router's way and builds its feature vector.
pub fn featurize(
    embedder: &crate::routing::embed::Embedder,
    text: &str,
) -> Result<Vec<f32>, crate::routing::embed::EmbedError> {
    let tokens = embedder.tokenizer().encode_window(text, ROUTER_WINDOW)?;
    from_tokens(embedder, text, &tokens)
}

/// The feature vector of `text` already tokenised with [`ROUTER_WINDOW`] (the router tokenises
/// once and shares the tokens between rules, cost and features).
pub fn from_tokens(
    embedder: &crate::routing::embed::Embedder,
    text: &str,
    tokens: &crate::routing::embed::Tokenized,
) -> Result<Vec<f32>, crate::routing::embed::EmbedError> {
    let embedding = embedder.embed_ids(&tokens.ids)?;
    Ok(feature_vector(&embedding.0, text, tokens.total_tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_choices_shots_code_and_digits() {
        let text =
            "Question: 2+2=?\n(A) 3\n(B) 4\nC. 5\nAnswer: B\n```\ndef f():\n    return 1\n```";
        let f = text_features(text, 30);
        assert!((f[0] - 31f32.ln()).abs() < 1e-6);
        assert!(f[1] > 0.0 && f[2] > 0.0);
        assert_eq!(f[3], 4.0, "two fences, def, return");
        assert_eq!(f[5], 1.0);
        assert_eq!(f[6], 3.0);
        assert_eq!(f[7], 1.0);
    }

    #[test]
    fn empty_text_gives_finite_zeros() {
        let f = text_features("", 2);
        assert!(f.iter().all(|v| v.is_finite()));
        assert_eq!(f[1], 0.0);
        assert_eq!(f[8], 0.0);
    }

    #[test]
    fn choice_line_detection() {
        assert!(is_choice_line("A. Paris"));
        assert!(is_choice_line("(D) none"));
        assert!(is_choice_line("B)"));
        assert!(!is_choice_line("Apples are red"));
        assert!(!is_choice_line("A.B. Smith"));
        assert!(!is_choice_line("Z. zebra"));
    }

    #[test]
    fn names_match_width() {
        assert_eq!(feature_names().len(), N_FEATURES);
        assert_eq!(feature_vector(&[0.0; DIM], "x", 3).len(), N_FEATURES);
    }
}
