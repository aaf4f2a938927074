//! Free text: the cosine of the two answers' MiniLM embeddings, and the cheap guards for what
//! embeddings miss (differing numbers or complexities, a flipped negation, swapped names, a
//! partial answer), each of which makes similar answers worse.

use super::facts::Facts;
use super::normalize::{NEGATIONS, STOPWORDS, has_negation, normalize_words, strip_markup};
use super::numbers::numbers_agree;
use super::{CompareSettings, Comparison, Verdict, VerdictError};
use crate::routing::embed::Embedder;

pub(super) fn similarity_path(
    routed: &str,
    reference: &str,
    question: &str,
    r: &Facts,
    f: &Facts,
    embedder: &Embedder,
    settings: &CompareSettings,
) -> Result<Comparison, VerdictError> {
    let a = embedder.embed(routed)?.embedding;
    let b = embedder.embed(reference)?.embedding;
    let cos = f64::from(a.cosine(&b));
    if cos < settings.equivalent_similarity {
        return Ok(Comparison::similar(Verdict::Worse, cos, "low_similarity"));
    }
    if incomplete(question, r, f, settings) {
        return Ok(Comparison::similar(Verdict::Worse, cos, "incomplete"));
    }
    if settings.number_guard && !numbers_agree(&r.numbers, &f.numbers, settings.number_tolerance) {
        return Ok(Comparison::similar(Verdict::Worse, cos, "number_mismatch"));
    }
    if settings.number_guard && !complexities_agree(routed, reference) {
        return Ok(Comparison::similar(
            Verdict::Worse,
            cos,
            "complexity_mismatch",
        ));
    }
    let guarded =
        r.words.len() <= settings.guard_max_words && f.words.len() <= settings.guard_max_words;
    if guarded && settings.negation_guard && negation_flipped(&r.words, &f.words) {
        return Ok(Comparison::similar(
            Verdict::Worse,
            cos,
            "negation_mismatch",
        ));
    }
    if guarded && settings.entity_guard && names_swapped(question, routed, reference) {
        return Ok(Comparison::similar(Verdict::Worse, cos, "entity_mismatch"));
    }
    Ok(Comparison::similar(Verdict::Equivalent, cos, "similar"))
}

/// One side only is negated, and what it negates ("not visible": the next three content words)
/// is said by the other side ("visible"): "X" against "not X". A paraphrase that moves the
/// negation into another word ("did not change" / "unchanged") does not count.
fn negation_flipped(a: &[String], b: &[String]) -> bool {
    let (neg, other) = match (has_negation(a), has_negation(b)) {
        (true, false) => (a, b),
        (false, true) => (b, a),
        _ => return false,
    };
    neg.iter().enumerate().any(|(i, w)| {
        NEGATIONS.contains(&w.as_str())
            && neg[i + 1..]
                .iter()
                .filter(|w| !STOPWORDS.contains(&w.as_str()))
                .take(3)
                .any(|w| other.contains(w))
    })
}

/// Content words: not in the question, not function words.
fn content_words(words: &[String], question: &[String]) -> usize {
    words
        .iter()
        .filter(|w| !STOPWORDS.contains(&w.as_str()) && !question.contains(w))
        .count()
}

/// The routed answer says much less than the reference (see
/// [`CompareSettings::min_length_ratio`]): fewer content words both when the question's words
/// count (a summary reuses them) and when they do not (a restated question is no content). A
/// reference of under four content words is never "more".
pub(super) fn incomplete(question: &str, r: &Facts, f: &Facts, settings: &CompareSettings) -> bool {
    let q = normalize_words(question);
    let short = |mine: usize, theirs: usize| {
        theirs >= 4 && (mine as f64) < settings.min_length_ratio * theirs as f64
    };
    short(content_words(&r.words, &q), content_words(&f.words, &q))
        && short(content_words(&r.words, &[]), content_words(&f.words, &[]))
}

/// Capitalised words that are not function words ("The", "It", ...), lowercased, at any
/// position: names, mostly.
fn capitalised(text: &str) -> Vec<String> {
    const COMMON: &[&str] = &[
        "a", "an", "the", "i", "it", "its", "this", "that", "these", "those", "they", "there",
        "here", "we", "you", "he", "she", "in", "on", "at", "for", "of", "and", "or", "but", "so",
        "if", "when", "yes", "no", "to", "as", "by", "with", "from", "after", "before", "because",
        "while", "what", "which", "who", "how", "why", "where", "then", "also", "however", "both",
        "each", "all", "some", "most", "many", "first", "finally", "not", "is", "are", "was",
        "were", "do", "does", "note", "sure", "yes", "true", "false",
    ];
    let mut out: Vec<String> = Vec::new();
    for raw in strip_markup(text).split_whitespace() {
        let word: String = raw.chars().filter(|c| c.is_alphanumeric()).collect();
        if !word.chars().next().is_some_and(char::is_uppercase) {
            continue;
        }
        let lower = word.to_lowercase();
        if !COMMON.contains(&lower.as_str()) && !out.contains(&lower) {
            out.push(lower);
        }
    }
    out
}

/// Each answer has a name (capitalised word) that the other answer and the question lack:
/// "Saturn is the largest planet" against "Jupiter is the largest planet".
fn names_swapped(question: &str, routed: &str, reference: &str) -> bool {
    let q = normalize_words(question);
    let wa = normalize_words(routed);
    let wb = normalize_words(reference);
    let own = |names: Vec<String>, other: &[String]| {
        names
            .into_iter()
            .any(|n| !other.contains(&n) && !q.contains(&n))
    };
    own(capitalised(routed), &wb) && own(capitalised(reference), &wa)
}

/// Big-O expressions (`O(n log n)`), normalised (spaces and `*` dropped, lowercase).
fn complexities(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("O(") {
        let boundary = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let open = i + 2;
        let Some(close) = rest[open..].find(')').map(|c| open + c) else {
            break;
        };
        if boundary {
            let e: String = rest[open..close]
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '*' && *c != '\\')
                .collect::<String>()
                .to_lowercase();
            if !out.contains(&e) {
                out.push(e);
            }
        }
        rest = &rest[close..];
    }
    out
}

/// Both answers state complexities and share none of them.
fn complexities_agree(a: &str, b: &str) -> bool {
    let (ca, cb) = (complexities(a), complexities(b));
    ca.is_empty() || cb.is_empty() || ca.iter().any(|c| cb.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::verdict::numbers::text_numbers;

    #[test]
    fn free_text_guards() {
        assert!(names_swapped(
            "What is the largest planet?",
            "Saturn is the largest planet.",
            "Jupiter is the largest planet."
        ));
        assert!(!names_swapped(
            "Who was first on the Moon?",
            "Neil Armstrong, during Apollo 11 in July 1969.",
            "The first man on the Moon was Neil Armstrong."
        ));
        let w = |s: &str| normalize_words(s);
        assert!(negation_flipped(
            &w("The wall is not visible from space."),
            &w("The wall is clearly visible from space.")
        ));
        assert!(!negation_flipped(
            &w("Churn did not change."),
            &w("Churn was unchanged.")
        ));
        assert!(!complexities_agree(
            "It is O(n) time.",
            "It runs in O(log n)."
        ));
        assert!(complexities_agree(
            "O(n log n) on average",
            "O(n  log n), O(n^2) worst"
        ));
        assert!(complexities_agree("fast", "O(1)"));
        let n = |s: &str| text_numbers(s);
        assert!(numbers_agree(
            &n("Apollo 11 landed in 1969."),
            &n("In 1969."),
            1e-6
        ));
        assert!(!numbers_agree(
            &n("It costs $5 and takes 3 days."),
            &n("$5, 4 days"),
            1e-6
        ));
        assert!(numbers_agree(
            &n("1. Steep it 4 minutes"),
            &n("Steep for 4 minutes in 3 cups of water"),
            1e-6
        ));
    }
}
