// The codec's edges that PROTOCOL.md states as rules (section 3).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as codec from "../dist/codec.js";

const unhex = (text) => Uint8Array.from(text.split(" "), (b) => parseInt(b, 16));
// Maps decode as objects without a prototype.
const kv = (entries = {}) => Object.assign(Object.create(null), entries);
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

test("an event of a kind this client does not know is passed over, its number kept", () => {
  // Event, session event 5, event #99 with bytes this client cannot read.
  const frame = codec.decodeServerFrame(unhex("03 05 63 ff ff 00 07"));
  assert.deepEqual(frame, { kind: "Event", seq: 5n, event: { kind: "Unknown", variant: 99 } });
  // The first event number past version 3's (31) is unknown too.
  assert.equal(codec.decodeServerFrame(unhex("03 06 20")).event.kind, "Unknown");
  // Version 2 decoders were strict: there, it is an error.
  assert.throws(() => codec.decodeBody(codec.serverFrameFor(2), unhex("03 05 63")), codec.DecodeError);
  // An unknown event has no bytes to send.
  assert.throws(() => codec.encodeFrame(codec.serverFrame, frame), RangeError);
});

test("a reason this client does not know stays its number", () => {
  // MemberLeft at party seq 2 (a presence with empty names), reason #9.
  const body = unhex("03 01 01 10 " + "11 ".repeat(16) + "02 00 00 10 " + "aa ".repeat(16) + "09");
  const frame = codec.decodeServerFrame(body);
  assert.equal(frame.event.kind, "MemberLeft");
  assert.equal(frame.event.reason, 9);
  // A known one is its name, and a number is written as it is.
  const w = new codec.Writer();
  codec.reasons(["Left", "Kicked"]).enc(w, 9);
  assert.equal(hex(w.bytes()), "09");
});

test("a snapshot with a running ready check, a leader policy, qualities and mutes: version 2 leaves them out", () => {
  const presence = { userId: "u1", username: "Ana", sessionId: "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa" };
  const check = {
    checkId: 7n, startedBy: presence, message: "go?", timeoutMs: 30000n, endsAtMs: 1700000030000n,
    ready: [presence], notReady: [], noAnswer: [],
  };
  const snapshot = {
    partyId: "11111111-1111-1111-1111-111111111111", seq: 7n, open: true, maxSize: 2, label: "",
    leader: presence, members: [presence], disconnected: [], invitePolicy: "Leader", state: kv(),
    attributes: [kv()], joinCode: "", listed: false, properties: kv(), readyCheck: check,
    leaderPolicy: "ConnectionQuality", quality: ["Poor"], muted: [],
  };
  const frame = { kind: "Response", id: 1, result: { ok: true, value: { kind: "Party", value: snapshot } } };
  const v3 = codec.encodeFrame(codec.serverFrame, frame).slice(4);
  const v2 = codec.encodeFrame(codec.serverFrameFor(2), frame).slice(4);
  // Version 3 appends Some(check), then the policy (#1), one bucket per
  // member (Poor, #3) and the mutes (none), after version 2's last field.
  assert.equal(hex(v3.slice(0, v2.length)), hex(v2));
  assert.equal(v3[v2.length], 1);
  assert.equal(hex(v3.slice(-4)), "01 01 03 00");
  assert.deepEqual(codec.decodeServerFrame(v3).result.value.value, snapshot);
  // Read in version 2's layout: what version 2 is never told stands in.
  const old = codec.decodeBody(codec.serverFrameFor(2), v2).result.value.value;
  assert.deepEqual(old, { ...snapshot, readyCheck: null, leaderPolicy: "Tenure", quality: ["Unknown"], muted: [] });
});

test("a connection quality this client does not know reads as Unknown", () => {
  // Response 1, Ok, Party: a snapshot of one member whose bucket is #7.
  const presence = { userId: "u1", username: "Ana", sessionId: "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa" };
  const snapshot = {
    partyId: "11111111-1111-1111-1111-111111111111", seq: 1n, open: true, maxSize: 2, label: "",
    leader: presence, members: [presence], disconnected: [], invitePolicy: "Leader", state: {},
    attributes: [{}], joinCode: "", listed: false, properties: {}, readyCheck: null,
    leaderPolicy: "Tenure", quality: ["Fair"], muted: [],
  };
  const frame = { kind: "Response", id: 1, result: { ok: true, value: { kind: "Party", value: snapshot } } };
  const body = codec.encodeFrame(codec.serverFrame, frame).slice(4);
  // The body ends: policy, one bucket, no mutes.
  assert.equal(body[body.length - 2], 2); // Fair
  body[body.length - 2] = 7;
  assert.deepEqual(codec.decodeServerFrame(body).result.value.value.quality, ["Unknown"]);
  // A leader policy is not a reason: an unknown one is a decode error.
  body[body.length - 4] = 5;
  assert.throws(() => codec.decodeServerFrame(body), codec.DecodeError);
});

test("version 2's layout cannot say a leader policy, nor start a ready check, nor mute", () => {
  const v2 = codec.clientFrameFor(2);
  const party = "11111111-1111-1111-1111-111111111111";
  const create = {
    kind: "CreateParty", open: true, maxSize: 4, label: "", invitePolicy: "Leader", state: {},
  };
  const request = (command) => ({ kind: "Request", id: 1, command });
  // Tenure is what version 2's CreateParty means; the best connection it cannot ask for.
  codec.encodeFrame(v2, request({ ...create, leaderPolicy: "Tenure" }));
  assert.throws(() => codec.encodeFrame(v2, request({ ...create, leaderPolicy: "ConnectionQuality" })), RangeError);
  const update = { kind: "Update", partyId: party, open: null, label: null, maxSize: null, invitePolicy: null };
  codec.encodeFrame(v2, request({ ...update, leaderPolicy: null }));
  assert.throws(() => codec.encodeFrame(v2, request({ ...update, leaderPolicy: "Tenure" })), RangeError);
  assert.throws(
    () => codec.encodeFrame(v2, request({ kind: "CancelReadyCheck", partyId: party })),
    RangeError,
  );
  assert.throws(() => codec.encodeFrame(v2, request({ kind: "Block", userIds: ["u2"] })), RangeError);
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
