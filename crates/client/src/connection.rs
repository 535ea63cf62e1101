//! Opening a connection and a session on it: QUIC settings, Hello, Welcome.

use crate::protocol::{
    decode_body, ClientFrame, CloseCode, Hello, Identity, Resume, ServerFrame, Welcome, ALPN,
    MAX_NAME_BYTES, MAX_WELCOME_SIZE, PROTOCOL_VERSION,
};
use crate::wire::{encode, read_frame_within, write_frame};
use crate::{ClientConfig, ClientError};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint, IdleTimeout, RecvStream, SendStream, TransportConfig};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// A connection whose session has been welcomed.
pub(crate) struct Established {
    pub(crate) connection: Connection,
    pub(crate) send: SendStream,
    pub(crate) recv: RecvStream,
    pub(crate) welcome: Welcome,
}

fn client_transport(config: &ClientConfig) -> Result<TransportConfig, ClientError> {
    let mut transport = TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(0u32.into())
        .max_concurrent_uni_streams(0u32.into())
        .datagram_receive_buffer_size(Some(256 * 1024))
        .datagram_send_buffer_size(32 * 1024)
        .keep_alive_interval(Some(config.keep_alive))
        .max_idle_timeout(Some(
            IdleTimeout::try_from(config.idle_timeout)
                .map_err(|e| ClientError::Config(e.to_string()))?,
        ))
        .ack_frequency_config(config.ack_frequency.map(|frequency| {
            let mut quinn_frequency = quinn::AckFrequencyConfig::default();
            quinn_frequency
                .ack_eliciting_threshold(quinn::VarInt::from_u32(frequency.threshold))
                .max_ack_delay(Some(frequency.max_delay));
            quinn_frequency
        }));
    Ok(transport)
}

fn quinn_client_config(config: &ClientConfig) -> Result<quinn::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in &config.trusted_certs {
        roots
            .add(cert.clone())
            .map_err(|e| ClientError::Config(format!("untrustable certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut crypto = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClientError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    crypto.alpn_protocols = vec![ALPN.to_vec()];
    let quic =
        QuicClientConfig::try_from(crypto).map_err(|e| ClientError::Config(e.to_string()))?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(quic));
    client_config.transport_config(Arc::new(client_transport(config)?));
    Ok(client_config)
}

/// A client endpoint (one UDP socket) that many sessions can share: a
/// load generator wants about one per core. `socket_buffer` enlarges the
/// socket's receive and send buffers (the kernel may cap it at
/// net.core.rmem_max / wmem_max).
pub fn shared_endpoint(
    config: &ClientConfig,
    socket_buffer: Option<usize>,
) -> Result<Endpoint, ClientError> {
    let bind: SocketAddr = if config.server_addr.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let mut endpoint = match socket_buffer {
        None => Endpoint::client(bind).map_err(ClientError::Io)?,
        Some(bytes) => {
            let domain = socket2::Domain::for_address(bind);
            let socket =
                socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
                    .map_err(ClientError::Io)?;
            // Best effort: a smaller buffer only costs more kernel drops.
            let _ = socket.set_recv_buffer_size(bytes);
            let _ = socket.set_send_buffer_size(bytes);
            socket.bind(&bind.into()).map_err(ClientError::Io)?;
            let runtime = quinn::default_runtime()
                .ok_or_else(|| ClientError::Config("no async runtime found".into()))?;
            Endpoint::new(
                quinn::EndpointConfig::default(),
                None,
                socket.into(),
                runtime,
            )
            .map_err(ClientError::Io)?
        }
    };
    endpoint.set_default_client_config(quinn_client_config(config)?);
    Ok(endpoint)
}

/// The Hello frame for this configuration, refused at once when over the
/// frame limit.
pub(crate) fn hello_frame(
    config: &ClientConfig,
    resume: Option<Resume>,
) -> Result<Vec<u8>, ClientError> {
    let hello = ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        identity: config.identity.clone(),
        resume,
    });
    encode(&hello, "Hello").map_err(|error| match (error, &config.identity) {
        // Say which rule a dev name broke, not only the frame's.
        (ClientError::Refused(mut refusal), Identity::Dev { user_id, username }) => {
            for (what, name) in [("user_id", user_id), ("username", username)] {
                if name.len() > MAX_NAME_BYTES {
                    refusal.message += &format!(
                        "; {what} must be 1 to {MAX_NAME_BYTES} bytes, got {}",
                        name.len()
                    );
                }
            }
            ClientError::Refused(refusal)
        }
        (error, _) => error,
    })
}

/// Connects, says Hello (with `resume` when taking a session back) and
/// waits for Welcome. With `handshake_limit`, a QUIC handshake not done by
/// then is given up as `NoAnswer` (a reconnection attempt); without, QUIC's
/// idle timeout ends it.
pub(crate) async fn establish(
    endpoint: &Endpoint,
    config: &ClientConfig,
    resume: Option<Resume>,
    handshake_limit: Option<Duration>,
) -> Result<Established, ClientError> {
    // Before anything is sent: an oversize Hello is the caller's to fix.
    let hello = hello_frame(config, resume)?;
    let addr = config.server_addr;
    // Always this config's QUIC settings (keep-alive, idle timeout, trusted
    // certificates), not whatever the shared endpoint was built with.
    let connecting = endpoint
        .connect_with(quinn_client_config(config)?, addr, &config.server_name)
        .map_err(|e| ClientError::Config(format!("cannot connect to {addr}: {e}")))?;
    let handshake = match handshake_limit {
        None => connecting.await,
        // Dropping the attempt abandons it; the next one starts afresh.
        Some(limit) => match tokio::time::timeout(limit, connecting).await {
            Ok(handshake) => handshake,
            Err(_) => return Err(ClientError::NoAnswer { addr, after: limit }),
        },
    };
    let connection =
        handshake.map_err(|e| ClientError::from_connecting(addr, config.idle_timeout, e))?;
    let lost = |connection: &Connection| {
        let reason = connection
            .close_reason()
            .unwrap_or(quinn::ConnectionError::LocallyClosed);
        ClientError::from_connecting(addr, config.idle_timeout, reason)
    };
    let (mut send, mut recv) = match connection.open_bi().await {
        Ok(streams) => streams,
        Err(_) => return Err(lost(&connection)),
    };
    if write_frame(&mut send, &hello).await.is_err() {
        return Err(lost(&connection));
    }
    let mut body = Vec::new();
    // Welcome may exceed the usual frame limit (a snapshot resume).
    let answer = match read_frame_within(&mut recv, &mut body, MAX_WELCOME_SIZE).await {
        Ok(true) => decode_body::<ServerFrame>(&body)
            .map_err(|e| ClientError::Protocol(format!("undecodable answer to Hello: {e}")))?,
        Ok(false) | Err(_) => {
            // The server closes right after refusing; wait for its reason.
            let reason = connection.closed().await;
            return Err(ClientError::from_connecting(
                addr,
                config.idle_timeout,
                reason,
            ));
        }
    };
    match answer {
        ServerFrame::Welcome(welcome) => Ok(Established {
            connection,
            send,
            recv,
            welcome,
        }),
        ServerFrame::Refused(refusal) => {
            connection.close((CloseCode::Normal as u32).into(), b"refused");
            Err(ClientError::Refused(refusal))
        }
        other => Err(ClientError::Protocol(format!(
            "expected Welcome, got {other:?}"
        ))),
    }
}
