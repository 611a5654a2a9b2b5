//! Queries naming a set of targets (`"*"`, a CP code list, several URLs; issue 14): each target
//! is answered by the single-target path, concurrently within a bound, and the answers are
//! joined (a `target` column, or one `timeseries` frame per target). A target that fails is
//! left out with a warning; only a set of which every target fails is an error.

use futures::StreamExt;

use super::data::frames_of_target;
use super::instance::Instance;
use crate::frame::{Frame, Notice, Severity};
use crate::handlers::{self, LeftOut, QueryFailure};
use crate::query::{Query, QueryType};

/// Targets of one set read at once: the latest samples mostly come from memory, but a cold
/// target costs an upstream call (which the data source's budget paces anyway) or a history
/// read, and one query must not take every history permit.
pub const CONCURRENT_TARGETS: usize = 8;

/// The frames of a query naming a set.
pub async fn frames(instance: &Instance, query: &Query) -> Result<Vec<Frame>, QueryFailure> {
    let each: Vec<Query> = query
        .targets
        .targets()
        .iter()
        .map(|t| query.for_target(t))
        .collect();
    // A cold set costs one call per target, which the budget may spread over minutes: the
    // query answers with what it has by the request timeout, and the rest (now polled) later.
    let wait = instance.settings.request_timeout;
    let deadline = tokio::time::Instant::now() + wait;
    let answers: Vec<_> = futures::stream::iter(each.into_iter().map(|one| async move {
        let answer = tokio::time::timeout_at(deadline, frames_of_target(instance, &one))
            .await
            .unwrap_or_else(|_| {
                Err(QueryFailure::new(
                    504,
                    format!(
                        "no sample within {} s (the data source's budget of {} calls a minute is shared by every target); it is polled from now on: refresh shortly",
                        wait.as_secs(),
                        instance.settings.rate_limit_per_minute
                    ),
                ))
            });
        (one.target, answer)
    }))
    .buffered(CONCURRENT_TARGETS)
    .collect()
    .await;

    let mut answered = Vec::with_capacity(answers.len());
    let mut left_out = Vec::new();
    let mut first_failure: Option<QueryFailure> = None;
    for (target, answer) in answers {
        match answer {
            Ok(frames) => answered.push((target, frames)),
            Err(failure) => {
                left_out.push(LeftOut {
                    target: target.clone(),
                    reason: failure.message.clone(),
                });
                first_failure.get_or_insert(QueryFailure::new(
                    failure.status,
                    format!(
                        "every target of this query failed; the first, {}: {}",
                        target.display_name(),
                        failure.message
                    ),
                ));
            }
        }
    }
    if answered.is_empty() {
        return Err(
            first_failure.unwrap_or_else(|| QueryFailure::new(500, "this query names no target"))
        );
    }
    match query.query_type {
        QueryType::Timeseries => {
            let mut frames: Vec<Frame> = answered
                .into_iter()
                .flat_map(|(target, frames)| {
                    frames
                        .into_iter()
                        .map(move |f| handlers::name_target_frame(&target, f))
                })
                .collect();
            handlers::note_left_out(&mut frames, &left_out);
            Ok(frames)
        }
        QueryType::Distribution | QueryType::Summary | QueryType::TopIps => {
            let parts = answered
                .into_iter()
                .filter_map(|(target, mut frames)| {
                    // One frame per target for these types.
                    frames.pop().map(|f| (target, f))
                })
                .collect();
            Ok(vec![handlers::stack_targets(parts, &left_out)?])
        }
        // Answered for the whole set at once by `events::answer`, never target by target.
        QueryType::Events => Err(QueryFailure::new(
            500,
            "events of a set are answered as one frame",
        )),
    }
}

/// The info notice of an answer from the cache while the data source's pollers run stretched
/// (more targets than the budget polls at the set interval; see `Monitor::schedule`).
pub fn note_stretching(instance: &Instance, query: &Query, frames: &mut [Frame]) {
    if !matches!(
        query.query_type,
        QueryType::Distribution | QueryType::Summary | QueryType::TopIps
    ) {
        return;
    }
    let Some(text) = instance.monitor.schedule().notice() else {
        return;
    };
    for frame in frames {
        frame.meta.notices.push(Notice {
            severity: Severity::Info,
            text: text.clone(),
        });
    }
}
