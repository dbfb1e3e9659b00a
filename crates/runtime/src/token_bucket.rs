//! A token bucket, as golang.org/x/time/rate's `Limiter` that client-go's rate limits build on:
//! it holds up to `burst` tokens and refills at `qps` tokens a second, starting full.
//!
//! Two ways to spend a token, for the two ways upstream uses a bucket:
//! - [`TokenBucket::reserve`] always takes one, ahead of time if need be, and says how long
//!   the caller must wait for it: client-side request limits (`rest.Config.QPS`/`Burst`) and
//!   the work queues' overall requeue limit.
//! - [`TokenBucket::try_take`] takes one only if it is there: spam filters, which drop what
//!   they cannot pay for.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use pernode_runtime::TokenBucket;
//!
//! let mut bucket = TokenBucket::new(10.0, 1.0);
//! let now = Instant::now();
//! assert_eq!(bucket.reserve(now), Duration::ZERO); // the burst
//! assert_eq!(bucket.reserve(now), Duration::from_millis(100)); // then one per 1/qps
//! assert!(!bucket.try_take(now)); // nothing left to take
//! ```
//!
//! The bucket is plain data: callers keep it under their own lock and pass the time in, so
//! tests need no clock.

use std::time::{Duration, Instant};

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    /// Negative when tokens have been reserved ahead of time.
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `qps` a second (`qps` > 0).
    pub fn new(qps: f64, burst: f64) -> Self {
        TokenBucket {
            qps,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        // `now` may lag `last` when callers read the clock before taking their lock.
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.last = self.last.max(now);
    }

    /// Takes a token, ahead of time if none is there, and returns how long from `now` until
    /// it would have been: the caller waits that long before acting.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.qps)
        }
    }

    /// Takes a token if one is there.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_past_the_burst_are_spaced_by_one_over_qps() {
        let start = Instant::now();
        let mut b = TokenBucket::new(4.0, 2.0);
        b.last = start;
        let waits: Vec<Duration> = (0..5).map(|_| b.reserve(start)).collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 0, 250, 500, 750]);
        // A second later four tokens have come back, three of them already reserved.
        assert_eq!(b.reserve(start + Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(
            b.reserve(start + Duration::from_secs(1)).as_millis(),
            250,
            "the bucket refills, never beyond its burst"
        );
    }

    #[test]
    fn try_take_drops_what_it_cannot_pay_for_and_refills_up_to_the_burst() {
        let start = Instant::now();
        let mut b = TokenBucket::new(1.0, 2.0);
        b.last = start;
        assert!(b.try_take(start));
        assert!(b.try_take(start));
        assert!(!b.try_take(start));
        assert!(!b.try_take(start + Duration::from_millis(900)));
        assert!(b.try_take(start + Duration::from_millis(1100)));
        // An hour idle refills only up to the burst.
        let later = start + Duration::from_secs(3600);
        assert!(b.try_take(later));
        assert!(b.try_take(later));
        assert!(!b.try_take(later));
    }
}
