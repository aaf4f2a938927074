//! API keys: how they are made, shown once, recognised, and what a key may do.
//!
//! A key reads `tw-<key id>-<secret>`: the key id (12 hex digits) is public — it names the key
//! in `tierwise keys list`, logs and revocation — and the secret is 32 random bytes (64 hex
//! digits). Only the SHA-256 of the whole key is stored: a key with 256 bits of entropy needs
//! no slow hash, and a leaked table gives no usable key.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ledger::money::{Timestamp, Usd};
use crate::routing::pool::Tier;

/// Every key starts with this.
pub const KEY_PREFIX: &str = "tw-";
const KEY_ID_HEX: usize = 12;
const SECRET_BYTES: usize = 32;

/// The operating system could not give random bytes for a new key.
#[derive(Debug, thiserror::Error)]
#[error("no randomness for a new key: {0}")]
pub struct KeyGenError(String);

/// A key just made: the full text (shown once, never stored) and its stored form.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// `tw-<key id>-<secret>`: what the caller sends as `Authorization: Bearer ...`.
    pub text: String,
    pub key_id: String,
    /// SHA-256 of `text`, hex.
    pub hash: String,
}

/// Makes a new random key.
pub fn generate() -> Result<NewKey, KeyGenError> {
    let mut bytes = [0u8; KEY_ID_HEX / 2 + SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| KeyGenError(e.to_string()))?;
    let (id, secret) = bytes.split_at(KEY_ID_HEX / 2);
    let key_id = hex(id);
    let text = format!("{KEY_PREFIX}{key_id}-{}", hex(secret));
    let hash = hash_key(&text);
    Ok(NewKey { text, key_id, hash })
}

/// The key id of a presented key, when it has the shape of one.
pub fn key_id_of(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('-')?;
    let hexish = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hexish(id, KEY_ID_HEX) && hexish(secret, SECRET_BYTES * 2)).then_some(id)
}

/// SHA-256 of a key's text, hex: its stored form.
pub fn hash_key(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Whether `presented` is the key stored as `hash`; compares every byte (no early exit).
pub fn matches(presented: &str, hash: &str) -> bool {
    let a = hash_key(presented);
    a.len() == hash.len()
        && a.bytes()
            .zip(hash.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The period a budget is counted over (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Day,
    Month,
}

impl Period {
    /// The bucket `at` falls in: `2026-11-30` for a day, `2026-11` for a month.
    pub fn bucket(self, at: &Timestamp) -> String {
        let day = at.day();
        match self {
            Period::Day => day.to_string(),
            Period::Month => day.get(..7).unwrap_or(day).to_string(),
        }
    }

    /// Seconds a bucket's counter must be kept (a little over the period), for its TTL.
    pub fn keep_secs(self) -> i64 {
        match self {
            Period::Day => 2 * 86_400,
            Period::Month => 32 * 86_400,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }
}

impl std::str::FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(Period::Day),
            "month" => Ok(Period::Month),
            other => Err(format!("a budget period is day or month, not {other:?}")),
        }
    }
}

/// A spend limit: at most `usd` per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub usd: Usd,
    pub period: Period,
}

/// What a key may do beyond its tenant; `None` = no limit of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Pool model ids the key may be routed to or name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Tiers the key may be routed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<Tier>>,
}

/// A key as stored (no secret: the hash only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: String,
    pub tenant: String,
    /// SHA-256 of the key's text, hex.
    pub hash: String,
    pub created: Timestamp,
    /// When the key was revoked; a revoked key is refused like an unknown one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Timestamp>,
    /// Reads every tenant's reports.
    pub admin: bool,
    /// A label for people (`--name`), never used for access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub limits: KeyLimits,
}

impl KeyRecord {
    /// The record of a new key.
    pub fn new(key: &NewKey, tenant: &str, admin: bool, limits: KeyLimits, at: Timestamp) -> Self {
        KeyRecord {
            key_id: key.key_id.clone(),
            tenant: tenant.to_string(),
            hash: key.hash.clone(),
            created: at,
            revoked: None,
            admin,
            name: None,
            limits,
        }
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_recognised_and_stored_as_a_hash() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.text, b.text);
        assert_eq!(a.text.len(), KEY_PREFIX.len() + 12 + 1 + 64);
        assert_eq!(key_id_of(&a.text), Some(a.key_id.as_str()));
        assert!(matches(&a.text, &a.hash));
        assert!(!matches(&b.text, &a.hash));
        assert!(!a.hash.contains(&a.text[KEY_PREFIX.len() + 13..]));
        for bad in [
            "",
            "tw-",
            "sk-abc",
            "tw-0123456789ab",
            "tw-0123456789ab-xyz",
            "tw-zz3456789ab-00",
        ] {
            assert_eq!(key_id_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn budgets_count_in_utc_buckets() {
        let t = Timestamp::parse("2026-11-30T23:59:59.999Z").unwrap();
        assert_eq!(Period::Day.bucket(&t), "2026-11-30");
        assert_eq!(Period::Month.bucket(&t), "2026-11");
        assert_eq!("month".parse::<Period>(), Ok(Period::Month));
        assert!("week".parse::<Period>().is_err());
    }
}
