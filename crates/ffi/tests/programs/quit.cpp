// Quitting ends the session at once, by each way partyline.hpp documents:
// the destructor alone, and close() then the destructor. Twenty quits each,
// every other one by the party's leader: the player who stays must see
// MemberLeft (PL_LEAVE_SESSION_ENDED), and the lead come to it, within
// 1 s; never MemberConnection (a ghost in the grace window).
//
//   ./quit_cpp HOST:PORT CERT.pem      (run by crates/ffi/tests/quit.rs)

#include "partyline.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

using Clock = std::chrono::steady_clock;
using partyline::EventKind;

namespace {

const std::chrono::milliseconds at_once(1000);
std::string server, cert;

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
    std::exit(1);
}

std::optional<partyline::Event> next_event(partyline::Client& client, Clock::time_point deadline) {
    while (Clock::now() < deadline) {
        if (auto event = client.poll()) return event;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return std::nullopt;
}

// Waits (10 s at most) for an event of `kind`, for replies the one to
// `request`, which must have succeeded.
partyline::Event wait_for(partyline::Client& client, EventKind kind, partyline::RequestId request) {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (auto event = next_event(client, deadline)) {
        if (event->kind != kind || (kind == EventKind::Reply && event->request_id != request))
            continue;
        if (event->error_code != 0) fail("refused: " + event->error_message);
        return *event;
    }
    fail("no awaited event within 10 s");
}

partyline::Client connect_as(const std::string& user) {
    auto client = partyline::Client::connect({server, cert, user});
    wait_for(client, EventKind::Connected, 0);
    return client;
}

std::string party_of_two(partyline::Client& stay, partyline::Client& quitter, bool quitter_leads) {
    partyline::Client& leader = quitter_leads ? quitter : stay;
    partyline::Client& member = quitter_leads ? stay : quitter;
    const std::string party =
        wait_for(leader, EventKind::Reply, leader.create_party(true, 4, "quit")).party_id;
    wait_for(member, EventKind::Reply, member.join_party(party));
    if (!quitter_leads) {
        // Seen before the quit, so it cannot be mistaken for what follows.
        const auto deadline = Clock::now() + std::chrono::seconds(10);
        while (auto event = next_event(stay, deadline)) {
            if (event->kind == EventKind::MemberJoined && event->party_id == party) return party;
        }
        fail("stay never saw the quitter join");
    }
    return party;
}

double expect_left_at_once(partyline::Client& stay, const std::string& party,
                           const std::string& user, bool led, Clock::time_point quit_at) {
    bool left = false, lead_handed = !led;
    while (!(left && lead_handed)) {
        auto event = next_event(stay, quit_at + at_once);
        if (!event) fail(user + " quit, but the others were not told within 1 s");
        const bool here = event->party_id == party;
        const bool about = event->member.user_id == user;
        if (event->kind == EventKind::MemberLeft && here && about) {
            if (event->reason != PL_LEAVE_SESSION_ENDED) fail("left, but not as session ended");
            left = true;
        } else if (event->kind == EventKind::LeaderChanged && here) {
            if (event->member.user_id != "stay") fail("the lead went elsewhere");
            lead_handed = true;
        } else if (event->kind == EventKind::MemberConnection && about) {
            fail(user + " quit, but the server saw a lost connection (a ghost)");
        }
    }
    return std::chrono::duration<double>(Clock::now() - quit_at).count();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s HOST:PORT CERT.pem\n", argv[0]);
        return 2;
    }
    server = argv[1];
    cert = argv[2];
    try {
        auto stay = connect_as("stay");
        const char* paths[] = {"destructor", "close + destructor"};
        for (int path = 0; path < 2; ++path) {
            double slowest = 0;
            for (int round = 0; round < 20; ++round) {
                const std::string user =
                    "quitter-" + std::to_string(path) + "-" + std::to_string(round);
                const bool quitter_leads = round % 2 == 0;
                std::string party;
                Clock::time_point quit_at;
                {
                    auto quitter = connect_as(user);
                    party = party_of_two(stay, quitter, quitter_leads);
                    quit_at = Clock::now();
                    if (path == 1) quitter.close();
                }  // ~Client
                const double took = expect_left_at_once(stay, party, user, quitter_leads, quit_at);
                if (took > slowest) slowest = took;
                wait_for(stay, EventKind::Reply, stay.leave_party(party));
            }
            std::printf("%s: 20 quits, the others told within %.3f s at most\n", paths[path],
                        slowest);
        }
    } catch (const partyline::Error& error) {
        fail(std::string("partyline error ") + std::to_string(error.code()) + ": " + error.what());
    }
    std::printf("every quit ended its session at once\n");
    return 0;
}
