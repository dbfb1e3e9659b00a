//! Certificate signing requests (PKCS#10) as upstream's certificates API reads them
//! (`pkg/apis/certificates`): [`parse`] is `ParseCSR` with the signature checked (the API
//! server refuses a request whose signature does not verify, and the signer checks again),
//! [`CertificateRequest`] holds what upstream's checks read of it (`x509.CertificateRequest`:
//! the subject as `pkix.Name`, the subject alternative names, the public key), and the
//! checks of the `kubernetes.io` signers ([`validate_kubelet_client`],
//! [`validate_kubelet_serving`], [`validate_kube_apiserver_client`]) are upstream's, with its
//! messages. [`check_certificate_bundle`] is the API's check of `status.certificate`.
//!
//! ```
//! let key = rcgen::KeyPair::generate().unwrap();
//! let mut params = rcgen::CertificateParams::default();
//! params.distinguished_name.push(rcgen::DnType::CommonName, "system:node:web-1");
//! params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:nodes");
//! let pem = params.serialize_request(&key).unwrap().pem().unwrap();
//! let request = pernode_auth::csr::parse(pem.as_bytes()).unwrap();
//! assert_eq!(request.subject.common_name, "system:node:web-1");
//! assert_eq!(request.subject.organization, ["system:nodes"]);
//! ```

use std::net::IpAddr;

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate, X509CertificationRequest};

/// The API group of CertificateSigningRequests and of the `signers` resource permissions name.
pub const GROUP: &str = "certificates.k8s.io";
/// `kubernetes.io/kube-apiserver-client`: client certificates the API server honours.
pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
/// `kubernetes.io/kube-apiserver-client-kubelet`: kubelets' client certificates.
pub const KUBE_APISERVER_CLIENT_KUBELET: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// `kubernetes.io/kubelet-serving`: kubelets' serving certificates.
pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";
/// `kubernetes.io/legacy-unknown`: v1beta1's default signer, refused by the v1 API.
pub const LEGACY_UNKNOWN: &str = "kubernetes.io/legacy-unknown";

/// Every key usage the API accepts (upstream's `allValidUsages`), sorted as `sets.List()`
/// lists them in its messages.
pub const KNOWN_USAGES: [&str; 23] = [
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// Why a request is not a certificate request the API takes; the messages are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// No PEM block, or another kind of block first.
    #[error("PEM block type must be CERTIFICATE REQUEST")]
    NotRequestPem,
    /// The block is not a DER PKCS#10 request.
    #[error("{0}")]
    Malformed(String),
    /// The request is not signed by the key it carries.
    #[error("{0}")]
    Signature(String),
}

/// A certificate's subject, as Go's `pkix.Name` keeps it: the standard attributes, lists for
/// the repeatable ones, the last value for the common name and serial number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Name {
    pub country: Vec<String>,
    pub organization: Vec<String>,
    pub organizational_unit: Vec<String>,
    pub locality: Vec<String>,
    pub province: Vec<String>,
    pub street_address: Vec<String>,
    pub postal_code: Vec<String>,
    pub serial_number: String,
    pub common_name: String,
}

/// What upstream's checks and signer read of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    pub subject: Name,
    pub dns_names: Vec<String>,
    pub email_addresses: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub uris: Vec<String>,
    /// The requester's public key, DER `SubjectPublicKeyInfo`.
    pub public_key_info: Vec<u8>,
}

/// The request in the first PEM block of `pem` (`ParseCSR`), its signature checked
/// (`CheckSignature`).
pub fn parse(pem: &[u8]) -> Result<CertificateRequest, CsrError> {
    let block = match crate::pem::decode(pem) {
        Some((block, _)) if block.kind == "CERTIFICATE REQUEST" => block,
        _ => return Err(CsrError::NotRequestPem),
    };
    let (rest, request) = X509CertificationRequest::from_der(&block.bytes)
        .map_err(|_| CsrError::Malformed("x509: malformed certificate request".into()))?;
    if !rest.is_empty() {
        return Err(CsrError::Malformed(
            "asn1: syntax error: trailing data".into(),
        ));
    }
    request
        .verify_signature()
        .map_err(|_| CsrError::Signature(signature_failure(&request)))?;
    let info = &request.certification_request_info;
    let mut parsed = CertificateRequest {
        subject: name_of(&info.subject),
        dns_names: Vec::new(),
        email_addresses: Vec::new(),
        ip_addresses: Vec::new(),
        uris: Vec::new(),
        public_key_info: info.subject_pki.raw.to_vec(),
    };
    for extension in request.requested_extensions().into_iter().flatten() {
        let ParsedExtension::SubjectAlternativeName(names) = extension else {
            continue;
        };
        for name in &names.general_names {
            match name {
                GeneralName::DNSName(n) => parsed.dns_names.push(n.to_string()),
                GeneralName::RFC822Name(n) => parsed.email_addresses.push(n.to_string()),
                GeneralName::URI(n) => parsed.uris.push(n.to_string()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    let ip = ip.ok_or_else(|| {
                        CsrError::Malformed(format!(
                            "x509: cannot parse IP address of length {}",
                            bytes.len()
                        ))
                    })?;
                    parsed.ip_addresses.push(ip);
                }
                // Go's parser keeps no other kind of name.
                _ => {}
            }
        }
    }
    Ok(parsed)
}

/// Go's message for a signature that does not verify, by the request's signature algorithm.
fn signature_failure(request: &X509CertificationRequest<'_>) -> String {
    let algorithm = request.signature_algorithm.algorithm.to_id_string();
    match algorithm.as_str() {
        // ecdsa-with-SHA256/384/512
        "1.2.840.10045.4.3.2" | "1.2.840.10045.4.3.3" | "1.2.840.10045.4.3.4" => {
            "x509: ECDSA verification failure".into()
        }
        "1.3.101.112" => "x509: Ed25519 verification failure".into(),
        // sha*WithRSAEncryption and RSASSA-PSS
        a if a.starts_with("1.2.840.113549.1.1.") => "crypto/rsa: verification error".into(),
        _ => "x509: cannot verify signature: algorithm unimplemented".into(),
    }
}

/// `pkix.Name.FillFromRDNSequence`: the standard attributes whose values are strings.
fn name_of(subject: &x509_parser::x509::X509Name<'_>) -> Name {
    let mut name = Name::default();
    for rdn in subject.iter() {
        for attribute in rdn.iter() {
            let Ok(value) = attribute.as_str() else {
                continue;
            };
            let value = value.to_string();
            match attribute.attr_type().to_id_string().as_str() {
                "2.5.4.6" => name.country.push(value),
                "2.5.4.10" => name.organization.push(value),
                "2.5.4.11" => name.organizational_unit.push(value),
                "2.5.4.7" => name.locality.push(value),
                "2.5.4.8" => name.province.push(value),
                "2.5.4.9" => name.street_address.push(value),
                "2.5.4.17" => name.postal_code.push(value),
                "2.5.4.5" => name.serial_number = value,
                "2.5.4.3" => name.common_name = value,
                _ => {}
            }
        }
    }
    name
}

/// Upstream's `validateCertificate`: `status.certificate` is empty or one or more
/// `CERTIFICATE` PEM blocks, without headers, each holding certificates.
pub fn check_certificate_bundle(mut data: &[u8]) -> Result<(), String> {
    if data.is_empty() {
        return Ok(());
    }
    let mut blocks = 0;
    while let Some((block, rest)) = crate::pem::decode(data) {
        if block.kind != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {}",
                pernode_core::goquote::quote(&block.kind)
            ));
        }
        if !block.headers.is_empty() {
            return Err("no PEM block headers are permitted".into());
        }
        blocks += 1;
        let mut der = block.bytes.as_slice();
        if der.is_empty() {
            return Err("found CERTIFICATE PEM block containing 0 certificates".into());
        }
        // `x509.ParseCertificates`: certificates back to back.
        while !der.is_empty() {
            let (rest, _) = X509Certificate::from_der(der)
                .map_err(|_| "x509: malformed certificate".to_string())?;
            der = rest;
        }
        data = rest;
    }
    if blocks == 0 {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    Ok(())
}

/// The `NotAfter` of the first certificate of a PEM bundle, as seconds since the epoch.
pub fn first_not_after(pem: &[u8]) -> Option<i64> {
    let (block, _) = crate::pem::decode(pem)?;
    let (_, cert) = X509Certificate::from_der(&block.bytes).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// Usages as a set, sorted and without repeats (upstream's `sets.String`).
fn usage_set(usages: &[String]) -> Vec<&str> {
    let mut set: Vec<&str> = usages.iter().map(String::as_str).collect();
    set.sort_unstable();
    set.dedup();
    set
}

/// Go's `%v` of a sorted `[]string`: `[a b c]`.
fn go_list(items: &[&str]) -> String {
    format!("[{}]", items.join(" "))
}

const KUBELET_CLIENT_USAGES: [&str; 3] = ["client auth", "digital signature", "key encipherment"];
const KUBELET_CLIENT_USAGES_NO_RSA: [&str; 2] = ["client auth", "digital signature"];
const KUBELET_SERVING_USAGES: [&str; 3] = ["digital signature", "key encipherment", "server auth"];
const KUBELET_SERVING_USAGES_NO_RSA: [&str; 2] = ["digital signature", "server auth"];

fn organization_is_nodes(request: &CertificateRequest) -> Result<(), String> {
    if request.subject.organization != [crate::user::NODES_GROUP] {
        return Err("subject organization is not system:nodes".into());
    }
    Ok(())
}

fn common_name_is_node(request: &CertificateRequest) -> Result<(), String> {
    if !request
        .subject
        .common_name
        .starts_with(crate::user::NODE_USER_PREFIX)
    {
        return Err("subject common name does not begin with system:node:".into());
    }
    Ok(())
}

/// `ValidateKubeletClientCSR`: a node's client certificate: organization exactly
/// `system:nodes`, no subject alternative names, common name `system:node:...`, and the
/// usages `client auth` and `digital signature` (with `key encipherment` or without).
pub fn validate_kubelet_client(
    request: &CertificateRequest,
    usages: &[String],
) -> Result<(), String> {
    organization_is_nodes(request)?;
    if !request.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if !request.email_addresses.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !request.ip_addresses.is_empty() {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if !request.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    common_name_is_node(request)?;
    let set = usage_set(usages);
    if set != KUBELET_CLIENT_USAGES && set != KUBELET_CLIENT_USAGES_NO_RSA {
        return Err(format!(
            "usages did not match {}",
            go_list(&KUBELET_CLIENT_USAGES)
        ));
    }
    Ok(())
}

/// `ValidateKubeletServingCSR`: a node's serving certificate: organization exactly
/// `system:nodes`, at least one DNS or IP name and no others, the serving usages, common
/// name `system:node:...`.
pub fn validate_kubelet_serving(
    request: &CertificateRequest,
    usages: &[String],
) -> Result<(), String> {
    organization_is_nodes(request)?;
    if request.dns_names.is_empty() && request.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if !request.email_addresses.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !request.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    let set = usage_set(usages);
    if set != KUBELET_SERVING_USAGES && set != KUBELET_SERVING_USAGES_NO_RSA {
        return Err(format!(
            "usages did not match {}",
            go_list(&KUBELET_SERVING_USAGES)
        ));
    }
    common_name_is_node(request)
}

/// The signer's `validAPIServerClientUsages`: `client auth`, optionally `digital signature`
/// and `key encipherment`, nothing else.
pub fn validate_kube_apiserver_client(usages: &[String]) -> Result<(), String> {
    let mut client_auth = false;
    for usage in usages {
        match usage.as_str() {
            "digital signature" | "key encipherment" => {}
            "client auth" => client_auth = true,
            other => return Err(format!("invalid usage for client certificate: {other}")),
        }
    }
    if !client_auth {
        return Err("missing required usage for client certificate: client auth".into());
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A request signed by a fresh key with this subject, these DNS names and IP addresses.
    pub(crate) fn request_pem(cn: &str, orgs: &[&str], dns: &[&str], ips: &[&str]) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        // rcgen keeps one value per attribute type; a second organization goes in under the
        // same object identifier as a custom type.
        for (i, org) in orgs.iter().enumerate() {
            let ty = match i {
                0 => rcgen::DnType::OrganizationName,
                _ => rcgen::DnType::CustomDnType(vec![2, 5, 4, 10]),
            };
            params.distinguished_name.push(ty, *org);
        }
        for name in dns {
            params.subject_alt_names.push(rcgen::SanType::DnsName(
                (*name).try_into().expect("dns name"),
            ));
        }
        for ip in ips {
            params
                .subject_alt_names
                .push(rcgen::SanType::IpAddress(ip.parse().expect("ip")));
        }
        params
            .serialize_request(&key)
            .expect("request")
            .pem()
            .expect("pem")
    }

    fn usages(u: &[&str]) -> Vec<String> {
        u.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn requests_parse_with_their_subject_and_names() {
        let pem = request_pem(
            "system:node:web-1",
            &["system:nodes", "extra"],
            &["web-1.local"],
            &["10.0.0.5"],
        );
        let request = parse(pem.as_bytes()).expect("parsed");
        assert_eq!(request.subject.common_name, "system:node:web-1");
        assert_eq!(request.subject.organization, ["system:nodes", "extra"]);
        assert_eq!(request.dns_names, ["web-1.local"]);
        assert_eq!(
            request.ip_addresses,
            ["10.0.0.5".parse::<IpAddr>().unwrap()]
        );
        assert!(!request.public_key_info.is_empty());
    }

    #[test]
    fn bad_requests_have_gos_messages() {
        assert_eq!(parse(b"nothing").unwrap_err(), CsrError::NotRequestPem);
        let cert = crate::pki::ClusterCa::generate().expect("ca").cert_pem;
        assert_eq!(
            parse(cert.as_bytes()).unwrap_err().to_string(),
            "PEM block type must be CERTIFICATE REQUEST"
        );
        let garbage = crate::pem::encode("CERTIFICATE REQUEST", b"garbage");
        assert!(matches!(
            parse(garbage.as_bytes()),
            Err(CsrError::Malformed(_))
        ));
        // A request whose signature does not match its content: one byte of the subject
        // changed after signing.
        let pem = request_pem("system:node:aaaa", &[], &[], &[]);
        let (block, _) = crate::pem::decode(pem.as_bytes()).expect("block");
        let mut der = block.bytes;
        let at = der
            .windows(4)
            .position(|w| w == b"aaaa")
            .expect("the common name");
        der[at] = b'b';
        let tampered = crate::pem::encode("CERTIFICATE REQUEST", &der);
        assert_eq!(
            parse(tampered.as_bytes()).unwrap_err(),
            CsrError::Signature("x509: ECDSA verification failure".into())
        );
    }

    #[test]
    fn certificate_bundles_are_checked_as_upstream() {
        let ca = crate::pki::ClusterCa::generate().expect("ca").cert_pem;
        assert_eq!(check_certificate_bundle(b""), Ok(()));
        assert_eq!(check_certificate_bundle(ca.as_bytes()), Ok(()));
        assert_eq!(
            check_certificate_bundle(format!("{ca}{ca}").as_bytes()),
            Ok(())
        );
        assert_eq!(
            check_certificate_bundle(b"junk").unwrap_err(),
            "must contain at least one CERTIFICATE PEM block"
        );
        let request = request_pem("x", &[], &[], &[]);
        assert_eq!(
            check_certificate_bundle(request.as_bytes()).unwrap_err(),
            r#"only CERTIFICATE PEM blocks are allowed, found "CERTIFICATE REQUEST""#
        );
        let garbage = crate::pem::encode("CERTIFICATE", b"garbage");
        assert!(check_certificate_bundle(garbage.as_bytes()).is_err());
        let with_header = ca.replacen("-----\n", "-----\nA: b\n\n", 1);
        assert_eq!(
            check_certificate_bundle(with_header.as_bytes()).unwrap_err(),
            "no PEM block headers are permitted"
        );
        assert!(first_not_after(ca.as_bytes()).is_some());
    }

    #[test]
    fn kubelet_client_requests_are_upstreams() {
        let ok = |cn, orgs: &[&str], dns: &[&str], ips: &[&str], u: &[&str]| {
            let pem = request_pem(cn, orgs, dns, ips);
            validate_kubelet_client(&parse(pem.as_bytes()).expect("parsed"), &usages(u))
        };
        let full = ["digital signature", "key encipherment", "client auth"];
        let no_rsa = ["client auth", "digital signature"];
        assert_eq!(
            ok("system:node:a", &["system:nodes"], &[], &[], &full),
            Ok(())
        );
        assert_eq!(
            ok("system:node:a", &["system:nodes"], &[], &[], &no_rsa),
            Ok(())
        );
        assert_eq!(
            ok("system:node:a", &["system:nodes", "x"], &[], &[], &full).unwrap_err(),
            "subject organization is not system:nodes"
        );
        assert_eq!(
            ok("system:node:a", &[], &[], &[], &full).unwrap_err(),
            "subject organization is not system:nodes"
        );
        assert_eq!(
            ok("system:node:a", &["system:nodes"], &["a"], &[], &full).unwrap_err(),
            "DNS subjectAltNames are not allowed"
        );
        assert_eq!(
            ok("system:node:a", &["system:nodes"], &[], &["1.2.3.4"], &full).unwrap_err(),
            "IP subjectAltNames are not allowed"
        );
        assert_eq!(
            ok("jane", &["system:nodes"], &[], &[], &full).unwrap_err(),
            "subject common name does not begin with system:node:"
        );
        assert_eq!(
            ok(
                "system:node:a",
                &["system:nodes"],
                &[],
                &[],
                &["client auth"]
            )
            .unwrap_err(),
            "usages did not match [client auth digital signature key encipherment]"
        );
    }

    #[test]
    fn kubelet_serving_requests_are_upstreams() {
        let check = |dns: &[&str], u: &[&str]| {
            let pem = request_pem("system:node:a", &["system:nodes"], dns, &[]);
            validate_kubelet_serving(&parse(pem.as_bytes()).expect("parsed"), &usages(u))
        };
        let serving = ["digital signature", "key encipherment", "server auth"];
        assert_eq!(check(&["a.local"], &serving), Ok(()));
        assert_eq!(
            check(&[], &serving).unwrap_err(),
            "DNS or IP subjectAltName is required"
        );
        assert_eq!(
            check(&["a.local"], &["server auth"]).unwrap_err(),
            "usages did not match [digital signature key encipherment server auth]"
        );
    }

    #[test]
    fn api_server_client_usages_are_upstreams() {
        assert_eq!(
            validate_kube_apiserver_client(&usages(&["client auth", "digital signature"])),
            Ok(())
        );
        assert_eq!(
            validate_kube_apiserver_client(&usages(&["client auth", "server auth"])).unwrap_err(),
            "invalid usage for client certificate: server auth"
        );
        assert_eq!(
            validate_kube_apiserver_client(&usages(&["digital signature"])).unwrap_err(),
            "missing required usage for client certificate: client auth"
        );
    }
}
