//! Sets of field paths: structured-merge-diff's `fieldpath.Set`.
//!
//! A set is a tree: at each level the path elements that are themselves in the set (members)
//! and the subsets below elements (children). An element may be both (an associative list
//! item owned as a whole and field by field: `.` in `fieldsV1`). A child is never empty.

use std::collections::{BTreeMap, BTreeSet};

use crate::path::{Path, PathElement};

/// A set of paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    pub(crate) members: BTreeSet<PathElement>,
    pub(crate) children: BTreeMap<PathElement, Set>,
}

impl Set {
    pub fn new() -> Set {
        Set::default()
    }

    /// A set of the given paths.
    pub fn of(paths: &[&[PathElement]]) -> Set {
        let mut set = Set::new();
        for path in paths {
            set.insert(path);
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds `path` (empty paths are ignored, as upstream's root is never a member).
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut node = self;
        for element in parents {
            // Look up before inserting: most inserts share their parents, and cloning an
            // element for `entry` would cost on every level.
            if !node.children.contains_key(element) {
                node.children.insert(element.clone(), Set::default());
            }
            let Some(next) = node.children.get_mut(element) else {
                return;
            };
            node = next;
        }
        if !node.members.contains(last) {
            node.members.insert(last.clone());
        }
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut node = self;
        for element in parents {
            match node.children.get(element) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.members.contains(last)
    }

    /// The subset below `element`, if any.
    pub fn with_prefix(&self, element: &PathElement) -> Option<&Set> {
        self.children.get(element)
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.union_in_place(other);
        out
    }

    pub fn union_in_place(&mut self, other: &Set) {
        for m in &other.members {
            if !self.members.contains(m) {
                self.members.insert(m.clone());
            }
        }
        for (element, child) in &other.children {
            match self.children.get_mut(element) {
                Some(mine) => mine.union_in_place(child),
                None => {
                    self.children.insert(element.clone(), child.clone());
                }
            }
        }
    }

    /// The paths of `self` not in `other`, level by level (a member of `other` does not remove
    /// the paths below it), as upstream's `Difference`.
    pub fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (element, child) in &self.children {
            let rest = match other.children.get(element) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(element.clone(), rest);
            }
        }
        Set { members, children }
    }

    /// The paths of `self` neither in `other` nor below one of its members, as upstream's
    /// `RecursiveDifference` (what an exclude filter removes).
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (element, child) in &self.children {
            if other.members.contains(element) {
                continue;
            }
            let rest = match other.children.get(element) {
                Some(theirs) => child.recursive_difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(element.clone(), rest);
            }
        }
        Set { members, children }
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (element, child) in &self.children {
            if let Some(theirs) = other.children.get(element) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(element.clone(), both);
                }
            }
        }
        Set { members, children }
    }

    /// Every member path: a level's members first, then its children's, in element order (as
    /// upstream's `Iterate`, the order conflicts are reported in).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(Path(p));
        }
        for (element, child) in &self.children {
            prefix.push(element.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    #[test]
    fn difference_is_level_by_level_and_recursive_difference_takes_subtrees() {
        let a = Set::of(&[&[f("spec"), f("a")], &[f("spec"), f("b")], &[f("status")]]);
        let b = Set::of(&[&[f("spec"), f("a")], &[f("spec")]]);
        assert_eq!(
            a.difference(&b),
            Set::of(&[&[f("spec"), f("b")], &[f("status")]])
        );
        assert_eq!(a.recursive_difference(&b), Set::of(&[&[f("status")]]));
        assert!(a.difference(&a).is_empty());
    }

    #[test]
    fn union_intersection_and_membership() {
        let key = PathElement::Key(vec![("name".into(), json!("c"))]);
        let a = Set::of(&[&[f("c"), key.clone()], &[f("c"), key.clone(), f("image")]]);
        let b = Set::of(&[&[f("c"), key.clone(), f("image")], &[f("x")]]);
        let u = a.union(&b);
        assert!(u.has(&[f("c"), key.clone()]) && u.has(&[f("x")]));
        assert!(!u.has(&[f("c")]));
        assert_eq!(
            a.intersection(&b),
            Set::of(&[&[f("c"), key.clone(), f("image")]])
        );
        let paths: Vec<String> = u.paths().iter().map(ToString::to_string).collect();
        assert_eq!(paths, [".x", r#".c[name="c"]"#, r#".c[name="c"].image"#]);
    }
}
