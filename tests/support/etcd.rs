//! A 3-member etcd on loopback ports for tests of API servers on etcd, and API servers on it
//! sharing one cluster CA and service-account signing key. Included by the tests that need the
//! `etcd` feature (`#[path = "support/etcd.rs"] mod etcd;`), not by `support` itself.

#![allow(dead_code)]

use pernode_store::etcd::test_cluster::TestCluster;

use crate::support::{self, Cluster};

pub struct Etcd {
    runtime: tokio::runtime::Runtime,
    pub cluster: TestCluster,
}

impl Etcd {
    /// Starts the three members (needs the `etcd` binary: without it, fails saying so).
    pub fn start() -> Etcd {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let cluster = match runtime.block_on(TestCluster::start()) {
            Ok(cluster) => cluster,
            Err(e) => panic!("{e}"),
        };
        Etcd { runtime, cluster }
    }

    pub fn start_members(&mut self, ids: &[usize]) {
        if let Err(e) = self.runtime.block_on(self.cluster.start_members(ids)) {
            panic!("{e}");
        }
    }

    /// An API server on this etcd with its own CA.
    pub fn server(&self) -> Cluster {
        Cluster::start("apiserver", &["--store", &self.cluster.url()])
    }

    /// A second API server on this etcd sharing `first`'s cluster CA and service-account
    /// signing key (by flags, as every server of a cluster is given them).
    pub fn second_server(&self, first: &Cluster) -> Cluster {
        self.another_server(first, "127.0.0.1:0", &[])
    }

    /// As [`Etcd::second_server`], listening on `listen`, with `extra` flags.
    pub fn another_server(&self, first: &Cluster, listen: &str, extra: &[&str]) -> Cluster {
        let data = first.dir.path().join("data");
        let file = |name: &str| data.join(name).display().to_string();
        let url = self.cluster.url();
        let (cert, key, signing) = (
            file("pki/ca.crt"),
            file("pki/ca.key"),
            file("service-account.key"),
        );
        let mut args = vec![
            "--store",
            &url,
            "--cluster-ca-cert-file",
            &cert,
            "--cluster-ca-key-file",
            &key,
            "--service-account-signing-key-file",
            &signing,
        ];
        args.extend(extra);
        Cluster::start_on(listen, "apiserver", &args)
    }
}

/// The URL `server`'s kubeconfig names.
pub fn server_url(server: &Cluster) -> String {
    let kubeconfig = std::fs::read_to_string(server.kubeconfig()).expect("kubeconfig");
    support::kubeconfig_field(&kubeconfig, "server:").to_owned()
}
