//! Is a server configuration safe to run, and what must the operator be
//! warned about? [`check`] decides without any I/O, so every rule is
//! unit-tested; `partyline serve` applies it before it binds anything.
//! [`read_secret_file`] reads a token secret from a private file, and
//! [`check_secret_length`] refuses one short enough to guess.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a server accepting dev identities off loopback repeats its
/// warning, so it stays in the logs an operator looks at.
pub const DEV_IDENTITY_REMINDER: Duration = Duration::from_secs(600);

/// The fewest bytes a token secret, a previous token secret or a match
/// secret may have. Every player holds a token, so a short secret can be
/// guessed offline, against that token, as fast as a machine can compute
/// HMACs; a guessed secret mints any identity. 32 random bytes (or their
/// 44 characters of base64) are beyond any search.
pub const MIN_SECRET_BYTES: usize = 32;

/// The command the refusal of a short secret suggests: 32 random bytes as
/// text (base64 never ends in a newline, which a secret file loses, and
/// also fits an environment variable), in a file only its owner can read.
pub const MAKE_A_SECRET: &str = "(umask 077; head -c 32 /dev/urandom | base64 > secret)";

/// Which secret a refusal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretRole {
    /// The secret identity tokens are signed with.
    Token,
    /// The secret of a rotation's previous tokens.
    PreviousToken,
    /// A match secret the operator gave (`--match-secret-file`).
    Match,
    /// The key of QUIC stateless resets (`--reset-key-file`).
    Reset,
}

impl SecretRole {
    /// What someone who guessed this secret could do.
    fn what_a_guess_gives(self) -> &'static str {
        match self {
            SecretRole::Token | SecretRole::PreviousToken => "mint any identity",
            SecretRole::Match => "sign any match",
            SecretRole::Reset => "end any player's connection",
        }
    }
}

impl std::fmt::Display for SecretRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretRole::Token => "token secret",
            SecretRole::PreviousToken => "previous token secret",
            SecretRole::Match => "match secret",
            SecretRole::Reset => "reset key",
        })
    }
}

/// A secret under [`MIN_SECRET_BYTES`]. Says its length, never the secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing the {role}: it is {length} bytes, and must be at least {MIN_SECRET_BYTES}, since \
     anyone holding one token could guess a shorter one offline and then {}. Make a random one \
     with `{MAKE_A_SECRET}` (44 characters, in a file only its owner can read: mode 600).",
    role.what_a_guess_gives()
)]
pub struct ShortSecret {
    pub role: SecretRole,
    pub length: usize,
}

/// Refuses a secret shorter than [`MIN_SECRET_BYTES`]; measured in bytes,
/// as it is keyed (a secret given as text: the bytes of its UTF-8).
pub fn check_secret_length(role: SecretRole, secret: &[u8]) -> Result<(), ShortSecret> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(ShortSecret {
            role,
            length: secret.len(),
        });
    }
    Ok(())
}

/// Secrets that may not be used together, or one too short.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretRefusal {
    #[error(transparent)]
    Short(#[from] ShortSecret),
    /// The match secret given is a token secret (current or previous).
    #[error(
        "refusing the match secret: it is the {0}, and a game server that holds it to check \
         match tokens could mint identity tokens. Give match tokens a secret of their own, or \
         none: the match key is then derived one way from the token secret."
    )]
    MatchIsTokenSecret(SecretRole),
}

/// The secrets of a server, checked together: each at least
/// [`MIN_SECRET_BYTES`], and a match secret given is no token secret.
pub fn check_secrets(
    token: Option<&[u8]>,
    previous: Option<&[u8]>,
    match_secret: Option<&[u8]>,
) -> Result<(), SecretRefusal> {
    let given = [
        (SecretRole::Token, token),
        (SecretRole::PreviousToken, previous),
        (SecretRole::Match, match_secret),
    ];
    for (role, secret) in given {
        if let Some(secret) = secret {
            check_secret_length(role, secret)?;
        }
    }
    if let Some(match_secret) = match_secret {
        for (role, secret) in [
            (SecretRole::Token, token),
            (SecretRole::PreviousToken, previous),
        ] {
            if secret == Some(match_secret) {
                return Err(SecretRefusal::MatchIsTokenSecret(role));
            }
        }
    }
    Ok(())
}

/// Where the token secret came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// No secret: dev identities.
    None,
    /// `--token-secret` in argv, readable by any local user through `ps`.
    CommandLine,
    /// `PARTYLINE_TOKEN_SECRET`.
    Environment,
    /// `--token-secret-file`.
    File,
}

/// What a configuration exposes, as far as security goes.
#[derive(Clone, Debug)]
pub struct Exposure {
    /// The QUIC listen address.
    pub listen: SocketAddr,
    /// The metrics endpoint, if any.
    pub metrics: Option<SocketAddr>,
    /// Where the token secret came from (`None`: dev identities).
    pub secret: SecretSource,
    /// A previous secret was given for a rotation.
    pub previous_secret: bool,
    /// `--allow-dev-identities`.
    pub allow_dev_identities: bool,
    /// `--allow-public-metrics`.
    pub allow_public_metrics: bool,
    /// The admin API, if any.
    pub admin: Option<SocketAddr>,
    /// `--allow-public-admin`.
    pub allow_public_admin: bool,
    /// The self-signed development certificate is served (no `--cert`).
    pub dev_certificate: bool,
}

/// A configuration the server refuses to start with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Dev identities on a non-loopback address without the explicit flag.
    #[error(
        "refusing to serve dev identities on {listen}: anyone on the network could claim any \
         user id. Pass --token-secret-file PATH, or --allow-dev-identities to accept that risk."
    )]
    DevIdentitiesOffLoopback { listen: SocketAddr },
    /// Metrics on a non-loopback address without the explicit flag.
    #[error(
        "refusing to serve metrics on {addr}: anyone who can reach it could read the server's \
         load and traffic. Bind --metrics to a loopback address (e.g. 127.0.0.1:9350), or pass \
         --allow-public-metrics to accept that risk."
    )]
    PublicMetrics { addr: SocketAddr },
    /// The admin API on a non-loopback address without the explicit flag.
    #[error(
        "refusing to serve the admin API on {addr}: it is plain HTTP, so its bearer token and \
         everything it shows cross the network in clear. Bind --admin to a loopback address \
         (e.g. 127.0.0.1:7351) and reach it through an SSH tunnel or a TLS proxy, or pass \
         --allow-public-admin to accept that risk."
    )]
    PublicAdmin { addr: SocketAddr },
    /// A previous secret alone would verify old tokens only.
    #[error(
        "--token-secret-previous-file is for a rotation: pass the current secret too, with \
         --token-secret-file PATH."
    )]
    PreviousWithoutCurrent,
}

/// A risk the operator accepted, or probably did not mean; logged at start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// `--allow-dev-identities` on a non-loopback address.
    #[error(
        "serving dev identities on {listen} (--allow-dev-identities): anyone on the network can \
         claim any user id. Pass --token-secret-file PATH to require signed tokens."
    )]
    DevIdentitiesOffLoopback { listen: SocketAddr },
    /// The self-signed development certificate on a non-loopback address.
    #[error(
        "serving the self-signed development certificate on {listen}: it names only localhost, \
         127.0.0.1 and ::1, and every client must be given it to trust. Pass a real \
         certificate with --cert PATH --key PATH."
    )]
    DevCertificateOffLoopback { listen: SocketAddr },
    /// `--allow-public-metrics` with metrics on a non-loopback address.
    #[error(
        "serving metrics on {addr} (--allow-public-metrics): anyone who can reach it can read \
         them."
    )]
    PublicMetrics { addr: SocketAddr },
    /// `--allow-public-admin` with the admin API on a non-loopback address.
    #[error(
        "serving the admin API on {addr} (--allow-public-admin): it is plain HTTP, so its \
         bearer token crosses the network in clear; put a TLS proxy in front of it."
    )]
    PublicAdmin { addr: SocketAddr },
    /// A secret in argv (`--token-secret`; `partyline token --secret`).
    #[error(
        "the token secret was given on the command line, where any user of this machine can \
         read it (ps, /proc). Put it in a file only you can read and pass {file_flag} PATH."
    )]
    SecretOnCommandLine {
        /// The flag that reads it from a file instead.
        file_flag: &'static str,
    },
}

/// Loopback only: 127.0.0.0/8, ::1, and 127.x mapped into IPv6. The
/// unspecified addresses (0.0.0.0, ::) listen on every interface.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Refuses an unsafe configuration, or lists what to warn about at start.
pub fn check(exposure: &Exposure) -> Result<Vec<Warning>, Refusal> {
    let listen = exposure.listen;
    let public = !is_loopback(listen.ip());
    let mut warnings = Vec::new();
    if exposure.secret == SecretSource::None {
        if exposure.previous_secret {
            return Err(Refusal::PreviousWithoutCurrent);
        }
        if public {
            if !exposure.allow_dev_identities {
                return Err(Refusal::DevIdentitiesOffLoopback { listen });
            }
            warnings.push(Warning::DevIdentitiesOffLoopback { listen });
        }
    }
    if let Some(addr) = exposure.metrics.filter(|addr| !is_loopback(addr.ip())) {
        if !exposure.allow_public_metrics {
            return Err(Refusal::PublicMetrics { addr });
        }
        warnings.push(Warning::PublicMetrics { addr });
    }
    if let Some(addr) = exposure.admin.filter(|addr| !is_loopback(addr.ip())) {
        if !exposure.allow_public_admin {
            return Err(Refusal::PublicAdmin { addr });
        }
        warnings.push(Warning::PublicAdmin { addr });
    }
    if public && exposure.dev_certificate {
        warnings.push(Warning::DevCertificateOffLoopback { listen });
    }
    if exposure.secret == SecretSource::CommandLine {
        warnings.push(Warning::SecretOnCommandLine {
            file_flag: "--token-secret-file",
        });
    }
    Ok(warnings)
}

/// Why a secret file was not used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// Missing, unreadable, or not a file.
    #[error("could not read the token secret from {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Group or others may read or write it.
    #[error(
        "refusing the token secret in {}: group or others can access it (mode {mode:03o}). Run \
         `chmod 600 {}` so that only the server's user can read it.",
        path.display(),
        path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
    /// Nothing but a newline, or nothing at all.
    #[error(
        "refusing the token secret in {}: the file is empty. Write the secret into it (a \
         trailing newline is ignored).",
        path.display()
    )]
    Empty { path: PathBuf },
}

/// Reads a token secret from `path`: refused if group or others have any
/// access to the file, or if it is empty; trailing newlines are dropped (an
/// editor or `echo` adds one).
pub fn read_secret_file(path: &Path) -> Result<Vec<u8>, SecretFileError> {
    use std::io::Read;
    let read_error = |source| SecretFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    // Mode checked on the opened file, so it is the file that is read.
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(read_error)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretFileError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let mut secret = Vec::new();
    file.read_to_end(&mut secret).map_err(read_error)?;
    while secret.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
        secret.pop();
    }
    if secret.is_empty() {
        return Err(SecretFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposure(listen: &str) -> Exposure {
        Exposure {
            listen: listen.parse().unwrap(),
            metrics: None,
            secret: SecretSource::None,
            previous_secret: false,
            allow_dev_identities: false,
            allow_public_metrics: false,
            admin: None,
            allow_public_admin: false,
            dev_certificate: true,
        }
    }

    #[test]
    fn loopback_addresses_are_told_apart_from_the_rest() {
        for loopback in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(loopback.parse().unwrap()), "{loopback}");
        }
        for public in [
            "0.0.0.0",
            "::",
            "10.0.0.5",
            "192.168.1.2",
            "::ffff:10.0.0.5",
        ] {
            assert!(!is_loopback(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn dev_mode_on_loopback_is_quiet() {
        assert_eq!(check(&exposure("127.0.0.1:7350")), Ok(vec![]));
        assert_eq!(check(&exposure("[::1]:7350")), Ok(vec![]));
    }

    #[test]
    fn dev_identities_off_loopback_are_refused_unless_allowed() {
        let mut config = exposure("0.0.0.0:7350");
        config.dev_certificate = false;
        let refusal = check(&config).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::DevIdentitiesOffLoopback {
                listen: config.listen
            }
        );
        assert_eq!(
            refusal.to_string(),
            "refusing to serve dev identities on 0.0.0.0:7350: anyone on the network could claim \
             any user id. Pass --token-secret-file PATH, or --allow-dev-identities to accept \
             that risk."
        );

        config.allow_dev_identities = true;
        assert_eq!(
            check(&config),
            Ok(vec![Warning::DevIdentitiesOffLoopback {
                listen: config.listen
            }])
        );
    }

    #[test]
    fn a_secret_makes_a_public_address_safe() {
        let mut config = exposure("10.0.0.5:7350");
        config.secret = SecretSource::File;
        config.dev_certificate = false;
        assert_eq!(check(&config), Ok(vec![]));
        config.secret = SecretSource::Environment;
        assert_eq!(check(&config), Ok(vec![]));
    }

    #[test]
    fn the_dev_certificate_off_loopback_warns_how_to_pass_a_real_one() {
        let mut config = exposure("0.0.0.0:7350");
        config.secret = SecretSource::File;
        let warnings = check(&config).unwrap();
        assert_eq!(
            warnings,
            vec![Warning::DevCertificateOffLoopback {
                listen: config.listen
            }]
        );
        let text = warnings[0].to_string();
        assert!(text.contains("--cert PATH --key PATH"), "{text}");
    }

    #[test]
    fn public_metrics_are_refused_unless_allowed() {
        let mut config = exposure("127.0.0.1:7350");
        config.metrics = Some("127.0.0.1:9350".parse().unwrap());
        assert_eq!(check(&config), Ok(vec![]));

        let addr: SocketAddr = "0.0.0.0:9350".parse().unwrap();
        config.metrics = Some(addr);
        let refusal = check(&config).unwrap_err();
        assert_eq!(refusal, Refusal::PublicMetrics { addr });
        assert!(refusal.to_string().contains("--allow-public-metrics"));

        config.allow_public_metrics = true;
        assert_eq!(check(&config), Ok(vec![Warning::PublicMetrics { addr }]));
    }

    #[test]
    fn a_public_admin_api_is_refused_unless_allowed() {
        let mut config = exposure("127.0.0.1:7350");
        config.admin = Some("127.0.0.1:7351".parse().unwrap());
        assert_eq!(check(&config), Ok(vec![]));
        config.admin = Some("[::1]:7351".parse().unwrap());
        assert_eq!(check(&config), Ok(vec![]));

        let addr: SocketAddr = "0.0.0.0:7351".parse().unwrap();
        config.admin = Some(addr);
        let refusal = check(&config).unwrap_err();
        assert_eq!(refusal, Refusal::PublicAdmin { addr });
        let text = refusal.to_string();
        assert!(text.contains("--allow-public-admin"), "{text}");
        assert!(text.contains("in clear"), "{text}");
        // Allowing public metrics does not allow a public admin API.
        config.allow_public_metrics = true;
        assert_eq!(check(&config), Err(Refusal::PublicAdmin { addr }));

        config.allow_public_admin = true;
        assert_eq!(check(&config), Ok(vec![Warning::PublicAdmin { addr }]));
    }

    #[test]
    fn a_secret_in_argv_warns_and_a_lone_previous_secret_is_refused() {
        let mut config = exposure("127.0.0.1:7350");
        config.secret = SecretSource::CommandLine;
        assert_eq!(
            check(&config),
            Ok(vec![Warning::SecretOnCommandLine {
                file_flag: "--token-secret-file"
            }])
        );

        config.secret = SecretSource::None;
        config.previous_secret = true;
        assert_eq!(check(&config), Err(Refusal::PreviousWithoutCurrent));
    }

    #[test]
    fn a_secret_under_32_bytes_is_refused_with_how_to_make_one() {
        for role in [
            SecretRole::Token,
            SecretRole::PreviousToken,
            SecretRole::Match,
        ] {
            assert_eq!(check_secret_length(role, &[7; 32]), Ok(()));
            assert_eq!(check_secret_length(role, &[7; 100]), Ok(()));
            let refusal = check_secret_length(role, &[7; 31]).unwrap_err();
            assert_eq!(refusal, ShortSecret { role, length: 31 });
            let text = refusal.to_string();
            assert!(
                text.contains(&format!("refusing the {role}: it is 31 bytes")),
                "{text}"
            );
            assert!(text.contains("head -c 32 /dev/urandom"), "{text}");
            assert!(text.contains("mode 600"), "{text}");
        }
        // Text is measured in bytes: 16 two-byte characters are 32 bytes.
        assert_eq!(
            check_secret_length(SecretRole::Token, "é".repeat(16).as_bytes()),
            Ok(())
        );
        assert!(check_secret_length(SecretRole::Token, b"").is_err());
    }

    #[test]
    fn a_match_secret_that_is_a_token_secret_is_refused() {
        let token = [1u8; 32];
        let previous = [2u8; 40];
        let other = [3u8; 32];
        assert_eq!(check_secrets(None, None, None), Ok(()));
        assert_eq!(
            check_secrets(Some(&token), Some(&previous), Some(&other)),
            Ok(())
        );
        assert_eq!(
            check_secrets(Some(&token), None, Some(&token)),
            Err(SecretRefusal::MatchIsTokenSecret(SecretRole::Token))
        );
        let refusal = check_secrets(Some(&token), Some(&previous), Some(&previous)).unwrap_err();
        assert_eq!(
            refusal,
            SecretRefusal::MatchIsTokenSecret(SecretRole::PreviousToken)
        );
        assert!(refusal.to_string().contains("could mint identity tokens"));
        // Each is measured, the previous and the match secret too.
        for (token, previous, match_secret, role) in [
            (&[1u8; 31][..], None, None, SecretRole::Token),
            (
                &token[..],
                Some(&[2u8; 3][..]),
                None,
                SecretRole::PreviousToken,
            ),
            (&token[..], None, Some(&[3u8; 31][..]), SecretRole::Match),
        ] {
            assert!(matches!(
                check_secrets(Some(token), previous, match_secret),
                Err(SecretRefusal::Short(ShortSecret { role: r, .. })) if r == role
            ));
        }
        // A dev server's own match secret is checked as any other.
        assert!(check_secrets(None, None, Some(b"short")).is_err());
    }

    #[cfg(unix)]
    /// A fresh file with `contents` and `mode` in a directory of its own.
    fn secret_file(name: &str, contents: &[u8], mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("partyline-secret-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[cfg(unix)]
    #[test]
    fn a_private_secret_file_is_read_without_its_trailing_newline() {
        let path = secret_file("private", b"s3cret\n", 0o600);
        assert_eq!(read_secret_file(&path).unwrap(), b"s3cret");
        let path = secret_file("owner-only", b"s3cret\r\n", 0o400);
        assert_eq!(read_secret_file(&path).unwrap(), b"s3cret");
    }

    #[cfg(unix)]
    #[test]
    fn open_empty_and_missing_secret_files_are_refused() {
        for mode in [0o644, 0o640, 0o604, 0o660] {
            let path = secret_file("open", b"s3cret\n", mode);
            let error = read_secret_file(&path).unwrap_err();
            assert!(
                matches!(error, SecretFileError::TooOpen { mode: m, .. } if m == mode),
                "{mode:o}: {error}"
            );
            assert!(error.to_string().contains("chmod 600"), "{error}");
        }
        let path = secret_file("empty", b"\n", 0o600);
        assert!(matches!(
            read_secret_file(&path),
            Err(SecretFileError::Empty { .. })
        ));
        let missing = path.with_file_name("missing");
        assert!(matches!(
            read_secret_file(&missing),
            Err(SecretFileError::Read { .. })
        ));
    }
}
