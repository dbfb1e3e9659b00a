//! Durations as Go's `time.ParseDuration` reads them (`30s`, `5m`, `1h30m`, `1.5h`, `300ms`),
//! for annotations whose values users write as they would a Go flag.
//!
//! ```
//! use pernode_core::go_duration::parse_go_duration;
//! use std::time::Duration;
//! assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
//! assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
//! assert!(parse_go_duration("5").is_err());
//! ```

use std::time::Duration;

/// A duration that does not parse, with Go's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoDurationError {
    /// Not a duration at all (or out of range).
    #[error("time: invalid duration \"{0}\"")]
    Invalid(String),
    /// A number without a unit.
    #[error("time: missing unit in duration \"{0}\"")]
    MissingUnit(String),
    /// A unit Go does not know.
    #[error("time: unknown unit \"{unit}\" in duration \"{duration}\"")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole value.
        duration: String,
    },
    /// A negative duration where only a length of time makes sense.
    #[error("time: negative duration \"{0}\"")]
    Negative(String),
}

/// Nanoseconds per unit, as Go's `unitMap`.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Go's `time.ParseDuration` for a non-negative duration: a sequence of decimal numbers, each
/// with an optional fraction and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), optionally
/// signed; `0` alone needs no unit. Like Go, at most 2^63-1 ns. A negative value is an error
/// here (Go would return it).
pub fn parse_go_duration(text: &str) -> Result<Duration, GoDurationError> {
    let invalid = || GoDurationError::Invalid(text.to_owned());
    let (negative, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const MAX: u128 = i64::MAX as u128;
    let mut total: u128 = 0;
    while !s.is_empty() {
        let is_num = |b: u8| b == b'.' || b.is_ascii_digit();
        if !is_num(s.as_bytes()[0]) {
            return Err(invalid());
        }
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let mut whole: u128 = 0;
        for b in s[..int_len].bytes() {
            whole = whole * 10 + u128::from(b - b'0');
            if whole > MAX {
                return Err(invalid());
            }
        }
        s = &s[int_len..];
        // The fraction's digits as a numerator over a power of ten (Go drops digits past
        // what fits; 18 keep nanosecond precision for every unit).
        let (mut numerator, mut scale, mut frac_len) = (0u128, 1u128, 0usize);
        if let Some(rest) = s.strip_prefix('.') {
            frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            for b in rest[..frac_len].bytes().take(18) {
                numerator = numerator * 10 + u128::from(b - b'0');
                scale *= 10;
            }
            s = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = s.bytes().take_while(|b| !is_num(*b)).count();
        if unit_len == 0 {
            return Err(GoDurationError::MissingUnit(text.to_owned()));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let per = unit_nanos(unit).ok_or_else(|| GoDurationError::UnknownUnit {
            unit: unit.to_owned(),
            duration: text.to_owned(),
        })?;
        total += whole.checked_mul(per).ok_or_else(invalid)? + numerator * per / scale;
        if total > MAX {
            return Err(invalid());
        }
    }
    if negative && total > 0 {
        return Err(GoDurationError::Negative(text.to_owned()));
    }
    let nanos = u64::try_from(total).map_err(|_| invalid())?;
    Ok(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_as_go_parses_them() {
        let ok = |s: &str| parse_go_duration(s).unwrap();
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("-0"), Duration::ZERO);
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("+1h2m3s"), Duration::from_secs(3723));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("300ms"), Duration::from_millis(300));
        assert_eq!(ok("10us"), Duration::from_micros(10));
        assert_eq!(ok("10µs"), Duration::from_micros(10));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("0.000000001s"), Duration::from_nanos(1));
        assert_eq!(ok("2562047h"), Duration::from_secs(2_562_047 * 3600));
    }

    #[test]
    fn go_duration_errors_carry_gos_messages() {
        let err = |s: &str| parse_go_duration(s).unwrap_err().to_string();
        assert_eq!(err(""), "time: invalid duration \"\"");
        assert_eq!(err("s"), "time: invalid duration \"s\"");
        assert_eq!(err(".s"), "time: invalid duration \".s\"");
        assert_eq!(err("5"), "time: missing unit in duration \"5\"");
        assert_eq!(err("5d"), "time: unknown unit \"d\" in duration \"5d\"");
        assert_eq!(
            err("1m-1s"),
            "time: unknown unit \"m-\" in duration \"1m-1s\""
        );
        assert_eq!(err("3000000h"), "time: invalid duration \"3000000h\"");
        assert_eq!(err("-5s"), "time: negative duration \"-5s\"");
        assert_eq!(err(" 5s"), "time: invalid duration \" 5s\"");
    }
}
