//! Party data datagrams: a fixed binary layout (not postcard) so the hot
//! path parses with a few slice reads and any language can build one.
//!
//! Client -> server: `kind u8 = 1 | party_id [16] | op_code i64 LE | payload`
//! Server -> client: `kind u8 = 1 | party_id [16] | sender session [16] | op_code i64 LE | payload`

use crate::{PartyId, SessionId};
use bytes::{BufMut, Bytes, BytesMut};

/// First byte of a party-data datagram; other values are reserved.
pub const DATAGRAM_KIND_PARTY_DATA: u8 = 1;
/// Bytes before the payload of a client datagram: kind, party id, op code.
pub const CLIENT_DATAGRAM_HEADER_LEN: usize = 1 + 16 + 8;
/// Bytes before the payload of a server datagram: kind, party id, sender, op code.
pub const SERVER_DATAGRAM_HEADER_LEN: usize = 1 + 16 + 16 + 8;

/// Why a datagram could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatagramError {
    /// The datagram is shorter than its fixed header.
    #[error("datagram of {len} bytes is shorter than its {header}-byte header")]
    Truncated {
        /// The datagram's length in bytes.
        len: usize,
        /// The header length it needed at least.
        header: usize,
    },
    /// The first byte is not a known datagram kind.
    #[error("unknown datagram kind {0}")]
    UnknownKind(u8),
}

/// A datagram as the server receives it. `payload` shares the received buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDatagram {
    /// The party the data is for.
    pub party_id: PartyId,
    /// The game's own op code (what the data means), passed on untouched.
    pub op_code: i64,
    /// The game data after the header.
    pub payload: Bytes,
}

/// A datagram as a client receives it, stamped by the server with the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDatagram {
    /// The party the data was sent to.
    pub party_id: PartyId,
    /// The session that sent it, stamped by the server (cannot be forged).
    pub sender: SessionId,
    /// The game's own op code (what the data means), as the sender gave it.
    pub op_code: i64,
    /// The game data after the header.
    pub payload: Bytes,
}

fn check_header(datagram: &[u8], header: usize) -> Result<(), DatagramError> {
    let truncated = DatagramError::Truncated {
        len: datagram.len(),
        header,
    };
    match datagram.first() {
        _ if datagram.len() < header => Err(truncated),
        Some(&DATAGRAM_KIND_PARTY_DATA) => Ok(()),
        Some(&other) => Err(DatagramError::UnknownKind(other)),
        None => Err(truncated),
    }
}

/// `N` bytes at `at`; the caller has checked the header length, so `None`
/// would be a bug in the layout constants, reported as truncation.
fn read_array<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], DatagramError> {
    bytes
        .get(at..at + N)
        .and_then(|slice| slice.try_into().ok())
        .ok_or(DatagramError::Truncated {
            len: bytes.len(),
            header: at + N,
        })
}

fn read_id(bytes: &[u8], at: usize) -> Result<[u8; 16], DatagramError> {
    read_array::<16>(bytes, at)
}

fn read_i64(bytes: &[u8], at: usize) -> Result<i64, DatagramError> {
    read_array::<8>(bytes, at).map(i64::from_le_bytes)
}

/// The party id and op code a client datagram names where its bytes hold
/// them, whatever its kind: for refusing a datagram that did not parse
/// with as much as it said (nil and 0 where it is too short).
pub fn client_datagram_hint(datagram: &[u8]) -> (PartyId, i64) {
    let party_id = read_id(datagram, 1).map_or(PartyId::nil(), PartyId::from_bytes);
    let op_code = read_i64(datagram, 17).unwrap_or(0);
    (party_id, op_code)
}

/// Builds a client -> server party-data datagram.
pub fn encode_client_datagram(party_id: PartyId, op_code: i64, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(CLIENT_DATAGRAM_HEADER_LEN + payload.len());
    buf.put_u8(DATAGRAM_KIND_PARTY_DATA);
    buf.put_slice(party_id.as_bytes());
    buf.put_i64_le(op_code);
    buf.put_slice(payload);
    buf.freeze()
}

/// Parses a client -> server datagram; the payload shares `datagram`'s buffer.
pub fn decode_client_datagram(datagram: Bytes) -> Result<ClientDatagram, DatagramError> {
    check_header(&datagram, CLIENT_DATAGRAM_HEADER_LEN)?;
    Ok(ClientDatagram {
        party_id: PartyId::from_bytes(read_id(&datagram, 1)?),
        op_code: read_i64(&datagram, 17)?,
        payload: datagram.slice(CLIENT_DATAGRAM_HEADER_LEN..),
    })
}

/// Builds the outgoing datagram once; the server then hands a cheap clone
/// of the same buffer to every recipient.
pub fn encode_server_datagram(
    party_id: PartyId,
    sender: SessionId,
    op_code: i64,
    payload: &[u8],
) -> Bytes {
    let mut buf = BytesMut::with_capacity(SERVER_DATAGRAM_HEADER_LEN + payload.len());
    buf.put_u8(DATAGRAM_KIND_PARTY_DATA);
    buf.put_slice(party_id.as_bytes());
    buf.put_slice(sender.as_bytes());
    buf.put_i64_le(op_code);
    buf.put_slice(payload);
    buf.freeze()
}

/// Parses a server -> client datagram; the payload shares `datagram`'s buffer.
pub fn decode_server_datagram(datagram: Bytes) -> Result<ServerDatagram, DatagramError> {
    check_header(&datagram, SERVER_DATAGRAM_HEADER_LEN)?;
    Ok(ServerDatagram {
        party_id: PartyId::from_bytes(read_id(&datagram, 1)?),
        sender: SessionId::from_bytes(read_id(&datagram, 17)?),
        op_code: read_i64(&datagram, 33)?,
        payload: datagram.slice(SERVER_DATAGRAM_HEADER_LEN..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_datagram_round_trips_and_has_the_documented_layout() {
        let party = PartyId::from_bytes([7; 16]);
        let encoded = encode_client_datagram(party, -2, b"hi");
        let mut expected = vec![1u8];
        expected.extend_from_slice(&[7; 16]);
        expected.extend_from_slice(&(-2i64).to_le_bytes());
        expected.extend_from_slice(b"hi");
        assert_eq!(&encoded[..], &expected[..]);
        let decoded = decode_client_datagram(encoded).expect("decodes");
        assert_eq!(decoded.party_id, party);
        assert_eq!(decoded.op_code, -2);
        assert_eq!(&decoded.payload[..], b"hi");
    }

    #[test]
    fn server_datagram_round_trips() {
        let encoded = encode_server_datagram(
            PartyId::from_bytes([1; 16]),
            SessionId::from_bytes([2; 16]),
            9,
            b"",
        );
        assert_eq!(encoded.len(), SERVER_DATAGRAM_HEADER_LEN);
        let decoded = decode_server_datagram(encoded).expect("decodes");
        assert_eq!(decoded.sender, SessionId::from_bytes([2; 16]));
        assert_eq!(decoded.op_code, 9);
        assert!(decoded.payload.is_empty());
    }

    #[test]
    fn short_and_unknown_datagrams_are_errors() {
        assert_eq!(
            decode_client_datagram(Bytes::from_static(&[1, 2, 3])),
            Err(DatagramError::Truncated {
                len: 3,
                header: CLIENT_DATAGRAM_HEADER_LEN
            })
        );
        assert_eq!(
            decode_client_datagram(Bytes::new()),
            Err(DatagramError::Truncated {
                len: 0,
                header: CLIENT_DATAGRAM_HEADER_LEN
            })
        );
        let mut bad = encode_client_datagram(PartyId::nil(), 0, b"x").to_vec();
        bad[0] = 9;
        assert_eq!(
            decode_client_datagram(Bytes::from(bad)),
            Err(DatagramError::UnknownKind(9))
        );
    }
}
