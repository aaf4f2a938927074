//! Why an export could not be read.

use std::io;
use std::path::{Path, PathBuf};

/// Why an export could not be read. Every message names the file (as a path under the folder
/// given) and, for problems in a line, its 1-based line number.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no manifest-summary.json under {dir}: expected {expected}")]
    NoManifest { dir: PathBuf, expected: PathBuf },
    #[error(
        "{dir} holds {} exports ({}): give one of them, e.g. {example}",
        .ids.len(),
        .ids.join(", ")
    )]
    SeveralExports {
        dir: PathBuf,
        ids: Vec<String>,
        example: PathBuf,
    },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: invalid manifest: {detail}")]
    ManifestSummary { path: PathBuf, detail: String },
    #[error("{path}:{line}: invalid manifest line: {detail}")]
    ManifestFiles {
        path: PathBuf,
        line: u64,
        detail: String,
    },
    #[error("{path}: unsupported export: {detail}")]
    Unsupported { path: PathBuf, detail: String },
    #[error("data file {path} is missing (listed in {manifest}:{line})")]
    MissingDataFile {
        path: PathBuf,
        manifest: PathBuf,
        line: u64,
    },
    #[error("{path}: not a valid gzip file: {source}")]
    Gzip { path: PathBuf, source: io::Error },
    #[error("{path}:{line}: line longer than 16 MiB")]
    LineTooLong { path: PathBuf, line: u64 },
    #[error("{path}:{line}: invalid JSON item: {detail}")]
    Json {
        path: PathBuf,
        line: u64,
        detail: String,
    },
    #[error("{path}:{line}: cost record has no attribute `{attr}`")]
    MissingAttribute {
        path: PathBuf,
        line: u64,
        attr: &'static str,
    },
    #[error("{path}:{line}: attribute `{attr}` is {found}, expected type {expected}")]
    WrongType {
        path: PathBuf,
        line: u64,
        attr: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("{path}:{line}: attribute `{attr}` = {value:?} is not {expected}")]
    InvalidValue {
        path: PathBuf,
        line: u64,
        attr: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{path}: {found} items, but the manifest says {expected}")]
    CountMismatch {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{path}: the data files hold {found} items in total, but it says {expected}")]
    TotalMismatch {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error(
        "{path}: md5 {found} differs from the manifest's {expected}: the file is not the one \
         exported (changed, or incompletely copied)"
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        found: String,
    },
}

/// An I/O error on `path`.
pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}
