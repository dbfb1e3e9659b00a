//! The cluster a bench round measures: started in-process as `pernode up` builds it, or a
//! running one named by a kubeconfig. Scenarios reach it through `client`, a kube::Client over
//! loopback TCP, like a user.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use pernode_agent::simulator::{self, SimulatorOptions};
use pernode_apiserver::ApiServer;
use tokio::task::JoinSet;

/// Label on the bench's nodes; the daemon set selects them by it.
pub const NODE_LABEL: &str = "pernode.io/bench";
/// Concurrent requests when creating or deleting many objects.
pub const CONCURRENCY: usize = 64;

/// The in-process parts of a started cluster.
/// Where an in-process cluster serves and how to reach it as a new client.
#[derive(Clone)]
pub struct Endpoint {
    /// `https://addr`.
    pub server: String,
    /// The CA that signs the server's certificate.
    pub ca_pem: String,
    /// A `system:admin` client certificate.
    pub admin: pernode_auth::pki::CertAndKey,
}

struct Local {
    server: Arc<ApiServer>,
    endpoint: Endpoint,
    tasks: JoinSet<anyhow::Result<()>>,
    serving: pernode_apiserver::Serving,
    _dir: tempfile::TempDir,
}

pub struct Cluster {
    /// Over loopback TCP, as a user's client.
    pub client: kube::Client,
    /// Namespace of the bench's objects.
    pub namespace: String,
    /// Value of [`NODE_LABEL`] on this round's nodes; node names start with it.
    pub run: String,
    local: Option<Local>,
}

impl Cluster {
    /// A fresh cluster in this process: API server on a temporary data dir (or on `store`'s
    /// etcd), the controllers on
    /// an in-process client, the simulator with pods starting and terminating at once.
    pub async fn start(run: &str, store: &crate::store::StoreArgs) -> anyhow::Result<Cluster> {
        let dir = tempfile::tempdir().context("temporary data dir")?;
        let store = match &store.store {
            None => pernode_apiserver::open_store(dir.path()).context("opening the store")?,
            Some(_) => crate::store::open(store, dir.path()).await?,
        };
        let server = Arc::new(
            ApiServer::new(store)
                .await
                .context("starting the API server")?,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a loopback port")?;
        // Over TLS with client certificates and authorization, as a user's cluster.
        let listen = listener.local_addr().context("the loopback port")?;
        let certificates = crate::certificates::load(dir.path(), listen, &Default::default())?;
        let options = pernode_apiserver::serving::ServeOptions {
            transport: pernode_apiserver::authentication::Transport::Tls(certificates.tls.clone()),
            ..Default::default()
        };
        let serving = server
            .spawn_serving_with(listener, options)
            .context("serving HTTPS")?;
        let addr = serving.addr;
        // Each loop under its own identity, authorized as in `pernode up`.
        let clients = crate::control_plane::Clients::InProcess(server.clone());
        let mut tasks = JoinSet::new();
        crate::control_plane::spawn_controllers_with(&mut tasks, &clients, &Default::default());
        // Simulated kubelets start and stop pods at once: the figures are the control plane's.
        let opts = SimulatorOptions {
            start_delay: (Duration::ZERO, Duration::ZERO),
            grace_period_scale: 0.0,
            ..Default::default()
        };
        let simulator = clients.simulator();
        tasks.spawn(async move { simulator::run(simulator, opts).await.context("simulator") });
        let client = kube::Client::try_from(certificates.admin_client(addr)?)?;
        let cluster = Cluster {
            client,
            namespace: "bench".into(),
            run: run.into(),
            local: Some(Local {
                endpoint: Endpoint {
                    server: format!("https://{addr}"),
                    ca_pem: certificates.serving_ca_pem.clone(),
                    admin: certificates.admin()?,
                },
                server,
                tasks,
                serving,
                _dir: dir,
            }),
        };
        cluster.create_namespace().await?;
        Ok(cluster)
    }

    /// A running cluster; the bench's nodes and namespace are its own and removed at the end.
    pub async fn connect(kubeconfig: &Path, run: &str) -> anyhow::Result<Cluster> {
        let client = crate::control_plane::client_from(&kubeconfig.to_path_buf()).await?;
        let cluster = Cluster {
            client,
            namespace: format!("bench-{run}"),
            run: run.into(),
            local: None,
        };
        cluster.create_namespace().await?;
        Ok(cluster)
    }

    async fn create_namespace(&self) -> anyhow::Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": self.namespace}
        }))?;
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(e).context("creating the bench namespace"),
        }
    }

    /// How to reach the server as a new client (in-process clusters only).
    pub fn endpoint(&self) -> Option<Endpoint> {
        self.local.as_ref().map(|l| l.endpoint.clone())
    }

    /// API requests served so far (in-process clusters only).
    pub fn requests(&self) -> Option<u64> {
        self.local.as_ref().map(|l| l.server.requests())
    }

    pub fn store_stats(&self) -> Option<pernode_store::StoreStats> {
        self.local.as_ref().map(|l| l.server.store().stats())
    }

    /// Fails when a control loop of the in-process cluster has stopped.
    pub fn check(&mut self) -> anyhow::Result<()> {
        if let Some(local) = &mut self.local
            && let Some(done) = local.tasks.try_join_next()
        {
            match done {
                Ok(Ok(())) => bail!("a control loop stopped"),
                Ok(Err(e)) => return Err(e).context("a control loop failed"),
                Err(e) => return Err(e).context("a control loop panicked"),
            }
        }
        Ok(())
    }

    pub fn node_name(&self, i: usize) -> String {
        format!("{}-{i}", self.run)
    }

    /// Creates simulated nodes `first..first+count` and waits until the simulator reports them
    /// Ready (setup: not measured).
    pub async fn create_nodes(
        &mut self,
        first: usize,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let bar = super::progress(count, &format!("create {count} nodes"));
        let create = self.add_nodes(first, count, Some(&bar));
        create.await?;
        bar.finish_and_clear();
        let bar = super::progress(count, &format!("{count} nodes ready"));
        let api: Api<Node> = Api::all(self.client.clone());
        let selector = format!("{NODE_LABEL}={}", self.run);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.check()?;
            let list = api
                .list(&ListParams::default().labels(&selector))
                .await
                .context("listing nodes")?;
            let ready = list.items.iter().filter(|n| is_ready(n)).count();
            bar.set_position(ready as u64);
            if ready >= count {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("only {ready}/{count} nodes became Ready within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bar.finish_and_clear();
        Ok(())
    }

    /// Creates nodes `first..first+count` (the simulator runs them).
    pub async fn add_nodes(
        &self,
        first: usize,
        count: usize,
        bar: Option<&indicatif::ProgressBar>,
    ) -> anyhow::Result<()> {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut results = futures::stream::iter(first..first + count)
            .map(|i| {
                let api = api.clone();
                let mut node = simulator::simulated_node(&self.node_name(i));
                node.metadata
                    .labels
                    .get_or_insert_default()
                    .insert(NODE_LABEL.into(), self.run.clone());
                async move {
                    match api.create(&PostParams::default(), &node).await {
                        Ok(_) => Ok(()),
                        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            })
            .buffer_unordered(CONCURRENCY);
        while let Some(r) = results.next().await {
            r.context("creating a node")?;
            if let Some(bar) = bar {
                bar.inc(1);
            }
        }
        Ok(())
    }

    /// Deletes nodes `first..first+count`.
    pub async fn delete_nodes(&self, first: usize, count: usize) -> anyhow::Result<()> {
        let api: Api<Node> = Api::all(self.client.clone());
        futures::stream::iter(first..first + count)
            .map(|i| {
                let api = api.clone();
                let name = self.node_name(i);
                async move {
                    match api.delete(&name, &DeleteParams::default()).await {
                        Ok(_) => Ok(()),
                        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await
            .context("deleting nodes")
    }

    /// Stops an in-process cluster, or removes the bench's objects from a running one.
    pub async fn stop(self) -> anyhow::Result<()> {
        match self.local {
            Some(mut local) => {
                local.tasks.abort_all();
                while local.tasks.join_next().await.is_some() {}
                let _ = local.serving.stop(Duration::from_secs(5)).await;
                local.server.store().close().await;
                Ok(())
            }
            None => {
                let ns: Api<Namespace> = Api::all(self.client.clone());
                let _ = ns.delete(&self.namespace, &DeleteParams::default()).await;
                let nodes: Api<Node> = Api::all(self.client.clone());
                let selector = format!("{NODE_LABEL}={}", self.run);
                nodes
                    .delete_collection(
                        &DeleteParams::default(),
                        &ListParams::default().labels(&selector),
                    )
                    .await
                    .context("deleting the bench's nodes")?;
                Ok(())
            }
        }
    }
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
