//! Quantity parsing and formatting (`pernode_core::quantity`).
//!
//! Never panics (overflow checks are on in the fuzz build), and a parsed quantity's exact
//! decimal rendering parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pernode_core::quantity::{Format, Quantity, parse_quantity};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = text.split_once('\n').unwrap_or((text, "1"));
    let Ok(q) = parse_quantity(a) else {
        return;
    };
    let _ = (
        q.value(),
        q.milli_value(),
        q.signum(),
        q.is_zero(),
        q.format(),
    );
    let printed = q.to_string();
    // The rendering is exact up to what i128 nano-units hold; huge values saturate.
    if q.nanos().unsigned_abs() < 10u128.pow(36) {
        let back = parse_quantity(&printed)
            .unwrap_or_else(|e| panic!("{a:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(back.nanos(), q.nanos(), "{a:?} printed as {printed:?}");
    }
    if let Ok(other) = parse_quantity(b) {
        let _ = q.saturating_add(&other);
        let _ = q.saturating_sub(&other);
        let _ = q.cmp(&other);
    }
    for format in [Format::BinarySI, Format::DecimalSI, Format::DecimalExponent] {
        let _ = Quantity::from_nanos(q.nanos(), format).to_string();
    }
    let _ = Quantity::from_millis(q.milli_value());
});
