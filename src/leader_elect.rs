//! `--leader-elect` and kube-controller-manager's other election flags: the controllers run only
//! while this process holds the `kube-system/kube-controller-manager` Lease, so several
//! replicas may run with one active. The scheduler runs inside `pernode controllers` (no
//! separate process), so this one Lease covers it too.
//!
//! A leader that cannot renew within the renew deadline stops its controllers and exits with
//! status 1, as kube-controller-manager's `OnStoppedLeading` does (`leaderelection lost`);
//! whatever supervises it restarts it as a candidate. A clean stop (SIGTERM) does not release
//! the Lease, as kube-controller-manager's does not: a standby takes over once it expires.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use pernode_runtime::leader_election::{self, Ended, LeaderElector, lease_lock::LeaseLock};
use tokio::task::JoinSet;

use crate::control_plane::parse_duration;

#[derive(Args, Debug, Clone)]
pub struct LeaderElectionFlags {
    /// Run the controllers only while this process holds the election's Lease
    /// (kube-controller-manager's flag): default true for `pernode controllers`, so replicas
    /// may run side by side, false for `pernode up`, whose controllers are alone in its
    /// process. `--leader-elect=false` turns it off.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub leader_elect: Option<bool>,
    /// How long a standby waits after the last renewal it saw before taking over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader retries a renewal before it stops leading (and exits).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How long candidates wait between attempts to acquire or renew.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// The Lease's name.
    #[arg(long, default_value = "kube-controller-manager")]
    pub leader_elect_resource_name: String,
    /// The Lease's namespace.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
}

impl LeaderElectionFlags {
    /// Whether to campaign, `default` when the flag is not given.
    pub fn enabled(&self, default: bool) -> bool {
        self.leader_elect.unwrap_or(default)
    }

    fn config(&self) -> leader_election::Config {
        leader_election::Config {
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
        }
    }

    /// The flags' durations checked as upstream checks them, before anything starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.config()
            .validate()
            .context("--leader-elect-lease-duration, --leader-elect-renew-deadline, --leader-elect-retry-period")
    }
}

/// This candidate's identity, as kube-controller-manager's: `<hostname>_<uuid>`.
pub fn identity() -> String {
    let hostname = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!("{hostname}_{}", uuid::Uuid::new_v4())
}

/// Campaigns with `client` for the flags' Lease; once leading, runs the tasks `start` spawns
/// until one of them ends (an error: they run forever) or `shutdown`. Losing the Lease stops
/// them and exits the process with status 1.
pub async fn run_elected(
    client: kube::Client,
    flags: &LeaderElectionFlags,
    start: impl FnOnce() -> JoinSet<anyhow::Result<()>>,
    shutdown: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let identity = identity();
    let lock = LeaseLock::new(
        client,
        &flags.leader_elect_resource_namespace,
        &flags.leader_elect_resource_name,
        identity.clone(),
    );
    let elector = LeaderElector::new(flags.config(), lock).context("leader election")?;
    tracing::info!(
        identity,
        lease = format!(
            "{}/{}",
            flags.leader_elect_resource_namespace, flags.leader_elect_resource_name
        ),
        "attempting to acquire the leader lease"
    );
    // Nothing in `lead` runs before the Lease is held: the tasks are spawned on its first poll.
    let lead = async move {
        tracing::info!("started leading");
        crate::control_plane::run_until(start(), std::future::pending()).await
    };
    tokio::select! {
        r = shutdown => r,
        ended = elector.run(lead) => match ended {
            Ended::Finished(result) => result,
            Ended::LostLease => {
                // The controllers' tasks were aborted when `lead` was dropped; exit before
                // anything else could write, as kube-controller-manager's klog.FlushAndExit.
                eprintln!("leaderelection lost");
                std::process::exit(1);
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        election: LeaderElectionFlags,
    }

    fn parse(flags: &[&str]) -> Result<LeaderElectionFlags, clap::Error> {
        Flags::try_parse_from(std::iter::once("pernode").chain(flags.iter().copied()))
            .map(|f| f.election)
    }

    #[test]
    fn the_flags_are_kube_controller_managers_with_its_defaults() {
        let defaults = parse(&[]).expect("flags");
        assert!(
            defaults.enabled(true),
            "on by default for `pernode controllers`"
        );
        assert!(!defaults.enabled(false), "off by default for `pernode up`");
        assert_eq!(defaults.config(), leader_election::Config::default());
        assert_eq!(
            defaults.leader_elect_resource_name,
            "kube-controller-manager"
        );
        assert_eq!(defaults.leader_elect_resource_namespace, "kube-system");
        assert!(parse(&["--leader-elect"]).expect("flags").enabled(false));
        assert!(
            !parse(&["--leader-elect=false"])
                .expect("flags")
                .enabled(true)
        );
        let bad = parse(&["--leader-elect-renew-deadline", "20s"]).expect("flags");
        let e = bad.validate().expect_err("renew deadline past the lease");
        assert!(
            format!("{e:#}").ends_with("leaseDuration must be greater than renewDeadline"),
            "{e:#}"
        );
    }

    #[test]
    fn the_identity_is_the_host_name_and_a_uuid() {
        let hostname = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let (host, id) = identity()
            .rsplit_once('_')
            .map(|(h, i)| (h.to_owned(), i.to_owned()))
            .expect("host_uuid");
        assert_eq!(host, hostname);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        assert_ne!(identity(), identity());
    }
}
