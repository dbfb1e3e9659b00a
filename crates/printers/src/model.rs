//! The shapes shared by every kind's printer: the cells of a row, the parts of the stored
//! object a row object is cut from, and the lean view of `metadata` the columns read.
//!
//! Each kind deserializes its stored bytes once into a lean struct that names only the
//! fields its columns read; `metadata` is kept as a borrowed raw slice so that the row
//! object (`PartialObjectMetadata`) is the stored metadata copied verbatim, never
//! re-serialized. The few metadata fields the cells need are read from that slice.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Deserialize;
use serde_json::value::RawValue;

/// One cell: upstream's printers put strings, int64s and bools in the columns we serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cell {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Str(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Str(s.to_owned())
    }
}

impl From<i64> for Cell {
    fn from(i: i64) -> Self {
        Cell::Int(i)
    }
}

impl From<bool> for Cell {
    fn from(b: bool) -> Self {
        Cell::Bool(b)
    }
}

/// A count as upstream's `int64(len(...))` cells.
impl From<usize> for Cell {
    fn from(n: usize) -> Self {
        Cell::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// The printed part of a row.
#[derive(Debug, Default)]
pub(crate) struct Row {
    pub cells: Vec<Cell>,
    /// Pre-rendered `conditions` array (upstream marks finished pods `Completed`).
    pub conditions: Option<&'static str>,
}

/// The parts of the stored object needed to build the row object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head<'a> {
    pub has_kind: bool,
    pub has_api_version: bool,
    pub metadata: Option<&'a RawValue>,
}

/// The metadata fields any column reads. `labels` and `ownerReferences` stay raw: only
/// nodes and controller revisions look at them, and parsing them for every pod would
/// allocate a map per row for nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Meta<'a> {
    pub name: Option<String>,
    pub creation_timestamp: Option<Time>,
    pub deletion_timestamp: Option<Time>,
    #[serde(borrow)]
    pub labels: Option<&'a RawValue>,
    #[serde(borrow)]
    pub owner_references: Option<&'a RawValue>,
}

impl<'a> Meta<'a> {
    pub fn parse(raw: Option<&'a RawValue>) -> Result<Self, serde_json::Error> {
        match raw {
            Some(raw) => serde_json::from_str(raw.get()),
            None => Ok(Meta::default()),
        }
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// Declares the `kind`/`apiVersion`/`metadata` fields every lean object struct starts with
/// and the accessor that turns them into a [`Head`].
macro_rules! lean_object {
    ($(#[$attr:meta])* struct $name:ident<'a> { $($field:tt)* }) => {
        $(#[$attr])*
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct $name<'a> {
            #[serde(default, borrow)]
            kind: Option<&'a serde_json::value::RawValue>,
            #[serde(default, borrow)]
            api_version: Option<&'a serde_json::value::RawValue>,
            #[serde(default, borrow)]
            metadata: Option<&'a serde_json::value::RawValue>,
            $($field)*
        }

        impl<'a> $name<'a> {
            fn head(&self) -> $crate::model::Head<'a> {
                $crate::model::Head {
                    has_kind: self.kind.is_some(),
                    has_api_version: self.api_version.is_some(),
                    metadata: self.metadata,
                }
            }
        }
    };
}
pub(crate) use lean_object;

/// `Option<String>` as Go's string: absent and null read as "".
pub(crate) fn s(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// `v`, or `<none>` when empty (upstream's placeholder for an unset string cell).
pub(crate) fn or_none(v: &str) -> &str {
    if v.is_empty() { "<none>" } else { v }
}

/// How many entries a JSON array or object has (Go's `len` of a slice or map; absent and
/// null are 0). The entries themselves are skipped, never built.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Count(pub usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array, an object or null")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Count, E> {
                Ok(Count(0))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Count, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Count, A::Error> {
                let mut n = 0;
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {
                    n += 1;
                }
                Ok(Count(n))
            }
        }
        d.deserialize_option(V)
    }
}

/// Why one object could not be printed.
#[derive(Debug)]
pub(crate) enum RenderError {
    /// The stored bytes do not have the shape of the kind.
    Decode(serde_json::Error),
    /// A field parsed but holds a value upstream's printer also rejects.
    Invalid(String),
}

impl From<serde_json::Error> for RenderError {
    fn from(e: serde_json::Error) -> Self {
        RenderError::Decode(e)
    }
}
