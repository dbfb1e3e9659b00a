//! Resource quantities (`100m`, `1.5`, `2Gi`, `512Mi`, `1e3`), as apimachinery's
//! `resource.ParseQuantity`.
//!
//! Parsing follows upstream's scanner exactly (which strings are accepted, and its three error
//! texts). The value is kept exactly at nano precision: like upstream, anything finer is rounded
//! up (away from zero) to the next nano, and binary-suffixed values are capped at 2^63-1.
//! [`Quantity::value`] and [`Quantity::milli_value`] round up (away from zero) as upstream's
//! `Value()`/`MilliValue()`. Values beyond ±1.7e29 saturate (upstream keeps arbitrary precision).

use std::cmp::Ordering;
use std::fmt;

/// The regular expression upstream quotes in its format error.
pub const SPLIT_RE: &str = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$";

/// Why a quantity did not parse (upstream's `ErrFormatWrong`, `ErrNumeric`, `ErrSuffix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// `quantities must match the regular expression '...'`
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    /// `unable to parse numeric part of quantity`
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// `unable to parse quantity's suffix`
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// The suffix family a quantity was written with (upstream's `Format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `12e6`
    DecimalExponent,
    /// `12Mi`
    BinarySI,
    /// `12M`, `100m`, `5`
    DecimalSI,
}

/// A parsed quantity: an exact number of nano-units plus the format it was written in.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

const NANO: i128 = 1_000_000_000;
const MAX_BINARY_NANOS: u128 = (i64::MAX as u128) * (NANO as u128);

impl Quantity {
    /// A quantity of `n` nano-units.
    pub fn from_nanos(nanos: i128, format: Format) -> Quantity {
        Quantity { nanos, format }
    }

    /// A quantity of `m` milli-units (e.g. millicores).
    pub fn from_millis(millis: i128) -> Quantity {
        Quantity {
            nanos: millis.saturating_mul(1_000_000),
            format: Format::DecimalSI,
        }
    }

    /// A quantity of `v` units (e.g. bytes).
    pub fn from_value(v: i128, format: Format) -> Quantity {
        Quantity {
            nanos: v.saturating_mul(NANO),
            format,
        }
    }

    /// The exact value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The format the quantity was written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// True for zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Sign: -1, 0 or 1.
    pub fn signum(&self) -> i32 {
        self.nanos.signum() as i32
    }

    /// `Quantity.Value()`: whole units, rounded up away from zero (`1.1` -> 2, `100m` -> 1).
    pub fn value(&self) -> i128 {
        div_away_from_zero(self.nanos, NANO)
    }

    /// `Quantity.MilliValue()`: milli-units, rounded up away from zero (`1n` -> 1).
    pub fn milli_value(&self) -> i128 {
        div_away_from_zero(self.nanos, 1_000_000)
    }

    /// Sum (saturating), keeping this quantity's format.
    pub fn saturating_add(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
            format: self.format,
        }
    }

    /// Difference (saturating), keeping this quantity's format.
    pub fn saturating_sub(&self, other: &Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_sub(other.nanos),
            format: self.format,
        }
    }
}

fn div_away_from_zero(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d == 0 {
        q
    } else if n > 0 {
        q + 1
    } else {
        q - 1
    }
}

impl PartialEq for Quantity {
    /// Numeric equality (`Quantity.Cmp == 0`), ignoring the format.
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}
impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_quantity(s)
    }
}

impl fmt::Display for Quantity {
    /// A plain decimal rendering of the exact value (`1.5`, `2147483648`, `-0.001`); this is
    /// not upstream's canonical serialization.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let whole = abs / NANO as u128;
        let frac = abs % NANO as u128;
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let frac = format!("{frac:09}");
            write!(f, "{sign}{whole}.{}", frac.trim_end_matches('0'))
        }
    }
}

/// Output of upstream's `parseQuantityString`.
struct Scanned<'a> {
    positive: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
    /// The numeric text (sign, digits, point) as written; only used to detect a number with
    /// no digits at all, which upstream's slow path rejects as numeric.
    value: &'a str,
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// A port of upstream's `parseQuantityString` fast scanner.
fn scan(s: &str) -> Result<Scanned<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut positive = true;
    let mut pos = 0;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    // strip leading zeros
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(Scanned {
            positive,
            num: "0",
            denom: "",
            suffix: "",
            value: "0",
        });
    }
    // numerator
    let num_start = pos;
    while pos < end && is_digit(b[pos]) {
        pos += 1;
    }
    let mut num = &s[num_start..pos];
    if pos >= end {
        return Ok(Scanned {
            positive,
            num,
            denom: "",
            suffix: "",
            value: s,
        });
    }
    if num.is_empty() {
        num = "0";
    }
    // denominator
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && is_digit(b[pos]) {
            pos += 1;
        }
        denom = &s[start..pos];
        if pos >= end {
            return Ok(Scanned {
                positive,
                num,
                denom,
                suffix: "",
                value: s,
            });
        }
    }
    let value = &s[..pos];
    // suffix: letters, an optional sign, digits; anything else is a format error
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && is_digit(b[pos]) {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    Ok(Scanned {
        positive,
        num,
        denom,
        suffix: &s[suffix_start..],
        value,
    })
}

/// Upstream's `quantitySuffixer.interpret`: (base, exponent, format).
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, Format)> {
    let dec = |e| Some((10, e, Format::DecimalSI));
    let bin = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "" => dec(0),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            if rest.is_empty() {
                return None;
            }
            // strconv.ParseInt(.., 10, 64) then int32(..): wraps like Go's conversion.
            let parsed: i64 = rest.parse().ok()?;
            Some((10, parsed as i32, Format::DecimalExponent))
        }
    }
}

/// Parses a run of decimal digits into u128, saturating.
fn digits_to_u128(d: &str) -> u128 {
    let mut v: u128 = 0;
    for c in d.bytes() {
        v = v
            .saturating_mul(10)
            .saturating_add(u128::from(c.wrapping_sub(b'0')));
    }
    v
}

/// `ceil(0.denom * mult)` for a multiplier `mult` small enough that `9 * mult` fits in u128,
/// computed exactly digit by digit (Horner's scheme from the last digit).
fn ceil_fraction_times(denom: &str, mult: u128) -> u128 {
    let mut q: u128 = 0;
    let mut inexact = false;
    for c in denom.bytes().rev() {
        let t = u128::from(c.wrapping_sub(b'0')) * mult + q;
        if !t.is_multiple_of(10) {
            inexact = true;
        }
        q = t / 10;
    }
    if inexact { q + 1 } else { q }
}

/// `resource.ParseQuantity`.
pub fn parse_quantity(s: &str) -> Result<Quantity, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::FormatWrong);
    }
    if s == "0" {
        return Ok(Quantity::from_nanos(0, Format::DecimalSI));
    }
    let sc = scan(s)?;
    let (base, exponent, mut format) = interpret_suffix(sc.suffix).ok_or(QuantityError::Suffix)?;

    let magnitude: u128 = if base == 10 {
        // Exact decimal shift: nanos = num.denom * 10^(exponent + 9), rounded up.
        let total_digits = sc.num.len() as i64 + sc.denom.len() as i64;
        let shift = i64::from(exponent) + 9 - sc.denom.len() as i64;
        // Upstream's slow path parses the numeric text; text with no digit fails there.
        let slow_path = total_digits > 18 || i64::from(exponent) - (sc.denom.len() as i64) < -9;
        if slow_path && !sc.value.bytes().any(|c| c.is_ascii_digit()) {
            return Err(QuantityError::Numeric);
        }
        let digits = format!("{}{}", sc.num, sc.denom);
        let digits = digits.trim_start_matches('0');
        if digits.is_empty() {
            0
        } else if shift >= 0 {
            let v = digits_to_u128(digits);
            if shift > 38 {
                u128::MAX
            } else {
                v.saturating_mul(10u128.pow(shift as u32))
            }
        } else {
            let drop = (-shift) as usize;
            if drop >= digits.len() {
                1 // a non-zero value below one nano rounds up to one nano
            } else {
                let (head, tail) = digits.split_at(digits.len() - drop);
                let v = digits_to_u128(head);
                if tail.bytes().any(|c| c != b'0') {
                    v.saturating_add(1)
                } else {
                    v
                }
            }
        }
    } else {
        // Binary: nanos = num.denom * 2^exponent * 10^9, rounded up, capped at 2^63-1 units.
        let exp = exponent as u32;
        let num = sc.num.trim_start_matches('0');
        let whole_units = if num.len() > 19 {
            u128::MAX
        } else {
            digits_to_u128(num).saturating_mul(1u128 << exp)
        };
        if whole_units > i64::MAX as u128 {
            MAX_BINARY_NANOS
        } else {
            let mult = (1u128 << exp) * NANO as u128;
            let v = whole_units * NANO as u128 + ceil_fraction_times(sc.denom, mult);
            v.min(MAX_BINARY_NANOS)
        }
    };
    if format == Format::BinarySI && magnitude > 0 && magnitude < NANO as u128 {
        // Upstream switches sub-unit binary values to DecimalSI.
        format = Format::DecimalSI;
    }
    let nanos = i128::try_from(magnitude).unwrap_or(i128::MAX);
    Ok(Quantity {
        nanos: if sc.positive { nanos } else { -nanos },
        format,
    })
}

/// Parses a k8s-openapi `Quantity` (a string newtype).
pub fn parse_k8s_quantity(
    q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
) -> Result<Quantity, QuantityError> {
    parse_quantity(&q.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(s: &str) -> i128 {
        parse_quantity(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .nanos()
    }

    const G: i128 = 1_000_000_000;

    #[test]
    fn parses_upstream_table() {
        let ki: i128 = 1024;
        let cases: &[(&str, i128, Format)] = &[
            ("0", 0, Format::DecimalSI),
            ("0n", 0, Format::DecimalSI),
            ("0u", 0, Format::DecimalSI),
            ("0m", 0, Format::DecimalSI),
            ("0Ki", 0, Format::BinarySI),
            ("0k", 0, Format::DecimalSI),
            ("0Mi", 0, Format::BinarySI),
            ("0M", 0, Format::DecimalSI),
            ("0Gi", 0, Format::BinarySI),
            ("0G", 0, Format::DecimalSI),
            ("0Ti", 0, Format::BinarySI),
            ("0T", 0, Format::DecimalSI),
            ("0.0", 0, Format::DecimalSI),
            ("0.0Ki", 0, Format::BinarySI),
            ("1Ki", ki * G, Format::BinarySI),
            ("8Ki", 8 * ki * G, Format::BinarySI),
            ("7Mi", 7 * ki * ki * G, Format::BinarySI),
            ("6Gi", 6 * ki.pow(3) * G, Format::BinarySI),
            ("5Ti", 5 * ki.pow(4) * G, Format::BinarySI),
            ("4Pi", 4 * ki.pow(5) * G, Format::BinarySI),
            ("3Ei", 3 * ki.pow(6) * G, Format::BinarySI),
            ("100Ti", 100 * ki.pow(4) * G, Format::BinarySI),
            ("5n", 5, Format::DecimalSI),
            ("4u", 4_000, Format::DecimalSI),
            ("3m", 3_000_000, Format::DecimalSI),
            ("9", 9 * G, Format::DecimalSI),
            ("8k", 8_000 * G, Format::DecimalSI),
            ("50k", 50_000 * G, Format::DecimalSI),
            ("7M", 7_000_000 * G, Format::DecimalSI),
            ("1E", 10i128.pow(18) * G, Format::DecimalSI),
            ("1E-3", 1_000_000, Format::DecimalExponent),
            ("1e3", 1_000 * G, Format::DecimalExponent),
            ("1E6", 1_000_000 * G, Format::DecimalExponent),
            ("1e18", 10i128.pow(18) * G, Format::DecimalExponent),
            ("100.035k", 100_035 * G, Format::DecimalSI),
            ("0.001", 1_000_000, Format::DecimalSI),
            ("0.0005k", G / 2, Format::DecimalSI),
            ("0.5", G / 2, Format::DecimalSI),
            ("0.00050k", G / 2, Format::DecimalSI),
            ("0.5e0", G / 2, Format::DecimalExponent),
            ("0.5e-2", 5_000_000, Format::DecimalExponent),
            ("10.035M", 10_035_000 * G, Format::DecimalSI),
            ("1.2e3", 1_200 * G, Format::DecimalExponent),
            ("1.3E+6", 1_300_000 * G, Format::DecimalExponent),
            ("1.7E18", 17 * 10i128.pow(17) * G, Format::DecimalExponent),
            ("9.01", 9_010_000_000, Format::DecimalSI),
            ("6.987654321G", 6_987_654_321 * G, Format::DecimalSI),
            ("2.5P", 25 * 10i128.pow(14) * G, Format::DecimalSI),
            ("3.001n", 4, Format::DecimalSI),
            ("1.1E-9", 2, Format::DecimalExponent),
            ("0.0000000001", 1, Format::DecimalSI),
            ("0.0000000005", 1, Format::DecimalSI),
            ("0.00000000050", 1, Format::DecimalSI),
            ("0.5e-9", 1, Format::DecimalExponent),
            ("0.9n", 1, Format::DecimalSI),
            ("0.00000012345", 124, Format::DecimalSI),
            ("0.00000012354", 124, Format::DecimalSI),
            ("9Ei", i64::MAX as i128 * G, Format::BinarySI),
            (
                "9223372036854775807Ki",
                i64::MAX as i128 * G,
                Format::BinarySI,
            ),
            ("12E", 12 * 10i128.pow(18) * G, Format::DecimalSI),
            ("100.035Ki", 102_435_840_000_000, Format::BinarySI),
            ("0.5Mi", 512 * ki * G, Format::BinarySI),
            ("0.05Gi", 53_687_091_200_000_000, Format::BinarySI),
            ("0.025Ti", 27_487_790_694_400_000_000, Format::BinarySI),
            ("0.000000000001Ki", 2, Format::DecimalSI),
            (".001", 1_000_000, Format::DecimalSI),
            (".0001k", 100_000_000, Format::DecimalSI),
            ("1.", G, Format::DecimalSI),
            ("1.G", G * G, Format::DecimalSI),
            ("100m", 100_000_000, Format::DecimalSI),
            ("250m", 250_000_000, Format::DecimalSI),
            ("1.5", 1_500_000_000, Format::DecimalSI),
            ("2Gi", 2 * ki.pow(3) * G, Format::BinarySI),
            ("512Mi", 512 * ki * ki * G, Format::BinarySI),
            ("1k", 1_000 * G, Format::DecimalSI),
            ("007", 7 * G, Format::DecimalSI),
            ("000", 0, Format::DecimalSI),
        ];
        for &(input, want, format) in cases {
            let q = parse_quantity(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(q.nanos(), want, "{input}");
            assert_eq!(q.format(), format, "{input}");
            let neg = parse_quantity(&format!("-{input}")).expect("negative");
            assert_eq!(neg.nanos(), -want, "-{input}");
            let pos = parse_quantity(&format!("+{input}")).expect("positive");
            assert_eq!(pos.nanos(), want, "+{input}");
        }
    }

    #[test]
    fn rejects_upstream_invalid_table() {
        let cases = [
            ("", QuantityError::FormatWrong),
            ("1.1.M", QuantityError::FormatWrong),
            ("1+1.0M", QuantityError::FormatWrong),
            ("0.1mi", QuantityError::Suffix),
            ("0.1am", QuantityError::FormatWrong),
            ("aoeu", QuantityError::FormatWrong),
            (".5i", QuantityError::Suffix),
            ("1i", QuantityError::Suffix),
            ("-3.01i", QuantityError::Suffix),
            ("-3.01e-", QuantityError::Suffix),
            (" 1", QuantityError::FormatWrong),
            ("1 ", QuantityError::FormatWrong),
            ("1KiB", QuantityError::FormatWrong),
            ("1K", QuantityError::Suffix),
            ("1ki", QuantityError::Suffix),
            ("1e", QuantityError::Suffix),
            ("1e1.5", QuantityError::FormatWrong),
            ("1e3k", QuantityError::FormatWrong),
            ("1E3Ki", QuantityError::FormatWrong),
            ("1,5", QuantityError::FormatWrong),
            ("0x10", QuantityError::FormatWrong),
            ("1é", QuantityError::FormatWrong),
            ("١", QuantityError::FormatWrong),
            ("1\u{0}", QuantityError::FormatWrong),
        ];
        for (input, want) in cases {
            assert_eq!(parse_quantity(input).expect_err(input), want, "{input:?}");
        }
        assert_eq!(
            QuantityError::FormatWrong.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn values_round_up() {
        let cases: &[(&str, i128, i128)] = &[
            ("100m", 1, 100),
            ("1", 1, 1000),
            ("1.1", 2, 1100),
            ("1n", 1, 1),
            ("1500u", 1, 2),
            ("2Gi", 2_147_483_648, 2_147_483_648_000),
            ("512Mi", 536_870_912, 536_870_912_000),
            ("1e3", 1000, 1_000_000),
            ("-1.5", -2, -1500),
            ("-1n", -1, -1),
            ("0", 0, 0),
            ("9.01", 10, 9010),
        ];
        for &(input, v, m) in cases {
            let q = parse_quantity(input).expect(input);
            assert_eq!(q.value(), v, "{input} value");
            assert_eq!(q.milli_value(), m, "{input} milli");
        }
    }

    #[test]
    fn compares_and_displays() {
        assert!(parse_quantity("1Gi").expect("a") > parse_quantity("1G").expect("b"));
        assert_eq!(
            parse_quantity("1000m").expect("a"),
            parse_quantity("1").expect("b")
        );
        assert_eq!(parse_quantity("1.5").expect("a").to_string(), "1.5");
        assert_eq!(parse_quantity("-1m").expect("a").to_string(), "-0.001");
        assert_eq!(parse_quantity("2Ki").expect("a").to_string(), "2048");
        let k = k8s_openapi::apimachinery::pkg::api::resource::Quantity("250m".into());
        assert_eq!(parse_k8s_quantity(&k).expect("k8s").milli_value(), 250);
        let sum = Quantity::from_millis(100).saturating_add(&Quantity::from_millis(150));
        assert_eq!(sum.milli_value(), 250);
        assert_eq!(nanos("1e28"), 10i128.pow(37)); // saturates only beyond i128
        assert_eq!(nanos("1e40"), i128::MAX);
        assert_eq!(nanos("1e-40"), 1);
    }
}
