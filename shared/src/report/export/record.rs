//! A cost record out of an export item: every contract attribute present with its type, each
//! error naming the file, line and attribute.

use std::borrow::Cow;
use std::path::Path;

use super::ExportError;
use super::dynamo_json::{Attr, Item, json_detail};
use crate::ledger::money::{Timestamp, Usd};
use crate::ledger::records::item::attr;
use crate::ledger::records::{CostRecord, RECORD_COST, RecordStatus};
use crate::routing::pool::Tier;

/// A line of a data file, for errors.
pub(super) struct Loc<'p> {
    pub(super) path: &'p Path,
    pub(super) line: u64,
}

impl<'p> Loc<'p> {
    pub(super) fn json(&self, e: &serde_json::Error) -> ExportError {
        ExportError::Json {
            path: self.path.to_path_buf(),
            line: self.line,
            detail: json_detail(e),
        }
    }

    fn missing(&self, attr: &'static str) -> ExportError {
        ExportError::MissingAttribute {
            path: self.path.to_path_buf(),
            line: self.line,
            attr,
        }
    }

    fn wrong_type(&self, attr: &'static str, expected: &'static str, v: &Attr) -> ExportError {
        ExportError::WrongType {
            path: self.path.to_path_buf(),
            line: self.line,
            attr,
            expected,
            found: v.describe(),
        }
    }

    fn invalid(&self, attr: &'static str, value: &str, expected: &'static str) -> ExportError {
        ExportError::InvalidValue {
            path: self.path.to_path_buf(),
            line: self.line,
            attr,
            value: value.to_owned(),
            expected,
        }
    }

    fn text<'a>(&self, attr: &'static str, v: Attr<'a>) -> Result<Cow<'a, str>, ExportError> {
        match v {
            Attr::S(s) => Ok(s),
            other => Err(self.wrong_type(attr, "S", &other)),
        }
    }

    fn string(&self, attr: &'static str, v: Attr) -> Result<String, ExportError> {
        self.text(attr, v).map(Cow::into_owned)
    }

    fn number<'a>(&self, attr: &'static str, v: Attr<'a>) -> Result<Cow<'a, str>, ExportError> {
        match v {
            Attr::N(n) => Ok(n),
            other => Err(self.wrong_type(attr, "N", &other)),
        }
    }

    fn boolean(&self, attr: &'static str, v: Attr) -> Result<bool, ExportError> {
        match v {
            Attr::Bool(b) => Ok(b),
            other => Err(self.wrong_type(attr, "BOOL", &other)),
        }
    }

    fn count(&self, attr: &'static str, v: Attr) -> Result<u64, ExportError> {
        let n = self.number(attr, v)?;
        n.trim()
            .parse()
            .map_err(|_| self.invalid(attr, &n, "a non-negative integer"))
    }

    fn float(&self, attr: &'static str, v: Attr) -> Result<f64, ExportError> {
        let n = self.number(attr, v)?;
        n.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| self.invalid(attr, &n, "a finite number"))
    }

    fn usd(&self, attr: &'static str, v: Attr) -> Result<Usd, ExportError> {
        let n = self.number(attr, v)?;
        Usd::parse_decimal(&n)
            .ok_or_else(|| self.invalid(attr, &n, "a decimal amount with at most 9 decimals"))
    }

    fn timestamp(&self, attr: &'static str, v: Attr) -> Result<Timestamp, ExportError> {
        let t = self.text(attr, v)?;
        Timestamp::parse(&t).ok_or_else(|| self.invalid(attr, &t, "an RFC 3339 timestamp"))
    }

    fn decided_by(
        &self,
        attr: &'static str,
        v: Attr,
    ) -> Result<crate::routing::decision::DecidedBy, ExportError> {
        let t = self.text(attr, v)?;
        t.parse().map_err(|_| {
            self.invalid(
                attr,
                &t,
                "a decision source (rule:<name>, classifier, passthrough)",
            )
        })
    }

    fn tier(&self, attr: &'static str, v: Attr) -> Result<Tier, ExportError> {
        let t = self.text(attr, v)?;
        t.parse()
            .map_err(|_| self.invalid(attr, &t, "a tier (tier1, tier2, tier3)"))
    }

    fn status(&self, attr: &'static str, v: Attr) -> Result<RecordStatus, ExportError> {
        let t = self.text(attr, v)?;
        RecordStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == t)
            .ok_or_else(|| {
                self.invalid(
                    attr,
                    &t,
                    "a status (routed, ok, upstream_error, rejected, deadline_cut)",
                )
            })
    }

    /// The cost record of an item whose `record` is `cost`: every contract attribute present
    /// with its type (`task_kind` and `upstream_ms` optional).
    pub(super) fn cost_record(&self, item: Item) -> Result<CostRecord, ExportError> {
        let mut f = Fields { at: self, item };
        Ok(CostRecord {
            record: RECORD_COST.to_string(),
            query_id: f.required(attr::QUERY_ID, Loc::string)?,
            ts: f.required(attr::TS, Loc::timestamp)?,
            tenant: f.required(attr::TENANT, Loc::string)?,
            model: f.required(attr::MODEL, Loc::string)?,
            tier: f.required(attr::TIER, Loc::tier)?,
            predicted_tier: f.required(attr::PREDICTED_TIER, Loc::tier)?,
            confidence: f.required(attr::CONFIDENCE, Loc::float)?,
            escalated: f.required(attr::ESCALATED, Loc::boolean)?,
            decided_by: f.required(attr::DECIDED_BY, Loc::decided_by)?,
            task_kind: f.optional(attr::TASK_KIND, Loc::string)?,
            input_tokens: f.required(attr::INPUT_TOKENS, Loc::count)?,
            output_tokens: f.required(attr::OUTPUT_TOKENS, Loc::count)?,
            tokens_estimated: f.required(attr::TOKENS_ESTIMATED, Loc::boolean)?,
            cost_usd: f.required(attr::COST_USD, Loc::usd)?,
            baseline_model: f.required(attr::BASELINE_MODEL, Loc::string)?,
            baseline_cost_usd: f.required(attr::BASELINE_COST_USD, Loc::usd)?,
            router_ms: f.required(attr::ROUTER_MS, Loc::float)?,
            upstream_ms: f.optional(attr::UPSTREAM_MS, Loc::float)?,
            status: f.required(attr::STATUS, Loc::status)?,
            shadow: f.required(attr::SHADOW, Loc::boolean)?,
            pricing_version: f.required(attr::PRICING_VERSION, Loc::string)?,
            router_version: f.required(attr::ROUTER_VERSION, Loc::string)?,
            // The attempts of proxied calls are not needed for reports.
            upstream: None,
        })
    }
}

/// An item's attributes being read, each taken out once.
struct Fields<'l, 'p, 'a> {
    at: &'l Loc<'p>,
    item: Item<'a>,
}

/// Reads an attribute value as a field.
type Read<'p, 'a, T> = fn(&Loc<'p>, &'static str, Attr<'a>) -> Result<T, ExportError>;

impl<'p, 'a> Fields<'_, 'p, 'a> {
    fn required<T>(&mut self, attr: &'static str, read: Read<'p, 'a, T>) -> Result<T, ExportError> {
        let v = self.item.take(attr).ok_or_else(|| self.at.missing(attr))?;
        read(self.at, attr, v)
    }

    fn optional<T>(
        &mut self,
        attr: &'static str,
        read: Read<'p, 'a, T>,
    ) -> Result<Option<T>, ExportError> {
        self.item
            .take(attr)
            .map(|v| read(self.at, attr, v))
            .transpose()
    }
}
