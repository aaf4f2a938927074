//! CloudWatch Embedded Metric Format (EMF): metrics written as one JSON log line, which
//! CloudWatch Logs turns into metrics without a `PutMetricData` call on the request path.

use serde_json::{Map, Value, json};

/// EMF metric units used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    /// Plain numbers (dollars).
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// One EMF log line: dimension values and metric values as top-level members, and one
/// directive per group of metrics sharing dimension sets.
#[derive(Debug, Clone)]
pub struct Emf {
    namespace: String,
    timestamp_ms: i64,
    members: Map<String, Value>,
    directives: Vec<Value>,
}

impl Emf {
    /// A line in `namespace` at `timestamp_ms` (Unix epoch milliseconds).
    pub fn new(namespace: &str, timestamp_ms: i64) -> Self {
        Self {
            namespace: namespace.to_string(),
            timestamp_ms,
            members: Map::new(),
            directives: Vec::new(),
        }
    }

    /// Sets a dimension's value (declare it in a group's dimension sets to use it).
    pub fn dimension(mut self, name: &str, value: &str) -> Self {
        self.members.insert(name.to_string(), Value::from(value));
        self
    }

    /// Adds metrics aggregated over each of `dimension_sets`.
    pub fn metrics(mut self, dimension_sets: &[&[&str]], metrics: &[(&str, f64, Unit)]) -> Self {
        let defs: Vec<Value> = metrics
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        for (name, value, _) in metrics {
            let v = if value.is_finite() { *value } else { 0.0 };
            self.members.insert((*name).to_string(), Value::from(v));
        }
        self.directives.push(json!({
            "Namespace": self.namespace,
            "Dimensions": dimension_sets,
            "Metrics": defs,
        }));
        self
    }

    /// The JSON line (no trailing newline).
    pub fn to_line(&self) -> String {
        let mut root = self.members.clone();
        root.insert(
            "_aws".into(),
            json!({"Timestamp": self.timestamp_ms, "CloudWatchMetrics": self.directives}),
        );
        Value::Object(root).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_follows_the_emf_shape() {
        let line = Emf::new("tierwise", 1_700_000_000_000)
            .dimension("Service", "router")
            .dimension("Tier", "tier1")
            .metrics(&[&["Service", "Tier"]], &[("Queries", 1.0, Unit::Count)])
            .metrics(
                &[&["Service"]],
                &[
                    ("RouterLatency", 4.5, Unit::Milliseconds),
                    ("Bad", f64::NAN, Unit::None),
                ],
            )
            .to_line();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let d = &v["_aws"]["CloudWatchMetrics"];
        assert_eq!(d[0]["Namespace"], "tierwise");
        assert_eq!(d[0]["Dimensions"], json!([["Service", "Tier"]]));
        assert_eq!(
            d[0]["Metrics"][0],
            json!({"Name": "Queries", "Unit": "Count"})
        );
        assert_eq!(d[1]["Metrics"][0]["Unit"], "Milliseconds");
        assert_eq!(v["Tier"], "tier1");
        assert_eq!(v["Queries"], 1.0);
        assert_eq!(v["RouterLatency"], 4.5);
        assert_eq!(v["Bad"], 0.0);
        assert!(!line.contains('\n'));
    }
}
