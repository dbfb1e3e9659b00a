//! Noticing container exits by relisting, as the kubelet's PLEG does: one `ListContainers`
//! call per period finds which of the followed containers exited (then one `ContainerStatus`
//! each, for its exit code) or are gone, however many run, instead of one status call per
//! container per period.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tracing::debug;

use super::status_text;

/// How often the runtime's containers are listed.
const RELIST_PERIOD: Duration = Duration::from_millis(500);

/// Who waits for which container's exit: its exit code, `None` once the runtime no longer
/// knows it.
type Waiters = HashMap<String, Vec<oneshot::Sender<Option<i32>>>>;

/// The followed containers; a relist task answers their waiters.
#[derive(Clone, Default)]
pub(super) struct ExitWatch {
    waiting: Arc<Mutex<Waiters>>,
}

impl ExitWatch {
    /// Starts the relist task (for the agent's lifetime).
    pub(super) fn start(rt: RuntimeServiceClient<Channel>) -> ExitWatch {
        let watch = ExitWatch::default();
        tokio::spawn(relist(rt, watch.clone()));
        watch
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, Waiters> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves when container `id` exited: its exit code, or `None` when it cannot be known.
    pub(super) fn wait(&self, id: &str) -> impl Future<Output = Option<i32>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        self.waiters().entry(id.to_string()).or_default().push(tx);
        async move { rx.await.ok().flatten() }
    }

    /// The containers someone still waits for (waiters that gave up are dropped).
    fn followed(&self) -> Vec<String> {
        let mut waiting = self.waiters();
        waiting.retain(|_, txs| {
            txs.retain(|tx| !tx.is_closed());
            !txs.is_empty()
        });
        waiting.keys().cloned().collect()
    }

    fn resolve(&self, id: &str, code: Option<i32>) {
        for tx in self.waiters().remove(id).unwrap_or_default() {
            let _ = tx.send(code);
        }
    }
}

/// What a relist says about one followed container.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Running,
    Exited,
    Gone,
}

fn seen(states: &HashMap<String, i32>, id: &str) -> Seen {
    match states.get(id) {
        None => Seen::Gone,
        Some(s) if *s == cri::ContainerState::ContainerExited as i32 => Seen::Exited,
        Some(_) => Seen::Running,
    }
}

async fn relist(mut rt: RuntimeServiceClient<Channel>, watch: ExitWatch) {
    let mut tick = tokio::time::interval(RELIST_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let followed = watch.followed();
        if followed.is_empty() {
            continue;
        }
        let listed = rt
            .list_containers(cri::ListContainersRequest { filter: None })
            .await;
        let states: HashMap<String, i32> = match listed {
            Ok(r) => r
                .into_inner()
                .containers
                .into_iter()
                .map(|c| (c.id, c.state))
                .collect(),
            Err(e) => {
                debug!(error = %status_text(&e), "cannot list the runtime's containers");
                continue;
            }
        };
        for id in followed {
            match seen(&states, &id) {
                Seen::Running => {}
                Seen::Gone => watch.resolve(&id, None),
                Seen::Exited => {
                    let status = rt
                        .container_status(cri::ContainerStatusRequest {
                            container_id: id.clone(),
                            verbose: false,
                        })
                        .await;
                    match status {
                        Ok(s) => {
                            let code = s.into_inner().status.map(|s| s.exit_code);
                            watch.resolve(&id, code);
                        }
                        Err(e) if e.code() == tonic::Code::NotFound => watch.resolve(&id, None),
                        // Asked again at the next relist.
                        Err(e) => {
                            debug!(container = %id, error = %status_text(&e), "container status unavailable")
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relist_tells_running_exited_and_gone_apart() {
        let states = HashMap::from([
            (
                "a".to_string(),
                cri::ContainerState::ContainerRunning as i32,
            ),
            ("b".to_string(), cri::ContainerState::ContainerExited as i32),
            (
                "c".to_string(),
                cri::ContainerState::ContainerCreated as i32,
            ),
        ]);
        assert_eq!(seen(&states, "a"), Seen::Running);
        assert_eq!(seen(&states, "b"), Seen::Exited);
        assert_eq!(seen(&states, "c"), Seen::Running);
        assert_eq!(seen(&states, "d"), Seen::Gone);
    }

    #[tokio::test]
    async fn waiters_get_the_exit_and_those_that_gave_up_are_forgotten() {
        let watch = ExitWatch::default();
        let first = watch.wait("x");
        let second = watch.wait("x");
        drop(watch.wait("y"));
        assert_eq!(watch.followed(), vec!["x".to_string()]);
        watch.resolve("x", Some(3));
        assert_eq!((first.await, second.await), (Some(3), Some(3)));
        assert!(watch.followed().is_empty());
    }
}
