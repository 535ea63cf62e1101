//! `partyline client --json`: one JSON object per line in (commands) and
//! out (replies and events), for scripts, bots and tests in any language.
//! The schema is docs/CLIENT.md's; change both together.

use crate::commands::{execute, find, Failure, Fields, Reply, Request, COMMANDS};
use crate::shown::{needs_escape, shown};
use base64::Engine as _;
use partyline_client::{
    Client, ClientError, DisconnectReason, Event, Events, JoinOutcome, KeyValues, Party, Presence,
    UserStatus,
};
use serde_json::{json, Map, Value};
use std::fmt::Debug;
use std::io::BufRead;
use std::process::ExitCode;
use tokio::sync::mpsc;

pub async fn run(client: Client, mut events: Events) -> ExitCode {
    let (out, writer) = start_writer();
    let me = client.presence();
    let _ = out.send(json!({
        "event": "connected",
        "user_id": me.user_id,
        "username": me.username,
        "session_id": me.session_id.to_string(),
    }));

    // Events flow while a command waits for its reply; a session that ends
    // on its own (server shutdown, reconnecting given up) ends the run.
    let (ended_tx, mut ended) = tokio::sync::oneshot::channel::<DisconnectReason>();
    let event_out = out.clone();
    let forwarder = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let _ = event_out.send(event_json(&event));
            if let Event::Disconnected { reason } = event {
                let _ = ended_tx.send(reason);
                return;
            }
        }
    });

    let mut input = stdin_lines();
    let outcome = loop {
        tokio::select! {
            line = input.recv() => {
                let Some(line) = line else { break Ok(()) };
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let (answer, quit) = answer(&client, &line).await;
                let _ = out.send(answer);
                if quit {
                    break Ok(());
                }
            }
            reason = &mut ended => break Err(reason),
        }
    };
    forwarder.abort();
    let code = match outcome {
        Ok(()) => {
            client.close().await;
            ExitCode::SUCCESS
        }
        Err(reason) => {
            let reason =
                reason.map_or_else(|_| "the event stream ended".to_string(), |r| r.to_string());
            // Stderr is often a terminal, and the reason may be the server's.
            eprintln!("error: the session ended: {}", shown(&reason));
            ExitCode::FAILURE
        }
    };
    drop(out);
    // Every line written before the exit code is.
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    code
}

/// Stdin read on its own thread: a blocking read there never holds up the
/// runtime, nor its shutdown. Each item is one line without its newline.
fn stdin_lines() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        line.pop();
                    }
                    if tx.blocking_send(line).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Stdout written on its own thread, one flushed line per value: a reader
/// that is slow to take them never blocks the runtime.
fn start_writer() -> (std::sync::mpsc::Sender<Value>, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        for value in rx {
            if stdout
                .write_all(&json_line(&value))
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return;
            }
        }
    });
    (tx, writer)
}

/// `value` as one compact line of JSON, ending in a newline, that a
/// terminal can show as it is (see [`TerminalSafe`]).
pub fn json_line(value: &Value) -> Vec<u8> {
    use serde::Serialize as _;
    let mut line = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut line, TerminalSafe);
    // A Value always serializes, and writing to a Vec cannot fail.
    let _ = value.serialize(&mut serializer);
    line.push(b'\n');
    line
}

/// serde_json's compact form, with what a terminal would act on and
/// serde_json leaves as it is (DEL, C1 controls, bidi controls, line
/// separators) written as `\uXXXX`: the same JSON to every parser, and
/// safe to watch in a terminal. serde_json escapes the C0 controls (ESC,
/// CR, LF...) itself.
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut plain = 0;
        for (at, c) in fragment.char_indices() {
            if needs_escape(c) {
                writer.write_all(&fragment.as_bytes()[plain..at])?;
                // All of them are in the Basic Multilingual Plane: one
                // \uXXXX each, no surrogate pairs.
                write!(writer, "\\u{:04x}", u32::from(c))?;
                plain = at + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[plain..])
    }
}

/// The answer to one input line (every line gets exactly one, so a script
/// never waits in vain), and whether the client should stop.
pub async fn answer(client: &Client, line: &[u8]) -> (Value, bool) {
    let (id, request) = match parse(line) {
        Ok(parsed) => parsed,
        Err((id, message)) => return (error_line(id, &Failure::BadInput(message)), false),
    };
    let quit = request == Request::Quit;
    let answer = match request {
        Request::Help(topic) => help(topic.as_deref()).map_err(Failure::BadInput),
        request => execute(client, request)
            .await
            .map(|reply| reply_json(&reply))
            .map_err(Failure::Client),
    };
    match answer {
        Ok(ok) => (json!({ "id": id, "ok": ok }), quit),
        Err(failure) => (error_line(id, &failure), false),
    }
}

/// An input line as `(id, request)`, or `(id, what is wrong)`.
pub fn parse(line: &[u8]) -> Result<(Value, Request), (Value, String)> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|error| (Value::Null, format!("not a JSON object: {error}")))?;
    let Value::Object(object) = value else {
        return Err((
            Value::Null,
            r#"expected a JSON object such as {"id": 1, "cmd": "whoami"}"#.into(),
        ));
    };
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    let fail = |message: String| (id.clone(), message);
    let name = match object.get("cmd") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(fail("cmd must be a string".into())),
        None => return Err(fail(r#"missing "cmd" (try {"cmd": "help"})"#.into())),
    };
    let spec = find(name, false).ok_or_else(|| {
        fail(format!(
            "unknown cmd {name:?}; {{\"cmd\": \"help\"}} lists them"
        ))
    })?;
    if let Some(unknown) = object
        .keys()
        .find(|key| *key != "id" && *key != "cmd" && !spec.has_field(key))
    {
        let fields: Vec<&str> = spec.fields().collect();
        return Err(fail(format!(
            "{name} has no field {unknown:?} (its fields: {})",
            if fields.is_empty() {
                "none".to_string()
            } else {
                fields.join(", ")
            }
        )));
    }
    let request = (spec.build)(&Fields::Json(&object)).map_err(fail)?;
    Ok((id, request))
}

fn help(topic: Option<&str>) -> Result<Value, String> {
    let describe = |spec: &crate::commands::Spec| json!({ "cmd": spec.name, "fields": spec.fields().collect::<Vec<_>>(), "about": spec.about });
    match topic {
        Some(topic) => find(topic, false)
            .map(|spec| json!({ "commands": [describe(spec)] }))
            .ok_or_else(|| format!("no cmd {topic:?}")),
        None => Ok(json!({ "commands": COMMANDS.iter().map(describe).collect::<Vec<_>>() })),
    }
}

pub fn error_line(id: Value, failure: &Failure) -> Value {
    json!({ "id": id, "error": error_json(failure) })
}

pub fn error_json(failure: &Failure) -> Value {
    let (code, message) = match failure {
        Failure::BadInput(message) => ("BadInput", message.clone()),
        Failure::Client(ClientError::Refused(body)) => {
            let code = match body.code {
                partyline_client::ErrorCode::Unknown(_) => "Unknown".to_string(),
                known => known.to_string(),
            };
            return json!({
                "code": code,
                "code_number": body.code.number(),
                "message": body.message,
            });
        }
        Failure::Client(error) => (client_error_code(error), error.to_string()),
    };
    json!({ "code": code, "message": message })
}

/// Codes for what the SDK says itself (the server's have numbers).
pub fn client_error_code(error: &ClientError) -> &'static str {
    match error {
        ClientError::Refused(_) => "Refused",
        ClientError::Reconnecting => "Reconnecting",
        ClientError::Closed(_) => "Closed",
        ClientError::Protocol(_) => "Protocol",
        ClientError::Config(_) => "Config",
        ClientError::NoAnswer { .. }
        | ClientError::Tls { .. }
        | ClientError::ConnectionRefused { .. }
        | ClientError::Io(_) => "Connection",
    }
}

/// `SessionEnded` as `session_ended`: the reasons' names in the schema.
fn snake(value: &impl Debug) -> String {
    let mut out = String::new();
    for (index, c) in format!("{value:?}").chars().enumerate() {
        if c.is_ascii_uppercase() {
            if index > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn presence(presence: &Presence) -> Value {
    json!({
        "user_id": presence.user_id,
        "username": presence.username,
        "session_id": presence.session_id.to_string(),
    })
}

fn presences(list: &[Presence]) -> Value {
    Value::Array(list.iter().map(presence).collect())
}

fn key_values(map: &KeyValues) -> Value {
    Value::Object(
        map.iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect(),
    )
}

/// A presence with more fields beside it.
fn presence_with(who: &Presence, more: Value) -> Value {
    let mut object = match presence(who) {
        Value::Object(object) => object,
        _ => Map::new(),
    };
    if let Value::Object(more) = more {
        object.extend(more);
    }
    Value::Object(object)
}

fn user_status(status: &UserStatus) -> Value {
    presence_with(&status.presence, json!({ "status": status.status }))
}

pub fn party_json(party: &Party) -> Value {
    json!({
        "party_id": party.party_id.to_string(),
        "open": party.open,
        "max_size": party.max_size,
        "label": party.label,
        "invite_policy": snake(&party.invite_policy),
        "leader_policy": snake(&party.leader_policy),
        "leader": presence(&party.leader),
        "is_leader": party.is_leader(),
        "members": party.members.iter().map(|member| presence_with(&member.presence, json!({
            "connected": member.connected,
            "attributes": key_values(&member.attributes),
            "quality": snake(&member.quality),
        }))).collect::<Vec<_>>(),
        "join_requests": presences(&party.join_requests),
        "state": key_values(&party.state),
        "join_code": party.join_code,
        "listed": party.listed,
        "properties": key_values(&party.properties),
        "ready_check": party.ready_check.as_ref().map(ready_check_json),
        "muted": party.muted.iter().map(|mute| json!({
            "user_id": mute.user_id,
            "op_codes": mute.op_codes.map(|range| json!({ "min": range.min, "max": range.max })),
        })).collect::<Vec<_>>(),
    })
}

/// A ready check: who asked what, for how long, and the answers so far.
fn ready_check_json(check: &partyline_client::protocol::ReadyCheck) -> Value {
    json!({
        "check_id": check.check_id,
        "started_by": presence(&check.started_by),
        "message": check.message,
        "timeout_ms": check.timeout_ms,
        "ends_at_ms": check.ends_at_ms,
        "ready": presences(&check.ready),
        "not_ready": presences(&check.not_ready),
        "no_answer": presences(&check.no_answer),
    })
}

fn disconnect_reason(reason: &DisconnectReason) -> Value {
    let kind = match reason {
        DisconnectReason::ServerShutdown => "server_shutdown",
        DisconnectReason::ClosedByServer { .. } => "closed_by_server",
        DisconnectReason::ClosedLocally => "closed_locally",
        DisconnectReason::ConnectionLost(_) => "connection_lost",
        DisconnectReason::ReconnectFailed(_) => "reconnect_failed",
    };
    json!({ "kind": kind, "message": reason.to_string() })
}

/// Party data: `base64` always, `text` too when the bytes are UTF-8.
fn payload(data: &[u8]) -> Value {
    let mut object = Map::new();
    if let Ok(text) = std::str::from_utf8(data) {
        object.insert("text".into(), Value::String(text.to_string()));
    }
    object.insert(
        "base64".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(data)),
    );
    Value::Object(object)
}

pub fn reply_json(reply: &Reply) -> Value {
    match reply {
        Reply::Done => json!({}),
        Reply::Me(welcome) => json!({
            "user_id": welcome.presence.user_id,
            "username": welcome.presence.username,
            "session_id": welcome.session_id.to_string(),
            "limits": serde_json::to_value(&welcome.limits).unwrap_or(Value::Null),
        }),
        Reply::Parties(parties) => {
            json!({ "parties": parties.iter().map(party_json).collect::<Vec<_>>() })
        }
        Reply::Party(party) => json!({ "party": party_json(party) }),
        Reply::Joined(JoinOutcome::Joined(party)) => {
            json!({ "outcome": "joined", "party": party_json(party) })
        }
        Reply::Joined(JoinOutcome::Queued { party_id }) => {
            json!({ "outcome": "queued", "party_id": party_id.to_string() })
        }
        Reply::Requests { party_id, requests } => {
            json!({ "party_id": party_id.to_string(), "requests": presences(requests) })
        }
        Reply::Online(statuses) => {
            json!({ "online": statuses.iter().map(user_status).collect::<Vec<_>>() })
        }
        Reply::Invites(invites) => json!({ "invites": invites.iter().map(|invite| json!({
            "party_id": invite.party_id.to_string(),
            "inviter": presence(&invite.inviter),
            "leader": presence(&invite.leader),
            "members": invite.members,
            "max_size": invite.max_size,
            "open": invite.open,
            "label": invite.label,
            "expires_at_ms": invite.expires_at_ms,
        })).collect::<Vec<_>>() }),
        Reply::JoinCode { party_id, code } => {
            json!({ "party_id": party_id.to_string(), "code": code })
        }
        Reply::Search(page) => json!({
            "parties": page.parties.iter().map(|listed| json!({
                "party_id": listed.party_id.to_string(),
                "members": listed.members,
                "max_size": listed.max_size,
                "open": listed.open,
                "label": listed.label,
                "properties": key_values(&listed.properties),
            })).collect::<Vec<_>>(),
            "next_cursor": page.next_cursor.to_string(),
        }),
        Reply::Bans { party_id, bans } => json!({
            "party_id": party_id.to_string(),
            "bans": bans.iter().map(|ban| json!({ "user_id": ban.user_id, "until_ms": ban.until_ms })).collect::<Vec<_>>(),
        }),
        Reply::Ticket(ticket_id) => json!({ "ticket_id": ticket_id.to_string() }),
        Reply::Blocked(user_ids) => json!({ "blocked": user_ids }),
    }
}

/// `{"event": "member_joined", ...}`: the SDK's event, named in snake case.
pub fn event_json(event: &Event) -> Value {
    let id = |party_id: &partyline_client::PartyId| party_id.to_string();
    let (name, fields) = match event {
        Event::PartyJoined { party } => ("party_joined", json!({ "party": party_json(party) })),
        Event::MemberJoined { party_id, member } => (
            "member_joined",
            json!({ "party_id": id(party_id), "member": presence(member) }),
        ),
        Event::MemberLeft {
            party_id,
            member,
            reason,
        } => (
            "member_left",
            json!({ "party_id": id(party_id), "member": presence(member), "reason": snake(reason) }),
        ),
        Event::LeaderChanged { party_id, leader } => (
            "leader_changed",
            json!({ "party_id": id(party_id), "leader": presence(leader) }),
        ),
        Event::MemberConnectionChanged {
            party_id,
            member,
            connected,
        } => (
            "member_connection_changed",
            json!({ "party_id": id(party_id), "member": presence(member), "connected": connected }),
        ),
        Event::JoinRequested {
            party_id,
            requester,
        } => (
            "join_requested",
            json!({ "party_id": id(party_id), "requester": presence(requester) }),
        ),
        Event::JoinRequestGone {
            party_id,
            requester,
            reason,
        } => (
            "join_request_gone",
            json!({ "party_id": id(party_id), "requester": presence(requester), "reason": snake(reason) }),
        ),
        Event::JoinRequests { party_id, requests } => (
            "join_requests",
            json!({ "party_id": id(party_id), "requests": presences(requests) }),
        ),
        Event::JoinRejected { party_id, reason } => (
            "join_rejected",
            json!({ "party_id": id(party_id), "reason": snake(reason) }),
        ),
        Event::Kicked { party_id } => ("kicked", json!({ "party_id": id(party_id) })),
        Event::PartyClosed { party_id } => ("party_closed", json!({ "party_id": id(party_id) })),
        Event::PartyUpdated { party } => ("party_updated", json!({ "party": party_json(party) })),
        Event::Data(data) => {
            let mut fields = payload(&data.data);
            if let Value::Object(object) = &mut fields {
                object.insert("party_id".into(), Value::String(id(&data.party_id)));
                object.insert("sender".into(), presence(&data.sender));
                object.insert("op_code".into(), json!(data.op_code));
                object.insert("reliable".into(), json!(data.reliable));
            }
            ("data", fields)
        }
        Event::DataRefused {
            party_id,
            op_code,
            error,
        } => (
            "data_refused",
            json!({
                "party_id": id(party_id),
                "op_code": op_code,
                "error": error_json(&Failure::Client(ClientError::Refused(error.clone()))),
            }),
        ),
        Event::Reconnecting { reason } => (
            "reconnecting",
            json!({ "reason": disconnect_reason(reason) }),
        ),
        Event::Resumed => ("resumed", json!({})),
        Event::PartySynced { party } => ("party_synced", json!({ "party": party_json(party) })),
        Event::PartyLost { party_id } => ("party_lost", json!({ "party_id": id(party_id) })),
        Event::SessionLost {
            lost_parties,
            new_session,
        } => (
            "session_lost",
            json!({
                "lost_parties": lost_parties.iter().map(id).collect::<Vec<_>>(),
                "new_session": new_session.to_string(),
            }),
        ),
        Event::Disconnected { reason } => (
            "disconnected",
            json!({ "reason": disconnect_reason(reason) }),
        ),
        Event::ProtocolError { message } => ("protocol_error", json!({ "message": message })),
        Event::StatusOnline(status) => ("status_online", user_status(status)),
        Event::StatusChanged(status) => ("status_changed", user_status(status)),
        Event::StatusOffline { presence: who } => ("status_offline", presence(who)),
        Event::Invited(invite) => (
            "invited",
            json!({
                "party_id": id(&invite.party_id),
                "inviter": presence(&invite.inviter),
                "leader": presence(&invite.leader),
                "members": invite.members,
                "max_size": invite.max_size,
                "open": invite.open,
                "label": invite.label,
                "expires_at_ms": invite.expires_at_ms,
            }),
        ),
        Event::InviteGone { party_id, reason } => (
            "invite_gone",
            json!({ "party_id": id(party_id), "reason": snake(reason) }),
        ),
        Event::InviteDeclined { party_id, by } => (
            "invite_declined",
            json!({ "party_id": id(party_id), "by": presence(by) }),
        ),
        Event::PartyStateChanged { party_id, state } => (
            "party_state_changed",
            json!({ "party_id": id(party_id), "state": key_values(state) }),
        ),
        Event::MemberAttributesChanged {
            party_id,
            member,
            attributes,
        } => (
            "member_attributes_changed",
            json!({ "party_id": id(party_id), "member": presence(member), "attributes": key_values(attributes) }),
        ),
        Event::JoinCodeChanged { party_id, code } => (
            "join_code_changed",
            json!({ "party_id": id(party_id), "code": code }),
        ),
        Event::ListingChanged {
            party_id,
            listed,
            properties,
        } => (
            "listing_changed",
            json!({ "party_id": id(party_id), "listed": listed, "properties": key_values(properties) }),
        ),
        Event::TicketStarted {
            ticket_id,
            party_id,
        } => (
            "ticket_started",
            json!({ "ticket_id": ticket_id.to_string(), "party_id": party_id.as_ref().map(id) }),
        ),
        Event::TicketCancelled { ticket_id, reason } => (
            "ticket_cancelled",
            json!({ "ticket_id": ticket_id.to_string(), "reason": snake(reason) }),
        ),
        Event::Matched(found) => (
            "matched",
            json!({
                "match_id": uuid::Uuid::from_bytes(found.match_id).to_string(),
                "ticket_id": found.ticket_id.to_string(),
                "players": found.players.iter().map(|player| presence_with(&player.presence, json!({
                    "party_id": player.party_id.as_ref().map(id),
                    "strings": key_values(&player.strings),
                    "numbers": player.numbers,
                }))).collect::<Vec<_>>(),
                "token": found.token,
                "token_expires_at": found.token_expires_at,
            }),
        ),
        Event::ReadyCheckStarted { party_id, check } => (
            "ready_check_started",
            json!({ "party_id": id(party_id), "check": ready_check_json(check) }),
        ),
        Event::ReadyCheckAnswered {
            party_id,
            check_id,
            member,
            ready,
        } => (
            "ready_check_answered",
            json!({ "party_id": id(party_id), "check_id": check_id, "member": presence(member), "ready": ready }),
        ),
        Event::ReadyCheckEnded {
            party_id,
            check_id,
            outcome,
            ready,
            not_ready,
            no_answer,
        } => (
            "ready_check_ended",
            json!({
                "party_id": id(party_id),
                "check_id": check_id,
                "outcome": snake(outcome),
                "ready": presences(ready),
                "not_ready": presences(not_ready),
                "no_answer": presences(no_answer),
            }),
        ),
        Event::Banned { party_id, until_ms } => (
            "banned",
            json!({ "party_id": id(party_id), "until_ms": until_ms }),
        ),
        Event::BlocksChanged { user_ids } => ("blocks_changed", json!({ "user_ids": user_ids })),
    };
    let mut object = Map::new();
    object.insert("event".into(), Value::String(name.into()));
    if let Value::Object(fields) = fields {
        object.extend(fields);
    }
    Value::Object(object)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use partyline_client::{
        protocol::ErrorBody, ErrorCode, LeaveReason, PartyData, PartyId, SessionId,
    };
    use std::sync::Arc;

    fn ana() -> Presence {
        Presence {
            user_id: "ana".into(),
            username: "Ana".into(),
            session_id: SessionId::from_u128(1),
        }
    }

    #[test]
    fn input_lines_become_requests_or_typed_errors_that_keep_the_id() {
        let party = PartyId::from_u128(5);
        let (id, request) =
            parse(format!(r#"{{"id": 7, "cmd": "join_party", "party_id": "{party}"}}"#).as_bytes())
                .unwrap();
        assert_eq!((id, request), (json!(7), Request::JoinParty(party)));
        let (_, request) = parse(br#"{"cmd": "create_party", "open": false, "max_size": 2, "label": "x", "state": {"a": "b"}, "invite_policy": "any_member"}"#).unwrap();
        let Request::CreateParty(settings) = request else {
            panic!("create")
        };
        assert_eq!(
            (
                settings.open,
                settings.max_size,
                settings.state["a"].as_str()
            ),
            (false, 2, "b")
        );
        let (_, request) = parse(
            format!(
                r#"{{"cmd": "send_data", "party_id": "{party}", "op_code": -3, "base64": "AJ//"}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            request,
            Request::SendData {
                party_id: party,
                op_code: -3,
                data: vec![0, 0x9f, 0xff],
                reliable: false
            }
        );
        let (_, request) = parse(br#"{"cmd": "follow", "user_ids": ["ana", "bob"]}"#).unwrap();
        assert_eq!(request, Request::Follow(vec!["ana".into(), "bob".into()]));
        let (_, request) = parse(
            br#"{"cmd": "submit_ticket", "min_count": 2, "max_count": 2, "query_ranges": {"skill": {"min": 1, "max": 9}}, "members": [{"user_id": "ana", "numbers": {"skill": 5}}]}"#,
        )
        .unwrap();
        let Request::SubmitTicket(ticket) = request else {
            panic!("ticket")
        };
        assert_eq!(ticket.query.ranges["skill"].max, 9);
        assert_eq!(ticket.members[0].numbers["skill"], 5);

        let error = |line: &str| parse(line.as_bytes()).unwrap_err();
        assert_eq!(error("nonsense").0, Value::Null);
        assert!(error("[1]").1.contains("JSON object"));
        assert_eq!(
            error(r#"{"id": "a", "cmd": "fly"}"#),
            (
                json!("a"),
                r#"unknown cmd "fly"; {"cmd": "help"} lists them"#.to_string()
            )
        );
        assert!(error(r#"{"id": 1}"#).1.contains("missing \"cmd\""));
        assert!(error(r#"{"cmd": "join_party"}"#)
            .1
            .contains("missing party_id"));
        assert!(error(r#"{"cmd": "join_party", "party_id": 5}"#)
            .1
            .contains("must be a party id string"));
        assert!(error(r#"{"cmd": "join_party", "party_id": "."}"#)
            .1
            .contains("not a party id"));
        assert!(error(r#"{"cmd": "whoami", "extra": 1}"#)
            .1
            .contains("no field \"extra\""));
        assert!(error(r#"{"cmd": "create_party", "max_size": 1.5}"#)
            .1
            .contains("whole number"));
        assert!(error(r#"{"cmd": "create", "max_size": 1}"#)
            .1
            .contains("unknown cmd"));
    }

    /// A JavaScript number holds integers up to 2^53 only: a bot reading
    /// a ticket id as a number would cancel the wrong one.
    #[test]
    fn ids_beyond_two_to_the_53_are_strings_out_and_accepted_as_strings_in() {
        let big: u64 = 3_349_882_089_230_041_098;
        assert_eq!(
            reply_json(&Reply::Ticket(big)),
            json!({ "ticket_id": "3349882089230041098" })
        );
        let started = event_json(&Event::TicketStarted {
            ticket_id: big,
            party_id: None,
        });
        assert_eq!(started["ticket_id"], "3349882089230041098");
        let (_, request) =
            parse(br#"{"cmd": "cancel_ticket", "ticket_id": "3349882089230041098"}"#).unwrap();
        assert_eq!(request, Request::CancelTicket(big));
        let (_, request) =
            parse(br#"{"cmd": "search_parties", "cursor": "18446744073709551615"}"#).unwrap();
        let Request::SearchParties(query) = request else {
            panic!("search")
        };
        assert_eq!(query.cursor, u64::MAX);
        assert!(parse(br#"{"cmd": "cancel_ticket", "ticket_id": "12x"}"#)
            .unwrap_err()
            .1
            .contains("whole number"));
    }

    #[test]
    fn events_and_errors_have_stable_names() {
        let party_id = PartyId::from_u128(5);
        let left = event_json(&Event::MemberLeft {
            party_id,
            member: ana(),
            reason: LeaveReason::SessionEnded,
        });
        assert_eq!(left["event"], "member_left");
        assert_eq!(left["reason"], "session_ended");
        assert_eq!(left["member"]["user_id"], "ana");
        assert_eq!(left["party_id"], party_id.to_string());

        let data = event_json(&Event::Data(PartyData {
            party_id,
            sender: Arc::new(ana()),
            op_code: 9,
            data: partyline_client::Bytes::from_static(&[0xff, 0]),
            reliable: true,
        }));
        assert_eq!(data["event"], "data");
        assert_eq!(data["base64"], "/wA=");
        assert!(data.get("text").is_none(), "not UTF-8: no text");
        assert_eq!(
            (data["op_code"].as_i64(), data["reliable"].as_bool()),
            (Some(9), Some(true))
        );

        let refused = error_json(&Failure::Client(ClientError::Refused(ErrorBody::new(
            ErrorCode::PartyNotFound,
            "gone",
        ))));
        assert_eq!(
            refused,
            json!({"code": "PartyNotFound", "code_number": 2, "message": "gone"})
        );
        let unknown = error_json(&Failure::Client(ClientError::Refused(ErrorBody::new(
            ErrorCode::Unknown(99),
            "?",
        ))));
        assert_eq!(
            (unknown["code"].as_str(), unknown["code_number"].as_u64()),
            (Some("Unknown"), Some(99))
        );
        assert_eq!(
            error_json(&Failure::Client(ClientError::Reconnecting))["code"],
            "Reconnecting"
        );
        assert_eq!(
            error_json(&Failure::BadInput("x".into())),
            json!({"code": "BadInput", "message": "x"})
        );
        assert_eq!(
            snake(&partyline_client::InvitePolicy::AnyMember),
            "any_member"
        );
    }
}
