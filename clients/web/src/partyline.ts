// partyline for browsers: the client (`Client.connect`) and the wire
// codec it is built on (PROTOCOL.md, written from it; checked against its
// worked examples under node).
export * from "./client.js";
export * as wire from "./codec.js";
export { CloseCode, NIL_UUID, PROTOCOL_VERSION } from "./codec.js";
export type {
  ConnectionQuality, ErrorBody, ErrorCode, InvitePolicy, KeyValues, LeaderPolicy, Limits,
  ListedParty, MatchFound, PartyBan, PartyInvite, PartySearch, PartySnapshot, Presence,
  ReadyCheck, ReadyCheckOutcome, TicketRequest, UserStatus, Welcome,
} from "./codec.js";
