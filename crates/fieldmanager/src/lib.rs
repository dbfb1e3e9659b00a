//! Server-side apply and `metadata.managedFields`: a port of kubernetes-sigs/structured-merge-diff
//! (field paths and sets, their `fieldsV1` encoding, typed compare/merge/remove, the apply and
//! update managers with conflicts) and of k8s.io/apiserver's field manager chain (entries per
//! manager, operation, version and subresource, timestamps, `before-first-apply`, the
//! client-side apply upgrade kubectl relies on, the cap on Update entries).
//!
//! Pure: objects are untyped JSON (`serde_json::Value`) typed by a [`Schema`] table; the API
//! server decides who the manager is and which fields an endpoint resets.
//!
//! - [`path`]: path elements and their printed form (`.spec.containers[name="nginx"].image`).
//! - [`set`]: sets of paths.
//! - [`encode`]: the `fieldsV1` JSON encoding.
//! - [`schema`]: list types, map keys and atomic maps of the served kinds.
//! - [`typed`]: to-field-set, compare, merge, remove.
//! - [`updater`]: who owns what after an update or an apply; conflicts.
//! - [`managers`]: managedFields entries and the API server's rules around them.
//! - `created`: the managedFields of creates, memoised by the object's shape.

mod created;
pub mod encode;
pub mod managers;
pub mod path;
pub mod schema;
pub mod set;
pub mod typed;
pub mod updater;

pub use managers::{ApplyError, FieldManager, Managed, Write};
pub use path::{Path, PathElement};
pub use schema::Schema;
pub use set::Set;
pub use updater::{Conflict, Updater};
