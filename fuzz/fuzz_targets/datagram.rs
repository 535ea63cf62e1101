//! Arbitrary bytes as party-data datagrams, both layouts.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use partyline::protocol::{decode_client_datagram, decode_server_datagram, encode_client_datagram};

fuzz_target!(|data: &[u8]| {
    if let Ok(datagram) = decode_client_datagram(Bytes::copy_from_slice(data)) {
        // A decoded datagram encodes back to the same bytes.
        let again = encode_client_datagram(datagram.party_id, datagram.op_code, &datagram.payload);
        assert_eq!(&again[..], data);
    }
    let _ = decode_server_datagram(Bytes::copy_from_slice(data));
});
