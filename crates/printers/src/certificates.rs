//! certificates.k8s.io CertificateSigningRequest rows: a port of upstream's
//! `printCertificateSigningRequest` and `extractCSRStatus`.

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::model::{Head, Meta, RenderError, Row, lean_object, or_none, s};
use pernode_core::duration::{age_since, human_duration};

lean_object! {
    struct CertificateSigningRequest<'a> {
        #[serde(default)]
        spec: Option<CsrSpec>,
        #[serde(default)]
        status: Option<CsrStatus>,
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CsrSpec {
    signer_name: Option<String>,
    username: Option<String>,
    expiration_seconds: Option<i64>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CsrStatus {
    conditions: Option<Vec<CsrCondition>>,
    /// Base64 PEM; only whether it is empty matters.
    certificate: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CsrCondition {
    #[serde(rename = "type")]
    type_: Option<String>,
}

/// `extractCSRStatus`: Denied over Approved over Pending, then `,Failed` and `,Issued`.
fn condition(status: &CsrStatus, issued: bool) -> String {
    let has = |t: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_.as_deref() == Some(t))
    };
    let mut text = if has("Denied") {
        "Denied".to_string()
    } else if has("Approved") {
        "Approved".to_string()
    } else {
        "Pending".to_string()
    };
    if has("Failed") {
        text.push_str(",Failed");
    }
    if issued {
        text.push_str(",Issued");
    }
    text
}

pub(crate) fn render_certificate_signing_request(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let csr: CertificateSigningRequest<'_> = serde_json::from_slice(bytes)?;
    let head = csr.head();
    let meta = Meta::parse(head.metadata)?;
    let spec = csr.spec.unwrap_or_default();
    let status = csr.status.unwrap_or_default();
    let issued = !s(&status.certificate).is_empty();
    let requested = match spec.expiration_seconds {
        Some(seconds) => human_duration(std::time::Duration::from_secs(
            u64::try_from(seconds).unwrap_or(0),
        )),
        None => "<none>".to_string(),
    };
    let row = Row {
        cells: vec![
            meta.name().into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
            or_none(s(&spec.signer_name)).into(),
            s(&spec.username).into(),
            requested.into(),
            condition(&status, issued).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}
