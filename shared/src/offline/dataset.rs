//! Routing-benchmark data: one prompt per JSON line, with each candidate model's quality on it.
//!
//! A line looks like
//! `{"id": "q1", "prompt": "...", "task": "mmlu", "scores": {"small": 0.0, "large": 1.0},
//! "costs_usd": {"small": 0.0001, "large": 0.003}}`. `task` and `costs_usd` are optional,
//! unknown fields are ignored, and blank lines are skipped.
//!
//! The same reader takes labelled task rows (the everyday-asks sets in `models/data/`):
//! `{"id", "prompt" | "messages": [...], "kind": "translation", "tier": "tier1"}`, with
//! `scores` optional. A `messages` row is routed on the text the router takes from a
//! conversation ([`crate::routing::decision::routed_text_of`]), which becomes its `prompt`. Every score must be a finite number
//! in `[0, 1]` and every cost a finite, non-negative number; a line that breaks this is an error
//! naming the source, the 1-based line number and the model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::routing::decision::Message;
use crate::routing::pool::Tier;

/// One benchmark prompt with every evaluated model's quality score (and optionally its cost).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkRow {
    /// Identifier of the prompt, unique within the data set.
    pub id: String,
    /// The prompt text, as a user would send it.
    pub prompt: String,
    /// The task or source benchmark the prompt comes from (empty when absent).
    #[serde(default)]
    pub task: String,
    /// Quality of each model's answer, by model name, in `[0, 1]` (usually 0 or 1).
    pub scores: BTreeMap<String, f64>,
    /// Cost in US dollars of each model's answer, by model name (empty when absent).
    #[serde(default)]
    pub costs_usd: BTreeMap<String, f64>,
    /// The conversation, for rows given as `messages` (then `prompt` is its routed text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
    /// The row's task kind, for labelled task rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The tier the row's task kind needs, for labelled task rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
}

/// A line as written: `prompt` may be replaced by `messages`, `scores` by a `kind` label.
#[derive(Deserialize)]
struct RowFile {
    id: String,
    prompt: Option<String>,
    #[serde(default)]
    task: String,
    #[serde(default)]
    scores: BTreeMap<String, f64>,
    #[serde(default)]
    costs_usd: BTreeMap<String, f64>,
    #[serde(default)]
    messages: Option<Vec<Message>>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    tier: Option<Tier>,
}

impl BenchmarkRow {
    /// The quality score of `model` on this prompt, if that model was evaluated on it.
    pub fn score(&self, model: &str) -> Option<f64> {
        self.scores.get(model).copied()
    }
}

/// Why a benchmark file could not be loaded.
#[derive(Debug, Error)]
pub enum DatasetError {
    /// The file could not be read.
    #[error("cannot read benchmark file {}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A line is not valid JSON, or does not have the shape of a [`BenchmarkRow`].
    #[error("{source_name}:{line}: malformed benchmark row: {message}")]
    Parse {
        /// The file (or other source) the line comes from.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What the JSON parser objected to.
        message: String,
    },
    /// A line parses but holds an impossible value (such as a score outside `[0, 1]`).
    #[error("{source_name}:{line}: invalid benchmark row: {message}")]
    Invalid {
        /// The file (or other source) the line comes from.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the row.
        message: String,
    },
}

/// Reads and validates a JSON-lines benchmark file (see the [module docs](self)).
pub fn read_jsonl(path: &Path) -> Result<Vec<BenchmarkRow>, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_jsonl(&text, &path.display().to_string())
}

/// Parses and validates JSON-lines benchmark text; `source` names it in error messages.
///
/// Blank (or whitespace-only) lines are skipped; line numbers in errors count them, so they
/// match what an editor shows.
pub fn parse_jsonl(text: &str, source: &str) -> Result<Vec<BenchmarkRow>, DatasetError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let parse_err = |message: String| DatasetError::Parse {
            source_name: source.to_owned(),
            line,
            message,
        };
        let invalid = |message: String| DatasetError::Invalid {
            source_name: source.to_owned(),
            line,
            message,
        };
        let file: RowFile = serde_json::from_str(raw).map_err(|e| parse_err(e.to_string()))?;
        let prompt = match (&file.messages, file.prompt) {
            (Some(msgs), _) => {
                let texts: Vec<String> = msgs.iter().map(|m| m.content.text()).collect();
                crate::routing::decision::routed_text_of(
                    msgs.iter().map(|m| m.role.as_str()).zip(&texts),
                )
                .map_err(|e| invalid(e.to_string()))?
            }
            (None, Some(p)) => p,
            (None, None) => {
                return Err(parse_err("missing field `prompt` (or `messages`)".into()));
            }
        };
        let row = BenchmarkRow {
            id: file.id,
            prompt,
            task: file.task,
            scores: file.scores,
            costs_usd: file.costs_usd,
            messages: file.messages,
            kind: file.kind,
            tier: file.tier,
        };
        validate(&row).map_err(invalid)?;
        rows.push(row);
    }
    Ok(rows)
}

/// Checks the value ranges of a parsed row; the error is a human-readable description.
fn validate(row: &BenchmarkRow) -> Result<(), String> {
    for (model, &score) in &row.scores {
        if !score.is_finite() || !(0.0..=1.0).contains(&score) {
            return Err(format!(
                "score of model {model:?} on prompt {:?} is {score}, outside [0, 1]",
                row.id
            ));
        }
    }
    for (model, &cost) in &row.costs_usd {
        if !cost.is_finite() || cost < 0.0 {
            return Err(format!(
                "cost of model {model:?} on prompt {:?} is {cost}, not a finite non-negative USD amount",
                row.id
            ));
        }
    }
    Ok(())
}

/// A row that could not be featurised, named.
#[derive(Debug, thiserror::Error)]
#[error("featurising row {id}: {source}")]
pub struct RowFeatureError {
    pub id: String,
    #[source]
    pub source: crate::routing::embed::EmbedError,
}

/// The feature vectors of dataset rows (their routed text), on `threads` threads, in row order
/// (`tierwise features` and `tierwise train`).
pub fn featurize_rows(
    embedder: &crate::routing::embed::Embedder,
    rows: &[&BenchmarkRow],
    threads: usize,
) -> Result<Vec<Vec<f32>>, RowFeatureError> {
    crate::offline::parallel::try_map(rows, threads, |r| {
        crate::routing::features::featurize(embedder, &r.prompt).map_err(|source| RowFeatureError {
            id: r.id.clone(),
            source,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"id": "q1", "prompt": "What is 2+2?", "task": "math", "scores": {"small": 1.0, "large": 1.0}, "costs_usd": {"small": 0.0001, "large": 0.002}}
{"id": "q2", "prompt": "Prove Fermat's last theorem.", "task": "math", "scores": {"small": 0, "large": 0.5}, "costs_usd": {"small": 0.0003, "large": 0.01}}
"#;

    /// The error of `text`, which must be an invalid row at `line`.
    fn invalid_at(text: &str, source: &str, line: usize) -> DatasetError {
        let err = parse_jsonl(text, source).unwrap_err();
        assert!(
            matches!(&err, DatasetError::Invalid { line: l, .. } if *l == line),
            "{err:?}"
        );
        err
    }

    #[test]
    fn parses_a_good_file() {
        let rows = parse_jsonl(GOOD, "good.jsonl").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].id, "q1");
        assert_eq!(rows[0].prompt, "What is 2+2?");
        assert_eq!(rows[0].task, "math");
        assert_eq!(rows[0].score("small"), Some(1.0));
        assert_eq!(rows[1].score("small"), Some(0.0));
        assert_eq!(rows[1].score("large"), Some(0.5));
        assert_eq!(rows[1].score("missing"), None);
        assert_eq!(rows[1].costs_usd.get("large"), Some(&0.01));
    }

    #[test]
    fn reads_from_a_file_and_reports_a_missing_one() {
        let dir = std::env::temp_dir().join(format!("tierwise-dataset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bench.jsonl");
        std::fs::write(&path, GOOD).unwrap();
        let rows = read_jsonl(&path).unwrap();
        assert_eq!(rows.len(), 2);
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_dir(&dir).unwrap();

        let err = read_jsonl(&path).unwrap_err();
        assert!(matches!(err, DatasetError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("bench.jsonl"), "{err}");
    }

    #[test]
    fn skips_blank_lines_and_keeps_real_line_numbers() {
        let text = "\n   \n{\"id\": \"a\", \"prompt\": \"p\", \"scores\": {\"m\": 1}}\n\r\n\t\n\
                    {\"id\": \"b\", \"prompt\": \"q\", \"scores\": {\"m\": 0}}\r\n\n";
        let rows = parse_jsonl(text, "blank.jsonl").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].id, "b");
        assert!(parse_jsonl("", "empty").unwrap().is_empty());
        assert!(parse_jsonl("\n \n", "empty").unwrap().is_empty());
    }

    #[test]
    fn bad_json_line_reports_source_and_line_number() {
        // Line 1 good, line 2 blank, line 3 truncated JSON.
        let text = "{\"id\": \"a\", \"prompt\": \"p\", \"scores\": {\"m\": 1}}\n\n{\"id\": \"b\", \"prompt\"\n";
        let err = parse_jsonl(text, "bench.jsonl").unwrap_err();
        match &err {
            DatasetError::Parse {
                source_name, line, ..
            } => {
                assert_eq!(source_name, "bench.jsonl");
                assert_eq!(*line, 3);
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
        assert!(err.to_string().starts_with("bench.jsonl:3:"), "{err}");
    }

    #[test]
    fn missing_required_field_is_a_parse_error_saying_which() {
        let err = parse_jsonl("{\"id\": \"a\", \"scores\": {}}", "x").unwrap_err();
        assert!(
            matches!(err, DatasetError::Parse { line: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("prompt"), "{err}");
    }

    #[test]
    fn out_of_range_score_is_rejected_naming_model_and_line() {
        let text = "{\"id\": \"a\", \"prompt\": \"p\", \"scores\": {\"m\": 1}}\n\
                    {\"id\": \"b\", \"prompt\": \"p\", \"scores\": {\"ok\": 0.5, \"big-model\": 1.5}}\n";
        let err = invalid_at(text, "bench.jsonl", 2);
        let msg = err.to_string();
        assert!(msg.starts_with("bench.jsonl:2:"), "{msg}");
        assert!(msg.contains("big-model"), "{msg}");

        let negative = "{\"id\": \"a\", \"prompt\": \"p\", \"scores\": {\"m\": -0.1}}";
        invalid_at(negative, "n", 1);
    }

    #[test]
    fn negative_cost_is_rejected() {
        let text = "{\"id\": \"a\", \"prompt\": \"p\", \"scores\": {\"m\": 1}, \"costs_usd\": {\"m\": -1}}";
        let err = invalid_at(text, "c", 1);
        assert!(err.to_string().contains("\"m\""), "{err}");
    }

    #[test]
    fn missing_optional_fields_default_to_empty() {
        let rows = parse_jsonl(
            "{\"id\": \"a\", \"prompt\": \"p\", \"scores\": {\"m\": 0.25}, \"extra\": 7}",
            "x",
        )
        .unwrap();
        assert_eq!(rows[0].task, "");
        assert!(rows[0].costs_usd.is_empty());
        assert_eq!(rows[0].score("m"), Some(0.25));
    }

    #[test]
    fn rows_round_trip_through_json() {
        let rows = parse_jsonl(GOOD, "good").unwrap();
        let text: String = rows
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        assert_eq!(parse_jsonl(&text, "again").unwrap(), rows);
    }

    #[test]
    fn labelled_rows_with_messages_get_the_routed_text_as_prompt() {
        let text = r#"{"id": "a", "kind": "classification", "tier": "tier1", "messages": [{"role": "system", "content": "Label the ticket: billing, bug or other."}, {"role": "user", "content": "I was charged twice this month"}]}
{"id": "b", "kind": "math_proof", "tier": "tier3", "prompt": "Prove that sqrt(2) is irrational."}
"#;
        let rows = parse_jsonl(text, "asks").unwrap();
        assert_eq!(
            rows[0].prompt,
            "Label the ticket: billing, bug or other.\n\nI was charged twice this month"
        );
        assert_eq!(rows[0].kind.as_deref(), Some("classification"));
        assert_eq!(rows[0].tier, Some(Tier::Tier1));
        assert!(rows[0].scores.is_empty());
        assert_eq!(rows[1].tier, Some(Tier::Tier3));
        // A conversation without a user turn is an error naming the line.
        invalid_at(
            r#"{"id": "c", "messages": [{"role": "system", "content": "x"}]}"#,
            "asks",
            1,
        );
    }
}
