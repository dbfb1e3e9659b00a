//! CertificateSigningRequest validation (pkg/apis/certificates/validation): the request is a
//! PEM `CERTIFICATE REQUEST` whose signature verifies, the signer name is a domain and a
//! path, usages are known and not repeated, a requested duration is at least ten minutes,
//! conditions are well formed (Approved and Denied exclusive), and `status.certificate` is
//! PEM certificates. Updates may not remove an Approved, Denied or Failed condition; only the
//! `approval` subresource changes Approved and Denied, and only the `status` subresource
//! sets the certificate, once.
//!
//! Stored objects that already break a rule keep being accepted on updates that leave that
//! part alone, as upstream's `getValidationOptions` tolerates existing data.

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use pernode_auth::csr::{self, KNOWN_USAGES, LEGACY_UNKNOWN};
use pernode_core::names;

use super::meta::{object_meta, object_meta_update};
use super::policy::name_is_path_segment;
use crate::FieldError;

const APPROVED: &str = "Approved";
const DENIED: &str = "Denied";
const FAILED: &str = "Failed";

/// What an update path may change and which existing faults it tolerates (upstream's
/// `certificateValidationOptions`).
#[derive(Default, Clone, Copy)]
struct Options {
    allow_setting_approval_conditions: bool,
    allow_setting_certificate: bool,
    allow_both_approved_and_denied: bool,
    allow_legacy_signer_name: bool,
    allow_duplicate_condition_types: bool,
    allow_empty_condition_type: bool,
    allow_arbitrary_certificate: bool,
    allow_unknown_usages: bool,
    allow_duplicate_usages: bool,
}

fn conditions(csr: &CertificateSigningRequest) -> &[CertificateSigningRequestCondition] {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
}

fn certificate(csr: &CertificateSigningRequest) -> &[u8] {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .map_or(&[], |c| c.0.as_slice())
}

fn usages(csr: &CertificateSigningRequest) -> &[String] {
    csr.spec.usages.as_deref().unwrap_or(&[])
}

/// `getValidationOptions`: the faults `old` already has are tolerated.
fn options(new: &CertificateSigningRequest, old: Option<&CertificateSigningRequest>) -> Options {
    let Some(old) = old else {
        return Options::default();
    };
    let old_conditions = conditions(old);
    let has = |t: &str| old_conditions.iter().any(|c| c.type_ == t);
    let mut seen = std::collections::HashSet::new();
    let duplicate_types = old_conditions.iter().any(|c| !seen.insert(&c.type_));
    let mut seen = std::collections::HashSet::new();
    let duplicate_usages = usages(old).iter().any(|u| !seen.insert(u));
    Options {
        allow_both_approved_and_denied: has(APPROVED) && has(DENIED),
        allow_legacy_signer_name: old.spec.signer_name == LEGACY_UNKNOWN,
        allow_duplicate_condition_types: duplicate_types,
        allow_empty_condition_type: old_conditions.iter().any(|c| c.type_.is_empty()),
        allow_arbitrary_certificate: certificate(new) == certificate(old)
            || csr::check_certificate_bundle(certificate(old)).is_err(),
        allow_unknown_usages: usages(old)
            .iter()
            .any(|u| !KNOWN_USAGES.contains(&u.as_str())),
        allow_duplicate_usages: duplicate_usages,
        ..Options::default()
    }
}

/// Go's `%#v` of a `[]byte`, as upstream prints an invalid `spec.request`.
fn go_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "[]byte(nil)".to_string();
    }
    let items: Vec<String> = bytes.iter().map(|b| format!("0x{b:x}")).collect();
    format!("[]byte{{{}}}", items.join(", "))
}

/// `ValidateCertificateSigningRequestCreate`.
pub fn certificate_signing_request_create(csr: &CertificateSigningRequest) -> Vec<FieldError> {
    validate(csr, Options::default())
}

/// `validateCertificateSigningRequest`.
fn validate(csr: &CertificateSigningRequest, opts: Options) -> Vec<FieldError> {
    // Upstream does not care what requests are called; a name must still be a path segment
    // to be addressed.
    let mut errs = object_meta(&csr.metadata, false, name_is_path_segment);
    let request = &csr.spec.request.0;
    if let Err(e) = csr::parse(request) {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(request);
        errs.push(FieldError::invalid_go(
            "spec.request",
            encoded.into(),
            go_bytes(request),
            &e.to_string(),
        ));
    }
    let usages = usages(csr);
    if usages.is_empty() {
        errs.push(FieldError::required(
            "spec.usages",
            "usages must be provided",
        ));
    }
    if !opts.allow_unknown_usages {
        for (i, usage) in usages.iter().enumerate() {
            if !KNOWN_USAGES.contains(&usage.as_str()) {
                errs.push(FieldError::not_supported(
                    &format!("spec.usages[{i}]"),
                    usage.as_str(),
                    &KNOWN_USAGES,
                ));
            }
        }
    }
    if !opts.allow_duplicate_usages {
        for (i, usage) in usages.iter().enumerate() {
            if usages[..i].contains(usage) {
                errs.push(FieldError::duplicate(
                    &format!("spec.usages[{i}]"),
                    usage.as_str(),
                ));
            }
        }
    }
    let signer = csr.spec.signer_name.as_str();
    if !opts.allow_legacy_signer_name && signer == LEGACY_UNKNOWN {
        errs.push(FieldError::invalid(
            "spec.signerName",
            signer,
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        errs.extend(signer_name("spec.signerName", signer));
    }
    if let Some(seconds) = csr.spec.expiration_seconds
        && seconds < 600
    {
        errs.push(FieldError::invalid(
            "spec.expirationSeconds",
            seconds,
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    errs.extend(validate_conditions(csr, opts));
    if !opts.allow_arbitrary_certificate
        && let Err(e) = csr::check_certificate_bundle(certificate(csr))
    {
        errs.push(FieldError::invalid(
            "status.certificate",
            "<certificate data>",
            &e,
        ));
    }
    errs
}

/// `validateConditions` at `status.conditions`.
fn validate_conditions(csr: &CertificateSigningRequest, opts: Options) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let (mut approved, mut denied) = (false, false);
    for (i, c) in conditions(csr).iter().enumerate() {
        let at = format!("status.conditions[{i}]");
        if !opts.allow_empty_condition_type && c.type_.is_empty() {
            errs.push(FieldError::required(&format!("{at}.type"), ""));
        }
        let allowed: &[&str] = if [APPROVED, DENIED, FAILED].contains(&c.type_.as_str()) {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if c.status.is_empty() {
            errs.push(FieldError::required(&format!("{at}.status"), ""));
        } else if !allowed.contains(&c.status.as_str()) {
            errs.push(FieldError::not_supported(
                &format!("{at}.status"),
                c.status.as_str(),
                allowed,
            ));
        }
        if !opts.allow_both_approved_and_denied {
            let exclusive = match c.type_.as_str() {
                APPROVED => {
                    approved = true;
                    denied
                }
                DENIED => {
                    denied = true;
                    approved
                }
                _ => false,
            };
            if exclusive {
                errs.push(FieldError::invalid(
                    &format!("{at}.type"),
                    c.type_.as_str(),
                    "Approved and Denied conditions are mutually exclusive",
                ));
            }
        }
        if !opts.allow_duplicate_condition_types {
            if seen.contains(&c.type_.as_str()) {
                errs.push(FieldError::duplicate(
                    &format!("{at}.type"),
                    c.type_.as_str(),
                ));
            }
            seen.push(&c.type_);
        }
    }
    errs
}

/// `ValidateCertificateSigningRequestSignerName`: `<domain>/<path>`, the domain of DNS labels
/// (at least two), the path of DNS subdomains separated by dots, 571 bytes at most.
pub fn signer_name(path: &str, name: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if name.is_empty() {
        return vec![FieldError::required(path, "signerName must be provided")];
    }
    let segments: Vec<&str> = name.split('/').collect();
    let [domain, rest] = segments.as_slice() else {
        return vec![FieldError::invalid(
            path,
            name,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        )];
    };
    const DOMAIN_MAX: usize = 253;
    if domain.len() > DOMAIN_MAX {
        errs.push(FieldError::too_long(path, DOMAIN_MAX as i64));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    // The first bad label only: the rest would repeat the same messages.
    if let Some((label, problems)) = labels
        .iter()
        .map(|l| (l, names::is_dns1123_label(l)))
        .find(|(_, p)| !p.is_empty())
    {
        for problem in problems {
            let detail = format!(
                "validating label {}: {problem}",
                pernode_core::goquote::quote(label)
            );
            errs.push(FieldError::invalid(path, *domain, &detail));
        }
    }
    if labels.len() < 2 {
        errs.push(FieldError::invalid(
            path,
            *domain,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    if let Some((label, problems)) = rest
        .split('.')
        .map(|l| (l, names::is_dns1123_subdomain(l)))
        .find(|(_, p)| !p.is_empty())
    {
        for problem in problems {
            let detail = format!(
                "validating label {}: {problem}",
                pernode_core::goquote::quote(label)
            );
            errs.push(FieldError::invalid(path, *rest, &detail));
        }
    }
    const NAME_MAX: usize = DOMAIN_MAX + 253 + 63 + 1 + 1;
    if name.len() > NAME_MAX {
        errs.push(FieldError::too_long(path, NAME_MAX as i64));
    }
    errs
}

/// `ValidateCertificateSigningRequestUpdate`: the main resource.
pub fn certificate_signing_request_update(
    new: &CertificateSigningRequest,
    old: &CertificateSigningRequest,
) -> Vec<FieldError> {
    validate_update(new, old, options(new, Some(old)))
}

/// `ValidateCertificateSigningRequestStatusUpdate`: `/status`, which may set the certificate.
pub fn certificate_signing_request_status_update(
    new: &CertificateSigningRequest,
    old: &CertificateSigningRequest,
) -> Vec<FieldError> {
    let opts = Options {
        allow_setting_certificate: true,
        ..options(new, Some(old))
    };
    validate_update(new, old, opts)
}

/// `ValidateCertificateSigningRequestApprovalUpdate`: `/approval`, which may add Approved or
/// Denied.
pub fn certificate_signing_request_approval_update(
    new: &CertificateSigningRequest,
    old: &CertificateSigningRequest,
) -> Vec<FieldError> {
    let opts = Options {
        allow_setting_approval_conditions: true,
        ..options(new, Some(old))
    };
    validate_update(new, old, opts)
}

fn of_type<'a>(
    csr: &'a CertificateSigningRequest,
    t: &str,
) -> Vec<&'a CertificateSigningRequestCondition> {
    conditions(csr).iter().filter(|c| c.type_ == t).collect()
}

/// `validateCertificateSigningRequestUpdate`.
fn validate_update(
    new: &CertificateSigningRequest,
    old: &CertificateSigningRequest,
    opts: Options,
) -> Vec<FieldError> {
    let mut errs = validate(new, opts);
    let meta = object_meta_update(&new.metadata, &old.metadata);
    for t in [APPROVED, DENIED, FAILED] {
        if of_type(new, t).len() < of_type(old, t).len() {
            errs.push(FieldError::forbidden(
                "status.conditions",
                &format!("updates may not remove a condition of type {t:?}"),
            ));
        }
    }
    if !opts.allow_setting_approval_conditions {
        for t in [APPROVED, DENIED] {
            let (old_c, new_c) = (of_type(old, t), of_type(new, t));
            if new_c.len() > old_c.len() {
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    &format!("updates may not add a condition of type {t:?}"),
                ));
            } else if new_c.len() == old_c.len() && !crate::semantic_eq(&old_c, &new_c) {
                // Upstream appends a diff of the two lists to this message.
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    &format!("updates may not modify a condition of type {t:?}"),
                ));
            }
        }
    }
    if certificate(new) != certificate(old) {
        if !opts.allow_setting_certificate {
            errs.push(FieldError::forbidden(
                "status.certificate",
                "updates may not set certificate content",
            ));
        } else if !certificate(old).is_empty() {
            errs.push(FieldError::forbidden(
                "status.certificate",
                "updates may not modify existing certificate content",
            ));
        }
    }
    errs.extend(meta);
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestSpec, CertificateSigningRequestStatus,
    };

    fn request_pem() -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "system:node:a");
        params
            .serialize_request(&key)
            .expect("request")
            .pem()
            .expect("pem")
    }

    fn csr(signer: &str, usages: &[&str]) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("c".into()),
                // Updates carry the version they were computed from.
                resource_version: Some("1".into()),
                ..Default::default()
            },
            spec: CertificateSigningRequestSpec {
                request: ByteString(request_pem().into_bytes()),
                signer_name: signer.into(),
                usages: Some(usages.iter().map(|u| u.to_string()).collect()),
                ..Default::default()
            },
            status: None,
        }
    }

    fn condition(t: &str) -> CertificateSigningRequestCondition {
        CertificateSigningRequestCondition {
            type_: t.into(),
            status: "True".into(),
            ..Default::default()
        }
    }

    fn with_conditions(
        mut c: CertificateSigningRequest,
        types: &[&str],
    ) -> CertificateSigningRequest {
        c.status = Some(CertificateSigningRequestStatus {
            conditions: Some(types.iter().map(|t| condition(t)).collect()),
            certificate: c.status.and_then(|s| s.certificate),
        });
        c
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_well_formed_request_is_valid() {
        let c = csr("kubernetes.io/kube-apiserver-client", &["client auth"]);
        assert!(certificate_signing_request_create(&c).is_empty());
    }

    #[test]
    fn bad_requests_have_upstreams_messages() {
        let mut c = csr("example.com/x", &["client auth"]);
        c.spec.request = ByteString(b"--".to_vec());
        assert_eq!(
            messages(&certificate_signing_request_create(&c)),
            [
                "spec.request: Invalid value: []byte{0x2d, 0x2d}: PEM block type must be CERTIFICATE REQUEST"
            ]
        );
        let mut c = csr("example.com/x", &[]);
        c.spec.expiration_seconds = Some(599);
        assert_eq!(
            messages(&certificate_signing_request_create(&c)),
            [
                "spec.usages: Required value: usages must be provided",
                "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)",
            ]
        );
        let c = csr("example.com/x", &["client auth", "teleport", "client auth"]);
        let errs = messages(&certificate_signing_request_create(&c));
        assert!(errs[0].starts_with(
            r#"spec.usages[1]: Unsupported value: "teleport": supported values: "any", "cert sign""#
        ));
        assert_eq!(errs[1], r#"spec.usages[2]: Duplicate value: "client auth""#);
    }

    #[test]
    fn signer_names_are_a_domain_and_a_path() {
        let m = |n: &str| messages(&signer_name("spec.signerName", n));
        assert!(m("example.com/signer").is_empty());
        assert!(m("example.com/a.b").is_empty());
        assert_eq!(
            m(""),
            ["spec.signerName: Required value: signerName must be provided"]
        );
        assert_eq!(
            m("example.com"),
            [
                "spec.signerName: Invalid value: \"example.com\": must be a fully qualified domain and path of the form 'example.com/signer-name'"
            ]
        );
        assert_eq!(
            m("example/x"),
            [
                "spec.signerName: Invalid value: \"example\": should be a domain with at least two segments separated by dots"
            ]
        );
        assert_eq!(
            m("Example.com/x"),
            [
                "spec.signerName: Invalid value: \"Example.com\": validating label \"Example\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(
            messages(&certificate_signing_request_create(&csr(
                LEGACY_UNKNOWN,
                &["client auth"]
            ))),
            [
                "spec.signerName: Invalid value: \"kubernetes.io/legacy-unknown\": the legacy signerName is not allowed via this API version"
            ]
        );
    }

    #[test]
    fn approved_and_denied_exclude_each_other_and_stay() {
        let base = csr("example.com/x", &["client auth"]);
        let both = with_conditions(base.clone(), &[APPROVED, DENIED]);
        assert_eq!(
            messages(&certificate_signing_request_create(&both)),
            [
                "status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"
            ]
        );
        let twice = with_conditions(base.clone(), &[FAILED, FAILED]);
        assert_eq!(
            messages(&certificate_signing_request_create(&twice)),
            ["status.conditions[1].type: Duplicate value: \"Failed\""]
        );
        let mut false_approval = with_conditions(base.clone(), &[APPROVED]);
        if let Some(c) = false_approval
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
        {
            c[0].status = "False".into();
        }
        assert_eq!(
            messages(&certificate_signing_request_create(&false_approval)),
            [
                "status.conditions[0].status: Unsupported value: \"False\": supported values: \"True\""
            ]
        );
        // Approval is only added through /approval, and never taken back.
        let approved = with_conditions(base.clone(), &[APPROVED]);
        assert!(certificate_signing_request_approval_update(&approved, &base).is_empty());
        assert_eq!(
            messages(&certificate_signing_request_status_update(&approved, &base)),
            ["status.conditions: Forbidden: updates may not add a condition of type \"Approved\""]
        );
        assert_eq!(
            messages(&certificate_signing_request_approval_update(
                &base, &approved
            )),
            [
                "status.conditions: Forbidden: updates may not remove a condition of type \"Approved\""
            ]
        );
        let denied_after = with_conditions(base.clone(), &[APPROVED, DENIED]);
        assert_eq!(
            messages(&certificate_signing_request_approval_update(
                &denied_after,
                &approved
            )),
            [
                "status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"
            ]
        );
    }

    #[test]
    fn the_certificate_is_set_once_through_status() {
        let base = csr("example.com/x", &["client auth"]);
        let ca = pernode_auth::pki::ClusterCa::generate().expect("ca");
        let mut issued = base.clone();
        issued.status = Some(CertificateSigningRequestStatus {
            certificate: Some(ByteString(ca.cert_pem.clone().into_bytes())),
            conditions: None,
        });
        assert!(certificate_signing_request_status_update(&issued, &base).is_empty());
        assert_eq!(
            messages(&certificate_signing_request_update(&issued, &base)),
            ["status.certificate: Forbidden: updates may not set certificate content"]
        );
        assert_eq!(
            messages(&certificate_signing_request_status_update(&base, &issued)),
            ["status.certificate: Forbidden: updates may not modify existing certificate content"]
        );
        let mut garbage = base.clone();
        garbage.status = Some(CertificateSigningRequestStatus {
            certificate: Some(ByteString(b"junk".to_vec())),
            conditions: None,
        });
        assert_eq!(
            messages(&certificate_signing_request_status_update(&garbage, &base)),
            [
                "status.certificate: Invalid value: \"<certificate data>\": must contain at least one CERTIFICATE PEM block"
            ]
        );
    }
}
