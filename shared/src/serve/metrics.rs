//! CloudWatch Embedded Metric Format (EMF): metrics written as one JSON log line, which
//! CloudWatch Logs turns into metrics without a `PutMetricData` call on the request path.
//!
//! A Lambda builds one [`Metrics`] at init (namespace, its `Service` dimension, where lines
//! go) and emits every line through it; [`Emf`] is the line.

use serde_json::{Map, Value, json};

/// EMF namespace of every tierwise metric (the template's alarms read it).
pub const NAMESPACE: &str = "tierwise";

/// Where EMF lines go (stdout in Lambda; captured in tests).
pub type MetricsOut = Box<dyn Fn(&str) + Send + Sync>;

/// EMF lines to stdout, where Lambda sends them to CloudWatch Logs.
pub fn stdout() -> MetricsOut {
    Box::new(|line| println!("{line}"))
}

/// Unix epoch milliseconds (EMF timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A Lambda's metrics: every line in one namespace, with the function's `Service` dimension,
/// stamped when emitted.
pub struct Metrics {
    namespace: &'static str,
    service: &'static str,
    out: MetricsOut,
}

impl Metrics {
    /// The metrics of `service` in `namespace`, written to `out`.
    pub fn new(namespace: &'static str, service: &'static str, out: MetricsOut) -> Self {
        Self {
            namespace,
            service,
            out,
        }
    }

    /// Emits one line: `build` adds dimensions and metrics to a line stamped now, with the
    /// `Service` dimension set.
    pub fn emit(&self, build: impl FnOnce(Emf) -> Emf) {
        let line = Emf::new(self.namespace, now_ms()).dimension("Service", self.service);
        (self.out)(&build(line).to_line());
    }

    /// Emits metrics aggregated over the `Service` dimension alone.
    pub fn service_metrics(&self, metrics: &[(&str, f64, Unit)]) {
        self.emit(|line| line.metrics(&[&["Service"]], metrics));
    }
}

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
    fn the_emitter_stamps_namespace_and_service() {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = std::sync::Arc::clone(&lines);
        let metrics = Metrics::new(
            NAMESPACE,
            "reporter",
            Box::new(move |l| sink.lock().unwrap().push(l.to_string())),
        );
        metrics.service_metrics(&[("ReportLatency", 2.5, Unit::Milliseconds)]);
        metrics.emit(|line| {
            line.dimension("Tier", "tier2")
                .metrics(&[&["Service", "Tier"]], &[("Queries", 1.0, Unit::Count)])
        });
        let lines: Vec<Value> = lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["Service"], "reporter");
        assert_eq!(lines[0]["ReportLatency"], 2.5);
        let d = &lines[0]["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "tierwise");
        assert_eq!(d["Dimensions"], json!([["Service"]]));
        assert_eq!(
            (&lines[1]["Service"], &lines[1]["Tier"]),
            (&json!("reporter"), &json!("tier2"))
        );
        assert!(lines[1]["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    }

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
