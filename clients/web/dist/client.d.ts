import type { Command, ErrorBody, ErrorCode, InvitePolicy, KeyValues, Limits, PartyInvite, PartySearch, Presence, Reply, TicketRequest, UserStatus, Welcome, MatchFound, ListedParty, PartyBan, LeaveReason, RejectReason, RequestGoneReason, InviteGoneReason, TicketCancelReason, ReadyCheck, ReadyCheckOutcome, LeaderPolicy, ConnectionQuality, Muted } from "./codec.js";
/** Who the player is: a dev identity (dev servers) or a signed token. */
export type Identity = {
    userId: string;
    username: string;
} | {
    token: string;
};
export interface ClientOptions {
    /** `https://host:port/partyline`. */
    url: string;
    identity: Identity;
    /** SHA-256 hashes (hex or bytes) of a self-signed certificate to trust:
     * a dev server's (GET /certificate-hashes on its --dev-http). */
    serverCertificateHashes?: (string | Uint8Array)[];
    /** Reconnect and resume after a connection loss. Default true. */
    autoReconnect?: boolean;
    /** How long to keep trying, ms. Default 30000. */
    reconnectFor?: number;
    /** Nothing heard from the server this long (it sends a keep-alive every
     * 5 s): the connection is lost. Default 10000 ms. */
    idleTimeout?: number;
    /** How long opening a connection (WebTransport, Hello, Welcome) may take, ms. Default 10000. */
    connectTimeout?: number;
    /** How long a command waits for its answer, ms. Default 10000. */
    requestTimeout?: number;
    /** The WebTransport constructor (tests, other runtimes). Default the global one. */
    webTransport?: typeof WebTransport;
}
/** Why a command failed: a server error code, or this client's state. */
export declare class PartylineError extends Error {
    readonly code: ErrorCode | "Closed" | "ConnectionLost" | "Timeout" | "PayloadTooLarge";
    constructor(code: ErrorCode | "Closed" | "ConnectionLost" | "Timeout" | "PayloadTooLarge", message: string);
    static from(body: ErrorBody): PartylineError;
}
export interface Member {
    presence: Presence;
    connected: boolean;
    attributes: KeyValues;
    /** Its connection as the server measured it, as of the last snapshot of
     * the party (no event says it changed: `getParty` refreshes it, every
     * 10 s or so is plenty). `Unknown` for a member seated or reconnected
     * since, and while it is disconnected. */
    quality: ConnectionQuality;
}
/** A party as this client knows it, kept up to date by its events. */
export interface Party {
    partyId: string;
    leader: Presence;
    members: Member[];
    open: boolean;
    maxSize: number;
    label: string;
    invitePolicy: InvitePolicy;
    state: KeyValues;
    joinCode: string;
    listed: boolean;
    properties: KeyValues;
    /** The ready check running now, with the answers so far (kept live from
     * its events); null when none runs. */
    readyCheck: ReadyCheck | null;
    /** Who leads next when the leader leaves or is lost: the longest seated
     * (`Tenure`) or the best connection (`ConnectionQuality`). */
    leaderPolicy: LeaderPolicy;
    /** The members this session muted here (`mute`): their party data (for
     * the op codes named) does not reach it. Only this session sees them. */
    muted: Muted[];
    /** Whether this session leads it. */
    isLeader: boolean;
}
export interface PartyData {
    partyId: string;
    /** Who sent it (from the roster; only `sessionId` when unknown yet). */
    sender: Presence;
    opCode: number;
    data: Uint8Array;
    /** True when it came on the reliable control stream. */
    reliable: boolean;
}
export type DisconnectReason = {
    kind: "ServerShutdown";
} | {
    kind: "ClosedByServer";
    code: number;
    reason: string;
} | {
    kind: "ClosedLocally";
} | {
    kind: "ConnectionLost";
    detail: string;
} | {
    kind: "ReconnectFailed";
    detail: string;
};
/** Everything that happens, in game terms (as the Rust SDK's `Event`). */
export type Event = {
    kind: "PartyJoined";
    party: Party;
} | {
    kind: "MemberJoined";
    partyId: string;
    member: Presence;
} | {
    kind: "MemberLeft";
    partyId: string;
    member: Presence;
    reason: LeaveReason;
} | {
    kind: "LeaderChanged";
    partyId: string;
    leader: Presence;
} | {
    kind: "MemberConnectionChanged";
    partyId: string;
    member: Presence;
    connected: boolean;
} | {
    kind: "JoinRequested";
    partyId: string;
    requester: Presence;
} | {
    kind: "JoinRequestGone";
    partyId: string;
    requester: Presence;
    reason: RequestGoneReason;
} | {
    kind: "JoinRequests";
    partyId: string;
    requests: Presence[];
} | {
    kind: "JoinRejected";
    partyId: string;
    reason: RejectReason;
} | {
    kind: "Kicked";
    partyId: string;
} | {
    kind: "PartyClosed";
    partyId: string;
}
/** The leader changed the party's settings (open, size, label, invite
 * and leader policy): `party` as it is now. */
 | {
    kind: "PartyUpdated";
    party: Party;
} | {
    kind: "Data";
    data: PartyData;
} | {
    kind: "DataRefused";
    partyId: string;
    opCode: number;
    error: ErrorBody;
} | {
    kind: "StatusOnline";
    status: UserStatus;
} | {
    kind: "StatusChanged";
    status: UserStatus;
} | {
    kind: "StatusOffline";
    presence: Presence;
} | {
    kind: "Invited";
    invite: PartyInvite;
} | {
    kind: "InviteGone";
    partyId: string;
    reason: InviteGoneReason;
} | {
    kind: "InviteDeclined";
    partyId: string;
    presence: Presence;
} | {
    kind: "PartyStateChanged";
    partyId: string;
    state: KeyValues;
} | {
    kind: "MemberAttributesChanged";
    partyId: string;
    member: Presence;
    attributes: KeyValues;
} | {
    kind: "JoinCodeChanged";
    partyId: string;
    code: string;
} | {
    kind: "ListingChanged";
    partyId: string;
    listed: boolean;
    properties: KeyValues;
} | {
    kind: "Banned";
    partyId: string;
    untilMs: number;
} | {
    kind: "TicketStarted";
    ticketId: bigint;
    partyId: string | null;
} | {
    kind: "TicketCancelled";
    ticketId: bigint;
    reason: TicketCancelReason;
} | {
    kind: "Matched";
    match: MatchFound;
}
/** The leader started a ready check: answer it with `answerReadyCheck`
 * if this session is in `check.noAnswer` (the leader counts as ready).
 * The party's `readyCheck` shows it until it ends. */
 | {
    kind: "ReadyCheckStarted";
    partyId: string;
    check: ReadyCheck;
}
/** A member answered, changed its answer, or left (then not ready). */
 | {
    kind: "ReadyCheckAnswered";
    partyId: string;
    checkId: bigint;
    member: Presence;
    ready: boolean;
}
/** The check is over: everyone ready, its time ran out, or the leader
 * cancelled it; who was ready, not ready (or left), and never answered. */
 | {
    kind: "ReadyCheckEnded";
    partyId: string;
    checkId: bigint;
    outcome: ReadyCheckOutcome;
    ready: Presence[];
    notReady: Presence[];
    noAnswer: Presence[];
}
/** The game's server set this session's block list (`blocked` shows it). */
 | {
    kind: "BlocksChanged";
    userIds: string[];
} | {
    kind: "Reconnecting";
    reason: DisconnectReason;
} | {
    kind: "Resumed";
} | {
    kind: "PartySynced";
    party: Party;
} | {
    kind: "PartyLost";
    partyId: string;
} | {
    kind: "SessionLost";
} | {
    kind: "Disconnected";
    reason: DisconnectReason;
};
export interface PartySettings {
    open?: boolean;
    maxSize?: number;
    label?: string;
    invitePolicy?: InvitePolicy;
    state?: KeyValues;
    /** Who leads next; default `Tenure` (the longest seated). */
    leaderPolicy?: LeaderPolicy;
}
/** What `updateParty` changes: only the fields given. */
export interface PartyUpdate {
    open?: boolean;
    label?: string;
    maxSize?: number;
    invitePolicy?: InvitePolicy;
    leaderPolicy?: LeaderPolicy;
}
export type JoinOutcome = {
    kind: "Joined";
    party: Party;
} | {
    kind: "Queued";
    partyId: string;
};
/** A connected player. Make one with `Client.connect`. */
export declare class Client {
    private readonly options;
    private link;
    private readonly queue;
    private readonly roster;
    /** This session's block list, as the server last said it. */
    private blockList;
    private readonly pending;
    private nextId;
    private lastEventSeq;
    private ended;
    private reconnecting;
    private watchdog;
    private constructor();
    /** Connects and opens a new session. */
    static connect(options: ClientOptions): Promise<Client>;
    get welcome(): Welcome;
    get presence(): Presence;
    get sessionId(): string;
    get limits(): Limits;
    /** The last event number received (what a resume names). */
    get eventSeq(): bigint;
    /** The next event. */
    nextEvent(): Promise<Event>;
    /** Every event, in order, to a listener (events queued so far first). */
    onEvent(listener: (event: Event) => void): void;
    /** `for await (const event of client.events())`. */
    events(): AsyncIterable<Event>;
    /** The roster of a party this session is in. */
    party(partyId: string): Party | undefined;
    parties(): Party[];
    createParty(settings?: PartySettings): Promise<Party>;
    joinParty(partyId: string): Promise<JoinOutcome>;
    joinByCode(code: string): Promise<JoinOutcome>;
    leaveParty(partyId: string): Promise<void>;
    listJoinRequests(partyId: string): Promise<Presence[]>;
    accept(partyId: string, userId: string): Promise<void>;
    reject(partyId: string, userId: string): Promise<void>;
    kick(partyId: string, userId: string): Promise<void>;
    promote(partyId: string, userId: string): Promise<void>;
    closeParty(partyId: string): Promise<void>;
    updateParty(partyId: string, changes: PartyUpdate): Promise<Party>;
    getParty(partyId: string): Promise<Party>;
    setStatus(status: string, visible?: boolean): Promise<void>;
    follow(userIds: string[]): Promise<UserStatus[]>;
    unfollow(userIds: string[]): Promise<void>;
    invite(partyId: string, userId: string): Promise<void>;
    declineInvite(partyId: string): Promise<void>;
    revokeInvite(partyId: string, userId: string): Promise<void>;
    listInvites(): Promise<PartyInvite[]>;
    createJoinCode(partyId: string): Promise<string>;
    clearJoinCode(partyId: string): Promise<void>;
    listParty(partyId: string, properties?: KeyValues): Promise<void>;
    unlistParty(partyId: string): Promise<void>;
    searchParties(search?: Partial<PartySearch>): Promise<{
        parties: ListedParty[];
        nextCursor: bigint;
    }>;
    setPartyState(partyId: string, set: KeyValues, remove?: string[]): Promise<void>;
    setMemberAttributes(partyId: string, set: KeyValues, remove?: string[]): Promise<void>;
    ban(partyId: string, userId: string, durationMs?: number): Promise<void>;
    unban(partyId: string, userId: string): Promise<void>;
    listBans(partyId: string): Promise<PartyBan[]>;
    submitTicket(ticket: TicketRequest): Promise<bigint>;
    cancelTicket(ticketId: bigint): Promise<void>;
    /** Leader only: asks every member whether it is ready, for `timeoutMs`
     * (5000 to 120000); `message` is shown to them (at most 256 bytes, may
     * be empty). The leader counts as ready. Members hear
     * `ReadyCheckStarted`, the answers as they come (`ReadyCheckAnswered`)
     * and the result (`ReadyCheckEnded`); the party's `readyCheck` shows it
     * while it runs. One at a time per party (`ReadyCheckRunning`). */
    startReadyCheck(partyId: string, message: string, timeoutMs: number): Promise<void>;
    /** Answers the party's ready check `checkId` (from `ReadyCheckStarted`
     * or the party's `readyCheck`), or changes the answer, until it ends. */
    answerReadyCheck(partyId: string, checkId: bigint, ready: boolean): Promise<void>;
    /** Leader only: ends the running ready check now (`Cancelled`). */
    cancelReadyCheck(partyId: string): Promise<void>;
    /** Stops `userId`'s party data (datagrams and reliable) reaching this
     * session, for op codes `opCodes.min` to `opCodes.max` (inclusive; all
     * of them when left out): mute a voice range, keep game data. Muting
     * again replaces the range; the muted member is not told; the party's
     * `muted` shows it while this session is seated. */
    mute(partyId: string, userId: string, opCodes?: {
        min: number;
        max: number;
    }): Promise<void>;
    /** Lets a muted member's party data reach this session again. */
    unmute(partyId: string, userId: string): Promise<void>;
    /** Blocks users for this session: no party data, status or invites
     * between it and them, and a party it leads is closed to them (they are
     * not told). Resolves with the list now (at most 512). */
    block(userIds: string[]): Promise<string[]>;
    /** Takes users off this session's block list; the list now. */
    unblock(userIds: string[]): Promise<string[]>;
    /** This session's block list as the server has it. */
    listBlocks(): Promise<string[]>;
    /** This session's block list as this client last heard it. */
    get blocked(): string[];
    /** Unreliable party data: one WebTransport datagram to the other members. */
    sendData(partyId: string, opCode: number, data: Uint8Array): void;
    /** Reliable party data, on the control stream. */
    sendDataReliable(partyId: string, opCode: number, data: Uint8Array): Promise<void>;
    /** Sends any command and waits for its reply. */
    request(command: Command): Promise<Reply>;
    /** Says goodbye: the session ends at once (the others see it leave). */
    close(): void;
    /** Drops the connection as a network would, without a goodbye (tests,
     * the demo page's "cut" button): the session is resumed if auto-reconnect is on. */
    dropConnection(): void;
    private done;
    private blocks;
    private joined;
    private seat;
    private view;
    private start;
    private readControl;
    private readDatagrams;
    private frame;
    /** Applies a server event to the roster, then tells the game. */
    private event;
    private checkLiveness;
    /** The server closed the session with `code`. */
    private closed;
    /** The connection is gone without a goodbye: resume, or end. */
    private lost;
    private reconnect;
    /** Back on a new connection: replayed events follow, or snapshots stand for them. */
    private resumed;
    /** The old session is gone (its grace window ended): a new one. */
    private newSession;
    private failPending;
    private finish;
}
