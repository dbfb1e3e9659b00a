//! Users from client certificates, as upstream's x509 authenticator (`CommonNameUserConversion`):
//! the subject's CommonName is the user name, each Organization a group. The certificate's
//! chain and validity are checked by the TLS handshake before this reads it.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::user::UserInfo;

/// The user a DER certificate names, or why it names none.
pub fn user_of_der(der: &[u8]) -> Result<UserInfo, String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("parsing the client certificate: {e}"))?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("");
    if name.is_empty() {
        return Err("the client certificate has no common name".to_string());
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(String::from)
        .collect::<Vec<_>>();
    Ok(UserInfo::new(name, groups))
}

/// The user a PEM certificate names.
pub fn user_of_pem(pem: &str) -> Result<UserInfo, String> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| format!("reading PEM: {e}"))?;
    user_of_der(&parsed.contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_no_user() {
        assert!(user_of_der(b"not a certificate").is_err());
        assert!(user_of_pem("nope").is_err());
    }
}
