//! Single flight: concurrent identical requests share one execution.
//!
//! The shared work runs in its own task, so it finishes (and its answer is recorded by whoever
//! still waits) even when the caller that started it gives up: an upstream call that was paid for
//! with budget is not thrown away halfway.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;

pub type Flight<V> = Shared<BoxFuture<'static, V>>;

pub struct SingleFlight<K, V: Clone> {
    flights: Arc<Mutex<HashMap<K, Flight<V>>>>,
    /// Turns a panic of the shared work into an answer, so waiters get an error, not a panic.
    on_panic: fn(String) -> V,
}

impl<K, V> SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(on_panic: fn(String) -> V) -> Self {
        SingleFlight {
            flights: Arc::new(Mutex::new(HashMap::new())),
            on_panic,
        }
    }

    /// Joins the flight for `key` (`true`), or starts one with `work` when none is airborne
    /// (`false`). Must be called inside a tokio runtime.
    pub fn run<F>(&self, key: K, work: impl FnOnce() -> F) -> (Flight<V>, bool)
    where
        F: Future<Output = V> + Send + 'static,
    {
        let mut flights = self.flights.lock();
        if let Some(flight) = flights.get(&key) {
            return (flight.clone(), true);
        }
        let fut = work();
        let map = Arc::clone(&self.flights);
        let own_key = key.clone();
        let handle = tokio::spawn(async move {
            let value = fut.await;
            // Landed: the next identical request starts a fresh flight.
            map.lock().remove(&own_key);
            value
        });
        let on_panic = self.on_panic;
        let map = Arc::clone(&self.flights);
        let own_key = key.clone();
        let flight: Flight<V> = async move {
            match handle.await {
                Ok(v) => v,
                Err(e) => {
                    map.lock().remove(&own_key);
                    on_panic(e.to_string())
                }
            }
        }
        .boxed()
        .shared();
        flights.insert(key, flight.clone());
        (flight, false)
    }

    /// Flights airborne now.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.flights.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn concurrent_calls_share_one_execution_and_later_calls_start_anew() {
        let sf: Arc<SingleFlight<&'static str, u32>> = Arc::new(SingleFlight::new(|_| 0));
        let runs = Arc::new(AtomicU32::new(0));
        let mut joins = Vec::new();
        for _ in 0..50 {
            let sf = Arc::clone(&sf);
            let runs = Arc::clone(&runs);
            joins.push(tokio::spawn(async move {
                sf.run("k", || async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    runs.fetch_add(1, Ordering::SeqCst) + 1
                })
                .0
                .await
            }));
        }
        for j in joins {
            assert_eq!(j.await.unwrap(), 1);
        }
        assert_eq!(sf.in_flight(), 0);
        let runs2 = Arc::clone(&runs);
        let (flight, joined) = sf.run(
            "k",
            || async move { runs2.fetch_add(1, Ordering::SeqCst) + 1 },
        );
        assert!(!joined);
        assert_eq!(flight.await, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn work_completes_when_the_starter_gives_up() {
        let sf: SingleFlight<u8, u32> = SingleFlight::new(|_| 0);
        let done = Arc::new(AtomicU32::new(0));
        let d = Arc::clone(&done);
        let (flight, _) = sf.run(1, || async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            d.store(7, Ordering::SeqCst);
            7
        });
        let (_, joined) = sf.run(1, || async { 0 });
        assert!(joined);
        assert!(tokio::time::timeout(Duration::from_secs(1), flight)
            .await
            .is_err());
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(done.load(Ordering::SeqCst), 7);
        assert_eq!(sf.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_panicking_flight_answers_through_on_panic() {
        let sf: SingleFlight<u8, u32> = SingleFlight::new(|_| 99);
        let v = sf
            .run(1, || async {
                if true {
                    panic!("boom");
                }
                1
            })
            .0
            .await;
        assert_eq!(v, 99);
        assert_eq!(sf.in_flight(), 0);
    }
}
