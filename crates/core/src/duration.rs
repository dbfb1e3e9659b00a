//! Human durations for the AGE column, as apimachinery's `duration.HumanDuration` and the
//! printers' `translateTimestampSince`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// `duration.HumanDuration` for a non-negative duration: `45s`, `3m20s`, `5h`, `2d3h`, `3d`,
/// `400d`, `2y100d`, `9y`. About two or three significant figures.
pub fn human_duration(d: std::time::Duration) -> String {
    let nanos = i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
    human_duration_nanos(nanos)
}

/// `duration.HumanDuration` for a signed duration: up to one second in the future counts as
/// `0s` (clock skew); further in the future is `<invalid>`.
pub fn human_signed_duration(d: SignedDuration) -> String {
    human_duration_nanos(d.as_nanos())
}

fn human_duration_nanos(nanos: i128) -> String {
    const SECOND: i128 = 1_000_000_000;
    const MINUTE: i128 = 60 * SECOND;
    const HOUR: i128 = 60 * MINUTE;
    // Go truncates toward zero: -1.5s is -1 second.
    let seconds = nanos / SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

/// `translateTimestampSince`: the AGE of a timestamp at `now`, `<unknown>` when absent.
pub fn age_since(t: Option<&Time>, now: Timestamp) -> String {
    match t {
        None => "<unknown>".to_string(),
        Some(t) => human_signed_duration(now.duration_since(t.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn human_durations_like_upstream() {
        let s = |n: u64| Duration::from_secs(n);
        let m = |n: u64| Duration::from_secs(n * 60);
        let h = |n: u64| Duration::from_secs(n * 3600);
        let d = |n: u64| Duration::from_secs(n * 86400);
        let cases = [
            (s(0), "0s"),
            (Duration::from_millis(999), "0s"),
            (s(1), "1s"),
            (s(45), "45s"),
            (s(60), "60s"),
            (s(119), "119s"),
            (s(120), "2m"),
            (s(200), "3m20s"),
            (m(3), "3m"),
            (s(9 * 60 + 59), "9m59s"),
            (m(10), "10m"),
            (m(10) + s(30), "10m"),
            (m(179), "179m"),
            (m(180), "3h"),
            (h(3) + m(1), "3h1m"),
            (h(5), "5h"),
            (h(7) + m(59), "7h59m"),
            (h(8), "8h"),
            (h(8) + m(59), "8h"),
            (h(47), "47h"),
            (h(48), "2d"),
            (h(51), "2d3h"),
            (d(3), "3d"),
            (d(7) + h(23), "7d23h"),
            (d(8), "8d"),
            (d(8) + h(23), "8d"),
            (d(400), "400d"),
            (d(729), "729d"),
            (d(730), "2y"),
            (d(830), "2y100d"),
            (d(365 * 8 - 1), "7y364d"),
            (d(365 * 8), "8y"),
            (d(365 * 10 + 100), "10y"),
        ];
        for (dur, want) in cases {
            assert_eq!(human_duration(dur), want, "{dur:?}");
        }
    }

    #[test]
    fn negative_durations() {
        assert_eq!(
            human_signed_duration(SignedDuration::from_millis(-1500)),
            "0s"
        );
        assert_eq!(
            human_signed_duration(SignedDuration::from_millis(-1999)),
            "0s"
        );
        assert_eq!(
            human_signed_duration(SignedDuration::from_secs(-2)),
            "<invalid>"
        );
    }

    #[test]
    fn ages() {
        let now: Timestamp = "2024-01-03T03:00:00Z".parse().expect("now");
        let created = Time("2024-01-01T00:00:00Z".parse().expect("t"));
        assert_eq!(age_since(Some(&created), now), "2d3h");
        assert_eq!(age_since(None, now), "<unknown>");
        let future = Time("2024-01-03T03:00:05Z".parse().expect("t"));
        assert_eq!(age_since(Some(&future), now), "<invalid>");
    }
}
