use crate::protocol::{CloseCode, ErrorBody, ErrorCode};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a client's connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The server is shutting down (not a network problem).
    ServerShutdown,
    /// The server closed this session (slow consumer, protocol violation,
    /// another connection took the session over...).
    ClosedByServer {
        /// The close code (PROTOCOL.md lists them).
        code: u64,
        /// The server's words.
        reason: String,
    },
    /// This client closed it.
    ClosedLocally,
    /// The network: timed out, reset, or unreachable.
    ConnectionLost(String),
    /// The SDK tried to reconnect for `ClientConfig::reconnect_for` and
    /// gave up; the last attempt's error.
    ReconnectFailed(String),
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::ServerShutdown => write!(f, "the server shut down"),
            DisconnectReason::ClosedByServer { code, reason } => {
                write!(f, "the server closed the session (code {code}: {reason})")
            }
            DisconnectReason::ClosedLocally => write!(f, "this client closed the session"),
            DisconnectReason::ConnectionLost(why) => write!(f, "the connection was lost ({why})"),
            DisconnectReason::ReconnectFailed(why) => write!(f, "reconnecting failed: {why}"),
        }
    }
}

impl From<quinn::ConnectionError> for DisconnectReason {
    fn from(error: quinn::ConnectionError) -> Self {
        match error {
            quinn::ConnectionError::ApplicationClosed(close) => {
                let code = close.error_code.into_inner();
                if CloseCode::from_number(code) == Some(CloseCode::ServerShutdown) {
                    DisconnectReason::ServerShutdown
                } else {
                    DisconnectReason::ClosedByServer {
                        code,
                        reason: String::from_utf8_lossy(&close.reason).into_owned(),
                    }
                }
            }
            quinn::ConnectionError::LocallyClosed => DisconnectReason::ClosedLocally,
            other => DisconnectReason::ConnectionLost(other.to_string()),
        }
    }
}

/// Why a call failed. Every message is a sentence a player or developer can
/// act on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server (or a local limit check) refused: act on `code`. Checked
    /// here before anything is sent: data over the server's payload limits,
    /// and a command or Hello over the protocol's frame limit
    /// (`protocol::MAX_FRAME_SIZE` bytes encoded), both `PayloadTooLarge`.
    #[error("refused ({}): {}", .0.code, .0.message)]
    Refused(ErrorBody),
    /// The configuration cannot work (a bad certificate, a bad address...).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// Nothing answered: the server is not running there, or a firewall
    /// drops the packets.
    #[error("no answer from {addr} within {} s: is `partyline serve` running there?", .after.as_secs_f32())]
    NoAnswer {
        /// Where the client tried.
        addr: SocketAddr,
        /// How long it waited (the idle timeout).
        after: Duration,
    },
    /// TLS failed: the server's certificate is not one this client trusts.
    #[error("the TLS handshake with {addr} failed ({detail}): pass the certificate that server uses (partyline serve writes its dev certificate to certs/cert.pem)")]
    Tls {
        /// The server.
        addr: SocketAddr,
        /// rustls's words.
        detail: String,
    },
    /// The server turned the connection away before any session began.
    #[error(
        "{addr} refused the connection ({detail}): it may be full or busy; try again in a moment"
    )]
    ConnectionRefused {
        /// The server.
        addr: SocketAddr,
        /// QUIC's words.
        detail: String,
    },
    /// The connection was lost and the SDK is reconnecting: try again after
    /// `Event::Resumed` (or `SessionLost`).
    #[error(
        "the connection was lost and the client is reconnecting: try again after the Resumed event"
    )]
    Reconnecting,
    /// The session is over; connect again to go on.
    #[error("the session is closed: {0}; connect again to go on")]
    Closed(DisconnectReason),
    /// The UDP socket could not be opened.
    #[error("could not open a UDP socket: {0}")]
    Io(std::io::Error),
    /// The server said something this SDK does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The refusal code, when the server (or a limit) refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Refused(body) => Some(body.code),
            _ => None,
        }
    }

    /// Maps a failed connection attempt to what a developer can act on.
    pub(crate) fn from_connecting(
        addr: SocketAddr,
        after: Duration,
        error: quinn::ConnectionError,
    ) -> Self {
        match error {
            quinn::ConnectionError::TimedOut => ClientError::NoAnswer { addr, after },
            quinn::ConnectionError::TransportError(transport) if is_tls(transport.code) => {
                ClientError::Tls {
                    addr,
                    detail: transport.to_string(),
                }
            }
            quinn::ConnectionError::ConnectionClosed(close) if is_tls(close.error_code) => {
                ClientError::Tls {
                    addr,
                    detail: close.to_string(),
                }
            }
            quinn::ConnectionError::ConnectionClosed(close) => ClientError::ConnectionRefused {
                addr,
                detail: close.to_string(),
            },
            other => ClientError::Closed(DisconnectReason::from(other)),
        }
    }
}

/// QUIC carries TLS alerts as transport codes 0x100-0x1ff (RFC 9001 §4.8).
fn is_tls(code: quinn::TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}
