//! Short answers: classified ([`classify_short`]) as a choice letter, yes/no, a number with
//! its unit, or a label, and compared with each other or with a free-text answer.

use super::facts::Facts;
use super::normalize::{has_negation, normalize, normalize_words, strip_markup};
use super::numbers::{Num, numbers_equal, parse_number};
use super::{CompareSettings, Comparison, Verdict};

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

/// Classifies a short answer (see the [verdict module docs](super)).
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

pub(super) fn compare_short(
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
pub(super) fn short_against_long(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::verdict::Method;
    use crate::shadow::verdict::test_support::verdict;

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
        for (q, routed, reference, detail) in [
            (
                "What is 17 * 23?",
                "17 * 20 = 340 and 17 * 3 = 51, so 340 + 51 = 391 in total here.",
                "391",
                "final_number_match",
            ),
            (
                "Capital of Australia?",
                "The capital of Australia is Canberra, a planned city.",
                "Canberra",
                "label_in_answer",
            ),
        ] {
            let c = verdict(q, routed, reference);
            assert_eq!((c.verdict, c.detail), (Verdict::Equivalent, detail));
        }
    }
}
