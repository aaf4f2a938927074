//! What a report covers: its parameters (`from`, `to`, `tenant`, `group_by`) as a caller gives
//! them, parsed and checked; every message names the parameter and is meant for the caller.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::routing::decision::validate_tenant;

/// The longest range a report covers, in days (inclusive of both ends).
pub const MAX_REPORT_DAYS: i64 = 366;

/// Errors of report parameters. The messages describe the parameter and are meant for the
/// caller (HTTP 400), never internals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// A missing or malformed parameter.
    #[error("{0}")]
    InvalidParam(String),
}

impl ReportError {
    /// HTTP status for the caller.
    pub fn status(&self) -> u16 {
        match self {
            ReportError::InvalidParam(_) => 400,
        }
    }
}

/// How the report's `groups` break the range down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One line per day of the range.
    Day,
    /// One line per tier.
    Tier,
    /// One line per model, most expensive first.
    Model,
}

impl GroupBy {
    /// All groupings.
    pub const ALL: [GroupBy; 3] = [GroupBy::Day, GroupBy::Tier, GroupBy::Model];

    /// The parameter value: `"day"`, `"tier"` or `"model"`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Tier => "tier",
            GroupBy::Model => "model",
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupBy {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GroupBy::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                ReportError::InvalidParam(format!(
                    "`group_by` must be one of {}, got {:?}",
                    GroupBy::ALL.map(GroupBy::as_str).join(", "),
                    shorten(s)
                ))
            })
    }
}

/// What a report covers: the days `from..=to` (UTC), one tenant or all, and an optional
/// breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportParams {
    pub from: Date,
    pub to: Date,
    /// Only this tenant's rows; all tenants when `None`.
    pub tenant: Option<String>,
    pub group_by: Option<GroupBy>,
}

impl ReportParams {
    /// Parses request parameters: `from` and `to` are required dates `YYYY-MM-DD` with
    /// `from <= to` and at most [`MAX_REPORT_DAYS`] days from one to the other inclusive;
    /// `tenant` must be a valid tenant name; `group_by` one of `day`, `tier`, `model`. An empty
    /// `tenant` or `group_by` counts as absent (as an HTML form sends it).
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        tenant: Option<&str>,
        group_by: Option<&str>,
    ) -> Result<ReportParams, ReportError> {
        Self::parse_within(from, to, tenant, group_by, Some(MAX_REPORT_DAYS))
    }

    /// As [`ReportParams::parse`] with no limit on the range: for reading an export, whose
    /// records are read once whatever the range (the limit bounds the reads of the table).
    pub fn parse_any_range(
        from: Option<&str>,
        to: Option<&str>,
        tenant: Option<&str>,
        group_by: Option<&str>,
    ) -> Result<ReportParams, ReportError> {
        Self::parse_within(from, to, tenant, group_by, None)
    }

    fn parse_within(
        from: Option<&str>,
        to: Option<&str>,
        tenant: Option<&str>,
        group_by: Option<&str>,
        max_days: Option<i64>,
    ) -> Result<ReportParams, ReportError> {
        let from = parse_date("from", from)?;
        let to = parse_date("to", to)?;
        if from > to {
            return Err(ReportError::InvalidParam(format!(
                "`from` ({}) is after `to` ({})",
                date_string(from),
                date_string(to)
            )));
        }
        let days = (to - from).whole_days() + 1;
        if let Some(limit) = max_days
            && days > limit
        {
            return Err(ReportError::InvalidParam(format!(
                "the range is {days} days; the limit is {limit}"
            )));
        }
        let tenant = match tenant.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => {
                validate_tenant(t).map_err(|e| ReportError::InvalidParam(e.to_string()))?;
                Some(t.to_string())
            }
            None => None,
        };
        let group_by = match group_by.map(str::trim).filter(|g| !g.is_empty()) {
            Some(g) => Some(g.parse()?),
            None => None,
        };
        Ok(ReportParams {
            from,
            to,
            tenant,
            group_by,
        })
    }

    /// The days of the range, `from` to `to` inclusive, in order (none if `from > to`).
    pub fn days(&self) -> impl Iterator<Item = Date> {
        let to = self.to;
        std::iter::successors(Some(self.from).filter(|d| *d <= to), move |d| {
            d.next_day().filter(|n| *n <= to)
        })
    }

    /// The days of the range as `YYYY-MM-DD`, in order (the rollups' `day` keys).
    pub fn day_strings(&self) -> Vec<String> {
        self.days().map(date_string).collect()
    }
}

pub(super) fn parse_date(name: &str, value: Option<&str>) -> Result<Date, ReportError> {
    let Some(raw) = value else {
        return Err(ReportError::InvalidParam(format!(
            "`{name}` is required: a date YYYY-MM-DD"
        )));
    };
    let s = raw.trim();
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let format = time::macros::format_description!("[year]-[month]-[day]");
    shaped
        .then(|| Date::parse(s, format).ok())
        .flatten()
        .ok_or_else(|| {
            ReportError::InvalidParam(format!(
                "`{name}` must be a date YYYY-MM-DD, got {:?}",
                shorten(raw)
            ))
        })
}

/// A caller's value as echoed in an error: at most 40 characters.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// `YYYY-MM-DD`.
pub(super) fn date_string(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}
