//! Injected failures: the simulator answers the next N signed calls (or all, until cleared) with
//! a chosen failure, so that every error path of the plugin can be shown and tested.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use serde_json::{json, Value};

/// A failure the simulator can be told to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally, but only after this delay.
    Latency(Duration),
    /// Answer with this status and a problem+json body (401 and 403 look like Akamai's gateway).
    Status(u16),
    /// A 200 whose JSON body is cut off.
    MalformedJson,
    /// A 200 with `executionStatus: FAILURE` (eStats calls only).
    ExecutionFailure,
    /// A 429; `None` leaves out the `*-RateLimit-Next` headers.
    RateLimited { next_in: Option<Duration> },
    /// A 400 "Invalid timestamp", as if this host's clock were off.
    ClockSkew,
    /// A 200 eStats answer that is not a measurement (eStats calls only); see [`BadAnswer`].
    BadAnswer(BadAnswer),
    /// A redirect (301, 302, 303, 307 or 308) to `location`, absolute or relative to the
    /// simulator.
    Redirect { status: u16, location: String },
    /// The request reaches the gateway this much later, as over a slow uplink: the simulator
    /// counts it (rate limit, [`crate::simulator::Simulator::arrivals`]) only then.
    InboundDelay(Duration),
}

/// The ways an eStats answer can fail to be a measurement, each applied to a generated answer
/// (of a target with traffic: the wrong delivery network has no rows to spoil).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAnswer {
    /// SUCCESS with totals but without either status-code distribution.
    MissingDistributions,
    /// A distribution row without `hits`.
    RowWithoutHits,
    /// A distribution row with `hits: null`.
    NullHits,
    /// A distribution row without `percentage`.
    RowWithoutPercentage,
    /// `executionStatus: IN_PROGRESS`.
    InProgress,
    /// `executionStatus: null` and `result: null`.
    NullStatus,
    /// A row with -5 hits.
    NegativeHits,
    /// A row with 1.5 hits.
    FractionalHits,
    /// A row with 2^70 hits.
    HugeHits,
    /// A row with 250 %.
    PercentageOutOfRange,
    /// `edgeFailurePercentage: 1e308`.
    FailurePercentageHuge,
    /// A row for HTTP status 999.
    StatusOutOfRange,
    /// Rows that add up to more than `edgeHits`.
    RowsExceedTotal,
}

impl BadAnswer {
    pub const ALL: [BadAnswer; 13] = [
        BadAnswer::MissingDistributions,
        BadAnswer::RowWithoutHits,
        BadAnswer::NullHits,
        BadAnswer::RowWithoutPercentage,
        BadAnswer::InProgress,
        BadAnswer::NullStatus,
        BadAnswer::NegativeHits,
        BadAnswer::FractionalHits,
        BadAnswer::HugeHits,
        BadAnswer::PercentageOutOfRange,
        BadAnswer::FailurePercentageHuge,
        BadAnswer::StatusOutOfRange,
        BadAnswer::RowsExceedTotal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BadAnswer::MissingDistributions => "missingDistributions",
            BadAnswer::RowWithoutHits => "rowWithoutHits",
            BadAnswer::NullHits => "nullHits",
            BadAnswer::RowWithoutPercentage => "rowWithoutPercentage",
            BadAnswer::InProgress => "inProgress",
            BadAnswer::NullStatus => "nullStatus",
            BadAnswer::NegativeHits => "negativeHits",
            BadAnswer::FractionalHits => "fractionalHits",
            BadAnswer::HugeHits => "hugeHits",
            BadAnswer::PercentageOutOfRange => "percentageOutOfRange",
            BadAnswer::FailurePercentageHuge => "failurePercentageHuge",
            BadAnswer::StatusOutOfRange => "statusOutOfRange",
            BadAnswer::RowsExceedTotal => "rowsExceedTotal",
        }
    }

    /// Spoils a generated answer (its JSON form) this way.
    pub fn apply(self, answer: &mut Value) {
        let row = |answer: &mut Value, key: &str, to: Option<Value>| {
            if let Some(row) = answer
                .pointer_mut("/result/edgeStatusCodeDistribution/0")
                .and_then(Value::as_object_mut)
            {
                match to {
                    Some(v) => row.insert(key.to_string(), v),
                    None => row.remove(key),
                };
            }
        };
        match self {
            BadAnswer::MissingDistributions => {
                if let Some(result) = answer["result"].as_object_mut() {
                    result.remove("edgeStatusCodeDistribution");
                    result.remove("originStatusCodeDistribution");
                }
            }
            BadAnswer::RowWithoutHits => row(answer, "hits", None),
            BadAnswer::NullHits => row(answer, "hits", Some(Value::Null)),
            BadAnswer::RowWithoutPercentage => row(answer, "percentage", None),
            BadAnswer::InProgress => answer["executionStatus"] = json!("IN_PROGRESS"),
            BadAnswer::NullStatus => {
                answer["executionStatus"] = Value::Null;
                answer["result"] = Value::Null;
            }
            BadAnswer::NegativeHits => row(answer, "hits", Some(json!(-5))),
            BadAnswer::FractionalHits => row(answer, "hits", Some(json!(1.5))),
            BadAnswer::HugeHits => row(answer, "hits", Some(json!(2f64.powi(70)))),
            BadAnswer::PercentageOutOfRange => row(answer, "percentage", Some(json!(250))),
            BadAnswer::FailurePercentageHuge => {
                answer["result"]["edgeFailurePercentage"] = json!(1e308)
            }
            BadAnswer::StatusOutOfRange => row(answer, "httpStatus", Some(json!(999))),
            BadAnswer::RowsExceedTotal => answer["result"]["edgeHits"] = json!(1),
        }
    }
}

/// Which signed endpoint a call was for; some faults only make sense for eStats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Estats,
    EdgeLocations,
}

impl Fault {
    fn applies_to(&self, endpoint: Endpoint) -> bool {
        !matches!(
            (self, endpoint),
            (
                Fault::ExecutionFailure | Fault::BadAnswer(_),
                Endpoint::EdgeLocations
            )
        )
    }

    /// The JSON form of the HTTP control endpoint (`POST /_simulator/faults`).
    pub fn to_json(&self, times: Option<u32>) -> Value {
        let mut v = match self {
            Fault::Latency(d) => json!({"fault": "latency", "ms": d.as_millis() as u64}),
            Fault::Status(s) => json!({"fault": "status", "status": s}),
            Fault::MalformedJson => json!({"fault": "malformedJson"}),
            Fault::ExecutionFailure => json!({"fault": "failure"}),
            Fault::RateLimited { next_in } => match next_in {
                Some(d) => json!({"fault": "rateLimited", "nextInMs": d.as_millis() as u64}),
                None => json!({"fault": "rateLimited"}),
            },
            Fault::ClockSkew => json!({"fault": "clockSkew"}),
            Fault::BadAnswer(b) => json!({"fault": "badAnswer", "answer": b.name()}),
            Fault::Redirect { status, location } => {
                json!({"fault": "redirect", "status": status, "location": location})
            }
            Fault::InboundDelay(d) => json!({"fault": "inboundDelay", "ms": d.as_millis() as u64}),
        };
        if let Some(times) = times {
            v["times"] = json!(times);
        }
        v
    }

    /// Parses the JSON of `POST /_simulator/faults`; the error names the field and its fix.
    pub fn from_json(v: &Value) -> Result<(Fault, Option<u32>), String> {
        let obj = v.as_object().ok_or(
            "the body must be a JSON object such as {\"fault\":\"status\",\"status\":503}",
        )?;
        let known: &[&str] = &[
            "fault", "times", "status", "ms", "nextInMs", "answer", "location",
        ];
        if let Some(unknown) = obj.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "unknown member {:?}; known members are {}",
                truncate(unknown, 40),
                known.join(", ")
            ));
        }
        let number = |name: &str| -> Result<Option<u64>, String> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(n) => n
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("{name} must be a non-negative integer, got {n}")),
            }
        };
        let times = number("times")?
            .map(|t| u32::try_from(t).map_err(|_| format!("times {t} is too large")))
            .transpose()?;
        let kind = obj
            .get("fault")
            .and_then(Value::as_str)
            .ok_or(FAULT_NAMES)?;
        let fault = match kind {
            "status" => {
                let status =
                    number("status")?.ok_or("status is required for fault status, e.g. 503")?;
                if !(400..=599).contains(&status) {
                    return Err(format!(
                        "status {status} is not an error status: use 400 to 599"
                    ));
                }
                Fault::Status(status as u16)
            }
            "latency" => Fault::Latency(Duration::from_millis(
                number("ms")?.ok_or("ms is required for fault latency, e.g. 5000")?,
            )),
            "malformedJson" => Fault::MalformedJson,
            "failure" => Fault::ExecutionFailure,
            "rateLimited" => Fault::RateLimited {
                next_in: number("nextInMs")?.map(Duration::from_millis),
            },
            "clockSkew" => Fault::ClockSkew,
            "badAnswer" => {
                let name = obj
                    .get("answer")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let bad = BadAnswer::ALL
                    .into_iter()
                    .find(|b| b.name() == name)
                    .ok_or_else(|| {
                        let names: Vec<&str> = BadAnswer::ALL.iter().map(|b| b.name()).collect();
                        format!(
                            "answer is required for fault badAnswer: one of {}",
                            names.join(", ")
                        )
                    })?;
                Fault::BadAnswer(bad)
            }
            "redirect" => {
                let status = number("status")?.unwrap_or(307);
                if ![301, 302, 303, 307, 308].contains(&status) {
                    return Err(format!(
                        "status {status} is not a redirect: use 301, 302, 303, 307 or 308"
                    ));
                }
                let location = obj
                    .get("location")
                    .and_then(Value::as_str)
                    .filter(|l| !l.is_empty() && l.len() <= 16 * 1024)
                    .ok_or(
                        "location is required for fault redirect: a URL or path of at most 16 KiB",
                    )?;
                Fault::Redirect {
                    status: status as u16,
                    location: location.to_string(),
                }
            }
            "inboundDelay" => Fault::InboundDelay(Duration::from_millis(
                number("ms")?.ok_or("ms is required for fault inboundDelay, e.g. 3000")?,
            )),
            other => {
                return Err(format!(
                    "unknown fault {:?}: {FAULT_NAMES}",
                    truncate(other, 40)
                ))
            }
        };
        Ok((fault, times))
    }
}

const FAULT_NAMES: &str = "fault is required: one of status, latency, malformedJson, failure, rateLimited, clockSkew, badAnswer, redirect, inboundDelay";

fn truncate(text: &str, max: usize) -> String {
    crate::estats::decode::truncate(text, max)
}

#[derive(Debug, Clone)]
struct Active {
    fault: Fault,
    /// Calls left; `None` until cleared.
    remaining: Option<u32>,
}

/// Shared handle to the simulator's fault setting. Clones control the same simulator.
#[derive(Debug, Clone, Default)]
pub struct FaultControl {
    active: Arc<Mutex<Option<Active>>>,
    /// Faults of every eStats call for one target (by [`crate::target::Target::key`]), so that
    /// one target of many can fail while the others answer.
    by_target: Arc<Mutex<std::collections::HashMap<String, Fault>>>,
}

impl FaultControl {
    /// Fails the next `times` signed calls this way (`None`: every call until [`clear`]).
    /// Replaces any fault set before.
    ///
    /// [`clear`]: FaultControl::clear
    pub fn set(&self, fault: Fault, times: Option<u32>) {
        let next = match times {
            Some(0) => None,
            _ => Some(Active {
                fault,
                remaining: times,
            }),
        };
        *self.lock() = next;
    }

    /// Fails every eStats call for the target with this key this way, until
    /// [`FaultControl::clear_target`]; other targets answer normally.
    pub fn set_for_target(&self, key: &str, fault: Fault) {
        self.by_target.lock().insert(key.to_string(), fault);
    }

    pub fn clear_target(&self, key: &str) {
        self.by_target.lock().remove(key);
    }

    /// The fault set for the target with this key, if any.
    pub(crate) fn for_target(&self, key: &str) -> Option<Fault> {
        self.by_target.lock().get(key).cloned()
    }

    pub fn clear(&self) {
        *self.lock() = None;
    }

    /// The fault in force and how many calls it still applies to.
    pub fn active(&self) -> Option<(Fault, Option<u32>)> {
        self.lock().as_ref().map(|a| (a.fault.clone(), a.remaining))
    }

    /// The fault for this call's answer, counting it down.
    pub(crate) fn take(&self, endpoint: Endpoint) -> Option<Fault> {
        self.take_where(endpoint, |f| !matches!(f, Fault::InboundDelay(_)))
    }

    /// The delay before this call reaches the gateway, counting the fault down.
    pub(crate) fn take_inbound_delay(&self, endpoint: Endpoint) -> Option<Duration> {
        match self.take_where(endpoint, |f| matches!(f, Fault::InboundDelay(_)))? {
            Fault::InboundDelay(d) => Some(d),
            _ => None,
        }
    }

    fn take_where(&self, endpoint: Endpoint, which: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let mut guard = self.lock();
        let active = guard.as_mut()?;
        if !active.fault.applies_to(endpoint) || !which(&active.fault) {
            return None;
        }
        let fault = active.fault.clone();
        if let Some(left) = active.remaining.as_mut() {
            *left -= 1;
            if *left == 0 {
                *guard = None;
            }
        }
        Some(fault)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Active>> {
        self.active.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_and_clears() {
        let f = FaultControl::default();
        f.set(Fault::Status(503), Some(2));
        assert_eq!(f.take(Endpoint::Estats), Some(Fault::Status(503)));
        assert_eq!(f.active(), Some((Fault::Status(503), Some(1))));
        assert_eq!(f.take(Endpoint::EdgeLocations), Some(Fault::Status(503)));
        assert_eq!(f.take(Endpoint::Estats), None);
        f.set(Fault::ClockSkew, None);
        for _ in 0..5 {
            assert_eq!(f.take(Endpoint::Estats), Some(Fault::ClockSkew));
        }
        f.clear();
        assert_eq!(f.take(Endpoint::Estats), None);
        f.set(Fault::MalformedJson, Some(0));
        assert_eq!(f.active(), None);
    }

    #[test]
    fn a_target_fault_stays_with_its_target() {
        let f = FaultControl::default();
        f.set_for_target("cp:2/ANY", Fault::Status(403));
        assert_eq!(f.for_target("cp:2/ANY"), Some(Fault::Status(403)));
        assert_eq!(f.for_target("cp:1/ANY"), None);
        assert_eq!(f.take(Endpoint::Estats), None);
        f.clear_target("cp:2/ANY");
        assert_eq!(f.for_target("cp:2/ANY"), None);
    }

    #[test]
    fn execution_failure_spares_edge_locations() {
        let f = FaultControl::default();
        f.set(Fault::ExecutionFailure, Some(1));
        assert_eq!(f.take(Endpoint::EdgeLocations), None);
        assert_eq!(f.take(Endpoint::Estats), Some(Fault::ExecutionFailure));
        assert_eq!(f.active(), None);
    }

    #[test]
    fn bad_answers_spare_edge_locations_and_inbound_delay_is_taken_apart() {
        let f = FaultControl::default();
        f.set(Fault::BadAnswer(BadAnswer::InProgress), Some(1));
        assert_eq!(f.take(Endpoint::EdgeLocations), None);
        assert!(f.take(Endpoint::Estats).is_some());
        f.set(Fault::InboundDelay(Duration::from_secs(3)), Some(1));
        assert_eq!(f.take(Endpoint::Estats), None);
        assert_eq!(
            f.take_inbound_delay(Endpoint::Estats),
            Some(Duration::from_secs(3))
        );
        assert_eq!(f.active(), None);
    }

    /// Every bad answer, applied to a real generated answer, is refused by the plugin's decoder
    /// for the reason it stands for.
    #[test]
    fn every_bad_answer_is_refused_by_the_decoder() {
        let request = crate::estats::EstatsRequest {
            cp_code: Some(1_209_788),
            url: None,
            delivery: None,
            error_type: None,
        };
        let at = chrono::DateTime::from_timestamp(1_760_000_000, 0).unwrap();
        for bad in BadAnswer::ALL {
            let mut v = serde_json::to_value(crate::simulator::generate(&request, at)).unwrap();
            bad.apply(&mut v);
            let err =
                crate::estats::decode::decode_estats(v.to_string().as_bytes(), &Default::default())
                    .unwrap_err();
            assert_eq!(
                err.kind(),
                crate::estats::ErrorKind::InvalidResponse,
                "{bad:?}"
            );
            let words = match bad {
                BadAnswer::MissingDistributions => "without edgeStatusCodeDistribution",
                BadAnswer::RowWithoutHits => "[0].hits is missing",
                BadAnswer::NullHits => "[0].hits is null",
                BadAnswer::RowWithoutPercentage => "[0].percentage is missing",
                BadAnswer::InProgress => "IN_PROGRESS",
                BadAnswer::NullStatus => "executionStatus null",
                BadAnswer::NegativeHits => "negative",
                BadAnswer::FractionalHits => "not a whole number",
                BadAnswer::HugeHits => "larger than any count",
                BadAnswer::PercentageOutOfRange => "outside 0 to 100",
                BadAnswer::FailurePercentageHuge => "edgeFailurePercentage is 1e+308",
                BadAnswer::StatusOutOfRange => "not an HTTP status",
                BadAnswer::RowsExceedTotal => "more than result.edgeHits",
            };
            assert!(err.to_string().contains(words), "{bad:?}: {err}");
        }
    }

    #[test]
    fn json_round_trips() {
        for (fault, times) in [
            (Fault::Status(503), Some(2)),
            (Fault::Latency(Duration::from_millis(5000)), None),
            (Fault::MalformedJson, None),
            (Fault::ExecutionFailure, Some(1)),
            (
                Fault::RateLimited {
                    next_in: Some(Duration::from_millis(2000)),
                },
                None,
            ),
            (Fault::RateLimited { next_in: None }, None),
            (Fault::ClockSkew, None),
            (Fault::BadAnswer(BadAnswer::NullHits), Some(3)),
            (
                Fault::Redirect {
                    status: 308,
                    location: "http://127.0.0.1:9/x".into(),
                },
                None,
            ),
            (Fault::InboundDelay(Duration::from_millis(3000)), Some(1)),
        ] {
            let json = fault.to_json(times);
            assert_eq!(Fault::from_json(&json).unwrap(), (fault, times), "{json}");
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        for (body, words) in [
            (json!([]), "JSON object"),
            (json!({}), "fault is required"),
            (json!({"fault": "boom"}), "unknown fault"),
            (json!({"fault": "status"}), "status is required"),
            (
                json!({"fault": "status", "status": 200}),
                "not an error status",
            ),
            (json!({"fault": "latency", "ms": -1}), "ms must be"),
            (json!({"fault": "failure", "times": "2"}), "times must be"),
            (
                json!({"fault": "failure", "count": 2}),
                "unknown member \"count\"",
            ),
            (json!({"fault": "badAnswer"}), "answer is required"),
            (json!({"fault": "badAnswer", "answer": "x"}), "nullHits"),
            (
                json!({"fault": "redirect", "status": 200, "location": "/"}),
                "not a redirect",
            ),
            (json!({"fault": "redirect"}), "location is required"),
            (json!({"fault": "inboundDelay"}), "ms is required"),
        ] {
            let err = Fault::from_json(&body).unwrap_err();
            assert!(err.contains(words), "{body}: {err}");
        }
    }
}
