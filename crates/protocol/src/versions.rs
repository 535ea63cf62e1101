//! What a client of the previous protocol version is sent: the one place
//! that maps, or leaves out, what its strict decoder could not read
//! (PROTOCOL.md, "Compatibility"). A server remembers each session's
//! version; it passes every event through [`event_for_version`] before
//! numbering it (so an event left out leaves no gap in the session's
//! event numbers), and encodes every frame with [`encode_server_frame`].
//!
//! The current version's frames take the derived encoding untouched: only
//! a session of an older version pays for the mapping.

use crate::{
    decode_body, encode_frame_within, ClientFrame, CloseCode, Command, ErrorBody, ErrorCode, Event,
    FrameError, InvitePolicy, JoinOutcome, KeyValues, LeaderPolicy, PartyId, PartySnapshot,
    Presence, Reply, Resumed, ResumedParty, ServerFrame, TicketCancelReason, Welcome,
    PROTOCOL_VERSION,
};
use serde::ser::{Error as _, SerializeStruct, SerializeStructVariant};
use serde::{Deserialize, Serialize, Serializer};

/// The event as a client of `version` is sent it; `None` when that
/// version has no way to say it (the client is not sent it at all).
///
/// For version 2: the ready check events and `BlocksChanged` are left
/// out, and so is `Data`
/// from the server itself (its sender, with an empty user id, breaks the
/// user id rule a version 2 client was promised); `TicketCancelled` with
/// `NodeLost` says `Cancelled`; a `DataRefused` error code is mapped as
/// [`error_for_version`] maps it.
pub fn event_for_version(event: Event, version: u16) -> Option<Event> {
    if version >= PROTOCOL_VERSION {
        return Some(event);
    }
    if left_out(&event, version) {
        return None;
    }
    match event {
        Event::TicketCancelled {
            ticket_id,
            reason: TicketCancelReason::NodeLost,
        } => Some(Event::TicketCancelled {
            ticket_id,
            reason: TicketCancelReason::Cancelled,
        }),
        Event::DataRefused {
            party_id,
            op_code,
            error,
        } => Some(Event::DataRefused {
            party_id,
            op_code,
            error: error_for_version(error, version),
        }),
        other => Some(other),
    }
}

/// Whether a client of `version` is not sent `event` at all.
fn left_out(event: &Event, version: u16) -> bool {
    version < PROTOCOL_VERSION
        && match event {
            Event::ReadyCheckStarted { .. }
            | Event::ReadyCheckAnswered { .. }
            | Event::ReadyCheckEnded { .. }
            | Event::BlocksChanged { .. } => true,
            Event::Data { sender, .. } => is_the_server(sender),
            _ => false,
        }
}

/// The server's own presence in `Data` (section 12): no client has it.
fn is_the_server(sender: &Presence) -> bool {
    sender.user_id.is_empty() && sender.session_id.0.is_nil()
}

/// The refusal as a client of `version` is sent it: a code its version
/// does not know becomes the nearest one it does, the message unchanged.
///
/// For version 2 (codes 1 to 32): 33 `Denied`, 39 `TooManyMutes`, 40
/// `TooManyBlocks` and 41 `Blocked` become 1 `InvalidArgument` (refused;
/// the same again will be refused again); 34 `HookFailed`, 35
/// `Unavailable` and every other later code become 16 `Internal` (a
/// failure of the server's, not the client's doing).
pub fn error_for_version(error: ErrorBody, version: u16) -> ErrorBody {
    if version >= PROTOCOL_VERSION || error.code.number() <= 32 {
        return error;
    }
    let code = match error.code {
        ErrorCode::Denied
        | ErrorCode::TooManyMutes
        | ErrorCode::TooManyBlocks
        | ErrorCode::Blocked => ErrorCode::InvalidArgument,
        _ => ErrorCode::Internal,
    };
    ErrorBody { code, ..error }
}

/// The close code a client of `version` is sent: for version 2, 9
/// `Disconnected` becomes 0 `Normal` (the session is over; the reason
/// phrase still says why).
pub fn close_code_for_version(code: CloseCode, version: u16) -> CloseCode {
    match code {
        CloseCode::Disconnected if version < PROTOCOL_VERSION => CloseCode::Normal,
        other => other,
    }
}

/// Appends one frame as a client of `version` decodes it (at most `max`
/// bytes of body). The current version's frames are encoded as derived;
/// an older version's in its own layout, with its own values.
///
/// Fails like [`encode_frame_within`], and for an event
/// [`event_for_version`] leaves out (a caller's mistake: left-out events
/// must never be numbered).
pub fn encode_server_frame(
    frame: &ServerFrame,
    version: u16,
    out: &mut Vec<u8>,
    max: u32,
) -> Result<(), FrameError> {
    if version >= PROTOCOL_VERSION {
        return encode_frame_within(frame, out, max);
    }
    if let ServerFrame::Event { event, .. } = frame {
        if left_out(event, version) {
            return Err(FrameError::Malformed(
                "an event version 2 cannot decode was numbered for a version 2 session".into(),
            ));
        }
    }
    encode_frame_within(&V2(frame), out, max)
}

/// Decodes one frame body a client of `version` sent, as that version
/// lays it out. Version 3 appended a field to two commands (`CreateParty`
/// and `Update`, tags 0 and 8); a version 2 client's are read in version
/// 2's layout, the new field taking the value that changes nothing
/// (`LeaderPolicy::Tenure`, and `None`). Every other frame is the same in
/// both versions. Fails like [`decode_body`] (trailing bytes included).
pub fn decode_client_frame(body: &[u8], version: u16) -> Result<ClientFrame, FrameError> {
    if version >= PROTOCOL_VERSION {
        return decode_body(body);
    }
    match v2_command_tag(body) {
        Some((id, V2_CREATE_PARTY, rest)) => {
            let old: V2CreateParty = decode_body(rest)?;
            let command = Command::CreateParty {
                open: old.open,
                max_size: old.max_size,
                label: old.label,
                invite_policy: old.invite_policy,
                state: old.state,
                leader_policy: LeaderPolicy::Tenure,
            };
            Ok(ClientFrame::Request { id, command })
        }
        Some((id, V2_UPDATE, rest)) => {
            let old: V2Update = decode_body(rest)?;
            let command = Command::Update {
                party_id: old.party_id,
                open: old.open,
                label: old.label,
                max_size: old.max_size,
                invite_policy: old.invite_policy,
                leader_policy: None,
            };
            Ok(ClientFrame::Request { id, command })
        }
        _ => decode_body(body),
    }
}

/// `Command` tags whose fields version 3 grew.
const V2_CREATE_PARTY: u32 = 0;
const V2_UPDATE: u32 = 8;

/// A `Request`'s id, its command's tag, and the command's fields after
/// the tag; `None` for any other frame (or one too short to say).
fn v2_command_tag(body: &[u8]) -> Option<(u32, u32, &[u8])> {
    // `ClientFrame::Request` is variant 1: a varint tag, the id, then the
    // command's varint tag.
    let (frame_tag, rest) = postcard::take_from_bytes::<u32>(body).ok()?;
    let (id, rest) = postcard::take_from_bytes::<u32>(rest).ok()?;
    let (command_tag, rest) = postcard::take_from_bytes::<u32>(rest).ok()?;
    (frame_tag == 1).then_some((id, command_tag, rest))
}

/// Version 2's `CreateParty` fields.
#[derive(Deserialize)]
struct V2CreateParty {
    open: bool,
    max_size: u16,
    label: String,
    invite_policy: InvitePolicy,
    state: KeyValues,
}

/// Version 2's `Update` fields.
#[derive(Deserialize)]
struct V2Update {
    party_id: PartyId,
    open: Option<bool>,
    label: Option<String>,
    max_size: Option<u16>,
    invite_policy: Option<InvitePolicy>,
}

/// A value serialized in version 2's layout, with version 2's values.
/// Postcard reads no names, only the order of fields and the variant
/// numbers, which are written out here as PROTOCOL.md lists them.
struct V2<'a, T>(&'a T);

const V2_VERSION: u16 = 2;

impl Serialize for V2<'_, ServerFrame> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const NAME: &str = "ServerFrame";
        match self.0 {
            ServerFrame::Welcome(welcome) => {
                s.serialize_newtype_variant(NAME, 0, "Welcome", &V2(welcome))
            }
            ServerFrame::Refused(error) => {
                s.serialize_newtype_variant(NAME, 1, "Refused", &mapped(error))
            }
            ServerFrame::Response { id, result } => {
                let mut v = s.serialize_struct_variant(NAME, 2, "Response", 2)?;
                v.serialize_field("id", id)?;
                v.serialize_field("result", &V2(result))?;
                v.end()
            }
            ServerFrame::Event { seq, event } => {
                let mut v = s.serialize_struct_variant(NAME, 3, "Event", 2)?;
                v.serialize_field("seq", seq)?;
                v.serialize_field("event", &V2(event))?;
                v.end()
            }
            ServerFrame::FrameError(error) => {
                s.serialize_newtype_variant(NAME, 4, "FrameError", &mapped(error))
            }
        }
    }
}

fn mapped(error: &ErrorBody) -> ErrorBody {
    error_for_version(error.clone(), V2_VERSION)
}

impl Serialize for V2<'_, Result<Reply, ErrorBody>> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Ok(reply) => s.serialize_newtype_variant("Result", 0, "Ok", &V2(reply)),
            Err(error) => s.serialize_newtype_variant("Result", 1, "Err", &mapped(error)),
        }
    }
}

impl Serialize for V2<'_, Reply> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Reply::Party(snapshot) => {
                s.serialize_newtype_variant("Reply", 0, "Party", &V2(snapshot))
            }
            Reply::Join(outcome) => s.serialize_newtype_variant("Reply", 1, "Join", &V2(outcome)),
            // Every other reply is the same in both versions.
            other => other.serialize(s),
        }
    }
}

impl Serialize for V2<'_, JoinOutcome> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            JoinOutcome::Joined(snapshot) => {
                s.serialize_newtype_variant("JoinOutcome", 0, "Joined", &V2(snapshot))
            }
            queued => queued.serialize(s),
        }
    }
}

impl Serialize for V2<'_, Event> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Event::Accepted(snapshot) => {
                s.serialize_newtype_variant("Event", 6, "Accepted", &V2(snapshot))
            }
            // Version 2's `Updated`: without `leader_policy`.
            Event::Updated {
                party_id,
                seq,
                open,
                max_size,
                label,
                invite_policy,
                leader_policy: _,
            } => {
                let mut v = s.serialize_struct_variant("Event", 10, "Updated", 6)?;
                v.serialize_field("party_id", party_id)?;
                v.serialize_field("seq", seq)?;
                v.serialize_field("open", open)?;
                v.serialize_field("max_size", max_size)?;
                v.serialize_field("label", label)?;
                v.serialize_field("invite_policy", invite_policy)?;
                v.end()
            }
            // Mapped values are cloned (rare); the rest is the same.
            event @ (Event::TicketCancelled { .. } | Event::DataRefused { .. }) => {
                match event_for_version(event.clone(), V2_VERSION) {
                    Some(event) => event.serialize(s),
                    None => Err(S::Error::custom("left out for version 2")),
                }
            }
            event => event.serialize(s),
        }
    }
}

impl Serialize for V2<'_, Welcome> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let w = self.0;
        let mut v = s.serialize_struct("Welcome", 6)?;
        v.serialize_field("session_id", &w.session_id)?;
        v.serialize_field("presence", &w.presence)?;
        v.serialize_field("resume_token", &w.resume_token)?;
        v.serialize_field("limits", &w.limits)?;
        v.serialize_field("last_event_seq", &w.last_event_seq)?;
        v.serialize_field("resumed", &V2(&w.resumed))?;
        v.end()
    }
}

impl Serialize for V2<'_, Resumed> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Resumed::Snapshots { parties, waiting } => {
                let mut v = s.serialize_struct_variant("Resumed", 2, "Snapshots", 2)?;
                v.serialize_field("parties", &V2(parties))?;
                v.serialize_field("waiting", waiting)?;
                v.end()
            }
            other => other.serialize(s),
        }
    }
}

impl Serialize for V2<'_, Vec<ResumedParty>> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(V2))
    }
}

impl Serialize for V2<'_, ResumedParty> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = s.serialize_struct("ResumedParty", 2)?;
        v.serialize_field("snapshot", &V2(&self.0.snapshot))?;
        v.serialize_field("requests", &self.0.requests)?;
        v.end()
    }
}

/// Version 2's snapshot: the fields up to `properties`, without the ready
/// check, the leader policy, the members' connection quality and the
/// mutes (a version 2 decoder takes trailing bytes for a malformed frame).
impl Serialize for V2<'_, PartySnapshot> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let mut v = s.serialize_struct("PartySnapshot", 14)?;
        v.serialize_field("party_id", &p.party_id)?;
        v.serialize_field("seq", &p.seq)?;
        v.serialize_field("open", &p.open)?;
        v.serialize_field("max_size", &p.max_size)?;
        v.serialize_field("label", &p.label)?;
        v.serialize_field("leader", &p.leader)?;
        v.serialize_field("members", &p.members)?;
        v.serialize_field("disconnected", &p.disconnected)?;
        v.serialize_field("invite_policy", &p.invite_policy)?;
        v.serialize_field("state", &p.state)?;
        v.serialize_field("attributes", &p.attributes)?;
        v.serialize_field("join_code", &p.join_code)?;
        v.serialize_field("listed", &p.listed)?;
        v.serialize_field("properties", &p.properties)?;
        v.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        encode_frame, ConnectionQuality, ReadyCheck, SessionId, FRAME_HEADER_LEN, MAX_FRAME_SIZE,
    };

    fn presence(n: u128) -> Presence {
        Presence {
            user_id: format!("u{n}"),
            username: format!("n{n}"),
            session_id: SessionId::from_u128(n),
        }
    }

    fn snapshot(ready_check: Option<Box<ReadyCheck>>) -> PartySnapshot {
        PartySnapshot {
            party_id: PartyId::from_u128(7),
            seq: 3,
            open: true,
            max_size: 4,
            label: "l".into(),
            leader: presence(1),
            members: vec![presence(1), presence(2)],
            disconnected: vec![],
            invite_policy: Default::default(),
            state: Default::default(),
            attributes: vec![Default::default(), Default::default()],
            join_code: String::new(),
            listed: false,
            properties: Default::default(),
            ready_check,
            leader_policy: LeaderPolicy::ConnectionQuality,
            quality: vec![ConnectionQuality::Good, ConnectionQuality::Poor],
            muted: Vec::new(),
        }
    }

    fn encoded(frame: &ServerFrame, version: u16) -> Vec<u8> {
        let mut out = Vec::new();
        encode_server_frame(frame, version, &mut out, MAX_FRAME_SIZE).unwrap();
        out
    }

    #[test]
    fn a_version_2_snapshot_is_the_version_3_one_without_its_last_fields() {
        let frame = ServerFrame::Response {
            id: 1,
            result: Ok(Reply::Party(snapshot(None))),
        };
        let v3 = encoded(&frame, PROTOCOL_VERSION);
        let v2 = encoded(&frame, 2);
        // The body without version 3's fields: `ready_check` none (00),
        // `leader_policy` #1 ConnectionQuality (01), `quality` of two
        // members, Good (01) and Poor (03), no `muted` (00).
        let added = [0, 1, 2, 1, 3, 0];
        assert_eq!(
            v3[FRAME_HEADER_LEN..v3.len() - added.len()],
            v2[FRAME_HEADER_LEN..]
        );
        assert_eq!(v3[v3.len() - added.len()..], added);
    }

    #[test]
    fn a_version_2_updated_has_no_leader_policy() {
        let updated = Event::Updated {
            party_id: PartyId::from_u128(7),
            seq: 4,
            open: true,
            max_size: 4,
            label: "l".into(),
            invite_policy: InvitePolicy::AnyMember,
            leader_policy: LeaderPolicy::ConnectionQuality,
        };
        let frame = ServerFrame::Event {
            seq: 2,
            event: updated,
        };
        let v3 = encoded(&frame, PROTOCOL_VERSION);
        let v2 = encoded(&frame, 2);
        assert_eq!(v3[FRAME_HEADER_LEN..v3.len() - 1], v2[FRAME_HEADER_LEN..]);
        assert_eq!(v3.last(), Some(&1));
    }

    fn body<T: Serialize>(message: &T) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(message, &mut out).unwrap();
        out.split_off(FRAME_HEADER_LEN)
    }

    #[test]
    fn a_version_2_create_party_and_update_are_read_in_version_2_layout() {
        // Version 2's CreateParty: open, max_size 4, "eu", Leader, no state.
        let create = [1, 9, 0, 1, 4, 2, b'e', b'u', 0, 0];
        let read = decode_client_frame(&create, 2).unwrap();
        let ClientFrame::Request {
            id: 9,
            command: Command::CreateParty { leader_policy, .. },
        } = read
        else {
            panic!("not a CreateParty: {read:?}");
        };
        assert_eq!(leader_policy, LeaderPolicy::Tenure);
        // Version 3 reads the same bytes as too short, and version 2 the
        // version 3 layout as too long.
        assert!(decode_client_frame(&create, 3).is_err());
        let mut v3_create = create.to_vec();
        v3_create.push(1);
        assert!(decode_client_frame(&v3_create, 2).is_err());
        assert!(matches!(
            decode_client_frame(&v3_create, 3),
            Ok(ClientFrame::Request {
                command: Command::CreateParty {
                    leader_policy: LeaderPolicy::ConnectionQuality,
                    ..
                },
                ..
            })
        ));
        // Version 2's Update: label "x" only.
        let update = ClientFrame::Request {
            id: 3,
            command: Command::Update {
                party_id: PartyId::from_u128(7),
                open: None,
                label: Some("x".into()),
                max_size: None,
                invite_policy: None,
                leader_policy: None,
            },
        };
        let v3_bytes = body(&update);
        let v2_bytes = &v3_bytes[..v3_bytes.len() - 1];
        assert_eq!(decode_client_frame(v2_bytes, 2).unwrap(), update);
        assert_eq!(decode_client_frame(&v3_bytes, 3).unwrap(), update);
        // Other commands are the same in both.
        let leave = ClientFrame::Request {
            id: 4,
            command: Command::Leave {
                party_id: PartyId::from_u128(7),
            },
        };
        assert_eq!(decode_client_frame(&body(&leave), 2).unwrap(), leave);
    }

    #[test]
    fn events_version_2_cannot_say_are_left_out_or_mapped() {
        let started = Event::ReadyCheckAnswered {
            party_id: PartyId::from_u128(7),
            seq: 1,
            check_id: 1,
            presence: presence(1),
            ready: true,
        };
        assert_eq!(event_for_version(started.clone(), 2), None);
        assert!(event_for_version(started, 3).is_some());
        let lost = Event::TicketCancelled {
            ticket_id: 5,
            reason: TicketCancelReason::NodeLost,
        };
        assert_eq!(
            event_for_version(lost, 2),
            Some(Event::TicketCancelled {
                ticket_id: 5,
                reason: TicketCancelReason::Cancelled
            })
        );
        let from_server = Event::Data {
            party_id: PartyId::from_u128(7),
            sender: Presence {
                user_id: String::new(),
                username: String::new(),
                session_id: SessionId::nil(),
            },
            op_code: 1,
            data: Default::default(),
        };
        assert_eq!(event_for_version(from_server, 2), None);
    }

    #[test]
    fn codes_after_32_become_the_nearest_version_2_code() {
        let to_v2 = |code| error_for_version(ErrorBody::new(code, "m"), 2).code;
        assert_eq!(to_v2(ErrorCode::Denied), ErrorCode::InvalidArgument);
        assert_eq!(to_v2(ErrorCode::HookFailed), ErrorCode::Internal);
        assert_eq!(to_v2(ErrorCode::Unavailable), ErrorCode::Internal);
        assert_eq!(to_v2(ErrorCode::NoReadyCheck), ErrorCode::Internal);
        assert_eq!(to_v2(ErrorCode::Blocked), ErrorCode::InvalidArgument);
        assert_eq!(to_v2(ErrorCode::TooManyMutes), ErrorCode::InvalidArgument);
        assert_eq!(to_v2(ErrorCode::TooManyBlocks), ErrorCode::InvalidArgument);
        assert_eq!(to_v2(ErrorCode::PartyTooLarge), ErrorCode::PartyTooLarge);
        let frame = ServerFrame::Response {
            id: 2,
            result: Err(ErrorBody::new(ErrorCode::Unavailable, "later")),
        };
        // 0x10 = 16 Internal, where version 3 says 0x23 = 35.
        assert_eq!(encoded(&frame, 2)[FRAME_HEADER_LEN..][..4], [2, 2, 1, 0x10]);
        assert_eq!(encoded(&frame, 3)[FRAME_HEADER_LEN..][..4], [2, 2, 1, 0x23]);
        assert_eq!(
            close_code_for_version(CloseCode::Disconnected, 2),
            CloseCode::Normal
        );
    }

    #[test]
    fn a_version_2_session_hears_nothing_of_mutes_and_blocks() {
        let blocks = Event::BlocksChanged {
            user_ids: vec!["u9".into()],
        };
        assert_eq!(event_for_version(blocks.clone(), 2), None);
        assert_eq!(event_for_version(blocks.clone(), 3), Some(blocks));
        // A snapshot with mutes is, for version 2, the one without.
        let muted = PartySnapshot {
            muted: vec![crate::Muted {
                user_id: "u2".into(),
                op_codes: None,
            }],
            ..snapshot(None)
        };
        let reply = |snapshot| ServerFrame::Response {
            id: 1,
            result: Ok(Reply::Party(snapshot)),
        };
        assert_eq!(
            encoded(&reply(muted.clone()), 2),
            encoded(&reply(snapshot(None)), 2)
        );
        assert_ne!(
            encoded(&reply(muted), 3),
            encoded(&reply(snapshot(None)), 3)
        );
    }

    #[test]
    fn a_left_out_event_is_never_encoded_for_version_2() {
        let frame = ServerFrame::Event {
            seq: 1,
            event: Event::ReadyCheckAnswered {
                party_id: PartyId::from_u128(7),
                seq: 1,
                check_id: 1,
                presence: presence(1),
                ready: true,
            },
        };
        let mut out = Vec::new();
        assert!(encode_server_frame(&frame, 2, &mut out, MAX_FRAME_SIZE).is_err());
    }
}
