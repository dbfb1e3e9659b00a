//! Signing certificate requests with the cluster CA, as kube-controller-manager's CSR signer
//! (`pkg/controller/certificates/authority`): the certificate copies the request's subject,
//! subject alternative names and public key, and nothing else of it; its key usages are the
//! CertificateSigningRequest's `spec.usages`; it is not a CA; it is valid from five minutes
//! ago (clocks that disagree) for the granted duration (less the five minutes unless the
//! duration is under eight hours), never past the CA's own expiry (upstream's
//! `PermissiveSigningPolicy`).
//!
//! One deviation: rcgen writes one value per subject attribute, so a subject repeating an
//! attribute (two organizations) is refused rather than signed with one of them dropped.

use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

use super::{ClusterCa, PkiError, cert_err};
use crate::csr::{CertificateRequest, Name};

/// How far back a signed certificate's validity starts (upstream's backdate).
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Below this duration a certificate's end is not backdated too (upstream's `Short`).
pub const SHORT: Duration = Duration::from_secs(8 * 60 * 60);

/// The certificate's `KeyUsage` bit, or `ExtKeyUsage`, of a usage of the certificates API
/// (upstream's `keyUsageDict` and `extKeyUsageDict`); the number orders extended usages as
/// Go's `ExtKeyUsage` constants do.
enum Usage {
    Key(KeyUsagePurpose),
    Extended(u8, ExtendedKeyUsagePurpose),
}

fn usage(name: &str) -> Option<Usage> {
    use ExtendedKeyUsagePurpose as E;
    use KeyUsagePurpose as K;
    let other = |oid: &[u64]| E::Other(oid.to_vec());
    Some(match name {
        "signing" | "digital signature" => Usage::Key(K::DigitalSignature),
        "content commitment" => Usage::Key(K::ContentCommitment),
        "key encipherment" => Usage::Key(K::KeyEncipherment),
        "key agreement" => Usage::Key(K::KeyAgreement),
        "data encipherment" => Usage::Key(K::DataEncipherment),
        "cert sign" => Usage::Key(K::KeyCertSign),
        "crl sign" => Usage::Key(K::CrlSign),
        "encipher only" => Usage::Key(K::EncipherOnly),
        "decipher only" => Usage::Key(K::DecipherOnly),
        "any" => Usage::Extended(0, E::Any),
        "server auth" => Usage::Extended(1, E::ServerAuth),
        "client auth" => Usage::Extended(2, E::ClientAuth),
        "code signing" => Usage::Extended(3, E::CodeSigning),
        "email protection" | "s/mime" => Usage::Extended(4, E::EmailProtection),
        "ipsec end system" => Usage::Extended(5, other(&[1, 3, 6, 1, 5, 5, 7, 3, 5])),
        "ipsec tunnel" => Usage::Extended(6, other(&[1, 3, 6, 1, 5, 5, 7, 3, 6])),
        "ipsec user" => Usage::Extended(7, other(&[1, 3, 6, 1, 5, 5, 7, 3, 7])),
        "timestamping" => Usage::Extended(8, E::TimeStamping),
        "ocsp signing" => Usage::Extended(9, E::OcspSigning),
        "microsoft sgc" => Usage::Extended(10, other(&[1, 3, 6, 1, 4, 1, 311, 10, 3, 3])),
        "netscape sgc" => Usage::Extended(11, other(&[2, 16, 840, 1, 113730, 4, 1])),
        _ => return None,
    })
}

/// `keyUsagesFromStrings`: the key usages and the extended ones (each once, in Go's order),
/// or upstream's error naming the unknown ones.
fn key_usages(
    usages: &[String],
) -> Result<(Vec<KeyUsagePurpose>, Vec<ExtendedKeyUsagePurpose>), PkiError> {
    let mut key = Vec::new();
    let mut extended: Vec<(u8, ExtendedKeyUsagePurpose)> = Vec::new();
    let mut unknown = Vec::new();
    for name in usages {
        match usage(name) {
            Some(Usage::Key(k)) if !key.contains(&k) => key.push(k),
            Some(Usage::Key(_)) => {}
            Some(Usage::Extended(order, e)) if !extended.iter().any(|(o, _)| *o == order) => {
                extended.push((order, e));
            }
            Some(Usage::Extended(..)) => {}
            None => unknown.push(pernode_core::goquote::quote(name)),
        }
    }
    if !unknown.is_empty() {
        return Err(PkiError::Invalid(format!(
            "unrecognized usage values: [{}]",
            unknown.join(" ")
        )));
    }
    extended.sort_by_key(|(order, _)| *order);
    Ok((key, extended.into_iter().map(|(_, e)| e).collect()))
}

/// The subject as Go writes a `pkix.Name` back (`ToRDNSequence`): the standard attributes in
/// its order, strings printable where they can be.
fn distinguished_name(name: &Name) -> Result<DistinguishedName, PkiError> {
    let custom = |oid: &[u64]| DnType::CustomDnType(oid.to_vec());
    let lists: [(&str, DnType, &Vec<String>); 7] = [
        ("C", DnType::CountryName, &name.country),
        ("O", DnType::OrganizationName, &name.organization),
        (
            "OU",
            DnType::OrganizationalUnitName,
            &name.organizational_unit,
        ),
        ("L", DnType::LocalityName, &name.locality),
        ("ST", DnType::StateOrProvinceName, &name.province),
        ("STREET", custom(&[2, 5, 4, 9]), &name.street_address),
        ("POSTALCODE", custom(&[2, 5, 4, 17]), &name.postal_code),
    ];
    let mut dn = DistinguishedName::new();
    for (label, ty, values) in lists {
        match values.as_slice() {
            [] => {}
            [value] => dn.push(ty, dn_value(value)),
            _ => {
                return Err(PkiError::Unsupported(format!(
                    "the subject has {} values of {label}; pernode signs subjects with one value of each attribute",
                    values.len()
                )));
            }
        }
    }
    if !name.serial_number.is_empty() {
        dn.push(custom(&[2, 5, 4, 5]), dn_value(&name.serial_number));
    }
    if !name.common_name.is_empty() {
        dn.push(DnType::CommonName, dn_value(&name.common_name));
    }
    Ok(dn)
}

/// A PrintableString when the text is one, else UTF8String, as Go's asn1 marshals strings.
fn dn_value(text: &str) -> DnValue {
    match rcgen::string::PrintableString::try_from(text) {
        Ok(printable) => DnValue::PrintableString(printable),
        Err(_) => DnValue::Utf8String(text.to_string()),
    }
}

/// The request's subject alternative names, as the certificate carries them.
fn subject_alt_names(request: &CertificateRequest) -> Result<Vec<SanType>, PkiError> {
    let ia5 = |s: &str| {
        rcgen::string::Ia5String::try_from(s)
            .map_err(|_| PkiError::Unsupported(format!("{s:?} is not an ASCII name")))
    };
    let mut names = Vec::new();
    for dns in &request.dns_names {
        names.push(SanType::DnsName(ia5(dns)?));
    }
    for email in &request.email_addresses {
        names.push(SanType::Rfc822Name(ia5(email)?));
    }
    for ip in &request.ip_addresses {
        names.push(SanType::IpAddress(*ip));
    }
    for uri in &request.uris {
        names.push(SanType::URI(ia5(uri)?));
    }
    Ok(names)
}

/// A random positive serial number below 2^128, as upstream's.
fn serial_number() -> Result<SerialNumber, PkiError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Invalid("no randomness for a serial number".into()))?;
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

/// `PermissiveSigningPolicy`'s validity: from `now` less the backdate, for `ttl` (less the
/// backdate unless the certificate is short-lived), cut at the CA's expiry.
pub fn validity(
    now: OffsetDateTime,
    ttl: Duration,
    ca_not_after: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
    let not_before = now - BACKDATE;
    let mut not_after = if ttl < SHORT {
        now + ttl
    } else {
        now + ttl.saturating_sub(BACKDATE)
    };
    if not_after >= ca_not_after {
        not_after = ca_not_after;
    }
    if not_before >= ca_not_after {
        return Err(PkiError::Invalid(format!(
            "the signer has expired: NotAfter={ca_not_after}"
        )));
    }
    if now >= ca_not_after {
        return Err(PkiError::Invalid(format!(
            "refusing to sign a certificate that expired in the past: NotAfter={ca_not_after}"
        )));
    }
    Ok((not_before, not_after))
}

impl ClusterCa {
    /// `request` signed for `ttl` with `usages` (the CSR's `spec.usages`): a PEM certificate.
    pub fn sign_request(
        &self,
        request: &CertificateRequest,
        usages: &[String],
        ttl: Duration,
    ) -> Result<String, PkiError> {
        self.sign_request_at(request, usages, ttl, OffsetDateTime::now_utc())
    }

    /// [`ClusterCa::sign_request`] as of `now`.
    pub fn sign_request_at(
        &self,
        request: &CertificateRequest,
        usages: &[String],
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<String, PkiError> {
        let (key_usages, extended_key_usages) = key_usages(usages)?;
        let (not_before, not_after) = validity(now, ttl, self.not_after)?;
        let mut params = CertificateParams::default();
        params.serial_number = Some(serial_number()?);
        params.distinguished_name = distinguished_name(&request.subject)?;
        params.subject_alt_names = subject_alt_names(request)?;
        params.key_usages = key_usages;
        params.extended_key_usages = extended_key_usages;
        params.is_ca = IsCa::ExplicitNoCa;
        params.not_before = not_before;
        params.not_after = not_after;
        params.use_authority_key_identifier_extension = true;
        let what = "signing a certificate request";
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(&request.public_key_info)
            .map_err(cert_err(what))?;
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .map_err(cert_err(what))?;
        Ok(cert.pem())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr::tests::request_pem;
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn usages(u: &[&str]) -> Vec<String> {
        u.iter().map(|s| s.to_string()).collect()
    }

    fn sign(ca: &ClusterCa, pem: &str, u: &[&str], ttl: Duration, now: OffsetDateTime) -> String {
        let request = crate::csr::parse(pem.as_bytes()).expect("request");
        ca.sign_request_at(&request, &usages(u), ttl, now)
            .expect("signed")
    }

    #[test]
    fn a_signed_node_certificate_authenticates_as_the_node() {
        let ca = ClusterCa::generate().expect("ca");
        let pem = request_pem("system:node:web-1", &["system:nodes"], &[], &[]);
        let now = OffsetDateTime::now_utc();
        let cert = sign(
            &ca,
            &pem,
            &["digital signature", "key encipherment", "client auth"],
            Duration::from_secs(3600),
            now,
        );
        let user = crate::x509::user_of_pem(&cert).expect("user");
        assert_eq!(user.name, "system:node:web-1");
        assert_eq!(user.groups, ["system:nodes"]);
        // Signed by the CA: the TLS check of client certificates accepts it.
        let serving = ca.issue_serving(&["localhost".into()]).expect("serving");
        let tls = crate::tls::server_tls(&serving.cert_pem, &serving.key_pem, &[&ca.cert_pem])
            .expect("tls");
        let chain = crate::tls::certificates(&cert).expect("der");
        let user = tls.client_certs.user(Some(&chain));
        assert_eq!(
            user.expect("valid").map(|u| u.name),
            Some("system:node:web-1".to_string())
        );
    }

    #[test]
    fn the_certificate_carries_the_usages_and_names_of_the_request() {
        let ca = ClusterCa::generate().expect("ca");
        let pem = request_pem(
            "system:node:a",
            &["system:nodes"],
            &["a.local"],
            &["10.0.0.1"],
        );
        let cert = sign(
            &ca,
            &pem,
            &["server auth", "digital signature", "client auth", "signing"],
            Duration::from_secs(3600),
            OffsetDateTime::now_utc(),
        );
        let (block, _) = crate::pem::decode(cert.as_bytes()).expect("pem");
        let (_, parsed) = X509Certificate::from_der(&block.bytes).expect("der");
        let ku = parsed.key_usage().expect("ok").expect("key usage").value;
        assert!(ku.digital_signature() && !ku.key_encipherment());
        let eku = parsed
            .extended_key_usage()
            .expect("ok")
            .expect("extended")
            .value;
        assert!(eku.server_auth && eku.client_auth && !eku.code_signing);
        let bc = parsed
            .basic_constraints()
            .expect("ok")
            .expect("basic constraints")
            .value;
        assert!(!bc.ca);
        let san = parsed
            .subject_alternative_name()
            .expect("ok")
            .expect("names")
            .value;
        assert_eq!(san.general_names.len(), 2);
        let unknown = crate::csr::parse(pem.as_bytes()).expect("request");
        let e = ca
            .sign_request(&unknown, &usages(&["client auth", "teleport"]), SHORT)
            .unwrap_err();
        assert_eq!(e.to_string(), r#"unrecognized usage values: ["teleport"]"#);
    }

    #[test]
    fn validity_is_backdated_and_cut_at_the_ca() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        let far = now + Duration::from_secs(10 * 365 * 86_400);
        // Short-lived: the end is not backdated.
        let (nb, na) = validity(now, Duration::from_secs(60), far).expect("valid");
        assert_eq!(now - nb, time::Duration::minutes(5));
        assert_eq!(na - now, time::Duration::seconds(60));
        // Long-lived: the end moves back with the start.
        let (_, na) = validity(now, Duration::from_secs(8760 * 3600), far).expect("valid");
        assert_eq!(
            na - now,
            time::Duration::hours(8760) - time::Duration::minutes(5)
        );
        // Never past the CA.
        let soon = now + Duration::from_secs(600);
        let (_, na) = validity(now, Duration::from_secs(3600), soon).expect("valid");
        assert_eq!(na, soon);
        // An expired CA signs nothing.
        let error = |ca_not_after| {
            validity(now, Duration::from_secs(60), ca_not_after)
                .unwrap_err()
                .to_string()
        };
        let long_ago = now - Duration::from_secs(600);
        assert!(error(long_ago).starts_with("the signer has expired: NotAfter="));
        let just_now = now - Duration::from_secs(1);
        assert!(error(just_now).starts_with("refusing to sign a certificate that expired"));
    }

    #[test]
    fn the_signed_validity_is_the_policys() {
        let ca = ClusterCa::generate().expect("ca");
        let pem = request_pem("jane", &["dev"], &[], &[]);
        let now = OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp())
            .expect("whole seconds");
        let cert = sign(&ca, &pem, &["client auth"], Duration::from_secs(600), now);
        let (block, _) = crate::pem::decode(cert.as_bytes()).expect("pem");
        let (_, parsed) = X509Certificate::from_der(&block.bytes).expect("der");
        let validity = parsed.validity();
        assert_eq!(validity.not_before.timestamp(), now.unix_timestamp() - 300);
        assert_eq!(validity.not_after.timestamp(), now.unix_timestamp() + 600);
    }

    #[test]
    fn repeated_subject_attributes_are_refused() {
        let ca = ClusterCa::generate().expect("ca");
        let pem = request_pem("jane", &["dev", "ops"], &[], &[]);
        let request = crate::csr::parse(pem.as_bytes()).expect("request");
        let e = ca
            .sign_request(&request, &usages(&["client auth"]), SHORT)
            .unwrap_err();
        assert!(e.to_string().contains("2 values of O"), "{e}");
    }
}
