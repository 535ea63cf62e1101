//! Arbitrary bytes as a control-stream frame (length prefix and body), in
//! both directions: a value or an error, never a panic or a huge allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use partyline::protocol::{decode_body, encode_frame, frame_body_len, ClientFrame, ServerFrame};

fuzz_target!(|data: &[u8]| {
    if let Some(prefix) = data.get(..4) {
        let mut header = [0u8; 4];
        header.copy_from_slice(prefix);
        if let Ok(len) = frame_body_len(header) {
            let body = data.get(4..).unwrap_or_default();
            let body = body.get(..len.min(body.len())).unwrap_or_default();
            let _ = decode_body::<ClientFrame>(body);
        }
    }
    // Whatever decodes must encode again.
    if let Ok(frame) = decode_body::<ClientFrame>(data) {
        let mut out = Vec::new();
        let _ = encode_frame(&frame, &mut out);
    }
    if let Ok(frame) = decode_body::<ServerFrame>(data) {
        let mut out = Vec::new();
        let _ = encode_frame(&frame, &mut out);
    }
});
