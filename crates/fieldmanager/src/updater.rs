//! structured-merge-diff's `merge.Updater`: who owns which fields after a write.
//!
//! - [`Updater::update`] (create, update, patch): the fields the write added or changed become
//!   the writer's, and leave every other manager; removed fields leave everyone.
//! - [`Updater::apply`]: the configuration is merged into the live object; the applier now
//!   owns exactly what it applied; a changed field another manager owns is a conflict unless
//!   forced (then it changes hands); fields the applier applied last time and no longer does
//!   are removed unless another manager owns them (`prune`).
//!
//! Every kind pernode serves has one version per stored object (custom resources convert by
//! rewriting `apiVersion` alone, upstream's nopConverter), so managers of any version compare
//! against the same objects.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::path::Path;
use crate::schema::Schema;
use crate::set::Set;
use crate::typed::{self, Comparison, TypeError};

/// One manager's fields: upstream's `fieldpath.VersionedSet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedSet {
    pub set: Set,
    pub api_version: String,
    /// Whether the fields were applied (an `Apply` entry) rather than written.
    pub applied: bool,
}

/// Managers by identifier (upstream's `fieldpath.ManagedFields`).
pub type ManagedSets = BTreeMap<String, VersionedSet>;

/// One field owned by another manager that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub path: Path,
}

/// Why a write's ownership could not be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The apply changes fields other managers own (409 unless forced).
    #[error("{} conflicts", .0.len())]
    Conflicts(Vec<Conflict>),
    /// An object the schema cannot type (duplicate keys, a list item missing a key field).
    #[error(transparent)]
    Type(#[from] TypeError),
}

/// The updater of one kind.
#[derive(Debug, Clone)]
pub struct Updater {
    pub schema: Schema,
    /// Fields the strategy resets on this endpoint (upstream's `GetResetFields`: `status` on
    /// the main resource, `spec` on `/status`); never owned by anyone writing here.
    pub ignored: Set,
}

impl Updater {
    pub fn new(schema: Schema, ignored: Set) -> Updater {
        Updater { schema, ignored }
    }

    fn filter(&self, set: Set) -> Set {
        if self.ignored.is_empty() {
            set
        } else {
            set.recursive_difference(&self.ignored)
        }
    }

    /// Ownership moves for a write from `old` to `new` by `workflow` (upstream's `update`).
    fn update_owners(
        &self,
        old: Option<&Value>,
        new: &Value,
        managers: &mut ManagedSets,
        workflow: &str,
        force: bool,
    ) -> Result<Comparison, UpdateError> {
        let compare = typed::compare(self.schema, old, Some(new))?;
        let filtered = Comparison {
            added: self.filter(compare.added),
            modified: self.filter(compare.modified),
            removed: self.filter(compare.removed),
        };
        let changed = filtered.modified.union(&filtered.added);
        let mut conflicts: Vec<(String, Set)> = Vec::new();
        for (manager, owned) in managers.iter() {
            if manager == workflow {
                continue;
            }
            let clash = owned.set.intersection(&changed);
            if !clash.is_empty() {
                conflicts.push((manager.clone(), clash));
            }
        }
        if !force && !conflicts.is_empty() {
            let mut out = Vec::new();
            for (manager, set) in &conflicts {
                for path in set.paths() {
                    out.push(Conflict {
                        manager: manager.clone(),
                        path,
                    });
                }
            }
            return Err(UpdateError::Conflicts(out));
        }
        for (manager, clash) in conflicts {
            if let Some(owned) = managers.get_mut(&manager) {
                owned.set = owned.set.difference(&clash);
            }
        }
        if !filtered.removed.is_empty() {
            for (manager, owned) in managers.iter_mut() {
                if manager != workflow {
                    owned.set = owned.set.difference(&filtered.removed);
                }
            }
        }
        managers.retain(|_, owned| !owned.set.is_empty());
        Ok(filtered)
    }

    /// A non-apply write: `manager` takes what changed (upstream's `Update`). `old` is `None`
    /// for a create.
    pub fn update(
        &self,
        old: Option<&Value>,
        new: &Value,
        api_version: &str,
        managers: &mut ManagedSets,
        manager: &str,
    ) -> Result<(), UpdateError> {
        let compare = self.update_owners(old, new, managers, manager, true)?;
        let previous = managers.remove(manager).map(|m| m.set).unwrap_or_default();
        let mut set = previous.difference(&compare.removed);
        set.union_in_place(&compare.modified);
        set.union_in_place(&compare.added);
        let set = self.filter(set);
        if !set.is_empty() {
            managers.insert(
                manager.to_string(),
                VersionedSet {
                    set,
                    api_version: api_version.to_string(),
                    applied: false,
                },
            );
        }
        Ok(())
    }

    /// An apply of `config` to `live` by `manager` (upstream's `Apply`): the object it
    /// results in. Conflicts are an error unless `force`.
    pub fn apply(
        &self,
        live: &Value,
        config: &Value,
        api_version: &str,
        managers: &mut ManagedSets,
        manager: &str,
        force: bool,
    ) -> Result<Value, UpdateError> {
        let applied = self.filter(typed::to_field_set_strict(self.schema, config)?);
        let merged = typed::merge(self.schema, live, config)?;
        let last = managers.get(manager).map(|m| m.set.clone());
        managers.insert(
            manager.to_string(),
            VersionedSet {
                set: applied,
                api_version: api_version.to_string(),
                applied: true,
            },
        );
        let new = match last {
            Some(last) if !last.is_empty() => self.prune(&merged, managers, &last)?,
            _ => merged,
        };
        self.update_owners(Some(live), &new, managers, manager, force)?;
        Ok(new)
    }

    /// Removes what the applier applied last time (`last`) and nobody owns now (upstream's
    /// `prune`, `addBackOwnedItems` and `addBackDanglingItems` for one version).
    fn prune(
        &self,
        merged: &Value,
        managers: &ManagedSets,
        last: &Set,
    ) -> Result<Value, TypeError> {
        let s = self.schema;
        let last = typed::ensure_named_fields_are_members(s, last);
        let pruned = typed::remove_items(s, merged, &last);
        // Add back what any manager owns.
        let mut owned = Set::new();
        for m in managers.values() {
            owned.union_in_place(&m.set);
        }
        let merged_set =
            typed::ensure_named_fields_are_members(s, &typed::to_field_set(s, merged)?);
        let pruned_set =
            typed::ensure_named_fields_are_members(s, &typed::to_field_set(s, &pruned)?);
        let owned = typed::ensure_named_fields_are_members(s, &owned);
        let pruned =
            typed::remove_items(s, merged, &merged_set.difference(&pruned_set.union(&owned)));
        // Add back what the applier did not own last time (dangling items).
        let pruned_set =
            typed::ensure_named_fields_are_members(s, &typed::to_field_set(s, &pruned)?);
        Ok(typed::remove_items(
            s,
            merged,
            &merged_set.difference(&pruned_set).intersection(&last),
        ))
    }
}
