//! An acknowledged write survives kill -9.
//!
//! The test re-runs this test binary as a child (selecting `child_writer` and setting
//! `PERNODE_STORE_CHILD_DIR`). The child writes objects from several tasks and prints each key
//! only after its write is acknowledged. The parent SIGKILLs it mid-stream, reopens the store,
//! and checks that every key the child printed is there.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pernode_store::{Store, StoreOptions, no_attrs};
use serde_json::json;

const CHILD_ENV: &str = "PERNODE_STORE_CHILD_DIR";

/// The child's body; a no-op in a normal test run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(dir.as_ref(), no_attrs(), StoreOptions::default()).unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Runs until killed.
            for i in 0.. {
                let key = format!("pods/ns/t{t}-{i}");
                store
                    .create(&key, json!({"metadata": {"name": key}}))
                    .await
                    .unwrap();
                let mut out = std::io::stdout().lock();
                writeln!(out, "ACK {key}").unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    // Read the child's acknowledgements on a thread so the parent can apply deadlines.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(key) = line.strip_prefix("ACK ")
                && tx.send(key.to_owned()).is_err()
            {
                break;
            }
        }
    });

    let mut acked = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < 2000 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(key) => {
                acked.insert(key);
            }
            Err(e) => {
                let _ = child.kill();
                panic!(
                    "child stopped acknowledging after {} keys: {e}",
                    acked.len()
                );
            }
        }
    }
    // Mid-stream: writes are in flight in the child right now.
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    // Lines printed before the kill are still in the pipe: they were acknowledged too.
    reader.join().unwrap();
    acked.extend(rx.try_iter());

    let store = Store::open(dir.path(), no_attrs(), StoreOptions::default()).unwrap();
    let missing: Vec<_> = acked.iter().filter(|k| store.get(k).is_none()).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged keys lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    assert!(store.current_rv() >= acked.len() as u64);
    assert_eq!(store.count(""), store.current_rv() as usize, "creates only");
}
