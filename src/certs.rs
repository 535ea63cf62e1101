//! TLS material: the self-signed development certificate written on first
//! run, and loading of real certificates from PEM files.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

/// Names the dev certificate is valid for.
pub const DEV_CERT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
pub const DEV_CERT_FILE: &str = "cert.pem";
pub const DEV_KEY_FILE: &str = "key.pem";
/// Beside the dev certificate: the names it was made for, one per line, so
/// a later run asked for more names knows to make a new one.
pub const DEV_NAMES_FILE: &str = "cert-names.txt";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("could not generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a usable PEM file: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("a private key rustls cannot sign with: {0}")]
    Key(String),
}

/// A certificate chain and its private key, ready for rustls.
#[derive(Debug)]
pub struct TlsIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        TlsIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// A fresh self-signed certificate for localhost, in memory (tests use this).
pub fn generate_dev_identity() -> Result<(TlsIdentity, String, String), CertError> {
    generate_dev_identity_for(&[])
}

/// The localhost names and `extra` (host names or IP addresses, for LAN
/// play): the names a dev certificate is made for, deduplicated.
pub fn dev_cert_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = DEV_CERT_NAMES.iter().map(|n| n.to_string()).collect();
    for name in extra {
        let name = name.trim().to_string();
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// A fresh self-signed certificate for localhost and `extra`.
pub fn generate_dev_identity_for(
    extra: &[String],
) -> Result<(TlsIdentity, String, String), CertError> {
    let names = dev_cert_names(extra);
    let certified = rcgen::generate_simple_self_signed(names)?;
    let cert_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let identity = TlsIdentity {
        chain: vec![certified.cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into()),
    };
    Ok((identity, cert_pem, key_pem))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Returns the paths of the dev certificate and key in `dir`, writing a new
/// pair first if either is missing. The key is written readable by the
/// owner only.
pub fn ensure_dev_cert(dir: &Path) -> Result<(PathBuf, PathBuf, bool), CertError> {
    ensure_dev_cert_for(dir, &[])
}

/// [`ensure_dev_cert`] for localhost and `extra` names too: an existing
/// pair is kept while it was made for all of them, else a new pair
/// replaces it (clients that trusted the old one must copy the new one).
pub fn ensure_dev_cert_for(
    dir: &Path,
    extra: &[String],
) -> Result<(PathBuf, PathBuf, bool), CertError> {
    let cert_path = dir.join(DEV_CERT_FILE);
    let key_path = dir.join(DEV_KEY_FILE);
    let names_path = dir.join(DEV_NAMES_FILE);
    let wanted = dev_cert_names(extra);
    if cert_path.exists() && key_path.exists() {
        // A certificate from before the names file covers the localhost names.
        let covered: Vec<String> = match std::fs::read_to_string(&names_path) {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(_) => dev_cert_names(&[]),
        };
        if wanted.iter().all(|name| covered.contains(name)) {
            return Ok((cert_path, key_path, false));
        }
    }
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let (_, cert_pem, key_pem) = generate_dev_identity_for(extra)?;
    write_private(&key_path, key_pem.as_bytes())?;
    std::fs::write(&cert_path, cert_pem).map_err(io_error(&cert_path))?;
    std::fs::write(&names_path, wanted.join("\n") + "\n").map_err(io_error(&names_path))?;
    Ok((cert_path, key_path, true))
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), CertError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error(path))?;
    file.write_all(contents).map_err(io_error(path))
}

/// Loads every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let pem_error = |reason: String| CertError::Pem {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error("no CERTIFICATE section".into()));
    }
    Ok(certs)
}

/// Loads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| CertError::Pem {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

pub fn load_identity(cert: &Path, key: &Path) -> Result<TlsIdentity, CertError> {
    Ok(TlsIdentity {
        chain: load_certs(cert)?,
        key: load_key(key)?,
    })
}

/// Browsers accept a certificate no CA signed only through
/// `serverCertificateHashes`, and only an ECDSA P-256 one valid for at
/// most 14 days; 13 leaves a day for clocks that disagree.
pub const BROWSER_CERT_VALIDITY: Duration = Duration::from_secs(13 * 24 * 3600);
/// How long a browser certificate is presented before the next one is:
/// each is minted (and its hash published) one period before it is
/// presented, presented for one period, and expires three days after.
pub const BROWSER_CERT_ROTATION: Duration = Duration::from_secs(5 * 24 * 3600);

/// One browser dev certificate and its hash.
#[derive(Clone)]
struct BrowserCert {
    key: Arc<CertifiedKey>,
    sha256: [u8; 32],
    not_after: SystemTime,
}

impl BrowserCert {
    /// ECDSA P-256, for `names`, valid from a minute before `now` for
    /// [`BROWSER_CERT_VALIDITY`].
    fn generate(names: &[String], now: SystemTime) -> Result<Self, CertError> {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(names.to_vec())?;
        let not_before = now - Duration::from_secs(60);
        let not_after = not_before + BROWSER_CERT_VALIDITY;
        params.not_before = time::OffsetDateTime::from(not_before);
        params.not_after = time::OffsetDateTime::from(not_after);
        let cert = params.self_signed(&key_pair)?;
        let der = cert.der().clone();
        let sha256 = ring::digest::digest(&ring::digest::SHA256, &der);
        let private = PrivateKeyDer::Pkcs8(key_pair.serialize_der().into());
        let signing = rustls::crypto::ring::sign::any_ecdsa_type(&private)
            .map_err(|error| CertError::Key(error.to_string()))?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(sha256.as_ref());
        Ok(BrowserCert {
            key: Arc::new(CertifiedKey::new(vec![der], signing)),
            sha256: hash,
            not_after,
        })
    }
}

struct Rotation {
    presented: BrowserCert,
    presented_since: SystemTime,
    upcoming: BrowserCert,
}

/// The rotating self-signed certificates a dev server shows browsers
/// (native clients keep the dev certificate in `--cert-dir`). Pages pass
/// [`hashes`](Self::hashes) to `new WebTransport(url, {
/// serverCertificateHashes })`: the one presented now and the next, so a
/// page that fetched them before a rotation still connects after it.
pub struct BrowserCertificates {
    names: Vec<String>,
    rotation: RwLock<Rotation>,
}

impl std::fmt::Debug for BrowserCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserCertificates")
            .field("names", &self.names)
            .field("sha256", &self.hashes_hex())
            .finish()
    }
}

impl BrowserCertificates {
    /// Two certificates for `names` (the localhost names and the extra
    /// ones, as [`dev_cert_names`]): one presented from `now`, the next.
    pub fn new(names: Vec<String>, now: SystemTime) -> Result<Self, CertError> {
        let presented = BrowserCert::generate(&names, now)?;
        let upcoming = BrowserCert::generate(&names, now)?;
        Ok(BrowserCertificates {
            names,
            rotation: RwLock::new(Rotation {
                presented,
                presented_since: now,
                upcoming,
            }),
        })
    }

    /// After a rotation period: the next certificate is presented, and a
    /// new one minted to follow it. True if it rotated.
    pub fn rotate_if_due(&self, now: SystemTime) -> Result<bool, CertError> {
        let due = {
            let rotation = self.read();
            now.duration_since(rotation.presented_since)
                .is_ok_and(|age| age >= BROWSER_CERT_ROTATION)
        };
        if !due {
            return Ok(false);
        }
        let next = BrowserCert::generate(&self.names, now)?;
        let mut rotation = self
            .rotation
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let presented = std::mem::replace(&mut rotation.upcoming, next);
        rotation.presented = presented;
        rotation.presented_since = now;
        Ok(true)
    }

    /// SHA-256 of the certificate presented now, then of the next one.
    pub fn hashes(&self) -> [[u8; 32]; 2] {
        let rotation = self.read();
        [rotation.presented.sha256, rotation.upcoming.sha256]
    }

    /// [`hashes`](Self::hashes) in lowercase hex.
    pub fn hashes_hex(&self) -> [String; 2] {
        self.hashes().map(|hash| hex(&hash))
    }

    /// When the presented certificate expires.
    pub fn presented_not_after(&self) -> SystemTime {
        self.read().presented.not_after
    }

    fn presented(&self) -> Arc<CertifiedKey> {
        self.read().presented.key.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Rotation> {
        self.rotation.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Picks the certificate by the client's ALPN: a browser (offering `h3`
/// and not `native_alpn`) gets the rotating browser certificate, every
/// other client the server's own, as before.
#[derive(Debug)]
pub struct CertByAlpn {
    native: Arc<CertifiedKey>,
    native_alpn: Vec<u8>,
    browser: Arc<BrowserCertificates>,
}

impl CertByAlpn {
    pub fn new(
        native: &TlsIdentity,
        native_alpn: &[u8],
        browser: Arc<BrowserCertificates>,
    ) -> Result<Self, CertError> {
        let signing = rustls::crypto::ring::sign::any_supported_type(&native.key)
            .map_err(|error| CertError::Key(error.to_string()))?;
        Ok(CertByAlpn {
            native: Arc::new(CertifiedKey::new(native.chain.clone(), signing)),
            native_alpn: native_alpn.to_vec(),
            browser,
        })
    }
}

impl rustls::server::ResolvesServerCert for CertByAlpn {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let (mut h3, mut native) = (false, false);
        for alpn in hello.alpn().into_iter().flatten() {
            h3 |= alpn == b"h3";
            native |= alpn == self.native_alpn.as_slice();
        }
        Some(match h3 && !native {
            true => self.browser.presented(),
            false => self.native.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_certificates_are_p256_at_most_14_days_and_rotate_before_they_expire() {
        let start = SystemTime::now();
        let certs = BrowserCertificates::new(dev_cert_names(&[]), start).unwrap();
        let [first, second] = certs.hashes();
        assert_ne!(first, second);
        let der = certs.presented().cert[0].clone();
        let parsed = is_p256(&der);
        assert!(parsed, "ECDSA P-256 (id-ecPublicKey with prime256v1)");
        let validity = certs.presented_not_after().duration_since(start).unwrap();
        assert!(validity <= Duration::from_secs(14 * 24 * 3600));

        // Not yet: nothing changes.
        let almost = start + BROWSER_CERT_ROTATION - Duration::from_secs(1);
        assert!(!certs.rotate_if_due(almost).unwrap());
        assert_eq!(certs.hashes(), [first, second]);
        // Due: the published next one is presented, a new one follows.
        let due = start + BROWSER_CERT_ROTATION;
        assert!(certs.rotate_if_due(due).unwrap());
        let [now, next] = certs.hashes();
        assert_eq!(now, second, "a page holding the old list still connects");
        assert_ne!(next, first);
        assert_ne!(next, second);
        // Presented until the next rotation, and it expires after that.
        let next_rotation = due + BROWSER_CERT_ROTATION;
        assert!(certs.presented_not_after() > next_rotation);
    }

    /// Whether `der` holds an EC public key on P-256: the DER of the OIDs
    /// id-ecPublicKey and prime256v1 appear in its key info.
    fn is_p256(der: &[u8]) -> bool {
        const EC_PUBLIC_KEY: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        const PRIME256V1: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let has = |needle: &[u8]| der.windows(needle.len()).any(|window| window == needle);
        has(&EC_PUBLIC_KEY) && has(&PRIME256V1)
    }
}
