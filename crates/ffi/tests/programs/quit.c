/* Quitting ends the session at once, by each way partyline.h documents:
 * pl_client_free alone, pl_client_close then pl_client_free, and
 * pl_client_close, polling until PL_EVENT_DISCONNECTED, then
 * pl_client_free. Twenty quits each, every other one by the party's
 * leader: the player who stays must see PL_EVENT_MEMBER_LEFT
 * (PL_LEAVE_SESSION_ENDED), and the lead come to it, within 1 s; never
 * PL_EVENT_MEMBER_CONNECTION (a ghost in the grace window).
 *
 *   ./quit HOST:PORT CERT.pem      (run by crates/ffi/tests/quit.rs)
 */
#define _POSIX_C_SOURCE 199309L
#include "partyline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 20
#define AT_ONCE 1.0

static const char *server;
static const char *cert;

static void fail(const char *what) {
    char message[512];
    pl_last_error(message, sizeof message);
    fprintf(stderr, "FAILED: %s (last error: %s)\n", what, message);
    exit(1);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* The next event, waiting at most until `deadline`; 0 when none came. */
static int next_event(PlClient *client, PlEvent *event, double deadline) {
    while (now() < deadline) {
        int got = pl_client_poll_sized(client, event, sizeof *event);
        if (got < 0) fail("poll");
        if (got == 1) return 1;
        sleep_ms(1);
    }
    return 0;
}

/* Waits (10 s at most) for an event of `kind`, for replies the one to
 * `request`, which must have succeeded; copies its party id if asked. */
static void wait_for(PlClient *client, int kind, int64_t request, char *party_id) {
    PlEvent event;
    double deadline = now() + 10.0;
    while (next_event(client, &event, deadline)) {
        if (event.kind != kind || (kind == PL_EVENT_REPLY && event.request_id != request)) continue;
        if (event.error_code != 0) {
            fprintf(stderr, "FAILED: request %lld refused: %d %s\n", (long long)request,
                    event.error_code, event.error_message);
            exit(1);
        }
        if (party_id) snprintf(party_id, 64, "%s", event.party_id);
        return;
    }
    fprintf(stderr, "FAILED: no event %d within 10 s\n", kind);
    exit(1);
}

static PlClient *connect_as(const char *user) {
    PlClient *client = pl_client_connect(server, NULL, cert, NULL, 0, user, user, NULL);
    if (!client) fail("connect");
    wait_for(client, PL_EVENT_CONNECTED, 0, NULL);
    return client;
}

/* A party of `stay` and `quitter`, led by the quitter when `quitter_leads`. */
static void party_of_two(PlClient *stay, PlClient *quitter, int quitter_leads, char *party) {
    PlClient *leader = quitter_leads ? quitter : stay;
    PlClient *member = quitter_leads ? stay : quitter;
    int64_t create = pl_create_party(leader, true, 4, "quit");
    if (create < 0) fail("create");
    wait_for(leader, PL_EVENT_REPLY, create, party);
    int64_t join = pl_join_party(member, party);
    if (join < 0) fail("join");
    wait_for(member, PL_EVENT_REPLY, join, NULL);
    if (!quitter_leads) {
        /* Seen before the quit, so it cannot be mistaken for what follows. */
        PlEvent event;
        double deadline = now() + 10.0;
        while (next_event(stay, &event, deadline)) {
            if (event.kind == PL_EVENT_MEMBER_JOINED && strcmp(event.party_id, party) == 0) return;
        }
        fail("stay never saw the quitter join");
    }
}

enum path { FREE_ALONE, CLOSE_THEN_FREE, CLOSE_POLL_FREE };
static const char *path_name[] = {"free alone", "close + free", "close + poll + free"};

static void quit(PlClient *quitter, enum path path) {
    if (path != FREE_ALONE && pl_client_close(quitter) != PL_OK) fail("close");
    if (path == CLOSE_POLL_FREE) {
        PlEvent event;
        double deadline = now() + AT_ONCE;
        for (;;) {
            if (!next_event(quitter, &event, deadline)) fail("no DISCONNECTED within 1 s of close");
            if (event.kind == PL_EVENT_CONNECTED) fail("CONNECTED after close");
            if (event.kind == PL_EVENT_DISCONNECTED) break;
        }
        if (event.error_code != PL_ERR_CLOSED) fail("DISCONNECTED without PL_ERR_CLOSED");
        if (pl_get_party(quitter, "67e55044-10b1-426f-9247-bb680e5fe0c8") != PL_ERR_CLOSED)
            fail("a command after DISCONNECTED is not PL_ERR_CLOSED");
    }
    pl_client_free(quitter);
}

/* Waits until `stay` saw `user` leave `party` (and, when `led`, the lead
 * come to stay): the seconds it took, or a failure after AT_ONCE. */
static double expect_left_at_once(PlClient *stay, const char *party, const char *user, int led,
                                  double quit_at) {
    int left = 0, lead_handed = !led;
    PlEvent event;
    while (!(left && lead_handed)) {
        if (!next_event(stay, &event, quit_at + AT_ONCE)) {
            fprintf(stderr, "FAILED: %s quit, but within %.1f s: left %d, lead handed %d\n", user,
                    AT_ONCE, left, lead_handed);
            exit(1);
        }
        int here = event.party_id && strcmp(event.party_id, party) == 0;
        int about = event.member.user_id && strcmp(event.member.user_id, user) == 0;
        if (event.kind == PL_EVENT_MEMBER_LEFT && here && about) {
            if (event.reason != PL_LEAVE_SESSION_ENDED) fail("left, but not as session ended");
            left = 1;
        } else if (event.kind == PL_EVENT_LEADER_CHANGED && here) {
            if (strcmp(event.member.user_id, "stay") != 0) fail("the lead went elsewhere");
            lead_handed = 1;
        } else if (event.kind == PL_EVENT_MEMBER_CONNECTION && about) {
            fprintf(stderr, "FAILED: %s quit, but the server saw a lost connection (a ghost)\n",
                    user);
            exit(1);
        }
    }
    return now() - quit_at;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST:PORT CERT.pem\n", argv[0]);
        return 2;
    }
    server = argv[1];
    cert = argv[2];
    PlClient *stay = connect_as("stay");
    for (int path = FREE_ALONE; path <= CLOSE_POLL_FREE; path++) {
        double slowest = 0;
        for (int round = 0; round < ROUNDS; round++) {
            char user[32], party[64];
            snprintf(user, sizeof user, "quitter-%d-%d", path, round);
            PlClient *quitter = connect_as(user);
            int quitter_leads = round % 2 == 0;
            party_of_two(stay, quitter, quitter_leads, party);
            double quit_at = now();
            quit(quitter, (enum path)path);
            double took = expect_left_at_once(stay, party, user, quitter_leads, quit_at);
            if (took > slowest) slowest = took;
            int64_t leave = pl_leave_party(stay, party);
            if (leave < 0) fail("stay leaves");
            wait_for(stay, PL_EVENT_REPLY, leave, NULL);
        }
        printf("%s: %d quits, the others told within %.3f s at most\n", path_name[path], ROUNDS,
               slowest);
    }
    pl_client_free(stay);
    printf("every quit ended its session at once\n");
    return 0;
}
