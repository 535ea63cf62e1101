//! What carries a session: a native QUIC connection (ALPN `partyline/1`),
//! or a browser's WebTransport session (ALPN `h3`) on the same endpoint.
//! Above this, a session is a session: only party datagrams (which a
//! WebTransport session prefixes with its session id) and the close (which
//! a browser hears as a CLOSE_WEBTRANSPORT_SESSION capsule, so that its
//! page sees the code) differ. The control stream is a plain QUIC stream on
//! both once its WebTransport header was read (`super::web`).

use bytes::Bytes;
use quinn::{Connection, ConnectionError};
use std::sync::Arc;
use web_transport_quinn::{SessionError, WebTransportError};

#[derive(Clone, Debug)]
pub(crate) enum ClientConnection {
    /// A native client: datagrams and the close as they are.
    Quic(Connection),
    /// A browser (boxed: a WebTransport session is large, and the native
    /// case should not pay for it in every session's link).
    Web(Arc<web_transport_quinn::Session>),
}

impl ClientConnection {
    /// The QUIC connection underneath (stats, addresses, its end).
    pub(crate) fn quic(&self) -> &Connection {
        match self {
            ClientConnection::Quic(connection) => connection,
            ClientConnection::Web(session) => session,
        }
    }

    /// Hands one party datagram to QUIC; false when it was not taken (the
    /// connection is gone, or the payload does not fit a packet).
    pub(crate) fn send_datagram(&self, datagram: Bytes) -> bool {
        match self {
            ClientConnection::Quic(connection) => connection.send_datagram(datagram).is_ok(),
            // Copied once behind the session id: quinn takes whole Bytes.
            ClientConnection::Web(session) => session.send_datagram(datagram).is_ok(),
        }
    }

    /// A keep-alive (PROTOCOL.md §5): a zero-length datagram, or for a
    /// browser one byte 0x00 (a reserved datagram kind), since a browser
    /// delivers no empty datagram to its page, which could then not tell
    /// a quiet connection from a dead one.
    pub(crate) fn send_keep_alive(&self) -> bool {
        match self {
            ClientConnection::Quic(_) => self.send_datagram(Bytes::new()),
            ClientConnection::Web(_) => self.send_datagram(Bytes::from_static(&[0])),
        }
    }

    /// The next party datagram (without a WebTransport prefix); `Err` once
    /// the connection is gone.
    pub(crate) async fn read_datagram(&self) -> Result<Bytes, ()> {
        match self {
            ClientConnection::Quic(connection) => connection.read_datagram().await.map_err(drop),
            ClientConnection::Web(session) => loop {
                match session.read_datagram().await {
                    Ok(datagram) => return Ok(datagram),
                    // A datagram for another session id, or one too short to
                    // name one: dropped, like any datagram that reads wrong.
                    Err(SessionError::WebTransportError(error))
                        if !matches!(error, WebTransportError::Closed(..)) =>
                    {
                        continue
                    }
                    Err(_) => return Err(()),
                }
            },
        }
    }

    /// Closes with `code` (a [`crate::protocol::CloseCode`]). A browser's
    /// session is closed with a capsule first, so that its page reads the
    /// code and reason from `WebTransport.closed`; QUIC's close follows.
    pub(crate) fn close(&self, code: u32, reason: &[u8]) {
        match self {
            ClientConnection::Quic(connection) => connection.close(code.into(), reason),
            ClientConnection::Web(session) => session.close(code, reason),
        }
    }

    /// Whether the peer closed its WebTransport session (a browser's
    /// goodbye, which this side's QUIC close then follows).
    pub(crate) fn closed_by_peer(&self) -> bool {
        match self {
            ClientConnection::Quic(_) => false,
            ClientConnection::Web(session) => matches!(
                session.close_reason(),
                Some(SessionError::WebTransportError(WebTransportError::Closed(
                    ..
                )))
            ),
        }
    }

    pub(crate) async fn closed(&self) -> ConnectionError {
        self.quic().closed().await
    }

    pub(crate) fn remote_address(&self) -> std::net::SocketAddr {
        self.quic().remote_address()
    }

    pub(crate) fn stats(&self) -> quinn::ConnectionStats {
        self.quic().stats()
    }

    pub(crate) fn stable_id(&self) -> usize {
        self.quic().stable_id()
    }
}
