// The codec's edges that PROTOCOL.md states as rules (section 3).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as codec from "../dist/codec.js";

const unhex = (text) => Uint8Array.from(text.split(" "), (b) => parseInt(b, 16));
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");

test("maps are written in UTF-8 byte order and read in any order", () => {
  const w = new codec.Writer();
  codec.map(codec.str).enc(w, { b: "2", a: "1" });
  assert.equal(hex(w.bytes()), "02 01 61 01 31 01 62 01 32");
  const r = codec.decodeBody(codec.map(codec.str), unhex("02 01 62 01 32 01 61 01 31"));
  assert.equal(r.a, "1");
  // A key given twice keeps its last value.
  const twice = codec.decodeBody(codec.map(codec.str), unhex("02 01 61 01 31 01 61 01 32"));
  assert.equal(twice.a, "2");
});

test("numbers are zigzag varints", () => {
  const w = new codec.Writer();
  codec.map(codec.i64).enc(w, { skill: 1250n, tz: -5n });
  assert.equal(hex(w.bytes()), "02 05 73 6b 69 6c 6c c4 13 02 74 7a 09");
  for (const n of [0n, -1n, 1n, -2n, 2n ** 63n - 1n, -(2n ** 63n)]) {
    const w = new codec.Writer();
    codec.i64.enc(w, n);
    assert.equal(codec.decodeBody(codec.i64, w.bytes()), n);
  }
});

test("a ticket id above 2^53 survives exactly", () => {
  const id = 3349882089230041098n;
  const body = codec.encodeFrame(codec.clientFrame, {
    kind: "Request", id: 1, command: { kind: "CancelTicket", ticketId: id },
  }).slice(4);
  const back = codec.decodeBody(codec.clientFrame, body);
  assert.equal(back.command.ticketId, id);
});

test("bad bodies are typed errors, not crashes", () => {
  const bad = [
    "05", // no such ServerFrame variant
    "03 01 63", // an event of unknown kind
    "02 01 00 03 ff", // a truncated Response
    "01 01 02 00", // trailing bytes
    "02 01 01 01 02 ff fe", // a string that is not UTF-8
  ];
  for (const body of bad) {
    assert.throws(() => codec.decodeServerFrame(unhex(body)), codec.DecodeError, body);
  }
  // A bool is 0 or 1 only.
  assert.throws(() => codec.decodeBody(codec.bool, unhex("02")), codec.DecodeError);
  // A varint above its type.
  assert.throws(() => codec.decodeBody(codec.u16, unhex("80 80 04")), codec.DecodeError);
});

test("unknown error numbers survive as numbers", () => {
  const body = unhex("02 01 01 e7 07 00");
  const frame = codec.decodeServerFrame(body);
  assert.equal(frame.result.error.code, 999);
});

test("the frame reader splits a stream at any chunk boundary", () => {
  const a = codec.encodeFrame(codec.serverFrame, { kind: "Response", id: 1, result: { ok: true, value: { kind: "Done" } } });
  const b = codec.encodeFrame(codec.serverFrame, { kind: "Event", seq: 1n, event: { kind: "Kicked", partyId: codec.NIL_UUID, seq: 2n } });
  const stream = new Uint8Array([...a, ...b]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const reader = new codec.FrameReader();
    const bodies = [...reader.push(stream.slice(0, cut)), ...reader.push(stream.slice(cut))];
    assert.equal(bodies.length, 2);
    assert.equal(codec.decodeServerFrame(bodies[1]).event.kind, "Kicked");
  }
  // A length above the limit is refused before it is waited for.
  const reader = new codec.FrameReader();
  reader.push(a);
  assert.throws(() => reader.push(unhex("01 00 04 00")), codec.DecodeError);
});

test("datagrams: too short or of another kind are refused", () => {
  assert.throws(() => codec.decodeServerDatagram(new Uint8Array(40)), codec.DecodeError);
  const d = new Uint8Array(41);
  d[0] = 2;
  assert.throws(() => codec.decodeServerDatagram(d), codec.DecodeError);
});
