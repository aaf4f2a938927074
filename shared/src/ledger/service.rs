//! The router as a service: a decision, then its cost record (and rollup) and, for a sampled
//! query, its shadow sample — with nothing lost when a store fails: what cannot be delivered
//! is parked on the fallback, and what cannot even be parked is logged in full and counted.
//! Every way a query ends (a decision, a proxied answer, a refusal, a stream) goes through
//! one step, [`RoutingService::settle`].
//!
//! Generic over the narrow traits of [`crate::ledger::store`], so it runs against DynamoDB and SQS in
//! the Lambda and against memory in unit tests.

use crate::ledger::records::{CostRecord, ShadowSample, Timestamp, Usd, sampled_with_salt};
use crate::ledger::store::{CostSink, Parked, ParkingLot, SampleSink, StoreError, WriteOutcome};
use crate::routing::decision::{Decision, HealthView, RouteError, RouteRequest, Router};

/// How an item (record or sample) was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Written / sent.
    Delivered,
    /// The record already existed (a replay): nothing written, no sample sent again.
    Duplicate,
    /// Delivery failed (`kind` of the [`StoreError`]) and the item was parked on the fallback.
    Parked { kind: &'static str },
    /// Delivery and parking both failed; the item was logged in full at error level.
    Lost { kind: &'static str },
}

impl Delivery {
    /// Whether the item reached its store (or was already there).
    pub fn is_delivered(&self) -> bool {
        matches!(self, Delivery::Delivered | Delivery::Duplicate)
    }

    /// The delivery's name in log lines.
    pub fn as_str(&self) -> &'static str {
        match self {
            Delivery::Delivered => "delivered",
            Delivery::Duplicate => "duplicate",
            Delivery::Parked { .. } => "parked",
            Delivery::Lost { .. } => "lost",
        }
    }
}

/// What became of a query's record and sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub record: Delivery,
    /// What the query cost (the record's `cost_usd`), to settle a budget reservation with.
    pub cost_usd: Usd,
    /// `None` when the query was not sampled (or was a replay).
    pub sample: Option<Delivery>,
}

impl Settled {
    /// Whether the record did not reach its store (parked or lost).
    pub fn record_failed(&self) -> bool {
        !self.record.is_delivered()
    }

    /// Whether a sample was due and did not reach its queue (parked or lost).
    pub fn sample_failed(&self) -> bool {
        self.sample.as_ref().is_some_and(|d| !d.is_delivered())
    }

    /// How many items were lost: neither delivered nor parked.
    pub fn lost(&self) -> u8 {
        let lost = |d: &Delivery| u8::from(matches!(d, Delivery::Lost { .. }));
        lost(&self.record) + self.sample.as_ref().map_or(0, lost)
    }
}

/// A routed query and what became of its record and sample.
#[derive(Debug, Clone)]
pub struct Routed {
    pub decision: Decision,
    pub settled: Settled,
}

/// The router with its sinks.
pub struct RoutingService<C, S, P> {
    router: Router,
    costs: C,
    samples: S,
    parking: P,
    shadow_rate: f64,
    /// Mixed into the sampling hash ([`sampled_with_salt`]); random per instance unless set.
    sampling_salt: String,
}

impl<C: CostSink, S: SampleSink, P: ParkingLot> RoutingService<C, S, P> {
    /// A service over a router and its sinks; `shadow_rate` overrides the pool's when given.
    pub fn new(router: Router, costs: C, samples: S, parking: P, shadow_rate: Option<f64>) -> Self {
        let shadow_rate = shadow_rate.unwrap_or_else(|| router.pool().shadow_rate());
        Self {
            router,
            costs,
            samples,
            parking,
            shadow_rate,
            sampling_salt: random_salt(),
        }
    }

    /// Sets the sampling salt (`TIERWISE_SAMPLING_SALT`: one per deployment keeps a replay's
    /// choice the same on every instance).
    pub fn with_sampling_salt(mut self, salt: Option<&str>) -> Self {
        if let Some(s) = salt.filter(|s| !s.is_empty()) {
            self.sampling_salt = s.to_string();
        }
        self
    }

    /// Whether the query is sampled for shadow evaluation (the server's salt, the rate).
    pub fn sampled(&self, query_id: &str) -> bool {
        sampled_with_salt(&self.sampling_salt, query_id, self.shadow_rate)
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The shadow sampling rate in use.
    pub fn shadow_rate(&self) -> f64 {
        self.shadow_rate
    }

    /// Routes a request and records it. `query_id` (a UUID given by the caller, for
    /// idempotent replays) replaces the generated id.
    ///
    /// The decision is answered even when its record or sample cannot be delivered.
    pub async fn route(
        &self,
        req: &RouteRequest,
        query_id: Option<&str>,
        health: &dyn HealthView,
    ) -> Result<Routed, RouteError> {
        let query_id = query_id.map(parse_query_id).transpose()?;
        let mut decision = self.router.route(req, health)?;
        if let Some(id) = query_id {
            decision.query_id = id;
        }
        let now = Timestamp::now();
        let sampled = self.sampled(&decision.query_id);
        let baseline = self.router.pool().baseline().id.as_str();
        let record = CostRecord::routed(&decision, baseline, sampled, now.clone());
        let sample = sampled.then(|| ShadowSample::of(req, &decision, baseline, &now, None));
        let settled = self.settle(record, sample).await;
        Ok(Routed { decision, settled })
    }

    /// Settles a query: writes its record (and rollup), then sends its sample when it has one
    /// — unless the record was already there: a replay's sample went with the first delivery.
    /// What cannot be delivered is parked; nothing here fails the query.
    pub async fn settle(&self, record: CostRecord, sample: Option<ShadowSample>) -> Settled {
        let cost_usd = record.cost_usd;
        let record = self.deliver_record(record).await;
        let sample = match sample {
            Some(s) if record != Delivery::Duplicate => Some(self.deliver_sample(s).await),
            _ => None,
        };
        Settled {
            record,
            cost_usd,
            sample,
        }
    }

    /// Writes a record; parks it when the write fails.
    async fn deliver_record(&self, record: CostRecord) -> Delivery {
        match self.costs.write_cost(&record).await {
            Ok(WriteOutcome::Written) => Delivery::Delivered,
            Ok(WriteOutcome::Duplicate) => Delivery::Duplicate,
            Err(e) => {
                let kind = e.kind();
                tracing::warn!(query_id = %record.query_id, error = %e, "cost record write failed; parking it");
                self.park(
                    Parked::CostRecord {
                        record,
                        error: e.to_string(),
                    },
                    kind,
                )
                .await
            }
        }
    }

    /// Sends a sample; parks it when the send fails.
    async fn deliver_sample(&self, sample: ShadowSample) -> Delivery {
        match self.samples.send_sample(&sample).await {
            Ok(()) => Delivery::Delivered,
            Err(e) => {
                let kind = e.kind();
                tracing::warn!(query_id = %sample.query_id, error = %e, "shadow sample send failed; parking it");
                self.park(
                    Parked::ShadowSample {
                        sample,
                        error: e.to_string(),
                    },
                    kind,
                )
                .await
            }
        }
    }

    async fn park(&self, item: Parked, kind: &'static str) -> Delivery {
        match self.parking.park(&item).await {
            Ok(()) => Delivery::Parked { kind },
            Err(e) => {
                log_lost(&item, &e);
                Delivery::Lost { kind }
            }
        }
    }
}

/// Last resort: the item, whole, in the function's log (durable in CloudWatch Logs), so it
/// can be recovered by hand. A parked shadow sample carries the query text: only its id is
/// logged then, the text stays out of logs.
fn log_lost(item: &Parked, e: &StoreError) {
    match item {
        Parked::CostRecord { record, .. } => {
            let json = serde_json::to_string(record).unwrap_or_default();
            tracing::error!(query_id = %record.query_id, error = %e, lost_record = %json, "cost record could not be written nor parked");
        }
        Parked::ShadowSample { sample, .. } => {
            tracing::error!(query_id = %sample.query_id, error = %e, "shadow sample could not be sent nor parked; it is skipped");
        }
    }
}

/// 16 random bytes as hex; a fixed text if the system has no randomness (sampling then is only
/// as unpredictable as the query id).
fn random_salt() -> String {
    let mut b = [0u8; 16];
    match getrandom::fill(&mut b) {
        Ok(()) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Err(_) => "tierwise".to_string(),
    }
}

/// A caller-given query id must be a UUID (any version); it is stored in canonical form.
pub fn parse_query_id(id: &str) -> Result<String, RouteError> {
    uuid::Uuid::parse_str(id.trim())
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| RouteError::InvalidRequest("the query id must be a UUID".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::decision::AllHealthy;
    use std::sync::{Arc, Mutex};

    /// In-memory sinks that can be told to fail.
    #[derive(Default, Clone)]
    struct Mem {
        records: Arc<Mutex<Vec<CostRecord>>>,
        samples: Arc<Mutex<Vec<ShadowSample>>>,
        parked: Arc<Mutex<Vec<Parked>>>,
        fail_costs: bool,
        fail_samples: bool,
        fail_parking: bool,
    }

    fn down() -> StoreError {
        StoreError::Unavailable {
            service: "test",
            detail: "down".into(),
        }
    }

    impl CostSink for Mem {
        async fn write_cost(&self, r: &CostRecord) -> Result<WriteOutcome, StoreError> {
            if self.fail_costs {
                return Err(down());
            }
            let mut recs = self.records.lock().unwrap();
            if recs.iter().any(|x| x.query_id == r.query_id) {
                return Ok(WriteOutcome::Duplicate);
            }
            recs.push(r.clone());
            Ok(WriteOutcome::Written)
        }
    }
    impl SampleSink for Mem {
        async fn send_sample(&self, s: &ShadowSample) -> Result<(), StoreError> {
            if self.fail_samples {
                return Err(down());
            }
            self.samples.lock().unwrap().push(s.clone());
            Ok(())
        }
    }
    impl ParkingLot for Mem {
        async fn park(&self, p: &Parked) -> Result<(), StoreError> {
            if self.fail_parking {
                return Err(down());
            }
            self.parked.lock().unwrap().push(p.clone());
            Ok(())
        }
    }

    fn router() -> Router {
        Router::bundled().unwrap()
    }

    fn service(mem: &Mem, rate: f64) -> RoutingService<Mem, Mem, Mem> {
        RoutingService::new(router(), mem.clone(), mem.clone(), mem.clone(), Some(rate))
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Routes `hello` through a service over `mem` sampling at `rate`.
    fn route_hello(mem: &Mem, rate: f64) -> Routed {
        let svc = service(mem, rate);
        block(svc.route(&RouteRequest::query("hello"), None, &AllHealthy)).unwrap()
    }

    const ID: &str = "0190c3e0-1111-7000-8000-000000000001";

    #[test]
    fn records_once_and_replays_are_duplicates() {
        let mem = Mem::default();
        let svc = service(&mem, 1.0);
        let req = RouteRequest::query("Explain how a B-tree split works.");
        let first = block(svc.route(&req, Some(ID), &AllHealthy)).unwrap();
        assert_eq!(first.decision.query_id, ID);
        assert_eq!(first.settled.record, Delivery::Delivered);
        assert_eq!(first.settled.sample, Some(Delivery::Delivered));
        let again = block(svc.route(&req, Some(&ID.to_uppercase()), &AllHealthy)).unwrap();
        assert_eq!(again.settled.record, Delivery::Duplicate);
        assert_eq!(again.settled.sample, None);
        assert_eq!(mem.records.lock().unwrap().len(), 1);
        assert_eq!(mem.samples.lock().unwrap().len(), 1);
        let rec = &mem.records.lock().unwrap()[0];
        assert!(rec.shadow);
        assert_eq!(rec.model, first.decision.model);
    }

    #[test]
    fn unsampled_queries_send_nothing() {
        let mem = Mem::default();
        let r = route_hello(&mem, 0.0);
        assert_eq!(r.settled.sample, None);
        assert!(mem.samples.lock().unwrap().is_empty());
        assert!(!mem.records.lock().unwrap()[0].shadow);
    }

    #[test]
    fn failed_writes_are_parked_and_the_decision_still_answered() {
        let mem = Mem {
            fail_costs: true,
            fail_samples: true,
            ..Mem::default()
        };
        let r = route_hello(&mem, 1.0);
        let parked = Delivery::Parked {
            kind: "unavailable",
        };
        assert_eq!(r.settled.record, parked);
        assert_eq!(r.settled.sample, Some(parked));
        assert!(r.settled.record_failed() && r.settled.sample_failed());
        assert_eq!(r.settled.lost(), 0);
        let parked = mem.parked.lock().unwrap();
        assert!(
            matches!(&parked[0], Parked::CostRecord { record, .. } if record.query_id == r.decision.query_id)
        );
        assert!(matches!(&parked[1], Parked::ShadowSample { .. }));
    }

    #[test]
    fn unparkable_items_are_reported_lost() {
        let mem = Mem {
            fail_costs: true,
            fail_parking: true,
            ..Mem::default()
        };
        let r = route_hello(&mem, 0.0);
        assert_eq!(
            r.settled.record,
            Delivery::Lost {
                kind: "unavailable"
            }
        );
        assert!(!r.settled.record.is_delivered());
        assert_eq!(r.settled.lost(), 1);
    }

    #[test]
    fn bad_query_ids_and_requests_write_nothing() {
        let mem = Mem::default();
        let svc = service(&mem, 1.0);
        let e = block(svc.route(&RouteRequest::query("hi"), Some("not-a-uuid"), &AllHealthy))
            .unwrap_err();
        assert!(matches!(e, RouteError::InvalidRequest(_)), "{e:?}");
        let e = block(svc.route(&RouteRequest::default(), None, &AllHealthy)).unwrap_err();
        assert!(matches!(e, RouteError::InvalidRequest(_)), "{e:?}");
        assert!(mem.records.lock().unwrap().is_empty());
        assert!(mem.samples.lock().unwrap().is_empty());
        assert!(mem.parked.lock().unwrap().is_empty());
    }
}
