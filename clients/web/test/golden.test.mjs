// The TypeScript codec against PROTOCOL.md's worked examples: the same
// `<!-- golden: name -->` byte blocks tests/wire_format.rs pins the Rust
// codec to, read from the same file with the same placeholder rules.
// Every example is checked both ways (encode gives its bytes, decoding its
// bytes gives the value back), and every example must be checked here.
// The client speaks version 3; the examples of what a version 2 client
// sends and is sent (`-v2`) are checked in version 2's layout
// (codec.clientFrameFor(2), codec.serverFrameFor(2)): what it reads back
// is the value with version 2's stand-ins for what version 3 appended, and
// what the server had (the version 3 value) gives the same bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as codec from "../dist/codec.js";

const PROTOCOL_MD = fileURLToPath(new URL("../../../PROTOCOL.md", import.meta.url));

const PARTY = "10 " + "11 ".repeat(16).trim();
const SID_A = "10 " + "aa ".repeat(16).trim();
const SID_B = "10 " + "bb ".repeat(16).trim();
const ANA = "02 75 31 03 41 6e 61 " + SID_A;
const BEN = "02 75 32 03 42 65 6e " + SID_B;
const LIMITS =
  "80 80 10 cc 08 80 80 02 80 02 80 10 e0 a7 12 80 01 80 02 e0 a7 12 1e 0a 64 20 80 20 10 80 02 10 80 08 80 02 e8 07 b0 ea 01";
const PLACEHOLDERS = { PARTY, SID_A, SID_B, ANA, BEN, LIMITS };

/** A line's bytes: its leading byte and placeholder tokens, up to the first other word. */
function bytesOfLine(line) {
  const out = [];
  for (const token of line.trim().split(/\s+/)) {
    if (/^[0-9a-fA-F]{2}$/.test(token)) out.push(token.toLowerCase());
    else if (token in PLACEHOLDERS) out.push(...PLACEHOLDERS[token].split(" "));
    else break;
  }
  return out;
}

/** PROTOCOL.md's byte examples by name. */
function examples() {
  const lines = readFileSync(PROTOCOL_MD, "utf8").split("\n");
  const found = new Map();
  let marker = null;
  for (let i = 0; i < lines.length; i++) {
    const trimmed = lines[i].trim();
    const m = /^<!-- golden:\s*(\S+)\s*-->$/.exec(trimmed);
    if (m) {
      marker = m[1];
      continue;
    }
    if (!trimmed.startsWith("```")) {
      if (trimmed) marker = null;
      continue;
    }
    const block = [];
    for (i++; i < lines.length && !lines[i].trim().startsWith("```"); i++) block.push(lines[i]);
    if (marker) found.set(marker, block.flatMap(bytesOfLine).join(" "));
    marker = null;
  }
  return found;
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
const unhex = (text) => Uint8Array.from(text.split(" "), (b) => parseInt(b, 16));
const utf8 = (s) => new TextEncoder().encode(s);

const party = "11111111-1111-1111-1111-111111111111";
const sidA = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
const sidB = "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb";
const ana = { userId: "u1", username: "Ana", sessionId: sidA };
const ben = { userId: "u2", username: "Ben", sessionId: sidB };
const kv = (entries) => Object.assign(Object.create(null), entries);
const limits = {
  maxFrameSize: 262144, maxDatagramData: 1100, maxReliableData: 32768, maxPartySize: 256,
  maxLabelBytes: 2048, joinRequestTtlMs: 300000n, maxStatusBytes: 128, maxFollows: 256,
  inviteTtlMs: 300000n, invitesPerMinute: 30, joinCodeAttemptsPerMinute: 10,
  maxSearchResults: 100, maxStateEntries: 32, maxStateBytes: 4096, maxAttributeEntries: 16,
  maxAttributeBytes: 256, maxPropertyEntries: 16, maxPropertyBytes: 1024, maxBans: 256,
  matchmakerIntervalMs: 1000n, matchmakerRelaxAfterMs: 30000n,
};
const request = (id, command) => ({ kind: "Request", id, command });
const event = (seq, ev) => ({ kind: "Event", seq, event: ev });
const response = (id, result) => ({ kind: "Response", id, result });
const MATCH_TOKEN =
  "m1.0123456789abcdef0123456789abcdef.1700000060.7531:11111111111111111111111111111111,7532:." +
  "458792475ad88551d9f797c2c64c123962fb98adcfa465b615e302a624c48314";

const createParty = request(300, {
  kind: "CreateParty", open: true, maxSize: 4, label: "eu", invitePolicy: "Leader", state: kv({}),
  leaderPolicy: "Tenure",
});
const update = request(3, {
  kind: "Update", partyId: party, open: null, label: "x", maxSize: 8, invitePolicy: null,
  leaderPolicy: null,
});
const CLIENT = {
  hello: {
    kind: "Hello", version: 3, identity: { kind: "Dev", userId: "u1", username: "Ana" }, resume: null,
  },
  "hello-resume": {
    kind: "Hello", version: 3, identity: { kind: "Dev", userId: "u1", username: "Ana" },
    resume: { token: "t", lastEventSeq: 7n },
  },
  kick: request(5, { kind: "Kick", partyId: party, userId: "u2" }),
  "create-party": createParty,
  "create-party-state": request(6, {
    kind: "CreateParty", open: false, maxSize: 8, label: "", invitePolicy: "AnyMember",
    state: kv({ mode: "duo", map: "dust" }), leaderPolicy: "ConnectionQuality",
  }),
  update,
  "update-leader-policy": request(11, {
    kind: "Update", partyId: party, open: null, label: null, maxSize: null, invitePolicy: null,
    leaderPolicy: "ConnectionQuality",
  }),
  "send-data": request(4, { kind: "SendData", partyId: party, opCode: -1n, data: utf8("hi") }),
  invite: request(7, { kind: "Invite", partyId: party, userId: "u2" }),
  "join-by-code": request(8, { kind: "JoinByCode", code: "k7q-m2x" }),
  "search-parties": request(9, {
    kind: "SearchParties",
    value: { openOnly: true, minFreeSeats: 2, properties: kv({ mode: "duo" }), limit: 20, cursor: 0n },
  }),
  "submit-ticket": request(11, {
    kind: "SubmitTicket",
    value: {
      partyId: party, minCount: 2, maxCount: 4, countMultiple: 2, relaxedMinCount: 0,
      strings: kv({ region: "eu" }), numbers: kv({ skill: 1250n }),
      query: { strings: kv({ region: "eu" }), ranges: kv({ skill: { min: 1000n, max: 1500n } }) },
      members: [{ userId: "u1", strings: kv({ hero: "mage" }), numbers: kv({}) }],
    },
  }),
  "cancel-ticket": request(12, { kind: "CancelTicket", ticketId: 7n }),
  "start-ready-check": request(12, {
    kind: "StartReadyCheck", partyId: party, message: "go?", timeoutMs: 30000n,
  }),
  "answer-ready-check": request(13, { kind: "AnswerReadyCheck", partyId: party, checkId: 7n, ready: true }),
  mute: request(14, { kind: "Mute", partyId: party, userId: "u2", opCodes: { min: 100n, max: 199n } }),
  "mute-all": request(15, { kind: "Mute", partyId: party, userId: "u2", opCodes: null }),
  unmute: request(16, { kind: "Unmute", partyId: party, userId: "u2" }),
  block: request(17, { kind: "Block", userIds: ["u2", "u3"] }),
  unblock: request(18, { kind: "Unblock", userIds: ["u3"] }),
  "list-blocks": request(19, { kind: "ListBlocks" }),
};

const snapshot = {
  partyId: party, seq: 3n, open: false, maxSize: 4, label: "eu", leader: ana, members: [ana, ben],
  disconnected: [sidB], invitePolicy: "AnyMember", state: kv({ map: "dust" }),
  attributes: [kv({}), kv({ hero: "mage" })], joinCode: "K7QM2X", listed: true,
  properties: kv({ mode: "duo" }), readyCheck: null, leaderPolicy: "ConnectionQuality",
  quality: ["Good", "Unknown"],
  // Ana (who asked) muted Ben's op codes 100 to 199.
  muted: [{ userId: "u2", opCodes: { min: 100n, max: 199n } }],
};
const snapshotsWelcome = {
  kind: "Welcome",
  value: {
    sessionId: sidA, presence: ana, resumeToken: "u", limits, lastEventSeq: 1030n,
    resumed: {
      kind: "Snapshots",
      parties: [{
        snapshot: {
          partyId: party, seq: 12n, open: false, maxSize: 4, label: "", leader: ana,
          members: [ana], disconnected: [], invitePolicy: "Leader", state: kv({}),
          attributes: [kv({})], joinCode: "", listed: false, properties: kv({}), readyCheck: null,
          leaderPolicy: "Tenure", quality: ["Good"], muted: [],
        },
        requests: [ben],
      }],
      waiting: [],
    },
  },
};
const updated = event(6n, {
  kind: "Updated", partyId: party, seq: 7n, open: true, maxSize: 4, label: "eu",
  invitePolicy: "AnyMember", leaderPolicy: "ConnectionQuality",
});
const SERVER = {
  welcome: {
    kind: "Welcome",
    value: {
      sessionId: sidA, presence: ana, resumeToken: "t", limits, lastEventSeq: 0n,
      resumed: { kind: "New" },
    },
  },
  "welcome-snapshots": snapshotsWelcome,
  "response-refused": response(2, { ok: false, error: { code: "PartyFull", message: "full" } }),
  "response-denied": response(3, { ok: false, error: { code: "Denied", message: "no" } }),
  "refused-unavailable": { kind: "Refused", value: { code: "Unavailable", message: "later" } },
  "response-unavailable": response(4, { ok: false, error: { code: "Unavailable", message: "later" } }),
  "event-server-data": event(2n, {
    kind: "Data", partyId: party,
    sender: { userId: "", username: "", sessionId: codec.NIL_UUID }, opCode: 1n, data: utf8("gl"),
  }),
  "response-done": response(4, { ok: true, value: { kind: "Done" } }),
  "event-kicked": event(1n, { kind: "Kicked", partyId: party, seq: 5n }),
  "event-updated": updated,
  "response-party": response(10, { ok: true, value: { kind: "Party", value: snapshot } }),
  "response-parties": response(9, {
    ok: true,
    value: {
      kind: "Parties",
      parties: [{ partyId: party, members: 2, maxSize: 4, open: true, label: "eu", properties: kv({ mode: "duo" }) }],
      nextCursor: 0n,
    },
  }),
  "event-invited": event(4n, {
    kind: "Invited",
    value: {
      partyId: party, inviter: ana, members: 1, maxSize: 4, open: false, label: "eu", leader: ana,
      expiresAtMs: 1700000300000n,
    },
  }),
  "event-member-attributes": event(5n, {
    kind: "MemberAttributesChanged", partyId: party, seq: 4n, presence: ben,
    attributes: kv({ ready: "1", hero: "mage" }),
  }),
  "event-banned": event(6n, { kind: "Banned", partyId: party, seq: 9n, untilMs: 0n }),
  "response-ticket-started": response(11, { ok: true, value: { kind: "TicketStarted", ticketId: 7n } }),
  "event-ticket-started": event(7n, { kind: "TicketStarted", ticketId: 7n, partyId: party }),
  "event-ticket-cancelled": event(9n, { kind: "TicketCancelled", ticketId: 7n, reason: "MembershipChanged" }),
  "event-ticket-node-lost": event(12n, { kind: "TicketCancelled", ticketId: 7n, reason: "NodeLost" }),
  "event-matched": event(8n, {
    kind: "Matched",
    value: {
      matchId: unhex("01 23 45 67 89 ab cd ef 01 23 45 67 89 ab cd ef"), ticketId: 7n,
      players: [
        { presence: ana, partyId: party, strings: kv({ region: "eu", hero: "mage" }), numbers: kv({ skill: 1250n }) },
        { presence: ben, partyId: null, strings: kv({ region: "eu" }), numbers: kv({ skill: 1190n }) },
      ],
      token: MATCH_TOKEN, tokenExpiresAt: 1700000060n,
    },
  }),
  "event-ready-check-started": event(8n, {
    kind: "ReadyCheckStarted", partyId: party, seq: 7n,
    check: {
      checkId: 7n, startedBy: ana, message: "go?", timeoutMs: 30000n, endsAtMs: 1700000030000n,
      ready: [ana], notReady: [], noAnswer: [ben],
    },
  }),
  "event-ready-check-answered": event(9n, {
    kind: "ReadyCheckAnswered", partyId: party, seq: 8n, checkId: 7n, presence: ben, ready: true,
  }),
  "event-ready-check-ended": event(10n, {
    kind: "ReadyCheckEnded", partyId: party, seq: 8n, checkId: 7n, outcome: "AllReady",
    ready: [ana, ben], notReady: [], noAnswer: [],
  }),
  "response-blocks": response(17, { ok: true, value: { kind: "Blocks", userIds: ["u2", "u3"] } }),
  "event-blocks-changed": event(11n, { kind: "BlocksChanged", userIds: ["u9"] }),
  "response-blocked": response(20, { ok: false, error: { code: "Blocked", message: "no" } }),
};

// What a version 2 client sends and is sent, in version 2's layout: `read`
// is what decoding gives (version 2's stand-ins where version 3 appended
// fields: no ready check, `Tenure`, every member's quality `Unknown`, no
// mutes, no leader policy change); `sent`, when given, is the version 3
// value the server (or client) had, which must give the same bytes.
const { resumed } = snapshotsWelcome.value;
const CLIENT_V2 = {
  "create-party-v2": { read: createParty },
  "update-v2": { read: update },
};
const SERVER_V2 = {
  "welcome-snapshots-v2": {
    sent: snapshotsWelcome,
    read: {
      ...snapshotsWelcome,
      value: {
        ...snapshotsWelcome.value,
        resumed: {
          ...resumed,
          parties: [{ ...resumed.parties[0], snapshot: { ...resumed.parties[0].snapshot, quality: ["Unknown"] } }],
        },
      },
    },
  },
  "response-unavailable-v2": {
    read: response(4, { ok: false, error: { code: "Internal", message: "later" } }),
  },
  "event-updated-v2": {
    sent: updated,
    read: event(6n, { ...updated.event, leaderPolicy: "Tenure" }),
  },
  "response-blocked-v2": {
    read: response(20, { ok: false, error: { code: "InvalidArgument", message: "no" } }),
  },
};

const DATAGRAMS = ["client-datagram", "server-datagram"];

const shown = examples();

for (const [name, value] of Object.entries(CLIENT)) {
  test(`client frame ${name}`, () => checkFrame(codec.clientFrame, name, value));
}
for (const [name, value] of Object.entries(SERVER)) {
  test(`server frame ${name}`, () => checkFrame(codec.serverFrame, name, value));
}
for (const [name, { read, sent }] of Object.entries(CLIENT_V2)) {
  test(`client frame ${name}, version 2`, () => checkFrame(codec.clientFrameFor(2), name, read, sent));
}
for (const [name, { read, sent }] of Object.entries(SERVER_V2)) {
  test(`server frame ${name}, version 2`, () => checkFrame(codec.serverFrameFor(2), name, read, sent));
}

/** `value` encodes to the example's bytes and decodes from them; so does `sent`, encoded. */
function checkFrame(c, name, value, sent = value) {
  const expected = shown.get(name);
  assert.ok(expected, `PROTOCOL.md has an example named ${name}`);
  assert.equal(hex(codec.encodeFrame(c, value, codec.MAX_WELCOME_SIZE)), expected);
  assert.equal(hex(codec.encodeFrame(c, sent, codec.MAX_WELCOME_SIZE)), expected);
  const body = unhex(expected).slice(codec.FRAME_HEADER_LEN);
  assert.deepEqual(codec.decodeBody(c, body), value);
}

test("client datagram", () => {
  const bytes = codec.encodeClientDatagram(party, 258n, utf8("hi"));
  assert.equal(hex(bytes), shown.get("client-datagram"));
});

test("server datagram", () => {
  const bytes = unhex(shown.get("server-datagram"));
  const decoded = codec.decodeServerDatagram(bytes);
  assert.deepEqual(decoded, { partyId: party, sender: sidB, opCode: 258n, payload: utf8("hi") });
  assert.equal(hex(codec.encodeServerDatagram(decoded)), shown.get("server-datagram"));
});

test("every byte example in PROTOCOL.md is checked here", () => {
  const checked = new Set([
    ...Object.keys(CLIENT), ...Object.keys(SERVER), ...Object.keys(CLIENT_V2),
    ...Object.keys(SERVER_V2), ...DATAGRAMS,
  ]);
  for (const name of shown.keys()) assert.ok(checked.has(name), `example ${name} is not checked`);
  for (const name of checked) assert.ok(shown.has(name), `PROTOCOL.md lost example ${name}`);
  assert.ok(shown.size >= 39, `only ${shown.size} examples were read`);
});
