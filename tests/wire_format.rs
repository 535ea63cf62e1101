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

fn placeholder(token: &str) -> Option<&'static str> {
    Some(match token {
        "PARTY" => PARTY,
        "SID_A" => SID_A,
        "SID_B" => SID_B,
        "ANA" => ANA,
        "BEN" => BEN,
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
}

fn client_examples(doc: &mut Doc) {
    let hello = ClientFrame::Hello(Hello {
        resume: None,
        version: 2,
        identity: Identity::Dev {
            user_id: "u1".into(),
            username: "Ana".into(),
        },
    });
    doc.golden(
        "hello",
        &hello,
        "0b 00 00 00 00 02 00 02 75 31 03 41 6e 61 00",
    );
    let resuming = ClientFrame::Hello(Hello {
        version: 2,
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
        "0e 00 00 00 00 02 00 02 75 31 03 41 6e 61 01 01 74 07",
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
        },
    };
    doc.golden(
        "create-party",
        &create,
        "0b 00 00 00 01 ac 02 00 01 04 02 65 75 00 00",
    );
    let update = ClientFrame::Request {
        id: 3,
        command: Command::Update {
            party_id: party(),
            open: None,
            label: Some("x".into()),
            max_size: Some(8),
            invite_policy: None,
        },
    };
    doc.golden(
        "update",
        &update,
        &format!("1b 00 00 00 01 03 08 {PARTY} 00 01 01 78 01 08 00"),
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
}

fn server_examples(doc: &mut Doc) {
    let refused = ServerFrame::Response {
        id: 2,
        result: Err(ErrorBody::new(ErrorCode::PartyFull, "full")),
    };
    doc.golden(
        "response-refused",
        &refused,
        "09 00 00 00 02 02 01 03 04 66 75 6c 6c",
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
    ]
    .iter()
    .map(|c| c.number())
    .collect();
    assert_eq!(numbers, (1..=28).collect::<Vec<u16>>());
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
