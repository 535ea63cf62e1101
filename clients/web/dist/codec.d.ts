/** The version this client speaks (its Hello's). */
export declare const PROTOCOL_VERSION = 3;
/** The oldest version a server still serves (PROTOCOL.md, "Compatibility"). */
export declare const OLDEST_PROTOCOL_VERSION = 2;
/** Largest frame body (`max_frame_size`), and the Welcome's. */
export declare const MAX_FRAME_SIZE = 262144;
export declare const MAX_WELCOME_SIZE = 8388608;
export declare const FRAME_HEADER_LEN = 4;
export declare class DecodeError extends Error {
    constructor(message: string);
}
export declare class Writer {
    private buf;
    length: number;
    private reserve;
    byte(b: number): void;
    raw(bytes: Uint8Array): void;
    varint(value: bigint | number): void;
    bytes(): Uint8Array;
}
export declare class Reader {
    private readonly buf;
    offset: number;
    constructor(buf: Uint8Array);
    byte(): number;
    raw(n: number): Uint8Array;
    varint(maxBits: number): bigint;
    done(): boolean;
    /** Passes over what is left (a message that ends its frame, unread). */
    skipRest(): void;
}
export interface Codec<T> {
    enc(w: Writer, v: T): void;
    dec(r: Reader): T;
}
export declare const u16: Codec<number>;
export declare const u32: Codec<number>;
export declare const u64: Codec<bigint>;
export declare const i64: Codec<bigint>;
export declare const bool: Codec<boolean>;
export declare const bytes: Codec<Uint8Array>;
export declare const str: Codec<string>;
/** A UUID's 16 bytes as lowercase hyphenated text. */
export declare function uuidText(b: Uint8Array): string;
/** The 16 bytes of a UUID's text (hyphens optional). */
export declare function uuidBytes(text: string): Uint8Array;
export declare const NIL_UUID = "00000000-0000-0000-0000-000000000000";
export declare const uuid: Codec<string>;
export declare const option: <T>(c: Codec<T>) => Codec<T | null>;
export declare const vec: <T>(c: Codec<T>) => Codec<T[]>;
/** A map of String to `T`, sent in ascending key order (section 3). */
export declare const map: <T>(c: Codec<T>) => Codec<Record<string, T>>;
type Fields = [string, Codec<any>][];
export declare const struct: <T>(fields: Fields) => Codec<T>;
/** Fields written from, and read into, the variant's own object. */
type Spread = {
    spread: Codec<any>;
};
/** A variant: its fields (struct-like), one unnamed value, or nothing. */
type Variant = [string, Fields | Spread | Codec<any> | null];
/** An enum as `{ kind, ...fields }`, `{ kind, value }` or `{ kind }`. */
export declare const tagged: <T>(variants: Variant[]) => Codec<T>;
/**
 * A reason (an enum without fields) as its name; from version 3 on, a
 * reason this client does not know (a newer server's) stays its number:
 * the generic end of what it names (PROTOCOL.md, "Compatibility").
 */
export declare const reasons: <T extends string>(all: readonly T[]) => Codec<T | number>;
/** An enum whose variants have no fields, as the variant's name. */
export declare const names: <T extends string>(all: readonly T[]) => Codec<T>;
/** Section 6: stable numbers, not variant indexes. */
export declare const ERROR_CODES: readonly ["InvalidArgument", "PartyNotFound", "PartyFull", "NotLeader", "NotMember", "MemberNotFound", "AlreadyMember", "AlreadyRequested", "TooManyRequests", "RequestNotFound", "CannotRemoveSelf", "PayloadTooLarge", "RateLimited", "Unauthenticated", "VersionMismatch", "Internal", "MalformedFrame", "ProtocolViolation", "ResumeRefused", "TooManyParties", "InviteNotFound", "Banned", "JoinCodeNotFound", "TooManyFollows", "KeyValuesTooLarge", "TooManyInvites", "TooManyBans", "BanNotFound", "AlreadyMatchmaking", "TicketNotFound", "InvalidTicket", "PartyTooLarge", "Denied", "HookFailed", "Unavailable", "ReadyCheckRunning", "NoReadyCheck", "NotAsked", "TooManyMutes", "TooManyBlocks", "Blocked"];
export type ErrorCodeName = (typeof ERROR_CODES)[number];
/** A known code's name; a newer server's unknown number stays a number. */
export type ErrorCode = ErrorCodeName | number;
export declare const errorCode: Codec<ErrorCode>;
/** Section 1: the codes a server closes a connection with. */
export declare const CloseCode: {
    readonly Normal: 0;
    readonly ProtocolViolation: 1;
    readonly ServerShutdown: 2;
    readonly HandshakeRefused: 3;
    readonly SlowConsumer: 4;
    readonly FrameTooLarge: 5;
    readonly Superseded: 6;
    readonly ServerFull: 7;
    readonly RateLimited: 8;
    readonly Disconnected: 9;
};
export type KeyValues = Record<string, string>;
export type Numbers = Record<string, bigint>;
export interface Presence {
    userId: string;
    username: string;
    sessionId: string;
}
export interface ErrorBody {
    code: ErrorCode;
    message: string;
}
export type InvitePolicy = "Leader" | "AnyMember";
/** Who leads next when the leader leaves or is lost (version 3): the
 * longest seated, or the best connection (PROTOCOL.md, "Leader by
 * connection quality"). Only a connected member is chosen either way. */
export type LeaderPolicy = "Tenure" | "ConnectionQuality";
/** A member's connection as the server measures it (version 3): `Unknown`
 * while not measured yet or disconnected. */
export type ConnectionQuality = "Unknown" | "Good" | "Fair" | "Poor";
export interface Limits {
    maxFrameSize: number;
    maxDatagramData: number;
    maxReliableData: number;
    maxPartySize: number;
    maxLabelBytes: number;
    joinRequestTtlMs: bigint;
    maxStatusBytes: number;
    maxFollows: number;
    inviteTtlMs: bigint;
    invitesPerMinute: number;
    joinCodeAttemptsPerMinute: number;
    maxSearchResults: number;
    maxStateEntries: number;
    maxStateBytes: number;
    maxAttributeEntries: number;
    maxAttributeBytes: number;
    maxPropertyEntries: number;
    maxPropertyBytes: number;
    maxBans: number;
    matchmakerIntervalMs: bigint;
    matchmakerRelaxAfterMs: bigint;
}
export interface PartySnapshot {
    partyId: string;
    seq: bigint;
    open: boolean;
    maxSize: number;
    label: string;
    leader: Presence;
    members: Presence[];
    disconnected: string[];
    invitePolicy: InvitePolicy;
    state: KeyValues;
    attributes: KeyValues[];
    joinCode: string;
    listed: boolean;
    properties: KeyValues;
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
export interface Muted {
    userId: string;
    opCodes: NumberRange | null;
}
/** A party's ready check (version 3): whom it asks, and their answers so far. */
export interface ReadyCheck {
    /** The party `seq` of its start: what an answer names. */
    checkId: bigint;
    startedBy: Presence;
    message: string;
    timeoutMs: bigint;
    /** Unix ms by the server's clock: count down from `timeoutMs` instead. */
    endsAtMs: bigint;
    /** Asked members, in seat order at the start, by their answer. */
    ready: Presence[];
    notReady: Presence[];
    noAnswer: Presence[];
}
export interface Resume {
    token: string;
    lastEventSeq: bigint;
}
export interface ResumedParty {
    snapshot: PartySnapshot;
    requests: Presence[];
}
export interface PartySearch {
    openOnly: boolean;
    minFreeSeats: number;
    properties: KeyValues;
    limit: number;
    cursor: bigint;
}
export interface ListedParty {
    partyId: string;
    members: number;
    maxSize: number;
    open: boolean;
    label: string;
    properties: KeyValues;
}
export interface UserStatus {
    presence: Presence;
    status: string;
}
export interface PartyInvite {
    partyId: string;
    inviter: Presence;
    members: number;
    maxSize: number;
    open: boolean;
    label: string;
    leader: Presence;
    expiresAtMs: bigint;
}
export interface PartyBan {
    userId: string;
    untilMs: bigint;
}
export interface NumberRange {
    min: bigint;
    max: bigint;
}
export interface TicketQuery {
    strings: KeyValues;
    ranges: Record<string, NumberRange>;
}
export interface MemberProperties {
    userId: string;
    strings: KeyValues;
    numbers: Numbers;
}
export interface TicketRequest {
    partyId: string | null;
    minCount: number;
    maxCount: number;
    countMultiple: number;
    relaxedMinCount: number;
    strings: KeyValues;
    numbers: Numbers;
    query: TicketQuery;
    members: MemberProperties[];
}
export interface MatchedPlayer {
    presence: Presence;
    partyId: string | null;
    strings: KeyValues;
    numbers: Numbers;
}
export interface MatchFound {
    matchId: Uint8Array;
    ticketId: bigint;
    players: MatchedPlayer[];
    token: string;
    tokenExpiresAt: bigint;
}
export type LeaveReason = "Left" | "Kicked" | "SessionEnded" | "Banned" | number;
export type RejectReason = "Rejected" | "PartyClosed" | "Expired" | number;
export type RequestGoneReason = "Cancelled" | "Expired" | "SessionEnded" | number;
export type InviteGoneReason = "Revoked" | "PartyClosed" | "Expired" | "Banned" | "Answered" | number;
export type TicketCancelReason = "Cancelled" | "MembershipChanged" | "PartyClosed" | "SessionEnded" | "NodeLost" | number;
export type ReadyCheckOutcome = "AllReady" | "TimedOut" | "Cancelled" | number;
export declare const presence: Codec<Presence>;
export declare const errorBody: Codec<ErrorBody>;
export declare const partySnapshot: Codec<PartySnapshot>;
export type Identity = {
    kind: "Dev";
    userId: string;
    username: string;
} | {
    kind: "Token";
    token: string;
};
export interface Hello {
    version: number;
    identity: Identity;
    resume: Resume | null;
}
type P = {
    partyId: string;
};
type PU = P & {
    userId: string;
};
type KVEdit = P & {
    set: KeyValues;
    remove: string[];
};
export type Command = {
    kind: "CreateParty";
    open: boolean;
    maxSize: number;
    label: string;
    invitePolicy: InvitePolicy;
    state: KeyValues;
    leaderPolicy: LeaderPolicy;
} | ({
    kind: "JoinParty";
} & P) | ({
    kind: "ListJoinRequests";
} & P) | ({
    kind: "AcceptJoinRequest";
} & PU) | ({
    kind: "Remove";
} & PU) | ({
    kind: "Leave";
} & P) | ({
    kind: "Promote";
} & PU) | ({
    kind: "Close";
} & P) | ({
    kind: "Update";
    open: boolean | null;
    label: string | null;
    maxSize: number | null;
    invitePolicy: InvitePolicy | null;
    leaderPolicy: LeaderPolicy | null;
} & P) | ({
    kind: "GetParty";
} & P) | ({
    kind: "SendData";
    opCode: bigint;
    data: Uint8Array;
} & P) | ({
    kind: "Kick";
} & PU) | ({
    kind: "Reject";
} & PU) | {
    kind: "SetStatus";
    status: string;
    visible: boolean;
} | {
    kind: "Follow";
    userIds: string[];
} | {
    kind: "Unfollow";
    userIds: string[];
} | ({
    kind: "Invite";
} & PU) | ({
    kind: "DeclineInvite";
} & P) | ({
    kind: "RevokeInvite";
} & PU) | {
    kind: "ListInvites";
} | ({
    kind: "CreateJoinCode";
} & P) | ({
    kind: "ClearJoinCode";
} & P) | {
    kind: "JoinByCode";
    code: string;
} | ({
    kind: "ListParty";
    properties: KeyValues;
} & P) | ({
    kind: "UnlistParty";
} & P) | {
    kind: "SearchParties";
    value: PartySearch;
} | ({
    kind: "SetPartyState";
} & KVEdit) | ({
    kind: "SetMemberAttributes";
} & KVEdit) | ({
    kind: "Ban";
    durationMs: bigint;
} & PU) | ({
    kind: "Unban";
} & PU) | ({
    kind: "ListBans";
} & P) | {
    kind: "SubmitTicket";
    value: TicketRequest;
} | {
    kind: "CancelTicket";
    ticketId: bigint;
} | ({
    kind: "StartReadyCheck";
    message: string;
    timeoutMs: bigint;
} & P) | ({
    kind: "AnswerReadyCheck";
    checkId: bigint;
    ready: boolean;
} & P) | ({
    kind: "CancelReadyCheck";
} & P) | ({
    kind: "Mute";
    opCodes: NumberRange | null;
} & PU) | ({
    kind: "Unmute";
} & PU) | {
    kind: "Block";
    userIds: string[];
} | {
    kind: "Unblock";
    userIds: string[];
} | {
    kind: "ListBlocks";
};
export type ClientFrame = ({
    kind: "Hello";
} & Hello) | {
    kind: "Request";
    id: number;
    command: Command;
};
/**
 * What a client sends, in the layout of one protocol version. Version 2's
 * `CreateParty` and `Update` have no `leaderPolicy` (the server reads them
 * as `Tenure` and as no change), and it has no ready check, mute or block
 * commands (PROTOCOL.md section 4, "Compatibility"). This client speaks version 3;
 * version 2's layout is here for the worked examples of what a version 2
 * client sends.
 */
export declare function clientFrameFor(version: number): Codec<ClientFrame>;
export declare const clientFrame: Codec<ClientFrame>;
export type JoinOutcome = {
    kind: "Joined";
    value: PartySnapshot;
} | {
    kind: "Queued";
    partyId: string;
    seq: bigint;
};
export type Reply = {
    kind: "Party";
    value: PartySnapshot;
} | {
    kind: "Join";
    value: JoinOutcome;
} | {
    kind: "JoinRequests";
    partyId: string;
    seq: bigint;
    requests: Presence[];
} | {
    kind: "Done";
} | {
    kind: "Followed";
    online: UserStatus[];
} | {
    kind: "Invites";
    value: PartyInvite[];
} | {
    kind: "JoinCode";
    partyId: string;
    code: string;
} | {
    kind: "Parties";
    parties: ListedParty[];
    nextCursor: bigint;
} | {
    kind: "Bans";
    partyId: string;
    bans: PartyBan[];
} | {
    kind: "TicketStarted";
    ticketId: bigint;
}
/** Block, Unblock, ListBlocks (version 3): the list now, sorted. */
 | {
    kind: "Blocks";
    userIds: string[];
};
type PS = {
    partyId: string;
    seq: bigint;
};
export type Event = ({
    kind: "MemberJoined";
    presence: Presence;
} & PS) | ({
    kind: "MemberLeft";
    presence: Presence;
    reason: LeaveReason;
} & PS) | ({
    kind: "LeaderChanged";
    leader: Presence;
} & PS) | ({
    kind: "JoinRequested";
    presence: Presence;
} & PS) | ({
    kind: "JoinRequestGone";
    presence: Presence;
    reason: RequestGoneReason;
} & PS) | ({
    kind: "JoinRequestList";
    requests: Presence[];
} & PS) | {
    kind: "Accepted";
    value: PartySnapshot;
} | ({
    kind: "JoinRejected";
    reason: RejectReason;
} & PS) | ({
    kind: "Kicked";
} & PS) | ({
    kind: "Closed";
} & PS) | ({
    kind: "Updated";
    open: boolean;
    maxSize: number;
    label: string;
    invitePolicy: InvitePolicy;
    leaderPolicy: LeaderPolicy;
} & PS) | {
    kind: "Data";
    partyId: string;
    sender: Presence;
    opCode: bigint;
    data: Uint8Array;
} | {
    kind: "DataRefused";
    partyId: string;
    opCode: bigint;
    error: ErrorBody;
} | ({
    kind: "MemberConnection";
    presence: Presence;
    connected: boolean;
} & PS) | {
    kind: "StatusOnline";
    value: UserStatus;
} | {
    kind: "StatusChanged";
    value: UserStatus;
} | {
    kind: "StatusOffline";
    presence: Presence;
} | {
    kind: "Invited";
    value: PartyInvite;
} | {
    kind: "InviteGone";
    partyId: string;
    reason: InviteGoneReason;
} | {
    kind: "InviteDeclined";
    partyId: string;
    presence: Presence;
} | ({
    kind: "PartyStateChanged";
    state: KeyValues;
} & PS) | ({
    kind: "MemberAttributesChanged";
    presence: Presence;
    attributes: KeyValues;
} & PS) | ({
    kind: "JoinCodeChanged";
    code: string;
} & PS) | ({
    kind: "ListingChanged";
    listed: boolean;
    properties: KeyValues;
} & PS) | ({
    kind: "Banned";
    untilMs: bigint;
} & PS) | {
    kind: "TicketStarted";
    ticketId: bigint;
    partyId: string | null;
} | {
    kind: "TicketCancelled";
    ticketId: bigint;
    reason: TicketCancelReason;
} | {
    kind: "Matched";
    value: MatchFound;
} | ({
    kind: "ReadyCheckStarted";
    check: ReadyCheck;
} & PS) | ({
    kind: "ReadyCheckAnswered";
    checkId: bigint;
    presence: Presence;
    ready: boolean;
} & PS) | ({
    kind: "ReadyCheckEnded";
    checkId: bigint;
    outcome: ReadyCheckOutcome;
    ready: Presence[];
    notReady: Presence[];
    noAnswer: Presence[];
} & PS)
/** The game's server set this session's block list (version 3). */
 | {
    kind: "BlocksChanged";
    userIds: string[];
}
/** An event of a newer version, which this client does not know: to be
 * ignored, its session event number counted (PROTOCOL.md, "Compatibility"). */
 | {
    kind: "Unknown";
    variant: number;
};
export type Resumed = {
    kind: "New";
} | {
    kind: "Replayed";
    count: number;
} | {
    kind: "Snapshots";
    parties: ResumedParty[];
    waiting: string[];
};
export interface Welcome {
    sessionId: string;
    presence: Presence;
    resumeToken: string;
    limits: Limits;
    lastEventSeq: bigint;
    resumed: Resumed;
}
/** `Result<T, E>`: `#0 Ok`, `#1 Err`. */
export type Result<T> = {
    ok: true;
    value: T;
} | {
    ok: false;
    error: ErrorBody;
};
export type ServerFrame = {
    kind: "Welcome";
    value: Welcome;
} | {
    kind: "Refused";
    value: ErrorBody;
} | {
    kind: "Response";
    id: number;
    result: Result<Reply>;
} | {
    kind: "Event";
    seq: bigint;
    event: Event;
} | {
    kind: "FrameError";
    value: ErrorBody;
};
/**
 * What the server sends, in the layout of one protocol version: the
 * `PartySnapshot` and `Updated` differ between versions 2 and 3, and
 * version 2 has no ready check events (a version 2 session is never sent
 * what version 2 cannot decode, PROTOCOL.md section 4, "Compatibility").
 * This client speaks version 3; version 2's layout is here for the worked
 * examples of what a version 2 session is sent.
 */
export declare function serverFrameFor(version: number): Codec<ServerFrame>;
export declare const serverFrame: Codec<ServerFrame>;
/** One frame: the body's length (u32 LE), then the body. */
export declare function encodeFrame<T>(c: Codec<T>, message: T, limit?: number): Uint8Array;
/** A whole body: exactly one message, no trailing bytes (section 3). */
export declare function decodeBody<T>(c: Codec<T>, body: Uint8Array): T;
export declare const encodeClientFrame: (frame: ClientFrame) => Uint8Array;
export declare const decodeServerFrame: (body: Uint8Array) => ServerFrame;
/**
 * Splits frames out of a byte stream as chunks arrive. The first frame may
 * be a Welcome (8 MiB); every later one at most 256 KiB.
 */
export declare class FrameReader {
    private pending;
    private first;
    push(chunk: Uint8Array): Uint8Array[];
}
export declare const DATAGRAM_KIND = 1;
/** Client -> server (section 5): kind, party id, op code (i64 LE), payload. */
export declare function encodeClientDatagram(partyId: string, opCode: bigint, payload: Uint8Array): Uint8Array;
export interface ServerDatagram {
    partyId: string;
    sender: string;
    opCode: bigint;
    payload: Uint8Array;
}
/** Server -> client (section 5): kind, party id, sender session id, op code, payload. */
export declare function decodeServerDatagram(datagram: Uint8Array): ServerDatagram;
/** The server's layout, for tests and tools that play the server's part. */
export declare function encodeServerDatagram(d: ServerDatagram): Uint8Array;
export {};
