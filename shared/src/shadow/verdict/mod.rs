//! Shadow-evaluation verdicts: is the routed (cheap) model's answer as good as the reference
//! (strong, baseline) model's answer to the same query?
//!
//! [`compare`] picks the comparison that suits the two answers and puts the method on the record
//! ([`Comparison::method`], with a machine-readable [`Comparison::detail`]):
//!
//! - **Exact** ([`Method::Exact`]) for short answers: a final answer is taken from `\boxed{..}`
//!   or "the answer is .." / "Answer: .." when there is one, else the whole answer when it has at
//!   most [`CompareSettings::short_max_words`] words. It is classified and compared as
//!   - a multiple-choice letter (`B`, `(B)`, `B)`, `B. Paris`, `Option B`); a letter and an
//!     option's text are matched through the options listed in the question (`(A) Lyon (B) Paris`);
//!   - yes/no (`yes`/`true`/`correct` against `no`/`false`/`incorrect`);
//!   - a number, compared numerically: `1,000` = `1000` = `1000.0` = `1e3`, `1/2` = `0.5`,
//!     `$5` = `5`, `seven` = `7`, within a relative [`CompareSettings::number_tolerance`]. A
//!     percentage matches a bare number equal to it or to its fraction (`50%` = `50` = `0.5`: a
//!     "what share" answer is written both ways); two percentages compare directly. When both
//!     sides carry a unit word, the units must agree too (`5 km` against `5 miles` is worse);
//!   - a label: normalised (case, whitespace, punctuation, articles, markdown, LaTeX wrappers),
//!     equal as text or as a set of words, or one contained in the other (`Paris` / `Paris,
//!     France`) when their negations agree.
//!
//!   A short answer against a long one: a number is compared with the long answer's last number,
//!   a yes/no with its leading yes/no, a letter with the letters it names, a label is looked up in
//!   it (when it has no negation); otherwise the similarity path decides.
//! - **Similarity** ([`Method::Similarity`]) for free text: cosine of the bundled MiniLM
//!   embeddings against [`CompareSettings::equivalent_similarity`], plus cheap guards for what
//!   embeddings miss, each of which makes similar answers worse: differing numbers (the side
//!   with fewer numbers must have all of them in the other) or big-O complexities; a negation in
//!   one answer only, over words the other answer says ("is visible" / "is not visible"); a
//!   name (capitalised word) on each side that the other side and the question lack ("Saturn is
//!   the largest planet" / "Jupiter is ..."); a routed answer with under a third of the
//!   reference's content words (a partial answer, [`CompareSettings::min_length_ratio`]).
//!   Two free-text answers opening with opposite yes/no are worse outright.
//! - **Judge** ([`Method::Judge`]): an LLM judge, blind to which answer is which, in an order
//!   fixed per query id ([`judge_order`]). This module builds its request ([`judge_request`]) and
//!   reads its answer ([`read_judge`]); the evaluator sends it through its upstream client.
//!
//! A refused or empty routed answer against a real reference is worse; a refusal on both sides is
//! equivalent; a real routed answer against a refused reference is worse too: without a judge
//! nobody can say whether that answer is right, or should have been given at all.
//!
//! **Without a judge, "better" is never said.** Similarity can tell that two answers agree, not
//! which of two differing answers is right, so any difference counts against the routed (cheap)
//! answer: `worse` is the conservative reading for a router that must prove quality held. Only the
//! judge can say `better`.
//!
//! Lives here: the verdict types, the settings and [`compare`]; the text normalisation and word
//! lists ([`normalize`]), numbers ([`numbers`]), short answers ([`short`]), what the comparison
//! reads of an answer ([`facts`]), the similarity path and its guards ([`similarity`]) and the
//! judge ([`judge`]).

pub mod facts;
pub mod judge;
pub mod normalize;
pub mod numbers;
pub mod short;
pub mod similarity;

use serde::{Deserialize, Serialize};

use self::facts::Facts;
pub use self::judge::{JudgeSettings, judge_order, judge_request, read_judge};
use self::normalize::is_refusal;
use self::short::{Short, compare_short, question_options, short_against_long};
use self::similarity::{incomplete, similarity_path};
use crate::routing::embed::{EmbedError, Embedder};

/// The verdict on the routed answer, relative to the reference answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Equivalent,
    Worse,
    Better,
}

impl Verdict {
    /// The wire name (`equivalent`, `worse`, `better`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Equivalent => "equivalent",
            Verdict::Worse => "worse",
            Verdict::Better => "better",
        }
    }
}

/// How a verdict was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Normalised exact match of short answers (labels, numbers, choices, yes/no), and the
    /// refusal checks.
    Exact,
    /// Embedding similarity of free text, with its guards.
    Similarity,
    /// An LLM judge.
    Judge,
}

impl Method {
    /// The wire name (`exact`, `similarity`, `judge`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Similarity => "similarity",
            Method::Judge => "judge",
        }
    }
}

/// `Display` as the wire name (`as_str`).
macro_rules! display_as_wire_name {
    ($($t:ty),+) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

display_as_wire_name!(Verdict, Method);

/// Errors of the comparison.
#[derive(Debug, thiserror::Error)]
pub enum VerdictError {
    #[error("invalid comparison settings: {0}")]
    Settings(String),
    #[error("the reference answer is empty: there is nothing to compare against")]
    EmptyReference,
    #[error("embedding an answer failed: {0}")]
    Embed(#[from] EmbedError),
    #[error("the judge's answer could not be read: {0}")]
    JudgeAnswer(String),
}

impl VerdictError {
    /// None of these get better on a retry: the inputs, the settings and the bundled model are
    /// what they are, and the judge runs at temperature 0 (asking it again is the evaluator's
    /// call, and costs money).
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Thresholds and switches of [`compare`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompareSettings {
    /// An answer of at most this many words (normalised, articles dropped) is a short answer.
    pub short_max_words: usize,
    /// Cosine of the MiniLM embeddings at or above which two free-text answers are equivalent.
    /// The default (0.68) was picked on the dev split of `tests/fixtures/answer_pairs.jsonl`: it
    /// sits in the gap between the most similar wrong answer (0.66) and the least similar
    /// paraphrase (0.695) there. MiniLM's cosines of paraphrases and of wrong answers on the same
    /// topic overlap (0.4-0.94 against 0.5-0.89 over the whole set), so the guards, not this
    /// threshold, catch most contradictions.
    pub equivalent_similarity: f64,
    /// Relative tolerance of numeric equality (`|a - b| <= tol * max(|a|, |b|)`).
    pub number_tolerance: f64,
    /// Free text: similar answers whose numbers differ are worse.
    pub number_guard: bool,
    /// Free text: similar answers of which only one is negated are worse.
    pub negation_guard: bool,
    /// Free text: similar answers naming disjoint sets of entities are worse.
    pub entity_guard: bool,
    /// A routed answer with less than this share of the reference's content words (those not
    /// in the question, function words left out) is incomplete, hence worse. 0 turns it off.
    pub min_length_ratio: f64,
    /// The negation and entity guards look at answers of at most this many words (beyond it,
    /// both sides negate and name things too often for the guards to mean anything).
    pub guard_max_words: usize,
}

impl Default for CompareSettings {
    fn default() -> Self {
        Self {
            short_max_words: 4,
            equivalent_similarity: 0.68,
            number_tolerance: 1e-6,
            number_guard: true,
            negation_guard: true,
            entity_guard: true,
            guard_max_words: 80,
            min_length_ratio: 0.34,
        }
    }
}

impl CompareSettings {
    /// Checks the ranges: a threshold outside them would make every verdict the same.
    pub fn validate(&self) -> Result<(), VerdictError> {
        if !(1..=50).contains(&self.short_max_words) {
            return Err(VerdictError::Settings(format!(
                "short_max_words must be within 1..=50, not {}",
                self.short_max_words
            )));
        }
        if !(self.equivalent_similarity > 0.0 && self.equivalent_similarity <= 1.0) {
            return Err(VerdictError::Settings(format!(
                "equivalent_similarity must be within (0, 1], not {}",
                self.equivalent_similarity
            )));
        }
        if !(0.0..0.5).contains(&self.number_tolerance) {
            return Err(VerdictError::Settings(format!(
                "number_tolerance must be within [0, 0.5), not {}",
                self.number_tolerance
            )));
        }
        if !(0.0..1.0).contains(&self.min_length_ratio) {
            return Err(VerdictError::Settings(format!(
                "min_length_ratio must be within [0, 1), not {}",
                self.min_length_ratio
            )));
        }
        if self.guard_max_words == 0 {
            return Err(VerdictError::Settings(
                "guard_max_words must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// A verdict and how it was reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub verdict: Verdict,
    pub method: Method,
    /// Cosine of the two answers' embeddings, when the similarity path ran.
    pub similarity: Option<f64>,
    /// The judge's score (its confidence in its verdict, 0..1), when a judge decided.
    pub judge_score: Option<f64>,
    /// Why, in one token. Exact: `label_match`, `label_mismatch`, `number_match`,
    /// `number_mismatch`, `unit_mismatch`, `choice_match`, `choice_mismatch`, `choice_vs_text`,
    /// `yes_no_match`, `yes_no_mismatch`, `kind_mismatch`, `final_number_match`,
    /// `final_number_mismatch`, `number_missing`, `label_in_answer`, `refusal`, `empty_answer`,
    /// `both_refused`, `reference_refused`. Similarity: `similar`, `low_similarity`,
    /// `incomplete`, `number_mismatch`, `complexity_mismatch`, `negation_mismatch`,
    /// `entity_mismatch`. Judge: `judge_tie`, `judge_routed_wins`, `judge_reference_wins`.
    pub detail: &'static str,
}

impl Comparison {
    fn exact(verdict: Verdict, detail: &'static str) -> Self {
        Self {
            verdict,
            method: Method::Exact,
            similarity: None,
            judge_score: None,
            detail,
        }
    }

    fn matched(equal: bool, yes: &'static str, no: &'static str) -> Self {
        if equal {
            Self::exact(Verdict::Equivalent, yes)
        } else {
            Self::exact(Verdict::Worse, no)
        }
    }

    fn similar(verdict: Verdict, similarity: f64, detail: &'static str) -> Self {
        Self {
            verdict,
            method: Method::Similarity,
            similarity: Some(similarity),
            judge_score: None,
            detail,
        }
    }
}

/// Compares the routed answer with the reference answer to `question` (see the module docs).
///
/// Embeds only when the similarity path runs. Errors: invalid settings, an empty reference, an
/// embedding failure.
pub fn compare(
    question: &str,
    routed: &str,
    reference: &str,
    embedder: &Embedder,
    settings: &CompareSettings,
) -> Result<Comparison, VerdictError> {
    settings.validate()?;
    if reference.trim().is_empty() {
        return Err(VerdictError::EmptyReference);
    }
    let routed_empty = routed.trim().is_empty();
    match (routed_empty || is_refusal(routed), is_refusal(reference)) {
        (true, true) => return Ok(Comparison::exact(Verdict::Equivalent, "both_refused")),
        (true, false) if routed_empty => {
            return Ok(Comparison::exact(Verdict::Worse, "empty_answer"));
        }
        (true, false) => return Ok(Comparison::exact(Verdict::Worse, "refusal")),
        // The strong model declined and the cheap one answered: without a judge nobody can say
        // whether that answer is right (or should have been given): not equivalent.
        (false, true) => return Ok(Comparison::exact(Verdict::Worse, "reference_refused")),
        (false, false) => {}
    }

    let options = question_options(question);
    let r = Facts::of(routed, &options, settings);
    let f = Facts::of(reference, &options, settings);
    let decided = match (&r.short, &f.short) {
        (Some(a), Some(b)) => Some(compare_short(a, b, &options, settings)),
        (None, Some(s)) => short_against_long(s, &r, &options, settings),
        // A short label against a long reference may be a partial answer: the similarity path
        // and its length guard decide then.
        (Some(Short::Label(_)), None) if incomplete(question, &r, &f, settings) => None,
        (Some(s), None) => short_against_long(s, &f, &options, settings),
        (None, None) => None,
    };
    if let Some(c) = decided {
        return Ok(c);
    }
    // Two free-text answers that open with opposite yes/no.
    if let (Some(a), Some(b)) = (r.leading_yes_no, f.leading_yes_no)
        && a != b
    {
        return Ok(Comparison::exact(Verdict::Worse, "yes_no_mismatch"));
    }
    similarity_path(routed, reference, question, &r, &f, embedder, settings)
}

#[cfg(test)]
mod tests {
    use super::test_support::{no_embed, verdict};
    use super::*;

    #[test]
    fn refusals_and_empty_answers() {
        assert_eq!(verdict("q", "", "Paris").detail, "empty_answer");
        let c = verdict("q", "I'm sorry, but I can't help with that.", "Paris");
        assert_eq!((c.verdict, c.detail), (Verdict::Worse, "refusal"));
        assert_eq!(
            verdict(
                "q",
                "I cannot help with that.",
                "I can't assist with that request."
            )
            .verdict,
            Verdict::Equivalent
        );
        assert!(matches!(
            compare("q", "x", "  ", &no_embed(), &CompareSettings::default()),
            Err(VerdictError::EmptyReference)
        ));
    }

    #[test]
    fn settings_validate_and_reject_unknown_fields() {
        assert!(CompareSettings::default().validate().is_ok());
        let bad = CompareSettings {
            equivalent_similarity: 1.5,
            ..CompareSettings::default()
        };
        assert!(matches!(bad.validate(), Err(VerdictError::Settings(_))));
        let s: CompareSettings =
            serde_json::from_str(r#"{"equivalent_similarity": 0.9}"#).expect("partial settings");
        assert_eq!(s.equivalent_similarity, 0.9);
        assert_eq!(
            s.short_max_words,
            CompareSettings::default().short_max_words
        );
        assert!(serde_json::from_str::<CompareSettings>(r#"{"threshold": 0.9}"#).is_err());
        assert_eq!(Verdict::Better.as_str(), "better");
        assert_eq!(Method::Similarity.as_str(), "similarity");
        assert_eq!(
            serde_json::to_string(&Verdict::Equivalent).expect("json"),
            "\"equivalent\""
        );
    }
}

/// The comparison without an embedder (an engine that must not run: the exact path never
/// embeds), for the tests of the verdict modules.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use super::*;
    use crate::routing::embed::{Engine, WordPiece};

    /// An engine that must not run: the exact path never embeds.
    struct NoEngine;
    impl Engine for NoEngine {
        fn hidden_states(&self, _ids: &[u32]) -> Result<Vec<f32>, EmbedError> {
            Err(EmbedError::Inference(
                "the exact path must not embed".into(),
            ))
        }
    }

    pub(crate) fn no_embed() -> Embedder {
        Embedder::new(
            Arc::new(WordPiece::bundled().expect("bundled tokenizer")),
            Box::new(NoEngine),
        )
    }

    pub(crate) fn verdict(q: &str, routed: &str, reference: &str) -> Comparison {
        compare(
            q,
            routed,
            reference,
            &no_embed(),
            &CompareSettings::default(),
        )
        .unwrap_or_else(|e| panic!("{routed:?} vs {reference:?}: {e}"))
    }
}
