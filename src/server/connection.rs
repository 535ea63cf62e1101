//! One client connection: handshake (Hello -> Welcome, new or resumed),
//! then three loops that live as long as the connection: control frames
//! in, outbox out, datagrams in. When it ends, the session either ends too
//! (clean close, protocol violation) or enters its grace window (loss).

use super::grace;
use super::hooks::HookRunner;
use super::limits::{RateLimit, Verdict};
use super::metrics;
use super::player_limits::{AddressKey, SessionLimit, Whose};
use super::replay::ReplayLog;
use super::session::{
    outbox, release_if_large, write_outbox, Outbound, OutboxReceiver, OutboxSender, ResumeRefusal,
    ResumeToken, SessionLink, SessionRef, GOODBYE_SETTLE,
};
use super::transport::ClientConnection;
use super::web;
use super::{commands, config::AuthMode, state::Shared};
use crate::auth::{unix_now, validate_name, verify_token_rotating};
use crate::protocol::{
    client_datagram_hint, decode_body, decode_client_datagram, decode_client_frame,
    encode_server_datagram, request_id_hint, ClientFrame, CloseCode, Command, ErrorBody, ErrorCode,
    Event, FrameError, Hello, Identity, Presence, Resume, Resumed, ServerFrame, SessionId, Welcome,
    OLDEST_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use crate::wire::{read_frame, write_frame, write_welcome, ReadFrameError};
use bytes::Bytes;
use quinn::{ConnectionError, ReadError, RecvStream, SendStream, VarInt};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::time::timeout;
use tracing::Instrument;

/// Counts a handshake in progress for as long as it lives.
struct HandshakeSlot<'a>(&'a Shared);

impl<'a> HandshakeSlot<'a> {
    fn take(shared: &'a Shared) -> Self {
        shared.handshakes.fetch_add(1, Ordering::Relaxed);
        HandshakeSlot(shared)
    }
}

impl Drop for HandshakeSlot<'_> {
    fn drop(&mut self) {
        self.0.handshakes.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one connection for its whole life.
///
/// Not an `async fn`: its result lives as long as the session (a task sized
/// for it), and a task's allocation is sized for the largest state its future
/// ever holds. The handshakes' state (QUIC's, then Hello's) is that largest
/// one by far, so it lives in its own box, freed once the session runs: an
/// idle session keeps only the small state of its loops.
pub(crate) fn serve(
    shared: Arc<Shared>,
    hooks: Option<Arc<HookRunner>>,
    incoming: quinn::Incoming,
) -> impl Future<Output = ()> + Send + 'static {
    let opening = Box::pin(open(shared.clone(), hooks.clone(), incoming));
    async move {
        if let Some((connection, admitted, span)) = opening.await {
            let meter = admitted.session.quality.clone();
            let _tracked = shared.metrics.transport.track(&connection, meter);
            run_session(shared, hooks, connection, admitted, span).await;
        }
    }
}

/// The QUIC handshake (for a browser, WebTransport's too), then Hello;
/// `None` when either fails.
async fn open(
    shared: Arc<Shared>,
    hooks: Option<Arc<HookRunner>>,
    incoming: quinn::Incoming,
) -> Option<(ClientConnection, Admitted, tracing::Span)> {
    let remote = incoming.remote_address();
    let slot = HandshakeSlot::take(&shared);
    let handshake_result = timeout(shared.config.hello_timeout, incoming).await;
    drop(slot);
    let connection = match handshake_result {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => {
            tracing::debug!(%remote, %error, "handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!(%remote, "handshake timed out");
            return None;
        }
    };
    let span = tracing::info_span!(
        "session",
        %remote,
        session = tracing::field::Empty,
        user = tracing::field::Empty
    );
    let connection = carrier(&shared, connection)
        .instrument(span.clone())
        .await?;
    let admitted = handshake(&shared, hooks.as_deref(), &connection)
        .instrument(span.clone())
        .await?;
    Some((connection, admitted, span))
}

/// What carries the session: the QUIC connection itself (ALPN
/// `partyline/1`), or the WebTransport session a browser opens on it
/// (ALPN `h3`), within the Hello time limit.
async fn carrier(shared: &Shared, connection: quinn::Connection) -> Option<ClientConnection> {
    let (Some(config), true) = (&shared.config.webtransport, web::is_h3(&connection)) else {
        return Some(ClientConnection::Quic(connection));
    };
    let dev = matches!(shared.config.auth, AuthMode::Dev);
    let opening = web::open(connection.clone(), config, dev);
    match timeout(shared.config.hello_timeout, opening).await {
        Ok(Ok(web)) => Some(web),
        Ok(Err(refusal)) => {
            tracing::info!(%refusal, "browser session refused");
            metrics::count(&shared.metrics.refused_webtransport);
            // Let the 404 or 403 reach the page before the close.
            let _ = timeout(std::time::Duration::from_millis(500), connection.closed()).await;
            connection.close(web::H3_NO_ERROR, refusal.to_string().as_bytes());
            None
        }
        Err(_) => {
            tracing::debug!("WebTransport handshake timed out");
            connection.close(web::H3_NO_ERROR, b"no WebTransport session in time");
            None
        }
    }
}

/// The server is at `max_sessions`: finish the handshake only to say why,
/// so the client sees a reason rather than a timeout.
pub(crate) async fn refuse_full(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    if let Ok(Ok(connection)) = timeout(shared.config.hello_timeout, incoming).await {
        tracing::warn!(%remote, max = shared.config.max_sessions, "refused: server full");
        if shared.config.webtransport.is_some() && web::is_h3(&connection) {
            let _ = timeout(shared.config.hello_timeout, web::refuse_full(connection)).await;
            return;
        }
        let reason = format!("server full: {} sessions", shared.config.max_sessions);
        connection.close((CloseCode::ServerFull as u32).into(), reason.as_bytes());
    }
}

/// How a connection's life ended, which decides the session's fate.
enum Ending {
    /// The client said goodbye (closed, or finished its stream): leave now.
    Goodbye,
    /// The client broke the protocol: no grace for it.
    Violation,
    /// The network lost it (or the server cut a slow consumer): grace.
    Lost,
}

struct Admitted {
    send: SendStream,
    recv: RecvStream,
    session: SessionRef,
    generation: u64,
    backlog: Bytes,
    outbox: OutboxReceiver,
}

/// Starts the session's writer and datagram tasks, and returns the control
/// loop, which decides how the session ends (as in `serve`, what the
/// returned future keeps is only what the session needs while it runs).
fn run_session(
    shared: Arc<Shared>,
    hooks: Option<Arc<HookRunner>>,
    connection: ClientConnection,
    admitted: Admitted,
    span: tracing::Span,
) -> impl Future<Output = ()> + Send + 'static {
    let Admitted {
        send,
        mut recv,
        session,
        generation,
        backlog,
        outbox,
    } = admitted;
    span.record("session", tracing::field::display(session.session_id()));
    span.record("user", tracing::field::display(&session.presence.user_id));

    // A client that stops reading its control stream (STOP_SENDING) can
    // never be answered again: that ends the session, as a violation.
    let stopped_by_client = send.stopped();
    let version = session.version;
    let writer = tokio::spawn(
        write_outbox(send, backlog, outbox, connection.clone(), version).instrument(span.clone()),
    );
    let datagrams = tokio::spawn(
        datagram_loop(shared.clone(), session.clone(), connection.clone()).instrument(span.clone()),
    );

    async move {
        let ending = tokio::select! {
            ending = control_loop(&shared, hooks.as_deref(), &session, generation, &mut recv, &connection) => ending,
            never = stop_stray_streams(&connection) => match never {},
            Ok(Some(code)) = stopped_by_client => {
                // After a takeover the stop is the old connection's alone.
                if session.is_attached(generation) {
                    tracing::info!(%code, "closing: the client stopped its control stream");
                    session.close(CloseCode::ProtocolViolation, "the control stream was stopped");
                    Ending::Violation
                } else {
                    Ending::Lost
                }
            }
        };
        datagrams.abort();
        match ending {
            Ending::Goodbye | Ending::Violation => {
                match ending {
                    // The client's own goodbye: nothing to wait for.
                    Ending::Goodbye => connection.close(CloseCode::Normal as u32, b"session ended"),
                    // The server's: its writer closes once what is in
                    // flight settled (a close already said wins).
                    _ => session.close(CloseCode::ProtocolViolation, "session ended"),
                }
                if session.end(generation, false) {
                    grace::finish(&shared, &session);
                    tracing::info!("session ended");
                }
            }
            // The server is stopping: no grace window, and nobody left to
            // tell; the session simply ends with the server.
            Ending::Lost if shared.stopping.load(Ordering::Acquire) => {
                if session.end(generation, false) {
                    shared.forget_session(session.session_id());
                }
            }
            Ending::Lost => {
                if session.detach(generation) {
                    grace::connection_lost(&shared, &session, generation);
                }
            }
        }
        // The writer closes the connection after a goodbye; bounded, in
        // case it cannot (then the close is the server's own, now).
        let closing = GOODBYE_SETTLE + std::time::Duration::from_millis(200);
        if timeout(closing, connection.closed()).await.is_err() {
            connection.close(CloseCode::Normal as u32, b"session ended");
            let _ = connection.closed().await;
        }
        writer.abort();
    }
    .instrument(span)
}

/// A native client's unidirectional streams. With WebTransport on, the 3
/// that HTTP/3 needs are granted to every connection in its handshake,
/// before its ALPN is known, and QUIC takes no credit back: a native
/// client that opens them has each stopped at once (what it wrote is
/// dropped, not held until the connection ends), and none is granted after
/// them. Never ends.
async fn stop_stray_streams(connection: &ClientConnection) -> std::convert::Infallible {
    if let ClientConnection::Quic(connection) = connection {
        connection.set_max_concurrent_uni_streams(VarInt::from_u32(0));
        while let Ok(mut stream) = connection.accept_uni().await {
            let _ = stream.stop(VarInt::from_u32(CloseCode::ProtocolViolation as u32));
        }
    }
    std::future::pending().await
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, message)
}

/// Reads Hello and answers Welcome or Refused. `None` means the connection
/// is done (refused, or lost before Hello).
async fn handshake(
    shared: &Arc<Shared>,
    hooks: Option<&HookRunner>,
    connection: &ClientConnection,
) -> Option<Admitted> {
    let limit = shared.config.hello_timeout;
    let (mut send, mut recv) = match timeout(limit, control_stream(connection)).await {
        Ok(Some(streams)) => streams,
        Ok(None) => return None,
        Err(_) => {
            connection.close(
                CloseCode::ProtocolViolation as u32,
                b"no control stream opened",
            );
            return None;
        }
    };
    let mut body = Vec::new();
    let hello = match timeout(limit, read_frame(&mut recv, &mut body)).await {
        Err(_) => Err(refuse(
            ErrorCode::ProtocolViolation,
            "no Hello within the time limit",
        )),
        Ok(Ok(true)) => match decode_body::<ClientFrame>(&body) {
            Ok(ClientFrame::Hello(hello)) => Ok(hello),
            Ok(ClientFrame::Request { .. }) => Err(refuse(
                ErrorCode::ProtocolViolation,
                "the first frame must be Hello",
            )),
            Err(e) => Err(refuse(ErrorCode::MalformedFrame, e.to_string())),
        },
        Ok(Ok(false)) | Ok(Err(ReadFrameError::Read(_))) => return None,
        // As on a live session: a prefix over the limit closes at once.
        Ok(Err(ReadFrameError::Frame(error @ FrameError::TooLarge { .. }))) => {
            connection.close(
                CloseCode::FrameTooLarge as u32,
                error.to_string().as_bytes(),
            );
            return None;
        }
        Ok(Err(e)) => Err(refuse(ErrorCode::MalformedFrame, e.to_string())),
    };
    let (outbox_tx, outbox_rx) = outbox(shared.config.outbox_capacity);
    let (opened, moved) = match hello
        .map(|hello| (resuming_elsewhere(shared, connection, &hello), hello))
    {
        // Its token names another node: the session comes here from it.
        Ok((Some(Ok(resuming)), _)) => {
            let opened =
                commands::resume_elsewhere(shared, resuming, Some(connection.clone()), outbox_tx)
                    .await
                    .map(|(welcome, session, generation)| {
                        (welcome, session, generation, Bytes::new())
                    });
            (opened, true)
        }
        Ok((Some(Err(refusal)), _)) => (Err(refusal), false),
        Ok((None, hello)) => {
            let blocks = first_blocks(shared, hooks, &hello).await;
            let opened = open_session(shared, connection, hello, outbox_tx, blocks);
            (opened, false)
        }
        Err(refusal) => (Err(refusal), false),
    };
    match opened {
        Ok((mut welcome, session, generation, backlog)) => {
            if let (false, Resumed::Snapshots { parties, waiting }) = (moved, &mut welcome.resumed)
            {
                // Its parties homed on other nodes: their snapshots too.
                let (remote, remote_waiting) = shared.route().remote_snapshots(&session).await;
                parties.extend(remote);
                waiting.extend(remote_waiting);
            }
            let welcome = ServerFrame::Welcome(welcome);
            if let Err(error) = write_welcome(&mut send, &welcome, session.version).await {
                // The session is attached to this connection already (a
                // resume used its token): let it go as a lost connection,
                // so the grace window, not a stuck attachment, decides.
                tracing::warn!(%error, "could not send Welcome");
                connection.close(
                    CloseCode::FrameTooLarge as u32,
                    b"Welcome could not be sent",
                );
                if session.detach(generation) {
                    grace::connection_lost(shared, &session, generation);
                }
                return None;
            }
            Some(Admitted {
                send,
                recv,
                session,
                generation,
                backlog,
                outbox: outbox_rx,
            })
        }
        Err(refusal) => {
            tracing::info!(code = %refusal.code, message = %refusal.message, "hello refused");
            shared.metrics.refused_hello(refusal.code);
            let _ = write_frame(&mut send, &ServerFrame::Refused(refusal.clone())).await;
            let _ = send.finish();
            // Give the Refused frame a moment to arrive before the close
            // discards it; the close reason repeats the message regardless.
            let _ = timeout(std::time::Duration::from_millis(500), send.stopped()).await;
            connection.close(
                CloseCode::HandshakeRefused as u32,
                refusal.to_string().as_bytes(),
            );
            None
        }
    }
}

/// The session's control stream: the connection's first bidirectional
/// stream (a browser's, once its WebTransport header is read).
async fn control_stream(connection: &ClientConnection) -> Option<(SendStream, RecvStream)> {
    match connection {
        ClientConnection::Quic(connection) => connection.accept_bi().await.ok(),
        ClientConnection::Web(session) => match web::accept_control(session).await {
            Ok(streams) => Some(streams),
            Err(error) => {
                tracing::info!(%error, "browser session without a control stream");
                connection.close(
                    CloseCode::ProtocolViolation as u32,
                    error.to_string().as_bytes(),
                );
                None
            }
        },
    }
}

/// The block list a new session starts with: what the game's hook says
/// for its user (nothing without hooks, for a resume, or for a Hello that
/// will be refused).
async fn first_blocks(shared: &Shared, hooks: Option<&HookRunner>, hello: &Hello) -> Vec<String> {
    let Some(hooks) = hooks.filter(|_| hello.resume.is_none()) else {
        return Vec::new();
    };
    match authenticate(shared, hello) {
        Ok((user_id, _)) => hooks.block_list(&user_id).await,
        Err(_) => Vec::new(),
    }
}

/// A new session (with the block list `blocks`), or an existing one taken
/// back by a resume.
fn open_session(
    shared: &Arc<Shared>,
    connection: &ClientConnection,
    hello: Hello,
    outbox: OutboxSender,
    blocks: Vec<String>,
) -> Result<(Welcome, SessionRef, u64, Bytes), ErrorBody> {
    let (user_id, username) = authenticate(shared, &hello)?;
    let (session, resume) = match hello.resume {
        None => {
            let presence = Presence {
                user_id,
                username,
                session_id: SessionId::random(),
            };
            let address = AddressKey::counted(
                connection.remote_address().ip(),
                shared.config.limit_loopback,
            );
            let log = ReplayLog::new(shared.config.replay_events, shared.config.replay_bytes);
            let session = Arc::new(
                SessionLink::new(presence, log, shared.metrics.clone())
                    .opened_from(address)
                    .speaking(hello.version),
            );
            // Before anyone sees it: its followers see it by its list.
            session.replace_blocks(blocks.iter().cloned().collect());
            shared
                .register_session(session.clone())
                .map_err(|limit| too_many_sessions(shared, limit))?;
            metrics::count(&shared.metrics.sessions_started);
            super::presence::session_started(&shared.users, shared.route(), &session);
            (session, None)
        }
        Some(Resume {
            token,
            last_event_seq,
        }) => {
            let refused = || {
                refuse(
                    ErrorCode::ResumeRefused,
                    "resume token unknown, already used, or its grace window is over; start a new session",
                )
            };
            let token = ResumeToken::parse(&token).ok_or_else(refused)?;
            let (session_id, secret) = (token.session, token.secret);
            let session = shared.find_session(session_id).ok_or_else(refused)?;
            if session.presence.user_id != user_id {
                return Err(refuse(
                    ErrorCode::ResumeRefused,
                    "that resume token belongs to another user",
                ));
            }
            // Its logged events were made for its first Hello's version.
            if session.version != hello.version {
                return Err(refuse(
                    ErrorCode::ResumeRefused,
                    format!(
                        "that session speaks protocol version {}; resume it with that version, or start a new session",
                        session.version
                    ),
                ));
            }
            metrics::count(&shared.metrics.sessions_resumed);
            (session, Some((secret, last_event_seq)))
        }
    };
    let attached = session
        .attach(Some(connection.clone()), outbox, resume)
        .map_err(|ResumeRefusal::Token| {
            refuse(
                ErrorCode::ResumeRefused,
                "resume token already used, or the session has ended; start a new session",
            )
        })?;
    if let Some(old) = attached.superseded {
        old.close(
            CloseCode::Superseded as u32,
            b"session resumed on another connection",
        );
    }
    let (resumed, backlog) = if resume.is_none() {
        tracing::info!(username = %session.presence.username, "session started");
        if !blocks.is_empty() {
            // Numbered after Welcome's last event: the client's first.
            metrics::count(&shared.metrics.block_lists_by_server);
            session.push_event(Event::BlocksChanged { user_ids: blocks });
        }
        (Resumed::New, Bytes::new())
    } else {
        grace::set_connected(shared, &session, true, false);
        match attached.replay {
            Some(replay) => {
                tracing::info!(replayed = replay.count, "session resumed");
                let count = u32::try_from(replay.count).unwrap_or(u32::MAX);
                (Resumed::Replayed { count }, replay.frames)
            }
            None => {
                tracing::info!("session resumed from snapshots (gap older than the replay log)");
                (snapshots(shared, &session), Bytes::new())
            }
        }
    };
    let welcome = Welcome {
        session_id: session.session_id(),
        presence: session.presence.clone(),
        resume_token: shared.resume_key.issue(
            session.session_id(),
            &session.presence.user_id,
            shared.route().me,
            attached.resume_secret,
        ),
        limits: shared.limits.clone(),
        last_event_seq: attached.last_event_seq,
        resumed,
    };
    Ok((welcome, session, attached.generation, backlog))
}

/// The refusal of a new session whose user or address has the most
/// sessions allowed; counted under its cause.
fn too_many_sessions(shared: &Shared, limit: SessionLimit) -> ErrorBody {
    let SessionLimit { whose, max } = limit;
    let (counter, message) = match whose {
        Whose::User => (
            &shared.metrics.refused_sessions_per_user,
            format!("this user already has {max} sessions on this server, the most allowed; end one, or resume it with its token"),
        ),
        Whose::Address => (
            &shared.metrics.refused_sessions_per_address,
            format!("{max} sessions already come from this address, the most allowed; end one, or resume it with its token"),
        ),
    };
    metrics::count(counter);
    refuse(ErrorCode::RateLimited, message)
}

/// A Hello that resumes a session held by another node of the cluster:
/// who resumes (its identity checked), or the refusal; `None` for any other
/// Hello.
fn resuming_elsewhere(
    shared: &Shared,
    connection: &ClientConnection,
    hello: &Hello,
) -> Option<Result<commands::Resuming, ErrorBody>> {
    let token = ResumeToken::parse(&hello.resume.as_ref()?.token)?;
    if !commands::names_another_node(shared, &token) {
        return None;
    }
    Some(
        authenticate(shared, hello).map(|(user_id, username)| commands::Resuming {
            user_id,
            username,
            version: hello.version,
            token,
            address: AddressKey::counted(
                connection.remote_address().ip(),
                shared.config.limit_loopback,
            ),
        }),
    )
}

fn snapshots(shared: &Shared, session: &SessionRef) -> Resumed {
    let (parties, waiting) =
        commands::snapshots_of(shared, session.session_id(), session.party_ids());
    Resumed::Snapshots { parties, waiting }
}

/// Checks version and identity; returns the user id and username.
fn authenticate(shared: &Shared, hello: &Hello) -> Result<(String, String), ErrorBody> {
    if !(OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&hello.version) {
        return Err(refuse(
            ErrorCode::VersionMismatch,
            format!(
                "this server speaks protocol versions {OLDEST_PROTOCOL_VERSION} to {PROTOCOL_VERSION}; the client sent version {}",
                hello.version
            ),
        ));
    }
    let unauthenticated = |message: String| refuse(ErrorCode::Unauthenticated, message);
    match (&shared.config.auth, &hello.identity) {
        (AuthMode::Dev, Identity::Dev { user_id, username }) => {
            validate_name("user_id", user_id).map_err(unauthenticated)?;
            validate_name("username", username).map_err(unauthenticated)?;
            Ok((user_id.clone(), username.clone()))
        }
        (AuthMode::Dev, Identity::Token { .. }) => Err(unauthenticated(
            "this server runs in dev mode without a token secret; send a Dev identity".into(),
        )),
        (AuthMode::Token { .. }, Identity::Dev { .. }) => Err(unauthenticated(
            "this server requires a signed token; dev identities are refused".into(),
        )),
        (AuthMode::Token { secret, previous }, Identity::Token { token }) => {
            let claims = verify_token_rotating(secret, previous.as_deref(), token, unix_now())
                .map_err(|e| unauthenticated(e.to_string()))?;
            Ok((claims.user_id, claims.username))
        }
    }
}

fn ending_of(connection: &ClientConnection, error: &ConnectionError) -> Ending {
    // A browser's goodbye is a capsule that closes the session: its
    // connection is then closed from this side.
    if connection.closed_by_peer() {
        return Ending::Goodbye;
    }
    match error {
        // The peer closed the connection itself: a goodbye.
        ConnectionError::ApplicationClosed(_) | ConnectionError::ConnectionClosed(_) => {
            Ending::Goodbye
        }
        // Timed out, reset, or closed by this server (slow consumer,
        // superseded, shutdown): the session may come back.
        _ => Ending::Lost,
    }
}

/// A command added after the session's version is answered as that
/// version's server answered a tag it did not know; true if it was.
fn newer_than_session(session: &SessionRef, id: u32, command: &Command) -> bool {
    let added = command.since_version();
    if added <= session.version {
        return false;
    }
    let message = format!(
        "unknown command for protocol version {} (added in version {added})",
        session.version
    );
    session.push(Outbound::Response {
        id,
        result: Err(refuse(ErrorCode::MalformedFrame, message)),
    });
    true
}

async fn control_loop(
    shared: &Arc<Shared>,
    hooks: Option<&HookRunner>,
    session: &SessionRef,
    generation: u64,
    recv: &mut RecvStream,
    connection: &ClientConnection,
) -> Ending {
    let mut body = Vec::new();
    let mut command_limit = RateLimit::new(shared.config.command_rate, Instant::now());
    let mut data_limit = RateLimit::new(shared.config.data_rate, Instant::now());
    loop {
        // Before waiting: what a large frame needed is not kept while idle.
        release_if_large(&mut body);
        let read = read_frame(recv, &mut body).await;
        // Taken over by a resume on another connection: what still arrives
        // here is not the session's. A frame is not handled, or its answer
        // would reach the new connection under an id that client never
        // sent; how this stream ends (finished, reset, a bad frame; Chrome
        // resets the streams of a transport closed Superseded) must not
        // close the new connection nor end the session.
        if !session.is_attached(generation) {
            return Ending::Lost;
        }
        match read {
            Ok(true) => {}
            // The client finished its side: a clean goodbye.
            Ok(false) => return Ending::Goodbye,
            Err(error) => return read_failed(session, connection, error),
        }
        match decode_client_frame(&body, session.version) {
            Ok(ClientFrame::Request { id, command })
                if newer_than_session(session, id, &command) => {}
            Ok(ClientFrame::Request { id, command }) => {
                metrics::count(&shared.metrics.commands);
                // Reliable party data counts against the data limit, every
                // other command against the command limit.
                let limit = match command {
                    Command::SendData { .. } => &mut data_limit,
                    _ => &mut command_limit,
                };
                let started = Instant::now();
                match limit.check(started) {
                    Verdict::Allow => {
                        // The game's rules first, outside every lock; a
                        // slow hook holds up only this session's commands.
                        let command = match before_hook(shared, hooks, session, command).await {
                            Ok(command) => command,
                            Err(refusal) => {
                                session.push(Outbound::Response {
                                    id,
                                    result: Err(refusal),
                                });
                                continue;
                            }
                        };
                        if let Some(deferred) = commands::handle(shared, session, id, command) {
                            // Other nodes take part (a party homed there,
                            // a cluster-wide lookup): its answer first,
                            // then this session's next command.
                            commands::complete(shared, session, id, deferred).await;
                        }
                        let took = started.elapsed().as_secs_f64();
                        shared.metrics.command_seconds.observe(took);
                    }
                    Verdict::Deny => {
                        metrics::count(&shared.metrics.dropped_rate_limited);
                        session.push(Outbound::Response {
                            id,
                            result: Err(refuse(
                                ErrorCode::RateLimited,
                                "too many commands; slow down (see Welcome limits)",
                            )),
                        });
                    }
                    Verdict::Disconnect => {
                        metrics::count(&shared.metrics.rate_limit_disconnects);
                        tracing::warn!("closing: kept exceeding the command rate limit");
                        session.close(CloseCode::RateLimited, "rate limit exceeded for too long");
                        return Ending::Violation;
                    }
                }
            }
            Ok(ClientFrame::Hello(_)) => session.push(Outbound::FrameError(refuse(
                ErrorCode::ProtocolViolation,
                "Hello was already received on this session",
            ))),
            Err(error) => {
                tracing::debug!(%error, "malformed frame");
                let refusal = refuse(ErrorCode::MalformedFrame, error.to_string());
                // A request whose id still reads is answered under it.
                match request_id_hint(&body) {
                    Some(id) => session.push(Outbound::Response {
                        id,
                        result: Err(refusal),
                    }),
                    None => session.push(Outbound::FrameError(refusal)),
                }
            }
        }
    }
}

/// How a session ends when its control stream could not be read.
fn read_failed(
    session: &SessionRef,
    connection: &ClientConnection,
    error: ReadFrameError,
) -> Ending {
    match error {
        ReadFrameError::Read(ReadError::ConnectionLost(_))
            if session.cut_for_violation.load(Ordering::Acquire) =>
        {
            Ending::Violation
        }
        ReadFrameError::Read(ReadError::ConnectionLost(error)) => ending_of(connection, &error),
        ReadFrameError::Read(ReadError::Reset(code)) => {
            tracing::info!(%code, "closing: the client reset its control stream");
            session.close(CloseCode::ProtocolViolation, "the control stream was reset");
            Ending::Violation
        }
        ReadFrameError::Read(_) => Ending::Violation,
        error => {
            // The stream can't be resynchronised after a bad length.
            tracing::info!(%error, "closing: unreadable control stream");
            let code = match error {
                ReadFrameError::Frame(FrameError::TooLarge { .. }) => CloseCode::FrameTooLarge,
                _ => CloseCode::ProtocolViolation,
            };
            session.close(code, &error.to_string());
            Ending::Violation
        }
    }
}

/// The game's before-hook on `command`, when the game installed hooks and
/// the command meets one (the command table says which; joins and
/// removals ask the party's home).
async fn before_hook(
    shared: &Arc<Shared>,
    hooks: Option<&HookRunner>,
    session: &SessionRef,
    command: Command,
) -> Result<Command, ErrorBody> {
    let Some(hooks) = hooks else {
        return Ok(command);
    };
    let caller = &session.presence;
    let Some(point) = commands::hook_point(shared, caller, &command).await else {
        return Ok(command);
    };
    let server = super::api::ServerApi {
        shared: shared.clone(),
    };
    hooks.before(server, caller.clone(), point, command).await
}

/// The hot path: one datagram in, the other members' datagrams out. The
/// shard is read-locked only to collect recipients; the outgoing datagram
/// is built once and shared (`Bytes` clones are reference counts). With a
/// coalescing window it waits in each recipient's buffer for the flusher
/// (`coalesce.rs`) instead of going to quinn at once.
async fn datagram_loop(shared: Arc<Shared>, session: SessionRef, connection: ClientConnection) {
    let me = session.session_id();
    let max_payload = shared.limits.max_datagram_data as usize;
    let mut recipients: Vec<SessionRef> = Vec::new();
    let mut limit = RateLimit::new(shared.config.data_rate, Instant::now());
    let route = shared.route();
    while let Ok(datagram) = connection.read_datagram().await {
        metrics::count(&shared.metrics.datagrams_in);
        match limit.check(Instant::now()) {
            Verdict::Allow => {}
            // Dropped and counted, silently: a refusal per datagram would
            // hand a flooder a reflector.
            Verdict::Deny => {
                metrics::count(&shared.metrics.dropped_rate_limited);
                continue;
            }
            Verdict::Disconnect => {
                metrics::count(&shared.metrics.rate_limit_disconnects);
                tracing::warn!("closing: kept exceeding the data rate limit");
                // A violation, as for commands: no grace window.
                session.cut_for_violation.store(true, Ordering::Release);
                session.close(CloseCode::RateLimited, "rate limit exceeded for too long");
                break;
            }
        }
        // A zero-length datagram is a keep-alive (PROTOCOL.md §5): QUIC has
        // already done its work by delivering it.
        if datagram.is_empty() {
            continue;
        }
        let refused = |party_id, op_code, code, message: String| {
            session.push_event(Event::DataRefused {
                party_id,
                op_code,
                error: ErrorBody::new(code, message),
            });
        };
        let hint = client_datagram_hint(&datagram);
        let data = match decode_client_datagram(datagram) {
            Ok(data) => data,
            Err(error) => {
                let (party_id, op_code) = hint;
                refused(
                    party_id,
                    op_code,
                    ErrorCode::MalformedFrame,
                    error.to_string(),
                );
                continue;
            }
        };
        if data.payload.len() > max_payload {
            let message = format!(
                "datagram payload of {} bytes exceeds the limit of {max_payload}",
                data.payload.len()
            );
            metrics::count(&shared.metrics.dropped_oversize);
            refused(
                data.party_id,
                data.op_code,
                ErrorCode::PayloadTooLarge,
                message,
            );
            continue;
        }
        // Homed on another node: its home checks the seat again and fans
        // it out (one message per node).
        match route.datagram_to_home(&session, data.party_id, data.op_code, &data.payload) {
            Ok(false) => {}
            Ok(true) => continue,
            Err(()) => {
                metrics::count(&shared.metrics.dropped_not_member);
                let message = "this session has no seat in that party".to_string();
                refused(data.party_id, data.op_code, ErrorCode::NotMember, message);
                continue;
            }
        }
        let checked = shared.table.read(data.party_id, |party| {
            let sender = party.data_recipients(me, data.op_code, &mut recipients)?;
            Ok(sender.withheld)
        });
        match checked {
            Ok(0) => {}
            Ok(withheld) => {
                shared.metrics.data_withheld.inc_by(withheld as u64);
            }
            Err(error) => {
                metrics::count(&shared.metrics.dropped_not_member);
                recipients.clear();
                refused(data.party_id, data.op_code, error.code(), error.to_string());
                continue;
            }
        }
        shared.metrics.fan_out.observe(recipients.len() as f64);
        let outgoing = encode_server_datagram(data.party_id, me, data.op_code, &data.payload);
        route.fan_out(&mut recipients, outgoing);
    }
}
