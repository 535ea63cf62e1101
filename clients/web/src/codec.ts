// partyline's wire format, written from PROTOCOL.md (version 3): postcard
// bodies behind a 4-byte little-endian length on the control stream
// (sections 3 and 4), and the fixed datagram layout (section 5).
//
// JavaScript types: u16/u32 are numbers; u64 and i64 are bigints (ticket
// ids are random 64-bit numbers a number cannot hold); a Uuid is its
// lowercase hyphenated text; bytes are Uint8Array; maps are plain objects.
// Enums are objects tagged by `kind` (a variant with one unnamed field
// holds it in `value`), or the variant's name for enums without fields.

/** The version this client speaks (its Hello's). */
export const PROTOCOL_VERSION = 3;
/** The oldest version a server still serves (PROTOCOL.md, "Compatibility"). */
export const OLDEST_PROTOCOL_VERSION = 2;
/** Largest frame body (`max_frame_size`), and the Welcome's. */
export const MAX_FRAME_SIZE = 262144;
export const MAX_WELCOME_SIZE = 8388608;
export const FRAME_HEADER_LEN = 4;

export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

// ---------------------------------------------------------------- bytes

export class Writer {
  private buf = new Uint8Array(64);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.length));
    this.buf = grown;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  varint(value: bigint | number): void {
    let v = BigInt(value);
    if (v < 0n) throw new RangeError("a varint is unsigned");
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export class Reader {
  offset = 0;
  constructor(private readonly buf: Uint8Array) {}

  byte(): number {
    if (this.offset >= this.buf.length) throw new DecodeError("unexpected end of message");
    return this.buf[this.offset++];
  }

  raw(n: number): Uint8Array {
    if (this.offset + n > this.buf.length) throw new DecodeError("unexpected end of message");
    const out = this.buf.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  varint(maxBits: number): bigint {
    let value = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.byte();
      value |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7n;
      if (shift >= BigInt(maxBits + 7)) throw new DecodeError("varint too long");
    }
    if (value >> BigInt(maxBits) !== 0n) throw new DecodeError(`varint above u${maxBits}`);
    return value;
  }

  done(): boolean {
    return this.offset === this.buf.length;
  }

  /** Passes over what is left (a message that ends its frame, unread). */
  skipRest(): void {
    this.offset = this.buf.length;
  }
}

// ----------------------------------------------------------- combinators

export interface Codec<T> {
  enc(w: Writer, v: T): void;
  dec(r: Reader): T;
}

const uint = (bits: number): Codec<number> => ({
  enc: (w, v) => {
    if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) throw new RangeError(`not a u${bits}: ${v}`);
    w.varint(v);
  },
  dec: (r) => Number(r.varint(bits)),
});
export const u16 = uint(16);
export const u32 = uint(32);
export const u64: Codec<bigint> = {
  enc: (w, v) => {
    if (v < 0n || v >= 1n << 64n) throw new RangeError(`not a u64: ${v}`);
    w.varint(v);
  },
  dec: (r) => r.varint(64),
};
export const i64: Codec<bigint> = {
  enc: (w, v) => {
    const n = BigInt.asIntN(64, BigInt(v));
    w.varint(BigInt.asUintN(64, (n << 1n) ^ (n >> 63n)));
  },
  dec: (r) => {
    const z = r.varint(64);
    return BigInt.asIntN(64, (z >> 1n) ^ -(z & 1n));
  },
};
export const bool: Codec<boolean> = {
  enc: (w, v) => w.byte(v ? 1 : 0),
  dec: (r) => {
    const b = r.byte();
    if (b > 1) throw new DecodeError(`not a bool: ${b}`);
    return b === 1;
  },
};
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });
export const bytes: Codec<Uint8Array> = {
  enc: (w, v) => {
    w.varint(v.length);
    w.raw(v);
  },
  dec: (r) => r.raw(Number(r.varint(32))),
};
export const str: Codec<string> = {
  enc: (w, v) => bytes.enc(w, utf8.encode(v)),
  dec: (r) => {
    try {
      return fromUtf8.decode(bytes.dec(r));
    } catch {
      throw new DecodeError("a string that is not UTF-8");
    }
  },
};

/** A UUID's 16 bytes as lowercase hyphenated text. */
export function uuidText(b: Uint8Array): string {
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
/** The 16 bytes of a UUID's text (hyphens optional). */
export function uuidBytes(text: string): Uint8Array {
  const hex = text.replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`not a UUID: ${text}`);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
export const NIL_UUID = "00000000-0000-0000-0000-000000000000";

export const uuid: Codec<string> = {
  enc: (w, v) => {
    w.byte(16);
    w.raw(uuidBytes(v));
  },
  dec: (r) => {
    if (r.varint(32) !== 16n) throw new DecodeError("a UUID is 16 bytes");
    return uuidText(r.raw(16));
  },
};
const raw16: Codec<Uint8Array> = { enc: (w, v) => w.raw(v), dec: (r) => r.raw(16) };

export const option = <T>(c: Codec<T>): Codec<T | null> => ({
  enc: (w, v) => {
    if (v === null || v === undefined) return w.byte(0);
    w.byte(1);
    c.enc(w, v);
  },
  dec: (r) => {
    const tag = r.byte();
    if (tag > 1) throw new DecodeError(`not an Option tag: ${tag}`);
    return tag === 1 ? c.dec(r) : null;
  },
});

export const vec = <T>(c: Codec<T>): Codec<T[]> => ({
  enc: (w, v) => {
    w.varint(v.length);
    for (const item of v) c.enc(w, item);
  },
  dec: (r) => {
    const n = Number(r.varint(32));
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(c.dec(r));
    return out;
  },
});

/** Byte order of UTF-8, as the server sorts map keys. */
function compareUtf8(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** A map of String to `T`, sent in ascending key order (section 3). */
export const map = <T>(c: Codec<T>): Codec<Record<string, T>> => ({
  enc: (w, v) => {
    const keys = Object.keys(v).sort(compareUtf8);
    w.varint(keys.length);
    for (const key of keys) {
      str.enc(w, key);
      c.enc(w, v[key]);
    }
  },
  dec: (r) => {
    const n = Number(r.varint(32));
    const out: Record<string, T> = Object.create(null);
    for (let i = 0; i < n; i++) {
      const key = str.dec(r);
      out[key] = c.dec(r);
    }
    return out;
  },
});

type Fields = [string, Codec<any>][];
// Field names on the JavaScript side are camelCase (wire order is what counts).
export const struct = <T>(fields: Fields): Codec<T> => ({
  enc: (w, v: any) => {
    for (const [name, c] of fields) c.enc(w, v[name]);
  },
  dec: (r) => {
    const out: any = {};
    for (const [name, c] of fields) out[name] = c.dec(r);
    return out;
  },
});

/** Fields written from, and read into, the variant's own object. */
type Spread = { spread: Codec<any> };
/** A variant: its fields (struct-like), one unnamed value, or nothing. */
type Variant = [string, Fields | Spread | Codec<any> | null];

/**
 * Version 2's layout of a variant version 3 appended fields to: written
 * without them, read with what stands for them in version 2
 * (`appended`). `strict`: a value version 2 cannot say (one other than
 * `appended`'s) is refused, not dropped; what a version 2 client sends.
 * Not strict: dropped, as the server leaves them out for version 2.
 */
const withoutAppended = (fields: Fields, appended: Record<string, unknown>, strict: boolean): Spread => ({
  spread: {
    enc: (w, v: any) => {
      for (const [name, value] of Object.entries(appended)) {
        if (strict && v[name] !== undefined && v[name] !== value) {
          throw new RangeError(`version 2 cannot say ${name} ${v[name]}`);
        }
      }
      struct(fields).enc(w, v);
    },
    dec: (r) => ({ ...(struct(fields).dec(r) as object), ...appended }),
  },
});

/** An enum as `{ kind, ...fields }`, `{ kind, value }` or `{ kind }`. */
export const tagged = <T>(variants: Variant[]): Codec<T> => {
  const index = new Map(variants.map(([name], i) => [name, i]));
  return {
    enc: (w, v: any) => {
      const i = index.get(v.kind);
      if (i === undefined) throw new RangeError(`unknown variant ${v.kind}`);
      w.varint(i);
      const shape = variants[i][1];
      if (shape === null) return;
      if (Array.isArray(shape)) struct(shape).enc(w, v);
      else if ("spread" in shape) shape.spread.enc(w, v);
      else shape.enc(w, v.value);
    },
    dec: (r) => {
      const i = Number(r.varint(32));
      const variant = variants[i];
      if (!variant) throw new DecodeError(`unknown variant #${i}`);
      const [kind, shape] = variant;
      if (shape === null) return { kind } as T;
      if (Array.isArray(shape)) return { kind, ...(struct(shape).dec(r) as object) } as T;
      if ("spread" in shape) return { kind, ...(shape.spread.dec(r) as object) } as T;
      return { kind, value: shape.dec(r) } as T;
    },
  };
};

/**
 * A reason (an enum without fields) as its name; from version 3 on, a
 * reason this client does not know (a newer server's) stays its number:
 * the generic end of what it names (PROTOCOL.md, "Compatibility").
 */
export const reasons = <T extends string>(all: readonly T[]): Codec<T | number> => ({
  enc: (w, v) => {
    const i = typeof v === "number" ? v : all.indexOf(v);
    if (i < 0) throw new RangeError(`unknown variant ${v}`);
    w.varint(i);
  },
  dec: (r) => {
    const i = Number(r.varint(32));
    return all[i] ?? i;
  },
});

/** An enum whose variants have no fields, as the variant's name. */
export const names = <T extends string>(all: readonly T[]): Codec<T> => ({
  enc: (w, v) => {
    const i = all.indexOf(v);
    if (i < 0) throw new RangeError(`unknown variant ${v}`);
    w.varint(i);
  },
  dec: (r) => {
    const i = Number(r.varint(32));
    if (i >= all.length) throw new DecodeError(`unknown variant #${i}`);
    return all[i];
  },
});

// ------------------------------------------------------------- messages

/** Section 6: stable numbers, not variant indexes. */
export const ERROR_CODES = [
  "InvalidArgument", "PartyNotFound", "PartyFull", "NotLeader", "NotMember", "MemberNotFound",
  "AlreadyMember", "AlreadyRequested", "TooManyRequests", "RequestNotFound", "CannotRemoveSelf",
  "PayloadTooLarge", "RateLimited", "Unauthenticated", "VersionMismatch", "Internal",
  "MalformedFrame", "ProtocolViolation", "ResumeRefused", "TooManyParties", "InviteNotFound",
  "Banned", "JoinCodeNotFound", "TooManyFollows", "KeyValuesTooLarge", "TooManyInvites",
  "TooManyBans", "BanNotFound", "AlreadyMatchmaking", "TicketNotFound", "InvalidTicket",
  "PartyTooLarge", "Denied", "HookFailed", "Unavailable", "ReadyCheckRunning", "NoReadyCheck",
  "NotAsked", "TooManyMutes", "TooManyBlocks", "Blocked",
] as const;
export type ErrorCodeName = (typeof ERROR_CODES)[number];
/** A known code's name; a newer server's unknown number stays a number. */
export type ErrorCode = ErrorCodeName | number;
export const errorCode: Codec<ErrorCode> = {
  enc: (w, v) => w.varint(typeof v === "number" ? v : ERROR_CODES.indexOf(v) + 1),
  dec: (r) => {
    const n = Number(r.varint(16));
    return ERROR_CODES[n - 1] ?? n;
  },
};

/** Section 1: the codes a server closes a connection with. */
export const CloseCode = {
  Normal: 0, ProtocolViolation: 1, ServerShutdown: 2, HandshakeRefused: 3, SlowConsumer: 4,
  FrameTooLarge: 5, Superseded: 6, ServerFull: 7, RateLimited: 8, Disconnected: 9,
} as const;

export type KeyValues = Record<string, string>;
export type Numbers = Record<string, bigint>;
export interface Presence { userId: string; username: string; sessionId: string }
export interface ErrorBody { code: ErrorCode; message: string }
export type InvitePolicy = "Leader" | "AnyMember";
/** Who leads next when the leader leaves or is lost (version 3): the
 * longest seated, or the best connection (PROTOCOL.md, "Leader by
 * connection quality"). Only a connected member is chosen either way. */
export type LeaderPolicy = "Tenure" | "ConnectionQuality";
/** A member's connection as the server measures it (version 3): `Unknown`
 * while not measured yet or disconnected. */
export type ConnectionQuality = "Unknown" | "Good" | "Fair" | "Poor";
export interface Limits {
  maxFrameSize: number; maxDatagramData: number; maxReliableData: number; maxPartySize: number;
  maxLabelBytes: number; joinRequestTtlMs: bigint; maxStatusBytes: number; maxFollows: number;
  inviteTtlMs: bigint; invitesPerMinute: number; joinCodeAttemptsPerMinute: number;
  maxSearchResults: number; maxStateEntries: number; maxStateBytes: number;
  maxAttributeEntries: number; maxAttributeBytes: number; maxPropertyEntries: number;
  maxPropertyBytes: number; maxBans: number; matchmakerIntervalMs: bigint;
  matchmakerRelaxAfterMs: bigint;
}
export interface PartySnapshot {
  partyId: string; seq: bigint; open: boolean; maxSize: number; label: string; leader: Presence;
  members: Presence[]; disconnected: string[]; invitePolicy: InvitePolicy; state: KeyValues;
  attributes: KeyValues[]; joinCode: string; listed: boolean; properties: KeyValues;
  /** The running ready check with its answers so far (version 3). */
  readyCheck: ReadyCheck | null;
  /** Who leads next (version 3). */
  leaderPolicy: LeaderPolicy;
  /** Each member's connection quality, in the order of `members`
   * (version 3), as of the snapshot: no event says it changed. */
  quality: ConnectionQuality[];
  /** The members this session muted in the party (version 3): only in a
   * snapshot sent to it alone (a reply, a resume's); empty elsewhere. */
  muted: Muted[];
}
/** A member this session muted (version 3): its party data with an op code
 * in `opCodes` (inclusive; all when null) does not reach this session. */
export interface Muted { userId: string; opCodes: NumberRange | null }
/** A party's ready check (version 3): whom it asks, and their answers so far. */
export interface ReadyCheck {
  /** The party `seq` of its start: what an answer names. */
  checkId: bigint; startedBy: Presence; message: string; timeoutMs: bigint;
  /** Unix ms by the server's clock: count down from `timeoutMs` instead. */
  endsAtMs: bigint;
  /** Asked members, in seat order at the start, by their answer. */
  ready: Presence[]; notReady: Presence[]; noAnswer: Presence[];
}
export interface Resume { token: string; lastEventSeq: bigint }
export interface ResumedParty { snapshot: PartySnapshot; requests: Presence[] }
export interface PartySearch {
  openOnly: boolean; minFreeSeats: number; properties: KeyValues; limit: number; cursor: bigint;
}
export interface ListedParty {
  partyId: string; members: number; maxSize: number; open: boolean; label: string;
  properties: KeyValues;
}
export interface UserStatus { presence: Presence; status: string }
export interface PartyInvite {
  partyId: string; inviter: Presence; members: number; maxSize: number; open: boolean;
  label: string; leader: Presence; expiresAtMs: bigint;
}
export interface PartyBan { userId: string; untilMs: bigint }
export interface NumberRange { min: bigint; max: bigint }
export interface TicketQuery { strings: KeyValues; ranges: Record<string, NumberRange> }
export interface MemberProperties { userId: string; strings: KeyValues; numbers: Numbers }
export interface TicketRequest {
  partyId: string | null; minCount: number; maxCount: number; countMultiple: number;
  relaxedMinCount: number; strings: KeyValues; numbers: Numbers; query: TicketQuery;
  members: MemberProperties[];
}
export interface MatchedPlayer {
  presence: Presence; partyId: string | null; strings: KeyValues; numbers: Numbers;
}
export interface MatchFound {
  matchId: Uint8Array; ticketId: bigint; players: MatchedPlayer[]; token: string;
  tokenExpiresAt: bigint;
}
// Reasons: a name, or (from a newer server) a number this client does not know.
export type LeaveReason = "Left" | "Kicked" | "SessionEnded" | "Banned" | number;
export type RejectReason = "Rejected" | "PartyClosed" | "Expired" | number;
export type RequestGoneReason = "Cancelled" | "Expired" | "SessionEnded" | number;
export type InviteGoneReason = "Revoked" | "PartyClosed" | "Expired" | "Banned" | "Answered" | number;
export type TicketCancelReason =
  | "Cancelled" | "MembershipChanged" | "PartyClosed" | "SessionEnded" | "NodeLost" | number;
export type ReadyCheckOutcome = "AllReady" | "TimedOut" | "Cancelled" | number;

const keyValues = map(str);
const numbers = map(i64);
export const presence = struct<Presence>([["userId", str], ["username", str], ["sessionId", uuid]]);
export const errorBody = struct<ErrorBody>([["code", errorCode], ["message", str]]);
const invitePolicy = names<InvitePolicy>(["Leader", "AnyMember"]);
const leaderPolicy = names<LeaderPolicy>(["Tenure", "ConnectionQuality"]);
const QUALITIES = ["Unknown", "Good", "Fair", "Poor"] as const;
/** A bucket this client does not know (a newer server's) reads as
 * `Unknown` (PROTOCOL.md, "Compatibility"). */
const connectionQuality: Codec<ConnectionQuality> = {
  enc: names(QUALITIES).enc,
  dec: (r) => QUALITIES[Number(r.varint(32))] ?? "Unknown",
};
const limits = struct<Limits>([
  ["maxFrameSize", u32], ["maxDatagramData", u32], ["maxReliableData", u32],
  ["maxPartySize", u16], ["maxLabelBytes", u32], ["joinRequestTtlMs", u64],
  ["maxStatusBytes", u32], ["maxFollows", u32], ["inviteTtlMs", u64], ["invitesPerMinute", u32],
  ["joinCodeAttemptsPerMinute", u32], ["maxSearchResults", u16], ["maxStateEntries", u32],
  ["maxStateBytes", u32], ["maxAttributeEntries", u32], ["maxAttributeBytes", u32],
  ["maxPropertyEntries", u32], ["maxPropertyBytes", u32], ["maxBans", u32],
  ["matchmakerIntervalMs", u64], ["matchmakerRelaxAfterMs", u64],
]);
const readyCheck = struct<ReadyCheck>([
  ["checkId", u64], ["startedBy", presence], ["message", str], ["timeoutMs", u64],
  ["endsAtMs", u64], ["ready", vec(presence)], ["notReady", vec(presence)],
  ["noAnswer", vec(presence)],
]);
const SNAPSHOT_V2: Fields = [
  ["partyId", uuid], ["seq", u64], ["open", bool], ["maxSize", u16], ["label", str],
  ["leader", presence], ["members", vec(presence)], ["disconnected", vec(uuid)],
  ["invitePolicy", invitePolicy], ["state", keyValues], ["attributes", vec(keyValues)],
  ["joinCode", str], ["listed", bool], ["properties", keyValues],
];
const numberRange = struct<NumberRange>([["min", i64], ["max", i64]]);
const muted = struct<Muted>([["userId", str], ["opCodes", option(numberRange)]]);
export const partySnapshot = struct<PartySnapshot>([
  ...SNAPSHOT_V2, ["readyCheck", option(readyCheck)], ["leaderPolicy", leaderPolicy],
  ["quality", vec(connectionQuality)], ["muted", vec(muted)],
]);
/**
 * Version 2's layout: the fields up to `properties`, without `readyCheck`,
 * `leaderPolicy`, `quality` and `muted`. Read, they are what version 2
 * cannot be told: no check, `Tenure`, every member `Unknown`, no mutes.
 */
const partySnapshotV2: Codec<PartySnapshot> = {
  enc: (w, v) => struct<PartySnapshot>(SNAPSHOT_V2).enc(w, v),
  dec: (r) => {
    const v2 = struct<PartySnapshot>(SNAPSHOT_V2).dec(r);
    const quality = v2.members.map((): ConnectionQuality => "Unknown");
    return { ...v2, readyCheck: null, leaderPolicy: "Tenure", quality, muted: [] };
  },
};
const resume = struct<Resume>([["token", str], ["lastEventSeq", u64]]);
const partySearch = struct<PartySearch>([
  ["openOnly", bool], ["minFreeSeats", u16], ["properties", keyValues], ["limit", u16],
  ["cursor", u64],
]);
const listedParty = struct<ListedParty>([
  ["partyId", uuid], ["members", u16], ["maxSize", u16], ["open", bool], ["label", str],
  ["properties", keyValues],
]);
const userStatus = struct<UserStatus>([["presence", presence], ["status", str]]);
const partyInvite = struct<PartyInvite>([
  ["partyId", uuid], ["inviter", presence], ["members", u16], ["maxSize", u16], ["open", bool],
  ["label", str], ["leader", presence], ["expiresAtMs", u64],
]);
const partyBan = struct<PartyBan>([["userId", str], ["untilMs", u64]]);
const ticketQuery = struct<TicketQuery>([["strings", keyValues], ["ranges", map(numberRange)]]);
const memberProperties = struct<MemberProperties>([
  ["userId", str], ["strings", keyValues], ["numbers", numbers],
]);
const ticketRequest = struct<TicketRequest>([
  ["partyId", option(uuid)], ["minCount", u32], ["maxCount", u32], ["countMultiple", u32],
  ["relaxedMinCount", u32], ["strings", keyValues], ["numbers", numbers], ["query", ticketQuery],
  ["members", vec(memberProperties)],
]);
const matchedPlayer = struct<MatchedPlayer>([
  ["presence", presence], ["partyId", option(uuid)], ["strings", keyValues], ["numbers", numbers],
]);
const matchFound = struct<MatchFound>([
  ["matchId", raw16], ["ticketId", u64], ["players", vec(matchedPlayer)], ["token", str],
  ["tokenExpiresAt", u64],
]);
const leaveReason = reasons(["Left", "Kicked", "SessionEnded", "Banned"]);
const rejectReason = reasons(["Rejected", "PartyClosed", "Expired"]);
const requestGoneReason = reasons(["Cancelled", "Expired", "SessionEnded"]);
const inviteGoneReason = reasons(["Revoked", "PartyClosed", "Expired", "Banned", "Answered"]);
const ticketCancelReason = reasons([
  "Cancelled", "MembershipChanged", "PartyClosed", "SessionEnded", "NodeLost",
]);
const readyCheckOutcome = reasons(["AllReady", "TimedOut", "Cancelled"]);

export type Identity =
  | { kind: "Dev"; userId: string; username: string }
  | { kind: "Token"; token: string };
const identity = tagged<Identity>([
  ["Dev", [["userId", str], ["username", str]]],
  ["Token", [["token", str]]],
]);
export interface Hello { version: number; identity: Identity; resume: Resume | null }

type P = { partyId: string };
type PU = P & { userId: string };
type KVEdit = P & { set: KeyValues; remove: string[] };
export type Command =
  | {
      kind: "CreateParty"; open: boolean; maxSize: number; label: string; invitePolicy: InvitePolicy;
      state: KeyValues; leaderPolicy: LeaderPolicy;
    }
  | ({ kind: "JoinParty" } & P)
  | ({ kind: "ListJoinRequests" } & P)
  | ({ kind: "AcceptJoinRequest" } & PU)
  | ({ kind: "Remove" } & PU)
  | ({ kind: "Leave" } & P)
  | ({ kind: "Promote" } & PU)
  | ({ kind: "Close" } & P)
  | ({
      kind: "Update"; open: boolean | null; label: string | null; maxSize: number | null;
      invitePolicy: InvitePolicy | null; leaderPolicy: LeaderPolicy | null;
    } & P)
  | ({ kind: "GetParty" } & P)
  | ({ kind: "SendData"; opCode: bigint; data: Uint8Array } & P)
  | ({ kind: "Kick" } & PU)
  | ({ kind: "Reject" } & PU)
  | { kind: "SetStatus"; status: string; visible: boolean }
  | { kind: "Follow"; userIds: string[] }
  | { kind: "Unfollow"; userIds: string[] }
  | ({ kind: "Invite" } & PU)
  | ({ kind: "DeclineInvite" } & P)
  | ({ kind: "RevokeInvite" } & PU)
  | { kind: "ListInvites" }
  | ({ kind: "CreateJoinCode" } & P)
  | ({ kind: "ClearJoinCode" } & P)
  | { kind: "JoinByCode"; code: string }
  | ({ kind: "ListParty"; properties: KeyValues } & P)
  | ({ kind: "UnlistParty" } & P)
  | { kind: "SearchParties"; value: PartySearch }
  | ({ kind: "SetPartyState" } & KVEdit)
  | ({ kind: "SetMemberAttributes" } & KVEdit)
  | ({ kind: "Ban"; durationMs: bigint } & PU)
  | ({ kind: "Unban" } & PU)
  | ({ kind: "ListBans" } & P)
  | { kind: "SubmitTicket"; value: TicketRequest }
  | { kind: "CancelTicket"; ticketId: bigint }
  | ({ kind: "StartReadyCheck"; message: string; timeoutMs: bigint } & P)
  | ({ kind: "AnswerReadyCheck"; checkId: bigint; ready: boolean } & P)
  | ({ kind: "CancelReadyCheck" } & P)
  | ({ kind: "Mute"; opCodes: NumberRange | null } & PU)
  | ({ kind: "Unmute" } & PU)
  | { kind: "Block"; userIds: string[] }
  | { kind: "Unblock"; userIds: string[] }
  | { kind: "ListBlocks" };

const p: Fields = [["partyId", uuid]];
const pu: Fields = [["partyId", uuid], ["userId", str]];
const kvEdit: Fields = [["partyId", uuid], ["set", keyValues], ["remove", vec(str)]];
export type ClientFrame =
  | ({ kind: "Hello" } & Hello)
  | { kind: "Request"; id: number; command: Command };

const CREATE_PARTY_V2: Fields = [
  ["open", bool], ["maxSize", u16], ["label", str], ["invitePolicy", invitePolicy], ["state", keyValues],
];
const UPDATE_V2: Fields = [
  ["partyId", uuid], ["open", option(bool)], ["label", option(str)], ["maxSize", option(u16)],
  ["invitePolicy", option(invitePolicy)],
];

/**
 * What a client sends, in the layout of one protocol version. Version 2's
 * `CreateParty` and `Update` have no `leaderPolicy` (the server reads them
 * as `Tenure` and as no change), and it has no ready check, mute or block
 * commands (PROTOCOL.md section 4, "Compatibility"). This client speaks version 3;
 * version 2's layout is here for the worked examples of what a version 2
 * client sends.
 */
export function clientFrameFor(version: number): Codec<ClientFrame> {
  const variants: Variant[] = [
    ["CreateParty", version >= 3
      ? [...CREATE_PARTY_V2, ["leaderPolicy", leaderPolicy]]
      : withoutAppended(CREATE_PARTY_V2, { leaderPolicy: "Tenure" }, true)],
    ["JoinParty", p], ["ListJoinRequests", p], ["AcceptJoinRequest", pu], ["Remove", pu],
    ["Leave", p], ["Promote", pu], ["Close", p],
    ["Update", version >= 3
      ? [...UPDATE_V2, ["leaderPolicy", option(leaderPolicy)]]
      : withoutAppended(UPDATE_V2, { leaderPolicy: null }, true)],
    ["GetParty", p],
    ["SendData", [["partyId", uuid], ["opCode", i64], ["data", bytes]]],
    ["Kick", pu], ["Reject", pu],
    ["SetStatus", [["status", str], ["visible", bool]]],
    ["Follow", [["userIds", vec(str)]]], ["Unfollow", [["userIds", vec(str)]]],
    ["Invite", pu], ["DeclineInvite", p], ["RevokeInvite", pu], ["ListInvites", null],
    ["CreateJoinCode", p], ["ClearJoinCode", p], ["JoinByCode", [["code", str]]],
    ["ListParty", [["partyId", uuid], ["properties", keyValues]]], ["UnlistParty", p],
    ["SearchParties", partySearch], ["SetPartyState", kvEdit], ["SetMemberAttributes", kvEdit],
    ["Ban", [["partyId", uuid], ["userId", str], ["durationMs", u64]]], ["Unban", pu],
    ["ListBans", p], ["SubmitTicket", ticketRequest], ["CancelTicket", [["ticketId", u64]]],
  ];
  if (version >= 3) {
    variants.push(
      ["StartReadyCheck", [["partyId", uuid], ["message", str], ["timeoutMs", u64]]],
      ["AnswerReadyCheck", [["partyId", uuid], ["checkId", u64], ["ready", bool]]],
      ["CancelReadyCheck", p],
      ["Mute", [["partyId", uuid], ["userId", str], ["opCodes", option(numberRange)]]],
      ["Unmute", pu], ["Block", [["userIds", vec(str)]]], ["Unblock", [["userIds", vec(str)]]],
      ["ListBlocks", null],
    );
  }
  const command = tagged<Command>(variants);
  return tagged<ClientFrame>([
    ["Hello", [["version", u16], ["identity", identity], ["resume", option(resume)]]],
    ["Request", [["id", u32], ["command", command]]],
  ]);
}
export const clientFrame = clientFrameFor(PROTOCOL_VERSION);

export type JoinOutcome =
  | { kind: "Joined"; value: PartySnapshot }
  | { kind: "Queued"; partyId: string; seq: bigint };
export type Reply =
  | { kind: "Party"; value: PartySnapshot }
  | { kind: "Join"; value: JoinOutcome }
  | { kind: "JoinRequests"; partyId: string; seq: bigint; requests: Presence[] }
  | { kind: "Done" }
  | { kind: "Followed"; online: UserStatus[] }
  | { kind: "Invites"; value: PartyInvite[] }
  | { kind: "JoinCode"; partyId: string; code: string }
  | { kind: "Parties"; parties: ListedParty[]; nextCursor: bigint }
  | { kind: "Bans"; partyId: string; bans: PartyBan[] }
  | { kind: "TicketStarted"; ticketId: bigint }
  /** Block, Unblock, ListBlocks (version 3): the list now, sorted. */
  | { kind: "Blocks"; userIds: string[] };

type PS = { partyId: string; seq: bigint };
export type Event =
  | ({ kind: "MemberJoined"; presence: Presence } & PS)
  | ({ kind: "MemberLeft"; presence: Presence; reason: LeaveReason } & PS)
  | ({ kind: "LeaderChanged"; leader: Presence } & PS)
  | ({ kind: "JoinRequested"; presence: Presence } & PS)
  | ({ kind: "JoinRequestGone"; presence: Presence; reason: RequestGoneReason } & PS)
  | ({ kind: "JoinRequestList"; requests: Presence[] } & PS)
  | { kind: "Accepted"; value: PartySnapshot }
  | ({ kind: "JoinRejected"; reason: RejectReason } & PS)
  | ({ kind: "Kicked" } & PS)
  | ({ kind: "Closed" } & PS)
  | ({
      kind: "Updated"; open: boolean; maxSize: number; label: string; invitePolicy: InvitePolicy;
      leaderPolicy: LeaderPolicy;
    } & PS)
  | { kind: "Data"; partyId: string; sender: Presence; opCode: bigint; data: Uint8Array }
  | { kind: "DataRefused"; partyId: string; opCode: bigint; error: ErrorBody }
  | ({ kind: "MemberConnection"; presence: Presence; connected: boolean } & PS)
  | { kind: "StatusOnline"; value: UserStatus }
  | { kind: "StatusChanged"; value: UserStatus }
  | { kind: "StatusOffline"; presence: Presence }
  | { kind: "Invited"; value: PartyInvite }
  | { kind: "InviteGone"; partyId: string; reason: InviteGoneReason }
  | { kind: "InviteDeclined"; partyId: string; presence: Presence }
  | ({ kind: "PartyStateChanged"; state: KeyValues } & PS)
  | ({ kind: "MemberAttributesChanged"; presence: Presence; attributes: KeyValues } & PS)
  | ({ kind: "JoinCodeChanged"; code: string } & PS)
  | ({ kind: "ListingChanged"; listed: boolean; properties: KeyValues } & PS)
  | ({ kind: "Banned"; untilMs: bigint } & PS)
  | { kind: "TicketStarted"; ticketId: bigint; partyId: string | null }
  | { kind: "TicketCancelled"; ticketId: bigint; reason: TicketCancelReason }
  | { kind: "Matched"; value: MatchFound }
  | ({ kind: "ReadyCheckStarted"; check: ReadyCheck } & PS)
  | ({ kind: "ReadyCheckAnswered"; checkId: bigint; presence: Presence; ready: boolean } & PS)
  | ({
      kind: "ReadyCheckEnded"; checkId: bigint; outcome: ReadyCheckOutcome; ready: Presence[];
      notReady: Presence[]; noAnswer: Presence[];
    } & PS)
  /** The game's server set this session's block list (version 3). */
  | { kind: "BlocksChanged"; userIds: string[] }
  /** An event of a newer version, which this client does not know: to be
   * ignored, its session event number counted (PROTOCOL.md, "Compatibility"). */
  | { kind: "Unknown"; variant: number };

export type Resumed =
  | { kind: "New" }
  | { kind: "Replayed"; count: number }
  | { kind: "Snapshots"; parties: ResumedParty[]; waiting: string[] };
export interface Welcome {
  sessionId: string; presence: Presence; resumeToken: string; limits: Limits;
  lastEventSeq: bigint; resumed: Resumed;
}
/** `Result<T, E>`: `#0 Ok`, `#1 Err`. */
export type Result<T> = { ok: true; value: T } | { ok: false; error: ErrorBody };
const result = <T>(c: Codec<T>): Codec<Result<T>> => ({
  enc: (w, v) => {
    w.byte(v.ok ? 0 : 1);
    if (v.ok) c.enc(w, v.value);
    else errorBody.enc(w, v.error);
  },
  dec: (r) => {
    const tag = Number(r.varint(32));
    if (tag === 0) return { ok: true, value: c.dec(r) };
    if (tag === 1) return { ok: false, error: errorBody.dec(r) };
    throw new DecodeError(`not a Result tag: ${tag}`);
  },
});
export type ServerFrame =
  | { kind: "Welcome"; value: Welcome }
  | { kind: "Refused"; value: ErrorBody }
  | { kind: "Response"; id: number; result: Result<Reply> }
  | { kind: "Event"; seq: bigint; event: Event }
  | { kind: "FrameError"; value: ErrorBody };

/**
 * What the server sends, in the layout of one protocol version: the
 * `PartySnapshot` and `Updated` differ between versions 2 and 3, and
 * version 2 has no ready check events (a version 2 session is never sent
 * what version 2 cannot decode, PROTOCOL.md section 4, "Compatibility").
 * This client speaks version 3; version 2's layout is here for the worked
 * examples of what a version 2 session is sent.
 */
export function serverFrameFor(version: number): Codec<ServerFrame> {
  const snapshot = version >= 3 ? partySnapshot : partySnapshotV2;
  const resumedParty = struct<ResumedParty>([["snapshot", snapshot], ["requests", vec(presence)]]);
  const joinOutcome = tagged<JoinOutcome>([
    ["Joined", snapshot],
    ["Queued", [["partyId", uuid], ["seq", u64]]],
  ]);
  const reply = tagged<Reply>([
    ["Party", snapshot], ["Join", joinOutcome],
    ["JoinRequests", [["partyId", uuid], ["seq", u64], ["requests", vec(presence)]]],
    ["Done", null], ["Followed", [["online", vec(userStatus)]]], ["Invites", vec(partyInvite)],
    ["JoinCode", [["partyId", uuid], ["code", str]]],
    ["Parties", [["parties", vec(listedParty)], ["nextCursor", u64]]],
    ["Bans", [["partyId", uuid], ["bans", vec(partyBan)]]],
    ["TicketStarted", [["ticketId", u64]]],
    ["Blocks", [["userIds", vec(str)]]],
  ]);
  const ps: Fields = [["partyId", uuid], ["seq", u64]];
  const updated: Fields = [...ps, ["open", bool], ["maxSize", u16], ["label", str], ["invitePolicy", invitePolicy]];
  const variants: Variant[] = [
    ["MemberJoined", [...ps, ["presence", presence]]],
    ["MemberLeft", [...ps, ["presence", presence], ["reason", leaveReason]]],
    ["LeaderChanged", [...ps, ["leader", presence]]],
    ["JoinRequested", [...ps, ["presence", presence]]],
    ["JoinRequestGone", [...ps, ["presence", presence], ["reason", requestGoneReason]]],
    ["JoinRequestList", [...ps, ["requests", vec(presence)]]],
    ["Accepted", snapshot],
    ["JoinRejected", [...ps, ["reason", rejectReason]]],
    ["Kicked", ps], ["Closed", ps],
    ["Updated", version >= 3
      ? [...updated, ["leaderPolicy", leaderPolicy]]
      : withoutAppended(updated, { leaderPolicy: "Tenure" }, false)],
    ["Data", [["partyId", uuid], ["sender", presence], ["opCode", i64], ["data", bytes]]],
    ["DataRefused", [["partyId", uuid], ["opCode", i64], ["error", errorBody]]],
    ["MemberConnection", [...ps, ["presence", presence], ["connected", bool]]],
    ["StatusOnline", userStatus], ["StatusChanged", userStatus],
    ["StatusOffline", [["presence", presence]]], ["Invited", partyInvite],
    ["InviteGone", [["partyId", uuid], ["reason", inviteGoneReason]]],
    ["InviteDeclined", [["partyId", uuid], ["presence", presence]]],
    ["PartyStateChanged", [...ps, ["state", keyValues]]],
    ["MemberAttributesChanged", [...ps, ["presence", presence], ["attributes", keyValues]]],
    ["JoinCodeChanged", [...ps, ["code", str]]],
    ["ListingChanged", [...ps, ["listed", bool], ["properties", keyValues]]],
    ["Banned", [...ps, ["untilMs", u64]]],
    ["TicketStarted", [["ticketId", u64], ["partyId", option(uuid)]]],
    ["TicketCancelled", [["ticketId", u64], ["reason", ticketCancelReason]]],
    ["Matched", matchFound],
  ];
  if (version >= 3) {
    variants.push(
      ["ReadyCheckStarted", [...ps, ["check", readyCheck]]],
      ["ReadyCheckAnswered", [...ps, ["checkId", u64], ["presence", presence], ["ready", bool]]],
      ["ReadyCheckEnded", [
        ...ps, ["checkId", u64], ["outcome", readyCheckOutcome], ["ready", vec(presence)],
        ["notReady", vec(presence)], ["noAnswer", vec(presence)],
      ]],
      ["BlocksChanged", [["userIds", vec(str)]]],
    );
  }
  const known = tagged<Event>(variants);
  // An event is the last thing in its frame, so one of a variant this
  // client does not know can be passed over whole: from version 3 on it is
  // ignored, not a decode error (PROTOCOL.md, "Compatibility").
  const event: Codec<Event> = {
    enc: (w, v) => {
      if (v.kind === "Unknown") throw new RangeError(`an unknown event (#${v.variant}) has no bytes`);
      known.enc(w, v);
    },
    dec: (r) => {
      const at = r.offset;
      const variant = Number(r.varint(32));
      r.offset = at;
      if (variant < variants.length || version < 3) return known.dec(r);
      r.skipRest();
      return { kind: "Unknown", variant };
    },
  };
  const resumed = tagged<Resumed>([
    ["New", null], ["Replayed", [["count", u32]]],
    ["Snapshots", [["parties", vec(resumedParty)], ["waiting", vec(uuid)]]],
  ]);
  const welcome = struct<Welcome>([
    ["sessionId", uuid], ["presence", presence], ["resumeToken", str], ["limits", limits],
    ["lastEventSeq", u64], ["resumed", resumed],
  ]);
  return tagged<ServerFrame>([
    ["Welcome", welcome], ["Refused", errorBody],
    ["Response", [["id", u32], ["result", result(reply)]]],
    ["Event", [["seq", u64], ["event", event]]],
    ["FrameError", errorBody],
  ]);
}
export const serverFrame = serverFrameFor(PROTOCOL_VERSION);

// --------------------------------------------------------------- frames

/** One frame: the body's length (u32 LE), then the body. */
export function encodeFrame<T>(c: Codec<T>, message: T, limit = MAX_FRAME_SIZE): Uint8Array {
  const w = new Writer();
  for (let i = 0; i < FRAME_HEADER_LEN; i++) w.byte(0);
  c.enc(w, message);
  const out = w.bytes();
  const len = out.length - FRAME_HEADER_LEN;
  if (len > limit) throw new RangeError(`a frame of ${len} bytes is above the limit of ${limit}`);
  new DataView(out.buffer).setUint32(0, len, true);
  return out;
}

/** A whole body: exactly one message, no trailing bytes (section 3). */
export function decodeBody<T>(c: Codec<T>, body: Uint8Array): T {
  const r = new Reader(body);
  const value = c.dec(r);
  if (!r.done()) throw new DecodeError("trailing bytes after the message");
  return value;
}

export const encodeClientFrame = (frame: ClientFrame): Uint8Array => encodeFrame(clientFrame, frame);
export const decodeServerFrame = (body: Uint8Array): ServerFrame => decodeBody(serverFrame, body);

/**
 * Splits frames out of a byte stream as chunks arrive. The first frame may
 * be a Welcome (8 MiB); every later one at most 256 KiB.
 */
export class FrameReader {
  private pending = new Uint8Array(0);
  private first = true;

  push(chunk: Uint8Array): Uint8Array[] {
    const joined = new Uint8Array(this.pending.length + chunk.length);
    joined.set(this.pending);
    joined.set(chunk, this.pending.length);
    const bodies: Uint8Array[] = [];
    let at = 0;
    while (joined.length - at >= FRAME_HEADER_LEN) {
      const len = new DataView(joined.buffer, at, FRAME_HEADER_LEN).getUint32(0, true);
      const limit = this.first ? MAX_WELCOME_SIZE : MAX_FRAME_SIZE;
      if (len > limit) throw new DecodeError(`a frame of ${len} bytes is above the limit of ${limit}`);
      if (joined.length - at - FRAME_HEADER_LEN < len) break;
      bodies.push(joined.slice(at + FRAME_HEADER_LEN, at + FRAME_HEADER_LEN + len));
      at += FRAME_HEADER_LEN + len;
      this.first = false;
    }
    this.pending = joined.slice(at);
    return bodies;
  }
}

// ------------------------------------------------------------ datagrams

export const DATAGRAM_KIND = 0x01;

/** Client -> server (section 5): kind, party id, op code (i64 LE), payload. */
export function encodeClientDatagram(partyId: string, opCode: bigint, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(25 + payload.length);
  out[0] = DATAGRAM_KIND;
  out.set(uuidBytes(partyId), 1);
  new DataView(out.buffer).setBigInt64(17, BigInt.asIntN(64, opCode), true);
  out.set(payload, 25);
  return out;
}

export interface ServerDatagram { partyId: string; sender: string; opCode: bigint; payload: Uint8Array }

/** Server -> client (section 5): kind, party id, sender session id, op code, payload. */
export function decodeServerDatagram(datagram: Uint8Array): ServerDatagram {
  if (datagram.length < 41) throw new DecodeError(`a datagram of ${datagram.length} bytes is too short`);
  if (datagram[0] !== DATAGRAM_KIND) throw new DecodeError(`unknown datagram kind ${datagram[0]}`);
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  return {
    partyId: uuidText(datagram.slice(1, 17)),
    sender: uuidText(datagram.slice(17, 33)),
    opCode: view.getBigInt64(33, true),
    payload: datagram.slice(41),
  };
}

/** The server's layout, for tests and tools that play the server's part. */
export function encodeServerDatagram(d: ServerDatagram): Uint8Array {
  const out = new Uint8Array(41 + d.payload.length);
  out[0] = DATAGRAM_KIND;
  out.set(uuidBytes(d.partyId), 1);
  out.set(uuidBytes(d.sender), 17);
  new DataView(out.buffer).setBigInt64(33, BigInt.asIntN(64, d.opCode), true);
  out.set(d.payload, 41);
  return out;
}
