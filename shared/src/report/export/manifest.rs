//! The export folder, its summary manifest and its list of data files: what to read and what
//! each file must hold (item count, md5).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::dynamo_json::json_detail;
use super::error::io_err;
use super::{EXPORT_TYPE, EXPORTS_FOLDER, ExportError, MANIFEST_SUMMARY, OUTPUT_FORMAT};

/// The export folder and its id.
pub(super) fn locate(dir: &Path) -> Result<(PathBuf, String), ExportError> {
    let meta = fs::metadata(dir).map_err(io_err(dir))?;
    if dir.join(MANIFEST_SUMMARY).is_file() {
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .or_else(|| {
                let abs = dir.canonicalize().ok()?;
                Some(abs.file_name()?.to_string_lossy().into_owned())
            })
            .unwrap_or_default();
        return Ok((dir.to_path_buf(), id));
    }
    let base = if dir.join(EXPORTS_FOLDER).is_dir() {
        Some(dir.join(EXPORTS_FOLDER))
    } else if meta.is_dir() && dir.file_name().is_some_and(|n| n == EXPORTS_FOLDER) {
        Some(dir.to_path_buf())
    } else {
        None
    };
    let no_manifest = |expected: PathBuf| ExportError::NoManifest {
        dir: dir.to_path_buf(),
        expected,
    };
    let Some(base) = base else {
        // An export folder without its summary (unfinished, or partly copied)?
        let looks_like_export = dir.join("_started").exists() || dir.join("data").is_dir();
        return Err(no_manifest(if looks_like_export {
            dir.join(MANIFEST_SUMMARY)
        } else {
            dir.join(EXPORTS_FOLDER)
                .join("<export-id>")
                .join(MANIFEST_SUMMARY)
        }));
    };
    let mut ids = Vec::new();
    for entry in fs::read_dir(&base).map_err(io_err(&base))? {
        let entry = entry.map_err(io_err(&base))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            ids.push(name);
        }
    }
    ids.sort();
    match ids.as_slice() {
        [] => Err(no_manifest(base.join("<export-id>").join(MANIFEST_SUMMARY))),
        [id] => {
            let export_dir = base.join(id);
            if export_dir.join(MANIFEST_SUMMARY).is_file() {
                Ok((export_dir, id.clone()))
            } else {
                Err(no_manifest(export_dir.join(MANIFEST_SUMMARY)))
            }
        }
        [first, ..] => Err(ExportError::SeveralExports {
            dir: dir.to_path_buf(),
            example: base.join(first),
            ids,
        }),
    }
}

#[derive(Deserialize)]
struct SummaryManifest {
    #[serde(rename = "itemCount")]
    pub(super) item_count: u64,
    #[serde(rename = "outputFormat", default)]
    output_format: Option<String>,
    #[serde(rename = "exportType", default)]
    export_type: Option<String>,
}

/// The summary's `itemCount`, after checking the export is one this reads.
pub(super) fn read_summary(path: &Path) -> Result<u64, ExportError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let summary: SummaryManifest =
        serde_json::from_str(&text).map_err(|e| ExportError::ManifestSummary {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    let unsupported = |detail: String| ExportError::Unsupported {
        path: path.to_path_buf(),
        detail,
    };
    if let Some(format) = summary.output_format.filter(|f| f != OUTPUT_FORMAT) {
        return Err(unsupported(format!(
            "outputFormat {format:?}, only {OUTPUT_FORMAT} is read"
        )));
    }
    if let Some(kind) = summary.export_type.filter(|k| k != EXPORT_TYPE) {
        return Err(unsupported(format!(
            "exportType {kind:?}, only {EXPORT_TYPE} is read"
        )));
    }
    Ok(summary.item_count)
}

#[derive(Deserialize)]
struct FileManifestLine {
    #[serde(rename = "itemCount")]
    pub(super) item_count: u64,
    #[serde(rename = "md5Checksum")]
    md5_checksum: String,
    #[serde(rename = "dataFileS3Key")]
    data_file_s3_key: String,
}

/// One data file of the manifest.
pub(super) struct DataFile {
    /// Local path (under the folder given).
    pub(super) path: PathBuf,
    /// Line of manifest-files.json listing it.
    pub(super) line: u64,
    pub(super) item_count: u64,
    /// Base64 md5 of the compressed file.
    pub(super) md5: String,
}

pub(super) fn read_manifest_files(
    path: &Path,
    export_dir: &Path,
) -> Result<Vec<DataFile>, ExportError> {
    let mut reader = BufReader::new(File::open(path).map_err(io_err(path))?);
    let mut files = Vec::new();
    let mut keys = HashSet::new();
    let mut text = String::new();
    let mut line = 0u64;
    loop {
        text.clear();
        if reader.read_line(&mut text).map_err(io_err(path))? == 0 {
            return Ok(files);
        }
        line += 1;
        if text.trim().is_empty() {
            continue;
        }
        let bad = |detail: String| ExportError::ManifestFiles {
            path: path.to_path_buf(),
            line,
            detail,
        };
        let entry: FileManifestLine =
            serde_json::from_str(&text).map_err(|e| bad(json_detail(&e)))?;
        if !is_base64_md5(&entry.md5_checksum) {
            return Err(bad(format!(
                "md5Checksum {:?} is not a base64 MD5",
                entry.md5_checksum
            )));
        }
        let rel = data_file_relative(&entry.data_file_s3_key).ok_or_else(|| {
            bad(format!(
                "dataFileS3Key {:?} is not <prefix>/{EXPORTS_FOLDER}/<export-id>/<file>",
                entry.data_file_s3_key
            ))
        })?;
        if !keys.insert(rel.clone()) {
            return Err(bad(format!(
                "dataFileS3Key {:?} is listed twice",
                entry.data_file_s3_key
            )));
        }
        files.push(DataFile {
            path: export_dir.join(rel),
            line,
            item_count: entry.item_count,
            md5: entry.md5_checksum,
        });
    }
}

/// The part of a data file's S3 key after `AWSDynamoDB/<export-id>/` (`data/<name>.json.gz`):
/// where it is under the export folder, wherever the prefix was copied. `None` if the key has
/// no such part, or a part that would leave the export folder.
pub(super) fn data_file_relative(key: &str) -> Option<PathBuf> {
    let marker = format!("{EXPORTS_FOLDER}/");
    let after = &key[key.rfind(&marker)? + marker.len()..];
    let (_export_id, rel) = after.split_once('/')?;
    let rel = PathBuf::from(rel);
    let normal = rel.components().all(|c| matches!(c, Component::Normal(_)));
    (normal && rel.components().next().is_some()).then_some(rel)
}

/// Standard base64 (with padding), as the manifest writes md5 checksums.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Whether `s` is the base64 form of a 16-byte md5 digest.
pub(super) fn is_base64_md5(s: &str) -> bool {
    s.len() == 24
        && s.ends_with("==")
        && s[..22]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests {
    use md5::{Digest, Md5};

    use super::*;

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(&Md5::digest(b"")), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert!(is_base64_md5("1B2M2Y8AsgTpgAmY7PhCfg=="));
        assert!(!is_base64_md5("1B2M2Y8AsgTpgAmY7PhCfg="));
        assert!(!is_base64_md5("d41d8cd98f00b204e9800998ecf8427e"));
    }

    #[test]
    fn data_keys_resolve_under_the_export_folder() {
        let rel = |k: &str| data_file_relative(k).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(
            rel("AWSDynamoDB/x/data/a.json.gz").as_deref(),
            Some("data/a.json.gz")
        );
        assert_eq!(
            rel("some/prefix/AWSDynamoDB/x/data/a.json.gz").as_deref(),
            Some("data/a.json.gz")
        );
        assert_eq!(rel("AWSDynamoDB/x/../../etc/passwd"), None);
        assert_eq!(rel("AWSDynamoDB/x/"), None);
        assert_eq!(rel("data/a.json.gz"), None);
    }
}
