//! TLS material: the self-signed development certificate written on first
//! run, and loading of real certificates from PEM files.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

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
