//! Managing keys (what `tierwise keys` does): create one — its text shown once — list them
//! without secrets, revoke one.

use crate::access::key::{Budget, KeyGenError, KeyLimits, KeyRecord, NewKey, generate};
use crate::access::store::KeyStore;
use crate::ledger::money::{Timestamp, Usd};
use crate::ledger::store::StoreError;
use crate::routing::decision::validate_tenant;

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateKeyError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Random(#[from] KeyGenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a new key is for.
#[derive(Debug, Clone, Default)]
pub struct KeyRequest {
    pub tenant: String,
    pub admin: bool,
    pub name: Option<String>,
    pub limits: KeyLimits,
}

impl KeyRequest {
    fn check(&self) -> Result<(), CreateKeyError> {
        validate_tenant(&self.tenant).map_err(|e| CreateKeyError::Invalid(e.to_string()))?;
        if let Some(Budget { usd, .. }) = self.limits.budget
            && usd <= Usd::ZERO
        {
            return Err(CreateKeyError::Invalid(
                "a budget must be above 0 USD".into(),
            ));
        }
        if self.limits.rpm == Some(0) {
            return Err(CreateKeyError::Invalid("--rpm must be at least 1".into()));
        }
        if self.limits.models.as_ref().is_some_and(Vec::is_empty)
            || self.limits.tiers.as_ref().is_some_and(Vec::is_empty)
        {
            return Err(CreateKeyError::Invalid(
                "an allowed list of models or tiers must name at least one".into(),
            ));
        }
        Ok(())
    }
}

/// Creates a key (a new random id if the first is taken) and returns it with its record: the
/// key's text exists only in the returned [`NewKey`].
pub async fn create_key<S: KeyStore>(
    store: &S,
    req: &KeyRequest,
    at: Timestamp,
) -> Result<(NewKey, KeyRecord), CreateKeyError> {
    req.check()?;
    for _ in 0..3 {
        let key = generate()?;
        let mut rec = KeyRecord::new(&key, &req.tenant, req.admin, req.limits.clone(), at.clone());
        rec.name = req.name.clone();
        if store.create(&rec).await? {
            return Ok((key, rec));
        }
    }
    Err(CreateKeyError::Invalid(
        "three random key ids were taken: the key store is not what it seems".into(),
    ))
}

/// One line per key, no secrets: id, tenant, state, admin flag and limits.
pub fn key_lines(keys: &[KeyRecord]) -> Vec<String> {
    keys.iter()
        .map(|k| {
            let mut parts = vec![
                k.key_id.clone(),
                format!("tenant={}", k.tenant),
                match &k.revoked {
                    Some(at) => format!("revoked={at}"),
                    None => "active".to_string(),
                },
                format!("created={}", k.created),
            ];
            if k.admin {
                parts.push("admin".into());
            }
            if let Some(b) = k.limits.budget {
                parts.push(format!("budget={}usd/{}", b.usd, b.period.as_str()));
            }
            if let Some(rpm) = k.limits.rpm {
                parts.push(format!("rpm={rpm}"));
            }
            if let Some(m) = &k.limits.models {
                parts.push(format!("models={}", m.join(",")));
            }
            if let Some(t) = &k.limits.tiers {
                let t: Vec<&str> = t.iter().map(|t| t.as_str()).collect();
                parts.push(format!("tiers={}", t.join(",")));
            }
            if let Some(n) = &k.name {
                parts.push(format!("name={n:?}"));
            }
            parts.join("  ")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::key::Period;
    use crate::access::store::MemoryKeyStore;

    #[tokio::test]
    async fn a_key_is_created_once_and_listed_without_its_secret() {
        let store = MemoryKeyStore::new();
        let req = KeyRequest {
            tenant: "acme".into(),
            limits: KeyLimits {
                budget: Some(Budget {
                    usd: Usd::from_f64(5.0),
                    period: Period::Month,
                }),
                rpm: Some(60),
                ..KeyLimits::default()
            },
            ..KeyRequest::default()
        };
        let (key, rec) = create_key(&store, &req, Timestamp::now()).await.unwrap();
        let lines = key_lines(&store.list().await.unwrap());
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with(&rec.key_id));
        assert!(lines[0].contains("tenant=acme") && lines[0].contains("budget=5usd/month"));
        assert!(!lines[0].contains(&key.text) && !lines[0].contains(&key.hash));
        for bad in [
            KeyRequest {
                tenant: "a b".into(),
                ..req.clone()
            },
            KeyRequest {
                limits: KeyLimits {
                    rpm: Some(0),
                    ..KeyLimits::default()
                },
                ..req.clone()
            },
            KeyRequest {
                limits: KeyLimits {
                    models: Some(vec![]),
                    ..KeyLimits::default()
                },
                ..req.clone()
            },
        ] {
            assert!(matches!(
                create_key(&store, &bad, Timestamp::now()).await,
                Err(CreateKeyError::Invalid(_))
            ));
        }
    }
}
