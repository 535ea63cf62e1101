/* A party's whole life through the C ABI: three players, one process.
 *
 *   cc -std=c11 -I crates/ffi/include crates/ffi/samples/party.c \
 *      target/debug/libpartyline_ffi.a -lpthread -ldl -lm -o party
 *   ./party 127.0.0.1:7350 certs/cert.pem
 *
 * Ana creates a closed party; Bob and Cyd ask to join and Ana accepts them;
 * data goes both ways (datagram and reliable); Ana calls a ready check,
 * Cyd is not ready then is, and all are ready; Ana mutes Bob's voice and
 * Cyd blocks Bob; Ana leaves, so Bob (seated
 * longest) leads; Bob closes the party and Cyd is told. A game would poll
 * once per frame instead of waiting; the waits here keep the story linear.
 */
#define _POSIX_C_SOURCE 199309L
#include "partyline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void fail(const char *what) {
    char message[512];
    pl_last_error(message, sizeof message);
    fprintf(stderr, "FAILED: %s (%s)\n", what, message);
    exit(1);
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Polls until an event of `kind` arrives (and, for replies, the one for
 * `request_id`); other events are printed and skipped. 10 s at most. */
static PlEvent wait_for(PlClient *client, const char *who, int kind, int64_t request_id) {
    PlEvent event;
    for (int waited = 0; waited < 10000; waited++) {
        int got = pl_client_poll_sized(client, &event, sizeof event);
        if (got < 0) fail("poll");
        if (got == 0) {
            sleep_ms(1);
            continue;
        }
        if (event.kind == kind && (kind != PL_EVENT_REPLY || event.request_id == request_id)) {
            if (kind == PL_EVENT_REPLY && event.error_code != 0) {
                fprintf(stderr, "FAILED: %s's request %lld refused: %d %s\n", who,
                        (long long)request_id, event.error_code, event.error_message);
                exit(1);
            }
            return event;
        }
        if (event.kind == PL_EVENT_DISCONNECTED) {
            fprintf(stderr, "FAILED: %s disconnected: %s\n", who, event.error_message);
            exit(1);
        }
        printf("  (%s also saw event %d)\n", who, event.kind);
    }
    fprintf(stderr, "FAILED: %s waited 10 s for event %d\n", who, kind);
    exit(1);
}

static PlClient *connect_as(const char *server, const char *cert, const char *user) {
    PlClient *client = pl_client_connect(server, NULL, cert, NULL, 0, user, user, NULL);
    if (!client) fail("connect");
    PlEvent connected = wait_for(client, user, PL_EVENT_CONNECTED, 0);
    printf("%s connected as session %s\n", connected.member.username, connected.session_id);
    return client;
}

static void expect(int condition, const char *what) {
    if (!condition) {
        fprintf(stderr, "FAILED: expected %s\n", what);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST:PORT CERT.pem\n", argv[0]);
        return 2;
    }
    const char *server = argv[1], *cert = argv[2];
    printf("libpartyline %s\n", pl_version());

    PlClient *ana = connect_as(server, cert, "ana");
    PlClient *bob = connect_as(server, cert, "bob");
    PlClient *cyd = connect_as(server, cert, "cyd");

    /* Ana creates a closed party of up to 4. */
    int64_t request = pl_create_party(ana, false, 4, "squad");
    if (request < 0) fail("create");
    PlEvent created = wait_for(ana, "ana", PL_EVENT_REPLY, request);
    char party[64];
    snprintf(party, sizeof party, "%s", created.party_id);
    expect(created.has_party && created.member_count == 1, "a party with its leader");
    printf("ana created party %s (label %s)\n", party, created.label);

    /* Bob and Cyd ask; Ana accepts each. */
    PlClient *askers[2] = {bob, cyd};
    const char *names[2] = {"bob", "cyd"};
    for (int i = 0; i < 2; i++) {
        request = pl_join_party(askers[i], party);
        if (request < 0) fail("join");
        PlEvent queued = wait_for(askers[i], names[i], PL_EVENT_REPLY, request);
        expect(queued.queued, "a queued join request");
        PlEvent asked = wait_for(ana, "ana", PL_EVENT_JOIN_REQUESTED, 0);
        printf("%s asks to join\n", asked.member.user_id);
        request = pl_accept(ana, party, names[i]);
        if (request < 0) fail("accept");
        wait_for(ana, "ana", PL_EVENT_REPLY, request);
        PlEvent joined = wait_for(askers[i], names[i], PL_EVENT_PARTY_JOINED, 0);
        printf("%s is in, %zu members, led by %s\n", names[i], joined.member_count,
               joined.leader.user_id);
    }

    /* Data both ways: a datagram from Ana, a reliable message back from Bob. */
    const char hello[] = "hello squad";
    if (pl_send_data(ana, party, 7, (const uint8_t *)hello, sizeof hello) != PL_OK)
        fail("send datagram");
    PlEvent data = wait_for(bob, "bob", PL_EVENT_DATA, 0);
    expect(data.op_code == 7 && data.data_len == sizeof hello &&
               memcmp(data.data, hello, sizeof hello) == 0 && !data.reliable,
           "Ana's datagram");
    printf("bob got a datagram from %s: %s\n", data.member.user_id, (const char *)data.data);
    const char ready[] = "ready";
    request = pl_send_data_reliable(bob, party, 8, (const uint8_t *)ready, sizeof ready);
    if (request < 0) fail("send reliable");
    wait_for(bob, "bob", PL_EVENT_REPLY, request);
    data = wait_for(ana, "ana", PL_EVENT_DATA, 0);
    expect(data.op_code == 8 && data.reliable && strcmp(data.member.user_id, "bob") == 0,
           "Bob's reliable message");
    printf("ana got a reliable message from %s: %s\n", data.member.user_id,
           (const char *)data.data);

    /* A ready check: Ana (counted ready) asks; Bob is ready; Cyd is not,
     * then is; the last ready answer ends it for everyone. */
    request = pl_start_ready_check(ana, party, "pull?", 30000);
    if (request < 0) fail("start ready check");
    wait_for(ana, "ana", PL_EVENT_REPLY, request);
    PlEvent check = wait_for(bob, "bob", PL_EVENT_READY_CHECK_STARTED, 0);
    expect(check.check_ready_count == 1 && check.check_no_answer_count == 2 &&
               strcmp(check.check_message, "pull?") == 0 && check.check_timeout_ms == 30000,
           "a check asking Bob and Cyd, Ana ready");
    uint64_t check_id = check.check_id;
    printf("%s asks: %s (check %llu)\n", check.member.user_id, check.check_message,
           (unsigned long long)check_id);
    request = pl_answer_ready_check(bob, party, check_id, true);
    if (request < 0) fail("answer");
    wait_for(bob, "bob", PL_EVENT_REPLY, request);
    wait_for(cyd, "cyd", PL_EVENT_READY_CHECK_STARTED, 0);
    request = pl_answer_ready_check(cyd, party, check_id, false);
    if (request < 0) fail("answer");
    wait_for(cyd, "cyd", PL_EVENT_REPLY, request);
    PlEvent answered = wait_for(ana, "ana", PL_EVENT_READY_CHECK_ANSWERED, 0);
    while (strcmp(answered.member.user_id, "cyd") != 0)
        answered = wait_for(ana, "ana", PL_EVENT_READY_CHECK_ANSWERED, 0);
    expect(!answered.ready, "Cyd not ready");
    request = pl_answer_ready_check(cyd, party, check_id, true);
    if (request < 0) fail("answer");
    wait_for(cyd, "cyd", PL_EVENT_REPLY, request);
    PlEvent ended = wait_for(ana, "ana", PL_EVENT_READY_CHECK_ENDED, 0);
    expect(ended.reason == PL_READY_CHECK_ALL_READY && ended.check_ready_count == 3 &&
               ended.check_id == check_id,
           "everyone ready");
    printf("ready check %llu: all %zu ready\n", (unsigned long long)ended.check_id,
           ended.check_ready_count);

    /* Ana mutes Bob's voice (op codes 100 to 199): his voice does not reach
     * her, his game data does (reliable data keeps its order, so the game's
     * message is the first she gets). Bob is not told. Cyd blocks Bob. */
    request = pl_mute(ana, party, "bob", true, 100, 199);
    if (request < 0) fail("mute");
    wait_for(ana, "ana", PL_EVENT_REPLY, request);
    request = pl_get_party(ana, party);
    if (request < 0) fail("get party");
    PlEvent view = wait_for(ana, "ana", PL_EVENT_REPLY, request);
    expect(view.muted_count == 1 && strcmp(view.muted[0].user_id, "bob") == 0 &&
               view.muted[0].has_op_codes && view.muted[0].op_code_min == 100 &&
               view.muted[0].op_code_max == 199,
           "Ana's view to show her mute of Bob's voice");
    const char voice[] = "voice", game[] = "game";
    request = pl_send_data_reliable(bob, party, 150, (const uint8_t *)voice, sizeof voice);
    if (request < 0) fail("send voice");
    wait_for(bob, "bob", PL_EVENT_REPLY, request);
    request = pl_send_data_reliable(bob, party, 2, (const uint8_t *)game, sizeof game);
    if (request < 0) fail("send game");
    wait_for(bob, "bob", PL_EVENT_REPLY, request);
    data = wait_for(ana, "ana", PL_EVENT_DATA, 0);
    expect(data.op_code == 2, "Bob's game data, not his voice");
    const char *blocked_ids[] = {"bob"};
    request = pl_block(cyd, blocked_ids, 1);
    if (request < 0) fail("block");
    PlEvent blocked = wait_for(cyd, "cyd", PL_EVENT_REPLY, request);
    expect(blocked.blocked_count == 1 && strcmp(blocked.blocked[0], "bob") == 0,
           "Cyd's list to name Bob");
    printf("ana muted bob's voice: got op code %lld only; cyd blocked %s\n",
           (long long)data.op_code, blocked.blocked[0]);

    /* Ana leaves: Bob, seated longest, leads. */
    request = pl_leave_party(ana, party);
    if (request < 0) fail("leave");
    wait_for(ana, "ana", PL_EVENT_REPLY, request);
    PlEvent leader = wait_for(cyd, "cyd", PL_EVENT_LEADER_CHANGED, 0);
    expect(strcmp(leader.member.user_id, "bob") == 0, "Bob to lead");
    printf("ana left; %s leads now\n", leader.member.user_id);

    /* Bob has the next leader chosen by connection quality; Cyd is told.
     * Every member's quality is in the party fields (as of that event). */
    request = pl_set_leader_policy(bob, party, PL_LEADER_POLICY_CONNECTION_QUALITY);
    if (request < 0) fail("set leader policy");
    PlEvent policy = wait_for(bob, "bob", PL_EVENT_REPLY, request);
    expect(policy.has_party && policy.leader_policy == PL_LEADER_POLICY_CONNECTION_QUALITY,
           "the new policy in the reply");
    PlEvent updated = wait_for(cyd, "cyd", PL_EVENT_PARTY_UPDATED, 0);
    expect(updated.leader_policy == PL_LEADER_POLICY_CONNECTION_QUALITY, "Cyd told the policy");
    expect(policy.member_count == 2 && policy.member_quality != NULL &&
               policy.member_quality[0] >= PL_QUALITY_UNKNOWN &&
               policy.member_quality[1] <= PL_QUALITY_POOR,
           "one quality per member");
    printf("bob set the leader policy: connection quality (qualities %d, %d)\n",
           policy.member_quality[0], policy.member_quality[1]);

    /* Bob closes the party; Cyd is told. */
    request = pl_close_party(bob, party);
    if (request < 0) fail("close");
    wait_for(bob, "bob", PL_EVENT_REPLY, request);
    PlEvent closed = wait_for(cyd, "cyd", PL_EVENT_PARTY_CLOSED, 0);
    expect(strcmp(closed.party_id, party) == 0, "the same party to close");
    printf("bob closed the party; cyd was told\n");

    /* An error is a code and a sentence. */
    expect(pl_join_party(cyd, "not-a-party") == PL_ERR_INVALID_ARGUMENT, "a bad party id refused");
    char message[256];
    pl_last_error(message, sizeof message);
    printf("a bad party id: %s\n", message);

    pl_client_close(cyd);
    wait_for(cyd, "cyd", PL_EVENT_DISCONNECTED, 0);
    pl_client_free(ana);
    pl_client_free(bob);
    pl_client_free(cyd);
    printf("the whole party life passed\n");
    return 0;
}
