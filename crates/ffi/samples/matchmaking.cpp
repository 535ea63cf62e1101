/* Matchmaking through the C++ wrapper: a duo and two solos make a match of 4.
 *
 *   g++ -std=c++17 -Wall -Wextra -Werror -pedantic -I crates/ffi/include \
 *       crates/ffi/samples/matchmaking.cpp target/debug/libpartyline_ffi.a \
 *       -lpthread -ldl -lm -o matchmaking_cpp
 *   ./matchmaking_cpp 127.0.0.1:7350 certs/cert.pem
 *
 * The same story as matchmaking.c: Ana queues her duo with Bob, each with
 * a hero of their own; Cyd and Dav queue alone; all four are told of one
 * match of 4 with a token for the game server, the duo's two players
 * carrying its party id. Cyd queues again and cancels; refusals come back
 * with their codes; Dav joining the duo cancels its new ticket. Failures
 * throw. As in matchmaking.c, each player keeps what it polled in an inbox:
 * a reply is not ordered against the events its command causes.
 */
#include "partyline.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using partyline::Client;
using partyline::Event;
using partyline::EventKind;
using partyline::KeyValues;
using partyline::MatchedPlayer;
using partyline::Numbers;
using partyline::TicketRequest;

namespace {

struct Failed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void expect(bool condition, const std::string& what) {
    if (!condition) throw Failed("expected " + what);
}

// A client and the events it polled that the story has not taken yet.
struct Player {
    std::string name;
    Client client;
    std::deque<Event> inbox{};
};

// Takes the first event of `kind` (for replies, the one for `request`,
// whatever its error code) from the inbox, polling until it comes; 10 s
// at most.
Event next_of(Player& p, EventKind kind, partyline::RequestId request = 0) {
    for (int waited = 0; waited < 10000;) {
        for (auto it = p.inbox.begin(); it != p.inbox.end(); ++it) {
            if (it->kind != kind || (kind == EventKind::Reply && it->request_id != request))
                continue;
            Event event = std::move(*it);
            p.inbox.erase(it);
            return event;
        }
        std::optional<Event> event = p.client.poll();
        if (!event) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            ++waited;
            continue;
        }
        if (event->kind == EventKind::Disconnected)
            throw Failed(p.name + " disconnected: " + event->error_message);
        p.inbox.push_back(std::move(*event));
    }
    throw Failed(p.name + " waited 10 s for event " + std::to_string(static_cast<int>(kind)));
}

// The reply to `request`, which must have succeeded.
Event ok(Player& p, partyline::RequestId request) {
    Event reply = next_of(p, EventKind::Reply, request);
    if (reply.error_code != 0)
        throw Failed(p.name + "'s request refused: " + std::to_string(reply.error_code) + " " +
                     reply.error_message);
    return reply;
}

// The code a request that must be refused came back with.
int refusal(Player& p, partyline::RequestId request) {
    Event reply = next_of(p, EventKind::Reply, request);
    expect(reply.error_code != 0, p.name + "'s request to be refused");
    return reply.error_code;
}

Player connect_as(const std::string& server, const std::string& cert, const std::string& user) {
    Player p{user, Client::connect({server, cert, user})};
    next_of(p, EventKind::Connected);
    std::printf("%s connected\n", user.c_str());
    return p;
}

// The one player of the match with this user id.
const MatchedPlayer& player(const Event& match, const std::string& user) {
    const MatchedPlayer* found = nullptr;
    for (const auto& p : match.players) {
        if (p.member.user_id != user) continue;
        expect(!found, "each player once in the match");
        found = &p;
    }
    expect(found != nullptr, user + " in the match");
    return *found;
}

// What every ticket of the story says about itself and wants of others.
TicketRequest ticket_for_four(std::optional<std::string> party, std::int64_t skill) {
    TicketRequest ticket;
    ticket.party_id = std::move(party);
    ticket.min_count = 4;
    ticket.max_count = 4;
    ticket.strings = {{"mode", "ranked"}};
    ticket.numbers = {{"skill", skill}};
    ticket.query.strings = {{"mode", "ranked"}};
    ticket.query.ranges = {{"skill", {1000, 2000}}};
    return ticket;
}

void play(const std::string& server, const std::string& cert) {
    Player ana = connect_as(server, cert, "ana");
    Player bob = connect_as(server, cert, "bob");
    Player cyd = connect_as(server, cert, "cyd");
    Player dav = connect_as(server, cert, "dav");

    // The duo: Ana's open party, Bob in it.
    const std::string party = ok(ana, ana.client.create_party(true, 4, "duo")).party->id;
    Event joined = ok(bob, bob.client.join_party(party));
    expect(joined.party && joined.party->members.size() == 2, "Bob seated, two members");
    std::printf("duo party %s\n", party.c_str());

    // Ana queues the duo, each member with a hero of their own.
    TicketRequest duo = ticket_for_four(party, 1200);
    duo.members = {{"ana", {{"hero", "mage"}}, {{"level", 7}}}, {"bob", {{"hero", "tank"}}, {}}};
    const std::uint64_t duo_ticket = ok(ana, ana.client.submit_ticket(duo)).ticket_id;
    expect(duo_ticket > 0, "a ticket id in the reply");
    for (Player* c : {&ana, &bob}) {
        Event started = next_of(*c, EventKind::TicketStarted);
        expect(started.ticket_id == duo_ticket && started.party_id == party,
               "both of the duo told the party's ticket started");
    }
    int code = refusal(ana, ana.client.submit_ticket(duo));
    expect(code == PL_REFUSED_ALREADY_MATCHMAKING && code == 29,
           "a second ticket for the party refused with 29");
    std::printf("ana queued the duo (ticket %llu); a second ticket refused: %d\n",
                static_cast<unsigned long long>(duo_ticket), code);

    // Cyd and Dav queue alone; Cyd may wait for 2 after the relax time.
    TicketRequest cyd_alone = ticket_for_four(std::nullopt, 1500);
    cyd_alone.relaxed_min_count = 2;
    TicketRequest dav_alone = ticket_for_four(std::nullopt, 1100);
    dav_alone.members = {{"dav", {{"hero", "healer"}}, {}}};
    const std::uint64_t cyd_ticket = ok(cyd, cyd.client.submit_ticket(cyd_alone)).ticket_id;
    Event started = next_of(cyd, EventKind::TicketStarted);
    expect(started.ticket_id == cyd_ticket && started.party_id.empty(),
           "Cyd's solo ticket started, without a party");
    const std::uint64_t dav_ticket = ok(dav, dav.client.submit_ticket(dav_alone)).ticket_id;
    expect(cyd_ticket != duo_ticket && dav_ticket != cyd_ticket && dav_ticket != duo_ticket,
           "three tickets, three ids");

    // One match of 4 reaches all four, each told its own ticket.
    std::vector<std::pair<Player*, std::uint64_t>> everyone = {
        {&ana, duo_ticket}, {&bob, duo_ticket}, {&cyd, cyd_ticket}, {&dav, dav_ticket}};
    std::optional<Event> first;
    for (auto& [client, ticket] : everyone) {
        Event match = next_of(*client, EventKind::Matched);
        expect(match.ticket_id == ticket, "each player told the ticket it queued with");
        expect(match.players.size() == 4, "4 players in the match");
        expect(match.match_id.size() == 36 && match.match_id[8] == '-',
               "the match id as UUID text");
        expect(!match.match_token.empty(), "a match token");
        expect(match.token_expires_at > static_cast<std::uint64_t>(std::time(nullptr)),
               "a token that has not expired");
        if (!first) first = match;
        expect(match.match_id == first->match_id && match.match_token == first->match_token &&
                   match.token_expires_at == first->token_expires_at,
               "one match, one token, for all four");
        const MatchedPlayer &a = player(match, "ana"), &b = player(match, "bob"),
                            &c = player(match, "cyd"), &d = player(match, "dav");
        expect(a.party_id == party && b.party_id == party,
               "the duo's two players carrying its party id");
        expect(c.party_id.empty() && d.party_id.empty(), "the solos carrying no party");
        expect(a.member.username == "ana" && a.member.session_id.size() == 36,
               "a player's name and session");
        expect(a.strings == KeyValues{{"hero", "mage"}, {"mode", "ranked"}} &&
                   a.numbers == Numbers{{"level", 7}, {"skill", 1200}},
               "Ana's ticket's properties and her own");
        expect(b.strings == KeyValues{{"hero", "tank"}, {"mode", "ranked"}} &&
                   b.numbers == Numbers{{"skill", 1200}},
               "Bob's hero and the duo's skill");
        expect(c.strings == KeyValues{{"mode", "ranked"}} && c.numbers == Numbers{{"skill", 1500}},
               "Cyd's ticket's properties");
        expect(d.strings == KeyValues{{"hero", "healer"}, {"mode", "ranked"}} &&
                   d.numbers == Numbers{{"skill", 1100}},
               "Dav's hero and skill");
    }
    std::printf("all four matched: 4 players, the duo with its party, the solos without\n");
    std::printf("match %s token %s expires %llu\n", first->match_id.c_str(),
                first->match_token.c_str(),
                static_cast<unsigned long long>(first->token_expires_at));

    // Cyd queues again; a second ticket and a stranger's cancel are
    // refused; Cyd's own cancel is told with reason 0.
    TicketRequest again = ticket_for_four(std::nullopt, 1500);
    const std::uint64_t next_ticket = ok(cyd, cyd.client.submit_ticket(again)).ticket_id;
    started = next_of(cyd, EventKind::TicketStarted);
    expect(next_ticket != cyd_ticket && started.ticket_id == next_ticket, "a new ticket");
    const int twice = refusal(cyd, cyd.client.submit_ticket(again));
    expect(twice == PL_REFUSED_ALREADY_MATCHMAKING, "a second solo ticket refused (29)");
    const int stranger = refusal(dav, dav.client.cancel_ticket(next_ticket));
    expect(stranger == PL_REFUSED_TICKET_NOT_FOUND && stranger == 30,
           "another's ticket not found for Dav (30)");
    ok(cyd, cyd.client.cancel_ticket(next_ticket));
    Event cancelled = next_of(cyd, EventKind::TicketCancelled);
    expect(cancelled.ticket_id == next_ticket && cancelled.reason == 0,
           "Cyd's ticket cancelled with reason 0 (cancelled)");
    code = refusal(cyd, cyd.client.cancel_ticket(next_ticket));
    expect(code == PL_REFUSED_TICKET_NOT_FOUND, "a cancelled ticket not found (30)");
    std::printf("cyd cancelled ticket %llu (reason %d); twice refused: %d, by dav: %d\n",
                static_cast<unsigned long long>(next_ticket), cancelled.reason, twice, stranger);

    // Tickets that cannot be.
    TicketRequest too_small = ticket_for_four(party, 1200);
    too_small.min_count = too_small.max_count = 1;
    const int too_large = refusal(ana, ana.client.submit_ticket(too_small));
    expect(too_large == PL_REFUSED_PARTY_TOO_LARGE && too_large == 32,
           "a party of 2 in a ticket for 1 refused with 32");
    TicketRequest no_multiple = ticket_for_four(std::nullopt, 1100);
    no_multiple.count_multiple = 0;
    const int invalid = refusal(dav, dav.client.submit_ticket(no_multiple));
    expect(invalid == PL_REFUSED_INVALID_TICKET && invalid == 31,
           "count_multiple 0 refused with 31");
    const int not_leader = refusal(bob, bob.client.submit_ticket(duo));
    expect(not_leader == PL_REFUSED_NOT_LEADER, "a member queueing the party refused (4)");
    std::printf("refused: party too large %d, invalid ticket %d, not leader %d\n", too_large,
                invalid, not_leader);

    // The duo queues again; Dav joining the party cancels it for both.
    const std::uint64_t duo_again = ok(ana, ana.client.submit_ticket(duo)).ticket_id;
    for (Player* c : {&ana, &bob}) {
        started = next_of(*c, EventKind::TicketStarted);
        expect(started.ticket_id == duo_again, "the duo's new ticket started");
    }
    ok(dav, dav.client.join_party(party));
    for (Player* c : {&ana, &bob}) {
        cancelled = next_of(*c, EventKind::TicketCancelled);
        expect(cancelled.ticket_id == duo_again && cancelled.reason == 1,
               "the party's ticket cancelled with reason 1 (members changed)");
    }
    std::printf("dav joined the duo: its ticket cancelled (reason %d)\n", cancelled.reason);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s HOST:PORT CERT.pem\n", argv[0]);
        return 2;
    }
    try {
        play(argv[1], argv[2]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "FAILED: %s\n", e.what());
        return 1;
    }
    std::printf("matchmaking passed\n");
    return 0;
}
