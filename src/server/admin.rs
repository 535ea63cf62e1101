//! The admin HTTP API (`--admin ADDR`, off by default): JSON over plain
//! HTTP/1.1 for operators. Stats (this node's); parties listed, searched
//! by label, inspected, kicked from and closed; sessions listed and
//! disconnected, on every node of a cluster. Every request needs
//! `Authorization: Bearer TOKEN`; the routes, status codes and error shape
//! are in README.md, "Admin API". Each change goes through [`ServerApi`],
//! so members hear it as they hear any other, on whichever node.

use super::api::{ApiError, ServerApi, SessionInfo};
use super::{config::AuthMode, exposition, state::Shared};
use crate::protocol::{
    ConnectionQuality, ErrorCode, InvitePolicy, KeyValues, LeaderPolicy, PartyId, Presence,
    ReadyCheck, SessionId,
};
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use ring::hmac;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

/// The shortest admin token accepted: 16 bytes is already far beyond
/// guessing over HTTP; `openssl rand -hex 32` makes a good one.
pub(crate) const MIN_TOKEN_BYTES: usize = 16;
/// Parties listed when the request names no limit, and the most it may.
const DEFAULT_PARTY_LIMIT: usize = 100;
const MAX_PARTY_LIMIT: usize = 1000;
/// Sessions listed when the request names no limit, and the most it may
/// (a server's default `max_sessions`).
const DEFAULT_SESSION_LIMIT: usize = 1000;
const MAX_SESSION_LIMIT: usize = 100_000;
/// A disconnect reason travels in the QUIC close frame, which must fit
/// one packet.
const MAX_REASON_BYTES: usize = 200;
const DEFAULT_DISCONNECT_REASON: &str = "disconnected by the server's operator";
/// Request bodies are a few fields of JSON.
const MAX_BODY_BYTES: usize = 16 * 1024;
const CHALLENGE: &str = "Bearer realm=\"partyline-admin\"";
const CHALLENGE_WRONG_TOKEN: &str = "Bearer realm=\"partyline-admin\", error=\"invalid_token\"";

/// Why a token cannot be the admin token, or `Ok`.
pub(crate) fn check_token(token: &str) -> Result<(), String> {
    if token.len() < MIN_TOKEN_BYTES {
        return Err(format!(
            "the admin token must be at least {MIN_TOKEN_BYTES} bytes long, got {}: make one with \
             `openssl rand -hex 32`",
            token.len()
        ));
    }
    // It travels in an HTTP header: anything else could never be sent.
    if !token.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(
            "the admin token must be visible ASCII characters only, no spaces or control \
             characters: it travels in an HTTP header"
                .into(),
        );
    }
    Ok(())
}

/// Checks presented tokens against the configured one in constant time:
/// it compares HMACs under a random key, so neither the token's bytes nor
/// its length show in the timing.
pub(crate) struct Bearer {
    key: hmac::Key,
    expected: hmac::Tag,
}

impl Bearer {
    pub(crate) fn new(token: &str) -> Result<Self, String> {
        check_token(token)?;
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .map_err(|_| "no system randomness to key the admin token check".to_string())?;
        let expected = hmac::sign(&key, token.as_bytes());
        Ok(Bearer { key, expected })
    }

    fn accepts(&self, presented: &[u8]) -> bool {
        hmac::verify(&self.key, presented, self.expected.as_ref()).is_ok()
    }
}

#[derive(Clone)]
struct Admin {
    api: ServerApi,
    bearer: Arc<Bearer>,
    started: Instant,
}

/// Serves the admin API (and `/metrics`, without the token, when
/// `with_metrics`) until the server stops.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    bearer: Bearer,
    with_metrics: bool,
) {
    let app = router(shared, bearer, with_metrics);
    // The peer's address names who acted, in the logs.
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(error) = axum::serve(listener, service).await {
        tracing::error!(%error, "admin API stopped");
    }
}

fn router(shared: Arc<Shared>, bearer: Bearer, with_metrics: bool) -> Router {
    let admin = Admin {
        api: ServerApi {
            shared: shared.clone(),
        },
        bearer: Arc::new(bearer),
        started: Instant::now(),
    };
    // The token check is layered over the fallbacks too, so that without
    // the token nothing tells which routes exist.
    let routes = Router::new()
        .route("/v1/stats", get(stats))
        .route("/v1/parties", get(list_parties))
        .route("/v1/parties/{party_id}", get(party).delete(close_party))
        .route("/v1/parties/{party_id}/kick", post(kick))
        .route("/v1/sessions", get(list_sessions))
        .route("/v1/sessions/{session_id}", get(session).delete(disconnect))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            require_bearer,
        ))
        .with_state(admin);
    if with_metrics {
        exposition::router(shared).merge(routes)
    } else {
        routes
    }
}

/// What every refusal answers:
/// `{"error": {"code": "...", "code_number": 6, "message": "..."}}`, with
/// `code_number` only for the protocol's error codes.
#[derive(Debug)]
struct AdminError {
    status: StatusCode,
    code: String,
    code_number: Option<u16>,
    message: String,
    /// `WWW-Authenticate`, on a 401.
    challenge: Option<&'static str>,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code_number: Option<u16>,
    message: &'a str,
}

impl AdminError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        AdminError {
            status,
            code: code.to_string(),
            code_number: None,
            message: message.into(),
            challenge: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn unauthorized(wrong_token: bool) -> Self {
        let (message, challenge) = if wrong_token {
            ("the bearer token is wrong", CHALLENGE_WRONG_TOKEN)
        } else {
            (
                "the admin API needs the header `Authorization: Bearer TOKEN`, with the server's \
                 admin token",
                CHALLENGE,
            )
        };
        AdminError {
            challenge: Some(challenge),
            ..Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
        }
    }
}

impl From<ApiError> for AdminError {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::SessionNotFound(id) => Self::new(
                StatusCode::NOT_FOUND,
                "SessionNotFound",
                format!("no live session {id}"),
            ),
            unavailable @ ApiError::Unavailable { .. } => AdminError {
                code_number: Some(ErrorCode::Unavailable.number()),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    unavailable.to_string(),
                )
            },
            ApiError::Refused(body) => {
                let status = match body.code {
                    ErrorCode::PartyNotFound => StatusCode::NOT_FOUND,
                    ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
                    ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                    // A party rule refused, given the party as it is now.
                    _ => StatusCode::CONFLICT,
                };
                AdminError {
                    code_number: Some(body.code.number()),
                    ..Self::new(status, &body.code.to_string(), body.message)
                }
            }
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = ErrorJson {
            error: ErrorFields {
                code: &self.code,
                code_number: self.code_number,
                message: &self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// The token after `Bearer ` (the scheme in any case), if the request has one.
fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|&byte| byte == b' ')?;
    let (scheme, token) = value.split_at(space);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| token.trim_ascii())
}

fn peer(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |info| info.0.to_string())
}

async fn require_bearer(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    match bearer_token(request.headers()) {
        Some(token) if admin.bearer.accepts(token) => next.run(request).await,
        Some(_) => {
            tracing::warn!(
                admin = %peer(&request),
                path = request.uri().path(),
                "admin API: a request with a wrong bearer token"
            );
            AdminError::unauthorized(true).into_response()
        }
        None => AdminError::unauthorized(false).into_response(),
    }
}

async fn not_found(method: Method, uri: Uri) -> AdminError {
    AdminError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "no route for {method} {}: the admin API's routes are under /v1/",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> AdminError {
    AdminError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("{} does not take {method}", uri.path()),
    )
}

/// An id from the path, or a 400 saying what is wrong with it.
fn id_from<T: FromStr>(
    what: &str,
    path: Result<Path<String>, PathRejection>,
) -> Result<T, AdminError> {
    let Path(text) = path.map_err(|rejection| AdminError::bad_request(rejection.body_text()))?;
    text.parse().map_err(|_| {
        AdminError::bad_request(format!(
            "not a {what} id: {text:?} (expected a UUID such as \
             67e55044-10b1-426f-9247-bb680e5fe0c8)"
        ))
    })
}

fn query_from<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, AdminError> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| AdminError::bad_request(rejection.body_text()))
}

/// The `limit` asked for, `default` when none, refused outside 1..=most.
fn limit(asked: Option<usize>, default: usize, most: usize) -> Result<usize, AdminError> {
    match asked.unwrap_or(default) {
        limit @ 1.. if limit <= most => Ok(limit),
        other => Err(AdminError::bad_request(format!(
            "limit must be 1 to {most}, got {other}"
        ))),
    }
}

#[derive(Serialize)]
struct Stats {
    version: &'static str,
    /// This node's name (`alone` for a server alone): stats are its own.
    node: String,
    uptime_seconds: u64,
    /// "dev" (clients name themselves) or "token" (signed tokens).
    auth: &'static str,
    sessions: SessionCounts,
    parties: PartyCounts,
    join_codes: u64,
    matchmaking_tickets: u64,
    handshakes_in_progress: u64,
    /// QUIC connections carrying a session.
    transport_connections: u64,
    /// Counts since the server started.
    totals: Totals,
}

#[derive(Serialize)]
struct SessionCounts {
    /// Connected or in their grace window.
    alive: u64,
    connected: u64,
    in_grace: u64,
}

#[derive(Serialize)]
struct PartyCounts {
    alive: u64,
    listed: u64,
}

#[derive(Serialize)]
struct Totals {
    sessions_started: u64,
    sessions_resumed: u64,
    commands: u64,
    datagrams_in: u64,
    datagrams_out: u64,
    reliable_data_in: u64,
    rate_limited: u64,
    slow_consumer_disconnects: u64,
    rate_limit_disconnects: u64,
}

async fn stats(State(admin): State<Admin>) -> Json<Stats> {
    let shared = &admin.api.shared;
    let sessions = shared.all_sessions();
    let alive = sessions.len() as u64;
    let connected = sessions
        .iter()
        .filter(|session| session.is_connected())
        .count() as u64;
    let m = &shared.metrics;
    let get = |counter: &prometheus_client::metrics::counter::Counter| counter.get();
    Json(Stats {
        version: env!("CARGO_PKG_VERSION"),
        node: shared.route().node_name(shared.route().me),
        uptime_seconds: admin.started.elapsed().as_secs(),
        auth: match shared.config.auth {
            AuthMode::Dev => "dev",
            AuthMode::Token { .. } => "token",
        },
        sessions: SessionCounts {
            alive,
            connected,
            in_grace: alive.saturating_sub(connected),
        },
        parties: PartyCounts {
            alive: shared.table.len() as u64,
            listed: shared.table.listed() as u64,
        },
        join_codes: shared.table.join_codes() as u64,
        matchmaking_tickets: shared.matchmaking.waiting() as u64,
        handshakes_in_progress: shared.handshakes.load(Ordering::Relaxed) as u64,
        transport_connections: m.transport.live() as u64,
        totals: Totals {
            sessions_started: get(&m.sessions_started),
            sessions_resumed: get(&m.sessions_resumed),
            commands: get(&m.commands),
            datagrams_in: get(&m.datagrams_in),
            datagrams_out: get(&m.datagrams_out),
            reliable_data_in: get(&m.reliable_data_in),
            rate_limited: get(&m.dropped_rate_limited),
            slow_consumer_disconnects: get(&m.slow_consumers),
            rate_limit_disconnects: get(&m.rate_limit_disconnects),
        },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartyQuery {
    /// Parties whose label contains this; every party when absent.
    label: Option<String>,
    limit: Option<usize>,
}

/// A party in a list.
#[derive(Serialize)]
struct PartySummary {
    party_id: PartyId,
    /// The node it lives on.
    home: String,
    label: String,
    seq: u64,
    open: bool,
    listed: bool,
    max_size: u16,
    members: usize,
    connected_members: usize,
    leader: Presence,
}

#[derive(Serialize)]
struct PartyList {
    parties: Vec<PartySummary>,
    /// Parties alive on the nodes that answered, matching or not: compare
    /// with the list's length to see whether the limit cut it short.
    parties_alive: u64,
    /// Nodes left out of the list: they did not answer in time.
    silent_nodes: Vec<String>,
}

async fn list_parties(
    State(admin): State<Admin>,
    query: Result<Query<PartyQuery>, QueryRejection>,
) -> Result<Json<PartyList>, AdminError> {
    let query = query_from(query)?;
    let limit = limit(query.limit, DEFAULT_PARTY_LIMIT, MAX_PARTY_LIMIT)?;
    let label = query.label.as_deref().unwrap_or("");
    let listing = admin.api.list_parties(label, limit).await;
    let parties: Vec<PartySummary> = listing
        .items
        .into_iter()
        .map(|party| PartySummary {
            home: home_name(&admin, party.party_id),
            party_id: party.party_id,
            seq: party.seq,
            open: party.open,
            listed: party.listed,
            max_size: party.max_size,
            members: party.members.len(),
            connected_members: party.members.len().saturating_sub(party.disconnected.len()),
            leader: party.leader,
            label: party.label,
        })
        .collect();
    Ok(Json(PartyList {
        parties,
        parties_alive: listing.alive,
        silent_nodes: listing.silent,
    }))
}

/// The name of the node a party lives on.
fn home_name(admin: &Admin, party_id: PartyId) -> String {
    let route = admin.api.shared.route();
    route.node_name(route.home_of(party_id))
}

/// One party, all an operator may want to see of it.
#[derive(Serialize)]
struct PartyView {
    party_id: PartyId,
    /// The node it lives on.
    home: String,
    seq: u64,
    label: String,
    open: bool,
    max_size: u16,
    invite_policy: InvitePolicy,
    listed: bool,
    /// `null` when the party has none.
    join_code: Option<String>,
    leader: Presence,
    /// In seat order.
    members: Vec<MemberView>,
    /// Join requests waiting for the leader, oldest first.
    requests: Vec<Presence>,
    state: KeyValues,
    properties: KeyValues,
    /// Who leads next: `Tenure` or `ConnectionQuality`.
    leader_policy: LeaderPolicy,
    /// The ready check running now (whom it asked, the answers so far);
    /// `null` when none runs.
    ready_check: Option<ReadyCheck>,
}

#[derive(Serialize)]
struct MemberView {
    user_id: String,
    username: String,
    session_id: SessionId,
    leader: bool,
    /// False while its session waits in its grace window.
    connected: bool,
    attributes: KeyValues,
    /// Its connection as the party's home last heard it: `Good`, `Fair`,
    /// `Poor`, or `Unknown` (not measured yet, or disconnected).
    quality: ConnectionQuality,
}

async fn party(
    State(admin): State<Admin>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PartyView>, AdminError> {
    let party_id = id_from::<PartyId>("party", path)?;
    let info = admin.api.party(party_id).await?;
    let party = info.snapshot;
    let leader = party.leader.session_id;
    let members = party
        .members
        .iter()
        .enumerate()
        .map(|(seat, member)| MemberView {
            user_id: member.user_id.clone(),
            username: member.username.clone(),
            session_id: member.session_id,
            leader: member.session_id == leader,
            connected: !party.disconnected.contains(&member.session_id),
            attributes: party.attributes.get(seat).cloned().unwrap_or_default(),
            quality: party.quality.get(seat).copied().unwrap_or_default(),
        })
        .collect();
    Ok(Json(PartyView {
        home: home_name(&admin, party.party_id),
        party_id: party.party_id,
        seq: party.seq,
        label: party.label,
        open: party.open,
        max_size: party.max_size,
        invite_policy: party.invite_policy,
        listed: party.listed,
        join_code: (!party.join_code.is_empty()).then_some(party.join_code),
        leader: party.leader,
        members,
        requests: info.requests,
        state: party.state,
        properties: party.properties,
        leader_policy: party.leader_policy,
        ready_check: party.ready_check.map(|check| *check),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KickRequest {
    user_id: String,
}

/// The body of a kick: an object, not the array serde would also take.
fn kick_request(body: &[u8]) -> Result<KickRequest, AdminError> {
    let refuse = |why: String| {
        AdminError::bad_request(format!(
            "the body must be JSON like {{\"user_id\": \"...\"}}: {why}"
        ))
    };
    match serde_json::from_slice(body).map_err(|error| refuse(error.to_string()))? {
        object @ serde_json::Value::Object(_) => {
            serde_json::from_value(object).map_err(|error| refuse(error.to_string()))
        }
        _ => Err(refuse("not an object".into())),
    }
}

#[derive(Serialize)]
struct Kicked {
    party_id: PartyId,
    kicked: String,
}

async fn kick(
    State(admin): State<Admin>,
    ConnectInfo(who): ConnectInfo<SocketAddr>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Kicked>, AdminError> {
    let party_id = id_from::<PartyId>("party", path)?;
    // The body is read whatever its Content-Type: `curl -d` sends a form type.
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "BodyTooLarge"
        } else {
            "BadRequest"
        };
        AdminError::new(status, code, rejection.body_text())
    })?;
    let KickRequest { user_id } = kick_request(&body)?;
    match admin.api.kick(party_id, &user_id).await {
        Ok(()) => {
            tracing::info!(admin = %who, party = %party_id, user = %user_id, "admin API: member kicked");
            Ok(Json(Kicked {
                party_id,
                kicked: user_id,
            }))
        }
        Err(error) => {
            tracing::info!(admin = %who, party = %party_id, user = %user_id, %error, "admin API: kick refused");
            Err(error.into())
        }
    }
}

#[derive(Serialize)]
struct Closed {
    party_id: PartyId,
    closed: bool,
}

async fn close_party(
    State(admin): State<Admin>,
    ConnectInfo(who): ConnectInfo<SocketAddr>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Closed>, AdminError> {
    let party_id = id_from::<PartyId>("party", path)?;
    match admin.api.close_party(party_id).await {
        Ok(()) => {
            tracing::info!(admin = %who, party = %party_id, "admin API: party closed");
            Ok(Json(Closed {
                party_id,
                closed: true,
            }))
        }
        Err(error) => {
            tracing::info!(admin = %who, party = %party_id, %error, "admin API: close refused");
            Err(error.into())
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionQuery {
    /// One user's sessions; everyone's when absent.
    user_id: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct SessionList {
    sessions: Vec<SessionInfo>,
    /// Sessions that matched on the nodes that answered: more than the
    /// list holds when the limit cut it short.
    matched: u64,
    /// Nodes left out of the list: they did not answer in time.
    silent_nodes: Vec<String>,
}

async fn list_sessions(
    State(admin): State<Admin>,
    query: Result<Query<SessionQuery>, QueryRejection>,
) -> Result<Json<SessionList>, AdminError> {
    let query = query_from(query)?;
    let limit = limit(query.limit, DEFAULT_SESSION_LIMIT, MAX_SESSION_LIMIT)?;
    let listing = admin
        .api
        .list_sessions(query.user_id.as_deref(), limit)
        .await;
    Ok(Json(SessionList {
        sessions: listing.items,
        matched: listing.matched,
        silent_nodes: listing.silent,
    }))
}

async fn session(
    State(admin): State<Admin>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SessionInfo>, AdminError> {
    let session_id = id_from::<SessionId>("session", path)?;
    Ok(Json(admin.api.session_info(session_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectQuery {
    /// What the client is told, with close code 9 (`Disconnected`).
    reason: Option<String>,
}

#[derive(Serialize)]
struct Disconnected {
    session_id: SessionId,
    disconnected: bool,
}

async fn disconnect(
    State(admin): State<Admin>,
    ConnectInfo(who): ConnectInfo<SocketAddr>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DisconnectQuery>, QueryRejection>,
) -> Result<Json<Disconnected>, AdminError> {
    let session_id = id_from::<SessionId>("session", path)?;
    let reason = query_from(query)?
        .reason
        .unwrap_or_else(|| DEFAULT_DISCONNECT_REASON.to_string());
    if reason.len() > MAX_REASON_BYTES {
        return Err(AdminError::bad_request(format!(
            "reason must be at most {MAX_REASON_BYTES} bytes, got {}",
            reason.len()
        )));
    }
    match admin.api.disconnect(session_id, &reason).await {
        Ok(()) => {
            tracing::info!(admin = %who, session = %session_id, reason, "admin API: session disconnected");
            Ok(Json(Disconnected {
                session_id,
                disconnected: true,
            }))
        }
        Err(error) => {
            tracing::info!(admin = %who, session = %session_id, %error, "admin API: disconnect refused");
            Err(error.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_unsendable_tokens_are_refused() {
        assert!(check_token("0123456789abcdef").is_ok());
        let short = check_token("0123456789abcde").unwrap_err();
        assert!(short.contains("at least 16 bytes"), "{short}");
        assert!(check_token("0123456789 abcdef").is_err());
        assert!(check_token("0123456789abcdef\n").is_err());
        assert!(check_token("0123456789abcdéf").is_err());
    }

    #[test]
    fn only_the_configured_token_is_accepted() {
        let bearer = Bearer::new("0123456789abcdef").unwrap();
        assert!(bearer.accepts(b"0123456789abcdef"));
        for wrong in [
            &b""[..],
            b"0123456789abcde",
            b"0123456789abcdeF",
            b"0123456789abcdef0",
        ] {
            assert!(!bearer.accepts(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case_and_other_schemes_are_not() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            bearer_token(&headers).map(<[u8]>::to_vec)
        };
        assert_eq!(with("Bearer abc"), Some(b"abc".to_vec()));
        assert_eq!(with("bearer  abc "), Some(b"abc".to_vec()));
        assert_eq!(with("Basic abc"), None);
        assert_eq!(with("Bearer"), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn a_party_rule_refusal_is_a_409_with_the_code_by_name_and_number() {
        let refusal = |code| {
            AdminError::from(ApiError::Refused(crate::protocol::ErrorBody::new(
                code, "why",
            )))
        };
        let error = refusal(ErrorCode::MemberNotFound);
        assert_eq!(error.status, StatusCode::CONFLICT);
        assert_eq!(
            (error.code.as_str(), error.code_number),
            ("MemberNotFound", Some(6))
        );
        assert_eq!(
            refusal(ErrorCode::PartyNotFound).status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            refusal(ErrorCode::InvalidArgument).status,
            StatusCode::BAD_REQUEST
        );
    }
}
