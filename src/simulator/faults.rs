//! Injected failures: the simulator answers the next N signed calls (or all, until cleared) with
//! a chosen failure, so that every error path of the plugin can be shown and tested.

use std::sync::{Arc, Mutex};
use std::time::Duration;

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
            (Fault::ExecutionFailure, Endpoint::EdgeLocations)
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
        let known: &[&str] = &["fault", "times", "status", "ms", "nextInMs"];
        if let Some(unknown) = obj.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "unknown member {unknown:?}; known members are fault, times, status, ms, nextInMs"
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
            .ok_or("fault is required: one of status, latency, malformedJson, failure, rateLimited, clockSkew")?;
        let fault = match kind {
            "status" => {
                let status = number("status")?.ok_or("status is required for fault status, e.g. 503")?;
                if !(400..=599).contains(&status) {
                    return Err(format!("status {status} is not an error status: use 400 to 599"));
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
            other => {
                return Err(format!(
                    "unknown fault {other:?}: use status, latency, malformedJson, failure, rateLimited or clockSkew"
                ))
            }
        };
        Ok((fault, times))
    }
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

    pub fn clear(&self) {
        *self.lock() = None;
    }

    /// The fault in force and how many calls it still applies to.
    pub fn active(&self) -> Option<(Fault, Option<u32>)> {
        self.lock().as_ref().map(|a| (a.fault.clone(), a.remaining))
    }

    /// The fault for this call, counting it down.
    pub(crate) fn take(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut guard = self.lock();
        let active = guard.as_mut()?;
        if !active.fault.applies_to(endpoint) {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Active>> {
        // A panic while holding this lock cannot leave the Option half-written.
        self.active.lock().unwrap_or_else(|p| p.into_inner())
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
    fn execution_failure_spares_edge_locations() {
        let f = FaultControl::default();
        f.set(Fault::ExecutionFailure, Some(1));
        assert_eq!(f.take(Endpoint::EdgeLocations), None);
        assert_eq!(f.take(Endpoint::Estats), Some(Fault::ExecutionFailure));
        assert_eq!(f.active(), None);
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
        ] {
            let err = Fault::from_json(&body).unwrap_err();
            assert!(err.contains(words), "{body}: {err}");
        }
    }
}
