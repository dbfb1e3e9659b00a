//! Store semantics: writes and their errors, resourceVersions, lists, watches, batching.

use std::collections::BTreeMap;
use std::time::Duration;

use pernode_store::{
    Attrs, Entry, EventType, Indexer, Op, Store, StoreError, StoreOptions, labels_indexer, no_attrs,
};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::timeout;

fn obj(name: &str, app: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"app": app}}, "spec": {"x": 1}})
}

fn rv_in_json(e: &Entry) -> String {
    e.value().unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn mem() -> Store {
    Store::in_memory(labels_indexer(), StoreOptions::default())
}

async fn next_event(w: &mut pernode_store::Watcher) -> pernode_store::Event {
    timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watch event within 10s")
        .expect("watch not ended")
        .expect("watch not failed")
}

#[tokio::test]
async fn an_edit_of_the_stored_bytes_is_stamped_escaped_and_indexed_as_given() {
    let s = mem();
    let a = s.create("pods/ns/a", obj("a", "one")).await.unwrap();
    let stored = std::str::from_utf8(&a.json).unwrap();
    let edited = stored.replace(r#""x":1"#, r#""x":"<2>""#);
    let attrs = a.attrs.with_fields([("spec.nodeName", "n1".to_string())]);
    let b = s
        .update_edited("pods/ns/a", edited, attrs.clone(), a.rv)
        .await
        .unwrap();
    assert_eq!(b.rv, 2);
    assert_eq!(rv_in_json(&b), "2");
    assert!(
        std::str::from_utf8(&b.json)
            .unwrap()
            .contains(r#""x":"\u003c2\u003e""#),
        "Go's escaping: {:?}",
        b.json
    );
    assert_eq!(*b.attrs, attrs);
    assert_eq!(s.get("pods/ns/a").unwrap().json, b.json);
    // Edited from a version that is no longer current: a conflict, nothing written.
    let stale = stored.to_string();
    assert!(matches!(
        s.update_edited("pods/ns/a", stale, attrs.clone(), a.rv)
            .await,
        Err(StoreError::Conflict { current_rv: 2 })
    ));
    // The version's resourceVersion text appears twice: serialized in full instead.
    let current = std::str::from_utf8(&b.json).unwrap();
    let twice = current.replace(r#""x":"\u003c2\u003e""#, r#""x":{"resourceVersion":"2"}"#);
    let c = s
        .update_edited("pods/ns/a", twice, attrs, b.rv)
        .await
        .unwrap();
    let c_value = c.value().unwrap();
    assert_eq!(c_value["metadata"]["resourceVersion"], "3");
    assert_eq!(c_value["spec"]["x"]["resourceVersion"], "2");
    assert!(matches!(
        s.update_edited("pods/ns/a", "{".into(), Default::default(), c.rv)
            .await,
        Err(StoreError::InvalidObject(_))
    ));
    assert_eq!(s.current_rv(), 3, "a failed edit writes nothing");
}

#[tokio::test]
async fn create_get_update_delete() {
    let s = mem();
    assert_eq!(s.current_rv(), 0);
    assert!(s.get("pods/ns/a").is_none());

    let a = s.create("pods/ns/a", obj("a", "one")).await.unwrap();
    assert_eq!(a.rv, 1);
    assert_eq!(&*a.key, "pods/ns/a");
    assert_eq!(rv_in_json(&a), "1");
    assert_eq!(a.attrs.label("app"), Some("one"));
    assert_eq!(s.current_rv(), 1);
    assert_eq!(s.get("pods/ns/a").unwrap().json, a.json);

    assert!(matches!(
        s.create("pods/ns/a", obj("a", "one")).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(s.current_rv(), 1, "a failed write does not consume an rv");

    assert!(matches!(
        s.update("pods/ns/b", obj("b", "x"), None).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete("pods/ns/b", None).await,
        Err(StoreError::NotFound)
    ));

    let a2 = s
        .update("pods/ns/a", obj("a", "two"), Some(1))
        .await
        .unwrap();
    assert_eq!(a2.rv, 2);
    assert_eq!(rv_in_json(&a2), "2");
    assert_eq!(a2.attrs.label("app"), Some("two"));

    // Stale rv: conflict, reporting the current one; nothing changes.
    match s.update("pods/ns/a", obj("a", "three"), Some(1)).await {
        Err(StoreError::Conflict { current_rv }) => assert_eq!(current_rv, 2),
        other => panic!("expected conflict, got {other:?}"),
    }
    match s.delete("pods/ns/a", Some(1)).await {
        Err(StoreError::Conflict { current_rv }) => assert_eq!(current_rv, 2),
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(s.get("pods/ns/a").unwrap().rv, 2);

    // Unconditional update.
    let a3 = s
        .update("pods/ns/a", obj("a", "three"), None)
        .await
        .unwrap();
    assert_eq!(a3.rv, 3);

    let gone = s.delete("pods/ns/a", Some(3)).await.unwrap();
    assert_eq!(gone.rv, 4);
    assert_eq!(rv_in_json(&gone), "4");
    assert_eq!(gone.value().unwrap()["metadata"]["labels"]["app"], "three");
    assert!(s.get("pods/ns/a").is_none());
    assert_eq!(s.current_rv(), 4);

    // Recreate after delete.
    assert_eq!(s.create("pods/ns/a", obj("a", "one")).await.unwrap().rv, 5);

    // Not an object: rejected, no rv consumed.
    assert!(matches!(
        s.create("pods/ns/z", json!([1, 2])).await,
        Err(StoreError::InvalidObject(_))
    ));
    assert_eq!(s.current_rv(), 5);
}

#[tokio::test]
async fn commit_batch_sees_earlier_ops_and_fails_ops_independently() {
    let s = mem();
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
                expected_rv: Some(1),
            },
            Op::Update {
                key: "pods/ns/a".into(),
                obj: obj("a", "stale"),
                expected_rv: Some(1),
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
                expected_rv: Some(3),
            },
        ])
        .await;
    assert_eq!(res.len(), 7);
    assert_eq!(res[0].as_ref().unwrap().rv, 1);
    assert!(matches!(res[1], Err(StoreError::AlreadyExists)));
    assert_eq!(res[2].as_ref().unwrap().rv, 2);
    assert!(matches!(
        res[3],
        Err(StoreError::Conflict { current_rv: 2 })
    ));
    assert!(matches!(res[4], Err(StoreError::NotFound)));
    assert_eq!(res[5].as_ref().unwrap().rv, 3);
    assert_eq!(res[6].as_ref().unwrap().rv, 4);
    assert_eq!(s.current_rv(), 4);
    assert_eq!(s.get("pods/ns/a").unwrap().attrs.label("app"), Some("2"));
    assert!(s.get("pods/ns/b").is_none());
    assert_eq!(s.stats().commits, 1);
    assert_eq!(s.stats().writes, 4);

    // Every event of the batch is in the ring, in order.
    let mut w = s.watch("", 0).unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        let e = next_event(&mut w).await;
        got.push((e.kind, e.entry.rv, e.entry.key.to_string()));
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

#[tokio::test]
async fn list_prefix_filter_and_snapshot_rv() {
    let s = mem();
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
    assert_eq!(rv, 5);
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
    assert_eq!(
        keys(s.list_field_equals("pods/", "metadata.namespace", "")),
        Vec::<String>::new()
    );

    s.delete("pods/a/y", None).await.unwrap();
    let (rv, items) = s.list("pods/", |_| true);
    assert_eq!(rv, 6);
    assert_eq!(keys(items), ["pods/a/x", "pods/b/x"]);
}

/// Indexes `spec.nodeName` and `status.phase` (which has no reverse index).
fn node_indexer() -> Indexer {
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

#[tokio::test]
async fn field_equality_lists_follow_the_reverse_index_through_every_write_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let keys = |v: Vec<Entry>| v.iter().map(|e| e.key.to_string()).collect::<Vec<_>>();
    {
        let s = Store::open(dir.path(), node_indexer(), StoreOptions::default()).unwrap();
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
    let s = Store::open(dir.path(), node_indexer(), StoreOptions::default()).unwrap();
    assert_eq!(
        keys(s.list_field_equals("pods/", "spec.nodeName", "n1")),
        ["pods/a/y"]
    );
    assert_eq!(
        keys(s.list_field_equals("pods/", "spec.nodeName", "n2")),
        ["pods/b/z"]
    );
    let unindexed = Store::in_memory(
        node_indexer(),
        StoreOptions {
            indexed_fields: Vec::new(),
            ..StoreOptions::default()
        },
    );
    unindexed
        .create("pods/a/x", pod_on("n1", "Running"))
        .await
        .unwrap();
    assert_eq!(
        keys(unindexed.list_field_equals("pods/", "spec.nodeName", "n1")),
        ["pods/a/x"]
    );
}

#[tokio::test]
async fn watch_from_rv_filters_by_prefix_in_order() {
    let s = mem();
    s.create("pods/a/1", obj("1", "x")).await.unwrap(); // rv 1
    s.create("nodes/n", obj("n", "x")).await.unwrap(); // rv 2
    s.update("pods/a/1", obj("1", "y"), None).await.unwrap(); // rv 3

    let mut w = s.watch("pods/", 1).unwrap();
    let e = next_event(&mut w).await;
    assert_eq!((e.kind, e.entry.rv), (EventType::Modified, 3));
    assert_eq!(e.prev.as_ref().unwrap().rv, 1);
    assert_eq!(e.prev.as_ref().unwrap().attrs.label("app"), Some("x"));

    // Follows new events, woken by commits.
    let s2 = s.clone();
    let writer = tokio::spawn(async move {
        s2.create("nodes/m", obj("m", "x")).await.unwrap(); // 4 (filtered out)
        s2.delete("pods/a/1", None).await.unwrap(); // 5
        s2.create("pods/b/2", obj("2", "x")).await.unwrap(); // 6
    });
    let e = next_event(&mut w).await;
    assert_eq!((e.kind, e.entry.rv), (EventType::Deleted, 5));
    assert_eq!(rv_in_json(&e.entry), "5");
    assert_eq!(e.entry.attrs.label("app"), Some("y"));
    assert_eq!(e.prev.as_ref().unwrap().rv, 3);
    let e = next_event(&mut w).await;
    assert_eq!((e.kind, e.entry.rv), (EventType::Added, 6));
    writer.await.unwrap();

    // Watching from the current rv is always valid and yields only later events.
    let mut w = s.watch("", s.current_rv()).unwrap();
    s.create("pods/c/3", obj("3", "x")).await.unwrap();
    assert_eq!(next_event(&mut w).await.entry.rv, 7);
}

/// list-then-watch(rv) under concurrent writes reconstructs exactly the final state, with
/// consecutive rvs (no gaps, no repeats).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_then_watch_misses_nothing_under_concurrent_writes() {
    let s = mem();
    let mut writers = JoinSet::new();
    for t in 0..8 {
        let s = s.clone();
        writers.spawn(async move {
            for i in 0..200 {
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
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while s.current_rv() < 300 {
        assert!(
            std::time::Instant::now() < deadline,
            "writers made no progress"
        );
        tokio::task::yield_now().await;
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

#[tokio::test]
async fn watch_expired_when_ring_dropped_events() {
    let s = Store::in_memory(
        no_attrs(),
        StoreOptions {
            ring_capacity: 10,
            ..StoreOptions::default()
        },
    );
    // A watcher created while its start is still valid, then left behind.
    let mut behind = s.watch("", 0).unwrap();
    for i in 0..25 {
        s.create(&format!("k/{i:02}"), json!({})).await.unwrap();
    }
    // Ring holds rvs 16..=25; every event after 15 is available.
    match s.watch("", 14) {
        Err(StoreError::Expired { oldest }) => assert_eq!(oldest, 15),
        other => panic!("expected Expired, got {other:?}"),
    }
    let mut w = s.watch("", 15).unwrap();
    for rv in 16..=25 {
        assert_eq!(next_event(&mut w).await.entry.rv, rv);
    }
    assert!(s.watch("", 25).is_ok());

    let first = timeout(Duration::from_secs(10), behind.next())
        .await
        .unwrap();
    assert!(matches!(
        first,
        Some(Err(StoreError::Expired { oldest: 15 }))
    ));
    assert!(behind.next().await.is_none(), "an expired watcher ends");
}

#[tokio::test]
async fn watch_expired_when_ring_exceeds_its_byte_bound() {
    // Room for about four events of this size: the ring keeps the newest within the bound.
    let big = "x".repeat(1000);
    let s = Store::in_memory(
        no_attrs(),
        StoreOptions {
            ring_bytes: 5_000,
            ..StoreOptions::default()
        },
    );
    let mut behind = s.watch("", 0).unwrap();
    for i in 0..20 {
        s.create(&format!("k/{i:02}"), json!({ "data": big }))
            .await
            .unwrap();
    }
    let first = timeout(Duration::from_secs(10), behind.next())
        .await
        .unwrap();
    let Some(Err(StoreError::Expired { oldest })) = first else {
        panic!("expected Expired, got {first:?}");
    };
    assert!((14..20).contains(&oldest), "oldest kept rv {oldest}");
    assert!(matches!(
        s.watch("", oldest - 1),
        Err(StoreError::Expired { .. })
    ));
    let mut w = s.watch("", oldest).unwrap();
    for rv in oldest + 1..=20 {
        assert_eq!(next_event(&mut w).await.entry.rv, rv);
    }
    // The newest event always stays, however large.
    s.create("k/huge", json!({ "data": "y".repeat(10_000) }))
        .await
        .unwrap();
    assert!(s.watch("", 20).is_ok());
}

#[tokio::test]
async fn events_keep_previous_json_only_when_attributes_change() {
    let s = mem();
    s.create("pods/a/1", obj("1", "x")).await.unwrap(); // rv 1
    let mut same = obj("1", "x");
    same["spec"]["x"] = json!(2);
    s.update("pods/a/1", same, None).await.unwrap(); // rv 2
    s.update("pods/a/1", obj("1", "y"), None).await.unwrap(); // rv 3
    let mut w = s.watch("pods/", 1).unwrap();
    let unchanged = next_event(&mut w).await;
    let prev = unchanged.prev.as_ref().unwrap();
    assert_eq!(prev.rv, 1);
    assert!(prev.json.is_none());
    assert!(std::sync::Arc::ptr_eq(&prev.attrs, &unchanged.entry.attrs));
    let changed = next_event(&mut w).await;
    let prev = changed.prev.as_ref().unwrap();
    assert_eq!(
        (prev.rv, prev.attrs.label("app").unwrap_or_default()),
        (2, "x")
    );
    let old: Value = serde_json::from_slice(&prev.object_at(3).unwrap()).unwrap();
    assert_eq!(old["metadata"]["resourceVersion"], "3");
    assert_eq!(old["metadata"]["labels"]["app"], "x");
    assert_eq!(old["spec"]["x"], 2);
}

#[tokio::test]
async fn fresh_store_accepts_watch_from_zero_until_events_drop() {
    let s = mem();
    assert!(s.watch("", 0).is_ok());
}

#[tokio::test]
async fn close_rejects_writes_and_ends_watchers() {
    let s = mem();
    s.create("k/a", json!({})).await.unwrap();
    let mut w = s.watch("", 0).unwrap();
    s.close().await;
    assert!(matches!(
        s.create("k/b", json!({})).await,
        Err(StoreError::Closed)
    ));
    // Reads keep working; the watcher drains the committed event, then ends.
    assert!(s.get("k/a").is_some());
    assert_eq!(next_event(&mut w).await.entry.rv, 1);
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

#[tokio::test]
async fn rv_persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path(), labels_indexer(), StoreOptions::default()).unwrap();
        s.create("pods/ns/a", obj("a", "1")).await.unwrap();
        s.create("pods/ns/b", obj("b", "1")).await.unwrap();
        s.update("pods/ns/a", obj("a", "2"), Some(1)).await.unwrap();
        s.create("pods/ns/c", obj("c", "1")).await.unwrap();
        // Deleting the newest object: the rv must still persist via the meta row.
        s.delete("pods/ns/c", None).await.unwrap();
        assert_eq!(s.current_rv(), 5);
    } // drop closes the database

    let s = Store::open(dir.path(), labels_indexer(), StoreOptions::default()).unwrap();
    assert_eq!(s.current_rv(), 5);
    let (rv, items) = s.list("pods/", |_| true);
    assert_eq!(rv, 5);
    let got: Vec<_> = items
        .iter()
        .map(|e| {
            (
                e.key.to_string(),
                e.rv,
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
    assert_eq!(rv_in_json(&items[0]), "3");
    // History before the restart is gone; watching from now on works.
    assert!(matches!(
        s.watch("", 4),
        Err(StoreError::Expired { oldest: 5 })
    ));
    let mut w = s.watch("", 5).unwrap();
    let b = s.create("pods/ns/d", obj("d", "1")).await.unwrap();
    assert_eq!(b.rv, 6);
    assert_eq!(next_event(&mut w).await.entry.rv, 6);
    s.close().await;

    // close() released the database: it can be reopened while `s` is still alive.
    let s2 = Store::open(dir.path(), no_attrs(), StoreOptions::default()).unwrap();
    assert_eq!(s2.current_rv(), 6);
    assert_eq!(s2.count(""), 3);
}

#[tokio::test]
async fn second_open_of_same_dir_fails() {
    let dir = tempfile::tempdir().unwrap();
    let _s = Store::open(dir.path(), no_attrs(), StoreOptions::default()).unwrap();
    let t0 = std::time::Instant::now();
    assert!(matches!(
        Store::open(dir.path(), no_attrs(), StoreOptions::default()),
        Err(StoreError::Io(_))
    ));
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_are_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), labels_indexer(), StoreOptions::default()).unwrap();
    let n = 1000;
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let s = s.clone();
        tasks.spawn(async move {
            s.create(&format!("pods/ns/p{i}"), obj(&format!("p{i}"), "x"))
                .await
                .map(|e| e.rv)
        });
    }
    let mut rvs = Vec::new();
    while let Some(r) = tasks.join_next().await {
        rvs.push(r.unwrap().unwrap());
    }
    rvs.sort_unstable();
    assert_eq!(
        rvs,
        (1..=n as u64).collect::<Vec<_>>(),
        "unique, gap-free rvs"
    );
    let stats = s.stats();
    assert_eq!(stats.writes, n as u64);
    assert!(
        stats.commits * 10 <= stats.writes,
        "expected batching, got {stats:?}"
    );
    assert_eq!(s.count("pods/ns/"), n);
}

/// The store's directory is owner-only (0700) and so are its files (0600): they hold every
/// object of the cluster, Secrets among them.
#[tokio::test]
async fn the_data_dir_and_its_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().expect("dir");
    let dir = parent.path().join("data/store");
    let store = Store::open(&dir, no_attrs(), StoreOptions::default()).expect("open");
    store.create("a/b", obj("b", "x")).await.expect("write");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("read dir") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    assert!(files >= 2, "the database and its WAL");
    store.close().await;
}

/// The exposition of the store's commit histograms.
fn commit_metrics(s: &Store) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    s.metrics().register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

#[tokio::test]
async fn commits_are_measured_per_batch_and_objects_counted_per_resource() {
    let s = mem();
    let create = |key: &str| Op::Create {
        key: key.into(),
        obj: obj(key.rsplit('/').next().unwrap(), "x"),
    };
    // One batch of three writes (a failed op writes nothing), then a batch of one.
    let res = s
        .commit(vec![
            create("pods/ns/a"),
            create("pods/ns/b"),
            create("pods/ns/a"),
            create("widgets.example.com/ns/w"),
        ])
        .await;
    assert_eq!(res.iter().filter(|r| r.is_ok()).count(), 3);
    s.create("daemonsets/ns/d", obj("d", "x")).await.unwrap();
    let text = commit_metrics(&s);
    assert!(
        text.contains("pernode_store_commit_batch_writes_count 2\n"),
        "{text}"
    );
    assert!(
        text.contains("pernode_store_commit_batch_writes_sum 4.0\n"),
        "{text}"
    );
    assert!(
        text.contains("pernode_store_commit_batch_writes_bucket{le=\"1.0\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("etcd_disk_backend_commit_duration_seconds_count 2\n"),
        "{text}"
    );
    assert_eq!(
        s.count_by_resource(),
        vec![
            ("daemonsets".to_string(), 1),
            ("pods".to_string(), 2),
            ("widgets.example.com".to_string(), 1)
        ]
    );
}
