//! Browsers: a WebTransport session (HTTP/3 extended CONNECT, RFC 9220) on
//! a QUIC connection whose ALPN is `h3`, on the same endpoint and port as
//! native clients. What this does: HTTP/3's SETTINGS, the CONNECT request
//! (its path and its page's origin checked), and the session's first
//! bidirectional stream, which becomes the control stream once its
//! WebTransport header is read. From there the session is served by the
//! same code as a native one (`super::connection`).

use super::config::WebTransportConfig;
use super::transport::ClientConnection;
use quinn::{Connection, RecvStream, SendStream, VarInt};
use std::sync::Arc;
use web_transport_quinn::http::StatusCode;

/// The one path a browser connects to: `https://HOST:PORT/partyline`.
pub const WEBTRANSPORT_PATH: &str = "/partyline";

/// The ALPN of HTTP/3, which browsers offer for WebTransport.
pub(crate) const H3_ALPN: &[u8] = b"h3";

/// HTTP/3's code for a connection closed without an error (RFC 9114).
pub(crate) const H3_NO_ERROR: VarInt = VarInt::from_u32(0x100);

/// Unidirectional streams a browser opens for HTTP/3 itself: its control
/// stream and QPACK's encoder and decoder streams. Granted in the
/// handshake's transport parameters, before the ALPN is known, so native
/// connections are granted them too when WebTransport is on (they never
/// use them, and what they could send is bounded by the connection's
/// receive window as ever): Chrome refuses a server that grants fewer.
pub(crate) const H3_UNI_STREAMS: u32 = 3;

/// The HTTP/3 frame type that starts a WebTransport bidirectional stream.
const WEBTRANSPORT_STREAM: u64 = 0x41;

/// Why a browser's session was not opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebRefusal {
    #[error("no WebTransport endpoint at {0} (it is {WEBTRANSPORT_PATH})")]
    Path(String),
    #[error("origin {0} is not allowed (--allowed-origin)")]
    Origin(String),
    #[error("HTTP/3 or WebTransport handshake failed: {0}")]
    Handshake(String),
}

/// Whether a connection negotiated HTTP/3 (a browser) rather than
/// partyline's own ALPN.
pub(crate) fn is_h3(connection: &Connection) -> bool {
    connection
        .handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.protocol)
        .is_some_and(|alpn| alpn == H3_ALPN)
}

/// HTTP/3 setup and the CONNECT request; answers 200 when the path and the
/// origin are allowed (404 or 403 otherwise). `dev`: dev identities, where
/// pages on this machine (localhost) are allowed too.
pub(crate) async fn open(
    connection: Connection,
    config: &WebTransportConfig,
    dev: bool,
) -> Result<ClientConnection, WebRefusal> {
    let request = request(connection).await?;
    let path = request.url.path().to_string();
    if path != WEBTRANSPORT_PATH {
        let _ = request.reject(StatusCode::NOT_FOUND).await;
        return Err(WebRefusal::Path(path));
    }
    let origin = request
        .headers
        .get("origin")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    if !origin_allowed(origin.as_deref(), &config.allowed_origins, dev) {
        let _ = request.reject(StatusCode::FORBIDDEN).await;
        return Err(WebRefusal::Origin(origin.unwrap_or_default()));
    }
    // The CONNECT stream stays open for the session's life; one more
    // bidirectional stream may come: the control stream. Granted before
    // the 200, which Chrome takes as leave to open it at once (it fails
    // the page's createBidirectionalStream() rather than wait for credit).
    request
        .conn()
        .set_max_concurrent_bi_streams(VarInt::from_u32(2));
    let session = request.ok().await.map_err(handshake)?;
    Ok(ClientConnection::Web(Arc::new(session)))
}

/// A browser the server has no room for: told so in HTTP (503), not by a
/// QUIC close its page could not read.
pub(crate) async fn refuse_full(connection: Connection) {
    if let Ok(request) = request(connection).await {
        let _ = request.reject(StatusCode::SERVICE_UNAVAILABLE).await;
    }
}

async fn request(connection: Connection) -> Result<web_transport_quinn::Request, WebRefusal> {
    web_transport_quinn::Request::accept(connection)
        .await
        .map_err(handshake)
}

fn handshake(error: impl std::fmt::Display) -> WebRefusal {
    WebRefusal::Handshake(error.to_string())
}

/// The session's control stream: its first bidirectional stream, whose
/// WebTransport header (frame type 0x41, then the session id: the CONNECT
/// stream's, 0) is read here; what follows is partyline's framing.
pub(crate) async fn accept_control(
    connection: &Connection,
) -> Result<(SendStream, RecvStream), WebRefusal> {
    let (send, mut recv) = connection.accept_bi().await.map_err(handshake)?;
    let kind = read_varint(&mut recv).await?;
    let session = read_varint(&mut recv).await?;
    if kind != WEBTRANSPORT_STREAM || session != 0 {
        return Err(WebRefusal::Handshake(format!(
            "the control stream starts with {kind:#x} {session}, not a WebTransport stream of session 0"
        )));
    }
    Ok((send, recv))
}

/// One QUIC variable-length integer (RFC 9000 §16).
async fn read_varint(recv: &mut RecvStream) -> Result<u64, WebRefusal> {
    let mut bytes = [0u8; 8];
    let (first, rest) = bytes.split_at_mut(1);
    recv.read_exact(first).await.map_err(handshake)?;
    let len = 1usize << (first[0] >> 6);
    let tail = rest.get_mut(..len - 1).unwrap_or_default();
    recv.read_exact(tail).await.map_err(handshake)?;
    let mut value = u64::from(first[0] & 0x3f);
    for byte in tail.iter() {
        value = (value << 8) | u64::from(*byte);
    }
    Ok(value)
}

/// Whether a page of `origin` may connect. No Origin header: not a
/// browser page (a browser always sends one), so a program, which could
/// claim any origin anyway; it is held to the same Hello as a native
/// client. Otherwise the origin must be one the operator allowed, or,
/// with dev identities, a page served from this machine.
pub(crate) fn origin_allowed(origin: Option<&str>, allowed: &[String], dev: bool) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|entry| entry == "*" || entry.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    dev && is_loopback_origin(origin)
}

/// `http(s)://localhost`, `127.x.x.x` or `[::1]`, any port.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, port)) if port.is_empty() || port.starts_with(':') => host,
            _ => return false,
        },
        None => rest.split(':').next().unwrap_or(rest),
    };
    if host.contains('/') {
        return false;
    }
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_allowed_by_list_or_by_dev_mode_on_loopback() {
        let allowed = vec!["https://game.example".to_string()];
        assert!(origin_allowed(
            Some("https://game.example"),
            &allowed,
            false
        ));
        assert!(origin_allowed(
            Some("https://GAME.example/"),
            &allowed,
            false
        ));
        assert!(!origin_allowed(
            Some("https://evil.example"),
            &allowed,
            false
        ));
        assert!(!origin_allowed(
            Some("http://game.example"),
            &allowed,
            false
        ));
        assert!(!origin_allowed(
            Some("http://localhost:8080"),
            &allowed,
            false
        ));
        assert!(origin_allowed(
            Some("http://localhost:8080"),
            &allowed,
            true
        ));
        assert!(origin_allowed(Some("http://127.0.0.1:1234"), &[], true));
        assert!(origin_allowed(Some("https://[::1]:1234"), &[], true));
        assert!(!origin_allowed(
            Some("https://localhost.evil.example"),
            &[],
            true
        ));
        assert!(!origin_allowed(
            Some("https://127.0.0.1.evil.example"),
            &[],
            true
        ));
        assert!(!origin_allowed(Some("null"), &[], true));
        assert!(!origin_allowed(Some("file://"), &[], true));
        assert!(origin_allowed(Some("null"), &["null".to_string()], false));
        assert!(origin_allowed(
            Some("https://any.example"),
            &["*".to_string()],
            false
        ));
        // Not a browser page: held to the Hello like a native client.
        assert!(origin_allowed(None, &[], false));
    }
}
