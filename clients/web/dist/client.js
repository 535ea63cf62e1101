// The game-facing client, as the Rust SDK's: connect, party commands, a
// roster per party, one stream of events in game terms, party data as
// datagrams or reliable messages, and reconnection with resume. It speaks
// PROTOCOL.md over one WebTransport session (PROTOCOL.md, "WebTransport").
import * as wire from "./codec.js";
/** Why a command failed: a server error code, or this client's state. */
export class PartylineError extends Error {
    code;
    constructor(code, message) {
        super(message);
        this.code = code;
        this.name = "PartylineError";
    }
    static from(body) {
        return new PartylineError(body.code, body.message);
    }
}
/** Close codes after which the session is over: no reconnect. */
const FINAL_CLOSES = new Set([
    wire.CloseCode.ProtocolViolation, wire.CloseCode.ServerShutdown,
    wire.CloseCode.HandshakeRefused, wire.CloseCode.FrameTooLarge, wire.CloseCode.Superseded,
    wire.CloseCode.ServerFull, wire.CloseCode.RateLimited, wire.CloseCode.Disconnected,
]);
/** Events, in order: `await next()`, `for await`, or `on(listener)`. */
class EventQueue {
    queue = [];
    waiting = [];
    listeners = [];
    push(event) {
        for (const listener of this.listeners)
            listener(event);
        const waiter = this.waiting.shift();
        if (waiter)
            waiter(event);
        else if (this.listeners.length === 0)
            this.queue.push(event);
    }
    next() {
        const event = this.queue.shift();
        if (event)
            return Promise.resolve(event);
        return new Promise((resolve) => this.waiting.push(resolve));
    }
    on(listener) {
        this.listeners.push(listener);
        for (const event of this.queue.splice(0))
            listener(event);
    }
    async *[Symbol.asyncIterator]() {
        for (;;)
            yield await this.next();
    }
}
/** One WebTransport session: the control stream and the datagrams. */
class Link {
    transport;
    welcome;
    reader;
    frames;
    early;
    writer;
    datagrams;
    lastHeard = Date.now();
    dead = false;
    constructor(transport, stream, welcome, reader, frames, early) {
        this.transport = transport;
        this.welcome = welcome;
        this.reader = reader;
        this.frames = frames;
        this.early = early;
        this.writer = stream.writable.getWriter();
        this.datagrams = transport.datagrams.writable.getWriter();
    }
    /** Opens the session, says Hello, reads Welcome (or the refusal). */
    static async open(options, resume) {
        const Transport = options.webTransport ?? globalThis.WebTransport;
        if (!Transport)
            throw new PartylineError("ConnectionLost", "this runtime has no WebTransport");
        const hashes = (options.serverCertificateHashes ?? []).map((hash) => ({
            algorithm: "sha-256",
            value: new Uint8Array(typeof hash === "string" ? hexBytes(hash) : hash),
        }));
        const transport = new Transport(options.url, hashes.length ? { serverCertificateHashes: hashes } : {});
        transport.closed.catch(() => { });
        let timer;
        const limit = new Promise((_, reject) => {
            timer = setTimeout(() => reject(new PartylineError("Timeout", "no Welcome within the connect timeout")), options.connectTimeout ?? 10000);
        });
        try {
            return await Promise.race([Link.handshake(transport, options, resume), limit]);
        }
        catch (error) {
            transport.close();
            if (error instanceof PartylineError)
                throw error;
            throw new PartylineError("ConnectionLost", String(error));
        }
        finally {
            clearTimeout(timer);
        }
    }
    static async handshake(transport, options, resume) {
        {
            await transport.ready;
            const stream = await transport.createBidirectionalStream();
            const writer = stream.writable.getWriter();
            const identity = "token" in options.identity
                ? { kind: "Token", token: options.identity.token }
                : { kind: "Dev", userId: options.identity.userId, username: options.identity.username };
            await writer.write(wire.encodeClientFrame({ kind: "Hello", version: wire.PROTOCOL_VERSION, identity, resume }));
            writer.releaseLock();
            const reader = stream.readable.getReader();
            const frames = new wire.FrameReader();
            let bodies = [];
            while (bodies.length === 0) {
                const { value, done } = await reader.read();
                if (done)
                    throw new PartylineError("ConnectionLost", "the server ended the stream before Welcome");
                bodies = frames.push(value);
            }
            const first = wire.decodeServerFrame(bodies[0]);
            if (first.kind === "Refused")
                throw PartylineError.from(first.value);
            if (first.kind !== "Welcome")
                throw new PartylineError("ProtocolViolation", `expected Welcome, got ${first.kind}`);
            return new Link(transport, stream, first.value, reader, frames, bodies.slice(1));
        }
    }
}
function hexBytes(hex) {
    const clean = hex.replace(/[^0-9a-fA-F]/g, "");
    return Uint8Array.from(clean.match(/../g) ?? [], (b) => parseInt(b, 16));
}
/** A connected player. Make one with `Client.connect`. */
export class Client {
    options;
    link;
    queue = new EventQueue();
    roster = new Map();
    /** This session's block list, as the server last said it. */
    blockList = [];
    pending = new Map();
    nextId = 1;
    lastEventSeq;
    ended = null;
    reconnecting = null;
    watchdog;
    constructor(options, link) {
        this.options = options;
        this.link = link;
        this.lastEventSeq = link.welcome.lastEventSeq;
        this.start(link);
        this.watchdog = setInterval(() => this.checkLiveness(), 250);
    }
    /** Connects and opens a new session. */
    static async connect(options) {
        return new Client(options, await Link.open(options, null));
    }
    get welcome() { return this.link.welcome; }
    get presence() { return this.link.welcome.presence; }
    get sessionId() { return this.link.welcome.sessionId; }
    get limits() { return this.link.welcome.limits; }
    /** The last event number received (what a resume names). */
    get eventSeq() { return this.lastEventSeq; }
    /** The next event. */
    nextEvent() { return this.queue.next(); }
    /** Every event, in order, to a listener (events queued so far first). */
    onEvent(listener) { this.queue.on(listener); }
    /** `for await (const event of client.events())`. */
    events() { return this.queue; }
    /** The roster of a party this session is in. */
    party(partyId) { return this.roster.get(partyId); }
    parties() { return [...this.roster.values()]; }
    // ------------------------------------------------------------ parties
    async createParty(settings = {}) {
        const reply = await this.request({
            kind: "CreateParty", open: settings.open ?? true, maxSize: settings.maxSize ?? 8,
            label: settings.label ?? "", invitePolicy: settings.invitePolicy ?? "Leader",
            state: settings.state ?? {}, leaderPolicy: settings.leaderPolicy ?? "Tenure",
        });
        return this.seat(expect(reply, "Party").value);
    }
    async joinParty(partyId) {
        return this.joined(await this.request({ kind: "JoinParty", partyId }));
    }
    async joinByCode(code) {
        return this.joined(await this.request({ kind: "JoinByCode", code }));
    }
    async leaveParty(partyId) {
        await this.done({ kind: "Leave", partyId });
        this.roster.delete(partyId);
    }
    async listJoinRequests(partyId) {
        return expect(await this.request({ kind: "ListJoinRequests", partyId }), "JoinRequests").requests;
    }
    accept(partyId, userId) { return this.done({ kind: "AcceptJoinRequest", partyId, userId }); }
    reject(partyId, userId) { return this.done({ kind: "Reject", partyId, userId }); }
    kick(partyId, userId) { return this.done({ kind: "Kick", partyId, userId }); }
    promote(partyId, userId) { return this.done({ kind: "Promote", partyId, userId }); }
    async closeParty(partyId) {
        await this.done({ kind: "Close", partyId });
        this.roster.delete(partyId);
    }
    async updateParty(partyId, changes) {
        const reply = await this.request({
            kind: "Update", partyId, open: changes.open ?? null, label: changes.label ?? null,
            maxSize: changes.maxSize ?? null, invitePolicy: changes.invitePolicy ?? null,
            leaderPolicy: changes.leaderPolicy ?? null,
        });
        return this.seat(expect(reply, "Party").value);
    }
    async getParty(partyId) {
        return this.seat(expect(await this.request({ kind: "GetParty", partyId }), "Party").value);
    }
    // --------------------------------------------------------- gathering
    setStatus(status, visible = true) { return this.done({ kind: "SetStatus", status, visible }); }
    async follow(userIds) {
        return expect(await this.request({ kind: "Follow", userIds }), "Followed").online;
    }
    unfollow(userIds) { return this.done({ kind: "Unfollow", userIds }); }
    invite(partyId, userId) { return this.done({ kind: "Invite", partyId, userId }); }
    declineInvite(partyId) { return this.done({ kind: "DeclineInvite", partyId }); }
    revokeInvite(partyId, userId) { return this.done({ kind: "RevokeInvite", partyId, userId }); }
    async listInvites() {
        return expect(await this.request({ kind: "ListInvites" }), "Invites").value;
    }
    async createJoinCode(partyId) {
        return expect(await this.request({ kind: "CreateJoinCode", partyId }), "JoinCode").code;
    }
    clearJoinCode(partyId) { return this.done({ kind: "ClearJoinCode", partyId }); }
    listParty(partyId, properties = {}) { return this.done({ kind: "ListParty", partyId, properties }); }
    unlistParty(partyId) { return this.done({ kind: "UnlistParty", partyId }); }
    async searchParties(search = {}) {
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
    setPartyState(partyId, set, remove = []) {
        return this.done({ kind: "SetPartyState", partyId, set, remove });
    }
    setMemberAttributes(partyId, set, remove = []) {
        return this.done({ kind: "SetMemberAttributes", partyId, set, remove });
    }
    ban(partyId, userId, durationMs = 0) {
        return this.done({ kind: "Ban", partyId, userId, durationMs: BigInt(durationMs) });
    }
    unban(partyId, userId) { return this.done({ kind: "Unban", partyId, userId }); }
    async listBans(partyId) {
        return expect(await this.request({ kind: "ListBans", partyId }), "Bans").bans;
    }
    // ---------------------------------------------------------- tickets
    async submitTicket(ticket) {
        return expect(await this.request({ kind: "SubmitTicket", value: ticket }), "TicketStarted").ticketId;
    }
    cancelTicket(ticketId) { return this.done({ kind: "CancelTicket", ticketId }); }
    // ------------------------------------------------------- ready checks
    /** Leader only: asks every member whether it is ready, for `timeoutMs`
     * (5000 to 120000); `message` is shown to them (at most 256 bytes, may
     * be empty). The leader counts as ready. Members hear
     * `ReadyCheckStarted`, the answers as they come (`ReadyCheckAnswered`)
     * and the result (`ReadyCheckEnded`); the party's `readyCheck` shows it
     * while it runs. One at a time per party (`ReadyCheckRunning`). */
    startReadyCheck(partyId, message, timeoutMs) {
        return this.done({ kind: "StartReadyCheck", partyId, message, timeoutMs: BigInt(timeoutMs) });
    }
    /** Answers the party's ready check `checkId` (from `ReadyCheckStarted`
     * or the party's `readyCheck`), or changes the answer, until it ends. */
    answerReadyCheck(partyId, checkId, ready) {
        return this.done({ kind: "AnswerReadyCheck", partyId, checkId, ready });
    }
    /** Leader only: ends the running ready check now (`Cancelled`). */
    cancelReadyCheck(partyId) { return this.done({ kind: "CancelReadyCheck", partyId }); }
    // -------------------------------------------------- mutes and blocks
    /** Stops `userId`'s party data (datagrams and reliable) reaching this
     * session, for op codes `opCodes.min` to `opCodes.max` (inclusive; all
     * of them when left out): mute a voice range, keep game data. Muting
     * again replaces the range; the muted member is not told; the party's
     * `muted` shows it while this session is seated. */
    async mute(partyId, userId, opCodes) {
        const range = opCodes ? { min: BigInt(opCodes.min), max: BigInt(opCodes.max) } : null;
        await this.done({ kind: "Mute", partyId, userId, opCodes: range });
        const party = this.roster.get(partyId);
        if (party)
            party.muted = [...party.muted.filter((m) => m.userId !== userId), { userId, opCodes: range }];
    }
    /** Lets a muted member's party data reach this session again. */
    async unmute(partyId, userId) {
        await this.done({ kind: "Unmute", partyId, userId });
        const party = this.roster.get(partyId);
        if (party)
            party.muted = party.muted.filter((m) => m.userId !== userId);
    }
    /** Blocks users for this session: no party data, status or invites
     * between it and them, and a party it leads is closed to them (they are
     * not told). Resolves with the list now (at most 512). */
    async block(userIds) {
        return this.blocks(await this.request({ kind: "Block", userIds }));
    }
    /** Takes users off this session's block list; the list now. */
    async unblock(userIds) {
        return this.blocks(await this.request({ kind: "Unblock", userIds }));
    }
    /** This session's block list as the server has it. */
    async listBlocks() {
        return this.blocks(await this.request({ kind: "ListBlocks" }));
    }
    /** This session's block list as this client last heard it. */
    get blocked() {
        return [...this.blockList];
    }
    // -------------------------------------------------------- party data
    /** Unreliable party data: one WebTransport datagram to the other members. */
    sendData(partyId, opCode, data) {
        if (this.ended)
            throw new PartylineError("Closed", "the session is over");
        const limit = this.limits.maxDatagramData;
        if (data.length > limit) {
            throw new PartylineError("PayloadTooLarge", `a datagram payload of ${data.length} bytes is above ${limit}`);
        }
        const datagram = wire.encodeClientDatagram(partyId, BigInt(opCode), data);
        // Fire and forget: a datagram that cannot be sent now is stale anyway.
        this.link.datagrams.write(datagram).catch(() => { });
    }
    /** Reliable party data, on the control stream. */
    sendDataReliable(partyId, opCode, data) {
        return this.done({ kind: "SendData", partyId, opCode: BigInt(opCode), data });
    }
    /** Sends any command and waits for its reply. */
    async request(command) {
        if (this.reconnecting)
            await this.reconnecting;
        if (this.ended)
            throw new PartylineError("Closed", "the session is over");
        const id = this.nextId++;
        const link = this.link;
        const answer = new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                this.pending.delete(id);
                reject(new PartylineError("Timeout", `no answer to ${command.kind} in time`));
            }, this.options.requestTimeout ?? 10000);
            this.pending.set(id, { resolve, reject, timer });
        });
        link.writer.write(wire.encodeClientFrame({ kind: "Request", id, command })).catch(() => { });
        return answer;
    }
    /** Says goodbye: the session ends at once (the others see it leave). */
    close() {
        if (this.ended)
            return;
        this.finish({ kind: "ClosedLocally" });
        this.link.transport.close({ closeCode: wire.CloseCode.Normal, reason: "goodbye" });
    }
    /** Drops the connection as a network would, without a goodbye (tests,
     * the demo page's "cut" button): the session is resumed if auto-reconnect is on. */
    dropConnection() {
        this.lost(this.link, "dropped by the page");
    }
    // ---------------------------------------------------------- internals
    async done(command) {
        expect(await this.request(command), "Done");
    }
    blocks(reply) {
        this.blockList = expect(reply, "Blocks").userIds;
        return [...this.blockList];
    }
    joined(reply) {
        const outcome = expect(reply, "Join").value;
        if (outcome.kind === "Queued")
            return { kind: "Queued", partyId: outcome.partyId };
        return { kind: "Joined", party: this.seat(outcome.value) };
    }
    seat(snapshot) {
        const party = this.view(snapshot);
        this.roster.set(party.partyId, party);
        return party;
    }
    view(s) {
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
    start(link) {
        for (const body of link.early)
            this.frame(link, body);
        void this.readControl(link);
        void this.readDatagrams(link);
        link.transport.closed.then((info) => this.closed(link, info.closeCode ?? 0, info.reason ?? ""), (error) => this.lost(link, String(error)));
    }
    async readControl(link) {
        try {
            for (;;) {
                const { value, done } = await link.reader.read();
                if (done || link.dead)
                    break;
                link.lastHeard = Date.now();
                for (const body of link.frames.push(value))
                    this.frame(link, body);
            }
        }
        catch (error) {
            this.lost(link, String(error));
        }
    }
    async readDatagrams(link) {
        const reader = link.transport.datagrams.readable.getReader();
        try {
            for (;;) {
                const { value, done } = await reader.read();
                if (done || link.dead)
                    break;
                link.lastHeard = Date.now();
                // The server's keep-alive: zero length, or over WebTransport one
                // byte 0x00 (browsers deliver no empty datagram).
                if (value.length === 0 || (value.length === 1 && value[0] === 0))
                    continue;
                let d;
                try {
                    d = wire.decodeServerDatagram(value);
                }
                catch {
                    continue;
                }
                const sender = this.roster.get(d.partyId)?.members.find((m) => m.presence.sessionId === d.sender)
                    ?.presence ?? { userId: "", username: "", sessionId: d.sender };
                this.queue.push({
                    kind: "Data",
                    data: { partyId: d.partyId, sender, opCode: Number(d.opCode), data: d.payload, reliable: false },
                });
            }
        }
        catch {
            // The session ended; `closed` says how.
        }
    }
    frame(link, body) {
        if (link.dead)
            return;
        let frame;
        try {
            frame = wire.decodeServerFrame(body);
        }
        catch (error) {
            return this.lost(link, `undecodable frame: ${error}`);
        }
        if (frame.kind === "Response") {
            const pending = this.pending.get(frame.id);
            if (!pending)
                return;
            this.pending.delete(frame.id);
            clearTimeout(pending.timer);
            if (frame.result.ok)
                pending.resolve(frame.result.value);
            else
                pending.reject(PartylineError.from(frame.result.error));
        }
        else if (frame.kind === "Event") {
            this.lastEventSeq = frame.seq;
            this.event(frame.event);
        }
    }
    /** Applies a server event to the roster, then tells the game. */
    event(e) {
        const party = "partyId" in e && e.partyId ? this.roster.get(e.partyId) : undefined;
        const push = (event) => this.queue.push(event);
        switch (e.kind) {
            case "MemberJoined":
                if (party && !party.members.some((m) => m.presence.sessionId === e.presence.sessionId)) {
                    party.members.push({ presence: e.presence, connected: true, attributes: {}, quality: "Unknown" });
                }
                return push({ kind: "MemberJoined", partyId: e.partyId, member: e.presence });
            case "MemberLeft":
                if (party)
                    party.members = party.members.filter((m) => m.presence.sessionId !== e.presence.sessionId);
                return push({ kind: "MemberLeft", partyId: e.partyId, member: e.presence, reason: e.reason });
            case "LeaderChanged":
                if (party) {
                    party.leader = e.leader;
                    party.isLeader = e.leader.sessionId === this.sessionId;
                }
                return push({ kind: "LeaderChanged", partyId: e.partyId, leader: e.leader });
            case "MemberConnection":
                for (const m of party?.members ?? []) {
                    if (m.presence.sessionId !== e.presence.sessionId)
                        continue;
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
                if (!party)
                    return;
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
                if (party)
                    party.state = { ...e.state };
                return push({ kind: "PartyStateChanged", partyId: e.partyId, state: e.state });
            case "MemberAttributesChanged":
                for (const m of party?.members ?? [])
                    if (m.presence.sessionId === e.presence.sessionId)
                        m.attributes = { ...e.attributes };
                return push({ kind: "MemberAttributesChanged", partyId: e.partyId, member: e.presence, attributes: e.attributes });
            case "JoinCodeChanged":
                if (party)
                    party.joinCode = e.code;
                return push({ kind: "JoinCodeChanged", partyId: e.partyId, code: e.code });
            case "ListingChanged":
                if (party)
                    Object.assign(party, { listed: e.listed, properties: { ...e.properties } });
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
                if (party)
                    party.readyCheck = copyCheck(e.check);
                return push({ kind: "ReadyCheckStarted", partyId: e.partyId, check: e.check });
            case "ReadyCheckAnswered":
                if (party?.readyCheck?.checkId === e.checkId)
                    tally(party.readyCheck, e.presence, e.ready);
                return push({
                    kind: "ReadyCheckAnswered", partyId: e.partyId, checkId: e.checkId, member: e.presence,
                    ready: e.ready,
                });
            case "ReadyCheckEnded":
                if (party)
                    party.readyCheck = null;
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
    checkLiveness() {
        const link = this.link;
        if (link.dead || this.ended)
            return;
        if (Date.now() - link.lastHeard > (this.options.idleTimeout ?? 10000)) {
            this.lost(link, "nothing heard from the server within the idle timeout");
        }
    }
    /** The server closed the session with `code`. */
    closed(link, code, reason) {
        if (link.dead || link !== this.link || this.ended)
            return;
        if (code === wire.CloseCode.ServerShutdown)
            return this.finish({ kind: "ServerShutdown" });
        if (FINAL_CLOSES.has(code))
            return this.finish({ kind: "ClosedByServer", code, reason });
        this.lost(link, `closed with code ${code}: ${reason}`);
    }
    /** The connection is gone without a goodbye: resume, or end. */
    lost(link, detail) {
        if (link.dead || link !== this.link || this.ended)
            return;
        // Abandoned, not closed: a close would reach the server as a goodbye
        // (ending the session) if the path came back before the resume.
        link.dead = true;
        this.failPending("ConnectionLost", detail);
        const reason = { kind: "ConnectionLost", detail };
        if (this.options.autoReconnect === false)
            return this.finish(reason);
        this.queue.push({ kind: "Reconnecting", reason });
        this.reconnecting = this.reconnect().finally(() => {
            this.reconnecting = null;
        });
    }
    async reconnect() {
        const deadline = Date.now() + (this.options.reconnectFor ?? 30000);
        let wait = 100;
        let last = "";
        while (Date.now() < deadline && !this.ended) {
            const resume = { token: this.link.welcome.resumeToken, lastEventSeq: this.lastEventSeq };
            try {
                const link = await Link.open(this.options, resume);
                this.resumed(link);
                return;
            }
            catch (error) {
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
    resumed(link) {
        this.link = link;
        const how = link.welcome.resumed;
        if (how.kind === "Snapshots") {
            const kept = new Set();
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
        }
        else if (how.kind === "Replayed") {
            this.lastEventSeq = link.welcome.lastEventSeq - BigInt(how.count);
        }
        this.queue.push({ kind: "Resumed" });
        this.start(link);
    }
    /** The old session is gone (its grace window ended): a new one. */
    async newSession() {
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
        }
        catch (error) {
            this.finish({ kind: "ReconnectFailed", detail: String(error) });
        }
    }
    failPending(code, detail) {
        for (const [id, pending] of this.pending) {
            clearTimeout(pending.timer);
            pending.reject(new PartylineError(code, detail));
            this.pending.delete(id);
        }
    }
    finish(reason) {
        if (this.ended)
            return;
        this.ended = reason;
        this.link.dead = true;
        clearInterval(this.watchdog);
        this.failPending("Closed", "the session is over");
        this.queue.push({ kind: "Disconnected", reason });
    }
}
/** A ready check the roster may change without touching the event's. */
function copyCheck(check) {
    return { ...check, ready: [...check.ready], notReady: [...check.notReady], noAnswer: [...check.noAnswer] };
}
/** Moves an asked member to the list of its answer. */
function tally(check, member, ready) {
    const other = (p) => p.sessionId !== member.sessionId;
    check.ready = check.ready.filter(other);
    check.notReady = check.notReady.filter(other);
    check.noAnswer = check.noAnswer.filter(other);
    (ready ? check.ready : check.notReady).push(member);
}
function expect(reply, kind) {
    if (reply.kind !== kind)
        throw new PartylineError("ProtocolViolation", `expected a ${kind} reply, got ${reply.kind}`);
    return reply;
}
