//! Reverse indexes of a few indexed fields: for each value, the keys whose attributes have it,
//! as kube-apiserver's watch cache indexes pods by `spec.nodeName`. Kept with the map under the
//! state's lock and updated when the writer applies a write, so a lookup is as current as a
//! `get`; a write that leaves the field's value as it was (a status write) costs a comparison.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use crate::types::Attrs;

/// `(value, key)` for every key with a non-empty value of one field, sorted.
type ValueKeys = BTreeSet<(Box<str>, Arc<str>)>;

/// The reverse indexes of the fields named in [`crate::StoreOptions::indexed_fields`].
#[derive(Debug, Default)]
pub(crate) struct FieldIndex {
    fields: Vec<(&'static str, ValueKeys)>,
}

impl FieldIndex {
    pub(crate) fn new(fields: &[&'static str]) -> FieldIndex {
        let mut names = fields.to_vec();
        names.sort_unstable();
        names.dedup();
        FieldIndex {
            fields: names.into_iter().map(|f| (f, BTreeSet::new())).collect(),
        }
    }

    /// Records that `key`'s attributes went from `old` to `new` (`None`: absent).
    pub(crate) fn update(
        &mut self,
        key: &Arc<str>,
        old: Option<&Arc<Attrs>>,
        new: Option<&Arc<Attrs>>,
    ) {
        if let (Some(a), Some(b)) = (old, new)
            && Arc::ptr_eq(a, b)
        {
            return;
        }
        for (field, set) in &mut self.fields {
            let before = old.and_then(|a| a.field(field));
            let after = new.and_then(|a| a.field(field));
            if before == after {
                continue;
            }
            if let Some(value) = before {
                set.remove(&(Box::from(value), key.clone()));
            }
            if let Some(value) = after {
                set.insert((Box::from(value), key.clone()));
            }
        }
    }

    /// The keys under `prefix` whose `field` is `value`, in key order; `None` when `field` is
    /// not indexed.
    pub(crate) fn keys<'a>(
        &'a self,
        field: &str,
        value: &'a str,
        prefix: &'a str,
    ) -> Option<impl Iterator<Item = &'a Arc<str>> + 'a> {
        let (_, set) = self.fields.iter().find(|(f, _)| *f == field)?;
        let start = (Box::<str>::from(value), Arc::<str>::from(prefix));
        Some(
            set.range((Bound::Included(start), Bound::Unbounded))
                .take_while(move |(v, k)| &**v == value && k.starts_with(prefix))
                .map(|(_, k)| k),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(node: &str) -> Arc<Attrs> {
        Arc::new(Attrs::new([], [("spec.nodeName", node.to_string())]))
    }

    fn keys(index: &FieldIndex, value: &str, prefix: &str) -> Vec<String> {
        index
            .keys("spec.nodeName", value, prefix)
            .map(|k| k.map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn follows_values_as_they_come_change_and_go() {
        let mut index = FieldIndex::new(&["spec.nodeName", "spec.nodeName"]);
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) =
            ("pods/x/a".into(), "pods/x/b".into(), "pods/y/c".into());
        index.update(&a, None, Some(&attrs("n1")));
        index.update(&b, None, Some(&attrs("")));
        index.update(&c, None, Some(&attrs("n1")));
        assert_eq!(keys(&index, "n1", "pods/"), ["pods/x/a", "pods/y/c"]);
        assert_eq!(keys(&index, "n1", "pods/x/"), ["pods/x/a"]);
        assert_eq!(keys(&index, "n1", "pods/z/"), Vec::<String>::new());
        assert_eq!(keys(&index, "n", "pods/"), Vec::<String>::new());
        // Bound, moved, deleted.
        index.update(&b, Some(&attrs("")), Some(&attrs("n1")));
        let same = attrs("n1");
        index.update(&a, Some(&same), Some(&same));
        index.update(&c, Some(&attrs("n1")), Some(&attrs("n2")));
        assert_eq!(keys(&index, "n1", "pods/"), ["pods/x/a", "pods/x/b"]);
        assert_eq!(keys(&index, "n2", "pods/"), ["pods/y/c"]);
        index.update(&a, Some(&attrs("n1")), None);
        assert_eq!(keys(&index, "n1", "pods/"), ["pods/x/b"]);
        assert!(index.keys("status.phase", "Running", "pods/").is_none());
    }
}
