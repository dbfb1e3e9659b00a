//! `metav1.MicroTime`'s JSON decoding: Go's `time.Parse` with upstream's `RFC3339Micro` layout
//! (`2006-01-02T15:04:05.000000Z07:00`), which takes exactly six fractional digits, and its
//! error texts (`time.ParseError`), which kube-apiserver puts in the 400 it answers.

/// Upstream's `metav1.RFC3339Micro`.
pub const RFC3339_MICRO: &str = "2006-01-02T15:04:05.000000Z07:00";

/// The layout's chunks, as Go's `nextStdChunk` splits it: a literal prefix, then a field.
#[derive(Clone, Copy)]
enum Std {
    LongYear,
    ZeroMonth,
    ZeroDay,
    Hour,
    ZeroMinute,
    ZeroSecond,
    FracSecond6,
    Iso8601ColonTz,
}

const CHUNKS: &[(&str, Std, &str)] = &[
    ("", Std::LongYear, "2006"),
    ("-", Std::ZeroMonth, "01"),
    ("-", Std::ZeroDay, "02"),
    ("T", Std::Hour, "15"),
    (":", Std::ZeroMinute, "04"),
    (":", Std::ZeroSecond, "05"),
    ("", Std::FracSecond6, ".000000"),
    ("", Std::Iso8601ColonTz, "Z07:00"),
];

/// Checks `value` as `json.Unmarshal` of a MicroTime does: `Ok` when Go's
/// `time.Parse(RFC3339Micro, value)` succeeds, else Go's error text.
pub fn parse_rfc3339_micro(value: &str) -> Result<(), String> {
    let fail = |elem_layout: &str, rest: &str| {
        Err(format!(
            "parsing time {} as {}: cannot parse {} as {}",
            time_quote(value),
            time_quote(RFC3339_MICRO),
            time_quote(rest),
            time_quote(elem_layout)
        ))
    };
    let range = |what: &str| {
        Err(format!(
            "parsing time {}: {what} out of range",
            time_quote(value)
        ))
    };
    let mut rest = value;
    let (mut year, mut month, mut day) = (0i64, 0i64, 0i64);
    for &(prefix, std, elem) in CHUNKS {
        // `skip`: the literal must match byte for byte.
        for b in prefix.bytes() {
            if rest.as_bytes().first() != Some(&b) {
                return fail(prefix, rest);
            }
            rest = &rest[1..];
        }
        match std {
            Std::LongYear => {
                if rest.len() < 4 || !digit_at(rest, 0) {
                    return fail(elem, rest);
                }
                let (p, r) = split(rest, 4);
                rest = r;
                year = match atoi(p) {
                    Some(y) => y,
                    None => return fail(elem, rest),
                };
            }
            Std::ZeroMonth | Std::ZeroDay | Std::ZeroMinute | Std::ZeroSecond | Std::Hour => {
                let fixed = !matches!(std, Std::Hour);
                let Some((n, r)) = getnum(rest, fixed) else {
                    return fail(elem, rest);
                };
                rest = r;
                let bad = match std {
                    Std::ZeroMonth => (!(1..=12).contains(&n)).then_some("month"),
                    Std::ZeroDay => (!(0..=31).contains(&n)).then_some("day"),
                    Std::Hour => (!(0..24).contains(&n)).then_some("hour"),
                    Std::ZeroMinute => (!(0..60).contains(&n)).then_some("minute"),
                    _ => (!(0..60).contains(&n)).then_some("second"),
                };
                if let Some(what) = bad {
                    return range(what);
                }
                match std {
                    Std::ZeroMonth => month = n,
                    Std::ZeroDay => day = n,
                    _ => {}
                }
            }
            Std::FracSecond6 => {
                // stdFracSecond0 takes exactly the layout's digits; the value moves on even
                // when they do not parse, and the error shows what follows them.
                const NDIGIT: usize = 7;
                if rest.len() < NDIGIT {
                    return fail(elem, rest);
                }
                let (p, r) = split(rest, NDIGIT);
                rest = r;
                if !matches!(p.as_bytes()[0], b'.' | b',') || atoi(&p[1..]).is_none() {
                    return fail(elem, rest);
                }
            }
            Std::Iso8601ColonTz => {
                if rest.starts_with('Z') {
                    rest = &rest[1..];
                    continue;
                }
                if rest.len() < 6 || rest.as_bytes()[3] != b':' {
                    return fail(elem, rest);
                }
                let (sign, hour, min) = (&rest[0..1], &rest[1..3], &rest[4..6]);
                let after = &rest[6..];
                let parsed = getnum(hour, true).zip(getnum(min, true));
                let Some(((hr, _), (mm, _))) = parsed else {
                    return fail(elem, after);
                };
                if mm > 60 {
                    return range("time zone offset minute");
                }
                if hr > 24 {
                    return range("time zone offset hour");
                }
                if sign != "+" && sign != "-" {
                    return fail(elem, after);
                }
                rest = after;
            }
        }
    }
    if !rest.is_empty() {
        return Err(format!(
            "parsing time {}: extra text: {}",
            time_quote(value),
            time_quote(rest)
        ));
    }
    if day < 1 || day > days_in(month, year) {
        return range("day");
    }
    Ok(())
}

/// `rest` split after `n` bytes, or at the next character boundary past them.
fn split(s: &str, n: usize) -> (&str, &str) {
    let mut at = n.min(s.len());
    while !s.is_char_boundary(at) {
        at += 1;
    }
    s.split_at(at)
}

fn digit_at(s: &str, i: usize) -> bool {
    s.as_bytes().get(i).is_some_and(u8::is_ascii_digit)
}

/// Go's `getnum`: one or two digits (`fixed`: exactly two).
fn getnum(s: &str, fixed: bool) -> Option<(i64, &str)> {
    if !digit_at(s, 0) {
        return None;
    }
    let d0 = i64::from(s.as_bytes()[0] - b'0');
    if !digit_at(s, 1) {
        return (!fixed).then_some((d0, &s[1..]));
    }
    Some((d0 * 10 + i64::from(s.as_bytes()[1] - b'0'), &s[2..]))
}

/// Go's `time.atoi`: an optional sign, then digits and nothing else.
fn atoi(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    Some(if neg { -n } else { n })
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The `time` package's own `quote`: printable ASCII as is (with `"` and `\` escaped), every
/// other byte of a character as `\xNN`.
fn time_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c as u32 >= 0x80 || c < ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// The error of decoding a JSON value that is not a string into a MicroTime (`null` is the
/// zero time and decodes): Go's `json: cannot unmarshal number into Go value of type string`.
pub fn non_string_error(json_type: &str) -> String {
    format!("json: cannot unmarshal {json_type} into Go value of type string")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_fractional_digits_parse() {
        assert_eq!(parse_rfc3339_micro("2024-01-02T03:04:05.123456Z"), Ok(()));
        assert_eq!(
            parse_rfc3339_micro("2024-01-02T03:04:05.000000+02:00"),
            Ok(())
        );
        assert_eq!(
            parse_rfc3339_micro("2024-02-29T23:59:59.999999-07:30"),
            Ok(())
        );
    }

    #[test]
    fn other_precisions_fail_as_go_does() {
        let layout = r#""2006-01-02T15:04:05.000000Z07:00""#;
        assert_eq!(
            parse_rfc3339_micro("2024-01-02T03:04:05Z").unwrap_err(),
            format!(
                r#"parsing time "2024-01-02T03:04:05Z" as {layout}: cannot parse "Z" as ".000000""#
            )
        );
        assert_eq!(
            parse_rfc3339_micro("2024-01-02T03:04:05.123Z").unwrap_err(),
            format!(
                r#"parsing time "2024-01-02T03:04:05.123Z" as {layout}: cannot parse ".123Z" as ".000000""#
            )
        );
        assert_eq!(
            parse_rfc3339_micro("2024-01-02T03:04:05.123456789Z").unwrap_err(),
            format!(
                r#"parsing time "2024-01-02T03:04:05.123456789Z" as {layout}: cannot parse "789Z" as "Z07:00""#
            )
        );
        assert_eq!(
            parse_rfc3339_micro("2024-13-02T03:04:05.000000Z").unwrap_err(),
            r#"parsing time "2024-13-02T03:04:05.000000Z": month out of range"#
        );
        assert_eq!(
            parse_rfc3339_micro("2023-02-29T03:04:05.000000Z").unwrap_err(),
            r#"parsing time "2023-02-29T03:04:05.000000Z": day out of range"#
        );
        assert_eq!(
            parse_rfc3339_micro("2024-01-02 03:04:05.000000Z").unwrap_err(),
            format!(
                r#"parsing time "2024-01-02 03:04:05.000000Z" as {layout}: cannot parse " 03:04:05.000000Z" as "T""#
            )
        );
        assert_eq!(
            parse_rfc3339_micro("2024-01-02T03:04:05.000000Zjunk").unwrap_err(),
            r#"parsing time "2024-01-02T03:04:05.000000Zjunk": extra text: "junk""#
        );
    }
}
