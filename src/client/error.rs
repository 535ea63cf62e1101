use crate::protocol::{CloseCode, ErrorBody, ErrorCode};

/// Why a client's connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The server is shutting down (not a network problem).
    ServerShutdown,
    /// The server closed this session (slow consumer, protocol violation...).
    ClosedByServer { code: u64, reason: String },
    /// This client closed it.
    ClosedLocally,
    /// The network: timed out, reset, or unreachable.
    ConnectionLost(String),
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

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server (or a local limit check) refused: act on `code`.
    #[error("refused: {0}")]
    Refused(ErrorBody),
    #[error("invalid client configuration: {0}")]
    Config(String),
    #[error("could not start connecting: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection failed: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("socket: {0}")]
    Io(std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("the connection closed before the server answered")]
    Disconnected,
}

impl ClientError {
    /// The refusal code, when the server (or a limit) refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Refused(body) => Some(body.code),
            _ => None,
        }
    }
}
