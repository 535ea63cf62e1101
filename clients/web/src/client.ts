// The game-facing client, as the Rust SDK's: connect, party commands, a
// roster per party, one stream of events in game terms, party data as
// datagrams or reliable messages, and reconnection with resume. It speaks
// PROTOCOL.md over one WebTransport session (PROTOCOL.md, "WebTransport").

import * as wire from "./codec.js";
import type {
  Command, ErrorBody, ErrorCode, Event as WireEvent, InvitePolicy, KeyValues, Limits,
  PartyInvite, PartySearch, PartySnapshot, Presence, Reply, ServerFrame, TicketRequest,
  UserStatus, Welcome, MatchFound, ListedParty, PartyBan, LeaveReason, RejectReason,
  RequestGoneReason, InviteGoneReason, TicketCancelReason, ReadyCheck, ReadyCheckOutcome,
  LeaderPolicy, ConnectionQuality, Muted, NumberRange,
} from "./codec.js";

/** Who the player is: a dev identity (dev servers) or a signed token. */
export type Identity = { userId: string; username: string } | { token: string };

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
export class PartylineError extends Error {
  constructor(
    readonly code: ErrorCode | "Closed" | "ConnectionLost" | "Timeout" | "PayloadTooLarge",
    message: string,
  ) {
    super(message);
    this.name = "PartylineError";
  }
  static from(body: ErrorBody): PartylineError {
    return new PartylineError(body.code, body.message);
  }
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

export type DisconnectReason =
  | { kind: "ServerShutdown" }
  | { kind: "ClosedByServer"; code: number; reason: string }
  | { kind: "ClosedLocally" }
  | { kind: "ConnectionLost"; detail: string }
  | { kind: "ReconnectFailed"; detail: string };

/** Everything that happens, in game terms (as the Rust SDK's `Event`). */
export type Event =
  | { kind: "PartyJoined"; party: Party }
  | { kind: "MemberJoined"; partyId: string; member: Presence }
  | { kind: "MemberLeft"; partyId: string; member: Presence; reason: LeaveReason }
  | { kind: "LeaderChanged"; partyId: string; leader: Presence }
  | { kind: "MemberConnectionChanged"; partyId: string; member: Presence; connected: boolean }
  | { kind: "JoinRequested"; partyId: string; requester: Presence }
  | { kind: "JoinRequestGone"; partyId: string; requester: Presence; reason: RequestGoneReason }
  | { kind: "JoinRequests"; partyId: string; requests: Presence[] }
  | { kind: "JoinRejected"; partyId: string; reason: RejectReason }
  | { kind: "Kicked"; partyId: string }
  | { kind: "PartyClosed"; partyId: string }
  /** The leader changed the party's settings (open, size, label, invite
   * and leader policy): `party` as it is now. */
  | { kind: "PartyUpdated"; party: Party }
  | { kind: "Data"; data: PartyData }
  | { kind: "DataRefused"; partyId: string; opCode: number; error: ErrorBody }
  | { kind: "StatusOnline"; status: UserStatus }
  | { kind: "StatusChanged"; status: UserStatus }
  | { kind: "StatusOffline"; presence: Presence }
  | { kind: "Invited"; invite: PartyInvite }
  | { kind: "InviteGone"; partyId: string; reason: InviteGoneReason }
  | { kind: "InviteDeclined"; partyId: string; presence: Presence }
  | { kind: "PartyStateChanged"; partyId: string; state: KeyValues }
  | { kind: "MemberAttributesChanged"; partyId: string; member: Presence; attributes: KeyValues }
  | { kind: "JoinCodeChanged"; partyId: string; code: string }
  | { kind: "ListingChanged"; partyId: string; listed: boolean; properties: KeyValues }
  | { kind: "Banned"; partyId: string; untilMs: number }
  | { kind: "TicketStarted"; ticketId: bigint; partyId: string | null }
  | { kind: "TicketCancelled"; ticketId: bigint; reason: TicketCancelReason }
  | { kind: "Matched"; match: MatchFound }
  /** The leader started a ready check: answer it with `answerReadyCheck`
   * if this session is in `check.noAnswer` (the leader counts as ready).
   * The party's `readyCheck` shows it until it ends. */
  | { kind: "ReadyCheckStarted"; partyId: string; check: ReadyCheck }
  /** A member answered, changed its answer, or left (then not ready). */
  | { kind: "ReadyCheckAnswered"; partyId: string; checkId: bigint; member: Presence; ready: boolean }
  /** The check is over: everyone ready, its time ran out, or the leader
   * cancelled it; who was ready, not ready (or left), and never answered. */
  | {
      kind: "ReadyCheckEnded"; partyId: string; checkId: bigint; outcome: ReadyCheckOutcome;
      ready: Presence[]; notReady: Presence[]; noAnswer: Presence[];
    }
  /** The game's server set this session's block list (`blocked` shows it). */
  | { kind: "BlocksChanged"; userIds: string[] }
  | { kind: "Reconnecting"; reason: DisconnectReason }
  | { kind: "Resumed" }
  | { kind: "PartySynced"; party: Party }
  | { kind: "PartyLost"; partyId: string }
  | { kind: "SessionLost" }
  | { kind: "Disconnected"; reason: DisconnectReason };

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

export type JoinOutcome = { kind: "Joined"; party: Party } | { kind: "Queued"; partyId: string };

/** Close codes after which the session is over: no reconnect. */
const FINAL_CLOSES = new Set<number>([
  wire.CloseCode.ProtocolViolation, wire.CloseCode.ServerShutdown,
  wire.CloseCode.HandshakeRefused, wire.CloseCode.FrameTooLarge, wire.CloseCode.Superseded,
  wire.CloseCode.ServerFull, wire.CloseCode.RateLimited, wire.CloseCode.Disconnected,
]);

/** Events, in order: `await next()`, `for await`, or `on(listener)`. */
class EventQueue {
  private queue: Event[] = [];
  private waiting: ((event: Event) => void)[] = [];
  private listeners: ((event: Event) => void)[] = [];

  push(event: Event): void {
    for (const listener of this.listeners) listener(event);
    const waiter = this.waiting.shift();
    if (waiter) waiter(event);
    else if (this.listeners.length === 0) this.queue.push(event);
  }
  next(): Promise<Event> {
    const event = this.queue.shift();
    if (event) return Promise.resolve(event);
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  on(listener: (event: Event) => void): void {
    this.listeners.push(listener);
    for (const event of this.queue.splice(0)) listener(event);
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Event> {
    for (;;) yield await this.next();
  }
}

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: PartylineError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** One WebTransport session: the control stream and the datagrams. */
class Link {
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly datagrams: WritableStreamDefaultWriter<Uint8Array>;
  lastHeard = Date.now();
  dead = false;

  private constructor(
    readonly transport: WebTransport,
    stream: WebTransportBidirectionalStream,
    readonly welcome: Welcome,
    readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    readonly frames: wire.FrameReader,
    readonly early: Uint8Array[],
  ) {
    this.writer = stream.writable.getWriter() as WritableStreamDefaultWriter<Uint8Array>;
    this.datagrams = transport.datagrams.writable.getWriter() as WritableStreamDefaultWriter<Uint8Array>;
  }

  /** Opens the session, says Hello, reads Welcome (or the refusal). */
  static async open(options: ClientOptions, resume: wire.Resume | null): Promise<Link> {
    const Transport = options.webTransport ?? globalThis.WebTransport;
    if (!Transport) throw new PartylineError("ConnectionLost", "this runtime has no WebTransport");
    const hashes = (options.serverCertificateHashes ?? []).map((hash) => ({
      algorithm: "sha-256",
      value: new Uint8Array(typeof hash === "string" ? hexBytes(hash) : hash) as Uint8Array<ArrayBuffer>,
    }));
    const transport = new Transport(options.url, hashes.length ? { serverCertificateHashes: hashes } : {});
    transport.closed.catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new PartylineError("Timeout", "no Welcome within the connect timeout")),
        options.connectTimeout ?? 10000,
      );
    });
    try {
      return await Promise.race([Link.handshake(transport, options, resume), limit]);
    } catch (error) {
      transport.close();
      if (error instanceof PartylineError) throw error;
      throw new PartylineError("ConnectionLost", String(error));
    } finally {
      clearTimeout(timer);
    }
  }

  private static async handshake(
    transport: WebTransport,
    options: ClientOptions,
    resume: wire.Resume | null,
  ): Promise<Link> {
    {
      await transport.ready;
      const stream = await transport.createBidirectionalStream();
      const writer = stream.writable.getWriter();
      const identity: wire.Identity =
        "token" in options.identity
          ? { kind: "Token", token: options.identity.token }
          : { kind: "Dev", userId: options.identity.userId, username: options.identity.username };
      await writer.write(
        wire.encodeClientFrame({ kind: "Hello", version: wire.PROTOCOL_VERSION, identity, resume }),
      );
      writer.releaseLock();
      const reader = stream.readable.getReader() as ReadableStreamDefaultReader<Uint8Array>;
      const frames = new wire.FrameReader();
      let bodies: Uint8Array[] = [];
      while (bodies.length === 0) {
        const { value, done } = await reader.read();
        if (done) throw new PartylineError("ConnectionLost", "the server ended the stream before Welcome");
        bodies = frames.push(value);
      }
      const first = wire.decodeServerFrame(bodies[0]);
      if (first.kind === "Refused") throw PartylineError.from(first.value);
      if (first.kind !== "Welcome") throw new PartylineError("ProtocolViolation", `expected Welcome, got ${first.kind}`);
      return new Link(transport, stream, first.value, reader, frames, bodies.slice(1));
    }
  }
}

function hexBytes(hex: string): Uint8Array {
  const clean = hex.replace(/[^0-9a-fA-F]/g, "");
  return Uint8Array.from(clean.match(/../g) ?? [], (b) => parseInt(b, 16));
}

/** A connected player. Make one with `Client.connect`. */
export class Client {
  private link: Link;
  private readonly queue = new EventQueue();
  private readonly roster = new Map<string, Party>();
  /** This session's block list, as the server last said it. */
  private blockList: string[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private lastEventSeq: bigint;
  private ended: DisconnectReason | null = null;
  private reconnecting: Promise<void> | null = null;
  private watchdog: ReturnType<typeof setInterval>;

  private constructor(private readonly options: ClientOptions, link: Link) {
    this.link = link;
    this.lastEventSeq = link.welcome.lastEventSeq;
    this.start(link);
    this.watchdog = setInterval(() => this.checkLiveness(), 250);
  }

  /** Connects and opens a new session. */
  static async connect(options: ClientOptions): Promise<Client> {
    return new Client(options, await Link.open(options, null));
  }

  get welcome(): Welcome { return this.link.welcome; }
  get presence(): Presence { return this.link.welcome.presence; }
  get sessionId(): string { return this.link.welcome.sessionId; }
  get limits(): Limits { return this.link.welcome.limits; }
  /** The last event number received (what a resume names). */
  get eventSeq(): bigint { return this.lastEventSeq; }

  /** The next event. */
  nextEvent(): Promise<Event> { return this.queue.next(); }
  /** Every event, in order, to a listener (events queued so far first). */
  onEvent(listener: (event: Event) => void): void { this.queue.on(listener); }
  /** `for await (const event of client.events())`. */
  events(): AsyncIterable<Event> { return this.queue; }

  /** The roster of a party this session is in. */
  party(partyId: string): Party | undefined { return this.roster.get(partyId); }
  parties(): Party[] { return [...this.roster.values()]; }

  // ------------------------------------------------------------ parties

  async createParty(settings: PartySettings = {}): Promise<Party> {
    const reply = await this.request({
      kind: "CreateParty", open: settings.open ?? true, maxSize: settings.maxSize ?? 8,
      label: settings.label ?? "", invitePolicy: settings.invitePolicy ?? "Leader",
      state: settings.state ?? {}, leaderPolicy: settings.leaderPolicy ?? "Tenure",
    });
    return this.seat(expect(reply, "Party").value);
  }
  async joinParty(partyId: string): Promise<JoinOutcome> {
    return this.joined(await this.request({ kind: "JoinParty", partyId }));
  }
  async joinByCode(code: string): Promise<JoinOutcome> {
    return this.joined(await this.request({ kind: "JoinByCode", code }));
  }
  async leaveParty(partyId: string): Promise<void> {
    await this.done({ kind: "Leave", partyId });
    this.roster.delete(partyId);
  }
  async listJoinRequests(partyId: string): Promise<Presence[]> {
    return expect(await this.request({ kind: "ListJoinRequests", partyId }), "JoinRequests").requests;
  }
  accept(partyId: string, userId: string): Promise<void> { return this.done({ kind: "AcceptJoinRequest", partyId, userId }); }
  reject(partyId: string, userId: string): Promise<void> { return this.done({ kind: "Reject", partyId, userId }); }
  kick(partyId: string, userId: string): Promise<void> { return this.done({ kind: "Kick", partyId, userId }); }
  promote(partyId: string, userId: string): Promise<void> { return this.done({ kind: "Promote", partyId, userId }); }
  async closeParty(partyId: string): Promise<void> {
    await this.done({ kind: "Close", partyId });
    this.roster.delete(partyId);
  }
  async updateParty(partyId: string, changes: PartyUpdate): Promise<Party> {
    const reply = await this.request({
      kind: "Update", partyId, open: changes.open ?? null, label: changes.label ?? null,
      maxSize: changes.maxSize ?? null, invitePolicy: changes.invitePolicy ?? null,
      leaderPolicy: changes.leaderPolicy ?? null,
    });
    return this.seat(expect(reply, "Party").value);
  }
  async getParty(partyId: string): Promise<Party> {
    return this.seat(expect(await this.request({ kind: "GetParty", partyId }), "Party").value);
  }

  // --------------------------------------------------------- gathering

  setStatus(status: string, visible = true): Promise<void> { return this.done({ kind: "SetStatus", status, visible }); }
  async follow(userIds: string[]): Promise<UserStatus[]> {
    return expect(await this.request({ kind: "Follow", userIds }), "Followed").online;
  }
  unfollow(userIds: string[]): Promise<void> { return this.done({ kind: "Unfollow", userIds }); }
  invite(partyId: string, userId: string): Promise<void> { return this.done({ kind: "Invite", partyId, userId }); }
  declineInvite(partyId: string): Promise<void> { return this.done({ kind: "DeclineInvite", partyId }); }
  revokeInvite(partyId: string, userId: string): Promise<void> { return this.done({ kind: "RevokeInvite", partyId, userId }); }
  async listInvites(): Promise<PartyInvite[]> {
    return expect(await this.request({ kind: "ListInvites" }), "Invites").value;
  }
  async createJoinCode(partyId: string): Promise<string> {
    return expect(await this.request({ kind: "CreateJoinCode", partyId }), "JoinCode").code;
  }
  clearJoinCode(partyId: string): Promise<void> { return this.done({ kind: "ClearJoinCode", partyId }); }
  listParty(partyId: string, properties: KeyValues = {}): Promise<void> { return this.done({ kind: "ListParty", partyId, properties }); }
  unlistParty(partyId: string): Promise<void> { return this.done({ kind: "UnlistParty", partyId }); }
  async searchParties(search: Partial<PartySearch> = {}): Promise<{ parties: ListedParty[]; nextCursor: bigint }> {
    const reply = await this.request({
      kind: "SearchParties",
      value: {
        openOnly: search.openOnly ?? false, minFreeSeats: search.minFreeSeats ?? 0,
        properties: search.properties ?? {}, limit: search.limit ?? 20, cursor: search.cursor ?? 0n,
      },
    });
    const { parties, nextCursor } = expect(reply, "Parties");
    return { parties, nextCursor };
  }
  setPartyState(partyId: string, set: KeyValues, remove: string[] = []): Promise<void> {
    return this.done({ kind: "SetPartyState", partyId, set, remove });
  }
  setMemberAttributes(partyId: string, set: KeyValues, remove: string[] = []): Promise<void> {
    return this.done({ kind: "SetMemberAttributes", partyId, set, remove });
  }
  ban(partyId: string, userId: string, durationMs = 0): Promise<void> {
    return this.done({ kind: "Ban", partyId, userId, durationMs: BigInt(durationMs) });
  }
  unban(partyId: string, userId: string): Promise<void> { return this.done({ kind: "Unban", partyId, userId }); }
  async listBans(partyId: string): Promise<PartyBan[]> {
    return expect(await this.request({ kind: "ListBans", partyId }), "Bans").bans;
  }

  // ---------------------------------------------------------- tickets

  async submitTicket(ticket: TicketRequest): Promise<bigint> {
    return expect(await this.request({ kind: "SubmitTicket", value: ticket }), "TicketStarted").ticketId;
  }
  cancelTicket(ticketId: bigint): Promise<void> { return this.done({ kind: "CancelTicket", ticketId }); }

  // ------------------------------------------------------- ready checks

  /** Leader only: asks every member whether it is ready, for `timeoutMs`
   * (5000 to 120000); `message` is shown to them (at most 256 bytes, may
   * be empty). The leader counts as ready. Members hear
   * `ReadyCheckStarted`, the answers as they come (`ReadyCheckAnswered`)
   * and the result (`ReadyCheckEnded`); the party's `readyCheck` shows it
   * while it runs. One at a time per party (`ReadyCheckRunning`). */
  startReadyCheck(partyId: string, message: string, timeoutMs: number): Promise<void> {
    return this.done({ kind: "StartReadyCheck", partyId, message, timeoutMs: BigInt(timeoutMs) });
  }
  /** Answers the party's ready check `checkId` (from `ReadyCheckStarted`
   * or the party's `readyCheck`), or changes the answer, until it ends. */
  answerReadyCheck(partyId: string, checkId: bigint, ready: boolean): Promise<void> {
    return this.done({ kind: "AnswerReadyCheck", partyId, checkId, ready });
  }
  /** Leader only: ends the running ready check now (`Cancelled`). */
  cancelReadyCheck(partyId: string): Promise<void> { return this.done({ kind: "CancelReadyCheck", partyId }); }

  // -------------------------------------------------- mutes and blocks

  /** Stops `userId`'s party data (datagrams and reliable) reaching this
   * session, for op codes `opCodes.min` to `opCodes.max` (inclusive; all
   * of them when left out): mute a voice range, keep game data. Muting
   * again replaces the range; the muted member is not told; the party's
   * `muted` shows it while this session is seated. */
  async mute(partyId: string, userId: string, opCodes?: { min: number; max: number }): Promise<void> {
    const range: NumberRange | null = opCodes ? { min: BigInt(opCodes.min), max: BigInt(opCodes.max) } : null;
    await this.done({ kind: "Mute", partyId, userId, opCodes: range });
    const party = this.roster.get(partyId);
    if (party) party.muted = [...party.muted.filter((m) => m.userId !== userId), { userId, opCodes: range }];
  }
  /** Lets a muted member's party data reach this session again. */
  async unmute(partyId: string, userId: string): Promise<void> {
    await this.done({ kind: "Unmute", partyId, userId });
    const party = this.roster.get(partyId);
    if (party) party.muted = party.muted.filter((m) => m.userId !== userId);
  }
  /** Blocks users for this session: no party data, status or invites
   * between it and them, and a party it leads is closed to them (they are
   * not told). Resolves with the list now (at most 512). */
  async block(userIds: string[]): Promise<string[]> {
    return this.blocks(await this.request({ kind: "Block", userIds }));
  }
  /** Takes users off this session's block list; the list now. */
  async unblock(userIds: string[]): Promise<string[]> {
    return this.blocks(await this.request({ kind: "Unblock", userIds }));
  }
  /** This session's block list as the server has it. */
  async listBlocks(): Promise<string[]> {
    return this.blocks(await this.request({ kind: "ListBlocks" }));
  }
  /** This session's block list as this client last heard it. */
  get blocked(): string[] {
    return [...this.blockList];
  }

  // -------------------------------------------------------- party data

  /** Unreliable party data: one WebTransport datagram to the other members. */
  sendData(partyId: string, opCode: number, data: Uint8Array): void {
    if (this.ended) throw new PartylineError("Closed", "the session is over");
    const limit = this.limits.maxDatagramData;
    if (data.length > limit) {
      throw new PartylineError("PayloadTooLarge", `a datagram payload of ${data.length} bytes is above ${limit}`);
    }
    const datagram = wire.encodeClientDatagram(partyId, BigInt(opCode), data);
    // Fire and forget: a datagram that cannot be sent now is stale anyway.
    this.link.datagrams.write(datagram).catch(() => {});
  }

  /** Reliable party data, on the control stream. */
  sendDataReliable(partyId: string, opCode: number, data: Uint8Array): Promise<void> {
    return this.done({ kind: "SendData", partyId, opCode: BigInt(opCode), data });
  }

  /** Sends any command and waits for its reply. */
  async request(command: Command): Promise<Reply> {
    if (this.reconnecting) await this.reconnecting;
    if (this.ended) throw new PartylineError("Closed", "the session is over");
    const id = this.nextId++;
    const link = this.link;
    const answer = new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new PartylineError("Timeout", `no answer to ${command.kind} in time`));
      }, this.options.requestTimeout ?? 10000);
      this.pending.set(id, { resolve, reject, timer });
    });
    link.writer.write(wire.encodeClientFrame({ kind: "Request", id, command })).catch(() => {});
    return answer;
  }

  /** Says goodbye: the session ends at once (the others see it leave). */
  close(): void {
    if (this.ended) return;
    this.finish({ kind: "ClosedLocally" });
    this.link.transport.close({ closeCode: wire.CloseCode.Normal, reason: "goodbye" });
  }

  /** Drops the connection as a network would, without a goodbye (tests,
   * the demo page's "cut" button): the session is resumed if auto-reconnect is on. */
  dropConnection(): void {
    this.lost(this.link, "dropped by the page");
  }

  // ---------------------------------------------------------- internals

  private async done(command: Command): Promise<void> {
    expect(await this.request(command), "Done");
  }

  private blocks(reply: Reply): string[] {
    this.blockList = expect(reply, "Blocks").userIds;
    return [...this.blockList];
  }

  private joined(reply: Reply): JoinOutcome {
    const outcome = expect(reply, "Join").value;
    if (outcome.kind === "Queued") return { kind: "Queued", partyId: outcome.partyId };
    return { kind: "Joined", party: this.seat(outcome.value) };
  }

  private seat(snapshot: PartySnapshot): Party {
    const party = this.view(snapshot);
    this.roster.set(party.partyId, party);
    return party;
  }

  private view(s: PartySnapshot): Party {
    const away = new Set(s.disconnected);
    return {
      partyId: s.partyId, leader: s.leader, open: s.open, maxSize: s.maxSize, label: s.label,
      invitePolicy: s.invitePolicy, state: { ...s.state }, joinCode: s.joinCode, listed: s.listed,
      properties: { ...s.properties }, isLeader: s.leader.sessionId === this.sessionId,
      readyCheck: s.readyCheck && copyCheck(s.readyCheck), leaderPolicy: s.leaderPolicy,
      muted: s.muted.map((m) => ({ ...m })),
      members: s.members.map((presence, i) => ({
        presence, connected: !away.has(presence.sessionId), attributes: { ...(s.attributes[i] ?? {}) },
        quality: s.quality[i] ?? "Unknown",
      })),
    };
  }

  private start(link: Link): void {
    for (const body of link.early) this.frame(link, body);
    void this.readControl(link);
    void this.readDatagrams(link);
    link.transport.closed.then(
      (info) => this.closed(link, info.closeCode ?? 0, info.reason ?? ""),
      (error) => this.lost(link, String(error)),
    );
  }

  private async readControl(link: Link): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await link.reader.read();
        if (done || link.dead) break;
        link.lastHeard = Date.now();
        for (const body of link.frames.push(value)) this.frame(link, body);
      }
    } catch (error) {
      this.lost(link, String(error));
    }
  }

  private async readDatagrams(link: Link): Promise<void> {
    const reader = link.transport.datagrams.readable.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || link.dead) break;
        link.lastHeard = Date.now();
        // The server's keep-alive: zero length, or over WebTransport one
        // byte 0x00 (browsers deliver no empty datagram).
        if (value.length === 0 || (value.length === 1 && value[0] === 0)) continue;
        let d: wire.ServerDatagram;
        try {
          d = wire.decodeServerDatagram(value);
        } catch {
          continue;
        }
        const sender = this.roster.get(d.partyId)?.members.find((m) => m.presence.sessionId === d.sender)
          ?.presence ?? { userId: "", username: "", sessionId: d.sender };
        this.queue.push({
          kind: "Data",
          data: { partyId: d.partyId, sender, opCode: Number(d.opCode), data: d.payload, reliable: false },
        });
      }
    } catch {
      // The session ended; `closed` says how.
    }
  }

  private frame(link: Link, body: Uint8Array): void {
    if (link.dead) return;
    let frame: ServerFrame;
    try {
      frame = wire.decodeServerFrame(body);
    } catch (error) {
      return this.lost(link, `undecodable frame: ${error}`);
    }
    if (frame.kind === "Response") {
      const pending = this.pending.get(frame.id);
      if (!pending) return;
      this.pending.delete(frame.id);
      clearTimeout(pending.timer);
      if (frame.result.ok) pending.resolve(frame.result.value);
      else pending.reject(PartylineError.from(frame.result.error));
    } else if (frame.kind === "Event") {
      this.lastEventSeq = frame.seq;
      this.event(frame.event);
    }
  }

  /** Applies a server event to the roster, then tells the game. */
  private event(e: WireEvent): void {
    const party = "partyId" in e && e.partyId ? this.roster.get(e.partyId) : undefined;
    const push = (event: Event) => this.queue.push(event);
    switch (e.kind) {
      case "MemberJoined":
        if (party && !party.members.some((m) => m.presence.sessionId === e.presence.sessionId)) {
          party.members.push({ presence: e.presence, connected: true, attributes: {}, quality: "Unknown" });
        }
        return push({ kind: "MemberJoined", partyId: e.partyId, member: e.presence });
      case "MemberLeft":
        if (party) party.members = party.members.filter((m) => m.presence.sessionId !== e.presence.sessionId);
        return push({ kind: "MemberLeft", partyId: e.partyId, member: e.presence, reason: e.reason });
      case "LeaderChanged":
        if (party) {
          party.leader = e.leader;
          party.isLeader = e.leader.sessionId === this.sessionId;
        }
        return push({ kind: "LeaderChanged", partyId: e.partyId, leader: e.leader });
      case "MemberConnection":
        for (const m of party?.members ?? []) {
          if (m.presence.sessionId !== e.presence.sessionId) continue;
          m.connected = e.connected;
          // The server measures each connection anew.
          m.quality = "Unknown";
        }
        return push({ kind: "MemberConnectionChanged", partyId: e.partyId, member: e.presence, connected: e.connected });
      case "JoinRequested":
        return push({ kind: "JoinRequested", partyId: e.partyId, requester: e.presence });
      case "JoinRequestGone":
        return push({ kind: "JoinRequestGone", partyId: e.partyId, requester: e.presence, reason: e.reason });
      case "JoinRequestList":
        return push({ kind: "JoinRequests", partyId: e.partyId, requests: e.requests });
      case "Accepted":
        return push({ kind: "PartyJoined", party: this.seat(e.value) });
      case "JoinRejected":
        return push({ kind: "JoinRejected", partyId: e.partyId, reason: e.reason });
      case "Kicked":
        this.roster.delete(e.partyId);
        return push({ kind: "Kicked", partyId: e.partyId });
      case "Closed":
        this.roster.delete(e.partyId);
        return push({ kind: "PartyClosed", partyId: e.partyId });
      case "Updated":
        if (!party) return;
        Object.assign(party, {
          open: e.open, maxSize: e.maxSize, label: e.label, invitePolicy: e.invitePolicy,
          leaderPolicy: e.leaderPolicy,
        });
        return push({ kind: "PartyUpdated", party });
      case "Data": {
        const data = { partyId: e.partyId, sender: e.sender, opCode: Number(e.opCode), data: e.data, reliable: true };
        return push({ kind: "Data", data });
      }
      case "DataRefused":
        return push({ kind: "DataRefused", partyId: e.partyId, opCode: Number(e.opCode), error: e.error });
      case "StatusOnline":
        return push({ kind: "StatusOnline", status: e.value });
      case "StatusChanged":
        return push({ kind: "StatusChanged", status: e.value });
      case "StatusOffline":
        return push({ kind: "StatusOffline", presence: e.presence });
      case "Invited":
        return push({ kind: "Invited", invite: e.value });
      case "InviteGone":
        return push({ kind: "InviteGone", partyId: e.partyId, reason: e.reason });
      case "InviteDeclined":
        return push({ kind: "InviteDeclined", partyId: e.partyId, presence: e.presence });
      case "PartyStateChanged":
        if (party) party.state = { ...e.state };
        return push({ kind: "PartyStateChanged", partyId: e.partyId, state: e.state });
      case "MemberAttributesChanged":
        for (const m of party?.members ?? []) if (m.presence.sessionId === e.presence.sessionId) m.attributes = { ...e.attributes };
        return push({ kind: "MemberAttributesChanged", partyId: e.partyId, member: e.presence, attributes: e.attributes });
      case "JoinCodeChanged":
        if (party) party.joinCode = e.code;
        return push({ kind: "JoinCodeChanged", partyId: e.partyId, code: e.code });
      case "ListingChanged":
        if (party) Object.assign(party, { listed: e.listed, properties: { ...e.properties } });
        return push({ kind: "ListingChanged", partyId: e.partyId, listed: e.listed, properties: e.properties });
      case "Banned":
        this.roster.delete(e.partyId);
        return push({ kind: "Banned", partyId: e.partyId, untilMs: Number(e.untilMs) });
      case "TicketStarted":
        return push({ kind: "TicketStarted", ticketId: e.ticketId, partyId: e.partyId });
      case "TicketCancelled":
        return push({ kind: "TicketCancelled", ticketId: e.ticketId, reason: e.reason });
      case "Matched":
        return push({ kind: "Matched", match: e.value });
      case "ReadyCheckStarted":
        if (party) party.readyCheck = copyCheck(e.check);
        return push({ kind: "ReadyCheckStarted", partyId: e.partyId, check: e.check });
      case "ReadyCheckAnswered":
        if (party?.readyCheck?.checkId === e.checkId) tally(party.readyCheck, e.presence, e.ready);
        return push({
          kind: "ReadyCheckAnswered", partyId: e.partyId, checkId: e.checkId, member: e.presence,
          ready: e.ready,
        });
      case "ReadyCheckEnded":
        if (party) party.readyCheck = null;
        return push({
          kind: "ReadyCheckEnded", partyId: e.partyId, checkId: e.checkId, outcome: e.outcome,
          ready: e.ready, notReady: e.notReady, noAnswer: e.noAnswer,
        });
      case "BlocksChanged":
        this.blockList = [...e.userIds];
        return push({ kind: "BlocksChanged", userIds: e.userIds });
      case "Unknown":
        // A newer server's event: ignored (its number was counted).
        return;
    }
  }

  private checkLiveness(): void {
    const link = this.link;
    if (link.dead || this.ended) return;
    if (Date.now() - link.lastHeard > (this.options.idleTimeout ?? 10000)) {
      this.lost(link, "nothing heard from the server within the idle timeout");
    }
  }

  /** The server closed the session with `code`. */
  private closed(link: Link, code: number, reason: string): void {
    if (link.dead || link !== this.link || this.ended) return;
    if (code === wire.CloseCode.ServerShutdown) return this.finish({ kind: "ServerShutdown" });
    if (FINAL_CLOSES.has(code)) return this.finish({ kind: "ClosedByServer", code, reason });
    this.lost(link, `closed with code ${code}: ${reason}`);
  }

  /** The connection is gone without a goodbye: resume, or end. */
  private lost(link: Link, detail: string): void {
    if (link.dead || link !== this.link || this.ended) return;
    // Abandoned, not closed: a close would reach the server as a goodbye
    // (ending the session) if the path came back before the resume.
    link.dead = true;
    this.failPending("ConnectionLost", detail);
    const reason: DisconnectReason = { kind: "ConnectionLost", detail };
    if (this.options.autoReconnect === false) return this.finish(reason);
    this.queue.push({ kind: "Reconnecting", reason });
    this.reconnecting = this.reconnect().finally(() => {
      this.reconnecting = null;
    });
  }

  private async reconnect(): Promise<void> {
    const deadline = Date.now() + (this.options.reconnectFor ?? 30000);
    let wait = 100;
    let last = "";
    while (Date.now() < deadline && !this.ended) {
      const resume = { token: this.link.welcome.resumeToken, lastEventSeq: this.lastEventSeq };
      try {
        const link = await Link.open(this.options, resume);
        this.resumed(link);
        return;
      } catch (error) {
        last = String(error);
        if (error instanceof PartylineError && error.code === "ResumeRefused") {
          return this.newSession();
        }
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 2000);
    }
    this.finish({ kind: "ReconnectFailed", detail: last || "gave up" });
  }

  /** Back on a new connection: replayed events follow, or snapshots stand for them. */
  private resumed(link: Link): void {
    this.link = link;
    const how = link.welcome.resumed;
    if (how.kind === "Snapshots") {
      const kept = new Set<string>();
      for (const { snapshot } of how.parties) {
        kept.add(snapshot.partyId);
        this.queue.push({ kind: "PartySynced", party: this.seat(snapshot) });
      }
      for (const partyId of [...this.roster.keys()]) {
        if (!kept.has(partyId) && !how.waiting.includes(partyId)) {
          this.roster.delete(partyId);
          this.queue.push({ kind: "PartyLost", partyId });
        }
      }
      this.lastEventSeq = link.welcome.lastEventSeq;
    } else if (how.kind === "Replayed") {
      this.lastEventSeq = link.welcome.lastEventSeq - BigInt(how.count);
    }
    this.queue.push({ kind: "Resumed" });
    this.start(link);
  }

  /** The old session is gone (its grace window ended): a new one. */
  private async newSession(): Promise<void> {
    try {
      const link = await Link.open(this.options, null);
      this.link = link;
      this.lastEventSeq = link.welcome.lastEventSeq;
      for (const partyId of [...this.roster.keys()]) {
        this.roster.delete(partyId);
        this.queue.push({ kind: "PartyLost", partyId });
      }
      this.queue.push({ kind: "SessionLost" });
      this.start(link);
    } catch (error) {
      this.finish({ kind: "ReconnectFailed", detail: String(error) });
    }
  }

  private failPending(code: "ConnectionLost" | "Closed", detail: string): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new PartylineError(code, detail));
      this.pending.delete(id);
    }
  }

  private finish(reason: DisconnectReason): void {
    if (this.ended) return;
    this.ended = reason;
    this.link.dead = true;
    clearInterval(this.watchdog);
    this.failPending("Closed", "the session is over");
    this.queue.push({ kind: "Disconnected", reason });
  }
}

/** A ready check the roster may change without touching the event's. */
function copyCheck(check: ReadyCheck): ReadyCheck {
  return { ...check, ready: [...check.ready], notReady: [...check.notReady], noAnswer: [...check.noAnswer] };
}

/** Moves an asked member to the list of its answer. */
function tally(check: ReadyCheck, member: Presence, ready: boolean): void {
  const other = (p: Presence) => p.sessionId !== member.sessionId;
  check.ready = check.ready.filter(other);
  check.notReady = check.notReady.filter(other);
  check.noAnswer = check.noAnswer.filter(other);
  (ready ? check.ready : check.notReady).push(member);
}

function expect<K extends Reply["kind"]>(reply: Reply, kind: K): Extract<Reply, { kind: K }> {
  if (reply.kind !== kind) throw new PartylineError("ProtocolViolation", `expected a ${kind} reply, got ${reply.kind}`);
  return reply as Extract<Reply, { kind: K }>;
}
