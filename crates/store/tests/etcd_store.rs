//! The store on etcd: the shared suite (`suite/`) against a fresh 3-member etcd cluster per
//! case, then what only etcd does: several stores (API servers) on one etcd, compaction,
//! etcd's request size limit, and etcd unreachable or lost. Needs the `etcd` binary; without
//! it every case fails saying so.

mod suite;

use std::time::{Duration, Instant};

use pernode_store::etcd::{EtcdConfig, test_cluster::TestCluster};
use pernode_store::{EventType, Indexer, Store, StoreError, StoreOptions, labels_indexer};
use serde_json::json;
use suite::{Backing, next_event, obj};

/// A 3-member cluster of this test's own; the store on it never compacts unless asked.
struct Etcd {
    cluster: TestCluster,
}

impl Etcd {
    async fn start() -> Etcd {
        match TestCluster::start().await {
            Ok(cluster) => Etcd { cluster },
            Err(e) => panic!("{e}"),
        }
    }

    fn config(&self) -> EtcdConfig {
        let mut config =
            EtcdConfig::from_url(&self.cluster.url(), None).expect("the cluster's URL");
        // The compactor's bookkeeping key would take revisions between the suite's writes.
        config.compaction_interval = Duration::ZERO;
        config.request_timeout = Duration::from_secs(2);
        config
    }
}

impl Backing for Etcd {
    const GROUP_COMMIT: bool = false;

    async fn open(&self, indexer: Indexer, opts: StoreOptions) -> Store {
        Store::open_etcd(self.config(), indexer, opts)
            .await
            .expect("open the store on etcd")
    }
}

store_suite!(Etcd::start().await);

async fn open(config: EtcdConfig) -> Store {
    Store::open_etcd(config, labels_indexer(), StoreOptions::default())
        .await
        .expect("open the store on etcd")
}

/// Polls `check` until it holds, failing after `within`.
async fn eventually(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_etcd_see_each_others_writes_in_order() {
    let etcd = Etcd::start().await;
    let one = open(etcd.config()).await;
    let two = open(etcd.config()).await;
    let mut watch = two.watch("pods/", two.current_rv()).unwrap();
    let mut written = Vec::new();
    for i in 0..30 {
        let key = format!("pods/ns/p{}", i % 10);
        let entry = match i {
            0..10 => one.create(&key, obj(&key, "a")).await,
            10..20 => one.update(&key, obj(&key, "b"), None).await,
            _ => one.delete(&key, None).await,
        }
        .unwrap();
        written.push((entry.rv, key));
    }
    for (i, (rv, key)) in written.iter().enumerate() {
        let event = next_event(&mut watch).await;
        assert_eq!((event.entry.rv, &*event.entry.key), (*rv, key.as_str()));
        let kind = [EventType::Added, EventType::Modified, EventType::Deleted][i / 10];
        assert_eq!(event.kind, kind);
    }
    assert_eq!(two.current_rv(), one.current_rv());

    // Optimistic concurrency across servers: a version the other server replaced conflicts,
    // and of two creates of one key exactly one wins.
    let a = one.create("pods/ns/a", obj("a", "1")).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the second server sees the create",
        async || two.get("pods/ns/a").is_some(),
    )
    .await;
    let newer = two
        .update("pods/ns/a", obj("a", "2"), Some(a.rv))
        .await
        .unwrap();
    match one.update("pods/ns/a", obj("a", "3"), Some(a.rv)).await {
        Err(StoreError::Conflict { current_rv }) => assert_eq!(current_rv, newer.rv),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // An unpinned update retries on the version etcd holds, even before this cache has it.
    let latest = one.update("pods/ns/a", obj("a", "4"), None).await.unwrap();
    assert!(latest.rv > newer.rv);
    let (x, y) = tokio::join!(
        one.create("pods/ns/race", obj("race", "1")),
        two.create("pods/ns/race", obj("race", "2")),
    );
    assert!(
        matches!(
            (&x, &y),
            (Ok(_), Err(StoreError::AlreadyExists)) | (Err(StoreError::AlreadyExists), Ok(_))
        ),
        "{x:?} {y:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_compaction_expires_watches_from_before_it() {
    let etcd = Etcd::start().await;
    let mut config = etcd.config();
    config.compaction_interval = Duration::from_millis(200);
    let s = open(config).await;
    let b = s.current_rv();
    for i in 0..3 {
        s.create(&format!("pods/ns/{i}"), obj("x", "1"))
            .await
            .unwrap();
    }
    assert!(s.watch("", b).is_ok());
    // The first tick only notes the revision; a later one compacts at it.
    eventually(
        Duration::from_secs(20),
        "a watch from before the compaction expires",
        async || matches!(s.watch("", b), Err(StoreError::Expired { .. })),
    )
    .await;
    // Watching from now on still works, and writes go on.
    let mut w = s.watch("", s.current_rv()).unwrap();
    let e = s.create("pods/ns/later", obj("later", "1")).await.unwrap();
    assert_eq!(next_event(&mut w).await.entry.rv, e.rv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_too_large_for_etcd_is_refused_with_its_message() {
    let etcd = Etcd::start().await;
    let s = open(etcd.config()).await;
    let b = s.current_rv();
    // Over etcd's default 1.5 MiB request limit, under the API server's 3 MiB body limit.
    let big = json!({"metadata": {"name": "big"}, "data": {"x": "x".repeat(1_700_000)}});
    let err = s.create("configmaps/ns/big", big).await.unwrap_err();
    assert!(matches!(err, StoreError::TooLarge), "{err:?}");
    assert_eq!(err.to_string(), "etcdserver: request is too large");
    assert!(s.get("configmaps/ns/big").is_none());
    assert_eq!(s.current_rv(), b);
    // Just under the limit is fine.
    let fits = json!({"metadata": {"name": "fits"}, "data": {"x": "x".repeat(1_400_000)}});
    s.create("configmaps/ns/fits", fits).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_etcd_at_open_is_retried_then_reported() {
    let mut etcd = Etcd::start().await;
    for i in 0..3 {
        etcd.cluster.stop_member(i);
    }
    // Nothing answers: a clear error once the start timeout is spent.
    let mut config = etcd.config();
    config.start_timeout = Duration::from_secs(2);
    config.request_timeout = Duration::from_millis(500);
    let err = Store::open_etcd(config.clone(), labels_indexer(), StoreOptions::default())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("cannot reach etcd at http://127.0.0.1:"),
        "{message}"
    );
    // etcd coming back while the store retries: the open succeeds.
    config.start_timeout = Duration::from_secs(60);
    let opening = tokio::spawn(Store::open_etcd(
        config,
        labels_indexer(),
        StoreOptions::default(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!opening.is_finished(), "no quorum yet: still retrying");
    etcd.cluster.start_members(&[0, 1, 2]).await.unwrap();
    let s = opening.await.unwrap().expect("opened once etcd is back");
    s.create("pods/ns/a", obj("a", "1")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn losing_etcd_fails_writes_and_readiness_keeps_reads_then_recovers() {
    let mut etcd = Etcd::start().await;
    // Killing the leader costs an election (etcd's election timeout is 1 s; on a loaded
    // machine more): give a write the production bound and more, not the suite's 2 s.
    let mut config = etcd.config();
    config.request_timeout = Duration::from_secs(10);
    let s = open(config).await;
    let a = s.create("pods/ns/a", obj("a", "1")).await.unwrap();
    let mut w = s.watch("pods/", a.rv).unwrap();
    s.check_ready().await.expect("ready with every member up");
    assert_eq!(s.ready_check_name(), Some("etcd"));

    // One member down: a quorum remains, writes and readiness go on (a request the client
    // sends to the dead member is retried on another).
    etcd.cluster.stop_member(0);
    let mut b = a.clone();
    for i in 0..20 {
        b = s
            .update("pods/ns/a", obj("a", &i.to_string()), None)
            .await
            .unwrap();
        assert_eq!(next_event(&mut w).await.entry.rv, b.rv);
        s.check_ready().await.expect("ready with a quorum");
    }

    // Two down: no quorum. Readiness fails, writes fail with an error, reads still answer.
    etcd.cluster.stop_member(1);
    eventually(
        Duration::from_secs(20),
        "readiness notices the lost quorum",
        async || s.check_ready().await.is_err(),
    )
    .await;
    match s.create("pods/ns/b", obj("b", "1")).await {
        // etcd's timeout, as the member words it (kube-apiserver passes either on).
        Err(StoreError::Etcd(message)) => assert!(
            ["etcdserver: request timed out", "context deadline exceeded"].contains(&&*message),
            "{message}"
        ),
        other => panic!("expected etcd's timeout, got {other:?}"),
    }
    assert_eq!(s.get("pods/ns/a").unwrap().rv, b.rv);
    assert_eq!(s.list("pods/", |_| true).1.len(), 1);

    // Back: ready again, writes resume, and the watch cache follows them.
    etcd.cluster.start_members(&[0, 1]).await.unwrap();
    eventually(Duration::from_secs(30), "readiness recovers", async || {
        s.check_ready().await.is_ok()
    })
    .await;
    let mut created = None;
    eventually(Duration::from_secs(30), "writes resume", async || {
        match s.create("pods/ns/c", obj("c", "1")).await {
            Ok(e) => {
                created = Some(e);
                true
            }
            Err(StoreError::AlreadyExists) => true,
            Err(_) => false,
        }
    })
    .await;
    let c = s.get("pods/ns/c").expect("the cache has the write");
    loop {
        let e = next_event(&mut w).await;
        if e.entry.key.as_ref() == "pods/ns/c" {
            assert_eq!(e.entry.rv, c.rv);
            break;
        }
    }
    if let Some(e) = created {
        assert_eq!(e.rv, c.rv);
    }
}
