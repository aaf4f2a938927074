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

use serde::{Deserialize, Serialize};

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

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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

fn similarity_path(
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

// ---------------------------------------------------------------------------------------------
// Refusals

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

// ---------------------------------------------------------------------------------------------
// Normalisation

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
fn matching_brace(s: &str, start: usize) -> Option<usize> {
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

const NEGATIONS: &[&str] = &[
    "not", "no", "never", "cannot", "none", "nobody", "nothing", "neither", "nor", "dont",
    "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "cant", "couldnt", "wont", "wouldnt",
    "shouldnt", "hasnt", "havent", "hadnt", "aint", "mustnt", "neednt",
];

fn has_negation(words: &[String]) -> bool {
    words.iter().any(|w| NEGATIONS.contains(&w.as_str()))
}

/// Function words, left out when counting content and reading negation scopes.
const STOPWORDS: &[&str] = &[
    "is", "are", "was", "were", "be", "been", "being", "to", "of", "in", "on", "and", "or", "it",
    "its", "that", "this", "with", "for", "by", "as", "at", "from", "so", "which", "do", "does",
    "did", "have", "has", "had", "can", "will", "would", "should", "could", "very", "really",
    "just", "there", "their", "they", "you", "your", "we", "our", "i", "my", "me",
];

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
fn incomplete(question: &str, r: &Facts, f: &Facts, settings: &CompareSettings) -> bool {
    let q = normalize_words(question);
    let short = |mine: usize, theirs: usize| {
        theirs >= 4 && (mine as f64) < settings.min_length_ratio * theirs as f64
    };
    short(content_words(&r.words, &q), content_words(&f.words, &q))
        && short(content_words(&r.words, &[]), content_words(&f.words, &[]))
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// A number in an answer; `percent` when written with `%` or "percent".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num {
    pub value: f64,
    pub percent: bool,
}

const NUMBER_WORDS: &[(&str, f64)] = &[
    ("zero", 0.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("thirteen", 13.0),
    ("fourteen", 14.0),
    ("fifteen", 15.0),
    ("sixteen", 16.0),
    ("seventeen", 17.0),
    ("eighteen", 18.0),
    ("nineteen", 19.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("forty", 40.0),
    ("fifty", 50.0),
    ("sixty", 60.0),
    ("seventy", 70.0),
    ("eighty", 80.0),
    ("ninety", 90.0),
    ("hundred", 100.0),
];

/// Parses one normalised token as a number: digits with thousands commas, decimals, a sign,
/// exponent, `a/b`, a trailing `%`; with `words`, also the number words zero..twenty, the tens
/// and "hundred".
pub fn parse_number(token: &str, words: bool) -> Option<Num> {
    let (t, percent) = match token.strip_suffix('%') {
        Some(t) => (t, true),
        None => (token, false),
    };
    let starts_numeric = t
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '.');
    if starts_numeric {
        let t = t.replace(',', "");
        let value = match t.split_once('/') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<f64>().ok()?, b.parse::<f64>().ok()?);
                if b == 0.0 {
                    return None;
                }
                a / b
            }
            None => t.parse::<f64>().ok()?,
        };
        return value.is_finite().then_some(Num { value, percent });
    }
    if words && !percent {
        return NUMBER_WORDS
            .iter()
            .find(|(w, _)| *w == t)
            .map(|&(_, value)| Num {
                value,
                percent: false,
            });
    }
    None
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()) + 1e-12
}

/// Numeric equality; a percentage equals a bare number equal to it or to its fraction.
pub fn numbers_equal(a: Num, b: Num, tol: f64) -> bool {
    if a.percent == b.percent {
        return close(a.value, b.value, tol);
    }
    let (p, x) = if a.percent { (a, b) } else { (b, a) };
    close(p.value, x.value, tol) || close(p.value / 100.0, x.value, tol)
}

/// Numbers of free text (digits only: "one" is a pronoun too often), list markers excluded.
fn text_numbers(text: &str) -> Vec<Num> {
    let mut out = Vec::new();
    for line in text.lines() {
        let words = normalize_words(line);
        let marker = line.split_whitespace().next().is_some_and(|w| {
            (w.ends_with('.') || w.ends_with(')'))
                && w[..w.len() - 1].chars().all(|c| c.is_ascii_digit())
        });
        for (i, w) in words.iter().enumerate() {
            if i == 0 && marker {
                continue;
            }
            if let Some(n) = parse_number(w, false) {
                out.push(n);
            }
        }
    }
    out
}

/// The side with fewer distinct numbers must find each of them in the other side.
fn numbers_agree(a: &[Num], b: &[Num], tol: f64) -> bool {
    if a.is_empty() || b.is_empty() {
        return true;
    }
    let (few, many) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    few.iter()
        .all(|x| many.iter().any(|y| numbers_equal(*x, *y, tol)))
}

// ---------------------------------------------------------------------------------------------
// Short answers

/// A short answer, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Short {
    /// A multiple-choice letter (uppercase), with the option text when one was written.
    Choice { letter: char, text: Option<String> },
    /// Yes/true/correct or no/false/incorrect.
    YesNo(bool),
    /// A number, with its unit words (normalised, singular) when any.
    Number { num: Num, unit: String },
    /// Anything else: the normalised text.
    Label(String),
}

/// Classifies a short answer (see the module docs).
pub fn classify_short(text: &str, options: &[(char, String)]) -> Short {
    let raw = strip_markup(text);
    let raw = raw.trim();
    if let Some((letter, rest)) = choice_letter(raw, !options.is_empty()) {
        let rest = normalize(rest);
        return Short::Choice {
            letter,
            text: (!rest.is_empty()).then_some(rest),
        };
    }
    let words = normalize_words(raw);
    match words.first().map(String::as_str) {
        Some("yes" | "true" | "correct") => return Short::YesNo(true),
        Some("no" | "false" | "incorrect") => return Short::YesNo(false),
        _ => {}
    }
    if let Some((num, unit)) = short_number(&words) {
        return Short::Number { num, unit };
    }
    Short::Label(words.join(" "))
}

/// `B`, `(B)`, `(b)`, `B)`, `B:`, `B. text` (the last only when the question lists options),
/// `Option B`, `Choice (C)`.
fn choice_letter(raw: &str, has_options: bool) -> Option<(char, &str)> {
    let mut s = raw;
    for prefix in ["option ", "choice ", "Option ", "Choice ", "OPTION "] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.trim_start();
        }
    }
    let chars: Vec<char> = s.chars().take(4).collect();
    let is_letter = |c: char| ('A'..='J').contains(&c);
    match chars.as_slice() {
        ['(', c, ')', ..] if is_letter(c.to_ascii_uppercase()) => {
            Some((c.to_ascii_uppercase(), s[3..].trim()))
        }
        [c] if is_letter(*c) => Some((*c, "")),
        [c, p, ..] if is_letter(*c) && matches!(p, ')' | ':') => Some((*c, s[2..].trim())),
        [c, '.'] if is_letter(*c) => Some((*c, "")),
        [c, '.', ' ', ..] if is_letter(*c) && has_options => Some((*c, s[3..].trim())),
        _ => None,
    }
}

const FILLERS: &[&str] = &[
    "about",
    "approximately",
    "approx",
    "around",
    "roughly",
    "exactly",
    "nearly",
    "almost",
    "just",
    "only",
    "total",
    "is",
    "equals",
];

/// A short answer that is one number, maybe after a one-letter variable (`x = 5`) or fillers
/// ("about"), maybe followed by unit words.
fn short_number(words: &[String]) -> Option<(Num, String)> {
    let mut i = 0;
    while i < words.len() && FILLERS.contains(&words[i].as_str()) {
        i += 1;
    }
    if words.len() > i + 1 && words[i].len() == 1 && words[i].chars().all(char::is_alphabetic) {
        i += 1;
    }
    let mut num = parse_number(words.get(i)?, true)?;
    let unit_words = &words[i + 1..];
    if !unit_words
        .iter()
        .all(|w| w.chars().all(char::is_alphabetic))
    {
        return None;
    }
    let mut unit: Vec<String> = unit_words
        .iter()
        .map(|w| w.strip_suffix('s').unwrap_or(w.as_str()).to_string())
        .collect();
    if unit.first().is_some_and(|u| u == "percent") {
        num.percent = true;
        unit.remove(0);
    }
    Some((num, unit.join(" ")))
}

/// Options listed in the question: `(A) text`, or `A) text` / `A. text` at line starts, in
/// order from A.
pub fn question_options(question: &str) -> Vec<(char, String)> {
    let mut marks: Vec<(char, usize, usize)> = Vec::new(); // letter, marker start, text start
    let bytes = question.as_bytes();
    let mut expect = b'A';
    let mut i = 0;
    while i + 1 < bytes.len() && expect <= b'J' {
        let paren = bytes[i] == b'('
            && bytes[i + 1].to_ascii_uppercase() == expect
            && bytes.get(i + 2) == Some(&b')');
        let bare = bytes[i] == expect
            && matches!(bytes[i + 1], b')' | b'.')
            && bytes.get(i + 2) == Some(&b' ')
            && bytes[..i]
                .iter()
                .rev()
                .find(|b| **b != b' ' && **b != b'\t')
                .is_none_or(|b| *b == b'\n');
        if paren {
            marks.push((expect as char, i, i + 3));
            expect += 1;
            i += 3;
        } else if bare {
            marks.push((expect as char, i, i + 2));
            expect += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    if marks.len() < 2 {
        return Vec::new();
    }
    marks
        .iter()
        .enumerate()
        .map(|(k, &(letter, _, start))| {
            let end = marks.get(k + 1).map_or(question.len(), |m| m.1);
            let text = &question[start..end];
            let text = text.lines().next().unwrap_or("");
            (letter, normalize(text))
        })
        .collect()
}

fn option_text(options: &[(char, String)], letter: char) -> Option<&str> {
    options
        .iter()
        .find(|(l, _)| *l == letter)
        .map(|(_, t)| t.as_str())
}

/// Label equality: same text, same set of words, or one contained in the other (whole words)
/// with the same negation.
fn labels_match(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let wa: Vec<String> = a.split_whitespace().map(str::to_string).collect();
    let wb: Vec<String> = b.split_whitespace().map(str::to_string).collect();
    if wa.is_empty() || wb.is_empty() {
        return false;
    }
    let mut sa = wa.clone();
    let mut sb = wb.clone();
    sa.sort();
    sa.dedup();
    sb.sort();
    sb.dedup();
    if sa == sb {
        return true;
    }
    if has_negation(&wa) != has_negation(&wb) {
        return false;
    }
    let (short, long) = if wa.len() <= wb.len() {
        (&wa, &wb)
    } else {
        (&wb, &wa)
    };
    contains_words(long, short)
}

fn contains_words(long: &[String], short: &[String]) -> bool {
    !short.is_empty() && long.windows(short.len()).any(|w| w == short)
}

fn compare_short(
    a: &Short,
    b: &Short,
    options: &[(char, String)],
    settings: &CompareSettings,
) -> Comparison {
    use Short::*;
    let tol = settings.number_tolerance;
    match (a, b) {
        (Choice { letter: x, .. }, Choice { letter: y, .. }) => {
            Comparison::matched(x == y, "choice_match", "choice_mismatch")
        }
        (Choice { letter, text }, other) | (other, Choice { letter, text }) => {
            let label = match other {
                Label(l) => l.clone(),
                Number { .. } | YesNo(_) => short_text(other),
                Choice { .. } => String::new(),
            };
            let option = option_text(options, *letter).map(str::to_string);
            match option.or_else(|| text.clone()) {
                Some(t) => {
                    Comparison::matched(labels_match(&t, &label), "choice_match", "choice_mismatch")
                }
                None => Comparison::exact(Verdict::Worse, "choice_vs_text"),
            }
        }
        (YesNo(x), YesNo(y)) => Comparison::matched(x == y, "yes_no_match", "yes_no_mismatch"),
        (Number { num: x, unit: ux }, Number { num: y, unit: uy }) => {
            if !numbers_equal(*x, *y, tol) {
                Comparison::exact(Verdict::Worse, "number_mismatch")
            } else if !ux.is_empty() && !uy.is_empty() && !labels_match(ux, uy) {
                Comparison::exact(Verdict::Worse, "unit_mismatch")
            } else {
                Comparison::exact(Verdict::Equivalent, "number_match")
            }
        }
        (Number { num, .. }, Label(l)) | (Label(l), Number { num, .. }) => {
            match l
                .split_whitespace()
                .rev()
                .find_map(|w| parse_number(w, false))
            {
                Some(n) => Comparison::matched(
                    numbers_equal(*num, n, tol),
                    "number_match",
                    "number_mismatch",
                ),
                None => Comparison::exact(Verdict::Worse, "kind_mismatch"),
            }
        }
        (Label(x), Label(y)) => {
            Comparison::matched(labels_match(x, y), "label_match", "label_mismatch")
        }
        _ => Comparison::exact(Verdict::Worse, "kind_mismatch"),
    }
}

fn short_text(s: &Short) -> String {
    match s {
        Short::Choice { letter, .. } => letter.to_string(),
        Short::YesNo(b) => if *b { "yes" } else { "no" }.to_string(),
        Short::Number { num, unit } => format!("{} {unit}", num.value).trim().to_string(),
        Short::Label(l) => l.clone(),
    }
}

/// A short answer on one side, free text on the other.
fn short_against_long(
    short: &Short,
    long: &Facts,
    options: &[(char, String)],
    settings: &CompareSettings,
) -> Option<Comparison> {
    match short {
        Short::Number { num, .. } => Some(match long.numbers.last() {
            Some(last) => Comparison::matched(
                numbers_equal(*num, *last, settings.number_tolerance),
                "final_number_match",
                "final_number_mismatch",
            ),
            None => Comparison::exact(Verdict::Worse, "number_missing"),
        }),
        Short::YesNo(b) => long
            .leading_yes_no
            .map(|l| Comparison::matched(l == *b, "yes_no_match", "yes_no_mismatch")),
        Short::Choice { letter, .. } => {
            if !long.letters.is_empty() {
                let only = long.letters.len() == 1 && long.letters[0] == *letter;
                return Some(Comparison::matched(only, "choice_match", "choice_mismatch"));
            }
            let option = option_text(options, *letter)?;
            label_in_long(option, long)
        }
        Short::Label(l) => label_in_long(l, long),
    }
}

/// A short label found (whole words) in a free-text answer that has no negation.
fn label_in_long(label: &str, long: &Facts) -> Option<Comparison> {
    let words: Vec<String> = label.split_whitespace().map(str::to_string).collect();
    if words.is_empty() || has_negation(&words) || long.negated {
        return None;
    }
    contains_words(&long.words, &words)
        .then(|| Comparison::exact(Verdict::Equivalent, "label_in_answer"))
}

/// What the comparison needs of one answer.
struct Facts {
    short: Option<Short>,
    words: Vec<String>,
    numbers: Vec<Num>,
    negated: bool,
    leading_yes_no: Option<bool>,
    /// Choice letters the text names (`(B)`, `option B`, `B)`).
    letters: Vec<char>,
}

impl Facts {
    fn of(text: &str, options: &[(char, String)], settings: &CompareSettings) -> Self {
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

// ---------------------------------------------------------------------------------------------
// Judge

/// The judge: which model, which prompt, how long an answer.
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

    fn no_embed() -> Embedder {
        Embedder::new(
            Arc::new(WordPiece::bundled().expect("bundled tokenizer")),
            Box::new(NoEngine),
        )
    }

    fn verdict(q: &str, routed: &str, reference: &str) -> Comparison {
        compare(
            q,
            routed,
            reference,
            &no_embed(),
            &CompareSettings::default(),
        )
        .unwrap_or_else(|e| panic!("{routed:?} vs {reference:?}: {e}"))
    }

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

    #[test]
    fn numbers_parse_in_every_format_and_compare_numerically() {
        let n = |s: &str| parse_number(s, true).expect(s).value;
        assert_eq!(n("1,000"), 1000.0);
        assert_eq!(n("1000.0"), 1000.0);
        assert_eq!(n("1e3"), 1000.0);
        assert_eq!(n("-2.5"), -2.5);
        assert_eq!(n("3/4"), 0.75);
        assert_eq!(n("seven"), 7.0);
        assert!(parse_number("50%", false).expect("50%").percent);
        assert_eq!(parse_number("seven", false), None);
        assert_eq!(parse_number("1/0", true), None);
        assert_eq!(parse_number("inf", true), None);
        let tol = 1e-6;
        let pct = Num {
            value: 50.0,
            percent: true,
        };
        let plain = |v| Num {
            value: v,
            percent: false,
        };
        assert!(numbers_equal(pct, plain(0.5), tol));
        assert!(numbers_equal(pct, plain(50.0), tol));
        assert!(!numbers_equal(pct, plain(5.0), tol));
        assert!(!numbers_equal(plain(1.25), plain(1.2501), tol));
    }

    #[test]
    fn short_numbers_in_different_formats_are_equivalent() {
        for (a, b) in [
            ("1,000", "1000"),
            ("1000.0", "1,000"),
            ("The answer is 42.", "42"),
            ("$1,200", "1200 dollars"),
            ("x = 5", "5"),
            ("\\boxed{\\frac{1}{2}}", "0.5"),
            ("seven", "7"),
            ("50%", "0.5"),
        ] {
            let c = verdict("How many?", a, b);
            assert_eq!(c.verdict, Verdict::Equivalent, "{a:?} vs {b:?}: {c:?}");
            assert_eq!(c.method, Method::Exact);
        }
        let c = verdict("How many?", "41", "42");
        assert_eq!((c.verdict, c.detail), (Verdict::Worse, "number_mismatch"));
        let c = verdict("How far?", "5 km", "5 miles");
        assert_eq!((c.verdict, c.detail), (Verdict::Worse, "unit_mismatch"));
    }

    #[test]
    fn choices_match_by_letter_or_option_text() {
        let q = "Capital of France?\n(A) Lyon\n(B) Paris\n(C) Nice";
        for a in [
            "B",
            "(B)",
            "B)",
            "Answer: B",
            "(b)",
            "B. Paris",
            "Option B",
            "Paris",
        ] {
            let c = verdict(q, a, "(B) Paris");
            assert_eq!(c.verdict, Verdict::Equivalent, "{a:?}: {c:?}");
        }
        for a in ["A", "(C)", "Lyon", "Answer: C"] {
            let c = verdict(q, a, "B");
            assert_eq!(c.verdict, Verdict::Worse, "{a:?}: {c:?}");
        }
        assert_eq!(
            question_options("Pick one: (A) red (B) green (C) blue"),
            vec![
                ('A', "red".to_string()),
                ('B', "green".to_string()),
                ('C', "blue".to_string())
            ]
        );
        assert!(question_options("What is (A) alone?").is_empty());
    }

    #[test]
    fn yes_no_and_labels() {
        assert_eq!(
            verdict("Is it?", "Yes.", "yes").verdict,
            Verdict::Equivalent
        );
        assert_eq!(
            verdict("Is it?", "True", "Yes").verdict,
            Verdict::Equivalent
        );
        assert_eq!(verdict("Is it?", "No", "Yes").verdict, Verdict::Worse);
        assert_eq!(
            verdict("Sentiment?", "**Positive**", "positive").verdict,
            Verdict::Equivalent
        );
        assert_eq!(
            verdict("Sentiment?", "negative", "positive").detail,
            "label_mismatch"
        );
        assert_eq!(
            verdict("Capital?", "Paris, France", "Paris").verdict,
            Verdict::Equivalent
        );
        assert_eq!(
            verdict("Sentiment?", "not positive", "positive").verdict,
            Verdict::Worse
        );
        assert_eq!(
            verdict("Colours?", "blue and red", "red and blue").verdict,
            Verdict::Equivalent
        );
    }

    #[test]
    fn short_against_long_uses_the_final_number_or_the_label() {
        let c = verdict(
            "What is 17 * 23?",
            "17 * 20 = 340 and 17 * 3 = 51, so 340 + 51 = 391 in total here.",
            "391",
        );
        assert_eq!(
            (c.verdict, c.detail),
            (Verdict::Equivalent, "final_number_match")
        );
        let c = verdict(
            "Capital of Australia?",
            "The capital of Australia is Canberra, a planned city.",
            "Canberra",
        );
        assert_eq!(
            (c.verdict, c.detail),
            (Verdict::Equivalent, "label_in_answer")
        );
    }

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
