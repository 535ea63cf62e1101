//! The Rust client SDK: connect, one async method per command, and a stream
//! of events that a game loop can poll without blocking.
//!
//! ```no_run
//! # async fn example() -> Result<(), partyline::client::ClientError> {
//! use partyline::client::{Client, ClientConfig};
//! let certs = partyline::certs::load_certs("certs/cert.pem".as_ref()).expect("dev cert");
//! let config = ClientConfig::dev("127.0.0.1:7350".parse().unwrap(), certs, "user-1", "Ana");
//! let (client, mut events) = Client::connect(config).await?;
//! let party = client.create_party(true, 4, "").await?;
//! while let Some(event) = events.try_next() { /* once per frame */ }
//! # Ok(()) }
//! ```

mod config;
mod error;

pub use config::ClientConfig;
pub use error::{ClientError, DisconnectReason};

use crate::protocol::{
    decode_body, decode_server_datagram, encode_client_datagram, ClientFrame, CloseCode, Command,
    ErrorBody, ErrorCode, Event, Hello, JoinOutcome, PartyId, PartySnapshot, Presence, Reply,
    Resume, ServerFrame, SessionId, Welcome, ALPN, PROTOCOL_VERSION,
};
use crate::wire::{read_frame, write_frame};
use bytes::Bytes;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint, IdleTimeout, RecvStream, SendStream, TransportConfig};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Party data from another member, by datagram or reliably.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartyData {
    pub party_id: PartyId,
    /// The sender's session id; its presence is in the party's snapshot and
    /// presence events.
    pub sender: SessionId,
    pub op_code: i64,
    pub data: Bytes,
    /// True when it came on the reliable control stream.
    pub reliable: bool,
}

/// Everything the server tells this client without being asked.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// A party event; `seq` is this session's event counter (from 1).
    Event { seq: u64, event: Event },
    /// Party data from another member.
    Data(PartyData),
    /// The server could not decode a frame this client sent.
    FrameError(ErrorBody),
    /// The connection ended; nothing follows.
    Disconnected(DisconnectReason),
}

/// The receiving half of a client's events.
pub struct Events {
    rx: mpsc::Receiver<ClientEvent>,
}

impl Events {
    /// Waits for the next event; `None` after `Disconnected` was delivered.
    pub async fn next(&mut self) -> Option<ClientEvent> {
        self.rx.recv().await
    }

    /// The next event if one is waiting: for game loops that must not block.
    pub fn try_next(&mut self) -> Option<ClientEvent> {
        self.rx.try_recv().ok()
    }
}

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Result<Reply, ErrorBody>>>>>;

pub struct Client {
    endpoint: Endpoint,
    connection: Connection,
    control: tokio::sync::Mutex<SendStream>,
    pending: Pending,
    next_id: AtomicU32,
    welcome: Welcome,
    dropped_datagrams: Arc<AtomicU64>,
    /// The seq of the last event frame received, for resuming.
    last_event_seq: Arc<AtomicU64>,
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
        ));
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

impl Client {
    /// Connects, says Hello, and waits for Welcome.
    pub async fn connect(config: ClientConfig) -> Result<(Client, Events), ClientError> {
        let bind: SocketAddr = if config.server_addr.is_ipv6() {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let mut endpoint = Endpoint::client(bind).map_err(ClientError::Io)?;
        endpoint.set_default_client_config(quinn_client_config(&config)?);
        let connection = endpoint
            .connect(config.server_addr, &config.server_name)?
            .await?;
        Self::start(endpoint, connection, &config).await
    }

    async fn start(
        endpoint: Endpoint,
        connection: Connection,
        config: &ClientConfig,
    ) -> Result<(Client, Events), ClientError> {
        let (mut send, mut recv) = connection.open_bi().await?;
        let hello = ClientFrame::Hello(Hello {
            version: PROTOCOL_VERSION,
            identity: config.identity.clone(),
            resume: config.resume.clone(),
        });
        write_frame(&mut send, &hello)
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut body = Vec::new();
        let answer = match read_frame(&mut recv, &mut body).await {
            Ok(true) => decode_body::<ServerFrame>(&body)
                .map_err(|e| ClientError::Protocol(e.to_string()))?,
            Ok(false) | Err(_) => {
                let reason = connection.closed().await;
                return Err(ClientError::from_handshake_close(reason));
            }
        };
        let welcome = match answer {
            ServerFrame::Welcome(welcome) => welcome,
            ServerFrame::Refused(refusal) => {
                connection.close((CloseCode::Normal as u32).into(), b"refused");
                return Err(ClientError::Refused(refusal));
            }
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected Welcome, got {other:?}"
                )))
            }
        };

        let (events_tx, events_rx) = mpsc::channel(config.event_capacity);
        let pending: Pending = Arc::default();
        let dropped_datagrams = Arc::new(AtomicU64::new(0));
        let last_event_seq = Arc::new(AtomicU64::new(welcome.last_event_seq));
        tokio::spawn(read_control(
            recv,
            connection.clone(),
            pending.clone(),
            events_tx.clone(),
            last_event_seq.clone(),
        ));
        tokio::spawn(read_datagrams(
            connection.clone(),
            events_tx,
            dropped_datagrams.clone(),
        ));
        let client = Client {
            endpoint,
            connection,
            control: tokio::sync::Mutex::new(send),
            pending,
            next_id: AtomicU32::new(1),
            welcome,
            dropped_datagrams,
            last_event_seq,
        };
        Ok((client, Events { rx: events_rx }))
    }

    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    pub fn session_id(&self) -> SessionId {
        self.welcome.session_id
    }

    pub fn presence(&self) -> &Presence {
        &self.welcome.presence
    }

    /// What to put in `ClientConfig::resume` to take this session back
    /// after its connection is lost (inside the server's grace window).
    pub fn resume_ticket(&self) -> Resume {
        Resume {
            token: self.welcome.resume_token.clone(),
            last_event_seq: self.last_event_seq.load(Ordering::Acquire),
        }
    }

    /// Datagrams dropped because the application did not poll events fast enough.
    pub fn dropped_datagrams(&self) -> u64 {
        self.dropped_datagrams.load(Ordering::Relaxed)
    }

    /// Sends one command and waits for its reply.
    pub async fn request(&self, command: Command) -> Result<Reply, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        let written = {
            let mut send = self.control.lock().await;
            write_frame(&mut send, &ClientFrame::Request { id, command }).await
        };
        if let Err(error) = written {
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            return Err(ClientError::Protocol(error.to_string()));
        }
        match rx.await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(refusal)) => Err(ClientError::Refused(refusal)),
            Err(_) => Err(ClientError::Disconnected),
        }
    }

    pub async fn create_party(
        &self,
        open: bool,
        max_size: u16,
        label: &str,
    ) -> Result<PartySnapshot, ClientError> {
        let command = Command::CreateParty {
            open,
            max_size,
            label: label.to_string(),
        };
        expect_party(self.request(command).await?)
    }

    /// Joined (open party) or Queued (closed party).
    pub async fn join_party(&self, party_id: PartyId) -> Result<JoinOutcome, ClientError> {
        match self.request(Command::JoinParty { party_id }).await? {
            Reply::Join(outcome) => Ok(outcome),
            other => Err(unexpected(other)),
        }
    }

    /// Leader only: the waiting requests, oldest first.
    pub async fn list_join_requests(
        &self,
        party_id: PartyId,
    ) -> Result<Vec<Presence>, ClientError> {
        match self.request(Command::ListJoinRequests { party_id }).await? {
            Reply::JoinRequests { requests, .. } => Ok(requests),
            other => Err(unexpected(other)),
        }
    }

    pub async fn accept(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        expect_done(
            self.request(Command::AcceptJoinRequest { party_id, user_id })
                .await?,
        )
    }

    /// Kicks a member or rejects a join request.
    pub async fn remove(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        expect_done(self.request(Command::Remove { party_id, user_id }).await?)
    }

    /// Leaves the party, or cancels this session's join request.
    pub async fn leave(&self, party_id: PartyId) -> Result<(), ClientError> {
        expect_done(self.request(Command::Leave { party_id }).await?)
    }

    pub async fn promote(&self, party_id: PartyId, user_id: &str) -> Result<(), ClientError> {
        let user_id = user_id.to_string();
        expect_done(self.request(Command::Promote { party_id, user_id }).await?)
    }

    pub async fn close_party(&self, party_id: PartyId) -> Result<(), ClientError> {
        expect_done(self.request(Command::Close { party_id }).await?)
    }

    /// Changes the given settings; `None` keeps a setting as it is.
    pub async fn update_party(
        &self,
        party_id: PartyId,
        open: Option<bool>,
        label: Option<String>,
        max_size: Option<u16>,
    ) -> Result<PartySnapshot, ClientError> {
        let command = Command::Update {
            party_id,
            open,
            label,
            max_size,
        };
        expect_party(self.request(command).await?)
    }

    pub async fn get_party(&self, party_id: PartyId) -> Result<PartySnapshot, ClientError> {
        expect_party(self.request(Command::GetParty { party_id }).await?)
    }

    /// Party data as one unreliable datagram. Refused with `PayloadTooLarge`
    /// above the limit announced in Welcome (never cut); send it with
    /// [`Client::send_data_reliable`] instead. Errors the server finds later
    /// (not a member, no such party) arrive as a `DataRefused` event.
    pub fn send_data(
        &self,
        party_id: PartyId,
        op_code: i64,
        data: &[u8],
    ) -> Result<(), ClientError> {
        let limit = self.welcome.limits.max_datagram_data as usize;
        if data.len() > limit {
            return Err(payload_too_large(data.len(), limit));
        }
        let datagram = encode_client_datagram(party_id, op_code, data);
        self.connection
            .send_datagram(datagram)
            .map_err(|error| match error {
                quinn::SendDatagramError::ConnectionLost(e) => ClientError::Connection(e),
                quinn::SendDatagramError::TooLarge => payload_too_large(data.len(), limit),
                other => ClientError::Protocol(other.to_string()),
            })
    }

    /// Party data on the reliable control stream, ordered with this
    /// session's other reliable messages.
    pub async fn send_data_reliable(
        &self,
        party_id: PartyId,
        op_code: i64,
        data: Bytes,
    ) -> Result<(), ClientError> {
        let limit = self.welcome.limits.max_reliable_data as usize;
        if data.len() > limit {
            return Err(payload_too_large(data.len(), limit));
        }
        expect_done(
            self.request(Command::SendData {
                party_id,
                op_code,
                data,
            })
            .await?,
        )
    }

    /// Closes the session cleanly: the server removes it from its parties at once.
    pub async fn close(self) {
        self.connection
            .close((CloseCode::Normal as u32).into(), b"bye");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}

fn payload_too_large(len: usize, limit: usize) -> ClientError {
    ClientError::Refused(ErrorBody::new(
        ErrorCode::PayloadTooLarge,
        format!("payload of {len} bytes exceeds the limit of {limit}"),
    ))
}

fn unexpected(reply: Reply) -> ClientError {
    ClientError::Protocol(format!("unexpected reply {reply:?}"))
}

fn expect_party(reply: Reply) -> Result<PartySnapshot, ClientError> {
    match reply {
        Reply::Party(snapshot) => Ok(snapshot),
        other => Err(unexpected(other)),
    }
}

fn expect_done(reply: Reply) -> Result<(), ClientError> {
    match reply {
        Reply::Done => Ok(()),
        other => Err(unexpected(other)),
    }
}

async fn read_control(
    mut recv: RecvStream,
    connection: Connection,
    pending: Pending,
    events: mpsc::Sender<ClientEvent>,
    last_event_seq: Arc<AtomicU64>,
) {
    let mut body = Vec::new();
    while let Ok(true) = read_frame(&mut recv, &mut body).await {
        let frame = match decode_body::<ServerFrame>(&body) {
            Ok(frame) => frame,
            Err(error) => {
                tracing::warn!(%error, "undecodable frame from the server");
                continue;
            }
        };
        if let ServerFrame::Event { seq, .. } = &frame {
            last_event_seq.store(*seq, Ordering::Release);
        }
        let event = match frame {
            ServerFrame::Response { id, result } => {
                let waiter = pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(result);
                }
                continue;
            }
            ServerFrame::Event {
                event:
                    Event::Data {
                        party_id,
                        sender,
                        op_code,
                        data,
                    },
                ..
            } => ClientEvent::Data(PartyData {
                party_id,
                sender: sender.session_id,
                op_code,
                data,
                reliable: true,
            }),
            ServerFrame::Event { seq, event } => ClientEvent::Event { seq, event },
            ServerFrame::FrameError(error) => ClientEvent::FrameError(error),
            ServerFrame::Welcome(_) | ServerFrame::Refused(_) => continue,
        };
        // Waiting here is back-pressure: an application that stops polling
        // stops reading, and the server sees a slow consumer.
        if events.send(event).await.is_err() {
            break;
        }
    }
    pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    let reason = DisconnectReason::from(connection.closed().await);
    let _ = events.send(ClientEvent::Disconnected(reason)).await;
}

async fn read_datagrams(
    connection: Connection,
    events: mpsc::Sender<ClientEvent>,
    dropped: Arc<AtomicU64>,
) {
    while let Ok(datagram) = connection.read_datagram().await {
        let Ok(data) = decode_server_datagram(datagram) else {
            continue;
        };
        let event = ClientEvent::Data(PartyData {
            party_id: data.party_id,
            sender: data.sender,
            op_code: data.op_code,
            data: data.payload,
            reliable: false,
        });
        // Unreliable data is worth less than blocking for: drop if full.
        if events.try_send(event).is_err() {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
