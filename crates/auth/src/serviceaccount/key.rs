//! The key pair that signs service-account tokens: ECDSA P-256 (ES256), generated once and
//! kept in a PEM file the owner alone may read, as kube-apiserver reads its
//! `--service-account-signing-key-file`; and the public keys tokens are verified with
//! (`--service-account-key-file`).
//!
//! A key is named by upstream's key id (the `kid` header of every token it signs): the
//! unpadded base64url SHA-256 of its public key's DER SubjectPublicKeyInfo, so that a verifier
//! holding several keys (a rotation) tries the right one and the id reveals nothing of the key.
//!
//! Files read: PKCS#8 `PRIVATE KEY` and SEC1 `EC PRIVATE KEY` (what `openssl ecparam -genkey`
//! writes) for the signing key; those and `PUBLIC KEY` (SubjectPublicKeyInfo) blocks for
//! verifying keys. RSA keys, which upstream also takes, are refused with a message saying so.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

/// The signing key's file name in the directory the server keeps it in.
pub const KEY_FILE: &str = "service-account.key";

const PKCS8_LABEL: &str = "PRIVATE KEY";
const SEC1_LABEL: &str = "EC PRIVATE KEY";
const SPKI_LABEL: &str = "PUBLIC KEY";

/// DER of a P-256 AlgorithmIdentifier: SEQUENCE { id-ecPublicKey, prime256v1 }.
const P256_ALGORITHM: [u8; 21] = [
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];

/// An uncompressed P-256 point: 0x04, x, y.
const POINT_LEN: usize = 65;

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl KeyError {
    fn io(path: &Path, source: std::io::Error) -> KeyError {
        KeyError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn in_file(self, path: &Path) -> KeyError {
        match self {
            KeyError::Invalid(why) => KeyError::Invalid(format!("{}: {why}", path.display())),
            io => io,
        }
    }
}

/// The private key tokens are signed with.
pub struct SigningKey {
    /// PKCS#8 DER, as ring (and jsonwebtoken) take it.
    pkcs8: Vec<u8>,
    public: VerifyingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random P-256 key.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Invalid("could not generate a P-256 key".into()))?;
        SigningKey::from_pkcs8_der(pkcs8.as_ref())
    }

    /// A key from its PKCS#8 DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                .map_err(|e| KeyError::Invalid(format!("not an ECDSA P-256 private key: {e}")))?;
        let public = VerifyingKey::from_point(pair.public_key().as_ref())?;
        Ok(SigningKey {
            pkcs8: der.to_vec(),
            public,
        })
    }

    /// The first private key of a PEM text (`PRIVATE KEY` or `EC PRIVATE KEY`).
    pub fn from_pem(text: &str) -> Result<SigningKey, KeyError> {
        for block in pem_blocks(text)? {
            match block.label.as_str() {
                PKCS8_LABEL => return SigningKey::from_pkcs8_der(&block.der),
                SEC1_LABEL => return SigningKey::from_pkcs8_der(&sec1_to_pkcs8(&block.der)),
                "RSA PRIVATE KEY" => return Err(rsa_refused()),
                _ => {}
            }
        }
        Err(KeyError::Invalid(
            "data does not contain a private key (PRIVATE KEY or EC PRIVATE KEY)".into(),
        ))
    }

    /// The key in a PEM file (kube-apiserver's `--service-account-signing-key-file`).
    pub fn from_file(path: &Path) -> Result<SigningKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::io(path, e))?;
        SigningKey::from_pem(&text).map_err(|e| e.in_file(path))
    }

    /// The key kept in `dir`: [`KEY_FILE`] is read if it exists, else a new key is generated
    /// and written there (mode 0600, replaced atomically), so that tokens survive a restart.
    /// A file that exists but holds no usable key is an error, never overwritten.
    pub fn load_or_generate(dir: &Path) -> Result<SigningKey, KeyError> {
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => return SigningKey::from_pem(&text).map_err(|e| e.in_file(&path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(KeyError::io(&path, e)),
        }
        std::fs::create_dir_all(dir).map_err(|e| KeyError::io(dir, e))?;
        let key = SigningKey::generate()?;
        write_private(&path, key.to_pem().as_bytes())?;
        Ok(key)
    }

    /// The key as a PKCS#8 `PRIVATE KEY` PEM block.
    pub fn to_pem(&self) -> String {
        to_pem(PKCS8_LABEL, &self.pkcs8)
    }

    /// The public half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// Upstream's key id of this key.
    pub fn key_id(&self) -> &str {
        &self.public.key_id
    }

    /// PKCS#8 DER, for signing.
    pub(crate) fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }
}

/// A public key tokens are verified with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyingKey {
    /// The uncompressed point (65 bytes), as ring verifies with it.
    point: Vec<u8>,
    key_id: String,
}

impl VerifyingKey {
    fn from_point(point: &[u8]) -> Result<VerifyingKey, KeyError> {
        if point.len() != POINT_LEN || point.first() != Some(&0x04) {
            return Err(KeyError::Invalid(
                "not an uncompressed ECDSA P-256 public key".into(),
            ));
        }
        let spki = spki_der(point);
        let digest = ring::digest::digest(&ring::digest::SHA256, &spki);
        Ok(VerifyingKey {
            point: point.to_vec(),
            key_id: URL_SAFE_NO_PAD.encode(digest.as_ref()),
        })
    }

    /// A public key from its DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<VerifyingKey, KeyError> {
        match der.strip_prefix(spki_prefix().as_slice()) {
            Some(point) => VerifyingKey::from_point(point),
            None => Err(KeyError::Invalid(
                "only ECDSA P-256 public keys are supported".into(),
            )),
        }
    }

    /// Every key of a PEM text: public keys (`PUBLIC KEY`) and the public halves of private
    /// keys, as upstream's `--service-account-key-file` takes either.
    pub fn from_pem(text: &str) -> Result<Vec<VerifyingKey>, KeyError> {
        let mut keys = Vec::new();
        for block in pem_blocks(text)? {
            let key = match block.label.as_str() {
                SPKI_LABEL => VerifyingKey::from_spki_der(&block.der)?,
                PKCS8_LABEL => SigningKey::from_pkcs8_der(&block.der)?.public,
                SEC1_LABEL => SigningKey::from_pkcs8_der(&sec1_to_pkcs8(&block.der))?.public,
                "RSA PRIVATE KEY" | "RSA PUBLIC KEY" => return Err(rsa_refused()),
                _ => continue,
            };
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(KeyError::Invalid(
                "data does not contain any valid ECDSA public keys".into(),
            ));
        }
        Ok(keys)
    }

    /// The keys in a PEM file (kube-apiserver's `--service-account-key-file`).
    pub fn from_file(path: &Path) -> Result<Vec<VerifyingKey>, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::io(path, e))?;
        VerifyingKey::from_pem(&text).map_err(|e| e.in_file(path))
    }

    /// Upstream's key id of this key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key as a `PUBLIC KEY` PEM block.
    pub fn to_pem(&self) -> String {
        to_pem(SPKI_LABEL, &spki_der(&self.point))
    }

    /// The uncompressed point, for verifying.
    pub(crate) fn point(&self) -> &[u8] {
        &self.point
    }
}

fn rsa_refused() -> KeyError {
    KeyError::Invalid("RSA keys are not supported: use an ECDSA P-256 key".into())
}

/// The DER of a P-256 SubjectPublicKeyInfo before its 65-byte point: SEQUENCE { algorithm,
/// BIT STRING (no unused bits) }.
fn spki_prefix() -> Vec<u8> {
    let mut out = vec![0x30, 0x59];
    out.extend_from_slice(&P256_ALGORITHM);
    out.extend_from_slice(&[0x03, 0x42, 0x00]);
    out
}

/// A P-256 point's SubjectPublicKeyInfo.
fn spki_der(point: &[u8]) -> Vec<u8> {
    let mut out = spki_prefix();
    out.extend_from_slice(point);
    out
}

/// Wraps a SEC1 ECPrivateKey in PKCS#8 v1 (ring reads only PKCS#8): SEQUENCE { version 0,
/// the P-256 algorithm, OCTET STRING { the SEC1 key } }. ring then checks the key's curve.
fn sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(&P256_ALGORITHM);
    body.push(0x04);
    body.extend_from_slice(&der_len(sec1.len()));
    body.extend_from_slice(sec1);
    let mut out = vec![0x30];
    out.extend_from_slice(&der_len(body.len()));
    out.extend_from_slice(&body);
    out
}

/// A DER length (definite form; keys are far below 64 KiB).
fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..0x80 => vec![n as u8],
        0x80..0x100 => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

struct PemBlock {
    label: String,
    der: Vec<u8>,
}

/// The blocks of a PEM text, in order; text outside blocks is ignored, as Go's `pem.Decode`
/// ignores it.
fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, KeyError> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            if line == end {
                closed = true;
                break;
            }
            if line.contains(':') {
                return Err(KeyError::Invalid(format!(
                    "PEM block {label} has headers (an encrypted key?): not supported"
                )));
            }
            body.push_str(line);
        }
        if !closed {
            return Err(KeyError::Invalid(format!(
                "PEM block {label} is not closed"
            )));
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|e| KeyError::Invalid(format!("PEM block {label}: {e}")))?;
        blocks.push(PemBlock {
            label: label.to_string(),
            der,
        });
    }
    Ok(blocks)
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes `bytes` to `path` readable by the owner alone: a temporary file in the same
/// directory (0600 from its creation), synced, then renamed over `path`.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("key.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| KeyError::io(&tmp, e))?;
    // An existing temporary file keeps its mode through `open`: set it.
    std::fs::set_permissions(
        &tmp,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .map_err(|e| KeyError::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| KeyError::io(&tmp, e))?;
    file.sync_all().map_err(|e| KeyError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| KeyError::io(path, e))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_round_trips_through_pem() {
        let key = SigningKey::generate().expect("key");
        let pem = key.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        let again = SigningKey::from_pem(&pem).expect("parse");
        assert_eq!(again.verifying_key(), key.verifying_key());
        assert_eq!(again.key_id(), key.key_id());
        // The key id is upstream's: base64url SHA-256 of the SubjectPublicKeyInfo, 43 chars.
        assert_eq!(key.key_id().len(), 43);
        let public = VerifyingKey::from_pem(&key.verifying_key().to_pem()).expect("public");
        assert_eq!(public, vec![key.verifying_key().clone()]);
    }

    #[test]
    fn the_key_is_kept_owner_only_and_loaded_again() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let first = SigningKey::load_or_generate(dir.path()).expect("generate");
        let path = dir.path().join(KEY_FILE);
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = SigningKey::load_or_generate(dir.path()).expect("load");
        assert_eq!(second.key_id(), first.key_id());
        assert_eq!(
            SigningKey::from_file(&path).expect("file").key_id(),
            first.key_id()
        );
        // A damaged file is an error, not replaced by a new key.
        std::fs::write(&path, "garbage").expect("write");
        let e = SigningKey::load_or_generate(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("does not contain a private key"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "garbage");
    }

    #[test]
    fn sec1_keys_as_openssl_writes_them_are_read() {
        // A throwaway key from `openssl ecparam -name prime256v1 -genkey -noout` (SEC1 with the
        // curve and the public key), and its public half from `openssl pkey -pubout`.
        let sec1 = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEICWIvKV4Tk+Eip9XnuQ8dLjfzl4NYk919YPBQwuQJh1SoAoGCCqGSM49
AwEHoUQDQgAEphZwjknsiIUiYJrwzm5qWF+o/oC6ncnbejjCsym6NOf1tDNvZVLm
9eHS4tBj0cUwEw5wNM4erJpC6G3mwtRTjQ==
-----END EC PRIVATE KEY-----
";
        let public = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEphZwjknsiIUiYJrwzm5qWF+o/oC6
ncnbejjCsym6NOf1tDNvZVLm9eHS4tBj0cUwEw5wNM4erJpC6G3mwtRTjQ==
-----END PUBLIC KEY-----
";
        let key = SigningKey::from_pem(sec1).expect("sec1");
        let keys = VerifyingKey::from_pem(public).expect("spki");
        assert_eq!(keys, vec![key.verifying_key().clone()]);
        assert_eq!(key.verifying_key().to_pem(), public);
    }

    #[test]
    fn unusable_pem_is_refused_with_a_reason() {
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n";
        assert!(
            SigningKey::from_pem(rsa)
                .unwrap_err()
                .to_string()
                .contains("RSA keys are not supported")
        );
        let open = "-----BEGIN PRIVATE KEY-----\nMIIB\n";
        assert!(
            SigningKey::from_pem(open)
                .unwrap_err()
                .to_string()
                .contains("not closed")
        );
        assert!(
            VerifyingKey::from_pem("nothing here")
                .unwrap_err()
                .to_string()
                .contains("does not contain any valid ECDSA public keys")
        );
        let bad = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert!(
            VerifyingKey::from_pem(bad)
                .unwrap_err()
                .to_string()
                .contains("only ECDSA P-256")
        );
    }
}
