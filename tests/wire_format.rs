//! Golden bytes: the worked examples in PROTOCOL.md, checked against the
//! real encoder and decoder so the document cannot drift from the code.
//!
//! Every byte example in PROTOCOL.md is a ```` ```text ```` block right
//! after a `<!-- golden: name -->` marker. [`Doc::golden`] checks a message
//! against the bytes written here *and* against the bytes of the example
//! of that name in PROTOCOL.md, and
//! `every_byte_example_in_protocol_md_is_pinned` fails for a byte example
//! without a marker, or a marker no test checks.

use bytes::Bytes;
use partyline::protocol::*;
use std::collections::{BTreeMap, BTreeSet};

/// Protocol version 2's messages, frozen and strict: what a version 2
/// client decodes.
#[path = "support/v2.rs"]
#[allow(dead_code, clippy::large_enum_variant)]
mod v2;

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn unhex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// Encodes to exactly `expected`, and decodes back to the same value.
fn golden<T>(message: &T, expected: &str)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut buf = Vec::new();
    encode_frame(message, &mut buf).unwrap();
    assert_eq!(hex(&buf), expected);
    let bytes = unhex(expected);
    let decoded: T = decode_body(&bytes[FRAME_HEADER_LEN..]).unwrap();
    assert_eq!(&decoded, message);
}

/// The placeholders PROTOCOL.md section 8 uses for bytes that repeat.
const PARTY: &str = "10 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11";
const SID_A: &str = "10 aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa";
const SID_B: &str = "10 bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb";
/// `Presence { user_id: "u1", username: "Ana", session_id: SID_A }`.
const ANA: &str = "02 75 31 03 41 6e 61 10 aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa";
/// `Presence { user_id: "u2", username: "Ben", session_id: SID_B }`.
const BEN: &str = "02 75 32 03 42 65 6e 10 bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb";
/// The default `Limits`, as the `welcome` example shows them field by field.
const LIMITS: &str = "80 80 10 cc 08 80 80 02 80 02 80 10 e0 a7 12 \
                      80 01 80 02 e0 a7 12 1e 0a 64 20 80 20 10 80 02 10 80 08 80 02 \
                      e8 07 b0 ea 01";

fn placeholder(token: &str) -> Option<&'static str> {
    Some(match token {
        "PARTY" => PARTY,
        "SID_A" => SID_A,
        "SID_B" => SID_B,
        "ANA" => ANA,
        "BEN" => BEN,
        "LIMITS" => LIMITS,
        _ => return None,
    })
}

fn is_byte(token: &str) -> bool {
    token.len() == 2 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The bytes a line of an example shows: its leading byte and placeholder
/// tokens, up to the first other word (where the annotation starts).
fn bytes_of_line(line: &str) -> Vec<String> {
    let mut bytes = Vec::new();
    for token in line.split_whitespace() {
        if is_byte(token) {
            bytes.push(token.to_ascii_lowercase());
        } else if let Some(expanded) = placeholder(token) {
            bytes.extend(expanded.split_whitespace().map(String::from));
        } else {
            break;
        }
    }
    bytes
}

fn party() -> PartyId {
    PartyId::from_bytes([0x11; 16])
}

fn ana() -> Presence {
    Presence {
        user_id: "u1".into(),
        username: "Ana".into(),
        session_id: SessionId::from_bytes([0xaa; 16]),
    }
}

fn ben() -> Presence {
    Presence {
        user_id: "u2".into(),
        username: "Ben".into(),
        session_id: SessionId::from_bytes([0xbb; 16]),
    }
}

fn key_values(pairs: &[(&str, &str)]) -> KeyValues {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn numbers(pairs: &[(&str, i64)]) -> Numbers {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The token secret of PROTOCOL.md's worked examples (sections 2 and 11):
/// 32 ASCII bytes, the fewest a server accepts.
const TOKEN_SECRET: &[u8] = b"example-token-secret-of-32-bytes";

/// The match of PROTOCOL.md's `event-matched` example and of the worked
/// example of section 11: its id, expiry, key and token. The key is
/// derived from `TOKEN_SECRET` (computed apart from partyline, with
/// Python's hmac and hashlib: RFC 5869 by hand).
const MATCH_ID: u128 = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef;
const MATCH_EXPIRES: u64 = 1_700_000_060;
const MATCH_KEY: &str = "3609d6ea32760b6991128ea68e84db63414a4882c684fec0b6bee01206a48b05";
const MATCH_SIGNED: &str = "m1.0123456789abcdef0123456789abcdef.1700000060.\
    7531:11111111111111111111111111111111,7532:";
const MATCH_TOKEN: &str = "m1.0123456789abcdef0123456789abcdef.1700000060.\
    7531:11111111111111111111111111111111,7532:.\
    458792475ad88551d9f797c2c64c123962fb98adcfa465b615e302a624c48314";

/// `MATCH_KEY`'s 32 bytes.
fn match_key() -> Vec<u8> {
    (0..MATCH_KEY.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&MATCH_KEY[at..at + 2], 16).unwrap())
        .collect()
}

/// Ana with her party `PARTY`, then Ben alone.
fn match_claims() -> partyline::matchmaker::MatchClaims {
    use partyline::matchmaker::{MatchClaims, MatchPlayer};
    MatchClaims {
        match_id: uuid::Uuid::from_u128(MATCH_ID),
        expires_at: MATCH_EXPIRES,
        players: vec![
            MatchPlayer {
                user_id: "u1".into(),
                party_id: Some(party()),
            },
            MatchPlayer {
                user_id: "u2".into(),
                party_id: None,
            },
        ],
    }
}

/// PROTOCOL.md's byte examples by name, and which of them were checked.
struct Doc {
    examples: BTreeMap<String, String>,
    pinned: BTreeSet<String>,
}

impl Doc {
    /// Reads PROTOCOL.md. Panics on a byte example without a marker (a
    /// code block whose first line starts with a byte or placeholder).
    fn load() -> Doc {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md");
        let text = std::fs::read_to_string(path).unwrap();
        let mut examples = BTreeMap::new();
        let mut lines = text.lines().peekable();
        let mut marker: Option<String> = None;
        while let Some(line) = lines.next() {
            let trimmed = line.trim();
            if let Some(name) = trimmed
                .strip_prefix("<!-- golden:")
                .and_then(|rest| rest.strip_suffix("-->"))
            {
                marker = Some(name.trim().to_string());
                continue;
            }
            if !trimmed.starts_with("```") {
                if !trimmed.is_empty() {
                    marker = None;
                }
                continue;
            }
            let mut block = Vec::new();
            for line in lines.by_ref() {
                if line.trim().starts_with("```") {
                    break;
                }
                block.push(line);
            }
            let starts_with_bytes = block
                .first()
                .is_some_and(|first| !bytes_of_line(first).is_empty());
            match marker.take() {
                Some(name) => {
                    let bytes: Vec<String> = block.iter().flat_map(|l| bytes_of_line(l)).collect();
                    assert!(!bytes.is_empty(), "example {name} shows no bytes");
                    let previous = examples.insert(name.clone(), bytes.join(" "));
                    assert!(previous.is_none(), "two examples are named {name}");
                }
                None => assert!(
                    !starts_with_bytes,
                    "a byte example without a `<!-- golden: name -->` marker: {:?}",
                    block.first()
                ),
            }
        }
        Doc {
            examples,
            pinned: BTreeSet::new(),
        }
    }

    /// `golden`, and PROTOCOL.md's example `name` shows exactly `expected`.
    fn golden<T>(&mut self, name: &str, message: &T, expected: &str)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        golden(message, expected);
        let shown = self
            .examples
            .get(name)
            .unwrap_or_else(|| panic!("PROTOCOL.md has no example named {name}"));
        assert_eq!(shown, expected, "PROTOCOL.md example {name}");
        self.pinned.insert(name.to_string());
    }

    /// A frame as a version 2 session is sent it: exactly `expected`, as
    /// PROTOCOL.md's example `name` shows, and read by the strict version
    /// 2 decoder.
    fn v2(&mut self, name: &str, frame: &ServerFrame, expected: &str) {
        let mut buf = Vec::new();
        encode_server_frame(frame, 2, &mut buf, MAX_WELCOME_SIZE).unwrap();
        decode_body::<v2::ServerFrame>(&buf[FRAME_HEADER_LEN..]).expect("version 2 reads it");
        self.bytes(name, &buf, expected);
    }

    /// A frame a version 2 client sends: `old` (version 2's own types)
    /// encodes to exactly `expected`, as PROTOCOL.md's example `name`
    /// shows, and a server reads those bytes from a version 2 session as
    /// `read`.
    fn v2_client(&mut self, name: &str, old: &v2::ClientFrame, read: &ClientFrame, expected: &str) {
        let mut buf = Vec::new();
        encode_frame(old, &mut buf).unwrap();
        assert_eq!(
            &decode_client_frame(&buf[FRAME_HEADER_LEN..], 2).unwrap(),
            read
        );
        self.bytes(name, &buf, expected);
    }

    /// For bytes that are not a frame (datagrams): `actual` is exactly
    /// `expected`, and PROTOCOL.md's example `name` shows it.
    fn bytes(&mut self, name: &str, actual: &[u8], expected: &str) {
        assert_eq!(hex(actual), expected);
        let shown = self
            .examples
            .get(name)
            .unwrap_or_else(|| panic!("PROTOCOL.md has no example named {name}"));
        assert_eq!(shown, expected, "PROTOCOL.md example {name}");
        self.pinned.insert(name.to_string());
    }
}

/// The default limits, as a server fills them without flags.
fn default_limits() -> Limits {
    Limits {
        max_frame_size: MAX_FRAME_SIZE,
        max_datagram_data: DEFAULT_MAX_DATAGRAM_DATA,
        max_reliable_data: MAX_RELIABLE_DATA,
        max_party_size: MAX_PARTY_SIZE,
        max_label_bytes: MAX_LABEL_BYTES as u32,
        join_request_ttl_ms: 300_000,
        max_status_bytes: MAX_STATUS_BYTES as u32,
        max_follows: 256,
        invite_ttl_ms: 300_000,
        invites_per_minute: 30,
        join_code_attempts_per_minute: 10,
        max_search_results: MAX_SEARCH_RESULTS,
        max_state_entries: MAX_STATE_ENTRIES as u32,
        max_state_bytes: MAX_STATE_BYTES as u32,
        max_attribute_entries: MAX_ATTRIBUTE_ENTRIES as u32,
        max_attribute_bytes: MAX_ATTRIBUTE_BYTES as u32,
        max_property_entries: MAX_PROPERTY_ENTRIES as u32,
        max_property_bytes: MAX_PROPERTY_BYTES as u32,
        max_bans: MAX_BANS as u32,
        matchmaker_interval_ms: 1000,
        matchmaker_relax_after_ms: 30_000,
    }
}

fn client_examples(doc: &mut Doc) {
    let hello = ClientFrame::Hello(Hello {
        resume: None,
        version: 3,
        identity: Identity::Dev {
            user_id: "u1".into(),
            username: "Ana".into(),
        },
    });
    doc.golden(
        "hello",
        &hello,
        "0b 00 00 00 00 03 00 02 75 31 03 41 6e 61 00",
    );
    let resuming = ClientFrame::Hello(Hello {
        version: 3,
        identity: Identity::Dev {
            user_id: "u1".into(),
            username: "Ana".into(),
        },
        resume: Some(Resume {
            token: "t".into(),
            last_event_seq: 7,
        }),
    });
    doc.golden(
        "hello-resume",
        &resuming,
        "0e 00 00 00 00 03 00 02 75 31 03 41 6e 61 01 01 74 07",
    );
    let kick = ClientFrame::Request {
        id: 5,
        command: Command::Kick {
            party_id: party(),
            user_id: "u2".into(),
        },
    };
    doc.golden(
        "kick",
        &kick,
        &format!("17 00 00 00 01 05 0b {PARTY} 02 75 32"),
    );
    let create = ClientFrame::Request {
        id: 300,
        command: Command::CreateParty {
            open: true,
            max_size: 4,
            label: "eu".into(),
            invite_policy: InvitePolicy::Leader,
            state: KeyValues::new(),
            leader_policy: LeaderPolicy::Tenure,
        },
    };
    doc.golden(
        "create-party",
        &create,
        "0c 00 00 00 01 ac 02 00 01 04 02 65 75 00 00 00",
    );
    let create_v2 = v2::ClientFrame::Request {
        id: 300,
        command: v2::Command::CreateParty {
            open: true,
            max_size: 4,
            label: "eu".into(),
            invite_policy: v2::InvitePolicy::Leader,
            state: v2::KeyValues::new(),
        },
    };
    doc.v2_client(
        "create-party-v2",
        &create_v2,
        &create,
        "0b 00 00 00 01 ac 02 00 01 04 02 65 75 00 00",
    );
    let create_with_state = ClientFrame::Request {
        id: 6,
        command: Command::CreateParty {
            open: false,
            max_size: 8,
            label: String::new(),
            invite_policy: InvitePolicy::AnyMember,
            state: key_values(&[("mode", "duo"), ("map", "dust")]),
            leader_policy: LeaderPolicy::ConnectionQuality,
        },
    };
    doc.golden(
        "create-party-state",
        &create_with_state,
        "1b 00 00 00 01 06 00 00 08 00 01 02 03 6d 61 70 04 64 75 73 74 04 6d 6f 64 65 03 64 75 6f 01",
    );
    let update = ClientFrame::Request {
        id: 3,
        command: Command::Update {
            party_id: party(),
            open: None,
            label: Some("x".into()),
            max_size: Some(8),
            invite_policy: None,
            leader_policy: None,
        },
    };
    doc.golden(
        "update",
        &update,
        &format!("1c 00 00 00 01 03 08 {PARTY} 00 01 01 78 01 08 00 00"),
    );
    let update_v2 = v2::ClientFrame::Request {
        id: 3,
        command: v2::Command::Update {
            party_id: v2::PartyId(party().0),
            open: None,
            label: Some("x".into()),
            max_size: Some(8),
            invite_policy: None,
        },
    };
    doc.v2_client(
        "update-v2",
        &update_v2,
        &update,
        &format!("1b 00 00 00 01 03 08 {PARTY} 00 01 01 78 01 08 00"),
    );
    let to_quality = ClientFrame::Request {
        id: 11,
        command: Command::Update {
            party_id: party(),
            open: None,
            label: None,
            max_size: None,
            invite_policy: None,
            leader_policy: Some(LeaderPolicy::ConnectionQuality),
        },
    };
    doc.golden(
        "update-leader-policy",
        &to_quality,
        &format!("1a 00 00 00 01 0b 08 {PARTY} 00 00 00 00 01 01"),
    );
    let data = ClientFrame::Request {
        id: 4,
        command: Command::SendData {
            party_id: party(),
            op_code: -1,
            data: Bytes::from_static(b"hi"),
        },
    };
    doc.golden(
        "send-data",
        &data,
        &format!("18 00 00 00 01 04 0a {PARTY} 01 02 68 69"),
    );
    let invite = ClientFrame::Request {
        id: 7,
        command: Command::Invite {
            party_id: party(),
            user_id: "u2".into(),
        },
    };
    doc.golden(
        "invite",
        &invite,
        &format!("17 00 00 00 01 07 10 {PARTY} 02 75 32"),
    );
    let join_by_code = ClientFrame::Request {
        id: 8,
        command: Command::JoinByCode {
            code: "k7q-m2x".into(),
        },
    };
    doc.golden(
        "join-by-code",
        &join_by_code,
        "0b 00 00 00 01 08 16 07 6b 37 71 2d 6d 32 78",
    );
    let search = ClientFrame::Request {
        id: 9,
        command: Command::SearchParties(PartySearch {
            open_only: true,
            min_free_seats: 2,
            properties: key_values(&[("mode", "duo")]),
            limit: 20,
            cursor: 0,
        }),
    };
    let submit = ClientFrame::Request {
        id: 11,
        command: Command::SubmitTicket(TicketRequest {
            party_id: Some(party()),
            min_count: 2,
            max_count: 4,
            count_multiple: 2,
            relaxed_min_count: 0,
            strings: key_values(&[("region", "eu")]),
            numbers: numbers(&[("skill", 1250)]),
            query: TicketQuery {
                strings: key_values(&[("region", "eu")]),
                ranges: [(
                    "skill".to_string(),
                    NumberRange {
                        min: 1000,
                        max: 1500,
                    },
                )]
                .into_iter()
                .collect(),
            },
            members: vec![MemberProperties {
                user_id: "u1".into(),
                strings: key_values(&[("hero", "mage")]),
                numbers: Numbers::new(),
            }],
        }),
    };
    doc.golden(
        "submit-ticket",
        &submit,
        &format!(
            "53 00 00 00 01 0b 1f 01 {PARTY} 02 04 02 00 \
             01 06 72 65 67 69 6f 6e 02 65 75 01 05 73 6b 69 6c 6c c4 13 \
             01 06 72 65 67 69 6f 6e 02 65 75 01 05 73 6b 69 6c 6c d0 0f b8 17 \
             01 02 75 31 01 04 68 65 72 6f 04 6d 61 67 65 00"
        ),
    );
    let cancel = ClientFrame::Request {
        id: 12,
        command: Command::CancelTicket { ticket_id: 7 },
    };
    doc.golden("cancel-ticket", &cancel, "04 00 00 00 01 0c 20 07");
    let datagram = encode_client_datagram(party(), 258, b"hi");
    let decoded = decode_client_datagram(datagram.clone()).unwrap();
    assert_eq!((decoded.party_id, decoded.op_code), (party(), 258));
    assert_eq!(&decoded.payload[..], b"hi");
    doc.bytes(
        "client-datagram",
        &datagram,
        "01 \
         11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 \
         02 01 00 00 00 00 00 00 68 69",
    );
    doc.golden(
        "search-parties",
        &search,
        "11 00 00 00 01 09 19 01 02 01 04 6d 6f 64 65 03 64 75 6f 14 00",
    );
}

fn server_examples(doc: &mut Doc) {
    let welcome = ServerFrame::Welcome(Welcome {
        session_id: SessionId::from_bytes([0xaa; 16]),
        presence: ana(),
        resume_token: "t".into(),
        limits: default_limits(),
        last_event_seq: 0,
        resumed: Resumed::New,
    });
    doc.golden(
        "welcome",
        &welcome,
        &format!(
            "57 00 00 00 00 {SID_A} {ANA} 01 74 \
             80 80 10 cc 08 80 80 02 80 02 80 10 e0 a7 12 \
             80 01 80 02 e0 a7 12 1e 0a 64 20 80 20 10 80 02 10 80 08 80 02 \
             e8 07 b0 ea 01 00 00"
        ),
    );
    let snapshots = ServerFrame::Welcome(Welcome {
        session_id: SessionId::from_bytes([0xaa; 16]),
        presence: ana(),
        resume_token: "u".into(),
        limits: default_limits(),
        last_event_seq: 1030,
        resumed: Resumed::Snapshots {
            parties: vec![ResumedParty {
                snapshot: PartySnapshot {
                    party_id: party(),
                    seq: 12,
                    open: false,
                    max_size: 4,
                    label: String::new(),
                    leader: ana(),
                    members: vec![ana()],
                    disconnected: Vec::new(),
                    invite_policy: InvitePolicy::Leader,
                    state: KeyValues::new(),
                    attributes: vec![KeyValues::new()],
                    join_code: String::new(),
                    listed: false,
                    properties: KeyValues::new(),
                    ready_check: None,
                    leader_policy: LeaderPolicy::Tenure,
                    quality: vec![ConnectionQuality::Good],
                    muted: Vec::new(),
                },
                requests: vec![ben()],
            }],
            waiting: Vec::new(),
        },
    });
    doc.golden(
        "welcome-snapshots",
        &snapshots,
        &format!(
            "c6 00 00 00 00 {SID_A} {ANA} 01 75 {LIMITS} 86 08 02 \
             01 {PARTY} 0c 00 04 00 {ANA} 01 {ANA} 00 00 00 01 00 00 00 00 00 00 01 01 00 \
             01 {BEN} 00"
        ),
    );
    doc.v2(
        "welcome-snapshots-v2",
        &snapshots,
        &format!(
            "c1 00 00 00 00 {SID_A} {ANA} 01 75 {LIMITS} 86 08 02 \
             01 {PARTY} 0c 00 04 00 {ANA} 01 {ANA} 00 00 00 01 00 00 00 00 \
             01 {BEN} 00"
        ),
    );
    let relayed = encode_server_datagram(party(), SessionId::from_bytes([0xbb; 16]), 258, b"hi");
    let decoded = decode_server_datagram(relayed.clone()).unwrap();
    assert_eq!(
        (decoded.party_id, decoded.sender, decoded.op_code),
        (party(), SessionId::from_bytes([0xbb; 16]), 258)
    );
    assert_eq!(&decoded.payload[..], b"hi");
    doc.bytes(
        "server-datagram",
        &relayed,
        "01 \
         11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 \
         bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb \
         02 01 00 00 00 00 00 00 68 69",
    );
    let refused = ServerFrame::Response {
        id: 2,
        result: Err(ErrorBody::new(ErrorCode::PartyFull, "full")),
    };
    doc.golden(
        "response-refused",
        &refused,
        "09 00 00 00 02 02 01 03 04 66 75 6c 6c",
    );
    let denied = ServerFrame::Response {
        id: 3,
        result: Err(ErrorBody::new(ErrorCode::Denied, "no")),
    };
    doc.golden(
        "response-denied",
        &denied,
        "07 00 00 00 02 03 01 21 02 6e 6f",
    );
    let unavailable = ServerFrame::Response {
        id: 4,
        result: Err(ErrorBody::new(ErrorCode::Unavailable, "later")),
    };
    doc.golden(
        "response-unavailable",
        &unavailable,
        "0a 00 00 00 02 04 01 23 05 6c 61 74 65 72",
    );
    doc.v2(
        "response-unavailable-v2",
        &unavailable,
        "0a 00 00 00 02 04 01 10 05 6c 61 74 65 72",
    );
    // A resume the cluster cannot settle yet: try the same token again.
    let try_again = ServerFrame::Refused(ErrorBody::new(ErrorCode::Unavailable, "later"));
    doc.golden(
        "refused-unavailable",
        &try_again,
        "08 00 00 00 01 23 05 6c 61 74 65 72",
    );
    let from_server = ServerFrame::Event {
        seq: 2,
        event: Event::Data {
            party_id: party(),
            sender: partyline::server::server_presence(),
            op_code: 1,
            data: bytes::Bytes::from_static(b"gl"),
        },
    };
    doc.golden(
        "event-server-data",
        &from_server,
        &format!(
            "2b 00 00 00 03 02 0b {PARTY} 00 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 02 67 6c"
        ),
    );
    let done = ServerFrame::Response {
        id: 4,
        result: Ok(Reply::Done),
    };
    doc.golden("response-done", &done, "04 00 00 00 02 04 00 03");
    let kicked = ServerFrame::Event {
        seq: 1,
        event: Event::Kicked {
            party_id: party(),
            seq: 5,
        },
    };
    doc.golden(
        "event-kicked",
        &kicked,
        &format!("15 00 00 00 03 01 08 {PARTY} 05"),
    );
    let snapshot = PartySnapshot {
        party_id: party(),
        seq: 3,
        open: false,
        max_size: 4,
        label: "eu".into(),
        leader: ana(),
        members: vec![ana(), ben()],
        disconnected: vec![SessionId::from_bytes([0xbb; 16])],
        invite_policy: InvitePolicy::AnyMember,
        state: key_values(&[("map", "dust")]),
        attributes: vec![KeyValues::new(), key_values(&[("hero", "mage")])],
        join_code: "K7QM2X".into(),
        listed: true,
        properties: key_values(&[("mode", "duo")]),
        ready_check: None,
        leader_policy: LeaderPolicy::ConnectionQuality,
        quality: vec![ConnectionQuality::Good, ConnectionQuality::Unknown],
        // Ana (who asked) muted Ben's op codes 100 to 199.
        muted: vec![Muted {
            user_id: "u2".into(),
            op_codes: Some(NumberRange { min: 100, max: 199 }),
        }],
    };
    let get_party = ServerFrame::Response {
        id: 10,
        result: Ok(Reply::Party(snapshot)),
    };
    doc.golden(
        "response-party",
        &get_party,
        &format!(
            "ae 00 00 00 02 0a 00 00 {PARTY} 03 00 04 02 65 75 {ANA} \
             02 {ANA} {BEN} 01 {SID_B} 01 \
             01 03 6d 61 70 04 64 75 73 74 \
             02 00 01 04 68 65 72 6f 04 6d 61 67 65 \
             06 4b 37 51 4d 32 58 01 01 04 6d 6f 64 65 03 64 75 6f 00 01 02 01 00 \
             01 02 75 32 01 c8 01 8e 03"
        ),
    );
    let parties = ServerFrame::Response {
        id: 9,
        result: Ok(Reply::Parties {
            parties: vec![ListedParty {
                party_id: party(),
                members: 2,
                max_size: 4,
                open: true,
                label: "eu".into(),
                properties: key_values(&[("mode", "duo")]),
            }],
            next_cursor: 0,
        }),
    };
    doc.golden(
        "response-parties",
        &parties,
        &format!(
            "27 00 00 00 02 09 00 07 01 {PARTY} 02 04 01 02 65 75 \
             01 04 6d 6f 64 65 03 64 75 6f 00"
        ),
    );
    let invited = ServerFrame::Event {
        seq: 4,
        event: Event::Invited(PartyInvite {
            party_id: party(),
            inviter: ana(),
            members: 1,
            max_size: 4,
            open: false,
            label: "eu".into(),
            leader: ana(),
            expires_at_ms: 1_700_000_300_000,
        }),
    };
    doc.golden(
        "event-invited",
        &invited,
        &format!(
            "50 00 00 00 03 04 11 {PARTY} {ANA} 01 04 00 02 65 75 {ANA} \
             e0 f7 a7 ff bc 31"
        ),
    );
    let attributes = ServerFrame::Event {
        seq: 5,
        event: Event::MemberAttributesChanged {
            party_id: party(),
            seq: 4,
            presence: ben(),
            attributes: key_values(&[("ready", "1"), ("hero", "mage")]),
        },
    };
    doc.golden(
        "event-member-attributes",
        &attributes,
        &format!(
            "40 00 00 00 03 05 15 {PARTY} 04 {BEN} \
             02 04 68 65 72 6f 04 6d 61 67 65 05 72 65 61 64 79 01 31"
        ),
    );
    let banned = ServerFrame::Event {
        seq: 6,
        event: Event::Banned {
            party_id: party(),
            seq: 9,
            until_ms: 0,
        },
    };
    doc.golden(
        "event-banned",
        &banned,
        &format!("16 00 00 00 03 06 18 {PARTY} 09 00"),
    );
    let updated = ServerFrame::Event {
        seq: 6,
        event: Event::Updated {
            party_id: party(),
            seq: 7,
            open: true,
            max_size: 4,
            label: "eu".into(),
            invite_policy: InvitePolicy::AnyMember,
            leader_policy: LeaderPolicy::ConnectionQuality,
        },
    };
    doc.golden(
        "event-updated",
        &updated,
        &format!("1c 00 00 00 03 06 0a {PARTY} 07 01 04 02 65 75 01 01"),
    );
    doc.v2(
        "event-updated-v2",
        &updated,
        &format!("1b 00 00 00 03 06 0a {PARTY} 07 01 04 02 65 75 01"),
    );
    matchmaking_examples(doc);
    ready_check_examples(doc);
    quiet_examples(doc);
}

fn quiet_examples(doc: &mut Doc) {
    let mute = ClientFrame::Request {
        id: 14,
        command: Command::Mute {
            party_id: party(),
            user_id: "u2".into(),
            op_codes: Some(NumberRange { min: 100, max: 199 }),
        },
    };
    doc.golden(
        "mute",
        &mute,
        &format!("1c 00 00 00 01 0e 24 {PARTY} 02 75 32 01 c8 01 8e 03"),
    );
    let mute_all = ClientFrame::Request {
        id: 15,
        command: Command::Mute {
            party_id: party(),
            user_id: "u2".into(),
            op_codes: None,
        },
    };
    doc.golden(
        "mute-all",
        &mute_all,
        &format!("18 00 00 00 01 0f 24 {PARTY} 02 75 32 00"),
    );
    let unmute = ClientFrame::Request {
        id: 16,
        command: Command::Unmute {
            party_id: party(),
            user_id: "u2".into(),
        },
    };
    doc.golden(
        "unmute",
        &unmute,
        &format!("17 00 00 00 01 10 25 {PARTY} 02 75 32"),
    );
    let block = ClientFrame::Request {
        id: 17,
        command: Command::Block {
            user_ids: vec!["u2".into(), "u3".into()],
        },
    };
    doc.golden("block", &block, "0a 00 00 00 01 11 26 02 02 75 32 02 75 33");
    let unblock = ClientFrame::Request {
        id: 18,
        command: Command::Unblock {
            user_ids: vec!["u3".into()],
        },
    };
    doc.golden("unblock", &unblock, "07 00 00 00 01 12 27 01 02 75 33");
    let list = ClientFrame::Request {
        id: 19,
        command: Command::ListBlocks,
    };
    doc.golden("list-blocks", &list, "03 00 00 00 01 13 28");
    let blocks = ServerFrame::Response {
        id: 17,
        result: Ok(Reply::Blocks {
            user_ids: vec!["u2".into(), "u3".into()],
        }),
    };
    doc.golden(
        "response-blocks",
        &blocks,
        "0b 00 00 00 02 11 00 0a 02 02 75 32 02 75 33",
    );
    let changed = ServerFrame::Event {
        seq: 11,
        event: Event::BlocksChanged {
            user_ids: vec!["u9".into()],
        },
    };
    doc.golden(
        "event-blocks-changed",
        &changed,
        "07 00 00 00 03 0b 1f 01 02 75 39",
    );
    let blocked = ServerFrame::Response {
        id: 20,
        result: Err(ErrorBody::new(ErrorCode::Blocked, "no")),
    };
    doc.golden(
        "response-blocked",
        &blocked,
        "07 00 00 00 02 14 01 29 02 6e 6f",
    );
    doc.v2(
        "response-blocked-v2",
        &blocked,
        "07 00 00 00 02 14 01 01 02 6e 6f",
    );
}

fn ready_check_examples(doc: &mut Doc) {
    let start = ClientFrame::Request {
        id: 12,
        command: Command::StartReadyCheck {
            party_id: party(),
            message: "go?".into(),
            timeout_ms: 30_000,
        },
    };
    doc.golden(
        "start-ready-check",
        &start,
        &format!("1b 00 00 00 01 0c 21 {PARTY} 03 67 6f 3f b0 ea 01"),
    );
    let answer = ClientFrame::Request {
        id: 13,
        command: Command::AnswerReadyCheck {
            party_id: party(),
            check_id: 7,
            ready: true,
        },
    };
    doc.golden(
        "answer-ready-check",
        &answer,
        &format!("16 00 00 00 01 0d 22 {PARTY} 07 01"),
    );
    let started = ServerFrame::Event {
        seq: 8,
        event: Event::ReadyCheckStarted {
            party_id: party(),
            seq: 7,
            check: ReadyCheck {
                check_id: 7,
                started_by: ana(),
                message: "go?".into(),
                timeout_ms: 30_000,
                ends_at_ms: 1_700_000_030_000,
                ready: vec![ana()],
                not_ready: Vec::new(),
                no_answer: vec![ben()],
            },
        },
    };
    doc.golden(
        "event-ready-check-started",
        &started,
        &format!(
            "6e 00 00 00 03 08 1c {PARTY} 07 07 {ANA} 03 67 6f 3f b0 ea 01 \
             b0 ba 97 ff bc 31 01 {ANA} 00 01 {BEN}"
        ),
    );
    let answered = ServerFrame::Event {
        seq: 9,
        event: Event::ReadyCheckAnswered {
            party_id: party(),
            seq: 8,
            check_id: 7,
            presence: ben(),
            ready: true,
        },
    };
    doc.golden(
        "event-ready-check-answered",
        &answered,
        &format!("2f 00 00 00 03 09 1d {PARTY} 08 07 {BEN} 01"),
    );
    let ended = ServerFrame::Event {
        seq: 10,
        event: Event::ReadyCheckEnded {
            party_id: party(),
            seq: 8,
            check_id: 7,
            outcome: ReadyCheckOutcome::AllReady,
            ready: vec![ana(), ben()],
            not_ready: Vec::new(),
            no_answer: Vec::new(),
        },
    };
    doc.golden(
        "event-ready-check-ended",
        &ended,
        &format!("4a 00 00 00 03 0a 1e {PARTY} 08 07 00 02 {ANA} {BEN} 00 00"),
    );
}

fn matchmaking_examples(doc: &mut Doc) {
    let started = ServerFrame::Response {
        id: 11,
        result: Ok(Reply::TicketStarted { ticket_id: 7 }),
    };
    doc.golden(
        "response-ticket-started",
        &started,
        "05 00 00 00 02 0b 00 09 07",
    );
    let waits = ServerFrame::Event {
        seq: 7,
        event: Event::TicketStarted {
            ticket_id: 7,
            party_id: Some(party()),
        },
    };
    doc.golden(
        "event-ticket-started",
        &waits,
        &format!("16 00 00 00 03 07 19 07 01 {PARTY}"),
    );
    let cancelled = ServerFrame::Event {
        seq: 9,
        event: Event::TicketCancelled {
            ticket_id: 7,
            reason: TicketCancelReason::MembershipChanged,
        },
    };
    doc.golden(
        "event-ticket-cancelled",
        &cancelled,
        "05 00 00 00 03 09 1a 07 01",
    );
    let node_lost = ServerFrame::Event {
        seq: 12,
        event: Event::TicketCancelled {
            ticket_id: 7,
            reason: TicketCancelReason::NodeLost,
        },
    };
    doc.golden(
        "event-ticket-node-lost",
        &node_lost,
        "05 00 00 00 03 0c 1a 07 04",
    );
    let token = partyline::matchmaker::mint_match_token(&match_key(), &match_claims());
    assert_eq!(token, MATCH_TOKEN);
    let matched = ServerFrame::Event {
        seq: 8,
        event: Event::Matched(MatchFound {
            match_id: *uuid::Uuid::from_u128(MATCH_ID).as_bytes(),
            ticket_id: 7,
            players: vec![
                MatchedPlayer {
                    presence: ana(),
                    party_id: Some(party()),
                    strings: key_values(&[("region", "eu"), ("hero", "mage")]),
                    numbers: numbers(&[("skill", 1250)]),
                },
                MatchedPlayer {
                    presence: ben(),
                    party_id: None,
                    strings: key_values(&[("region", "eu")]),
                    numbers: numbers(&[("skill", 1190)]),
                },
            ],
            token,
            token_expires_at: MATCH_EXPIRES,
        }),
    };
    doc.golden(
        "event-matched",
        &matched,
        &format!(
            "2c 01 00 00 03 08 1b \
             01 23 45 67 89 ab cd ef 01 23 45 67 89 ab cd ef 07 02 \
             {ANA} 01 {PARTY} \
             02 04 68 65 72 6f 04 6d 61 67 65 06 72 65 67 69 6f 6e 02 65 75 \
             01 05 73 6b 69 6c 6c c4 13 \
             {BEN} 00 01 06 72 65 67 69 6f 6e 02 65 75 01 05 73 6b 69 6c 6c cc 12 \
             9b 01 {} bc e2 cf aa 06",
            hex(MATCH_TOKEN.as_bytes())
        ),
    );
}

#[test]
fn client_frames_match_protocol_md() {
    client_examples(&mut Doc::load());
    // Not shown in PROTOCOL.md, pinned all the same.
    let join = ClientFrame::Request {
        id: 2,
        command: Command::JoinParty { party_id: party() },
    };
    golden(&join, &format!("14 00 00 00 01 02 01 {PARTY}"));
    let reject = ClientFrame::Request {
        id: 5,
        command: Command::Reject {
            party_id: party(),
            user_id: "u2".into(),
        },
    };
    golden(&reject, &format!("17 00 00 00 01 05 0c {PARTY} 02 75 32"));
}

#[test]
fn server_frames_match_protocol_md() {
    server_examples(&mut Doc::load());
}

#[test]
fn every_byte_example_in_protocol_md_is_pinned() {
    let mut doc = Doc::load();
    client_examples(&mut doc);
    server_examples(&mut doc);
    let shown: BTreeSet<String> = doc.examples.keys().cloned().collect();
    assert_eq!(
        shown, doc.pinned,
        "PROTOCOL.md's named examples and the ones checked here differ"
    );
}

/// The worked token example of PROTOCOL.md section 2 (its `signed` and
/// `token` lines): secret `TOKEN_SECRET`, user `u1`, name `Ana`, expiry
/// 1700000000.
#[test]
fn the_token_example_in_protocol_md_mints_and_verifies() {
    use partyline::auth::{mint_token, verify_token, TokenError};
    const SIGNED: &str = "v1.7531.416e61.1700000000";
    const TOKEN: &str = "v1.7531.416e61.1700000000.\
        cd47507b8207d29886852a9c8078e3bfe260bc92e493ffd873be7c6b701d6dd0";
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md")).unwrap();
    let shown = |label: &str| {
        text.lines()
            .filter_map(|line| line.trim().strip_prefix(label))
            .map(str::trim)
            .find(|rest| rest.starts_with("v1."))
            .unwrap_or_else(|| panic!("PROTOCOL.md shows no `{label}` line"))
            .to_string()
    };
    assert_eq!(shown("signed"), SIGNED);
    assert_eq!(shown("token"), TOKEN);

    assert!(
        text.contains("Worked example: secret `example-token-secret-of-32-bytes`"),
        "section 2 names the secret"
    );
    let secret = TOKEN_SECRET;
    assert_eq!(mint_token(secret, "u1", "Ana", 1_700_000_000), TOKEN);
    // The tag is HMAC-SHA256 of exactly the text before the last dot.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = hex(ring::hmac::sign(&key, SIGNED.as_bytes()).as_ref()).replace(' ', "");
    assert_eq!(TOKEN, format!("{SIGNED}.{tag}"));

    let claims = verify_token(secret, TOKEN, 1_699_999_999).unwrap();
    assert_eq!(
        (claims.user_id.as_str(), claims.username.as_str()),
        ("u1", "Ana")
    );
    assert!(matches!(
        verify_token(secret, TOKEN, 1_700_000_000),
        Err(TokenError::Expired { .. })
    ));
    assert_eq!(
        verify_token(secret, &TOKEN.to_uppercase().replacen("V1", "v1", 1), 0),
        Err(TokenError::Malformed("signature is not lowercase hex")),
        "uppercase hex is refused"
    );
}

/// The worked match token of PROTOCOL.md section 11 (its `secret`, `key`,
/// `signed` and `token` lines): what a game server in any language must
/// reproduce, the key's derivation included.
#[test]
fn the_match_token_example_in_protocol_md_mints_and_verifies() {
    use partyline::matchmaker::{
        derive_match_key, mint_match_token, verify_match_token, MatchTokenError,
    };
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md")).unwrap();
    let shown = |label: &str, starts: &str| {
        text.lines()
            .filter_map(|line| line.trim().strip_prefix(label))
            .map(str::trim)
            .find(|rest| rest.starts_with(starts))
            .unwrap_or_else(|| panic!("PROTOCOL.md shows no `{label} {starts}` line"))
            .to_string()
    };
    assert_eq!(
        shown("secret", "example").as_bytes(),
        TOKEN_SECRET,
        "the token secret of section 11's example"
    );
    assert_eq!(shown("key", "3609"), MATCH_KEY);
    assert_eq!(shown("signed", "m1."), MATCH_SIGNED);
    assert_eq!(shown("token", "m1."), MATCH_TOKEN);

    // The key: HKDF-SHA256 of the token secret, as section 11 spells it
    // out with two HMACs.
    assert_eq!(derive_match_key(TOKEN_SECRET).to_vec(), match_key());
    let hmac = |key: &[u8], message: &[u8]| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        ring::hmac::sign(&key, message).as_ref().to_vec()
    };
    let pseudo_random = hmac(&[0; 32], TOKEN_SECRET);
    assert_eq!(
        hmac(&pseudo_random, b"partyline match token v1\x01"),
        match_key()
    );

    let key = match_key();
    assert_eq!(mint_match_token(&key, &match_claims()), MATCH_TOKEN);
    // The tag is HMAC-SHA256 of exactly the text before the last dot.
    let tag = hex(&hmac(&key, MATCH_SIGNED.as_bytes())).replace(' ', "");
    assert_eq!(MATCH_TOKEN, format!("{MATCH_SIGNED}.{tag}"));

    // Valid while the clock is below the expiry, and says who is in it.
    let claims = verify_match_token(&key, MATCH_TOKEN, MATCH_EXPIRES - 1).unwrap();
    assert_eq!(claims, match_claims());
    assert_eq!(claims.parties(), vec![party()]);
    assert!(matches!(
        verify_match_token(&key, MATCH_TOKEN, MATCH_EXPIRES),
        Err(MatchTokenError::Expired { .. })
    ));
    // Neither the token secret nor another key verifies it.
    for wrong in [TOKEN_SECRET, b"another secret"] {
        assert_eq!(
            verify_match_token(wrong, MATCH_TOKEN, 0),
            Err(MatchTokenError::BadSignature)
        );
    }
    // Ben written into Ana's party: the signature no longer holds.
    let tampered = MATCH_TOKEN.replace(",7532:.", &format!(",7532:{}.", "11".repeat(16)));
    assert_eq!(
        verify_match_token(&key, &tampered, 0),
        Err(MatchTokenError::BadSignature)
    );
    let (signed, tag) = MATCH_TOKEN.rsplit_once('.').unwrap();
    assert_eq!(
        verify_match_token(&key, &format!("{signed}.{}", tag.to_uppercase()), 0),
        Err(MatchTokenError::Malformed("signature is not lowercase hex")),
        "uppercase hex is refused"
    );
}

#[test]
fn numbers_are_zigzag_varints_sorted_by_key() {
    let map = numbers(&[("tz", -5), ("skill", 1250)]);
    let mut buf = Vec::new();
    encode_frame(&map, &mut buf).unwrap();
    assert_eq!(
        hex(&buf[FRAME_HEADER_LEN..]),
        "02 05 73 6b 69 6c 6c c4 13 02 74 7a 09",
        "PROTOCOL.md section 3: a count, then each key and its zigzag value"
    );
    let unsorted: Numbers = decode_body(&unhex("02 02 74 7a 09 05 73 6b 69 6c 6c c4 13")).unwrap();
    assert_eq!(unsorted, map, "any order is read");
    let extremes = numbers(&[("a", i64::MIN), ("b", i64::MAX), ("c", -1), ("d", 1)]);
    let mut buf = Vec::new();
    encode_frame(&extremes, &mut buf).unwrap();
    assert_eq!(
        hex(&buf[FRAME_HEADER_LEN..]),
        "04 01 61 ff ff ff ff ff ff ff ff ff 01 \
         01 62 fe ff ff ff ff ff ff ff ff 01 01 63 01 01 64 02"
    );
}

#[test]
fn error_codes_keep_their_numbers_and_unknown_ones_survive() {
    let numbers: Vec<u16> = [
        ErrorCode::InvalidArgument,
        ErrorCode::PartyNotFound,
        ErrorCode::PartyFull,
        ErrorCode::NotLeader,
        ErrorCode::NotMember,
        ErrorCode::MemberNotFound,
        ErrorCode::AlreadyMember,
        ErrorCode::AlreadyRequested,
        ErrorCode::TooManyRequests,
        ErrorCode::RequestNotFound,
        ErrorCode::CannotRemoveSelf,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Unauthenticated,
        ErrorCode::VersionMismatch,
        ErrorCode::Internal,
        ErrorCode::MalformedFrame,
        ErrorCode::ProtocolViolation,
        ErrorCode::ResumeRefused,
        ErrorCode::TooManyParties,
        ErrorCode::InviteNotFound,
        ErrorCode::Banned,
        ErrorCode::JoinCodeNotFound,
        ErrorCode::TooManyFollows,
        ErrorCode::KeyValuesTooLarge,
        ErrorCode::TooManyInvites,
        ErrorCode::TooManyBans,
        ErrorCode::BanNotFound,
        ErrorCode::AlreadyMatchmaking,
        ErrorCode::TicketNotFound,
        ErrorCode::InvalidTicket,
        ErrorCode::PartyTooLarge,
        ErrorCode::Denied,
        ErrorCode::HookFailed,
        ErrorCode::Unavailable,
        ErrorCode::ReadyCheckRunning,
        ErrorCode::NoReadyCheck,
        ErrorCode::NotAsked,
        ErrorCode::TooManyMutes,
        ErrorCode::TooManyBlocks,
        ErrorCode::Blocked,
    ]
    .iter()
    .map(|c| c.number())
    .collect();
    assert_eq!(numbers, (1..=41).collect::<Vec<u16>>());
    for n in 0..=300u16 {
        assert_eq!(ErrorCode::from(n).number(), n);
    }
    // 300 as a varint is ac 02.
    let body = [0xac, 0x02, 0x00];
    let decoded: ErrorBody = decode_body(&body).unwrap();
    assert_eq!(decoded.code, ErrorCode::Unknown(300));
}

#[test]
fn frames_above_the_limit_are_refused_both_ways() {
    let too_big = (MAX_FRAME_SIZE + 1).to_le_bytes();
    assert!(matches!(
        frame_body_len(too_big),
        Err(FrameError::TooLarge { .. })
    ));
    let big = ClientFrame::Request {
        id: 1,
        command: Command::SendData {
            party_id: party(),
            op_code: 0,
            data: Bytes::from(vec![0; MAX_FRAME_SIZE as usize]),
        },
    };
    let mut buf = Vec::new();
    assert!(matches!(
        encode_frame(&big, &mut buf),
        Err(FrameError::TooLarge { .. })
    ));
    assert!(buf.is_empty(), "a refused frame leaves nothing behind");
}

#[test]
fn maps_are_sorted_on_the_wire_and_read_in_any_order() {
    let map = key_values(&[("b", "2"), ("a", "1")]);
    let mut buf = Vec::new();
    encode_frame(&map, &mut buf).unwrap();
    assert_eq!(
        hex(&buf[FRAME_HEADER_LEN..]),
        "02 01 61 01 31 01 62 01 32",
        "a count, then each key and its value, keys in byte order"
    );
    let unsorted: KeyValues = decode_body(&unhex("02 01 62 01 32 01 61 01 31")).unwrap();
    assert_eq!(unsorted, map, "any order is read");
    let repeated: KeyValues = decode_body(&unhex("02 01 61 01 31 01 61 01 32")).unwrap();
    assert_eq!(
        repeated,
        key_values(&[("a", "2")]),
        "a repeated key: the last wins"
    );
}

/// `entries` keys of `key_bytes` each (made distinct by a number at the
/// end), values filling the rest of `total_bytes`.
fn full_map(entries: usize, key_bytes: usize, total_bytes: usize) -> KeyValues {
    let value_bytes = total_bytes / entries - key_bytes;
    (0..entries)
        .map(|i| {
            let key = format!("{i:0>key_bytes$}");
            (key, "v".repeat(value_bytes))
        })
        .collect()
}

#[test]
fn the_largest_party_snapshot_fits_in_one_frame() {
    let presence = |i: usize| Presence {
        user_id: format!("{i:0>128}"),
        username: format!("{i:0>128}"),
        session_id: SessionId::from_u128(i as u128),
    };
    let size = usize::from(MAX_PARTY_SIZE);
    let members: Vec<Presence> = (0..size).map(presence).collect();
    let snapshot = PartySnapshot {
        party_id: party(),
        seq: u64::MAX,
        open: true,
        max_size: MAX_PARTY_SIZE,
        label: "l".repeat(MAX_LABEL_BYTES),
        leader: presence(0),
        disconnected: members.iter().map(|p| p.session_id).collect(),
        members,
        invite_policy: InvitePolicy::AnyMember,
        state: full_map(MAX_STATE_ENTRIES, 1, MAX_STATE_BYTES),
        attributes: vec![full_map(MAX_ATTRIBUTE_ENTRIES, 1, MAX_ATTRIBUTE_BYTES); size],
        join_code: "K7QM2X".into(),
        listed: true,
        properties: full_map(MAX_PROPERTY_ENTRIES, 1, MAX_PROPERTY_BYTES),
        ready_check: None,
        leader_policy: LeaderPolicy::ConnectionQuality,
        quality: vec![ConnectionQuality::Poor; size],
        // As many mutes as a member may keep, of the longest user ids,
        // each with the widest range.
        muted: (0..MAX_MUTES)
            .map(|i| Muted {
                user_id: presence(size + i).user_id,
                op_codes: Some(NumberRange {
                    min: i64::MIN,
                    max: i64::MAX,
                }),
            })
            .collect(),
    };
    // A ready check asking every member, the longest message.
    let check = ReadyCheck {
        check_id: u64::MAX,
        started_by: presence(0),
        message: "m".repeat(MAX_READY_CHECK_MESSAGE_BYTES),
        timeout_ms: u64::MAX,
        ends_at_ms: u64::MAX,
        ready: Vec::new(),
        not_ready: Vec::new(),
        no_answer: snapshot.members.clone(),
    };
    let snapshot = PartySnapshot {
        ready_check: Some(Box::new(check.clone())),
        ..snapshot
    };
    // The largest frames that carry one snapshot.
    let requests: Vec<Presence> = (size..2 * size).map(presence).collect();
    let frames = [
        ServerFrame::Response {
            id: u32::MAX,
            result: Ok(Reply::Party(snapshot.clone())),
        },
        ServerFrame::Event {
            seq: u64::MAX,
            event: Event::Accepted(snapshot.clone()),
        },
        ServerFrame::Welcome(Welcome {
            session_id: SessionId::nil(),
            presence: presence(0),
            resume_token: "t".repeat(64),
            limits: Limits {
                max_frame_size: u32::MAX,
                max_datagram_data: u32::MAX,
                max_reliable_data: u32::MAX,
                max_party_size: u16::MAX,
                max_label_bytes: u32::MAX,
                join_request_ttl_ms: u64::MAX,
                max_status_bytes: u32::MAX,
                max_follows: u32::MAX,
                invite_ttl_ms: u64::MAX,
                invites_per_minute: u32::MAX,
                join_code_attempts_per_minute: u32::MAX,
                max_search_results: u16::MAX,
                max_state_entries: u32::MAX,
                max_state_bytes: u32::MAX,
                max_attribute_entries: u32::MAX,
                max_attribute_bytes: u32::MAX,
                max_property_entries: u32::MAX,
                max_property_bytes: u32::MAX,
                max_bans: u32::MAX,
                matchmaker_interval_ms: u64::MAX,
                matchmaker_relax_after_ms: u64::MAX,
            },
            last_event_seq: u64::MAX,
            resumed: Resumed::Snapshots {
                // Every party a session may hold, each with a full queue.
                parties: vec![ResumedParty { snapshot, requests }; MAX_PARTIES_PER_SESSION],
                waiting: Vec::new(),
            },
        }),
        ServerFrame::Event {
            seq: u64::MAX,
            event: Event::ReadyCheckStarted {
                party_id: party(),
                seq: u64::MAX,
                check: check.clone(),
            },
        },
        ServerFrame::Event {
            seq: u64::MAX,
            event: Event::ReadyCheckEnded {
                party_id: party(),
                seq: u64::MAX,
                check_id: u64::MAX,
                outcome: ReadyCheckOutcome::TimedOut,
                ready: Vec::new(),
                not_ready: Vec::new(),
                no_answer: check.no_answer.clone(),
            },
        },
    ];
    for frame in &frames {
        let max = match frame {
            ServerFrame::Welcome(_) => MAX_WELCOME_SIZE,
            _ => MAX_FRAME_SIZE,
        };
        for version in [2, PROTOCOL_VERSION] {
            if version == 2
                && matches!(frame, ServerFrame::Event { event, .. } if event_for_version(event.clone(), 2).is_none())
            {
                continue;
            }
            let mut buf = Vec::new();
            encode_server_frame(frame, version, &mut buf, max).unwrap();
            assert!(buf.len() - FRAME_HEADER_LEN <= max as usize);
        }
    }
}
