//! The store test suite, run against every backend: `store_suite!` expands to one test per
//! case for a [`Backing`] (SQLite in `tests/store.rs`, etcd in `tests/etcd_store.rs`).
//!
//! resourceVersions are asserted relative to the store's rv at open (`b`): the embedded store
//! starts at 0, a fresh etcd at revision 1. Each case has its backing to itself, so its writes
//! are the only ones and their rvs are consecutive on both.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use pernode_store::{
    Attrs, Entry, EventType, Indexer, Op, Store, StoreError, StoreOptions, labels_indexer, no_attrs,
};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::timeout;

/// A backend the suite runs on: a fresh store, and the same data opened again.
pub trait Backing: Sync {
    /// Whether concurrent writes share durable commits (`StoreStats::commits`).
    const GROUP_COMMIT: bool;
    /// A store over this backing's data (empty at the first open).
    fn open(&self, indexer: Indexer, opts: StoreOptions) -> impl Future<Output = Store> + Send;
}

pub fn obj(name: &str, app: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"app": app}}, "spec": {"x": 1}})
}

pub fn rv_in_json(e: &Entry) -> String {
    e.value().unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn next_event(w: &mut pernode_store::Watcher) -> pernode_store::Event {
    timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watch event within 10s")
        .expect("watch not ended")
        .expect("watch not failed")
}

async fn labels<B: Backing>(backing: &B) -> Store {
    backing
        .open(labels_indexer(), StoreOptions::default())
        .await
}

/// One `#[tokio::test]` per case of the suite, each on a backing made by `$backing` (an
/// expression, awaited inside the test when async).
#[macro_export]
macro_rules! store_suite {
    ($backing:expr) => {
        $crate::store_suite!(@cases $backing;
            an_edit_of_the_stored_bytes_is_stamped_escaped_and_indexed_as_given,
            every_version_knows_where_its_managed_fields_are,
            create_get_update_delete,
            commit_batch_sees_earlier_ops_and_fails_ops_independently,
            list_prefix_filter_and_snapshot_rv,
            field_equality_lists_follow_the_reverse_index_through_every_write_and_a_reopen,
            watch_from_rv_filters_by_prefix_in_order,
            list_then_watch_misses_nothing_under_concurrent_writes,
            watch_expired_when_ring_dropped_events,
            events_keep_previous_json_only_when_attributes_change,
            close_rejects_writes_and_ends_watchers,
            rv_persists_across_reopen,
        );
    };
    (@cases $backing:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let backing = $backing;
                suite::$case(&backing).await;
            }
        )*
    };
}

/// The bytes an entry says its `metadata.managedFields` member is, and what they must be.
fn assert_managed_fields_known(e: &Entry, entries: &Value) {
    let expected = format!(r#""managedFields":{entries}"#)
        .replace('<', r"\u003c")
        .replace('>', r"\u003e");
    let span = e.managed_fields().expect("managedFields found");
    assert_eq!(
        std::str::from_utf8(&e.json[span]).unwrap(),
        expected,
        "in {:?}",
        e.json
    );
}

pub async fn every_version_knows_where_its_managed_fields_are<B: Backing>(backing: &B) {
    let entries = json!([{"manager": "m<1>", "operation": "Update",
                          "fieldsV1": {"f:spec": {"f:x": {}}}}]);
    let with = |x: Value| {
        json!({"apiVersion": "v1", "metadata": {"name": "a", "labels": {"app": "one"},
               "managedFields": entries, "uid": "u"}, "spec": {"x": x}})
    };
    let s = labels(backing).await;
    let mut w = s.watch("pods/", s.current_rv()).unwrap();
    let a = s.create("pods/ns/a", with(json!(1))).await.unwrap();
    assert_managed_fields_known(&a, &entries);
    let u = s
        .update("pods/ns/a", with(json!("a longer value")), Some(a.rv))
        .await
        .unwrap();
    assert_managed_fields_known(&u, &entries);
    // Edits: told where the member is, or not; an escape added before it moves it.
    let stored = std::str::from_utf8(&u.json).unwrap().to_string();
    let mut rv = u.rv;
    for (edited, hint) in [
        (
            stored.replace(r#""x":"a longer value""#, r#""x":2"#),
            u.managed_fields(),
        ),
        (stored.replace(r#""x":"a longer value""#, r#""x":3"#), None),
        (
            stored.replace(r#""apiVersion":"v1""#, r#""apiVersion":"<v1>""#),
            u.managed_fields(),
        ),
    ] {
        let edited = edited.replace(
            &format!(r#""resourceVersion":"{}""#, u.rv),
            &format!(r#""resourceVersion":"{rv}""#),
        );
        let e = s
            .update_edited("pods/ns/a", edited, (*u.attrs).clone(), rv, hint)
            .await
            .unwrap();
        assert_managed_fields_known(&e, &entries);
        rv = e.rv;
    }
    let d = s.delete("pods/ns/a", None).await.unwrap();
    assert_managed_fields_known(&d, &entries);
    // Watchers get the same entries.
    for _ in 0..6 {
        assert_managed_fields_known(&next_event(&mut w).await.entry, &entries);
    }
    // And an object without them says so.
    let b = s.create("pods/ns/b", obj("b", "two")).await.unwrap();
    assert_eq!(b.managed_fields(), None);
    // Read again from the backend.
    s.create("pods/ns/c", with(json!(1))).await.unwrap();
    s.close().await;
    let s = labels(backing).await;
    assert_managed_fields_known(&s.get("pods/ns/c").unwrap(), &entries);
}

pub async fn an_edit_of_the_stored_bytes_is_stamped_escaped_and_indexed_as_given<B: Backing>(
    backing: &B,
) {
    let s = labels(backing).await;
    let b = s.current_rv();
    let a = s.create("pods/ns/a", obj("a", "one")).await.unwrap();
    let stored = std::str::from_utf8(&a.json).unwrap();
    let edited = stored.replace(r#""x":1"#, r#""x":"<2>""#);
    let attrs = a.attrs.with_fields([("spec.nodeName", "n1".to_string())]);
    let e = s
        .update_edited("pods/ns/a", edited, attrs.clone(), a.rv, None)
        .await
        .unwrap();
    assert_eq!(e.rv, b + 2);
    assert_eq!(rv_in_json(&e), (b + 2).to_string());
    assert!(
        std::str::from_utf8(&e.json)
            .unwrap()
            .contains(r#""x":"\u003c2\u003e""#),
        "Go's escaping: {:?}",
        e.json
    );
    assert_eq!(*e.attrs, attrs);
    assert_eq!(s.get("pods/ns/a").unwrap().json, e.json);
    // Edited from a version that is no longer current: a conflict, nothing written.
    match s
        .update_edited("pods/ns/a", stored.to_string(), attrs.clone(), a.rv, None)
        .await
    {
        Err(StoreError::Conflict { current_rv }) => assert_eq!(current_rv, b + 2),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The version's resourceVersion text appears twice: serialized in full instead.
    let current = std::str::from_utf8(&e.json).unwrap();
    let inner = format!(r#""x":{{"resourceVersion":"{}"}}"#, b + 2);
    let twice = current.replace(r#""x":"\u003c2\u003e""#, &inner);
    let c = s
        .update_edited("pods/ns/a", twice, attrs, e.rv, None)
        .await
        .unwrap();
    let c_value = c.value().unwrap();
    assert_eq!(c_value["metadata"]["resourceVersion"], (b + 3).to_string());
    assert_eq!(c_value["spec"]["x"]["resourceVersion"], (b + 2).to_string());
    assert_eq!(s.get("pods/ns/a").unwrap().json, c.json);
    assert!(matches!(
        s.update_edited("pods/ns/a", "{".into(), Default::default(), c.rv, None)
            .await,
        Err(StoreError::InvalidObject(_))
    ));
    assert_eq!(s.current_rv(), b + 3, "a failed edit writes nothing");
}

pub async fn create_get_update_delete<B: Backing>(backing: &B) {
    let s = labels(backing).await;
    let b = s.current_rv();
    assert!(s.get("pods/ns/a").is_none());

    let a = s.create("pods/ns/a", obj("a", "one")).await.unwrap();
    assert_eq!(a.rv, b + 1);
    assert_eq!(&*a.key, "pods/ns/a");
    assert_eq!(rv_in_json(&a), (b + 1).to_string());
    assert_eq!(a.attrs.label("app"), Some("one"));
    assert_eq!(
        s.current_rv(),
        b + 1,
        "the write's answer waits for the state"
    );
    assert_eq!(s.get("pods/ns/a").unwrap().json, a.json);

    assert!(matches!(
        s.create("pods/ns/a", obj("a", "one")).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        s.current_rv(),
        b + 1,
        "a failed write does not consume an rv"
    );

    assert!(matches!(
        s.update("pods/ns/b", obj("b", "x"), None).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete("pods/ns/b", None).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.update("pods/ns/b", obj("b", "x"), Some(b + 1)).await,
        Err(StoreError::NotFound)
    ));
    assert!(s.get("pods/ns/b").is_none(), "an update creates nothing");

    let a2 = s
        .update("pods/ns/a", obj("a", "two"), Some(b + 1))
        .await
        .unwrap();
    assert_eq!(a2.rv, b + 2);
    assert_eq!(rv_in_json(&a2), (b + 2).to_string());
    assert_eq!(a2.attrs.label("app"), Some("two"));

    // Stale rv: conflict, reporting the current one; nothing changes.
    match s.update("pods/ns/a", obj("a", "three"), Some(b + 1)).await {
        Err(StoreError::Conflict { current_rv }) => assert_eq!(current_rv, b + 2),
        other => panic!("expected conflict, got {other:?}"),
    }
    match s.delete("pods/ns/a", Some(b + 1)).await {
        Err(StoreError::Conflict { current_rv }) => assert_eq!(current_rv, b + 2),
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(s.get("pods/ns/a").unwrap().rv, b + 2);

    // Unconditional update.
    let a3 = s
        .update("pods/ns/a", obj("a", "three"), None)
        .await
        .unwrap();
    assert_eq!(a3.rv, b + 3);

    let gone = s.delete("pods/ns/a", Some(b + 3)).await.unwrap();
    assert_eq!(gone.rv, b + 4);
    assert_eq!(rv_in_json(&gone), (b + 4).to_string());
    assert_eq!(gone.value().unwrap()["metadata"]["labels"]["app"], "three");
    assert_eq!(gone.attrs.label("app"), Some("three"));
    assert!(s.get("pods/ns/a").is_none());
    assert_eq!(s.current_rv(), b + 4);

    // Recreate after delete.
    assert_eq!(
        s.create("pods/ns/a", obj("a", "one")).await.unwrap().rv,
        b + 5
    );

    // Not an object: rejected, no rv consumed.
    assert!(matches!(
        s.create("pods/ns/z", json!([1, 2])).await,
        Err(StoreError::InvalidObject(_))
    ));
    assert_eq!(s.current_rv(), b + 5);
}

pub async fn commit_batch_sees_earlier_ops_and_fails_ops_independently<B: Backing>(backing: &B) {
    let s = labels(backing).await;
    let b = s.current_rv();
    let res = s
        .commit(vec![
            Op::Create {
                key: "pods/ns/a".into(),
                obj: obj("a", "1"),
            },
            Op::Create {
                key: "pods/ns/a".into(),
                obj: obj("a", "dup"),
            },
            Op::Update {
                key: "pods/ns/a".into(),
                obj: obj("a", "2"),
                expected_rv: Some(b + 1),
            },
            Op::Update {
                key: "pods/ns/a".into(),
                obj: obj("a", "stale"),
                expected_rv: Some(b + 1),
            },
            Op::Delete {
                key: "pods/ns/missing".into(),
                expected_rv: None,
            },
            Op::Create {
                key: "pods/ns/b".into(),
                obj: obj("b", "1"),
            },
            Op::Delete {
                key: "pods/ns/b".into(),
                expected_rv: Some(b + 3),
            },
        ])
        .await;
    assert_eq!(res.len(), 7);
    assert_eq!(res[0].as_ref().unwrap().rv, b + 1);
    assert!(matches!(res[1], Err(StoreError::AlreadyExists)));
    assert_eq!(res[2].as_ref().unwrap().rv, b + 2);
    match &res[3] {
        Err(StoreError::Conflict { current_rv }) => assert_eq!(*current_rv, b + 2),
        other => panic!("expected conflict, got {other:?}"),
    }
    assert!(matches!(res[4], Err(StoreError::NotFound)));
    assert_eq!(res[5].as_ref().unwrap().rv, b + 3);
    assert_eq!(res[6].as_ref().unwrap().rv, b + 4);
    assert_eq!(s.current_rv(), b + 4);
    assert_eq!(s.get("pods/ns/a").unwrap().attrs.label("app"), Some("2"));
    assert!(s.get("pods/ns/b").is_none());
    assert_eq!(s.stats().commits, if B::GROUP_COMMIT { 1 } else { 4 });
    assert_eq!(s.stats().writes, 4);

    // Every event of the batch is in the ring, in order.
    let mut w = s.watch("", b).unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        let e = next_event(&mut w).await;
        got.push((e.kind, e.entry.rv - b, e.entry.key.to_string()));
    }
    assert_eq!(
        got,
        vec![
            (EventType::Added, 1, "pods/ns/a".into()),
            (EventType::Modified, 2, "pods/ns/a".into()),
            (EventType::Added, 3, "pods/ns/b".into()),
            (EventType::Deleted, 4, "pods/ns/b".into()),
        ]
    );
}

pub async fn list_prefix_filter_and_snapshot_rv<B: Backing>(backing: &B) {
    let s = labels(backing).await;
    let b = s.current_rv();
    for (key, app) in [
        ("pods/a/x", "web"),
        ("pods/a/y", "db"),
        ("pods/b/x", "web"),
        ("podsx/a/x", "web"),
        ("nodes/n1", "web"),
    ] {
        s.create(key, obj(key, app)).await.unwrap();
    }
    let keys = |v: Vec<Entry>| v.iter().map(|e| e.key.to_string()).collect::<Vec<_>>();

    let (rv, all_pods) = s.list("pods/", |_| true);
    assert_eq!(rv, b + 5);
    assert_eq!(keys(all_pods), ["pods/a/x", "pods/a/y", "pods/b/x"]);
    assert_eq!(
        keys(s.list("pods/a/", |_| true).1),
        ["pods/a/x", "pods/a/y"]
    );
    assert_eq!(keys(s.list("pods/c/", |_| true).1), Vec::<String>::new());
    assert_eq!(
        keys(s.list("pods/", |e| e.attrs.label("app") == Some("web")).1),
        ["pods/a/x", "pods/b/x"]
    );
    assert_eq!(s.list("", |_| true).1.len(), 5);
    assert_eq!(s.count("pods/"), 3);
    assert_eq!(
        keys(s.list_field_equals("pods/", "metadata.name", "pods/a/x")),
        ["pods/a/x"]
    );
    assert_eq!(
        keys(s.list_field_equals("pods/b/", "metadata.name", "pods/a/x")),
        Vec::<String>::new()
    );

    s.delete("pods/a/y", None).await.unwrap();
    let (rv, items) = s.list("pods/", |_| true);
    assert_eq!(rv, b + 6);
    assert_eq!(keys(items), ["pods/a/x", "pods/b/x"]);
}

/// Indexes `spec.nodeName` and `status.phase` (which has no reverse index).
pub fn node_indexer() -> Indexer {
    std::sync::Arc::new(|_, obj: &Value| {
        let field = |path: &str| {
            obj.pointer(path)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Attrs::new(
            [],
            [
                ("spec.nodeName", field("/spec/nodeName")),
                ("status.phase", field("/status/phase")),
            ],
        )
    })
}

fn pod_on(node: &str, phase: &str) -> Value {
    json!({"spec": {"nodeName": node}, "status": {"phase": phase}})
}

pub async fn field_equality_lists_follow_the_reverse_index_through_every_write_and_a_reopen<
    B: Backing,
>(
    backing: &B,
) {
    let keys = |v: Vec<Entry>| v.iter().map(|e| e.key.to_string()).collect::<Vec<_>>();
    {
        let s = backing.open(node_indexer(), StoreOptions::default()).await;
        s.create("pods/a/x", pod_on("n1", "Running")).await.unwrap();
        s.create("pods/a/y", pod_on("", "Pending")).await.unwrap();
        s.create("pods/b/z", pod_on("n1", "Running")).await.unwrap();
        s.create("nodes/n1", json!({"spec": {}})).await.unwrap();
        assert_eq!(
            keys(s.list_field_equals("pods/", "spec.nodeName", "n1")),
            ["pods/a/x", "pods/b/z"]
        );
        assert_eq!(
            keys(s.list_field_equals("pods/a/", "spec.nodeName", "n1")),
            ["pods/a/x"]
        );
        // Bound, moved, status changed (the attributes' other field), deleted.
        s.update("pods/a/y", pod_on("n1", "Pending"), None)
            .await
            .unwrap();
        s.update("pods/b/z", pod_on("n2", "Running"), None)
            .await
            .unwrap();
        s.update("pods/a/x", pod_on("n1", "Succeeded"), None)
            .await
            .unwrap();
        assert_eq!(
            keys(s.list_field_equals("pods/", "spec.nodeName", "n1")),
            ["pods/a/x", "pods/a/y"]
        );
        s.delete("pods/a/x", None).await.unwrap();
        assert_eq!(
            keys(s.list_field_equals("pods/", "spec.nodeName", "n1")),
            ["pods/a/y"]
        );
        // The entries are the current versions.
        let y = s.list_field_equals("pods/a/", "spec.nodeName", "n1");
        assert_eq!(y[0].rv, s.get("pods/a/y").unwrap().rv);
        // A field without a reverse index is scanned, with the same answer.
        assert_eq!(
            keys(s.list_field_equals("pods/", "status.phase", "Running")),
            ["pods/b/z"]
        );
        s.close().await;
    }
    let s = backing.open(node_indexer(), StoreOptions::default()).await;
    assert_eq!(
        keys(s.list_field_equals("pods/", "spec.nodeName", "n1")),
        ["pods/a/y"]
    );
    assert_eq!(
        keys(s.list_field_equals("pods/", "spec.nodeName", "n2")),
        ["pods/b/z"]
    );
    s.close().await;
    let unindexed = backing
        .open(
            node_indexer(),
            StoreOptions {
                indexed_fields: Vec::new(),
                ..StoreOptions::default()
            },
        )
        .await;
    assert_eq!(
        keys(unindexed.list_field_equals("pods/", "spec.nodeName", "n1")),
        ["pods/a/y"]
    );
}

pub async fn watch_from_rv_filters_by_prefix_in_order<B: Backing>(backing: &B) {
    let s = labels(backing).await;
    let b = s.current_rv();
    s.create("pods/a/1", obj("1", "x")).await.unwrap(); // b+1
    s.create("nodes/n", obj("n", "x")).await.unwrap(); // b+2
    s.update("pods/a/1", obj("1", "y"), None).await.unwrap(); // b+3

    let mut w = s.watch("pods/", b + 1).unwrap();
    let e = next_event(&mut w).await;
    assert_eq!((e.kind, e.entry.rv), (EventType::Modified, b + 3));
    assert_eq!(e.prev.as_ref().unwrap().rv, b + 1);
    assert_eq!(e.prev.as_ref().unwrap().attrs.label("app"), Some("x"));

    // Follows new events, woken by commits.
    let s2 = s.clone();
    let writer = tokio::spawn(async move {
        s2.create("nodes/m", obj("m", "x")).await.unwrap(); // b+4 (filtered out)
        s2.delete("pods/a/1", None).await.unwrap(); // b+5
        s2.create("pods/b/2", obj("2", "x")).await.unwrap(); // b+6
    });
    let e = next_event(&mut w).await;
    assert_eq!((e.kind, e.entry.rv), (EventType::Deleted, b + 5));
    assert_eq!(rv_in_json(&e.entry), (b + 5).to_string());
    assert_eq!(e.entry.attrs.label("app"), Some("y"));
    assert_eq!(e.prev.as_ref().unwrap().rv, b + 3);
    let e = next_event(&mut w).await;
    assert_eq!((e.kind, e.entry.rv), (EventType::Added, b + 6));
    writer.await.unwrap();

    // Watching from the current rv is always valid and yields only later events.
    let mut w = s.watch("", s.current_rv()).unwrap();
    s.create("pods/c/3", obj("3", "x")).await.unwrap();
    assert_eq!(next_event(&mut w).await.entry.rv, b + 7);
}

/// list-then-watch(rv) under concurrent writes reconstructs exactly the final state, with
/// consecutive rvs (no gaps, no repeats).
pub async fn list_then_watch_misses_nothing_under_concurrent_writes<B: Backing>(backing: &B) {
    let s = labels(backing).await;
    let b = s.current_rv();
    let mut writers = JoinSet::new();
    for t in 0..8 {
        let s = s.clone();
        writers.spawn(async move {
            for i in 0..100 {
                let key = format!("pods/ns/{t}-{}", i % 20);
                match s.create(&key, obj(&key, "a")).await {
                    Ok(_) => {}
                    Err(StoreError::AlreadyExists) => {
                        if i % 3 == 0 {
                            let _ = s.delete(&key, None).await;
                        } else {
                            let _ = s.update(&key, obj(&key, &format!("v{i}")), None).await;
                        }
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        });
    }
    // Let some writes land, then list mid-stream.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while s.current_rv() < b + 150 {
        assert!(
            std::time::Instant::now() < deadline,
            "writers made no progress"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (list_rv, items) = s.list("pods/", |_| true);
    let mut state: BTreeMap<String, (u64, bytes::Bytes)> = items
        .into_iter()
        .map(|e| (e.key.to_string(), (e.rv, e.json)))
        .collect();
    let mut w = s.watch("pods/", list_rv).unwrap();
    while let Some(r) = writers.join_next().await {
        r.unwrap();
    }
    let final_rv = s.current_rv();
    let mut expect_rv = list_rv;
    while expect_rv < final_rv {
        let e = next_event(&mut w).await;
        expect_rv += 1;
        assert_eq!(e.entry.rv, expect_rv, "events are consecutive");
        match e.kind {
            EventType::Added => {
                assert!(
                    state
                        .insert(e.entry.key.to_string(), (e.entry.rv, e.entry.json))
                        .is_none()
                )
            }
            EventType::Modified => {
                assert!(
                    state
                        .insert(e.entry.key.to_string(), (e.entry.rv, e.entry.json))
                        .is_some()
                )
            }
            EventType::Deleted => assert!(state.remove(&*e.entry.key).is_some()),
        }
    }
    let (rv, items) = s.list("pods/", |_| true);
    assert_eq!(rv, final_rv);
    let fin: BTreeMap<String, (u64, bytes::Bytes)> = items
        .into_iter()
        .map(|e| (e.key.to_string(), (e.rv, e.json)))
        .collect();
    assert_eq!(state, fin);
}

pub async fn watch_expired_when_ring_dropped_events<B: Backing>(backing: &B) {
    let s = backing
        .open(
            no_attrs(),
            StoreOptions {
                ring_capacity: 10,
                ..StoreOptions::default()
            },
        )
        .await;
    let b = s.current_rv();
    // A watcher created while its start is still valid, then left behind.
    let mut behind = s.watch("", b).unwrap();
    for i in 0..25 {
        s.create(&format!("k/{i:02}"), json!({})).await.unwrap();
    }
    // Ring holds rvs b+16..=b+25; every event after b+15 is available.
    match s.watch("", b + 14) {
        Err(StoreError::Expired { oldest }) => assert_eq!(oldest, b + 15),
        other => panic!("expected Expired, got {other:?}"),
    }
    let mut w = s.watch("", b + 15).unwrap();
    for rv in b + 16..=b + 25 {
        assert_eq!(next_event(&mut w).await.entry.rv, rv);
    }
    assert!(s.watch("", b + 25).is_ok());

    let first = timeout(Duration::from_secs(10), behind.next())
        .await
        .unwrap();
    match first {
        Some(Err(StoreError::Expired { oldest })) => assert_eq!(oldest, b + 15),
        other => panic!("expected Expired, got {other:?}"),
    }
    assert!(behind.next().await.is_none(), "an expired watcher ends");
}

pub async fn events_keep_previous_json_only_when_attributes_change<B: Backing>(backing: &B) {
    let s = labels(backing).await;
    let b = s.current_rv();
    s.create("pods/a/1", obj("1", "x")).await.unwrap(); // b+1
    let mut same = obj("1", "x");
    same["spec"]["x"] = json!(2);
    s.update("pods/a/1", same, None).await.unwrap(); // b+2
    s.update("pods/a/1", obj("1", "y"), None).await.unwrap(); // b+3
    let mut w = s.watch("pods/", b + 1).unwrap();
    let unchanged = next_event(&mut w).await;
    let prev = unchanged.prev.as_ref().unwrap();
    assert_eq!(prev.rv, b + 1);
    assert!(prev.json.is_none());
    assert!(std::sync::Arc::ptr_eq(&prev.attrs, &unchanged.entry.attrs));
    let changed = next_event(&mut w).await;
    let prev = changed.prev.as_ref().unwrap();
    assert_eq!(
        (prev.rv, prev.attrs.label("app").unwrap_or_default()),
        (b + 2, "x")
    );
    let old: Value = serde_json::from_slice(&prev.object_at(b + 3).unwrap()).unwrap();
    assert_eq!(old["metadata"]["resourceVersion"], (b + 3).to_string());
    assert_eq!(old["metadata"]["labels"]["app"], "x");
    assert_eq!(old["spec"]["x"], 2);
}

pub async fn close_rejects_writes_and_ends_watchers<B: Backing>(backing: &B) {
    let s = labels(backing).await;
    let b = s.current_rv();
    s.create("k/a", json!({})).await.unwrap();
    let mut w = s.watch("", b).unwrap();
    s.close().await;
    assert!(matches!(
        s.create("k/b", json!({})).await,
        Err(StoreError::Closed)
    ));
    // Reads keep working; the watcher drains the committed event, then ends.
    assert!(s.get("k/a").is_some());
    assert_eq!(next_event(&mut w).await.entry.rv, b + 1);
    assert!(
        timeout(Duration::from_secs(10), w.next())
            .await
            .unwrap()
            .is_none()
    );
    let res = s
        .commit(vec![Op::Delete {
            key: "k/a".into(),
            expected_rv: None,
        }])
        .await;
    assert!(matches!(res[..], [Err(StoreError::Closed)]));
}

pub async fn rv_persists_across_reopen<B: Backing>(backing: &B) {
    let b;
    {
        let s = labels(backing).await;
        b = s.current_rv();
        s.create("pods/ns/a", obj("a", "1")).await.unwrap();
        s.create("pods/ns/b", obj("b", "1")).await.unwrap();
        s.update("pods/ns/a", obj("a", "2"), Some(b + 1))
            .await
            .unwrap();
        s.create("pods/ns/c", obj("c", "1")).await.unwrap();
        // Deleting the newest object: the rv must still persist.
        s.delete("pods/ns/c", None).await.unwrap();
        assert_eq!(s.current_rv(), b + 5);
        s.close().await;
    }

    let s = labels(backing).await;
    assert_eq!(s.current_rv(), b + 5);
    let (rv, items) = s.list("pods/", |_| true);
    assert_eq!(rv, b + 5);
    let got: Vec<_> = items
        .iter()
        .map(|e| {
            (
                e.key.to_string(),
                e.rv - b,
                e.attrs.label("app").unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("pods/ns/a".to_string(), 3, "2".to_string()),
            ("pods/ns/b".to_string(), 2, "1".to_string())
        ]
    );
    assert_eq!(rv_in_json(&items[0]), (b + 3).to_string());
    // History before the reopen is not kept; watching from now on works.
    match s.watch("", b + 4) {
        Err(StoreError::Expired { oldest }) => assert_eq!(oldest, b + 5),
        other => panic!("expected Expired, got {other:?}"),
    }
    let mut w = s.watch("", b + 5).unwrap();
    let d = s.create("pods/ns/d", obj("d", "1")).await.unwrap();
    assert_eq!(d.rv, b + 6);
    assert_eq!(next_event(&mut w).await.entry.rv, b + 6);
    s.close().await;

    let s2 = backing.open(no_attrs(), StoreOptions::default()).await;
    assert_eq!(s2.current_rv(), b + 6);
    assert_eq!(s2.count(""), 3);
}
