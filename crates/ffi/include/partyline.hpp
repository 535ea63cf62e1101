// partyline C++ wrapper: RAII over the C ABI in partyline.h, header-only,
// C++17. The way in for Unreal, Godot (GDExtension) and any C++ game.
//
//   auto ana = partyline::Client::connect({"127.0.0.1:7350", "cert.pem", "ana"});
//   partyline::RequestId id = ana.create_party(false, 4, "squad");
//   while (auto event = ana.poll()) { ... }   // once per frame
//
// The shape is the C ABI's: commands return a request id at once and their
// answer arrives later as an EventKind::Reply with that id (not ordered
// against events: those a command causes may come before its reply). What differs:
// errors the C calls return synchronously are thrown as partyline::Error,
// the client frees itself, and a polled Event owns copies of everything,
// so it stays valid after the next poll (the C event does not).
//
// Threads, as partyline.h states them: any function may be called from any
// thread, also at the same time on one client, except pl_client_free, which
// must be a client's last call (none other under way or to come). What a
// poll fills in stays valid until the same thread polls the same client
// again, or the client is freed; several threads may poll one client, and
// each event goes to one of them. Here: ~Client is pl_client_free, so no
// other thread may be inside a call on the Client when it is destroyed;
// poll() copies what it got before it returns.
//
// Quitting: ~Client (and close()) end the session at once: the others see
// MemberLeft, and a lead passes on. The destructor waits until the goodbye
// has left, at most 250 ms (about 0.1 s on a LAN).

#ifndef PARTYLINE_HPP
#define PARTYLINE_HPP

#include "partyline.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace partyline {

// What a command returns: the id its EventKind::Reply will carry.
using RequestId = std::int64_t;

// A failed C call: the code (a PL_ERR_*, or a positive server refusal
// such as 12 PayloadTooLarge from send_data) and pl_last_error's message.
class Error : public std::runtime_error {
public:
    Error(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

namespace detail {

// The calling thread's last error message; read it right after the failing
// call, as it is per thread and the next failure overwrites it.
inline std::string last_error() {
    std::string message(pl_last_error(nullptr, 0), '\0');
    if (!message.empty()) pl_last_error(&message[0], message.size() + 1);
    return message;
}

[[noreturn]] inline void fail(int code, const char* what) {
    std::string message = last_error();
    throw Error(code, std::string(what) + ": " + (message.empty() ? "failed" : message));
}

// Commands return a request id (> 0) or a negative PL_ERR_*.
inline RequestId check(std::int64_t result, const char* what) {
    if (result < 0) fail(static_cast<int>(result), what);
    return result;
}

// The C event uses NULL for "not set"; the C++ event uses "".
inline std::string text(const char* s) { return s ? std::string(s) : std::string(); }

}  // namespace detail

// Mirrors the PL_EVENT_* constants (which are plain #defines in C). A kind
// added by a newer library than this header names still comes through,
// as its number.
enum class EventKind : std::int32_t {
    None = PL_EVENT_NONE,
    Connected = PL_EVENT_CONNECTED,
    Reply = PL_EVENT_REPLY,
    PartyJoined = PL_EVENT_PARTY_JOINED,
    MemberJoined = PL_EVENT_MEMBER_JOINED,
    MemberLeft = PL_EVENT_MEMBER_LEFT,
    LeaderChanged = PL_EVENT_LEADER_CHANGED,
    MemberConnection = PL_EVENT_MEMBER_CONNECTION,
    JoinRequested = PL_EVENT_JOIN_REQUESTED,
    JoinRequestGone = PL_EVENT_JOIN_REQUEST_GONE,
    JoinRequests = PL_EVENT_JOIN_REQUESTS,
    JoinRejected = PL_EVENT_JOIN_REJECTED,
    Kicked = PL_EVENT_KICKED,
    PartyClosed = PL_EVENT_PARTY_CLOSED,
    PartyUpdated = PL_EVENT_PARTY_UPDATED,
    Data = PL_EVENT_DATA,
    DataRefused = PL_EVENT_DATA_REFUSED,
    Reconnecting = PL_EVENT_RECONNECTING,
    Resumed = PL_EVENT_RESUMED,
    PartySynced = PL_EVENT_PARTY_SYNCED,
    PartyLost = PL_EVENT_PARTY_LOST,
    SessionLost = PL_EVENT_SESSION_LOST,
    Disconnected = PL_EVENT_DISCONNECTED,
    ProtocolError = PL_EVENT_PROTOCOL_ERROR,
    StatusOnline = PL_EVENT_STATUS_ONLINE,
    StatusChanged = PL_EVENT_STATUS_CHANGED,
    StatusOffline = PL_EVENT_STATUS_OFFLINE,
    Invited = PL_EVENT_INVITED,
    InviteGone = PL_EVENT_INVITE_GONE,
    InviteDeclined = PL_EVENT_INVITE_DECLINED,
    PartyStateChanged = PL_EVENT_PARTY_STATE_CHANGED,
    MemberAttributesChanged = PL_EVENT_MEMBER_ATTRIBUTES_CHANGED,
    JoinCodeChanged = PL_EVENT_JOIN_CODE_CHANGED,
    ListingChanged = PL_EVENT_LISTING_CHANGED,
    Banned = PL_EVENT_BANNED,
    TicketStarted = PL_EVENT_TICKET_STARTED,
    TicketCancelled = PL_EVENT_TICKET_CANCELLED,
    Matched = PL_EVENT_MATCHED,
    ReadyCheckStarted = PL_EVENT_READY_CHECK_STARTED,
    ReadyCheckAnswered = PL_EVENT_READY_CHECK_ANSWERED,
    ReadyCheckEnded = PL_EVENT_READY_CHECK_ENDED,
    BlocksChanged = PL_EVENT_BLOCKS_CHANGED,
};

// Who may invite to a party (the PL_INVITE_POLICY_* constants).
enum class InvitePolicy : std::int32_t {
    Leader = PL_INVITE_POLICY_LEADER,
    AnyMember = PL_INVITE_POLICY_ANY_MEMBER,
};

// Who leads when the leader leaves or is lost (the PL_LEADER_POLICY_*
// constants).
enum class LeaderPolicy : std::int32_t {
    Tenure = PL_LEADER_POLICY_TENURE,
    ConnectionQuality = PL_LEADER_POLICY_CONNECTION_QUALITY,
};

// A member's connection as the server measures it (the PL_QUALITY_*
// constants).
enum class ConnectionQuality : std::int32_t {
    Unknown = PL_QUALITY_UNKNOWN,  // not measured yet, or disconnected
    Good = PL_QUALITY_GOOD,
    Fair = PL_QUALITY_FAIR,
    Poor = PL_QUALITY_POOR,
};

// Party state, member attributes, listing properties and search filters
// (PlKeyValues, copied): sorted by key, as the server keeps them.
using KeyValues = std::map<std::string, std::string>;

// A member, requester or sender (PlMember, copied).
struct Member {
    std::string user_id;
    std::string username;
    std::string session_id;
    bool connected = false;
    KeyValues attributes{};  // set for a party's members (member_attributes)
    // A party's member: its connection as of that event (member_quality;
    // no event says it changed: get_party asks again).
    ConnectionQuality quality = ConnectionQuality::Unknown;
};

// A party's ready check (the C event's check_* fields, copied): whom it
// asked, and how each answered so far (or at its end).
struct ReadyCheck {
    std::uint64_t check_id = 0;    // answer under it
    std::string message;           // the leader's ("" for none)
    std::uint64_t timeout_ms = 0;  // from its start
    std::uint64_t ends_at_ms = 0;  // Unix ms, server clock
    std::vector<Member> ready;
    std::vector<Member> not_ready;  // or left
    std::vector<Member> no_answer;
};

// A member this session muted in a party (PlMute, copied): its party data
// (all of it, or op codes op_code_min to op_code_max) does not reach it.
struct Mute {
    std::string user_id;
    bool has_op_codes = false;  // false: every op code
    std::int64_t op_code_min = 0;
    std::int64_t op_code_max = 0;
};

// The party fields of an event (set when the C event's has_party is).
struct Party {
    std::string id;
    bool open = false;
    std::uint16_t max_size = 0;
    std::string label;
    Member leader;
    std::vector<Member> members;  // in seat order, each with its attributes
    InvitePolicy invite_policy = InvitePolicy::Leader;
    LeaderPolicy leader_policy = LeaderPolicy::Tenure;
    KeyValues state;
    std::string join_code;  // empty: none
    bool listed = false;
    KeyValues properties;  // the listing's
    std::optional<ReadyCheck> ready_check;  // the running one, if any
    std::vector<Mute> muted;  // this session's mutes here (a get_party reply shows them)
};

// A followed user's session online (PlUserStatus, copied).
struct UserStatus {
    Member member;
    std::string status;
};

// A pending invite (PlInvite, copied).
struct Invite {
    std::string party_id;
    Member inviter;
    std::uint16_t member_count = 0;
    std::uint16_t max_size = 0;
    bool open = false;
    std::string label;
    Member leader;
    std::uint64_t expires_at_ms = 0;  // Unix ms, server clock
};

// A party's ban (PlBan, copied).
struct Ban {
    std::string user_id;
    std::uint64_t until_ms = 0;  // Unix ms, server clock; 0: the party's life
};

// A party a search found (PlListedParty, copied).
struct ListedParty {
    std::string id;
    std::uint16_t member_count = 0;
    std::uint16_t max_size = 0;
    bool open = false;
    std::string label;
    KeyValues properties;
};

// Integer properties of a ticket, a member or a matched player
// (PlKeyNumbers, copied): sorted by key. Scale fractions yourself (skill
// 12.5 as 1250).
using Numbers = std::map<std::string, std::int64_t>;

// An inclusive range of integers (PlKeyRange's min and max).
struct NumberRange {
    std::int64_t min = 0;
    std::int64_t max = 0;
};

// What a ticket asks of every other ticket in its match.
struct TicketQuery {
    KeyValues strings{};                         // the other's must equal each
    std::map<std::string, NumberRange> ranges{};  // the other's must lie in each
};

// One member's own properties in a ticket (PlMemberProperties), carried to
// the match; they win over the ticket's.
struct MemberProperties {
    std::string user_id{};
    KeyValues strings{};
    Numbers numbers{};
};

// A matchmaking ticket (PlTicketRequest). Unlike the zero-filled C struct,
// count_multiple starts at 1 (any count).
struct TicketRequest {
    std::optional<std::string> party_id{};  // unset: solo; set: the party's (leader only)
    std::uint32_t min_count = 0;            // fewest players, this ticket's included
    std::uint32_t max_count = 0;            // most players
    std::uint32_t count_multiple = 1;       // the count is a multiple of this (0 is refused)
    std::uint32_t relaxed_min_count = 0;    // after the server's relax time; 0: none
    KeyValues strings{};                    // what other tickets' queries test
    Numbers numbers{};
    TicketQuery query{};                    // what every other ticket must have
    std::vector<MemberProperties> members{};
};

// One player of a match (PlMatchedPlayer, copied).
struct MatchedPlayer {
    Member member;         // connected is always true here (not tracked)
    std::string party_id;  // the party it came with; empty: a solo ticket
    KeyValues strings;     // its ticket's, then its own
    Numbers numbers;       // its ticket's, then its own
};

// What search_parties looks for; every filter must hold.
struct PartySearch {
    bool open_only = false;
    std::uint16_t min_free_seats = 0;
    KeyValues properties{};  // pairs the listing must have
    std::uint16_t limit = 20;  // 1 to the server's most (100 by default)
    std::uint64_t cursor = 0;  // 0, or the last page's next_cursor
};

// One polled event, owning all it holds. Which fields are set depends on
// kind, as documented at each PL_EVENT_* in partyline.h; the rest are
// empty or zero.
struct Event {
    EventKind kind = EventKind::None;
    RequestId request_id = 0;
    int error_code = 0;  // 0, a PL_ERR_* (negative), or a server refusal
    std::string error_message;
    std::string party_id;
    std::string session_id;
    Member member;
    int reason = 0;  // a PL_LEAVE_*, PL_REJECT_*, ... as the kind's doc says
    std::optional<Party> party;
    std::vector<Member> requests;
    bool queued = false;
    std::int64_t op_code = 0;
    std::vector<std::uint8_t> data;
    bool reliable = false;
    std::string status;                 // StatusOnline, StatusChanged
    std::vector<UserStatus> statuses;   // follow's reply
    std::vector<Invite> invites;        // list_invites' reply; Invited: the one
    KeyValues state;                    // PartyStateChanged (and party events)
    KeyValues attributes;               // MemberAttributesChanged: member's
    std::string join_code;              // JoinCodeChanged, create_join_code's reply
    bool listed = false;                // ListingChanged
    KeyValues properties;               // ListingChanged
    std::uint64_t until_ms = 0;         // Banned
    std::vector<Ban> bans;              // list_bans' reply
    std::vector<ListedParty> parties;   // search_parties' reply
    std::uint64_t next_cursor = 0;      // search_parties' reply; 0: last page
    // submit_ticket's reply, TicketStarted (party_id: empty for a solo
    // ticket), TicketCancelled (reason: a PL_TICKET_CANCEL_*) and Matched
    // (this session's ticket).
    std::uint64_t ticket_id = 0;
    std::string match_id;                // Matched: a UUID in text form
    std::vector<MatchedPlayer> players;  // Matched: ticket by ticket, oldest first
    std::string match_token;             // Matched: for the game server
    std::uint64_t token_expires_at = 0;  // Matched: Unix seconds, server clock
    // ReadyCheckStarted (member: the leader) and ReadyCheckEnded (reason: a
    // PL_READY_CHECK_*): the check and its lists; ReadyCheckAnswered:
    // check_id, member and ready.
    std::optional<ReadyCheck> ready_check;
    std::uint64_t check_id = 0;
    bool ready = false;
    // block, unblock and list_blocks' reply, and BlocksChanged: this
    // session's block list now, sorted.
    std::vector<std::string> blocked;

    // The payload as text (for samples and logs; data need not be text).
    std::string_view data_text() const {
        return {reinterpret_cast<const char*>(data.data()), data.size()};
    }
};

namespace detail {

inline Member member(const PlMember& m) {
    return {text(m.user_id), text(m.username), text(m.session_id), m.connected};
}

inline std::vector<Member> members(const PlMember* list, std::size_t count) {
    std::vector<Member> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) out.push_back(member(list[i]));
    return out;
}

inline KeyValues key_values(const PlKeyValues& map) {
    KeyValues out;
    for (std::size_t i = 0; i < map.count; ++i)
        out.emplace(text(map.items[i].key), text(map.items[i].value));
    return out;
}

// Copies a C array of `count` items with `one`.
template <typename T, typename C, typename F>
std::vector<T> list(const C* items, std::size_t count, F one) {
    std::vector<T> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) out.push_back(one(items[i]));
    return out;
}

inline Invite invite(const PlInvite& i) {
    return {text(i.party_id), member(i.inviter), i.member_count, i.max_size,
            i.open,           text(i.label),     member(i.leader), i.expires_at_ms};
}

inline Numbers key_numbers(const PlKeyNumbers& map) {
    Numbers out;
    for (std::size_t i = 0; i < map.count; ++i)
        out.emplace(text(map.items[i].key), map.items[i].value);
    return out;
}

// Views into `map` for a C call: valid while `map` lives, unchanged.
inline std::vector<PlKeyValue> c_pairs(const KeyValues& map) {
    std::vector<PlKeyValue> out;
    out.reserve(map.size());
    for (const auto& [key, value] : map) out.push_back({key.c_str(), value.c_str()});
    return out;
}

// Views into `map` for a C call: valid while `map` lives, unchanged.
inline std::vector<PlKeyNumber> c_numbers(const Numbers& map) {
    std::vector<PlKeyNumber> out;
    out.reserve(map.size());
    for (const auto& [key, value] : map) out.push_back({key.c_str(), value});
    return out;
}

// Views into `request` for pl_submit_ticket: the C struct and the arrays
// it points to, valid while both this and `request` live, unchanged.
class CTicket {
public:
    explicit CTicket(const TicketRequest& request)
        : strings_(c_pairs(request.strings)),
          numbers_(c_numbers(request.numbers)),
          query_strings_(c_pairs(request.query.strings)) {
        for (const auto& [key, range] : request.query.ranges)
            ranges_.push_back({key.c_str(), range.min, range.max});
        // Reserved first: the members' arrays must not move once pointed to.
        member_strings_.reserve(request.members.size());
        member_numbers_.reserve(request.members.size());
        for (const auto& m : request.members) {
            member_strings_.push_back(c_pairs(m.strings));
            member_numbers_.push_back(c_numbers(m.numbers));
            members_.push_back({m.user_id.c_str(), member_strings_.back().data(),
                                member_strings_.back().size(), member_numbers_.back().data(),
                                member_numbers_.back().size()});
        }
        raw_.party_id = request.party_id ? request.party_id->c_str() : nullptr;
        raw_.min_count = request.min_count;
        raw_.max_count = request.max_count;
        raw_.count_multiple = request.count_multiple;
        raw_.relaxed_min_count = request.relaxed_min_count;
        raw_.strings = strings_.data();
        raw_.string_count = strings_.size();
        raw_.numbers = numbers_.data();
        raw_.number_count = numbers_.size();
        raw_.query_strings = query_strings_.data();
        raw_.query_string_count = query_strings_.size();
        raw_.query_ranges = ranges_.data();
        raw_.query_range_count = ranges_.size();
        raw_.members = members_.data();
        raw_.member_count = members_.size();
    }
    CTicket(const CTicket&) = delete;
    CTicket& operator=(const CTicket&) = delete;

    const PlTicketRequest* get() const noexcept { return &raw_; }

private:
    std::vector<PlKeyValue> strings_;
    std::vector<PlKeyNumber> numbers_;
    std::vector<PlKeyValue> query_strings_;
    std::vector<PlKeyRange> ranges_;
    std::vector<std::vector<PlKeyValue>> member_strings_;
    std::vector<std::vector<PlKeyNumber>> member_numbers_;
    std::vector<PlMemberProperties> members_;
    PlTicketRequest raw_{};
};

// Views into `items` for a C call: valid while `items` lives, unchanged.
inline std::vector<const char*> c_strings(const std::vector<std::string>& items) {
    std::vector<const char*> out;
    out.reserve(items.size());
    for (const auto& item : items) out.push_back(item.c_str());
    return out;
}

inline ReadyCheck ready_check(const PlEvent& e) {
    return ReadyCheck{e.check_id,
                      text(e.check_message),
                      e.check_timeout_ms,
                      e.check_ends_at_ms,
                      members(e.check_ready, e.check_ready_count),
                      members(e.check_not_ready, e.check_not_ready_count),
                      members(e.check_no_answer, e.check_no_answer_count)};
}

// Copies everything out of the C event, whose pointers die at the next poll.
inline Event copy(const PlEvent& e) {
    Event out;
    out.kind = static_cast<EventKind>(e.kind);
    out.request_id = e.request_id;
    out.error_code = e.error_code;
    out.error_message = text(e.error_message);
    out.party_id = text(e.party_id);
    out.session_id = text(e.session_id);
    out.member = member(e.member);
    out.reason = e.reason;
    if (e.has_party) {
        Party party;
        party.id = out.party_id;
        party.open = e.open;
        party.max_size = e.max_size;
        party.label = text(e.label);
        party.leader = member(e.leader);
        party.members = members(e.members, e.member_count);
        // member_attributes runs parallel to members (NULL when there are none).
        for (std::size_t i = 0; e.member_attributes && i < party.members.size(); ++i)
            party.members[i].attributes = key_values(e.member_attributes[i]);
        // member_quality too.
        for (std::size_t i = 0; e.member_quality && i < party.members.size(); ++i)
            party.members[i].quality = static_cast<ConnectionQuality>(e.member_quality[i]);
        party.invite_policy = static_cast<InvitePolicy>(e.invite_policy);
        party.leader_policy = static_cast<LeaderPolicy>(e.leader_policy);
        party.state = key_values(e.state);
        party.join_code = text(e.join_code);
        party.listed = e.listed;
        party.properties = key_values(e.properties);
        if (e.has_ready_check) party.ready_check = ready_check(e);
        party.muted = list<Mute>(e.muted, e.muted_count, [](const PlMute& m) {
            return Mute{text(m.user_id), m.has_op_codes, m.op_code_min, m.op_code_max};
        });
        out.party = std::move(party);
    }
    out.requests = members(e.requests, e.request_count);
    out.queued = e.queued;
    out.op_code = e.op_code;
    if (e.data && e.data_len > 0) out.data.assign(e.data, e.data + e.data_len);
    out.reliable = e.reliable;
    out.status = text(e.status);
    out.statuses = list<UserStatus>(e.statuses, e.status_count, [](const PlUserStatus& s) {
        return UserStatus{member(s.member), text(s.status)};
    });
    out.invites = list<Invite>(e.invites, e.invite_count, invite);
    out.state = key_values(e.state);
    out.attributes = key_values(e.attributes);
    out.join_code = text(e.join_code);
    out.listed = e.listed;
    out.properties = key_values(e.properties);
    out.until_ms = e.until_ms;
    out.bans = list<Ban>(e.bans, e.ban_count,
                         [](const PlBan& b) { return Ban{text(b.user_id), b.until_ms}; });
    out.parties = list<ListedParty>(e.parties, e.party_count, [](const PlListedParty& p) {
        return ListedParty{text(p.party_id), p.member_count, p.max_size,
                           p.open,           text(p.label),  key_values(p.properties)};
    });
    out.next_cursor = e.next_cursor;
    out.ticket_id = e.ticket_id;
    out.match_id = text(e.match_id);
    out.players = list<MatchedPlayer>(e.players, e.player_count, [](const PlMatchedPlayer& p) {
        return MatchedPlayer{member(p.member), text(p.party_id), key_values(p.strings),
                             key_numbers(p.numbers)};
    });
    out.match_token = text(e.match_token);
    out.token_expires_at = e.token_expires_at;
    if (out.kind == EventKind::ReadyCheckStarted || out.kind == EventKind::ReadyCheckEnded)
        out.ready_check = ready_check(e);
    out.check_id = e.check_id;
    out.ready = e.ready;
    for (std::size_t i = 0; i < e.blocked_count; ++i) out.blocked.push_back(text(e.blocked[i]));
    return out;
}

}  // namespace detail

// How to connect. Trust one certificate: cert_pem_path (a PEM file) or
// cert_pem (PEM text), not both (connect throws PL_ERR_INVALID_ARGUMENT).
// Be someone: token (from the game's backend) or, in development, user_id
// and username. The order allows the short form {server, cert_pem_path,
// user_id}; the {} keep -Wextra quiet about the rest.
struct ConnectOptions {
    std::string server{};  // "host:port"
    std::string cert_pem_path{};
    std::string user_id{};
    std::string username{};  // empty: the user_id
    std::string cert_pem{};
    std::string token{};
    std::optional<std::string> server_name{};  // unset: "localhost"
};

// One session with a partyline server. Move-only; the destructor ends the
// session (waiting, at most 250 ms, for the goodbye to leave) and frees the
// C client. Threads: see the top of this file.
class Client {
public:
    // Starts connecting and returns at once; EventKind::Connected (or
    // Disconnected) follows. Throws Error on a bad option.
    static Client connect(const ConnectOptions& options) {
        // The C ABI takes NULL for "not given", so empty strings become NULL.
        auto c_str = [](const std::string& s) { return s.empty() ? nullptr : s.c_str(); };
        // Both given: the C ABI refuses it (one certificate, not two).
        const bool in_memory = !options.cert_pem.empty();
        PlClient* raw = pl_client_connect(
            options.server.c_str(),
            options.server_name ? options.server_name->c_str() : nullptr,
            c_str(options.cert_pem_path),
            in_memory ? reinterpret_cast<const std::uint8_t*>(options.cert_pem.data()) : nullptr,
            in_memory ? options.cert_pem.size() : 0, c_str(options.user_id),
            c_str(options.username), c_str(options.token));
        // The C ABI returns NULL without a code; almost always a bad argument.
        if (!raw) detail::fail(pl_last_error_code(), "connect");
        return Client(raw);
    }

    Client(Client&& other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
    Client& operator=(Client&& other) noexcept {
        if (this != &other) {
            pl_client_free(raw_);
            raw_ = std::exchange(other.raw_, nullptr);
        }
        return *this;
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    ~Client() { pl_client_free(raw_); }

    // The next event, or nothing when none waits. Call it once per frame
    // until it returns nothing. Throws Error if the poll itself fails.
    std::optional<Event> poll() {
        PlEvent event{};
        // Sized: a newer library never writes past this header's PlEvent.
        const int got = pl_client_poll_sized(raw_, &event, sizeof event);
        if (got < 0) detail::fail(got, "poll");
        if (got == 0) return std::nullopt;
        return detail::copy(event);
    }

    RequestId create_party(bool open, std::uint16_t max_size, std::string_view label = {}) {
        return detail::check(pl_create_party(raw_, open, max_size, std::string(label).c_str()),
                             "create_party");
    }
    RequestId join_party(const std::string& party) {
        return detail::check(pl_join_party(raw_, party.c_str()), "join_party");
    }
    RequestId leave_party(const std::string& party) {
        return detail::check(pl_leave_party(raw_, party.c_str()), "leave_party");
    }
    RequestId accept(const std::string& party, const std::string& user_id) {
        return detail::check(pl_accept(raw_, party.c_str(), user_id.c_str()), "accept");
    }
    RequestId reject(const std::string& party, const std::string& user_id) {
        return detail::check(pl_reject(raw_, party.c_str(), user_id.c_str()), "reject");
    }
    RequestId kick(const std::string& party, const std::string& user_id) {
        return detail::check(pl_kick(raw_, party.c_str(), user_id.c_str()), "kick");
    }
    RequestId promote(const std::string& party, const std::string& user_id) {
        return detail::check(pl_promote(raw_, party.c_str(), user_id.c_str()), "promote");
    }
    RequestId close_party(const std::string& party) {
        return detail::check(pl_close_party(raw_, party.c_str()), "close_party");
    }
    // With who may invite, and the party state to start with.
    RequestId create_party(bool open, std::uint16_t max_size, std::string_view label,
                           InvitePolicy invite_policy, const KeyValues& state = {}) {
        const auto pairs = detail::c_pairs(state);
        return detail::check(
            pl_create_party_ex(raw_, open, max_size, std::string(label).c_str(),
                               static_cast<std::int32_t>(invite_policy), pairs.data(),
                               pairs.size()),
            "create_party");
    }
    // With who leads when the leader leaves or is lost, too.
    RequestId create_party(bool open, std::uint16_t max_size, std::string_view label,
                           InvitePolicy invite_policy, LeaderPolicy leader_policy,
                           const KeyValues& state = {}) {
        const auto pairs = detail::c_pairs(state);
        return detail::check(
            pl_create_party_ex2(raw_, open, max_size, std::string(label).c_str(),
                                static_cast<std::int32_t>(invite_policy), pairs.data(),
                                pairs.size(), static_cast<std::int32_t>(leader_policy)),
            "create_party");
    }
    // Leader only: who leads when the leader leaves or is lost.
    RequestId set_leader_policy(const std::string& party, LeaderPolicy leader_policy) {
        return detail::check(
            pl_set_leader_policy(raw_, party.c_str(), static_cast<std::int32_t>(leader_policy)),
            "set_leader_policy");
    }
    // Unset fields keep their value.
    RequestId update_party(const std::string& party, std::optional<bool> open,
                           std::optional<std::uint16_t> max_size,
                           std::optional<std::string> label = std::nullopt,
                           std::optional<InvitePolicy> invite_policy = std::nullopt) {
        return detail::check(
            pl_update_party_ex(raw_, party.c_str(), open ? (*open ? 1 : 0) : -1,
                               max_size ? static_cast<std::int32_t>(*max_size) : -1,
                               label ? label->c_str() : nullptr,
                               invite_policy ? static_cast<std::int32_t>(*invite_policy) : -1),
            "update_party");
    }
    RequestId get_party(const std::string& party) {
        return detail::check(pl_get_party(raw_, party.c_str()), "get_party");
    }
    RequestId list_join_requests(const std::string& party) {
        return detail::check(pl_list_join_requests(raw_, party.c_str()), "list_join_requests");
    }

    // Status and follows. The reply to follow fills Event::statuses.
    RequestId set_status(std::string_view status, bool visible = true) {
        return detail::check(pl_set_status(raw_, std::string(status).c_str(), visible),
                             "set_status");
    }
    RequestId follow(const std::vector<std::string>& user_ids) {
        const auto ids = detail::c_strings(user_ids);
        return detail::check(pl_follow(raw_, ids.data(), ids.size()), "follow");
    }
    RequestId unfollow(const std::vector<std::string>& user_ids) {
        const auto ids = detail::c_strings(user_ids);
        return detail::check(pl_unfollow(raw_, ids.data(), ids.size()), "unfollow");
    }

    // Invites. The reply to list_invites fills Event::invites.
    RequestId invite(const std::string& party, const std::string& user_id) {
        return detail::check(pl_invite(raw_, party.c_str(), user_id.c_str()), "invite");
    }
    RequestId decline_invite(const std::string& party) {
        return detail::check(pl_decline_invite(raw_, party.c_str()), "decline_invite");
    }
    RequestId revoke_invite(const std::string& party, const std::string& user_id) {
        return detail::check(pl_revoke_invite(raw_, party.c_str(), user_id.c_str()),
                             "revoke_invite");
    }
    RequestId list_invites() { return detail::check(pl_list_invites(raw_), "list_invites"); }

    // Join codes. The reply to create_join_code sets Event::join_code;
    // join_by_code answers as join_party does.
    RequestId create_join_code(const std::string& party) {
        return detail::check(pl_create_join_code(raw_, party.c_str()), "create_join_code");
    }
    RequestId clear_join_code(const std::string& party) {
        return detail::check(pl_clear_join_code(raw_, party.c_str()), "clear_join_code");
    }
    RequestId join_by_code(const std::string& code) {
        return detail::check(pl_join_by_code(raw_, code.c_str()), "join_by_code");
    }

    // Listing and search. The reply to search_parties fills Event::parties
    // and Event::next_cursor.
    RequestId list_party(const std::string& party, const KeyValues& properties) {
        const auto pairs = detail::c_pairs(properties);
        return detail::check(pl_list_party(raw_, party.c_str(), pairs.data(), pairs.size()),
                             "list_party");
    }
    RequestId unlist_party(const std::string& party) {
        return detail::check(pl_unlist_party(raw_, party.c_str()), "unlist_party");
    }
    RequestId search_parties(const PartySearch& search = {}) {
        const auto pairs = detail::c_pairs(search.properties);
        return detail::check(pl_search_parties(raw_, search.open_only, search.min_free_seats,
                                               pairs.data(), pairs.size(), search.limit,
                                               search.cursor),
                             "search_parties");
    }

    // Party state (leader only) and this session's attributes: `remove`
    // goes first, then `set`.
    RequestId set_party_state(const std::string& party, const KeyValues& set,
                              const std::vector<std::string>& remove = {}) {
        const auto pairs = detail::c_pairs(set);
        const auto keys = detail::c_strings(remove);
        return detail::check(pl_set_party_state(raw_, party.c_str(), pairs.data(), pairs.size(),
                                                keys.data(), keys.size()),
                             "set_party_state");
    }
    RequestId set_member_attributes(const std::string& party, const KeyValues& set,
                                    const std::vector<std::string>& remove = {}) {
        const auto pairs = detail::c_pairs(set);
        const auto keys = detail::c_strings(remove);
        return detail::check(pl_set_member_attributes(raw_, party.c_str(), pairs.data(),
                                                      pairs.size(), keys.data(), keys.size()),
                             "set_member_attributes");
    }

    // Bans (leader only); a zero duration lasts the party's life. The reply
    // to list_bans fills Event::bans.
    RequestId ban(const std::string& party, const std::string& user_id,
                  std::chrono::milliseconds duration = std::chrono::milliseconds::zero()) {
        if (duration.count() < 0) throw Error(PL_ERR_INVALID_ARGUMENT, "ban: negative duration");
        return detail::check(pl_ban(raw_, party.c_str(), user_id.c_str(),
                                    static_cast<std::uint64_t>(duration.count())),
                             "ban");
    }
    RequestId unban(const std::string& party, const std::string& user_id) {
        return detail::check(pl_unban(raw_, party.c_str(), user_id.c_str()), "unban");
    }
    RequestId list_bans(const std::string& party) {
        return detail::check(pl_list_bans(raw_, party.c_str()), "list_bans");
    }

    // Matchmaking: a solo ticket, or (party_id set, leader only) the whole
    // party's. The reply sets Event::ticket_id; every session in the ticket
    // then gets TicketStarted, and later Matched or TicketCancelled.
    RequestId submit_ticket(const TicketRequest& request) {
        const detail::CTicket ticket(request);
        return detail::check(pl_submit_ticket(raw_, ticket.get()), "submit_ticket");
    }
    // Stops a waiting ticket: this session's own, or its party's (leader).
    RequestId cancel_ticket(std::uint64_t ticket_id) {
        return detail::check(pl_cancel_ticket(raw_, ticket_id), "cancel_ticket");
    }

    // Leader only: asks every member whether it is ready, for timeout_ms
    // (5000 to 120000); the leader counts as ready. Members get
    // ReadyCheckStarted, the answers, and ReadyCheckEnded.
    RequestId start_ready_check(const std::string& party, const std::string& message,
                                std::uint64_t timeout_ms) {
        return detail::check(pl_start_ready_check(raw_, party.c_str(), message.c_str(), timeout_ms),
                             "start_ready_check");
    }
    // Answers the party's ready check check_id, or changes the answer.
    RequestId answer_ready_check(const std::string& party, std::uint64_t check_id, bool ready) {
        return detail::check(pl_answer_ready_check(raw_, party.c_str(), check_id, ready),
                             "answer_ready_check");
    }
    // Leader only: ends the running ready check now.
    RequestId cancel_ready_check(const std::string& party) {
        return detail::check(pl_cancel_ready_check(raw_, party.c_str()), "cancel_ready_check");
    }

    // Stops user_id's party data reaching this session: every op code, or
    // (with op_codes) those from min to max. The muted member is not told.
    RequestId mute(const std::string& party, const std::string& user_id,
                   std::optional<NumberRange> op_codes = std::nullopt) {
        return detail::check(pl_mute(raw_, party.c_str(), user_id.c_str(), op_codes.has_value(),
                                     op_codes ? op_codes->min : 0, op_codes ? op_codes->max : 0),
                             "mute");
    }
    RequestId unmute(const std::string& party, const std::string& user_id) {
        return detail::check(pl_unmute(raw_, party.c_str(), user_id.c_str()), "unmute");
    }
    // Blocks users for this session (no party data, status or invites
    // between them; a party it leads is closed to them); the reply fills
    // Event::blocked with the list now.
    RequestId block(const std::vector<std::string>& user_ids) {
        std::vector<const char*> ids = detail::c_strings(user_ids);
        return detail::check(pl_block(raw_, ids.data(), ids.size()), "block");
    }
    RequestId unblock(const std::vector<std::string>& user_ids) {
        std::vector<const char*> ids = detail::c_strings(user_ids);
        return detail::check(pl_unblock(raw_, ids.data(), ids.size()), "unblock");
    }
    RequestId list_blocks() { return detail::check(pl_list_blocks(raw_), "list_blocks"); }

    // Party data on the reliable stream; the reply says the server took it.
    RequestId send_data_reliable(const std::string& party, std::int64_t op_code, const void* data,
                                 std::size_t size) {
        return detail::check(
            pl_send_data_reliable(raw_, party.c_str(), op_code, bytes(data), size),
            "send_data_reliable");
    }
    RequestId send_data_reliable(const std::string& party, std::int64_t op_code,
                                 std::string_view data) {
        return send_data_reliable(party, op_code, data.data(), data.size());
    }
    RequestId send_data_reliable(const std::string& party, std::int64_t op_code,
                                 const std::vector<std::uint8_t>& data) {
        return send_data_reliable(party, op_code, data.data(), data.size());
    }

    // Party data as one datagram, sent at once (no reply). Throws Error on
    // a negative code, and on 12 (PayloadTooLarge) above the server's limit.
    void send_data(const std::string& party, std::int64_t op_code, const void* data,
                   std::size_t size) {
        const int result = pl_send_data(raw_, party.c_str(), op_code, bytes(data), size);
        if (result != PL_OK) detail::fail(result, "send_data");
    }
    void send_data(const std::string& party, std::int64_t op_code, std::string_view data) {
        send_data(party, op_code, data.data(), data.size());
    }
    void send_data(const std::string& party, std::int64_t op_code,
                   const std::vector<std::uint8_t>& data) {
        send_data(party, op_code, data.data(), data.size());
    }

    // Ends the session at once, without waiting; EventKind::Disconnected
    // follows (while connecting: the connection is cancelled, no Connected
    // comes). Every call after it throws Error with PL_ERR_CLOSED. The
    // destructor does this too; call it to see that event.
    void close() {
        const int result = pl_client_close(raw_);
        if (result != PL_OK) detail::fail(result, "close");
    }

    // For calls this wrapper does not cover; still owned by this Client.
    PlClient* get() const noexcept { return raw_; }

    // The C library's version, e.g. "0.1.0".
    static std::string version() { return pl_version(); }

private:
    explicit Client(PlClient* raw) noexcept : raw_(raw) {}

    // The C ABI takes bytes as uint8_t; callers have chars or anything.
    static const std::uint8_t* bytes(const void* data) {
        return static_cast<const std::uint8_t*>(data);
    }

    PlClient* raw_;
};

}  // namespace partyline

#endif  // PARTYLINE_HPP
