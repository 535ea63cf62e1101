//! Golden bytes: the worked examples in PROTOCOL.md, checked against the
//! real encoder and decoder so the document cannot drift from the code.

use bytes::Bytes;
use partyline::protocol::*;

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

const PARTY: &str = "10 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11";

fn party() -> PartyId {
    PartyId::from_bytes([0x11; 16])
}

#[test]
fn client_frames_match_protocol_md() {
    let hello = ClientFrame::Hello(Hello {
        resume: None,
        version: 1,
        identity: Identity::Dev {
            user_id: "u1".into(),
            username: "Ana".into(),
        },
    });
    golden(&hello, "0b 00 00 00 00 01 00 02 75 31 03 41 6e 61 00");
    let resuming = ClientFrame::Hello(Hello {
        version: 1,
        identity: Identity::Dev {
            user_id: "u1".into(),
            username: "Ana".into(),
        },
        resume: Some(Resume {
            token: "t".into(),
            last_event_seq: 7,
        }),
    });
    golden(
        &resuming,
        "0e 00 00 00 00 01 00 02 75 31 03 41 6e 61 01 01 74 07",
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
    golden(&create, "0b 00 00 00 01 ac 02 00 01 04 02 65 75 00 00");
    let join = ClientFrame::Request {
        id: 2,
        command: Command::JoinParty { party_id: party() },
    };
    golden(&join, &format!("14 00 00 00 01 02 01 {PARTY}"));
    let kick = ClientFrame::Request {
        id: 5,
        command: Command::Kick {
            party_id: party(),
            user_id: "u2".into(),
        },
    };
    golden(&kick, &format!("17 00 00 00 01 05 0b {PARTY} 02 75 32"));
    let reject = ClientFrame::Request {
        id: 5,
        command: Command::Reject {
            party_id: party(),
            user_id: "u2".into(),
        },
    };
    golden(&reject, &format!("17 00 00 00 01 05 0c {PARTY} 02 75 32"));
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
    golden(
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
    golden(&data, &format!("18 00 00 00 01 04 0a {PARTY} 01 02 68 69"));
}

#[test]
fn server_frames_match_protocol_md() {
    let refused = ServerFrame::Response {
        id: 2,
        result: Err(ErrorBody::new(ErrorCode::PartyFull, "full")),
    };
    golden(&refused, "09 00 00 00 02 02 01 03 04 66 75 6c 6c");
    let done = ServerFrame::Response {
        id: 4,
        result: Ok(Reply::Done),
    };
    golden(&done, "04 00 00 00 02 04 00 03");
    let kicked = ServerFrame::Event {
        seq: 1,
        event: Event::Kicked {
            party_id: party(),
            seq: 5,
        },
    };
    golden(&kicked, &format!("15 00 00 00 03 01 08 {PARTY} 05"));
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
    ]
    .iter()
    .map(|c| c.number())
    .collect();
    assert_eq!(numbers, (1..=20).collect::<Vec<u16>>());
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
