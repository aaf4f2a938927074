//! Numbers in answers: parsing every usual format ([`parse_number`]), numeric equality with
//! percentages ([`numbers_equal`]), and the numbers of free text.

use super::normalize::normalize_words;

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
pub(super) fn text_numbers(text: &str) -> Vec<Num> {
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
pub(super) fn numbers_agree(a: &[Num], b: &[Num], tol: f64) -> bool {
    if a.is_empty() || b.is_empty() {
        return true;
    }
    let (few, many) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    few.iter()
        .all(|x| many.iter().any(|y| numbers_equal(*x, *y, tol)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
