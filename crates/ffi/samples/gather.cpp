/* Find, invite, gather through the C++ wrapper: four players, one process.
 *
 *   g++ -std=c++17 -Wall -Wextra -Werror -pedantic -I crates/ffi/include \
 *       crates/ffi/samples/gather.cpp target/debug/libpartyline_ffi.a \
 *       -lpthread -ldl -lm -o gather_cpp
 *   ./gather_cpp 127.0.0.1:7350 certs/cert.pem
 *
 * The same story as gather.c: Ana follows Bob and Cyd; she invites Bob
 * into her closed party and Cyd declines; Cyd joins by a join code; Dav
 * finds the listed party by a property; party state and Bob's attributes
 * reach the others and the snapshot; Ana bans Cyd, whose rejoin is
 * refused; Bob going offline reaches Ana. Failures throw.
 */
#include "partyline.hpp"

#include <cctype>
#include <chrono>
#include <cstdio>
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

namespace {

struct Failed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void expect(bool condition, const std::string& what) {
    if (!condition) throw Failed("expected " + what);
}

// Polls until an event of `kind` arrives (for replies, the one for
// `request`, whatever its error code); others are printed and skipped.
Event next_of(Client& client, const std::string& who, EventKind kind,
              partyline::RequestId request = 0) {
    for (int waited = 0; waited < 10000;) {
        std::optional<Event> event = client.poll();
        if (!event) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            ++waited;
            continue;
        }
        if (event->kind == kind && (kind != EventKind::Reply || event->request_id == request))
            return std::move(*event);
        if (event->kind == EventKind::Disconnected)
            throw Failed(who + " disconnected: " + event->error_message);
        std::printf("  (%s also saw event %d)\n", who.c_str(), static_cast<int>(event->kind));
    }
    throw Failed(who + " waited 10 s for event " + std::to_string(static_cast<int>(kind)));
}

// The reply to `request`, which must have succeeded.
Event ok(Client& client, const std::string& who, partyline::RequestId request) {
    Event reply = next_of(client, who, EventKind::Reply, request);
    if (reply.error_code != 0)
        throw Failed(who + "'s request refused: " + std::to_string(reply.error_code) + " " +
                     reply.error_message);
    return reply;
}

Client connect_as(const std::string& server, const std::string& cert, const std::string& user) {
    Client client = Client::connect({server, cert, user});
    next_of(client, user, EventKind::Connected);
    std::printf("%s connected\n", user.c_str());
    return client;
}

void play(const std::string& server, const std::string& cert) {
    Client ana = connect_as(server, cert, "ana");
    Client cyd = connect_as(server, cert, "cyd");

    // Status and follows: Cyd is online already, Bob comes later.
    ok(ana, "ana", ana.set_status("in the menu"));
    Event followed = ok(ana, "ana", ana.follow({"bob", "cyd"}));
    expect(followed.statuses.size() == 1 && followed.statuses[0].member.user_id == "cyd" &&
               followed.statuses[0].status.empty(),
           "following to find Cyd (only) online");
    Client bob = connect_as(server, cert, "bob");
    Event online = next_of(ana, "ana", EventKind::StatusOnline);
    expect(online.member.user_id == "bob" && online.status.empty(), "Bob online");
    ok(bob, "bob", bob.set_status("looking for a party"));
    Event changed = next_of(ana, "ana", EventKind::StatusChanged);
    expect(changed.member.user_id == "bob" && changed.status == "looking for a party",
           "Bob's new status");
    std::printf("ana sees bob online: \"%s\"\n", changed.status.c_str());

    // Ana's closed party, with state to start with.
    Event created = ok(ana, "ana",
                       ana.create_party(false, 4, "duel night", partyline::InvitePolicy::Leader,
                                        {{"mode", "duel"}}));
    expect(created.party && created.party->state == KeyValues{{"mode", "duel"}} &&
               created.party->invite_policy == partyline::InvitePolicy::Leader &&
               created.party->join_code.empty() && !created.party->listed,
           "a closed party with state mode=duel");
    const std::string party = created.party->id;

    // An invite seats Bob in the closed party.
    ok(ana, "ana", ana.invite(party, "bob"));
    Event invited = next_of(bob, "bob", EventKind::Invited);
    expect(invited.party_id == party && invited.member.user_id == "ana" &&
               invited.invites.size() == 1 && invited.invites[0].label == "duel night" &&
               invited.invites[0].inviter.user_id == "ana" && invited.invites[0].max_size == 4 &&
               invited.invites[0].member_count == 1 && invited.invites[0].expires_at_ms > 0,
           "Bob's invite from Ana");
    Event invites = ok(bob, "bob", bob.list_invites());
    expect(invites.invites.size() == 1 && invites.invites[0].party_id == party,
           "Bob's one pending invite");
    Event joined = ok(bob, "bob", bob.join_party(party));
    expect(!joined.queued && joined.party && joined.party->members.size() == 2,
           "the invite to seat Bob at once");
    expect(next_of(ana, "ana", EventKind::MemberJoined).member.user_id == "bob", "Bob seated");
    std::printf("bob was invited and is in (%zu members)\n", joined.party->members.size());

    // Cyd declines; Ana is told.
    ok(ana, "ana", ana.invite(party, "cyd"));
    expect(next_of(cyd, "cyd", EventKind::Invited).party_id == party, "Cyd's invite");
    ok(cyd, "cyd", cyd.decline_invite(party));
    Event declined = next_of(ana, "ana", EventKind::InviteDeclined);
    expect(declined.party_id == party && declined.member.user_id == "cyd", "Cyd's decline");
    expect(ok(cyd, "cyd", cyd.list_invites()).invites.empty(), "no invite left for Cyd");
    std::printf("cyd declined; ana was told\n");

    // Ana opens the party, lets members invite, and makes a join code.
    Event updated = ok(ana, "ana",
                       ana.update_party(party, true, std::nullopt, std::nullopt,
                                        partyline::InvitePolicy::AnyMember));
    expect(updated.party && updated.party->open &&
               updated.party->invite_policy == partyline::InvitePolicy::AnyMember,
           "an open party where any member invites");
    updated = next_of(bob, "bob", EventKind::PartyUpdated);
    expect(updated.party->invite_policy == partyline::InvitePolicy::AnyMember,
           "Bob to see the new policy");
    const std::string code = ok(ana, "ana", ana.create_join_code(party)).join_code;
    expect(code.size() == 6, "a 6-character join code");
    expect(next_of(bob, "bob", EventKind::JoinCodeChanged).join_code == code, "Bob sees the code");
    std::string typed = code.substr(0, 3) + "-" + code.substr(3);
    for (char& c : typed) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    Event by_code = ok(cyd, "cyd", cyd.join_by_code(typed));
    expect(!by_code.queued && by_code.party && by_code.party->id == party &&
               by_code.party->members.size() == 3 && by_code.party->join_code == code,
           "Cyd seated by the code (typed as " + typed + ")");
    expect(next_of(ana, "ana", EventKind::MemberJoined).member.user_id == "cyd", "Cyd seated");
    std::printf("cyd joined by code %s\n", code.c_str());

    // Listing and search.
    const KeyValues listing{{"region", "eu"}, {"mode", "duel"}};
    ok(ana, "ana", ana.list_party(party, listing));
    Event listed = next_of(bob, "bob", EventKind::ListingChanged);
    expect(listed.listed && listed.properties == listing, "Bob to see the listing");
    Client dav = connect_as(server, cert, "dav");
    partyline::PartySearch search;
    search.properties = {{"region", "eu"}};
    search.min_free_seats = 1;
    Event found = ok(dav, "dav", dav.search_parties(search));
    expect(found.parties.size() == 1 && found.parties[0].id == party &&
               found.parties[0].member_count == 3 && found.parties[0].properties == listing &&
               found.parties[0].label == "duel night" && found.next_cursor == 0,
           "region=eu to find the party");
    search.properties = {{"region", "us"}};
    expect(ok(dav, "dav", dav.search_parties(search)).parties.empty(), "region=us: nothing");
    std::printf("dav found the party by region=eu\n");

    // Party state and member attributes.
    ok(ana, "ana", ana.set_party_state(party, {{"map", "docks"}}, {"mode"}));
    Event state = next_of(bob, "bob", EventKind::PartyStateChanged);
    expect(state.party_id == party && state.state == KeyValues{{"map", "docks"}},
           "Bob to see the state map=docks, mode removed");
    const KeyValues mage{{"hero", "mage"}, {"ready", "yes"}};
    ok(bob, "bob", bob.set_member_attributes(party, mage));
    Event attributes = next_of(ana, "ana", EventKind::MemberAttributesChanged);
    expect(attributes.member.user_id == "bob" && attributes.attributes == mage,
           "Ana to see Bob's attributes");
    for (Client* viewer : {&ana, &cyd}) {
        Event snapshot = ok(*viewer, "viewer", viewer->get_party(party));
        expect(snapshot.party && snapshot.party->state == KeyValues{{"map", "docks"}} &&
                   snapshot.party->listed && snapshot.party->properties == listing &&
                   snapshot.party->join_code == code,
               "the snapshot to show state, listing and code");
        for (const auto& member : snapshot.party->members)
            expect(member.attributes == (member.user_id == "bob" ? mage : KeyValues{}),
                   member.user_id + "'s attributes in the snapshot");
    }
    std::printf("ana and cyd see map=docks and bob's hero=mage in the party\n");

    // Ana bans Cyd: gone, told why, and kept out.
    ok(ana, "ana", ana.ban(party, "cyd", std::chrono::minutes(1)));
    Event banned = next_of(cyd, "cyd", EventKind::Banned);
    expect(banned.party_id == party && banned.until_ms > 0, "Cyd told of the ban");
    Event left = next_of(bob, "bob", EventKind::MemberLeft);
    expect(left.member.user_id == "cyd" && left.reason == 3, "Cyd gone with reason 3");
    Event refused = next_of(cyd, "cyd", EventKind::Reply, cyd.join_party(party));
    expect(refused.error_code == PL_REFUSED_BANNED && refused.error_code == 22,
           "Cyd's rejoin refused with 22");
    Event bans = ok(ana, "ana", ana.list_bans(party));
    expect(bans.bans.size() == 1 && bans.bans[0].user_id == "cyd" &&
               bans.bans[0].until_ms == banned.until_ms,
           "one ban, Cyd's");
    std::printf("ana banned cyd (rejoin refused: %d)\n", refused.error_code);
    try {
        ana.ban(party, "cyd", std::chrono::milliseconds(-1));
        throw Failed("a negative ban to throw");
    } catch (const partyline::Error& error) {
        expect(error.code() == PL_ERR_INVALID_ARGUMENT, "PL_ERR_INVALID_ARGUMENT");
    }

    // Bob goes offline; Ana is told.
    bob.close();
    Event offline = next_of(ana, "ana", EventKind::StatusOffline);
    expect(offline.member.user_id == "bob", "Bob offline");
    std::printf("ana saw bob go offline\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s HOST:PORT CERT.pem\n", argv[0]);
        return 2;
    }
    try {
        play(argv[1], argv[2]);
    } catch (const partyline::Error& error) {
        std::fprintf(stderr, "FAILED: %s (code %d)\n", error.what(), error.code());
        return 1;
    } catch (const std::exception& error) {
        std::fprintf(stderr, "FAILED: %s\n", error.what());
        return 1;
    }
    std::printf("find, invite, gather passed\n");
    return 0;
}
