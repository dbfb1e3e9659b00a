//! Where events go: one line each (upstream's log backend, `--audit-log-format=json`) to a
//! file opened for appending (created `0600`) or to stdout (`-`).
//!
//! Requests never wait for the disk: [`Sink::send`] hands the event to a bounded queue and a
//! dedicated writer thread encodes and writes it (decoding bodies there too), flushing whenever
//! the queue runs dry. When the queue is full the event is dropped, counted and warned about,
//! as upstream's batching backend drops (its blocking log backend would stall requests
//! instead).

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use super::event::Event;

/// Events queued for the writer before new ones are dropped (upstream's default
/// `--audit-log-batch-buffer-size`).
pub const QUEUE_CAPACITY: usize = 10_000;

enum Message {
    Event(Box<Event>),
    /// Write everything queued before this, flush, and answer.
    Flush(mpsc::Sender<()>),
}

/// The queue to the writer thread. The thread ends, after writing what is queued, when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Sink {
    queue: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl Sink {
    /// A sink writing to `path` (appending; created owner-only), or to stdout for `-`.
    pub fn open(path: &Path) -> io::Result<Sink> {
        if path == Path::new("-") {
            return Ok(Sink::spawn(Box::new(io::stdout()), QUEUE_CAPACITY));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(Sink::spawn(Box::new(file), QUEUE_CAPACITY))
    }

    /// A sink writing to `out` from its own thread, queueing at most `capacity` events.
    pub fn spawn(out: Box<dyn Write + Send>, capacity: usize) -> Sink {
        let (queue, received) = mpsc::sync_channel(capacity);
        let spawned = std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_lines(received, out));
        if let Err(e) = spawned {
            // The receiver is gone with the closure: every send counts as dropped.
            tracing::error!(error = %e, "could not start the audit log writer");
        }
        Sink {
            queue,
            dropped: Arc::default(),
        }
    }

    /// Queues `event` for writing; drops it (counted, warned about) if the queue is full.
    pub fn send(&self, event: Event) {
        match self.queue.try_send(Message::Event(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // The first, then every thousandth: a backlog does not flood the log too.
                if dropped % 1000 == 1 {
                    tracing::warn!(dropped, "audit log writer is behind; dropping audit events");
                }
            }
        }
    }

    /// Events dropped since the sink was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits (up to `timeout`) until everything queued so far is written and flushed: before
    /// the process exits. Returns false if that did not happen in time.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let queue = self.queue.clone();
        let flushed = tokio::task::spawn_blocking(move || {
            let (done, written) = mpsc::channel();
            queue.send(Message::Flush(done)).is_ok() && written.recv_timeout(timeout).is_ok()
        });
        matches!(tokio::time::timeout(timeout, flushed).await, Ok(Ok(true)))
    }
}

/// The writer thread: writes each event's line, flushing whenever the queue is empty.
fn write_lines(received: Receiver<Message>, out: Box<dyn Write + Send>) {
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    let mut failing = false;
    let mut report = |result: io::Result<()>| match result {
        Ok(()) => failing = false,
        Err(e) => {
            // Warn when writing starts failing, not for every line after.
            if !failing {
                tracing::warn!(error = %e, "could not write the audit log");
            }
            failing = true;
        }
    };
    while let Ok(first) = received.recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Event(event) => {
                    let mut line = event.to_json();
                    line.push('\n');
                    report(out.write_all(line.as_bytes()));
                }
                Message::Flush(done) => {
                    report(out.flush());
                    let _ = done.send(());
                }
            }
            next = received.try_recv().ok();
        }
        report(out.flush());
    }
    report(out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::policy::{Level, Stage};
    use std::sync::Mutex;

    fn event(id: &str) -> Event {
        Event {
            level: Level::Metadata,
            audit_id: id.into(),
            stage: Stage::ResponseComplete,
            request_uri: "/version".into(),
            verb: "get".into(),
            user: None,
            impersonated_user: None,
            source_ips: Vec::new(),
            user_agent: String::new(),
            object_ref: None,
            response: None,
            request_body: None,
            received: jiff::Timestamp::UNIX_EPOCH,
            stage_timestamp: jiff::Timestamp::UNIX_EPOCH,
            annotations: Default::default(),
            omit_managed_fields: false,
        }
    }

    #[tokio::test]
    async fn events_are_appended_one_line_each_to_an_owner_only_file() {
        let dir = tempfile::tempdir().unwrap();
        // The directory is made as needed.
        let path = dir.path().join("logs/audit.log");
        let sink = Sink::open(&path).unwrap();
        sink.send(event("a"));
        sink.send(event("b"));
        assert!(sink.flush(Duration::from_secs(10)).await);
        drop(sink);
        // Reopening appends.
        let sink = Sink::open(&path).unwrap();
        sink.send(event("c"));
        assert!(sink.flush(Duration::from_secs(10)).await);
        let text = std::fs::read_to_string(&path).unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["auditID"].to_string())
            .collect();
        assert_eq!(ids, [r#""a""#, r#""b""#, r#""c""#]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// A writer stuck until the test lets it go.
    struct Stuck {
        gate: Arc<Mutex<()>>,
        lines: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _open = self.gate.lock().unwrap();
            self.lines.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            let _open = self.gate.lock().unwrap();
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let gate = Arc::new(Mutex::new(()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let closed = gate.lock().unwrap();
        let sink = Sink::spawn(
            Box::new(Stuck {
                gate: gate.clone(),
                lines: lines.clone(),
            }),
            2,
        );
        // The writer takes the first and blocks on the disk; two more fill the queue.
        sink.send(event("first"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink
            .queue
            .try_send(Message::Event(Box::new(event("probe"))))
            .is_ok()
        {
            // Filled before the writer took "first": wait for it to take one and retry.
            assert!(std::time::Instant::now() < deadline, "writer never blocked");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(sink.dropped(), 0);
        sink.send(event("dropped"));
        sink.send(event("dropped"));
        assert_eq!(sink.dropped(), 2);
        drop(closed);
        assert!(sink.flush(Duration::from_secs(10)).await);
        let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        assert!(text.contains(r#""auditID":"first""#));
        assert!(!text.contains(r#""auditID":"dropped""#));
    }
}
