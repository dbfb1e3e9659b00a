//! Container logs: the index of which log instance is current or previous for each container,
//! and the agent's HTTP endpoint the API server proxies `pods/log` to, as the kubelet's:
//! `GET /containerLogs/{namespace}/{pod}/{container}?follow=&tailLines=&previous=&limitBytes=&timestamps=&sinceSeconds=&sinceTime=`.
//! Files in the CRI's log format (a CRI runtime's) are decoded as the kubelet's `ReadLogs`
//! does: the text of each line, partial lines joined, each prefixed with its time when
//! `timestamps` is asked, lines older than `sinceTime` (or `sinceSeconds` ago) left out. A
//! host process's log has no times: `timestamps` and `since` do not apply to it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::runtime::{ContainerId, LogFormat};

/// How often a followed log is checked for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// What the log endpoint knows of one container.
#[derive(Clone, Debug, Default)]
pub struct ContainerLogs {
    /// The log file of the current (or last) instance, if one ever started.
    pub current: Option<PathBuf>,
    /// The log file of the instance before it.
    pub previous: Option<PathBuf>,
    /// Whether the current instance is running (a follow ends when it stops).
    pub running: bool,
    /// Why it has not started, while it never has.
    pub waiting: Option<String>,
    /// How the files are written.
    pub format: LogFormat,
    /// The running instance's runtime ID (what exec and attach reach).
    pub running_id: Option<ContainerId>,
    /// The pod's UID (what port-forward reaches).
    pub pod_uid: String,
    /// When the running instance started (for stats).
    pub started_at: Option<Timestamp>,
}

/// Container name → what is known of its logs.
pub type PodLogs = HashMap<String, ContainerLogs>;

/// Pod (namespace, name) → container → logs; updated by the pod workers.
#[derive(Clone, Default)]
pub struct LogIndex {
    inner: Arc<Mutex<HashMap<(String, String), PodLogs>>>,
}

impl LogIndex {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), PodLogs>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets what is known of one container.
    pub fn set(&self, namespace: &str, pod: &str, container: &str, logs: ContainerLogs) {
        self.lock()
            .entry((namespace.to_string(), pod.to_string()))
            .or_default()
            .insert(container.to_string(), logs);
    }

    /// Forgets a pod.
    pub fn remove(&self, namespace: &str, pod: &str) {
        self.lock()
            .remove(&(namespace.to_string(), pod.to_string()));
    }

    /// Every pod's containers, by (namespace, name).
    pub fn all(&self) -> Vec<((String, String), PodLogs)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// What is known of the containers of a pod.
    pub fn get(&self, namespace: &str, pod: &str) -> Option<PodLogs> {
        self.lock()
            .get(&(namespace.to_string(), pod.to_string()))
            .cloned()
    }
}

/// The query parameters of a log request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    #[serde(default)]
    pub follow: Option<String>,
    #[serde(default)]
    pub previous: Option<String>,
    #[serde(default)]
    pub tail_lines: Option<i64>,
    #[serde(default)]
    pub limit_bytes: Option<i64>,
    #[serde(default)]
    pub timestamps: Option<String>,
    #[serde(default)]
    pub since_seconds: Option<i64>,
    #[serde(default)]
    pub since_time: Option<String>,
}

impl LogQuery {
    /// The oldest time a line may have (`sinceTime`, or `sinceSeconds` before now): the API
    /// server has checked that at most one is given and that it is valid.
    fn since(&self) -> Option<Timestamp> {
        if let Some(t) = self.since_time.as_deref() {
            return t.parse().ok();
        }
        let seconds = self.since_seconds.filter(|s| *s > 0)?;
        Timestamp::now()
            .checked_sub(SignedDuration::from_secs(seconds))
            .ok()
    }
}

/// Decodes the complete lines of CRI-format log data (`<time> <stream> <P|F> <text>`): the
/// text, a newline after full (`F`) lines only, so partial (`P`) lines join the next; with
/// `timestamps`, each output line starts with the time of its first piece. Returns the
/// output and how many input bytes it consumed (an unfinished last line is left). Lines
/// that do not parse are skipped, as the kubelet's parser does.
pub fn decode_cri(
    data: &[u8],
    timestamps: bool,
    since: Option<Timestamp>,
    partial: &mut bool,
) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(data.len());
    let mut consumed = 0;
    while let Some(end) = data[consumed..].iter().position(|b| *b == b'\n') {
        let line = &data[consumed..consumed + end];
        consumed += end + 1;
        let mut fields = line.splitn(4, |b| *b == b' ');
        let (Some(time), Some(_stream), Some(tag), text) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // As the kubelet's ReadLogs: a line older than `since` is skipped, piece by piece.
        if let Some(since) = since {
            let time = std::str::from_utf8(time)
                .ok()
                .and_then(|t| t.parse::<Timestamp>().ok());
            if time.is_some_and(|t| t < since) {
                continue;
            }
        }
        if timestamps && !*partial {
            out.extend_from_slice(time);
            out.push(b' ');
        }
        out.extend_from_slice(text.unwrap_or_default());
        *partial = tag == b"P";
        if !*partial {
            out.push(b'\n');
        }
    }
    (out, consumed)
}

fn flag(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|v| v == "true" || v == "1")
}

/// The last `n` lines of `data` (a final line without newline counts as a line).
pub fn tail(data: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &data[data.len()..];
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &data[i + 1..];
            }
        }
    }
    data
}

fn text(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// The agent's HTTP routes: container logs and a health check.
pub fn router(index: LogIndex) -> Router {
    Router::new()
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(index)
}

async fn container_logs(
    State(index): State<LogIndex>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let Some(containers) = index.get(&namespace, &pod) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod {namespace}/{pod} is not known to this node"),
        );
    };
    let Some(logs) = containers.get(&container) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("container {container} is not valid for pod {pod}"),
        );
    };
    let previous = flag(&q.previous);
    let path = if previous {
        match &logs.previous {
            Some(p) => p.clone(),
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "previous terminated container \"{container}\" in pod \"{pod}\" not found"
                    ),
                );
            }
        }
    } else {
        match &logs.current {
            Some(p) => p.clone(),
            None => {
                let why = logs
                    .waiting
                    .clone()
                    .unwrap_or_else(|| "ContainerCreating".into());
                return text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "container \"{container}\" in pod \"{pod}\" is waiting to start: {why}"
                    ),
                );
            }
        }
    };
    let data = match tokio::fs::read(&path).await {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let format = logs.format;
    let timestamps = flag(&q.timestamps);
    let since = q.since();
    let mut partial = false;
    let (data, offset) = match format {
        LogFormat::Raw => {
            let len = data.len() as u64;
            (data, len)
        }
        LogFormat::Cri => {
            let (out, used) = decode_cri(&data, timestamps, since, &mut partial);
            (out, used as u64)
        }
    };
    let mut first: &[u8] = &data;
    if let Some(n) = q.tail_lines.filter(|n| *n >= 0) {
        first = tail(first, n as usize);
    }
    let limit = q.limit_bytes.filter(|n| *n > 0).map(|n| n as usize);
    if let Some(l) = limit {
        first = &first[..first.len().min(l)];
    }
    let first = Bytes::copy_from_slice(first);
    let ok =
        |body: Body| (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response();
    if !flag(&q.follow) || previous {
        return ok(Body::from(first));
    }
    let follow = FollowState {
        index,
        namespace,
        pod,
        container,
        path,
        offset,
        sent: first.len(),
        limit,
        first: Some(first),
        format,
        timestamps,
        since,
        partial,
    };
    ok(Body::from_stream(futures::stream::unfold(
        follow, next_chunk,
    )))
}

struct FollowState {
    index: LogIndex,
    namespace: String,
    pod: String,
    container: String,
    path: PathBuf,
    offset: u64,
    sent: usize,
    limit: Option<usize>,
    first: Option<Bytes>,
    format: LogFormat,
    timestamps: bool,
    since: Option<Timestamp>,
    /// CRI format: the last decoded line was partial.
    partial: bool,
}

impl FollowState {
    /// Whether the followed instance is still the running one.
    fn still_running(&self) -> bool {
        self.index
            .get(&self.namespace, &self.pod)
            .and_then(|c| c.get(&self.container).cloned())
            .is_some_and(|c| c.running && c.current.as_ref() == Some(&self.path))
    }
}

/// The next piece of a followed log: what was appended since, once there is some; the stream
/// ends when the instance stopped and everything it wrote was sent (or the byte limit is hit).
async fn next_chunk(mut st: FollowState) -> Option<(Result<Bytes, std::io::Error>, FollowState)> {
    if let Some(first) = st.first.take() {
        return Some((Ok(first), st));
    }
    loop {
        if st.limit.is_some_and(|l| st.sent >= l) {
            return None;
        }
        // Look at "running" before reading, so output written just before the exit is sent.
        let running = st.still_running();
        let chunk = read_from(&st.path, st.offset).await;
        match chunk {
            Ok(bytes) if !bytes.is_empty() => {
                let bytes = match st.format {
                    LogFormat::Raw => {
                        st.offset += bytes.len() as u64;
                        bytes
                    }
                    LogFormat::Cri => {
                        let (out, used) =
                            decode_cri(&bytes, st.timestamps, st.since, &mut st.partial);
                        st.offset += used as u64;
                        if out.is_empty() {
                            if used == 0 && !running {
                                return None; // an unfinished last line of a stopped container
                            }
                            tokio::time::sleep(FOLLOW_POLL).await;
                            continue;
                        }
                        out
                    }
                };
                let mut bytes = Bytes::from(bytes);
                if let Some(l) = st.limit {
                    bytes.truncate(l.saturating_sub(st.sent));
                }
                st.sent += bytes.len();
                return Some((Ok(bytes), st));
            }
            Ok(_) if !running => return None,
            Ok(_) => tokio::time::sleep(FOLLOW_POLL).await,
            Err(e) => return Some((Err(e), st)),
        }
    }
}

async fn read_from(path: &std::path::Path, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut buf = Vec::new();
    f.take(1 << 20).read_to_end(&mut buf).await?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_counts_lines_from_the_end() {
        let data = b"a\nb\nc\n";
        assert_eq!(tail(data, 1), b"c\n");
        assert_eq!(tail(data, 2), b"b\nc\n");
        assert_eq!(tail(data, 5), b"a\nb\nc\n");
        assert_eq!(tail(data, 0), b"");
        assert_eq!(tail(b"a\nb", 1), b"b");
        assert_eq!(tail(b"", 3), b"");
    }

    async fn get(router: Router, uri: &str) -> (StatusCode, String) {
        use tower::ServiceExt;
        let req = axum::http::Request::get(uri)
            .body(Body::empty())
            .expect("request");
        let resp = router.oneshot(req).await.expect("response");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn serves_current_previous_tail_and_follow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prev = dir.path().join("0.log");
        let cur = dir.path().join("1.log");
        std::fs::write(&prev, "old 1\nold 2\n").expect("write");
        std::fs::write(&cur, "new 1\nnew 2\nnew 3\n").expect("write");
        let index = LogIndex::default();
        index.set(
            "default",
            "p",
            "c",
            ContainerLogs {
                current: Some(cur.clone()),
                previous: Some(prev),
                running: false,
                waiting: None,
                ..Default::default()
            },
        );
        index.set("default", "p", "fresh", ContainerLogs::default());
        let r = router(index.clone());
        let base = "/containerLogs/default/p";
        assert_eq!(
            get(r.clone(), &format!("{base}/c")).await,
            (StatusCode::OK, "new 1\nnew 2\nnew 3\n".into())
        );
        assert_eq!(
            get(r.clone(), &format!("{base}/c?tailLines=1")).await.1,
            "new 3\n"
        );
        assert_eq!(
            get(r.clone(), &format!("{base}/c?previous=true")).await.1,
            "old 1\nold 2\n"
        );
        assert_eq!(
            get(r.clone(), &format!("{base}/c?limitBytes=3")).await.1,
            "new"
        );
        let (code, msg) = get(r.clone(), &format!("{base}/fresh?previous=true")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert_eq!(
            msg,
            "previous terminated container \"fresh\" in pod \"p\" not found"
        );
        let (code, msg) = get(r.clone(), &format!("{base}/fresh")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert_eq!(
            msg,
            "container \"fresh\" in pod \"p\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            get(r.clone(), &format!("{base}/nope")).await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            get(r.clone(), "/containerLogs/default/other/c").await.0,
            StatusCode::NOT_FOUND
        );

        // follow: sends what is there, then what is appended, and ends when the instance stops.
        index.set(
            "default",
            "p",
            "c",
            ContainerLogs {
                current: Some(cur.clone()),
                previous: None,
                running: true,
                waiting: None,
                ..Default::default()
            },
        );
        let uri = format!("{base}/c?follow=true&tailLines=1");
        let follower = tokio::spawn({
            let r = r.clone();
            async move { get(r, &uri).await }
        });
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&cur)
                .expect("open");
            f.write_all(b"new 4\n").expect("append");
        }
        // Stop only once the appended line is visible to a reader, so the test does not
        // depend on the follower's timing: the follower must deliver it before ending.
        index.set(
            "default",
            "p",
            "c",
            ContainerLogs {
                current: Some(cur),
                previous: None,
                running: false,
                waiting: None,
                ..Default::default()
            },
        );
        let (code, body) = tokio::time::timeout(Duration::from_secs(10), follower)
            .await
            .expect("follow ends when the container stops")
            .expect("join");
        assert_eq!(code, StatusCode::OK);
        assert!(body.ends_with("new 4\n"), "{body:?}");
        assert!(
            body.starts_with("new 3\n") || body.starts_with("new 4\n"),
            "{body:?}"
        );
    }

    #[test]
    fn cri_lines_decode_with_partials_and_timestamps() {
        let data = b"2026-01-01T00:00:00.1Z stdout F one\n2026-01-01T00:00:00.2Z stderr P tw\n2026-01-01T00:00:00.3Z stderr F o\nbroken\n2026-01-01T00:00:00.4Z stdout F \n2026-01-01T00:00:00.5Z stdout F unfinished";
        let mut partial = false;
        let (out, used) = decode_cri(data, false, None, &mut partial);
        assert_eq!(String::from_utf8_lossy(&out), "one\ntwo\n\n");
        assert_eq!(&data[used..], b"2026-01-01T00:00:00.5Z stdout F unfinished");
        let mut partial = false;
        let (out, _) = decode_cri(data, true, None, &mut partial);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "2026-01-01T00:00:00.1Z one\n2026-01-01T00:00:00.2Z two\n2026-01-01T00:00:00.4Z \n"
        );
    }

    #[tokio::test]
    async fn serves_cri_format_logs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cur = dir.path().join("0.log");
        std::fs::write(
            &cur,
            "2026-01-01T00:00:00.1Z stdout F a\n2026-01-01T00:00:00.2Z stdout F b\n",
        )
        .expect("write");
        let index = LogIndex::default();
        index.set(
            "default",
            "p",
            "c",
            ContainerLogs {
                current: Some(cur),
                format: LogFormat::Cri,
                ..Default::default()
            },
        );
        let r = router(index);
        let base = "/containerLogs/default/p/c";
        assert_eq!(
            get(r.clone(), base).await,
            (StatusCode::OK, "a\nb\n".to_string())
        );
        assert_eq!(
            get(r.clone(), &format!("{base}?timestamps=true&tailLines=1")).await,
            (StatusCode::OK, "2026-01-01T00:00:00.2Z b\n".to_string())
        );
        // sinceTime: lines at or after it; sinceSeconds: none of 2026-01-01's are that recent.
        assert_eq!(
            get(
                r.clone(),
                &format!("{base}?sinceTime=2026-01-01T00:00:00.15Z")
            )
            .await,
            (StatusCode::OK, "b\n".to_string())
        );
        assert_eq!(
            get(
                r.clone(),
                &format!("{base}?sinceTime=2026-01-01T00:00:00.2Z")
            )
            .await,
            (StatusCode::OK, "b\n".to_string())
        );
        assert_eq!(
            get(r.clone(), &format!("{base}?sinceSeconds=60")).await,
            (StatusCode::OK, String::new())
        );
    }
}
