//! The garbage collector's dependency graph and its decisions, free of I/O.
//!
//! Mirrors upstream's `pkg/controller/garbagecollector`: every watched object is a node keyed
//! by UID with its ownerReferences; `dependents` indexes who points at whom. The decisions
//! (`attempt_to_delete`, `orphan_work`) say what to do with one object given what the graph
//! (and, for owners the graph has not seen, a live lookup) knows. The caller performs the
//! writes and feeds the resulting watch events back.

use foldhash::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::trim::Interner;

/// Finalizer of an owner deleted with propagationPolicy=Foreground.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// Finalizer of an owner deleted with propagationPolicy=Orphan.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// Which watched resource an object belongs to: an index into the collector's resource list.
pub type ResourceIdx = usize;

/// One object as the collector sees it. Once in the graph, its UID is the graph's key (and
/// the entry in its owners' dependents), its namespace is interned and each owner reference is
/// shared with the other dependents that hold an equal one (a DaemonSet's pods all do).
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The resource it belongs to.
    pub resource: ResourceIdx,
    /// Its namespace (None for cluster-scoped objects).
    pub namespace: Option<Arc<str>>,
    /// Its name.
    pub name: Box<str>,
    /// Its UID (the graph key).
    pub uid: Arc<str>,
    /// Its ownerReferences.
    pub owners: Vec<Arc<OwnerReference>>,
    /// Whether deletionTimestamp is set.
    pub deleting: bool,
    /// Its finalizers.
    pub finalizers: Vec<String>,
}

impl Item {
    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    /// Being deleted in the foreground: dependents go first.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND_FINALIZER)
    }

    /// Being deleted with the orphan policy: dependents lose their reference first.
    pub fn orphaning_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(ORPHAN_FINALIZER)
    }
}

/// Where an owner reference points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists (same UID) and is not waiting for its dependents.
    Solid,
    /// No object with that UID exists.
    Dangling,
    /// The owner exists and is being deleted in the foreground.
    WaitingForDependentsDeletion,
}

/// What the graph knows about an owner UID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    /// In the graph: its state.
    Yes(OwnerState),
    /// Not in the graph: it must be looked up (the owner's watch may lag the dependent's).
    Unknown,
}

/// The propagation policy of a delete the collector issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    /// Delete, dependents collected afterwards.
    Background,
    /// Delete dependents first.
    Foreground,
    /// Keep dependents, dropping their reference.
    Orphan,
}

/// What to do with an object in the attempt-to-delete queue.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Nothing to do.
    Nothing,
    /// Replace its ownerReferences with these (dangling ones removed, references to owners
    /// waiting for their dependents made non-blocking).
    SetOwners(Vec<OwnerReference>),
    /// Delete it with this propagation.
    Delete(Propagation),
    /// It waits for its dependents, and none that blocks it is left: drop the finalizer.
    RemoveFinalizer(&'static str),
    /// It waits for its dependents: (re)consider these (UIDs).
    ProcessDependents(Vec<String>),
}

/// The dependency graph.
#[derive(Default, Debug)]
pub struct Graph {
    items: HashMap<Arc<str>, Item>,
    /// owner UID → the objects with an ownerReference to it (owner present or not).
    dependents: HashMap<Arc<str>, Dependents>,
    /// Namespaces.
    strings: Interner,
}

/// The objects with an ownerReference to one owner UID.
#[derive(Default, Debug)]
struct Dependents {
    /// Their UIDs.
    uids: HashSet<Arc<str>>,
    /// The distinct references to the owner they hold, shared between them.
    refs: Vec<Arc<OwnerReference>>,
}

impl Dependents {
    /// The shared copy of `r`.
    fn share(&mut self, r: &Arc<OwnerReference>) -> Arc<OwnerReference> {
        if let Some(shared) = self.refs.iter().find(|s| ***s == **r) {
            return shared.clone();
        }
        // References no dependent holds any more go first.
        self.refs.retain(|s| Arc::strong_count(s) > 1);
        self.refs.push(r.clone());
        r.clone()
    }
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Graph::default()
    }

    /// The object with this UID.
    pub fn get(&self, uid: &str) -> Option<&Item> {
        self.items.get(uid)
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the graph holds no object.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// UIDs of the objects of one resource (to detect deletions missed across a re-list).
    pub fn uids_of(&self, resource: ResourceIdx) -> Vec<String> {
        self.items
            .values()
            .filter(|i| i.resource == resource)
            .map(|i| i.uid.to_string())
            .collect()
    }

    /// The state of an owner UID as far as the graph knows.
    pub fn owner_state(&self, uid: &str) -> Known {
        match self.items.get(uid) {
            Some(o) if o.deleting_dependents() => {
                Known::Yes(OwnerState::WaitingForDependentsDeletion)
            }
            Some(_) => Known::Yes(OwnerState::Solid),
            None => Known::Unknown,
        }
    }

    /// UIDs of the objects that have an ownerReference to `owner_uid`.
    pub fn dependents_of(&self, owner_uid: &str) -> Vec<String> {
        self.dependents
            .get(owner_uid)
            .map(|d| d.uids.iter().map(|u| u.to_string()).collect())
            .unwrap_or_default()
    }

    /// Dependents still present whose reference to `owner_uid` has blockOwnerDeletion=true.
    pub fn blocking_dependents(&self, owner_uid: &str) -> Vec<String> {
        self.dependents
            .get(owner_uid)
            .into_iter()
            .flat_map(|d| d.uids.iter())
            .filter(|d| {
                self.items.get(&***d).is_some_and(|i| {
                    i.owners
                        .iter()
                        .any(|r| r.uid == owner_uid && r.block_owner_deletion == Some(true))
                })
            })
            .map(|d| d.to_string())
            .collect()
    }

    /// The graph's copy of a UID, if it holds one (as an object or an owner).
    fn shared_uid(&self, uid: &str) -> Option<Arc<str>> {
        self.items
            .get_key_value(uid)
            .map(|(k, _)| k)
            .or_else(|| self.dependents.get_key_value(uid).map(|(k, _)| k))
            .cloned()
    }

    /// Record an added or modified object; returns the work it triggers (see [`Work`]).
    pub fn upsert(&mut self, mut item: Item) -> Vec<Work> {
        if let Some(shared) = self.shared_uid(&item.uid) {
            item.uid = shared;
        }
        item.namespace = item.namespace.map(|ns| self.strings.intern(&ns));
        let uid = item.uid.clone();
        let old = self.items.remove(&*uid);
        if let Some(old) = &old {
            for r in &old.owners {
                if !item.owners.iter().any(|n| n.uid == r.uid) {
                    self.unlink(&r.uid, &uid);
                }
            }
        }
        for r in item.owners.iter_mut() {
            let owner = self
                .shared_uid(&r.uid)
                .unwrap_or_else(|| Arc::from(r.uid.as_str()));
            let deps = self.dependents.entry(owner).or_default();
            deps.uids.insert(uid.clone());
            *r = deps.share(r);
        }
        self.items.insert(uid.clone(), item);
        let item = &self.items[&*uid];

        let mut work = Vec::new();
        // Its owners: an owner not (yet) in the graph, or waiting for its dependents, needs a
        // decision; solid owners do not.
        if item
            .owners
            .iter()
            .any(|r| self.owner_state(&r.uid) != Known::Yes(OwnerState::Solid))
        {
            work.push(Work::Attempt(uid.to_string()));
        }
        // An ownerReference removed from a dependent may unblock an owner waiting for it.
        if let Some(old) = &old {
            for r in &old.owners {
                if !item.owners.iter().any(|n| n.uid == r.uid)
                    && self
                        .items
                        .get(r.uid.as_str())
                        .is_some_and(Item::deleting_dependents)
                {
                    work.push(Work::Attempt(r.uid.clone()));
                }
            }
        }
        // As an owner: its deletion started.
        let was_deleting_dependents = old.as_ref().is_some_and(Item::deleting_dependents);
        if item.deleting_dependents() {
            work.push(Work::Attempt(uid.to_string()));
            if !was_deleting_dependents {
                work.extend(self.dependents_of(&uid).into_iter().map(Work::Attempt));
            }
        }
        if item.orphaning_dependents() {
            work.push(Work::Orphan(uid.to_string()));
        }
        work
    }

    /// Record a deleted object; returns the work it triggers.
    pub fn remove(&mut self, uid: &str) -> Vec<Work> {
        let Some(item) = self.items.remove(uid) else {
            return Vec::new();
        };
        let mut work = Vec::new();
        for r in &item.owners {
            self.unlink(&r.uid, uid);
            // An owner waiting for its dependents may have lost its last blocking one.
            if self
                .items
                .get(r.uid.as_str())
                .is_some_and(Item::deleting_dependents)
            {
                work.push(Work::Attempt(r.uid.clone()));
            }
        }
        // Its dependents now point at nothing.
        work.extend(self.dependents_of(uid).into_iter().map(Work::Attempt));
        work
    }

    fn unlink(&mut self, owner_uid: &str, dep_uid: &str) {
        if let Some(deps) = self.dependents.get_mut(owner_uid) {
            deps.uids.remove(dep_uid);
            if deps.uids.is_empty() {
                self.dependents.remove(owner_uid);
            }
        }
    }
}

/// A unit of work for the collector's queue.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    /// Decide whether the object with this UID must be deleted (or, when it waits for its
    /// dependents, whether it may go).
    Attempt(String),
    /// The object with this UID is being deleted with the orphan policy.
    Orphan(String),
}

/// Decide what to do with `item` (upstream's `attemptToDeleteItem`), given the state of each of
/// its owners (resolved by the caller, by graph or by live lookup) and the graph.
pub fn attempt_to_delete(item: &Item, owner_states: &[OwnerState], graph: &Graph) -> Action {
    if item.deleting && !item.deleting_dependents() {
        return Action::Nothing;
    }
    if item.deleting_dependents() {
        let blocking = graph.blocking_dependents(&item.uid);
        if blocking.is_empty() {
            return Action::RemoveFinalizer(FOREGROUND_FINALIZER);
        }
        let pending: Vec<String> = blocking
            .into_iter()
            .filter(|d| !graph.get(d).is_some_and(Item::deleting_dependents))
            .collect();
        return Action::ProcessDependents(pending);
    }
    if item.owners.is_empty() {
        return Action::Nothing;
    }
    let state = |i: usize| owner_states.get(i).copied().unwrap_or(OwnerState::Solid);
    let any = |s: OwnerState| (0..item.owners.len()).any(|i| state(i) == s);
    let solid = any(OwnerState::Solid);
    let dangling = any(OwnerState::Dangling);
    let waiting = any(OwnerState::WaitingForDependentsDeletion);

    if solid {
        if !dangling && !waiting {
            return Action::Nothing;
        }
        // Keep the solid owners; drop dangling references; a reference to an owner waiting
        // for its dependents must not block it (this object stays, owned by someone else).
        let owners = item
            .owners
            .iter()
            .enumerate()
            .filter(|(i, _)| state(*i) != OwnerState::Dangling)
            .map(|(i, r)| {
                let mut r = OwnerReference::clone(r);
                if state(i) == OwnerState::WaitingForDependentsDeletion
                    && r.block_owner_deletion == Some(true)
                {
                    r.block_owner_deletion = Some(false);
                }
                r
            })
            .collect();
        return Action::SetOwners(owners);
    }
    if waiting && !graph.dependents_of(&item.uid).is_empty() {
        // Its own dependents must go first so that the waiting owner waits for the whole tree.
        return Action::Delete(Propagation::Foreground);
    }
    // Every owner is gone or going: the object goes too, with its own default policy.
    let policy = if item.finalizers.iter().any(|f| f == ORPHAN_FINALIZER) {
        Propagation::Orphan
    } else if item.finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    Action::Delete(policy)
}

/// The ownerReferences of `dependent` once the reference to `owner_uid` is dropped.
pub fn without_owner(dependent: &Item, owner_uid: &str) -> Vec<OwnerReference> {
    dependent
        .owners
        .iter()
        .filter(|r| r.uid != owner_uid)
        .map(|r| OwnerReference::clone(r))
        .collect()
}

/// The finalizers of `item` without `finalizer`.
pub fn without_finalizer(item: &Item, finalizer: &str) -> Vec<String> {
    item.finalizers
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oref(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "DaemonSet".into(),
            name: format!("ds-{uid}"),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(block),
        }
    }

    fn item(uid: &str, owners: Vec<OwnerReference>) -> Item {
        Item {
            resource: 0,
            namespace: Some("default".into()),
            name: format!("obj-{uid}").into(),
            uid: uid.into(),
            owners: owners.into_iter().map(Arc::new).collect(),
            deleting: false,
            finalizers: vec![],
        }
    }

    fn deleting(mut i: Item, finalizer: &str) -> Item {
        i.deleting = true;
        i.finalizers.push(finalizer.into());
        i
    }

    #[test]
    fn equal_owner_references_and_uids_are_shared() {
        let mut g = Graph::new();
        g.upsert(item("ds1", vec![]));
        g.upsert(item("p1", vec![oref("ds1", true)]));
        g.upsert(item("p2", vec![oref("ds1", true)]));
        g.upsert(item("p3", vec![oref("ds1", false)]));
        let (p1, p2, p3) = (
            g.get("p1").unwrap(),
            g.get("p2").unwrap(),
            g.get("p3").unwrap(),
        );
        assert!(Arc::ptr_eq(&p1.owners[0], &p2.owners[0]));
        assert!(!Arc::ptr_eq(&p1.owners[0], &p3.owners[0]));
        assert_eq!(*p3.owners[0], oref("ds1", false));
        assert!(Arc::ptr_eq(
            p1.namespace.as_ref().unwrap(),
            p2.namespace.as_ref().unwrap()
        ));
        let deps = &g.dependents["ds1"];
        let key = g.items.get_key_value("ds1").unwrap().0;
        assert!(Arc::ptr_eq(
            g.dependents.get_key_value("ds1").unwrap().0,
            key
        ));
        assert!(Arc::ptr_eq(deps.uids.get("p1").unwrap(), &p1.uid));
        // A new version keeps sharing; a gone dependent lets go.
        g.upsert(item("p1", vec![oref("ds1", true)]));
        assert!(Arc::ptr_eq(
            &g.get("p1").unwrap().owners[0],
            &g.get("p2").unwrap().owners[0]
        ));
        g.remove("p3");
        let mut renamed = oref("ds1", true);
        renamed.name = "other".into();
        g.upsert(item("p4", vec![renamed.clone()]));
        let refs: Vec<OwnerReference> = g.dependents["ds1"]
            .refs
            .iter()
            .map(|r| OwnerReference::clone(r))
            .collect();
        assert_eq!(refs, vec![oref("ds1", true), renamed]);
        assert_eq!(g.dependents_of("ds1").len(), 3);
    }

    #[test]
    fn dependent_of_an_absent_owner_is_collected_in_background() {
        let mut g = Graph::new();
        let pod = item("p1", vec![oref("ds1", true)]);
        let work = g.upsert(pod.clone());
        assert_eq!(
            work,
            vec![Work::Attempt("p1".into())],
            "owner not seen yet: must be resolved"
        );
        assert_eq!(
            attempt_to_delete(&pod, &[OwnerState::Dangling], &g),
            Action::Delete(Propagation::Background)
        );
        assert_eq!(
            attempt_to_delete(&pod, &[OwnerState::Solid], &g),
            Action::Nothing
        );
    }

    #[test]
    fn owner_deletion_enqueues_its_dependents() {
        let mut g = Graph::new();
        g.upsert(item("ds1", vec![]));
        assert!(
            g.upsert(item("p1", vec![oref("ds1", true)])).is_empty(),
            "solid owner: nothing to do"
        );
        g.upsert(item("p2", vec![oref("ds1", true)]));
        let mut work = g.remove("ds1");
        work.sort_by_key(|w| format!("{w:?}"));
        assert_eq!(
            work,
            vec![Work::Attempt("p1".into()), Work::Attempt("p2".into())]
        );
        assert_eq!(g.owner_state("ds1"), Known::Unknown);
    }

    #[test]
    fn dangling_references_are_dropped_when_another_owner_is_solid() {
        let g = Graph::new();
        let pod = item("p1", vec![oref("a", true), oref("b", false)]);
        assert_eq!(
            attempt_to_delete(&pod, &[OwnerState::Solid, OwnerState::Dangling], &g),
            Action::SetOwners(vec![oref("a", true)])
        );
        assert_eq!(
            attempt_to_delete(
                &pod,
                &[OwnerState::WaitingForDependentsDeletion, OwnerState::Solid],
                &g
            ),
            Action::SetOwners(vec![oref("a", false), oref("b", false)])
        );
    }

    #[test]
    fn foreground_deletes_dependents_then_drops_the_finalizer() {
        let mut g = Graph::new();
        g.upsert(item("ds1", vec![]));
        g.upsert(item("p1", vec![oref("ds1", true)]));
        g.upsert(item("p2", vec![oref("ds1", false)]));
        let ds = deleting(item("ds1", vec![]), FOREGROUND_FINALIZER);
        let mut work = g.upsert(ds.clone());
        work.sort_by_key(|w| format!("{w:?}"));
        assert_eq!(
            work,
            vec![
                Work::Attempt("ds1".into()),
                Work::Attempt("p1".into()),
                Work::Attempt("p2".into())
            ]
        );
        // Dependents of a waiting owner are deleted (with their own default policy).
        let p1 = g.get("p1").cloned().expect("p1");
        assert_eq!(
            attempt_to_delete(&p1, &[OwnerState::WaitingForDependentsDeletion], &g),
            Action::Delete(Propagation::Background)
        );
        // The owner waits for p1 (blocking) but not for p2.
        assert_eq!(
            attempt_to_delete(&ds, &[], &g),
            Action::ProcessDependents(vec!["p1".into()])
        );
        // A blocking dependent being deleted gracefully still blocks.
        let mut p1_going = p1.clone();
        p1_going.deleting = true;
        g.upsert(p1_going.clone());
        assert_eq!(
            attempt_to_delete(&p1_going, &[OwnerState::WaitingForDependentsDeletion], &g),
            Action::Nothing
        );
        assert!(matches!(
            attempt_to_delete(&ds, &[], &g),
            Action::ProcessDependents(_)
        ));
        // Once it is gone, the owner is enqueued and may go.
        assert_eq!(g.remove("p1"), vec![Work::Attempt("ds1".into())]);
        assert_eq!(
            attempt_to_delete(&ds, &[], &g),
            Action::RemoveFinalizer(FOREGROUND_FINALIZER)
        );
    }

    #[test]
    fn a_dependent_with_its_own_dependents_is_deleted_in_foreground() {
        let mut g = Graph::new();
        g.upsert(deleting(item("a", vec![]), FOREGROUND_FINALIZER));
        let b = item("b", vec![oref("a", true)]);
        g.upsert(b.clone());
        g.upsert(item("c", vec![oref("b", true)]));
        assert_eq!(
            attempt_to_delete(&b, &[OwnerState::WaitingForDependentsDeletion], &g),
            Action::Delete(Propagation::Foreground)
        );
    }

    #[test]
    fn orphan_deletion_is_signalled_and_references_are_dropped() {
        let mut g = Graph::new();
        g.upsert(item("ds1", vec![]));
        let pod = item("p1", vec![oref("ds1", true), oref("other", false)]);
        g.upsert(pod.clone());
        let work = g.upsert(deleting(item("ds1", vec![]), ORPHAN_FINALIZER));
        assert_eq!(work, vec![Work::Orphan("ds1".into())]);
        assert_eq!(g.dependents_of("ds1"), vec!["p1".to_string()]);
        assert_eq!(without_owner(&pod, "ds1"), vec![oref("other", false)]);
        // Once the reference is gone the graph no longer lists the pod as a dependent.
        let mut orphaned = pod.clone();
        orphaned.owners = without_owner(&pod, "ds1")
            .into_iter()
            .map(Arc::new)
            .collect();
        g.upsert(orphaned);
        assert!(g.dependents_of("ds1").is_empty());
        let ds = g.get("ds1").cloned().expect("ds1");
        assert!(without_finalizer(&ds, ORPHAN_FINALIZER).is_empty());
    }

    #[test]
    fn objects_being_deleted_normally_are_left_alone() {
        let g = Graph::new();
        let mut pod = item("p1", vec![oref("ds1", true)]);
        pod.deleting = true;
        assert_eq!(
            attempt_to_delete(&pod, &[OwnerState::Dangling], &g),
            Action::Nothing
        );
    }

    #[test]
    fn the_object_keeps_its_own_default_policy() {
        let g = Graph::new();
        let mut rs = item("rs", vec![oref("gone", true)]);
        rs.finalizers.push(ORPHAN_FINALIZER.into());
        assert_eq!(
            attempt_to_delete(&rs, &[OwnerState::Dangling], &g),
            Action::Delete(Propagation::Orphan)
        );
    }
}
