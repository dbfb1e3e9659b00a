//! Where etcd is and how to talk to it: `--store etcd://h1:2379,h2:2379` and kube-apiserver's
//! `--etcd-cafile/--etcd-certfile/--etcd-keyfile`, `--etcd-prefix`, `--etcd-compaction-interval`.

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, Identity, TlsOptions};
use thiserror::Error;

/// A bad `--store etcd://...` or TLS file.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{url:?} is not an etcd URL: want etcd://host:port[,host:port...]")]
    NotEtcd { url: String },
    #[error("{endpoint:?} in {url:?} is not host:port")]
    BadEndpoint { url: String, endpoint: String },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--etcd-certfile and --etcd-keyfile go together")]
    HalfIdentity,
}

/// How to reach etcd and keep the store there.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// `http://host:port` or, with TLS, `https://host:port`.
    pub endpoints: Vec<String>,
    pub tls: Option<EtcdTls>,
    /// Where objects live: kube-apiserver's `--etcd-prefix` (`/registry`) plus a slash.
    pub prefix: String,
    /// kube-apiserver's `--etcd-compaction-interval` (5 min); zero turns compaction off.
    pub compaction_interval: Duration,
    /// How long opening keeps retrying an unreachable etcd before giving up.
    pub start_timeout: Duration,
    /// The bound on one etcd request (a write's transaction, a list page).
    pub request_timeout: Duration,
    /// kube-apiserver's `--etcd-healthcheck-timeout` (2 s) for the `etcd` readyz check.
    pub health_timeout: Duration,
}

/// kube-apiserver's etcd client certificate flags.
#[derive(Debug, Clone, Default)]
pub struct EtcdTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl EtcdTls {
    pub(crate) fn options(&self) -> Result<TlsOptions, ConfigError> {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })
        };
        let mut options = TlsOptions::new();
        if let Some(ca) = &self.ca_file {
            options = options.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                options = options.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            (None, None) => {}
            _ => return Err(ConfigError::HalfIdentity),
        }
        Ok(options)
    }
}

impl EtcdConfig {
    /// Parses `etcd://h1:2379,h2:2379`; endpoints are `https://` when `tls` is given, as
    /// kube-apiserver's `--etcd-servers` would name them with its certificate flags.
    pub fn from_url(url: &str, tls: Option<EtcdTls>) -> Result<EtcdConfig, ConfigError> {
        let hosts = url
            .strip_prefix("etcd://")
            .ok_or_else(|| ConfigError::NotEtcd { url: url.into() })?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoints = Vec::new();
        for endpoint in hosts.split(',') {
            let valid = endpoint.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok()
            });
            if !valid {
                return Err(ConfigError::BadEndpoint {
                    url: url.into(),
                    endpoint: endpoint.into(),
                });
            }
            endpoints.push(format!("{scheme}://{endpoint}"));
        }
        Ok(EtcdConfig::new(endpoints, tls))
    }

    /// Defaults as kube-apiserver's for these `endpoints` (URLs with their scheme).
    pub fn new(endpoints: Vec<String>, tls: Option<EtcdTls>) -> EtcdConfig {
        EtcdConfig {
            endpoints,
            tls,
            prefix: "/registry/".into(),
            compaction_interval: Duration::from_secs(5 * 60),
            start_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(5),
            health_timeout: Duration::from_secs(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etcd_url_names_its_endpoints() {
        let c = EtcdConfig::from_url("etcd://127.0.0.1:2379,h2:2380", None).unwrap();
        assert_eq!(c.endpoints, ["http://127.0.0.1:2379", "http://h2:2380"]);
        let c = EtcdConfig::from_url("etcd://h1:2379", Some(EtcdTls::default())).unwrap();
        assert_eq!(c.endpoints, ["https://h1:2379"]);
        assert_eq!(c.prefix, "/registry/");
        assert_eq!(c.compaction_interval, Duration::from_secs(300));
    }

    #[test]
    fn a_bad_etcd_url_is_refused() {
        for url in [
            "http://h:1",
            "etcd://",
            "etcd://h",
            "etcd://h:x",
            "etcd://:1",
            "etcd://h:1,",
        ] {
            assert!(EtcdConfig::from_url(url, None).is_err(), "{url}");
        }
    }
}
