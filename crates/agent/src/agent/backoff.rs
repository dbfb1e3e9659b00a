//! CrashLoopBackOff: when a container that exited may start again.
//!
//! Upstream's kubelet keeps one `flowcontrol.Backoff` entry per container: the first restart is
//! immediate, then the delay before each further restart is 10 s, 20 s, 40 s, ... capped at
//! 300 s, measured from the moment the container finished. An entry that was not updated for
//! twice the cap (10 minutes, i.e. the container ran well for that long) starts over.

use std::time::{Duration, Instant};

/// Upstream's initial back-off (`backOffPeriod`).
pub const INITIAL: Duration = Duration::from_secs(10);
/// Upstream's cap (`MaxContainerBackOff`).
pub const MAX: Duration = Duration::from_secs(300);

/// The back-off state of one container.
#[derive(Clone, Debug)]
pub struct CrashLoopBackoff {
    initial: Duration,
    max: Duration,
    entry: Option<Entry>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    backoff: Duration,
    last_update: Instant,
}

impl Default for CrashLoopBackoff {
    fn default() -> Self {
        CrashLoopBackoff::new(INITIAL, MAX)
    }
}

impl CrashLoopBackoff {
    /// A back-off starting at `initial` and doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        CrashLoopBackoff {
            initial,
            max,
            entry: None,
        }
    }

    fn expired(&self, event: Instant, entry: &Entry) -> bool {
        event.saturating_duration_since(entry.last_update) > self.max * 2
    }

    /// Asked at `now` about a container that finished at `finished`: `Some(wait)` while it is
    /// in back-off (CrashLoopBackOff), or `None` when it may restart now, in which case the
    /// delay for the next restart grows (upstream's `IsInBackOffSince` then `Next`).
    pub fn restart_delay(&mut self, finished: Instant, now: Instant) -> Option<Duration> {
        if let Some(entry) = self.entry
            && !self.expired(finished, &entry)
        {
            let since = now.saturating_duration_since(finished);
            if since < entry.backoff {
                return Some(entry.backoff - since);
            }
        }
        let backoff = match self.entry {
            Some(entry) if !self.expired(finished, &entry) => (entry.backoff * 2).min(self.max),
            _ => self.initial,
        };
        self.entry = Some(Entry {
            backoff,
            last_update: now,
        });
        None
    }

    /// The delay the next failure will wait, for the waiting message (`back-off 20s ...`).
    pub fn current(&self) -> Duration {
        self.entry.map_or(self.initial, |e| e.backoff)
    }
}

/// Upstream's message for a container waiting in CrashLoopBackOff.
pub fn message(delay: Duration, container: &str, pod: &str, namespace: &str, uid: &str) -> String {
    let delay = go_duration(delay);
    format!("back-off {delay} restarting failed container={container} pod={pod}_{namespace}({uid})")
}

/// Whole seconds as Go's `time.Duration.String()` prints them: `10s`, `1m20s`, `5m0s`.
fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Restart delays of a container that fails at once every time it starts.
    fn delays(n: usize) -> Vec<u64> {
        let mut b = CrashLoopBackoff::default();
        let mut now = Instant::now();
        let mut out = Vec::new();
        for _ in 0..n {
            let finished = now;
            match b.restart_delay(finished, now) {
                None => out.push(0),
                Some(wait) => {
                    out.push(wait.as_secs());
                    now += wait;
                    // After waiting, the restart is allowed.
                    assert_eq!(b.restart_delay(finished, now), None);
                }
            }
        }
        out
    }

    #[test]
    fn first_restart_is_immediate_then_doubles_to_the_cap() {
        assert_eq!(delays(9), vec![0, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn waiting_shrinks_as_time_passes() {
        let mut b = CrashLoopBackoff::default();
        let t0 = Instant::now();
        assert_eq!(b.restart_delay(t0, t0), None);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            b.restart_delay(t1, t1 + Duration::from_secs(4)),
            Some(Duration::from_secs(6))
        );
    }

    #[test]
    fn a_long_healthy_run_resets_the_backoff() {
        let mut b = CrashLoopBackoff::default();
        let t0 = Instant::now();
        assert_eq!(b.restart_delay(t0, t0), None);
        let t1 = t0 + Duration::from_secs(1);
        assert!(b.restart_delay(t1, t1).is_some());
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(b.restart_delay(t1, t2), None); // now 20 s
        // Runs for more than 10 minutes, then fails: immediate restart again.
        let t3 = t2 + Duration::from_secs(601);
        assert_eq!(b.restart_delay(t3, t3), None);
        assert_eq!(b.current(), INITIAL);
    }

    #[test]
    fn message_matches_upstream() {
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(
            message(Duration::from_secs(20), "app", "p", "default", "u1"),
            "back-off 20s restarting failed container=app pod=p_default(u1)"
        );
    }
}
