//! Store semantics: the shared suite (`suite/`) on the embedded SQLite store, and what only
//! the embedded store does (group commit, its files, the in-memory ring's byte bound).

mod suite;

use std::time::Duration;

use pernode_store::{Indexer, Op, Store, StoreError, StoreOptions, labels_indexer, no_attrs};
use serde_json::json;
use suite::{Backing, next_event, obj};
use tokio::task::JoinSet;
use tokio::time::timeout;

/// The embedded store in a temporary directory; every open is of the same directory.
struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    fn new() -> Sqlite {
        Sqlite {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }
}

impl Backing for Sqlite {
    const GROUP_COMMIT: bool = true;

    async fn open(&self, indexer: Indexer, opts: StoreOptions) -> Store {
        Store::open(self.dir.path(), indexer, opts).expect("open the SQLite store")
    }
}

store_suite!(Sqlite::new());

fn mem() -> Store {
    Store::in_memory(labels_indexer(), StoreOptions::default())
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
async fn fresh_store_accepts_watch_from_zero_until_events_drop() {
    let s = mem();
    assert!(s.watch("", 0).is_ok());
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
