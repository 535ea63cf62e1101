// partyline for C# and Unity: a P/Invoke wrapper over the C ABI
// (crates/ffi/include/partyline.h). One file, no dependencies beyond
// mscorlib: copy it into Assets/ next to the native library (see README.md).
//
// The shape, for a game loop:
//   var client = PartylineClient.Connect("127.0.0.1:7350", certPath, "ana", "Ana");
//   client.OnEvent += e => Debug.Log(e.Kind);
//   // in Update(): client.Poll();  (replies complete Tasks, events are raised)
//   Party party = await client.CreateParty(false, 4, "squad");
//   // in OnDestroy(): client.Dispose();
//
// Everything is raised and completed on the thread that calls Poll(), so
// event handlers and `await` continuations run on the game thread.
//
// Threads, as partyline.h states them: any function may be called from any
// thread, also at the same time on one client, except pl_client_free, which
// must be a client's last call (none other under way or to come). What a
// poll fills in stays valid until the same thread polls the same client
// again, or the client is freed; several threads may poll one client, and
// each event goes to one of them. Here: Dispose() is pl_client_free (the
// SafeHandle holds it back until calls under way on other threads return);
// Poll() copies everything before it returns, so what it raises stays valid.
//
// Quitting: Dispose() (and Close()) end the session at once: the others see
// MemberLeft, and a lead passes on. Dispose() waits until the goodbye has
// left, at most 250 ms (about 0.1 s on a LAN).

using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading.Tasks;
using Microsoft.Win32.SafeHandles;

namespace Partyline
{
    /// <summary>What an event is about (the C ABI's <c>PL_EVENT_*</c>).</summary>
    public enum EventKind
    {
        /// <summary>No event (never raised).</summary>
        None = 0,
        /// <summary>The session is up: <see cref="PartyEvent.SessionId"/> and <see cref="PartyEvent.Member"/> (this session).</summary>
        Connected = 1,
        /// <summary>The answer to a command (completes its Task; never raised).</summary>
        Reply = 2,
        /// <summary>The leader accepted this session into a closed party: <see cref="PartyEvent.Party"/>.</summary>
        PartyJoined = 3,
        /// <summary>Someone took a seat: <see cref="PartyEvent.Member"/>.</summary>
        MemberJoined = 4,
        /// <summary>Someone left: <see cref="PartyEvent.Member"/>, <see cref="PartyEvent.Reason"/> (a <see cref="Reasons"/>.Leave*).</summary>
        MemberLeft = 5,
        /// <summary>The leader changed: <see cref="PartyEvent.Member"/> is the new leader.</summary>
        LeaderChanged = 6,
        /// <summary>A member lost its connection or came back (<see cref="Member.Connected"/>).</summary>
        MemberConnection = 7,
        /// <summary>To the leader: <see cref="PartyEvent.Member"/> asks to join.</summary>
        JoinRequested = 8,
        /// <summary>To the leader: a request vanished; <see cref="PartyEvent.Reason"/> (a <see cref="Reasons"/>.RequestGone*).</summary>
        JoinRequestGone = 9,
        /// <summary>To a new leader: the waiting requests in <see cref="PartyEvent.Requests"/>.</summary>
        JoinRequests = 10,
        /// <summary>This session's join request ended without a seat; <see cref="PartyEvent.Reason"/> (a <see cref="Reasons"/>.Reject*).</summary>
        JoinRejected = 11,
        /// <summary>The leader took this session's seat away.</summary>
        Kicked = 12,
        /// <summary>The leader closed the party.</summary>
        PartyClosed = 13,
        /// <summary>The leader changed the settings: <see cref="PartyEvent.Party"/>.</summary>
        PartyUpdated = 14,
        /// <summary>Party data: <see cref="PartyEvent.Member"/> (sender), <see cref="PartyEvent.OpCode"/>, <see cref="PartyEvent.Data"/>, <see cref="PartyEvent.Reliable"/>.</summary>
        Data = 15,
        /// <summary>A datagram the server did not forward: <see cref="PartyEvent.OpCode"/>, <see cref="PartyEvent.ErrorCode"/>.</summary>
        DataRefused = 16,
        /// <summary>The connection was lost; reconnecting (<see cref="PartyEvent.ErrorMessage"/> says why).</summary>
        Reconnecting = 17,
        /// <summary>Back with the same session and seats.</summary>
        Resumed = 18,
        /// <summary>After a resume, a party's state as the server has it: <see cref="PartyEvent.Party"/>.</summary>
        PartySynced = 19,
        /// <summary>After a resume, a party this session is no longer in.</summary>
        PartyLost = 20,
        /// <summary>The old session expired; <see cref="PartyEvent.SessionId"/> is the new one.</summary>
        SessionLost = 21,
        /// <summary>The session is over; nothing follows (<see cref="PartyEvent.ErrorCode"/>, <see cref="PartyEvent.ErrorMessage"/>).</summary>
        Disconnected = 22,
        /// <summary>The server could not decode something this client sent.</summary>
        ProtocolError = 23,
        /// <summary>A followed user's session came online (or stopped appearing offline):
        /// <see cref="PartyEvent.Member"/>, <see cref="PartyEvent.Status"/>.</summary>
        StatusOnline = 24,
        /// <summary>A followed user's session changed its status text: <see cref="PartyEvent.Member"/>,
        /// <see cref="PartyEvent.Status"/>.</summary>
        StatusChanged = 25,
        /// <summary>A followed user's session went offline or appears offline: <see cref="PartyEvent.Member"/>.</summary>
        StatusOffline = 26,
        /// <summary>An invite arrived (or was renewed): <see cref="PartyEvent.Invite"/>, and
        /// <see cref="PartyEvent.Member"/> is the inviter. Join it with <see cref="PartylineClient.JoinParty"/>
        /// (it seats this user even in a closed party) or <see cref="PartylineClient.DeclineInvite"/>.</summary>
        Invited = 27,
        /// <summary>An invite to this user is gone; <see cref="PartyEvent.Reason"/> (a
        /// <see cref="Reasons"/>.InviteGone*).</summary>
        InviteGone = 28,
        /// <summary>To the inviter: <see cref="PartyEvent.Member"/> turned the invite down.</summary>
        InviteDeclined = 29,
        /// <summary>The leader changed the party state: <see cref="PartyEvent.State"/> (all of it).</summary>
        PartyStateChanged = 30,
        /// <summary>A member (maybe this session) changed its attributes: <see cref="PartyEvent.Member"/>,
        /// <see cref="PartyEvent.Attributes"/> (all of that member's).</summary>
        MemberAttributesChanged = 31,
        /// <summary>The party's join code changed: <see cref="PartyEvent.JoinCode"/> ("" when removed).</summary>
        JoinCodeChanged = 32,
        /// <summary>The party was listed, relisted or unlisted: <see cref="PartyEvent.Listed"/>,
        /// <see cref="PartyEvent.Properties"/>.</summary>
        ListingChanged = 33,
        /// <summary>The leader banned this user from the party (its seat or request is gone):
        /// <see cref="PartyEvent.UntilMs"/> (0: for the party's life).</summary>
        Banned = 34,
        /// <summary>A matchmaking ticket this session is in waits for a match (its own, or its
        /// party's, to every member): <see cref="PartyEvent.TicketId"/>, <see cref="PartyEvent.PartyId"/>
        /// (null for a solo ticket).</summary>
        TicketStarted = 35,
        /// <summary>A ticket this session was in stopped without a match: <see cref="PartyEvent.TicketId"/>,
        /// <see cref="PartyEvent.Reason"/> (a <see cref="Reasons"/>.TicketCancel*).</summary>
        TicketCancelled = 36,
        /// <summary>A match: <see cref="PartyEvent.Match"/> (every player, and the token for the game
        /// server); <see cref="PartyEvent.TicketId"/> is this session's ticket.</summary>
        Matched = 37,
        /// <summary>The leader started a ready check: <see cref="PartyEvent.Member"/> (the leader),
        /// <see cref="PartyEvent.ReadyCheck"/> (whom it asks). Answer with
        /// <see cref="PartylineClient.AnswerReadyCheck"/>.</summary>
        ReadyCheckStarted = 38,
        /// <summary>A member answered the ready check, changed its answer, or left (then not ready):
        /// <see cref="PartyEvent.Member"/>, <see cref="PartyEvent.Ready"/>, <see cref="PartyEvent.CheckId"/>.</summary>
        ReadyCheckAnswered = 39,
        /// <summary>The ready check ended: <see cref="PartyEvent.Reason"/> (a <see cref="Reasons"/>.ReadyCheck*)
        /// and <see cref="PartyEvent.ReadyCheck"/>'s lists.</summary>
        ReadyCheckEnded = 40,
        /// <summary>The game's server set this session's block list: <see cref="PartyEvent.Blocked"/>
        /// (the list now).</summary>
        BlocksChanged = 41,
    }

    /// <summary>Who may invite to a party.</summary>
    public enum InvitePolicy
    {
        /// <summary>Only the leader (the default).</summary>
        Leader = 0,
        /// <summary>Any member.</summary>
        AnyMember = 1,
    }

    /// <summary>Who leads when the leader leaves or is lost (the C ABI's <c>PL_LEADER_POLICY_*</c>).</summary>
    public enum LeaderPolicy
    {
        /// <summary>The longest-seated connected member (the default).</summary>
        Tenure = 0,
        /// <summary>The connected member with the best connection as the server measures it;
        /// tenure breaks ties.</summary>
        ConnectionQuality = 1,
    }

    /// <summary>A member's connection as the server measures it (the C ABI's <c>PL_QUALITY_*</c>).</summary>
    public enum ConnectionQuality
    {
        /// <summary>Not measured yet, or disconnected.</summary>
        Unknown = 0,
        /// <summary>Low round-trip time and little loss.</summary>
        Good = 1,
        /// <summary>Playable, noticeably slower or lossier.</summary>
        Fair = 2,
        /// <summary>Slow or lossy.</summary>
        Poor = 3,
    }

    /// <summary>The library's own error codes (negative). Positive codes are the server's refusals (PROTOCOL.md).</summary>
    public static class ErrorCodes
    {
        /// <summary>Success.</summary>
        public const int Ok = 0;
        /// <summary>A missing or malformed argument (e.g. a party id that is not a UUID).</summary>
        public const int InvalidArgument = -1;
        /// <summary>The connection was lost and the client is reconnecting.</summary>
        public const int Reconnecting = -2;
        /// <summary>The session is over.</summary>
        public const int Closed = -3;
        /// <summary>The server could not be reached or the TLS handshake failed.</summary>
        public const int Connect = -4;
        /// <summary>The server said something this library does not understand.</summary>
        public const int Protocol = -5;
        /// <summary>A bug in the native library.</summary>
        public const int Internal = -6;
        /// <summary>Still connecting (for calls that cannot wait, like <see cref="PartylineClient.SendData"/>).</summary>
        public const int NotConnected = -7;
        /// <summary>A command (or the token's Hello) passes the protocol's frame limit, 262144 bytes
        /// encoded: refused before anything was sent; the session goes on.</summary>
        public const int TooLarge = -8;
        /// <summary>The server's refusal of a datagram above its size limit.</summary>
        public const int PayloadTooLarge = 12;
        /// <summary>Refused: no such pending invite (never sent, used, declined, revoked or expired).</summary>
        public const int InviteNotFound = 21;
        /// <summary>Refused: the user is banned from the party.</summary>
        public const int Banned = 22;
        /// <summary>Refused: no live party has that join code.</summary>
        public const int JoinCodeNotFound = 23;
        /// <summary>Refused: following these users would pass the server's follow limit.</summary>
        public const int TooManyFollows = 24;
        /// <summary>Refused: state, attributes or properties would pass their entry or byte limit.</summary>
        public const int KeyValuesTooLarge = 25;
        /// <summary>Refused: the party already has as many pending invites as it allows.</summary>
        public const int TooManyInvites = 26;
        /// <summary>Refused: the party already has as many bans as the server keeps.</summary>
        public const int TooManyBans = 27;
        /// <summary>Refused: the user named is not banned from the party.</summary>
        public const int BanNotFound = 28;
        /// <summary>Refused: this session (or a member of the party) is already in a matchmaking
        /// ticket, or the party already has one.</summary>
        public const int AlreadyMatchmaking = 29;
        /// <summary>Refused: no waiting ticket with that id that this session may cancel.</summary>
        public const int TicketNotFound = 30;
        /// <summary>Refused: a ticket's counts or query cannot work (MinCount 0 or above MaxCount,
        /// CountMultiple 0, a range with Min above Max, too many properties).</summary>
        public const int InvalidTicket = 31;
        /// <summary>Refused: the party has more members than the ticket's MaxCount.</summary>
        public const int PartyTooLarge = 32;
        /// <summary>Refused: the server's own rules (the game's hooks) said no; the message is
        /// the game's, for the player.</summary>
        public const int Denied = 33;
        /// <summary>Refused: the server's own rules failed on this command; nothing changed, and
        /// trying again later may work.</summary>
        public const int HookFailed = 34;
        /// <summary>Refused: the party lives on a cluster node this node cannot reach now; trying
        /// again later may work.</summary>
        public const int Unavailable = 35;
        /// <summary>Refused: the party's ready check is already running (one at a time).</summary>
        public const int ReadyCheckRunning = 36;
        /// <summary>Refused: no ready check runs, or not the one the answer names.</summary>
        public const int NoReadyCheck = 37;
        /// <summary>Refused: the running ready check did not ask this member (seated after it began).</summary>
        public const int NotAsked = 38;
        /// <summary>Refused: this session already mutes the most members of the party (64).</summary>
        public const int TooManyMutes = 39;
        /// <summary>Refused: the block list would pass its most users (512).</summary>
        public const int TooManyBlocks = 40;
        /// <summary>Refused: this session blocked that user (an invite of them); unblock them first.
        /// Never says that someone else blocked this session.</summary>
        public const int Blocked = 41;
    }

    /// <summary>The <see cref="PartyEvent.Reason"/> codes (the C ABI's <c>PL_LEAVE_*</c>,
    /// <c>PL_REQUEST_GONE_*</c>, <c>PL_REJECT_*</c>, <c>PL_INVITE_GONE_*</c>, <c>PL_TICKET_CANCEL_*</c>).</summary>
    public static class Reasons
    {
        /// <summary>MemberLeft: the member left by itself.</summary>
        public const int LeaveLeft = 0;
        /// <summary>MemberLeft: the leader kicked the member.</summary>
        public const int LeaveKicked = 1;
        /// <summary>MemberLeft: the member's session ended (it quit, or its grace window ran out).</summary>
        public const int LeaveSessionEnded = 2;
        /// <summary>MemberLeft: the leader banned the member.</summary>
        public const int LeaveBanned = 3;
        /// <summary>JoinRequestGone: the requester withdrew it.</summary>
        public const int RequestGoneCancelled = 0;
        /// <summary>JoinRequestGone: it waited too long.</summary>
        public const int RequestGoneExpired = 1;
        /// <summary>JoinRequestGone: the requester's session ended.</summary>
        public const int RequestGoneSessionEnded = 2;
        /// <summary>JoinRejected: the leader turned it down.</summary>
        public const int RejectRejected = 0;
        /// <summary>JoinRejected: the party closed.</summary>
        public const int RejectPartyClosed = 1;
        /// <summary>JoinRejected: it waited too long.</summary>
        public const int RejectExpired = 2;
        /// <summary>InviteGone: taken back.</summary>
        public const int InviteGoneRevoked = 0;
        /// <summary>InviteGone: the party closed.</summary>
        public const int InviteGonePartyClosed = 1;
        /// <summary>InviteGone: it ran out.</summary>
        public const int InviteGoneExpired = 2;
        /// <summary>InviteGone: this user was banned from the party.</summary>
        public const int InviteGoneBanned = 3;
        /// <summary>InviteGone: used or declined, maybe by another session of this user.</summary>
        public const int InviteGoneAnswered = 4;
        /// <summary>TicketCancelled: by its submitter or the party's leader.</summary>
        public const int TicketCancelCancelled = 0;
        /// <summary>TicketCancelled: the party's members changed.</summary>
        public const int TicketCancelMembersChanged = 1;
        /// <summary>TicketCancelled: the party closed.</summary>
        public const int TicketCancelPartyClosed = 2;
        /// <summary>TicketCancelled: the submitter's session ended.</summary>
        public const int TicketCancelSessionEnded = 3;
        /// <summary>TicketCancelled: a cluster node that held it was lost.</summary>
        public const int TicketCancelNodeLost = 4;
        /// <summary>ReadyCheckEnded: every member asked was ready.</summary>
        public const int ReadyCheckAllReady = 0;
        /// <summary>ReadyCheckEnded: its time ran out first.</summary>
        public const int ReadyCheckTimedOut = 1;
        /// <summary>ReadyCheckEnded: the leader cancelled it.</summary>
        public const int ReadyCheckCancelled = 2;
    }

    /// <summary>A partyline error: a code (see <see cref="ErrorCodes"/>) and a sentence.</summary>
    public class PartylineException : Exception
    {
        /// <summary>Negative: the library's (<see cref="ErrorCodes"/>); positive: the server's refusal.</summary>
        public int Code { get; private set; }

        /// <summary>An error with its code and message.</summary>
        public PartylineException(int code, string message)
            : base(message)
        {
            Code = code;
        }
    }

    /// <summary>A party member, join requester or data sender.</summary>
    public sealed class Member
    {
        /// <summary>The user's id.</summary>
        public string UserId { get; internal set; }
        /// <summary>The name to show.</summary>
        public string Username { get; internal set; }
        /// <summary>The session's id (a UUID in text form).</summary>
        public string SessionId { get; internal set; }
        /// <summary>False while the member's connection is lost and its seat is held.</summary>
        public bool Connected { get; internal set; }
        /// <summary>What the member tells the party about itself (set for a party's
        /// members; empty elsewhere), sorted by key.</summary>
        public IDictionary<string, string> Attributes { get; internal set; }
        /// <summary>A party's member: its connection as the server measured it, as of the party's
        /// last snapshot (no event says it changed: <see cref="PartylineClient.GetParty"/> asks
        /// again); Unknown elsewhere.</summary>
        public ConnectionQuality Quality { get; internal set; }

        /// <summary>The user id.</summary>
        public override string ToString() { return UserId; }
    }

    /// <summary>A party as the server last told it.</summary>
    public sealed class Party
    {
        /// <summary>The party's id (a UUID in text form).</summary>
        public string Id { get; internal set; }
        /// <summary>Open to direct joins (otherwise the leader accepts requests).</summary>
        public bool Open { get; internal set; }
        /// <summary>Most members, leader included.</summary>
        public int MaxSize { get; internal set; }
        /// <summary>The label.</summary>
        public string Label { get; internal set; }
        /// <summary>The leader.</summary>
        public Member Leader { get; internal set; }
        /// <summary>The members in seat order.</summary>
        public Member[] Members { get; internal set; }
        /// <summary>Waiting join requests (filled for the leader).</summary>
        public Member[] JoinRequests { get; internal set; }
        /// <summary>Who may invite.</summary>
        public InvitePolicy InvitePolicy { get; internal set; }
        /// <summary>Who leads when the leader leaves or is lost.</summary>
        public LeaderPolicy LeaderPolicy { get; internal set; }
        /// <summary>The party state the leader keeps, sorted by key.</summary>
        public IDictionary<string, string> State { get; internal set; }
        /// <summary>The join code; "" when the party has none.</summary>
        public string JoinCode { get; internal set; }
        /// <summary>Whether the party is listed for search.</summary>
        public bool Listed { get; internal set; }
        /// <summary>The properties it is listed with, sorted by key.</summary>
        public IDictionary<string, string> Properties { get; internal set; }
        /// <summary>The ready check running now, with the answers so far; null when none runs.</summary>
        public ReadyCheck ReadyCheck { get; internal set; }
        /// <summary>The members this session muted here (a <see cref="PartylineClient.GetParty"/> reply
        /// shows them; empty in views of others).</summary>
        public Mute[] Muted { get; internal set; }
    }

    /// <summary>A member this session muted in a party: its party data (every op code, or
    /// <see cref="OpCodeMin"/> to <see cref="OpCodeMax"/>) does not reach this session.</summary>
    public sealed class Mute
    {
        /// <summary>The muted member's user id.</summary>
        public string UserId { get; internal set; }
        /// <summary>True: only op codes <see cref="OpCodeMin"/> to <see cref="OpCodeMax"/>; false: all.</summary>
        public bool HasOpCodes { get; internal set; }
        /// <summary>The lowest op code muted, with <see cref="HasOpCodes"/>.</summary>
        public long OpCodeMin { get; internal set; }
        /// <summary>The highest op code muted, with <see cref="HasOpCodes"/>.</summary>
        public long OpCodeMax { get; internal set; }
    }

    /// <summary>A party's ready check: whom it asked, and how each answered.</summary>
    public sealed class ReadyCheck
    {
        /// <summary>The check's id (answer under it).</summary>
        public ulong CheckId { get; internal set; }
        /// <summary>The leader's message ("" for none).</summary>
        public string Message { get; internal set; }
        /// <summary>How long it runs, in milliseconds from its start.</summary>
        public ulong TimeoutMs { get; internal set; }
        /// <summary>When it times out: Unix ms, by the server's clock.</summary>
        public ulong EndsAtMs { get; internal set; }
        /// <summary>Members asked that are ready.</summary>
        public Member[] Ready { get; internal set; }
        /// <summary>Members asked that are not ready, or left.</summary>
        public Member[] NotReady { get; internal set; }
        /// <summary>Members asked that have not answered.</summary>
        public Member[] NoAnswer { get; internal set; }
    }

    /// <summary>A followed user's session that is online.</summary>
    public sealed class UserStatus
    {
        /// <summary>The session.</summary>
        public Member Member { get; internal set; }
        /// <summary>Its status text ("" for none).</summary>
        public string Status { get; internal set; }
    }

    /// <summary>A pending invite, as the invitee sees it.</summary>
    public sealed class PartyInvite
    {
        /// <summary>The party invited to.</summary>
        public string PartyId { get; internal set; }
        /// <summary>Who invited.</summary>
        public Member Inviter { get; internal set; }
        /// <summary>Members when invited, leader included.</summary>
        public int MemberCount { get; internal set; }
        /// <summary>Most members, leader included.</summary>
        public int MaxSize { get; internal set; }
        /// <summary>Whether the party was open when invited (the invite seats its user in a closed one too).</summary>
        public bool Open { get; internal set; }
        /// <summary>The party's label when invited.</summary>
        public string Label { get; internal set; }
        /// <summary>The party's leader when invited.</summary>
        public Member Leader { get; internal set; }
        /// <summary>When the invite runs out: Unix milliseconds, by the server's clock.</summary>
        public ulong ExpiresAtMs { get; internal set; }
    }

    /// <summary>One ban of a party.</summary>
    public sealed class PartyBan
    {
        /// <summary>The banned user.</summary>
        public string UserId { get; internal set; }
        /// <summary>When the ban ends: Unix milliseconds, by the server's clock; 0 for the party's life.</summary>
        public ulong UntilMs { get; internal set; }
    }

    /// <summary>A listed party, as a search finds it.</summary>
    public sealed class ListedParty
    {
        /// <summary>The party's id, to join with.</summary>
        public string Id { get; internal set; }
        /// <summary>Members now, leader included.</summary>
        public int MemberCount { get; internal set; }
        /// <summary>Most members, leader included.</summary>
        public int MaxSize { get; internal set; }
        /// <summary>Whether joins are seated at once.</summary>
        public bool Open { get; internal set; }
        /// <summary>The party's label.</summary>
        public string Label { get; internal set; }
        /// <summary>The properties the leader listed it with.</summary>
        public IDictionary<string, string> Properties { get; internal set; }
    }

    /// <summary>One page of a party search.</summary>
    public sealed class SearchPage
    {
        /// <summary>The parties found, in listing order.</summary>
        public ListedParty[] Parties { get; internal set; }
        /// <summary>Pass as the cursor for the next page; 0 when this was the last.</summary>
        public ulong NextCursor { get; internal set; }
    }

    /// <summary>An inclusive range of integers, for a ticket's query.</summary>
    public sealed class NumberRange
    {
        /// <summary>Lowest allowed.</summary>
        public long Min;
        /// <summary>Highest allowed.</summary>
        public long Max;

        /// <summary>The range [min, max].</summary>
        public NumberRange(long min, long max)
        {
            Min = min;
            Max = max;
        }
    }

    /// <summary>One member's own properties in a ticket, carried to the match (they win over the ticket's).</summary>
    public sealed class MemberProperties
    {
        /// <summary>Whose: a user in the ticket's party (or the submitter).</summary>
        public string UserId;
        /// <summary>String properties (null: none).</summary>
        public IDictionary<string, string> Strings;
        /// <summary>Integer properties (null: none); scale fractions yourself (12.5 as 1250).</summary>
        public IDictionary<string, long> Numbers;
    }

    /// <summary>A matchmaking ticket, for <see cref="PartylineClient.SubmitTicket"/>. Null maps and lists are empty.</summary>
    public sealed class TicketRequest
    {
        /// <summary>Null for a solo ticket; a party's id for a ticket of the whole party (leader only).</summary>
        public string PartyId;
        /// <summary>Fewest players in the match, this ticket's included (at least 1).</summary>
        public int MinCount;
        /// <summary>Most players in the match.</summary>
        public int MaxCount;
        /// <summary>The match's player count must be a multiple of this: 1 (the default) for any; 0 is refused.</summary>
        public int CountMultiple = 1;
        /// <summary>A lower minimum once the ticket has waited the server's relax time; 0: none.</summary>
        public int RelaxedMinCount;
        /// <summary>The ticket's string properties, which other tickets' queries test.</summary>
        public IDictionary<string, string> Strings;
        /// <summary>The ticket's integer properties, which other tickets' queries test.</summary>
        public IDictionary<string, long> Numbers;
        /// <summary>Query: every other ticket in the match must have each of these string properties.</summary>
        public IDictionary<string, string> QueryStrings;
        /// <summary>Query: every other ticket's number for each key must lie in its range.</summary>
        public IDictionary<string, NumberRange> QueryRanges;
        /// <summary>Per member properties (members not listed have none).</summary>
        public IList<MemberProperties> Members;
    }

    /// <summary>One player of a match.</summary>
    public sealed class MatchedPlayer
    {
        /// <summary>Who (<see cref="Partyline.Member.Connected"/> is not tracked here and is always true).</summary>
        public Member Member { get; internal set; }
        /// <summary>The party it came with; null for a solo ticket.</summary>
        public string PartyId { get; internal set; }
        /// <summary>Its ticket's string properties, then its own (its own win), sorted by key.</summary>
        public IDictionary<string, string> Strings { get; internal set; }
        /// <summary>Its ticket's integer properties, then its own, sorted by key.</summary>
        public IDictionary<string, long> Numbers { get; internal set; }
    }

    /// <summary>A match, as every player of it is told.</summary>
    public sealed class MatchFound
    {
        /// <summary>The match's id (a UUID in text form).</summary>
        public string MatchId { get; internal set; }
        /// <summary>This session's ticket that was matched.</summary>
        public ulong TicketId { get; internal set; }
        /// <summary>Every player, ticket by ticket, oldest ticket first.</summary>
        public MatchedPlayer[] Players { get; internal set; }
        /// <summary>For the game server, which verifies it with the shared secret (PROTOCOL.md, "Match token").</summary>
        public string Token { get; internal set; }
        /// <summary>When <see cref="Token"/> stops being valid: Unix seconds, by the server's clock.</summary>
        public ulong TokenExpiresAt { get; internal set; }
    }

    /// <summary>What <see cref="PartylineClient.JoinParty"/> answered.</summary>
    public sealed class JoinResult
    {
        /// <summary>The party asked for.</summary>
        public string PartyId { get; internal set; }
        /// <summary>True when the party is closed and the request waits for its leader
        /// (<see cref="EventKind.PartyJoined"/> or <see cref="EventKind.JoinRejected"/> follows).</summary>
        public bool Queued { get; internal set; }
        /// <summary>The party joined, or null when <see cref="Queued"/>.</summary>
        public Party Party { get; internal set; }
    }

    /// <summary>One event, copied out of the native library (safe to keep).
    /// Which properties are set depends on <see cref="Kind"/>.</summary>
    public sealed class PartyEvent
    {
        /// <summary>What happened.</summary>
        public EventKind Kind { get; internal set; }
        /// <summary>0, or an error code (disconnects, refused datagrams).</summary>
        public int ErrorCode { get; internal set; }
        /// <summary>Why, when <see cref="ErrorCode"/> is not 0.</summary>
        public string ErrorMessage { get; internal set; }
        /// <summary>The party concerned.</summary>
        public string PartyId { get; internal set; }
        /// <summary>This session's id (Connected, SessionLost).</summary>
        public string SessionId { get; internal set; }
        /// <summary>The member the event is about (joined, left, new leader, requester, sender...).</summary>
        public Member Member { get; internal set; }
        /// <summary>A reason code; see each <see cref="EventKind"/>.</summary>
        public int Reason { get; internal set; }
        /// <summary>The party's state (PartyJoined, PartyUpdated, PartySynced), else null.</summary>
        public Party Party { get; internal set; }
        /// <summary>Join requests (JoinRequests), else empty.</summary>
        public Member[] Requests { get; internal set; }
        /// <summary>Data: the sender's op code.</summary>
        public long OpCode { get; internal set; }
        /// <summary>Data: the payload (a copy).</summary>
        public byte[] Data { get; internal set; }
        /// <summary>Data: true when it came on the reliable stream.</summary>
        public bool Reliable { get; internal set; }
        /// <summary>StatusOnline, StatusChanged: the status text of <see cref="Member"/>.</summary>
        public string Status { get; internal set; }
        /// <summary>Invited: the invite, else null.</summary>
        public PartyInvite Invite { get; internal set; }
        /// <summary>PartyStateChanged: the party state (events with a <see cref="Party"/> carry it too).</summary>
        public IDictionary<string, string> State { get; internal set; }
        /// <summary>MemberAttributesChanged: all of <see cref="Member"/>'s attributes (empty for other kinds).</summary>
        public IDictionary<string, string> Attributes { get; internal set; }
        /// <summary>JoinCodeChanged: the code ("" when removed).</summary>
        public string JoinCode { get; internal set; }
        /// <summary>ListingChanged: whether the party is listed now.</summary>
        public bool Listed { get; internal set; }
        /// <summary>ListingChanged: its listing properties.</summary>
        public IDictionary<string, string> Properties { get; internal set; }
        /// <summary>Banned: when the ban ends (Unix ms, server clock); 0 for the party's life.</summary>
        public ulong UntilMs { get; internal set; }
        /// <summary>TicketStarted, TicketCancelled, Matched: the ticket.</summary>
        public ulong TicketId { get; internal set; }
        /// <summary>Matched: the match, else null.</summary>
        public MatchFound Match { get; internal set; }
        /// <summary>ReadyCheckStarted, ReadyCheckEnded: the check (its lists), else null.</summary>
        public ReadyCheck ReadyCheck { get; internal set; }
        /// <summary>The ready check events: the check's id.</summary>
        public ulong CheckId { get; internal set; }
        /// <summary>ReadyCheckAnswered: <see cref="Member"/>'s answer now.</summary>
        public bool Ready { get; internal set; }
        /// <summary>BlocksChanged, and the reply of Block, Unblock and ListBlocks: this session's block
        /// list now (sorted).</summary>
        public string[] Blocked { get; internal set; }
    }

    /// <summary>How to connect: a server, a certificate to trust, and who to be.</summary>
    public sealed class ConnectOptions
    {
        /// <summary>"host:port", e.g. "127.0.0.1:7350".</summary>
        public string Server;
        /// <summary>The name the server's certificate carries; null for "localhost".</summary>
        public string ServerName;
        /// <summary>A PEM file with the certificate to trust (or set <see cref="CertPem"/>, not both:
        /// Connect throws <see cref="ErrorCodes.InvalidArgument"/>).</summary>
        public string CertPemPath;
        /// <summary>PEM text in memory (e.g. a TextAsset's bytes), when <see cref="CertPemPath"/> is null.</summary>
        public byte[] CertPem;
        /// <summary>A signed token from the game's backend; when null, the dev identity below is used.</summary>
        public string Token;
        /// <summary>Dev identity: the user id.</summary>
        public string UserId;
        /// <summary>Dev identity: the name to show (defaults to the user id).</summary>
        public string Username;
    }

    /// <summary>One session with a partyline server. Call <see cref="Poll"/> once per
    /// frame; <see cref="Dispose"/> when done. Commands may be called from any thread,
    /// but replies and events arrive on the thread that polls (threads: see the top of
    /// this file).</summary>
    public sealed class PartylineClient : IDisposable
    {
        readonly ClientHandle handle;
        readonly Dictionary<long, Pending> pending = new Dictionary<long, Pending>();
        readonly TaskCompletionSource<Member> connected = new TaskCompletionSource<Member>();
        bool disposed;

        /// <summary>Every event except replies (those complete the commands' Tasks).</summary>
        public event Action<PartyEvent> OnEvent;
        /// <summary>The session is up.</summary>
        public event Action<PartyEvent> OnConnected;
        /// <summary>The session is over; nothing follows.</summary>
        public event Action<PartyEvent> OnDisconnected;
        /// <summary>This session got a seat in a closed party.</summary>
        public event Action<PartyEvent> OnPartyJoined;
        /// <summary>Someone took a seat.</summary>
        public event Action<PartyEvent> OnMemberJoined;
        /// <summary>Someone left (or was kicked).</summary>
        public event Action<PartyEvent> OnMemberLeft;
        /// <summary>The leader changed.</summary>
        public event Action<PartyEvent> OnLeaderChanged;
        /// <summary>To the leader: someone asks to join.</summary>
        public event Action<PartyEvent> OnJoinRequested;
        /// <summary>This session's join request was turned down.</summary>
        public event Action<PartyEvent> OnJoinRejected;
        /// <summary>This session was kicked.</summary>
        public event Action<PartyEvent> OnKicked;
        /// <summary>The party was closed by its leader.</summary>
        public event Action<PartyEvent> OnPartyClosed;
        /// <summary>The party's settings changed.</summary>
        public event Action<PartyEvent> OnPartyUpdated;
        /// <summary>Party data arrived (datagram or reliable).</summary>
        public event Action<PartyEvent> OnData;
        /// <summary>A followed user's session came online.</summary>
        public event Action<PartyEvent> OnStatusOnline;
        /// <summary>A followed user's session changed its status text.</summary>
        public event Action<PartyEvent> OnStatusChanged;
        /// <summary>A followed user's session went offline.</summary>
        public event Action<PartyEvent> OnStatusOffline;
        /// <summary>An invite arrived.</summary>
        public event Action<PartyEvent> OnInvited;
        /// <summary>An invite to this user is gone.</summary>
        public event Action<PartyEvent> OnInviteGone;
        /// <summary>To the inviter: an invite was turned down.</summary>
        public event Action<PartyEvent> OnInviteDeclined;
        /// <summary>The party state changed.</summary>
        public event Action<PartyEvent> OnPartyStateChanged;
        /// <summary>A member's attributes changed.</summary>
        public event Action<PartyEvent> OnMemberAttributesChanged;
        /// <summary>The party's join code changed.</summary>
        public event Action<PartyEvent> OnJoinCodeChanged;
        /// <summary>The party was listed, relisted or unlisted.</summary>
        public event Action<PartyEvent> OnListingChanged;
        /// <summary>This user was banned from a party.</summary>
        public event Action<PartyEvent> OnBanned;
        /// <summary>A matchmaking ticket this session is in waits for a match.</summary>
        public event Action<PartyEvent> OnTicketStarted;
        /// <summary>A ticket this session was in stopped without a match.</summary>
        public event Action<PartyEvent> OnTicketCancelled;
        /// <summary>A match was made: <see cref="PartyEvent.Match"/>.</summary>
        public event Action<PartyEvent> OnMatched;
        /// <summary>The leader started a ready check.</summary>
        public event Action<PartyEvent> OnReadyCheckStarted;
        /// <summary>A member answered the ready check (or left).</summary>
        public event Action<PartyEvent> OnReadyCheckAnswered;
        /// <summary>The ready check ended.</summary>
        public event Action<PartyEvent> OnReadyCheckEnded;
        /// <summary>The game's server set this session's block list: <see cref="PartyEvent.Blocked"/>.</summary>
        public event Action<PartyEvent> OnBlocksChanged;

        PartylineClient(ClientHandle handle)
        {
            this.handle = handle;
        }

        /// <summary>The native library's version, e.g. "0.1.0".</summary>
        public static string Version
        {
            get { return Native.ReadString(Native.pl_version()); }
        }

        /// <summary>Starts connecting with a dev identity and returns at once;
        /// <see cref="WhenConnected"/> (and <see cref="OnConnected"/>) tell the outcome.</summary>
        public static PartylineClient Connect(string server, string certPemPath, string userId, string username)
        {
            return Connect(new ConnectOptions { Server = server, CertPemPath = certPemPath, UserId = userId, Username = username });
        }

        /// <summary>Starts connecting with a token from the game's backend.</summary>
        public static PartylineClient ConnectWithToken(string server, string certPemPath, string token)
        {
            return Connect(new ConnectOptions { Server = server, CertPemPath = certPemPath, Token = token });
        }

        /// <summary>Starts connecting with the given options (PEM bytes, token, server name...).
        /// Throws <see cref="PartylineException"/> on a bad argument.</summary>
        public static PartylineClient Connect(ConnectOptions options)
        {
            if (options == null) throw new ArgumentNullException("options");
            byte[] pem = options.CertPem;
            ClientHandle handle = Native.pl_client_connect(
                Native.Utf8(options.Server), Native.Utf8(options.ServerName), Native.Utf8(options.CertPemPath),
                pem, new UIntPtr((uint)(pem == null ? 0 : pem.Length)),
                Native.Utf8(options.UserId), Native.Utf8(options.Username), Native.Utf8(options.Token));
            if (handle.IsInvalid)
            {
                var error = new PartylineException(Native.pl_last_error_code(), Native.LastError());
                handle.Dispose();
                throw error;
            }
            return new PartylineClient(handle);
        }

        /// <summary>Completes with this session's member when connected; faults if the
        /// connection fails. Completed by <see cref="Poll"/>.</summary>
        public Task<Member> WhenConnected { get { return connected.Task; } }

        /// <summary>This session, once connected (null before).</summary>
        public Member Me { get; private set; }

        /// <summary>This session's id, once connected (changes on <see cref="EventKind.SessionLost"/>).</summary>
        public string SessionId { get; private set; }

        /// <summary>Delivers everything that arrived: completes command Tasks and raises
        /// events, on this thread. Call it once per frame (e.g. from Update()).
        /// Returns how many events it handled.</summary>
        public int Poll()
        {
            int handled = 0;
            while (!disposed)
            {
                Native.PlEvent raw;
                // Sized: a newer library never writes past this wrapper's PlEvent.
                int got = Native.pl_client_poll_sized(handle, out raw, Native.EventSize);
                if (got < 0) throw new PartylineException(got, Native.LastError());
                if (got == 0) break;
                handled++;
                // Everything raw points to is valid only until this thread polls again:
                // each path below copies what it keeps before looping.
                if (raw.kind == (int)EventKind.Reply)
                {
                    Pending waiting = null;
                    lock (pending)
                    {
                        if (pending.TryGetValue(raw.request_id, out waiting)) pending.Remove(raw.request_id);
                    }
                    if (waiting != null) waiting.Complete(raw);
                    continue;
                }
                Dispatch(Native.Copy(raw));
            }
            return handled;
        }

        void Dispatch(PartyEvent e)
        {
            switch (e.Kind)
            {
                case EventKind.Connected:
                    Me = e.Member;
                    SessionId = e.SessionId;
                    connected.TrySetResult(e.Member);
                    break;
                case EventKind.SessionLost:
                    SessionId = e.SessionId;
                    if (Me != null) Me.SessionId = e.SessionId;
                    break;
                case EventKind.Disconnected:
                    var gone = new PartylineException(e.ErrorCode, e.ErrorMessage ?? "disconnected");
                    connected.TrySetException(gone);
                    FailPending(gone);
                    break;
            }
            Raise(OnEvent, e);
            switch (e.Kind)
            {
                case EventKind.Connected: Raise(OnConnected, e); break;
                case EventKind.Disconnected: Raise(OnDisconnected, e); break;
                case EventKind.PartyJoined: Raise(OnPartyJoined, e); break;
                case EventKind.MemberJoined: Raise(OnMemberJoined, e); break;
                case EventKind.MemberLeft: Raise(OnMemberLeft, e); break;
                case EventKind.LeaderChanged: Raise(OnLeaderChanged, e); break;
                case EventKind.JoinRequested: Raise(OnJoinRequested, e); break;
                case EventKind.JoinRejected: Raise(OnJoinRejected, e); break;
                case EventKind.Kicked: Raise(OnKicked, e); break;
                case EventKind.PartyClosed: Raise(OnPartyClosed, e); break;
                case EventKind.PartyUpdated: Raise(OnPartyUpdated, e); break;
                case EventKind.Data: Raise(OnData, e); break;
                case EventKind.StatusOnline: Raise(OnStatusOnline, e); break;
                case EventKind.StatusChanged: Raise(OnStatusChanged, e); break;
                case EventKind.StatusOffline: Raise(OnStatusOffline, e); break;
                case EventKind.Invited: Raise(OnInvited, e); break;
                case EventKind.InviteGone: Raise(OnInviteGone, e); break;
                case EventKind.InviteDeclined: Raise(OnInviteDeclined, e); break;
                case EventKind.PartyStateChanged: Raise(OnPartyStateChanged, e); break;
                case EventKind.MemberAttributesChanged: Raise(OnMemberAttributesChanged, e); break;
                case EventKind.JoinCodeChanged: Raise(OnJoinCodeChanged, e); break;
                case EventKind.ListingChanged: Raise(OnListingChanged, e); break;
                case EventKind.Banned: Raise(OnBanned, e); break;
                case EventKind.TicketStarted: Raise(OnTicketStarted, e); break;
                case EventKind.TicketCancelled: Raise(OnTicketCancelled, e); break;
                case EventKind.Matched: Raise(OnMatched, e); break;
                case EventKind.ReadyCheckStarted: Raise(OnReadyCheckStarted, e); break;
                case EventKind.ReadyCheckAnswered: Raise(OnReadyCheckAnswered, e); break;
                case EventKind.ReadyCheckEnded: Raise(OnReadyCheckEnded, e); break;
                case EventKind.BlocksChanged: Raise(OnBlocksChanged, e); break;
            }
        }

        static void Raise(Action<PartyEvent> handler, PartyEvent e)
        {
            if (handler != null) handler(e);
        }

        // ---- commands -------------------------------------------------------

        /// <summary>Creates a party led by this session.</summary>
        public Task<Party> CreateParty(bool open, int maxSize, string label)
        {
            if (maxSize < 0 || maxSize > ushort.MaxValue) throw new ArgumentOutOfRangeException("maxSize");
            byte[] text = Native.Utf8(label);
            return Start(() => Native.pl_create_party(Handle(), open, (ushort)maxSize, text), PartyReply);
        }

        /// <summary>Creates a party led by this session, with who may invite and the
        /// party state to start with (null: none).</summary>
        public Task<Party> CreateParty(bool open, int maxSize, string label, InvitePolicy invitePolicy,
            IDictionary<string, string> state = null)
        {
            if (maxSize < 0 || maxSize > ushort.MaxValue) throw new ArgumentOutOfRangeException("maxSize");
            byte[] text = Native.Utf8(label);
            using (var args = new NativeArgs())
            {
                Native.PlKeyValue[] pairs = args.Pairs(state);
                return Start(() => Native.pl_create_party_ex(Handle(), open, (ushort)maxSize, text, (int)invitePolicy,
                    pairs, Native.Size(pairs.Length)), PartyReply);
            }
        }

        /// <summary>Joins an open party, or asks a closed party's leader (then
        /// <see cref="JoinResult.Queued"/> is set). An invite seats this user at once, closed or not.</summary>
        public Task<JoinResult> JoinParty(string partyId)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_join_party(Handle(), party), JoinReply);
        }

        /// <summary>Joins (or asks to join) the party with this join code, as <see cref="JoinParty"/>
        /// would. Case, spaces and dashes do not matter.</summary>
        public Task<JoinResult> JoinByCode(string code)
        {
            byte[] text = Native.Utf8(code);
            return Start(() => Native.pl_join_by_code(Handle(), text), JoinReply);
        }

        /// <summary>Leaves a party, or withdraws this session's join request.</summary>
        public Task LeaveParty(string partyId)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_leave_party(Handle(), party), Done);
        }

        /// <summary>Leader only: seats a user whose join request waits.</summary>
        public Task Accept(string partyId, string userId)
        {
            byte[] party = Native.Utf8(partyId), user = Native.Utf8(userId);
            return Start(() => Native.pl_accept(Handle(), party, user), Done);
        }

        /// <summary>Leader only: turns a waiting join request down.</summary>
        public Task Reject(string partyId, string userId)
        {
            byte[] party = Native.Utf8(partyId), user = Native.Utf8(userId);
            return Start(() => Native.pl_reject(Handle(), party, user), Done);
        }

        /// <summary>Leader only: takes a member's seat away.</summary>
        public Task Kick(string partyId, string userId)
        {
            byte[] party = Native.Utf8(partyId), user = Native.Utf8(userId);
            return Start(() => Native.pl_kick(Handle(), party, user), Done);
        }

        /// <summary>Leader only: hands leadership to another member.</summary>
        public Task Promote(string partyId, string userId)
        {
            byte[] party = Native.Utf8(partyId), user = Native.Utf8(userId);
            return Start(() => Native.pl_promote(Handle(), party, user), Done);
        }

        /// <summary>Leader only: ends the party for everyone.</summary>
        public Task CloseParty(string partyId)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_close_party(Handle(), party), Done);
        }

        /// <summary>Leader only: changes settings; null keeps a setting as it is.</summary>
        public Task<Party> UpdateParty(string partyId, bool? open = null, int? maxSize = null, string label = null,
            InvitePolicy? invitePolicy = null)
        {
            if (maxSize.HasValue && (maxSize.Value < 0 || maxSize.Value > ushort.MaxValue))
                throw new ArgumentOutOfRangeException("maxSize");
            byte[] party = Native.Utf8(partyId), text = Native.Utf8(label);
            int openArg = open.HasValue ? (open.Value ? 1 : 0) : -1;
            int sizeArg = maxSize.HasValue ? maxSize.Value : -1;
            int policyArg = invitePolicy.HasValue ? (int)invitePolicy.Value : -1;
            return Start(() => Native.pl_update_party_ex(Handle(), party, openArg, sizeArg, text, policyArg), PartyReply);
        }

        /// <summary>Creates a party led by this session whose next leader is chosen by
        /// <paramref name="leaderPolicy"/>, with who may invite and the party state to start
        /// with (null: none).</summary>
        public Task<Party> CreateParty(bool open, int maxSize, string label, InvitePolicy invitePolicy,
            LeaderPolicy leaderPolicy, IDictionary<string, string> state = null)
        {
            if (maxSize < 0 || maxSize > ushort.MaxValue) throw new ArgumentOutOfRangeException("maxSize");
            byte[] text = Native.Utf8(label);
            using (var args = new NativeArgs())
            {
                Native.PlKeyValue[] pairs = args.Pairs(state);
                return Start(() => Native.pl_create_party_ex2(Handle(), open, (ushort)maxSize, text, (int)invitePolicy,
                    pairs, Native.Size(pairs.Length), (int)leaderPolicy), PartyReply);
            }
        }

        /// <summary>Leader only: changes who leads when the leader leaves or is lost; every
        /// member hears <see cref="EventKind.PartyUpdated"/>.</summary>
        public Task<Party> SetLeaderPolicy(string partyId, LeaderPolicy leaderPolicy)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_set_leader_policy(Handle(), party, (int)leaderPolicy), PartyReply);
        }

        /// <summary>The party as the server has it now (members only).</summary>
        public Task<Party> GetParty(string partyId)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_get_party(Handle(), party), PartyReply);
        }

        /// <summary>Leader only: the waiting join requests.</summary>
        public Task<Member[]> ListJoinRequests(string partyId)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_list_join_requests(Handle(), party),
                raw => Native.CopyMembers(raw.requests, raw.request_count));
        }

        /// <summary>Sets the status text this session's followers see (null or "": none), and
        /// whether it shows as online at all (false appears offline).</summary>
        public Task SetStatus(string status, bool visible = true)
        {
            byte[] text = Native.Utf8(status);
            return Start(() => Native.pl_set_status(Handle(), text, visible), Done);
        }

        /// <summary>Follows users: <see cref="EventKind.StatusOnline"/>, StatusChanged and StatusOffline
        /// follow for their sessions. Completes with their sessions online now.</summary>
        public Task<UserStatus[]> Follow(params string[] userIds)
        {
            using (var args = new NativeArgs())
            {
                IntPtr[] ids = args.Strings(userIds);
                return Start(() => Native.pl_follow(Handle(), ids, Native.Size(ids.Length)),
                    raw => Native.CopyArray<Native.PlUserStatus, UserStatus>(raw.statuses, raw.status_count, s => new UserStatus
                    {
                        Member = Native.CopyMember(s.member),
                        Status = Native.ReadString(s.status),
                    }));
            }
        }

        /// <summary>Stops following users (ids not followed are ignored).</summary>
        public Task Unfollow(params string[] userIds)
        {
            using (var args = new NativeArgs())
            {
                IntPtr[] ids = args.Strings(userIds);
                return Start(() => Native.pl_unfollow(Handle(), ids, Native.Size(ids.Length)), Done);
            }
        }

        /// <summary>Invites a user: each of their sessions gets <see cref="EventKind.Invited"/>. The
        /// leader may invite; any member too under <see cref="InvitePolicy.AnyMember"/>.</summary>
        public Task Invite(string partyId, string userId)
        {
            byte[] party = Native.Utf8(partyId), user = Native.Utf8(userId);
            return Start(() => Native.pl_invite(Handle(), party, user), Done);
        }

        /// <summary>Turns down an invite to this user; the inviter gets <see cref="EventKind.InviteDeclined"/>.</summary>
        public Task DeclineInvite(string partyId)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_decline_invite(Handle(), party), Done);
        }

        /// <summary>Leader only: takes back a pending invite.</summary>
        public Task RevokeInvite(string partyId, string userId)
        {
            byte[] party = Native.Utf8(partyId), user = Native.Utf8(userId);
            return Start(() => Native.pl_revoke_invite(Handle(), party, user), Done);
        }

        /// <summary>This user's pending invites, oldest first.</summary>
        public Task<PartyInvite[]> ListInvites()
        {
            return Start(() => Native.pl_list_invites(Handle()),
                raw => Native.CopyArray<Native.PlInvite, PartyInvite>(raw.invites, raw.invite_count, Native.CopyInvite));
        }

        /// <summary>Leader only: a new join code for the party (the old one stops working).</summary>
        public Task<string> CreateJoinCode(string partyId)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_create_join_code(Handle(), party), raw => Native.ReadString(raw.join_code));
        }

        /// <summary>Leader only: removes the party's join code.</summary>
        public Task ClearJoinCode(string partyId)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_clear_join_code(Handle(), party), Done);
        }

        /// <summary>Leader only: lists the party for search with these properties (or changes them).</summary>
        public Task ListParty(string partyId, IDictionary<string, string> properties)
        {
            byte[] party = Native.Utf8(partyId);
            using (var args = new NativeArgs())
            {
                Native.PlKeyValue[] pairs = args.Pairs(properties);
                return Start(() => Native.pl_list_party(Handle(), party, pairs, Native.Size(pairs.Length)), Done);
            }
        }

        /// <summary>Leader only: takes the party out of search.</summary>
        public Task UnlistParty(string partyId)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_unlist_party(Handle(), party), Done);
        }

        /// <summary>Searches listed parties, one page. Every filter must hold: each of
        /// <paramref name="properties"/> (null: any), <paramref name="openOnly"/>, and
        /// <paramref name="minFreeSeats"/>. <paramref name="limit"/> is 1 to the server's most
        /// (100 by default); <paramref name="cursor"/> is 0, or the last page's NextCursor.</summary>
        public Task<SearchPage> SearchParties(IDictionary<string, string> properties = null, bool openOnly = false,
            int minFreeSeats = 0, int limit = 20, ulong cursor = 0)
        {
            if (minFreeSeats < 0 || minFreeSeats > ushort.MaxValue) throw new ArgumentOutOfRangeException("minFreeSeats");
            if (limit < 0 || limit > ushort.MaxValue) throw new ArgumentOutOfRangeException("limit");
            using (var args = new NativeArgs())
            {
                Native.PlKeyValue[] pairs = args.Pairs(properties);
                return Start(() => Native.pl_search_parties(Handle(), openOnly, (ushort)minFreeSeats, pairs,
                    Native.Size(pairs.Length), (ushort)limit, cursor), raw => new SearchPage
                    {
                        Parties = Native.CopyArray<Native.PlListedParty, ListedParty>(raw.parties, raw.party_count, p => new ListedParty
                        {
                            Id = Native.ReadString(p.party_id),
                            MemberCount = p.member_count,
                            MaxSize = p.max_size,
                            Open = p.open,
                            Label = Native.ReadString(p.label),
                            Properties = Native.CopyKeyValues(p.properties),
                        }),
                        NextCursor = raw.next_cursor,
                    });
            }
        }

        /// <summary>Leader only: removes the keys in <paramref name="remove"/>, then sets those in
        /// <paramref name="set"/>, in the party state. Members get <see cref="EventKind.PartyStateChanged"/>.</summary>
        public Task SetPartyState(string partyId, IDictionary<string, string> set, IEnumerable<string> remove = null)
        {
            byte[] party = Native.Utf8(partyId);
            using (var args = new NativeArgs())
            {
                Native.PlKeyValue[] pairs = args.Pairs(set);
                IntPtr[] keys = args.Strings(remove);
                return Start(() => Native.pl_set_party_state(Handle(), party, pairs, Native.Size(pairs.Length),
                    keys, Native.Size(keys.Length)), Done);
            }
        }

        /// <summary>Removes the keys in <paramref name="remove"/>, then sets those in <paramref name="set"/>,
        /// in this session's own attributes in the party. Every member gets
        /// <see cref="EventKind.MemberAttributesChanged"/>.</summary>
        public Task SetMemberAttributes(string partyId, IDictionary<string, string> set, IEnumerable<string> remove = null)
        {
            byte[] party = Native.Utf8(partyId);
            using (var args = new NativeArgs())
            {
                Native.PlKeyValue[] pairs = args.Pairs(set);
                IntPtr[] keys = args.Strings(remove);
                return Start(() => Native.pl_set_member_attributes(Handle(), party, pairs, Native.Size(pairs.Length),
                    keys, Native.Size(keys.Length)), Done);
            }
        }

        /// <summary>Leader only: bans a user for <paramref name="duration"/> (null: for the party's life),
        /// taking away their seat, join request and invite.</summary>
        public Task Ban(string partyId, string userId, TimeSpan? duration = null)
        {
            if (duration.HasValue && duration.Value < TimeSpan.Zero) throw new ArgumentOutOfRangeException("duration");
            // Rounded up so that a short ban is never "0: the party's life".
            ulong ms = duration.HasValue ? (ulong)Math.Ceiling(duration.Value.TotalMilliseconds) : 0;
            byte[] party = Native.Utf8(partyId), user = Native.Utf8(userId);
            return Start(() => Native.pl_ban(Handle(), party, user, ms), Done);
        }

        /// <summary>Leader only: lifts a ban.</summary>
        public Task Unban(string partyId, string userId)
        {
            byte[] party = Native.Utf8(partyId), user = Native.Utf8(userId);
            return Start(() => Native.pl_unban(Handle(), party, user), Done);
        }

        /// <summary>Leader only: the party's bans, oldest first.</summary>
        public Task<PartyBan[]> ListBans(string partyId)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_list_bans(Handle(), party),
                raw => Native.CopyArray<Native.PlBan, PartyBan>(raw.bans, raw.ban_count, b => new PartyBan
                {
                    UserId = Native.ReadString(b.user_id),
                    UntilMs = b.until_ms,
                }));
        }

        /// <summary>Starts matchmaking: a solo ticket, or with <see cref="TicketRequest.PartyId"/> set
        /// (leader only) a ticket for the whole party. Completes with the ticket's id; every session
        /// in the ticket then gets <see cref="EventKind.TicketStarted"/>, and later
        /// <see cref="EventKind.Matched"/> or <see cref="EventKind.TicketCancelled"/>.</summary>
        public Task<ulong> SubmitTicket(TicketRequest request)
        {
            if (request == null) throw new ArgumentNullException("request");
            using (var args = new NativeArgs())
            {
                Native.PlTicketRequest ticket = args.Ticket(request);
                return Start(() => Native.pl_submit_ticket(Handle(), ref ticket), raw => raw.ticket_id);
            }
        }

        /// <summary>Stops a waiting ticket: this session's own, or its party's (leader only).</summary>
        public Task CancelTicket(ulong ticketId)
        {
            return Start(() => Native.pl_cancel_ticket(Handle(), ticketId), Done);
        }

        /// <summary>Leader only: asks every member whether it is ready, for <paramref name="timeoutMs"/>
        /// (5000 to 120000); <paramref name="message"/> (null or "" for none) is shown to them. The leader
        /// counts as ready. Members get <see cref="EventKind.ReadyCheckStarted"/>, the answers, and
        /// <see cref="EventKind.ReadyCheckEnded"/>.</summary>
        public Task StartReadyCheck(string partyId, string message, ulong timeoutMs)
        {
            byte[] party = Native.Utf8(partyId);
            byte[] text = Native.Utf8(message ?? "");
            return Start(() => Native.pl_start_ready_check(Handle(), party, text, timeoutMs), Done);
        }

        /// <summary>Answers the party's ready check <paramref name="checkId"/>, or changes the answer.</summary>
        public Task AnswerReadyCheck(string partyId, ulong checkId, bool ready)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_answer_ready_check(Handle(), party, checkId, ready), Done);
        }

        /// <summary>Leader only: ends the running ready check now.</summary>
        public Task CancelReadyCheck(string partyId)
        {
            byte[] party = Native.Utf8(partyId);
            return Start(() => Native.pl_cancel_ready_check(Handle(), party), Done);
        }

        /// <summary>Stops <paramref name="userId"/>'s party data reaching this session: every op code, or
        /// (with <paramref name="opCodeMin"/> and <paramref name="opCodeMax"/>) those between them, inclusive
        /// (a voice range, keeping game data). Muting again replaces the range; the muted member is not
        /// told.</summary>
        public Task Mute(string partyId, string userId, long? opCodeMin = null, long? opCodeMax = null)
        {
            byte[] party = Native.Utf8(partyId);
            byte[] user = Native.Utf8(userId);
            bool range = opCodeMin.HasValue || opCodeMax.HasValue;
            long min = opCodeMin ?? long.MinValue, max = opCodeMax ?? long.MaxValue;
            return Start(() => Native.pl_mute(Handle(), party, user, range, min, max), Done);
        }

        /// <summary>Lets a muted member's party data reach this session again.</summary>
        public Task Unmute(string partyId, string userId)
        {
            byte[] party = Native.Utf8(partyId);
            byte[] user = Native.Utf8(userId);
            return Start(() => Native.pl_unmute(Handle(), party, user), Done);
        }

        /// <summary>Blocks users for this session: no party data, status or invites between it and them, and
        /// a party it leads is closed to them; they are not told. Completes with the list now.</summary>
        public Task<string[]> Block(params string[] userIds)
        {
            using (var args = new NativeArgs())
            {
                IntPtr[] ids = args.Strings(userIds);
                return Start(() => Native.pl_block(Handle(), ids, Native.Size(ids.Length)), Native.CopyBlocked);
            }
        }

        /// <summary>Takes users off this session's block list; completes with the list now.</summary>
        public Task<string[]> Unblock(params string[] userIds)
        {
            using (var args = new NativeArgs())
            {
                IntPtr[] ids = args.Strings(userIds);
                return Start(() => Native.pl_unblock(Handle(), ids, Native.Size(ids.Length)), Native.CopyBlocked);
            }
        }

        /// <summary>This session's block list, however it was set.</summary>
        public Task<string[]> ListBlocks()
        {
            return Start(() => Native.pl_list_blocks(Handle()), Native.CopyBlocked);
        }

        /// <summary>Party data on the reliable stream; completes when the server took it.</summary>
        public Task SendDataReliable(string partyId, long opCode, byte[] data)
        {
            byte[] party = Native.Utf8(partyId);
            byte[] payload = data ?? new byte[0];
            return Start(() => Native.pl_send_data_reliable(Handle(), party, opCode, payload,
                new UIntPtr((uint)payload.Length)), Done);
        }

        /// <summary>Party data as one unreliable datagram, sent at once. Throws
        /// <see cref="PartylineException"/> when it cannot be sent (e.g. still connecting,
        /// or <see cref="ErrorCodes.PayloadTooLarge"/>).</summary>
        public void SendData(string partyId, long opCode, byte[] data)
        {
            byte[] party = Native.Utf8(partyId);
            byte[] payload = data ?? new byte[0];
            int result = Native.pl_send_data(Handle(), party, opCode, payload, new UIntPtr((uint)payload.Length));
            if (result != ErrorCodes.Ok) throw new PartylineException(result, Native.LastError());
        }

        /// <summary>Ends the session at once without waiting (the server removes it from its
        /// parties; the others see MemberLeft); <see cref="EventKind.Disconnected"/> follows. While
        /// connecting it cancels the connection (no Connected follows). Every call after it throws
        /// <see cref="ErrorCodes.Closed"/>. Still call <see cref="Dispose"/>.</summary>
        public void Close()
        {
            int result = Native.pl_client_close(Handle());
            if (result != ErrorCodes.Ok) throw new PartylineException(result, Native.LastError());
        }

        /// <summary>Ends the session if open, waits until the goodbye has left (at most 250 ms),
        /// and frees the native client. Tasks still waiting fault with
        /// <see cref="ErrorCodes.Closed"/>. Safe to call twice.</summary>
        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            handle.Dispose();
            FailPending(new PartylineException(ErrorCodes.Closed, "the client was disposed"));
            connected.TrySetException(new PartylineException(ErrorCodes.Closed, "the client was disposed"));
        }

        ClientHandle Handle()
        {
            if (disposed) throw new ObjectDisposedException("PartylineClient");
            return handle;
        }

        // Starts a command: a negative id throws now (with pl_last_error's message,
        // read on this thread); otherwise the reply completes the Task in Poll().
        Task<T> Start<T>(Func<long> call, Func<Native.PlEvent, T> read)
        {
            var waiting = new Pending<T>(read);
            lock (pending)
            {
                // Held across the call so a Poll() on another thread cannot see the
                // reply before its Task is registered.
                long request = call();
                if (request < 0) throw new PartylineException((int)request, Native.LastError());
                pending[request] = waiting;
            }
            return waiting.Source.Task;
        }

        static bool Done(Native.PlEvent raw) { return true; }

        static Party PartyReply(Native.PlEvent raw) { return Native.CopyParty(raw); }

        static JoinResult JoinReply(Native.PlEvent raw)
        {
            return new JoinResult
            {
                PartyId = Native.ReadString(raw.party_id),
                Queued = raw.queued,
                Party = raw.has_party ? Native.CopyParty(raw) : null,
            };
        }

        void FailPending(Exception error)
        {
            List<Pending> waiting;
            lock (pending)
            {
                waiting = new List<Pending>(pending.Values);
                pending.Clear();
            }
            foreach (var one in waiting) one.Fail(error);
        }

        abstract class Pending
        {
            internal abstract void Complete(Native.PlEvent reply);
            internal abstract void Fail(Exception error);
        }

        // A command waiting for its reply. Everything is copied out of the reply
        // before the Task completes (continuations may poll again).
        sealed class Pending<T> : Pending
        {
            internal readonly TaskCompletionSource<T> Source = new TaskCompletionSource<T>();
            readonly Func<Native.PlEvent, T> read;

            internal Pending(Func<Native.PlEvent, T> read) { this.read = read; }

            internal override void Complete(Native.PlEvent reply)
            {
                if (reply.error_code != 0)
                {
                    Fail(new PartylineException(reply.error_code, Native.ReadString(reply.error_message)));
                    return;
                }
                T value;
                try
                {
                    value = read(reply);
                }
                catch (Exception e)
                {
                    Fail(e);
                    return;
                }
                Source.TrySetResult(value);
            }

            internal override void Fail(Exception error) { Source.TrySetException(error); }
        }
    }

    /// <summary>Text and arrays handed to one native call: UTF-8 copies in unmanaged memory
    /// (the C side reads them during the call and keeps none), freed on Dispose.</summary>
    sealed class NativeArgs : IDisposable
    {
        readonly List<IntPtr> allocated = new List<IntPtr>();

        IntPtr Text(string text, string what)
        {
            if (text == null) throw new ArgumentNullException(what);
            byte[] bytes = Native.Utf8(text);
            IntPtr copy = Marshal.AllocHGlobal(bytes.Length);
            allocated.Add(copy);
            Marshal.Copy(bytes, 0, copy, bytes.Length);
            return copy;
        }

        /// <summary>The pairs of a map (null: none).</summary>
        internal Native.PlKeyValue[] Pairs(IDictionary<string, string> map)
        {
            if (map == null) return new Native.PlKeyValue[0];
            var pairs = new Native.PlKeyValue[map.Count];
            int i = 0;
            foreach (var pair in map)
            {
                pairs[i].key = Text(pair.Key, "key");
                pairs[i].value = Text(pair.Value, "value of " + pair.Key);
                i++;
            }
            return pairs;
        }

        /// <summary>A copy of <paramref name="items"/> in unmanaged memory (IntPtr.Zero when empty).</summary>
        IntPtr Array<T>(T[] items) where T : struct
        {
            if (items.Length == 0) return IntPtr.Zero;
            int size = Marshal.SizeOf(typeof(T));
            IntPtr copy = Marshal.AllocHGlobal(size * items.Length);
            allocated.Add(copy);
            for (int i = 0; i < items.Length; i++) Marshal.StructureToPtr(items[i], IntPtr.Add(copy, i * size), false);
            return copy;
        }

        /// <summary>The pairs of an integer map (null: none).</summary>
        Native.PlKeyNumber[] Numbers(IDictionary<string, long> map)
        {
            if (map == null) return new Native.PlKeyNumber[0];
            var pairs = new Native.PlKeyNumber[map.Count];
            int i = 0;
            foreach (var pair in map)
            {
                pairs[i].key = Text(pair.Key, "key");
                pairs[i].value = pair.Value;
                i++;
            }
            return pairs;
        }

        static uint Count(int count, string what)
        {
            if (count < 0) throw new ArgumentOutOfRangeException(what);
            return (uint)count;
        }

        /// <summary>A ticket as the C ABI takes it; everything it points to lives until Dispose.</summary>
        internal Native.PlTicketRequest Ticket(TicketRequest request)
        {
            var ranges = new List<Native.PlKeyRange>();
            if (request.QueryRanges != null)
                foreach (var pair in request.QueryRanges)
                {
                    if (pair.Value == null) throw new ArgumentNullException("range of " + pair.Key);
                    ranges.Add(new Native.PlKeyRange { key = Text(pair.Key, "key"), min = pair.Value.Min, max = pair.Value.Max });
                }
            var members = new List<Native.PlMemberProperties>();
            if (request.Members != null)
                foreach (var member in request.Members)
                {
                    if (member == null) throw new ArgumentNullException("member");
                    Native.PlKeyValue[] strings = Pairs(member.Strings);
                    Native.PlKeyNumber[] numbers = Numbers(member.Numbers);
                    members.Add(new Native.PlMemberProperties
                    {
                        user_id = Text(member.UserId, "UserId"),
                        strings = Array(strings),
                        string_count = Native.Size(strings.Length),
                        numbers = Array(numbers),
                        number_count = Native.Size(numbers.Length),
                    });
                }
            Native.PlKeyValue[] ticketStrings = Pairs(request.Strings), queryStrings = Pairs(request.QueryStrings);
            Native.PlKeyNumber[] ticketNumbers = Numbers(request.Numbers);
            return new Native.PlTicketRequest
            {
                party_id = request.PartyId == null ? IntPtr.Zero : Text(request.PartyId, "PartyId"),
                min_count = Count(request.MinCount, "MinCount"),
                max_count = Count(request.MaxCount, "MaxCount"),
                count_multiple = Count(request.CountMultiple, "CountMultiple"),
                relaxed_min_count = Count(request.RelaxedMinCount, "RelaxedMinCount"),
                strings = Array(ticketStrings),
                string_count = Native.Size(ticketStrings.Length),
                numbers = Array(ticketNumbers),
                number_count = Native.Size(ticketNumbers.Length),
                query_strings = Array(queryStrings),
                query_string_count = Native.Size(queryStrings.Length),
                query_ranges = Array(ranges.ToArray()),
                query_range_count = Native.Size(ranges.Count),
                members = Array(members.ToArray()),
                member_count = Native.Size(members.Count),
            };
        }

        /// <summary>Pointers to C strings (null: none).</summary>
        internal IntPtr[] Strings(IEnumerable<string> items)
        {
            var pointers = new List<IntPtr>();
            if (items != null)
                foreach (var item in items) pointers.Add(Text(item, "item"));
            return pointers.ToArray();
        }

        public void Dispose()
        {
            foreach (var pointer in allocated) Marshal.FreeHGlobal(pointer);
            allocated.Clear();
        }
    }

    /// <summary>Owns the native client: frees it exactly once, on Dispose or, if
    /// forgotten, from the finalizer.</summary>
    sealed class ClientHandle : SafeHandleZeroOrMinusOneIsInvalid
    {
        ClientHandle() : base(true) { }

        protected override bool ReleaseHandle()
        {
            Native.pl_client_free(handle);
            return true;
        }
    }

    /// <summary>The C ABI, declared to match partyline.h exactly.</summary>
    static class Native
    {
        // Unity/Mono resolve this to libpartyline_ffi.so (Linux),
        // partyline_ffi.dll (Windows) or libpartyline_ffi.dylib (macOS).
        const string Lib = "partyline_ffi";

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlMember
        {
            internal IntPtr user_id;
            internal IntPtr username;
            internal IntPtr session_id;
            [MarshalAs(UnmanagedType.U1)] internal bool connected;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlEvent
        {
            internal int kind;
            internal long request_id;
            internal int error_code;
            internal IntPtr error_message;
            internal IntPtr party_id;
            internal IntPtr session_id;
            internal PlMember member;
            internal int reason;
            [MarshalAs(UnmanagedType.U1)] internal bool open;
            internal ushort max_size;
            internal IntPtr label;
            internal PlMember leader;
            internal IntPtr members;
            internal UIntPtr member_count;
            internal IntPtr requests;
            internal UIntPtr request_count;
            [MarshalAs(UnmanagedType.U1)] internal bool has_party;
            [MarshalAs(UnmanagedType.U1)] internal bool queued;
            internal long op_code;
            internal IntPtr data;
            internal UIntPtr data_len;
            [MarshalAs(UnmanagedType.U1)] internal bool reliable;
            // Protocol 2: appended, as in partyline.h.
            internal IntPtr status;
            internal IntPtr statuses;
            internal UIntPtr status_count;
            internal IntPtr invites;
            internal UIntPtr invite_count;
            internal int invite_policy;
            internal PlKeyValues state;
            internal IntPtr member_attributes;
            internal PlKeyValues attributes;
            internal IntPtr join_code;
            [MarshalAs(UnmanagedType.U1)] internal bool listed;
            internal PlKeyValues properties;
            internal ulong until_ms;
            internal IntPtr bans;
            internal UIntPtr ban_count;
            internal IntPtr parties;
            internal UIntPtr party_count;
            internal ulong next_cursor;
            // Matchmaking: appended, as in partyline.h.
            internal ulong ticket_id;
            internal IntPtr match_id;
            internal IntPtr players;
            internal UIntPtr player_count;
            internal IntPtr match_token;
            internal ulong token_expires_at;
            // Protocol 3 (ready checks): appended, as in partyline.h.
            [MarshalAs(UnmanagedType.U1)] internal bool has_ready_check;
            internal ulong check_id;
            internal IntPtr check_message;
            internal ulong check_timeout_ms;
            internal ulong check_ends_at_ms;
            internal IntPtr check_ready;
            internal UIntPtr check_ready_count;
            internal IntPtr check_not_ready;
            internal UIntPtr check_not_ready_count;
            internal IntPtr check_no_answer;
            internal UIntPtr check_no_answer_count;
            [MarshalAs(UnmanagedType.U1)] internal bool ready;
            // Protocol 3 (leader by connection quality): appended, as in partyline.h.
            internal int leader_policy;
            internal IntPtr member_quality;
            // Protocol 3 (mutes and blocks): appended after them, as in partyline.h.
            internal IntPtr muted;
            internal UIntPtr muted_count;
            internal IntPtr blocked;
            internal UIntPtr blocked_count;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlMute
        {
            internal IntPtr user_id;
            [MarshalAs(UnmanagedType.U1)] internal bool has_op_codes;
            internal long op_code_min;
            internal long op_code_max;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlKeyNumber
        {
            internal IntPtr key;
            internal long value;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlKeyNumbers
        {
            internal IntPtr items;
            internal UIntPtr count;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlKeyRange
        {
            internal IntPtr key;
            internal long min;
            internal long max;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlMemberProperties
        {
            internal IntPtr user_id;
            internal IntPtr strings;
            internal UIntPtr string_count;
            internal IntPtr numbers;
            internal UIntPtr number_count;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlTicketRequest
        {
            internal IntPtr party_id;
            internal uint min_count;
            internal uint max_count;
            internal uint count_multiple;
            internal uint relaxed_min_count;
            internal IntPtr strings;
            internal UIntPtr string_count;
            internal IntPtr numbers;
            internal UIntPtr number_count;
            internal IntPtr query_strings;
            internal UIntPtr query_string_count;
            internal IntPtr query_ranges;
            internal UIntPtr query_range_count;
            internal IntPtr members;
            internal UIntPtr member_count;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlMatchedPlayer
        {
            internal PlMember member;
            internal IntPtr party_id;
            internal PlKeyValues strings;
            internal PlKeyNumbers numbers;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlKeyValue
        {
            internal IntPtr key;
            internal IntPtr value;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlKeyValues
        {
            internal IntPtr items;
            internal UIntPtr count;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlUserStatus
        {
            internal PlMember member;
            internal IntPtr status;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlInvite
        {
            internal IntPtr party_id;
            internal PlMember inviter;
            internal ushort member_count;
            internal ushort max_size;
            [MarshalAs(UnmanagedType.U1)] internal bool open;
            internal IntPtr label;
            internal PlMember leader;
            internal ulong expires_at_ms;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlBan
        {
            internal IntPtr user_id;
            internal ulong until_ms;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct PlListedParty
        {
            internal IntPtr party_id;
            internal ushort member_count;
            internal ushort max_size;
            [MarshalAs(UnmanagedType.U1)] internal bool open;
            internal IntPtr label;
            internal PlKeyValues properties;
        }

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern ClientHandle pl_client_connect(byte[] server, byte[] server_name, byte[] cert_pem_path,
            byte[] cert_pem, UIntPtr cert_pem_len, byte[] user_id, byte[] username, byte[] token);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int pl_client_poll_sized(ClientHandle client, out PlEvent ev, UIntPtr event_size);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern UIntPtr pl_event_size();

        /// <summary>This wrapper's PlEvent, as marshalled: what it asks the library to fill.</summary>
        internal static readonly UIntPtr EventSize = new UIntPtr((uint)Marshal.SizeOf(typeof(PlEvent)));

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_create_party(ClientHandle client, [MarshalAs(UnmanagedType.U1)] bool open,
            ushort max_size, byte[] label);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_join_party(ClientHandle client, byte[] party_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_leave_party(ClientHandle client, byte[] party_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_accept(ClientHandle client, byte[] party_id, byte[] user_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_reject(ClientHandle client, byte[] party_id, byte[] user_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_kick(ClientHandle client, byte[] party_id, byte[] user_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_promote(ClientHandle client, byte[] party_id, byte[] user_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_close_party(ClientHandle client, byte[] party_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_update_party(ClientHandle client, byte[] party_id, int open, int max_size, byte[] label);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_get_party(ClientHandle client, byte[] party_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_list_join_requests(ClientHandle client, byte[] party_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_create_party_ex(ClientHandle client, [MarshalAs(UnmanagedType.U1)] bool open,
            ushort max_size, byte[] label, int invite_policy, PlKeyValue[] state, UIntPtr state_count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_update_party_ex(ClientHandle client, byte[] party_id, int open, int max_size,
            byte[] label, int invite_policy);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_create_party_ex2(ClientHandle client, [MarshalAs(UnmanagedType.U1)] bool open,
            ushort max_size, byte[] label, int invite_policy, PlKeyValue[] state, UIntPtr state_count,
            int leader_policy);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_set_leader_policy(ClientHandle client, byte[] party_id, int leader_policy);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_set_status(ClientHandle client, byte[] status, [MarshalAs(UnmanagedType.U1)] bool visible);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_follow(ClientHandle client, IntPtr[] user_ids, UIntPtr user_id_count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_unfollow(ClientHandle client, IntPtr[] user_ids, UIntPtr user_id_count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_invite(ClientHandle client, byte[] party_id, byte[] user_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_decline_invite(ClientHandle client, byte[] party_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_revoke_invite(ClientHandle client, byte[] party_id, byte[] user_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_list_invites(ClientHandle client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_create_join_code(ClientHandle client, byte[] party_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_clear_join_code(ClientHandle client, byte[] party_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_join_by_code(ClientHandle client, byte[] code);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_list_party(ClientHandle client, byte[] party_id, PlKeyValue[] properties,
            UIntPtr property_count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_unlist_party(ClientHandle client, byte[] party_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_search_parties(ClientHandle client, [MarshalAs(UnmanagedType.U1)] bool open_only,
            ushort min_free_seats, PlKeyValue[] properties, UIntPtr property_count, ushort limit, ulong cursor);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_set_party_state(ClientHandle client, byte[] party_id, PlKeyValue[] set,
            UIntPtr set_count, IntPtr[] remove, UIntPtr remove_count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_set_member_attributes(ClientHandle client, byte[] party_id, PlKeyValue[] set,
            UIntPtr set_count, IntPtr[] remove, UIntPtr remove_count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_ban(ClientHandle client, byte[] party_id, byte[] user_id, ulong duration_ms);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_unban(ClientHandle client, byte[] party_id, byte[] user_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_list_bans(ClientHandle client, byte[] party_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_submit_ticket(ClientHandle client, ref PlTicketRequest request);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_cancel_ticket(ClientHandle client, ulong ticket_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_start_ready_check(ClientHandle client, byte[] party_id, byte[] message,
            ulong timeout_ms);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_answer_ready_check(ClientHandle client, byte[] party_id, ulong check_id,
            [MarshalAs(UnmanagedType.U1)] bool ready);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_cancel_ready_check(ClientHandle client, byte[] party_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_mute(ClientHandle client, byte[] party_id, byte[] user_id,
            [MarshalAs(UnmanagedType.U1)] bool has_op_codes, long op_code_min, long op_code_max);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_unmute(ClientHandle client, byte[] party_id, byte[] user_id);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_block(ClientHandle client, IntPtr[] user_ids, UIntPtr user_id_count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_unblock(ClientHandle client, IntPtr[] user_ids, UIntPtr user_id_count);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_list_blocks(ClientHandle client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern long pl_send_data_reliable(ClientHandle client, byte[] party_id, long op_code,
            byte[] data, UIntPtr data_len);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int pl_send_data(ClientHandle client, byte[] party_id, long op_code,
            byte[] data, UIntPtr data_len);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int pl_client_close(ClientHandle client);

        // Takes IntPtr, not the SafeHandle: it is called from ReleaseHandle.
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void pl_client_free(IntPtr client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern UIntPtr pl_last_error(byte[] buffer, UIntPtr capacity);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern int pl_last_error_code();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr pl_version();

        static readonly int MemberSize = Marshal.SizeOf(typeof(PlMember));

        /// <summary>A NUL-terminated UTF-8 copy of text (null stays null, i.e. NULL).</summary>
        internal static byte[] Utf8(string text)
        {
            if (text == null) return null;
            if (text.IndexOf('\0') >= 0) throw new ArgumentException("text for partyline may not contain NUL characters");
            var bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
            Encoding.UTF8.GetBytes(text, 0, text.Length, bytes, 0);
            return bytes;
        }

        /// <summary>Reads a NUL-terminated UTF-8 string (NULL gives null).</summary>
        internal static string ReadString(IntPtr text)
        {
            if (text == IntPtr.Zero) return null;
            int length = 0;
            while (Marshal.ReadByte(text, length) != 0) length++;
            if (length == 0) return string.Empty;
            var bytes = new byte[length];
            Marshal.Copy(text, bytes, 0, length);
            return Encoding.UTF8.GetString(bytes);
        }

        /// <summary>The message of this thread's last error in the native library.</summary>
        internal static string LastError()
        {
            int length = checked((int)pl_last_error(null, UIntPtr.Zero).ToUInt64());
            if (length == 0) return "unknown error";
            var buffer = new byte[length + 1];
            pl_last_error(buffer, new UIntPtr((uint)buffer.Length));
            return Encoding.UTF8.GetString(buffer, 0, length);
        }

        static int Count(UIntPtr count)
        {
            return checked((int)count.ToUInt64());
        }

        internal static UIntPtr Size(int count)
        {
            return new UIntPtr((uint)count);
        }

        /// <summary>Copies a C array of <typeparamref name="TRaw"/> with <paramref name="copy"/>.</summary>
        internal static T[] CopyArray<TRaw, T>(IntPtr list, UIntPtr count, Func<TRaw, T> copy)
        {
            var items = new T[list == IntPtr.Zero ? 0 : Count(count)];
            int size = Marshal.SizeOf(typeof(TRaw));
            for (int i = 0; i < items.Length; i++)
                items[i] = copy((TRaw)Marshal.PtrToStructure(IntPtr.Add(list, i * size), typeof(TRaw)));
            return items;
        }

        /// <summary>Copies a key-value map, kept in the server's (ordinal) key order.</summary>
        internal static IDictionary<string, string> CopyKeyValues(PlKeyValues map)
        {
            var copy = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var pair in CopyArray<PlKeyValue, KeyValuePair<string, string>>(map.items, map.count,
                p => new KeyValuePair<string, string>(ReadString(p.key), ReadString(p.value))))
                copy[pair.Key] = pair.Value;
            return copy;
        }

        /// <summary>Copies an integer map, kept in the server's (ordinal) key order.</summary>
        internal static IDictionary<string, long> CopyKeyNumbers(PlKeyNumbers map)
        {
            var copy = new SortedDictionary<string, long>(StringComparer.Ordinal);
            foreach (var pair in CopyArray<PlKeyNumber, KeyValuePair<string, long>>(map.items, map.count,
                p => new KeyValuePair<string, long>(ReadString(p.key), p.value)))
                copy[pair.Key] = pair.Value;
            return copy;
        }

        internal static MatchFound CopyMatch(PlEvent raw)
        {
            return new MatchFound
            {
                MatchId = ReadString(raw.match_id),
                TicketId = raw.ticket_id,
                Players = CopyArray<PlMatchedPlayer, MatchedPlayer>(raw.players, raw.player_count, p => new MatchedPlayer
                {
                    Member = CopyMember(p.member),
                    PartyId = ReadString(p.party_id),
                    Strings = CopyKeyValues(p.strings),
                    Numbers = CopyKeyNumbers(p.numbers),
                }),
                Token = ReadString(raw.match_token),
                TokenExpiresAt = raw.token_expires_at,
            };
        }

        internal static PartyInvite CopyInvite(PlInvite invite)
        {
            return new PartyInvite
            {
                PartyId = ReadString(invite.party_id),
                Inviter = CopyMember(invite.inviter),
                MemberCount = invite.member_count,
                MaxSize = invite.max_size,
                Open = invite.open,
                Label = ReadString(invite.label),
                Leader = CopyMember(invite.leader),
                ExpiresAtMs = invite.expires_at_ms,
            };
        }

        internal static Member CopyMember(PlMember member)
        {
            if (member.user_id == IntPtr.Zero) return null;
            return new Member
            {
                UserId = ReadString(member.user_id),
                Username = ReadString(member.username),
                SessionId = ReadString(member.session_id),
                Connected = member.connected,
                Attributes = new SortedDictionary<string, string>(StringComparer.Ordinal),
            };
        }

        internal static Member[] CopyMembers(IntPtr list, UIntPtr count)
        {
            int n = Count(count);
            var members = new Member[list == IntPtr.Zero ? 0 : n];
            for (int i = 0; i < members.Length; i++)
            {
                var member = (PlMember)Marshal.PtrToStructure(IntPtr.Add(list, i * MemberSize), typeof(PlMember));
                members[i] = CopyMember(member);
            }
            return members;
        }

        internal static Party CopyParty(PlEvent raw)
        {
            Member[] members = CopyMembers(raw.members, raw.member_count);
            // member_attributes runs parallel to members (NULL when there are none).
            int attributesSize = Marshal.SizeOf(typeof(PlKeyValues));
            for (int i = 0; raw.member_attributes != IntPtr.Zero && i < members.Length; i++)
            {
                var attributes = (PlKeyValues)Marshal.PtrToStructure(
                    IntPtr.Add(raw.member_attributes, i * attributesSize), typeof(PlKeyValues));
                members[i].Attributes = CopyKeyValues(attributes);
            }
            // member_quality too.
            for (int i = 0; raw.member_quality != IntPtr.Zero && i < members.Length; i++)
            {
                members[i].Quality = (ConnectionQuality)Marshal.ReadInt32(raw.member_quality, i * 4);
            }
            return new Party
            {
                Id = ReadString(raw.party_id),
                Open = raw.open,
                MaxSize = raw.max_size,
                Label = ReadString(raw.label),
                Leader = CopyMember(raw.leader),
                Members = members,
                JoinRequests = CopyMembers(raw.requests, raw.request_count),
                InvitePolicy = (InvitePolicy)raw.invite_policy,
                LeaderPolicy = (LeaderPolicy)raw.leader_policy,
                State = CopyKeyValues(raw.state),
                JoinCode = ReadString(raw.join_code),
                Listed = raw.listed,
                Properties = CopyKeyValues(raw.properties),
                ReadyCheck = raw.has_ready_check ? CopyReadyCheck(raw) : null,
                Muted = CopyArray<PlMute, Mute>(raw.muted, raw.muted_count, m => new Mute
                {
                    UserId = ReadString(m.user_id),
                    HasOpCodes = m.has_op_codes,
                    OpCodeMin = m.op_code_min,
                    OpCodeMax = m.op_code_max,
                }),
            };
        }

        /// <summary>The blocked user ids of a reply or a BlocksChanged event.</summary>
        internal static string[] CopyBlocked(PlEvent raw)
        {
            var ids = new string[raw.blocked == IntPtr.Zero ? 0 : Count(raw.blocked_count)];
            for (int i = 0; i < ids.Length; i++)
                ids[i] = ReadString(Marshal.ReadIntPtr(raw.blocked, i * IntPtr.Size));
            return ids;
        }

        /// <summary>The check_* fields: a running check, or a started or ended one's lists.</summary>
        internal static ReadyCheck CopyReadyCheck(PlEvent raw)
        {
            return new ReadyCheck
            {
                CheckId = raw.check_id,
                Message = ReadString(raw.check_message) ?? "",
                TimeoutMs = raw.check_timeout_ms,
                EndsAtMs = raw.check_ends_at_ms,
                Ready = CopyMembers(raw.check_ready, raw.check_ready_count),
                NotReady = CopyMembers(raw.check_not_ready, raw.check_not_ready_count),
                NoAnswer = CopyMembers(raw.check_no_answer, raw.check_no_answer_count),
            };
        }

        /// <summary>Copies everything an event points to into managed memory.</summary>
        internal static PartyEvent Copy(PlEvent raw)
        {
            byte[] data = null;
            if (raw.kind == (int)EventKind.Data)
            {
                data = new byte[raw.data == IntPtr.Zero ? 0 : Count(raw.data_len)];
                if (data.Length > 0) Marshal.Copy(raw.data, data, 0, data.Length);
            }
            return new PartyEvent
            {
                Kind = (EventKind)raw.kind,
                ErrorCode = raw.error_code,
                ErrorMessage = ReadString(raw.error_message),
                PartyId = ReadString(raw.party_id),
                SessionId = ReadString(raw.session_id),
                Member = CopyMember(raw.member),
                Reason = raw.reason,
                Party = raw.has_party ? CopyParty(raw) : null,
                Requests = CopyMembers(raw.requests, raw.request_count),
                OpCode = raw.op_code,
                Data = data,
                Reliable = raw.reliable,
                Status = ReadString(raw.status),
                Invite = raw.kind == (int)EventKind.Invited && raw.invite_count != UIntPtr.Zero
                    ? CopyArray<PlInvite, PartyInvite>(raw.invites, raw.invite_count, CopyInvite)[0] : null,
                State = CopyKeyValues(raw.state),
                Attributes = CopyKeyValues(raw.attributes),
                JoinCode = ReadString(raw.join_code),
                Listed = raw.listed,
                Properties = CopyKeyValues(raw.properties),
                UntilMs = raw.until_ms,
                TicketId = raw.ticket_id,
                Match = raw.kind == (int)EventKind.Matched ? CopyMatch(raw) : null,
                ReadyCheck = raw.kind == (int)EventKind.ReadyCheckStarted || raw.kind == (int)EventKind.ReadyCheckEnded
                    ? CopyReadyCheck(raw) : null,
                CheckId = raw.check_id,
                Ready = raw.ready,
                Blocked = CopyBlocked(raw),
            };
        }
    }
}
