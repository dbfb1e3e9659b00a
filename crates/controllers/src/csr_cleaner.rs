//! The CSR cleaner, as upstream's `pkg/controller/certificates/cleaner`: nodes renewing their
//! certificates make requests without end, so every hour the requests that are done with are
//! deleted: approved and issued an hour after the approval's last update (or once the
//! certificate has expired), denied or failed an hour after that condition's last update,
//! pending a day after creation.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pernode_controllers::csr::Error> {
//! pernode_controllers::csr_cleaner::run(client).await
//! # }
//! ```

use std::time::Duration;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams};
use tracing::{debug, info};

use crate::csr;

/// How often every request is looked at (upstream's `pollingInterval`).
pub const POLLING_INTERVAL: Duration = Duration::from_secs(3600);
/// How long an approved (and issued) request is kept.
pub const APPROVED_EXPIRATION: Duration = Duration::from_secs(3600);
/// How long a denied or failed request is kept.
pub const DENIED_EXPIRATION: Duration = Duration::from_secs(3600);
/// How long a pending request is kept.
pub const PENDING_EXPIRATION: Duration = Duration::from_secs(24 * 3600);

/// `isOlderThan`: `t` is set and more than `d` before `now`.
fn older_than(t: Option<&Time>, d: Duration, now: Timestamp) -> bool {
    let Some(Time(t)) = t else {
        return false;
    };
    let age = now.as_second() - t.as_second();
    age > i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Why `csr` should go at `now`, if it should (upstream's `handle`).
pub fn expired(csr: &CertificateSigningRequest, now: Timestamp) -> Option<&'static str> {
    let conditions = csr
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[]);
    let issued = !csr::certificate(csr).is_empty();
    for c in conditions {
        let updated = c.last_update_time.as_ref();
        match c.type_.as_str() {
            "Approved" if issued && older_than(updated, APPROVED_EXPIRATION, now) => {
                return Some("approved and issued more than an hour ago");
            }
            "Approved" if issued && certificate_expired(csr, now) => {
                return Some("its certificate has expired");
            }
            "Denied" if older_than(updated, DENIED_EXPIRATION, now) => {
                return Some("denied more than an hour ago");
            }
            "Failed" if older_than(updated, DENIED_EXPIRATION, now) => {
                return Some("failed more than an hour ago");
            }
            _ => {}
        }
    }
    let created = csr.metadata.creation_timestamp.as_ref();
    if conditions.is_empty() && older_than(created, PENDING_EXPIRATION, now) {
        return Some("pending for more than a day");
    }
    None
}

/// `isExpired`: the issued certificate's `NotAfter` has passed.
fn certificate_expired(csr: &CertificateSigningRequest, now: Timestamp) -> bool {
    pernode_auth::csr::first_not_after(csr::certificate(csr))
        .is_some_and(|not_after| now.as_second() > not_after)
}

/// Runs the cleaner until an unrecoverable error: a pass now, then one every hour.
pub async fn run(client: kube::Client) -> Result<(), csr::Error> {
    let api: Api<CertificateSigningRequest> = Api::all(client);
    loop {
        match clean(&api).await {
            Ok(deleted) if deleted > 0 => info!(deleted, "cleaned certificate signing requests"),
            Ok(_) => {}
            Err(e) => debug!(error = %e, "listing certificate signing requests failed"),
        }
        tokio::time::sleep(POLLING_INTERVAL).await;
    }
}

/// One pass: deletes the expired requests; how many went.
async fn clean(api: &Api<CertificateSigningRequest>) -> Result<usize, kube::Error> {
    let now = Timestamp::now();
    let mut deleted = 0;
    for csr in api.list(&ListParams::default()).await?.items {
        let Some(why) = expired(&csr, now) else {
            continue;
        };
        let name = csr::name(&csr);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                debug!(csr = %name, why, "deleted certificate signing request");
                deleted += 1;
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                debug!(csr = %name, error = %e, "could not delete certificate signing request")
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr::tests::{csr, request_pem};
    use k8s_openapi::ByteString;

    fn at(seconds_ago: i64, now: Timestamp) -> Time {
        Time(Timestamp::from_second(now.as_second() - seconds_ago).expect("time"))
    }

    /// A request created `created_ago` seconds before `now`, with conditions last updated
    /// the given seconds before it, issued the cluster CA's certificate (ten years) or not.
    fn request_at(
        now: Timestamp,
        conditions: &[(&str, i64)],
        created_ago: i64,
        issued: bool,
    ) -> CertificateSigningRequest {
        let types: Vec<&str> = conditions.iter().map(|(t, _)| *t).collect();
        let mut c = csr(request_pem("x", "", &[]), "a.b/c", "u", &[], &types);
        c.metadata.creation_timestamp = Some(at(created_ago, now));
        let status = c.status.get_or_insert_with(Default::default);
        for (condition, (_, ago)) in status.conditions.iter_mut().flatten().zip(conditions) {
            condition.last_update_time = Some(at(*ago, now));
        }
        if issued {
            let ca = pernode_auth::pki::ClusterCa::generate().expect("ca");
            status.certificate = Some(ByteString(ca.cert_pem.into_bytes()));
        }
        c
    }

    fn request(
        conditions: &[(&str, i64)],
        created_ago: i64,
        issued: bool,
    ) -> CertificateSigningRequest {
        request_at(Timestamp::now(), conditions, created_ago, issued)
    }

    #[test]
    fn done_requests_go_after_upstreams_deadlines() {
        let now = Timestamp::now();
        let hour = 3600;
        // Pending: a day.
        assert_eq!(expired(&request(&[], hour, false), now), None);
        assert!(expired(&request(&[], 25 * hour, false), now).is_some());
        // Approved and issued: an hour after the approval.
        assert_eq!(
            expired(&request(&[("Approved", 60)], 2 * hour, true), now),
            None
        );
        assert!(expired(&request(&[("Approved", 2 * hour)], 2 * hour, true), now).is_some());
        // Approved but not issued yet: kept.
        assert_eq!(
            expired(&request(&[("Approved", 2 * hour)], 2 * hour, false), now),
            None
        );
        // Denied or failed: an hour.
        assert_eq!(expired(&request(&[("Denied", 60)], hour, false), now), None);
        assert!(expired(&request(&[("Denied", 2 * hour)], 2 * hour, false), now).is_some());
        assert!(
            expired(
                &request(&[("Approved", 60), ("Failed", 2 * hour)], 2 * hour, false),
                now
            )
            .is_some()
        );
        // A condition without a time never expires by it.
        let mut untimed = request(&[("Denied", 0)], 2 * hour, false);
        if let Some(c) = untimed.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            c[0].last_update_time = None;
        }
        assert_eq!(expired(&untimed, now), None);
    }

    #[test]
    fn an_expired_certificate_goes_at_once() {
        // Eleven years on, the ten-year certificate has expired a minute after its approval.
        let later =
            Timestamp::from_second(Timestamp::now().as_second() + 11 * 365 * 86_400).expect("time");
        let c = request_at(later, &[("Approved", 60)], 120, true);
        assert!(certificate_expired(&c, later));
        assert_eq!(expired(&c, later), Some("its certificate has expired"));
        assert!(!certificate_expired(&c, Timestamp::now()));
    }
}
