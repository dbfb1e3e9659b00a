//! The few quantity operations validation needs, on top of
//! `pernode_core::quantity`.

use pernode_core::quantity::{Quantity, QuantityError, parse_quantity};

/// `resource.ParseQuantity` (surrounding spaces trimmed, as the JSON decoder does).
pub(crate) fn parse(s: &str) -> Result<Quantity, QuantityError> {
    parse_quantity(s.trim())
}

pub(crate) fn cmp(a: &Quantity, b: &Quantity) -> std::cmp::Ordering {
    a.cmp(b)
}

pub(crate) fn is_negative(q: &Quantity) -> bool {
    q.signum() < 0
}

/// Whether the value is a whole number (`MilliValue() % 1000 == 0`).
pub(crate) fn is_integer(q: &Quantity) -> bool {
    q.milli_value() % 1000 == 0
}

/// The text upstream prints for a quantity (`Quantity.String()`). The
/// client's spelling stands in for the canonical form, which it is for the
/// usual spellings (`500m`, `1`, `64Mi`).
pub(crate) fn canonical(_q: &Quantity, original: &str) -> String {
    original.trim().to_string()
}
