/* A party's whole life through the C++ wrapper: three players, one process.
 *
 *   g++ -std=c++17 -Wall -Wextra -Werror -pedantic -I crates/ffi/include \
 *       crates/ffi/samples/party.cpp target/debug/libpartyline_ffi.a \
 *       -lpthread -ldl -lm -o party_cpp
 *   ./party_cpp 127.0.0.1:7350 certs/cert.pem
 *
 * The same story as party.c: Ana creates a closed party; Bob and Cyd ask to
 * join and Ana accepts them; data goes both ways (datagram and reliable);
 * Ana leaves, so Bob (seated longest) leads; Bob closes the party and Cyd
 * is told. Failures throw; the clients free themselves on the way out.
 */
#include "partyline.hpp"

#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

using partyline::Client;
using partyline::Event;
using partyline::EventKind;

namespace {

// A failed expectation in the story.
struct Failed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void expect(bool condition, const std::string& what) {
    if (!condition) throw Failed("expected " + what);
}

// Polls until an event of `kind` arrives (and, for replies, the one for
// `request`, which must have succeeded); other events are printed and
// skipped. 10 s at most. A game polls once per frame instead.
Event wait_for(Client& client, const std::string& who, EventKind kind,
               partyline::RequestId request = 0) {
    for (int waited = 0; waited < 10000;) {
        std::optional<Event> event = client.poll();
        if (!event) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            ++waited;
            continue;
        }
        if (event->kind == kind && (kind != EventKind::Reply || event->request_id == request)) {
            if (kind == EventKind::Reply && event->error_code != 0) {
                throw Failed(who + "'s request " + std::to_string(request) + " refused: " +
                             std::to_string(event->error_code) + " " + event->error_message);
            }
            return std::move(*event);
        }
        if (event->kind == EventKind::Disconnected) {
            throw Failed(who + " disconnected: " + event->error_message);
        }
        std::printf("  (%s also saw event %d)\n", who.c_str(), static_cast<int>(event->kind));
    }
    throw Failed(who + " waited 10 s for event " + std::to_string(static_cast<int>(kind)));
}

Client connect_as(const std::string& server, const std::string& cert, const std::string& user) {
    partyline::ConnectOptions options;
    options.server = server;
    options.cert_pem_path = cert;
    options.user_id = user;
    options.username = user;
    Client client = Client::connect(options);
    Event connected = wait_for(client, user, EventKind::Connected);
    std::printf("%s connected as session %s\n", connected.member.username.c_str(),
                connected.session_id.c_str());
    return client;
}

void play(const std::string& server, const std::string& cert) {
    std::printf("libpartyline %s\n", Client::version().c_str());
    Client ana = connect_as(server, cert, "ana");
    Client bob = connect_as(server, cert, "bob");
    Client cyd = connect_as(server, cert, "cyd");

    // Ana creates a closed party of up to 4.
    Event created = wait_for(ana, "ana", EventKind::Reply, ana.create_party(false, 4, "squad"));
    expect(created.party && created.party->members.size() == 1, "a party with its leader");
    const std::string party = created.party->id;
    std::printf("ana created party %s (label %s)\n", party.c_str(), created.party->label.c_str());

    // Bob and Cyd ask; Ana accepts each.
    struct Asker {
        Client& client;
        const char* name;
    };
    for (Asker asker : {Asker{bob, "bob"}, Asker{cyd, "cyd"}}) {
        const char* name = asker.name;
        Event queued = wait_for(asker.client, name, EventKind::Reply, asker.client.join_party(party));
        expect(queued.queued, "a queued join request");
        Event asked = wait_for(ana, "ana", EventKind::JoinRequested);
        std::printf("%s asks to join\n", asked.member.user_id.c_str());
        wait_for(ana, "ana", EventKind::Reply, ana.accept(party, name));
        Event joined = wait_for(asker.client, name, EventKind::PartyJoined);
        expect(joined.party.has_value(), "the party on joining");
        std::printf("%s is in, %zu members, led by %s\n", name, joined.party->members.size(),
                    joined.party->leader.user_id.c_str());
    }

    // Data both ways: a datagram from Ana, a reliable message back from Bob.
    const std::string hello = "hello squad";
    ana.send_data(party, 7, hello);
    Event data = wait_for(bob, "bob", EventKind::Data);
    expect(data.op_code == 7 && data.data_text() == hello && !data.reliable, "Ana's datagram");
    std::printf("bob got a datagram from %s: %s\n", data.member.user_id.c_str(),
                std::string(data.data_text()).c_str());
    wait_for(bob, "bob", EventKind::Reply, bob.send_data_reliable(party, 8, "ready"));
    data = wait_for(ana, "ana", EventKind::Data);
    expect(data.op_code == 8 && data.reliable && data.member.user_id == "bob" &&
               data.data_text() == "ready",
           "Bob's reliable message");
    std::printf("ana got a reliable message from %s: %s\n", data.member.user_id.c_str(),
                std::string(data.data_text()).c_str());

    // A ready check: Ana (counted ready) asks; Bob and Cyd are ready; the
    // last ready answer ends it, and Cyd's party view showed it meanwhile.
    wait_for(ana, "ana", EventKind::Reply, ana.start_ready_check(party, "pull?", 30000));
    Event check = wait_for(bob, "bob", EventKind::ReadyCheckStarted);
    expect(check.ready_check && check.ready_check->no_answer.size() == 2 &&
               check.ready_check->ready.size() == 1 && check.ready_check->message == "pull?",
           "a check asking Bob and Cyd, Ana ready");
    const std::uint64_t check_id = check.ready_check->check_id;
    wait_for(bob, "bob", EventKind::Reply, bob.answer_ready_check(party, check_id, true));
    wait_for(cyd, "cyd", EventKind::ReadyCheckStarted);
    wait_for(cyd, "cyd", EventKind::Reply, cyd.answer_ready_check(party, check_id, true));
    Event ended = wait_for(ana, "ana", EventKind::ReadyCheckEnded);
    expect(ended.reason == PL_READY_CHECK_ALL_READY && ended.ready_check &&
               ended.ready_check->ready.size() == 3 && ended.check_id == check_id,
           "everyone ready");
    std::printf("ready check %llu: all %zu ready\n", static_cast<unsigned long long>(check_id),
                ended.ready_check->ready.size());

    // Ana mutes Bob's voice (op codes 100 to 199): his voice does not
    // reach her, his game data does (reliable data keeps its order: the
    // game's message is the first she gets). Bob is not told.
    wait_for(ana, "ana", EventKind::Reply, ana.mute(party, "bob", partyline::NumberRange{100, 199}));
    Event view = wait_for(ana, "ana", EventKind::Reply, ana.get_party(party));
    expect(view.party && view.party->muted.size() == 1 && view.party->muted[0].user_id == "bob" &&
               view.party->muted[0].has_op_codes && view.party->muted[0].op_code_max == 199,
           "Ana's view to show her mute of Bob's voice");
    wait_for(bob, "bob", EventKind::Reply, bob.send_data_reliable(party, 150, "voice"));
    wait_for(bob, "bob", EventKind::Reply, bob.send_data_reliable(party, 2, "game"));
    data = wait_for(ana, "ana", EventKind::Data);
    expect(data.op_code == 2, "Bob's game data, not his voice");
    // Cyd blocks Bob: the reply lists him.
    Event blocked = wait_for(cyd, "cyd", EventKind::Reply, cyd.block({"bob"}));
    expect(blocked.blocked.size() == 1 && blocked.blocked[0] == "bob", "Cyd's list to name Bob");
    std::printf("ana muted bob's voice: got op code %lld only; cyd blocked %s\n",
                static_cast<long long>(data.op_code), blocked.blocked[0].c_str());

    // Ana leaves: Bob, seated longest, leads.
    wait_for(ana, "ana", EventKind::Reply, ana.leave_party(party));
    Event leader = wait_for(cyd, "cyd", EventKind::LeaderChanged);
    expect(leader.member.user_id == "bob", "Bob to lead");
    std::printf("ana left; %s leads now\n", leader.member.user_id.c_str());

    // Bob has the next leader chosen by connection quality; Cyd is told,
    // and each member's quality comes with the party.
    Event policy = wait_for(bob, "bob", EventKind::Reply,
                            bob.set_leader_policy(party, partyline::LeaderPolicy::ConnectionQuality));
    expect(policy.party && policy.party->leader_policy == partyline::LeaderPolicy::ConnectionQuality &&
               policy.party->members.size() == 2,
           "the new policy in the reply");
    Event updated = wait_for(cyd, "cyd", EventKind::PartyUpdated);
    expect(updated.party && updated.party->leader_policy == partyline::LeaderPolicy::ConnectionQuality,
           "Cyd told the policy");
    std::printf("bob set the leader policy: connection quality (bob's quality %d)\n",
                static_cast<int>(policy.party->members[0].quality));

    // Bob closes the party; Cyd is told.
    wait_for(bob, "bob", EventKind::Reply, bob.close_party(party));
    Event closed = wait_for(cyd, "cyd", EventKind::PartyClosed);
    expect(closed.party_id == party, "the same party to close");
    std::printf("bob closed the party; cyd was told\n");

    // An error is an exception with a code and a sentence.
    try {
        cyd.join_party("not-a-party");
        throw Failed("a bad party id to be refused");
    } catch (const partyline::Error& error) {
        expect(error.code() == PL_ERR_INVALID_ARGUMENT, "PL_ERR_INVALID_ARGUMENT");
        std::printf("a bad party id (code %d): %s\n", error.code(), error.what());
    }

    cyd.close();
    wait_for(cyd, "cyd", EventKind::Disconnected);
    // ana, bob and cyd free themselves here.
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
    std::printf("the whole party life passed\n");
    return 0;
}
