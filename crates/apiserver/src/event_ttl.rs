//! Events expire, as kube-apiserver's `--event-ttl` (default 1 h) makes them.
//!
//! Upstream writes every Event with an etcd lease of the TTL, renewed by each write, so an
//! event no one has touched for the TTL disappears (watchers see it deleted). pernode's store has
//! no leases: a sweeper deletes, through the store like any delete, each event whose last write
//! (the latest of `lastTimestamp`, `series.lastObservedTime`, `eventTime` and
//! `metadata.creationTimestamp`, which every recorder sets on each write) is older than the TTL.
//! The store's history stays bounded under churn with it.
//!
//! ```no_run
//! # async fn demo(server: std::sync::Arc<pernode_apiserver::ApiServer>) {
//! let sweeper = pernode_apiserver::event_ttl::spawn(server.store().clone(), pernode_apiserver::event_ttl::DEFAULT_TTL);
//! # sweeper.abort();
//! # }
//! ```

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use pernode_store::{Op, Store, StoreError};
use serde::Deserialize;

/// kube-apiserver's default `--event-ttl`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The members of an Event that say when it was last written.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EventTimes {
    #[serde(default)]
    metadata: MetaTimes,
    last_timestamp: Option<Timestamp>,
    event_time: Option<Timestamp>,
    series: Option<SeriesTimes>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MetaTimes {
    creation_timestamp: Option<Timestamp>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SeriesTimes {
    last_observed_time: Option<Timestamp>,
}

/// When the event in `json` was last written, if it says.
fn last_written(json: &[u8]) -> Option<Timestamp> {
    let times: EventTimes = serde_json::from_slice(json).ok()?;
    [
        times.last_timestamp,
        times.series.and_then(|s| s.last_observed_time),
        times.event_time,
        times.metadata.creation_timestamp,
    ]
    .into_iter()
    .flatten()
    .max()
}

/// Deletes the events last written before `now - ttl`; returns how many it deleted.
pub async fn expire(store: &Store, ttl: Duration, now: Timestamp) -> usize {
    let Ok(ttl) = k8s_openapi::jiff::SignedDuration::try_from(ttl) else {
        return 0;
    };
    let Ok(cutoff) = now.checked_sub(ttl) else {
        return 0;
    };
    // Parsed after the list, not in its filter: the filter runs under the store's lock, which
    // the writer waits for.
    let (_, events) = store.list("events/", |_| true);
    // Deleted only as they were seen (a write since then renewed one), in batches: one
    // durable commit per batch, not per event, so the sweep keeps up with events written
    // hundreds a second (a DaemonSet's rollout on a large fleet) even when fsync is slow.
    let expired: Vec<Op> = events
        .into_iter()
        .filter(|e| last_written(&e.json).is_some_and(|written| written < cutoff))
        .map(|e| Op::Delete {
            key: e.key.to_string(),
            expected_rv: Some(e.rv),
        })
        .collect();
    let mut deleted = 0;
    let mut ops = expired.into_iter().peekable();
    while ops.peek().is_some() {
        let batch: Vec<Op> = ops.by_ref().take(BATCH).collect();
        for result in store.commit(batch).await {
            match result {
                Ok(_) => deleted += 1,
                Err(StoreError::NotFound | StoreError::Conflict { .. }) => {}
                Err(e) => tracing::warn!(error = %e, "could not expire an event"),
            }
        }
    }
    deleted
}

/// Events deleted in one commit.
const BATCH: usize = 256;

/// Runs [`expire`] periodically (a tenth of the TTL, between 1 s and 1 min) until aborted.
pub fn spawn(store: Store, ttl: Duration) -> tokio::task::JoinHandle<()> {
    let period = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let n = expire(&store, ttl, Timestamp::now()).await;
            if n > 0 {
                tracing::debug!(expired = n, "events expired");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_write_is_the_latest_time_the_event_carries() {
        let t = |s: &str| s.parse::<Timestamp>().expect("time");
        let json = br#"{"metadata":{"creationTimestamp":"2026-01-01T00:00:00Z"},
            "lastTimestamp":"2026-01-01T00:05:00Z","series":{"lastObservedTime":"2026-01-01T00:07:00.000000Z"}}"#;
        assert_eq!(last_written(json), Some(t("2026-01-01T00:07:00Z")));
        let json = br#"{"metadata":{"creationTimestamp":"2026-01-01T00:00:00Z"},"eventTime":null}"#;
        assert_eq!(last_written(json), Some(t("2026-01-01T00:00:00Z")));
        assert_eq!(last_written(br#"{"metadata":{}}"#), None);
    }
}
