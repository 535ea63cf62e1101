/* Matchmaking through the C ABI: a duo and two solos make a match of 4.
 *
 *   cc -std=c11 -I crates/ffi/include crates/ffi/samples/matchmaking.c \
 *      target/debug/libpartyline_ffi.a -lpthread -ldl -lm -o matchmaking
 *   ./matchmaking 127.0.0.1:7350 certs/cert.pem
 *
 * Ana leads a party with Bob and submits a ticket for both; Cyd and Dav
 * queue alone. Each ticket says what it is (mode, skill) and what it
 * wants (mode=ranked, skill 1000-2000); Ana and Bob add their own heroes.
 * All four are told of one match of 4 with a token for the game server;
 * the duo's two players carry the party id, the solos none. Then Cyd
 * queues again and cancels; a second ticket, a stranger's cancel, a party
 * too big for its ticket and a ticket that cannot work are refused with
 * their codes; and Dav joining the duo's party cancels its new ticket.
 * Every step checks the values it got, and exits non-zero on the first
 * that is wrong.
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

static void expect(int condition, const char *what) {
    if (!condition) {
        fprintf(stderr, "FAILED: expected %s\n", what);
        exit(1);
    }
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* A command's request id, or the end of the story. */
static int64_t sent(int64_t request, const char *what) {
    if (request < 0) fail(what);
    return request;
}

/* Polls until an event of `kind` arrives (for replies, the one for
 * `request_id`, whatever its error code); others are printed and skipped.
 * 10 s at most. */
static PlEvent next_of(PlClient *client, const char *who, int kind, int64_t request_id) {
    PlEvent event;
    for (int waited = 0; waited < 10000;) {
        int got = pl_client_poll(client, &event);
        if (got < 0) fail("poll");
        if (got == 0) {
            sleep_ms(1);
            waited++;
            continue;
        }
        if (event.kind == kind && (kind != PL_EVENT_REPLY || event.request_id == request_id))
            return event;
        if (event.kind == PL_EVENT_DISCONNECTED) {
            fprintf(stderr, "FAILED: %s disconnected: %s\n", who, event.error_message);
            exit(1);
        }
        printf("  (%s also saw event %d)\n", who, event.kind);
    }
    fprintf(stderr, "FAILED: %s waited 10 s for event %d\n", who, kind);
    exit(1);
}

static PlEvent wait_for(PlClient *client, const char *who, int kind) {
    return next_of(client, who, kind, 0);
}

/* The reply to `request`, which must have succeeded. */
static PlEvent ok(PlClient *client, const char *who, int64_t request) {
    PlEvent reply = next_of(client, who, PL_EVENT_REPLY, request);
    if (reply.error_code != 0) {
        fprintf(stderr, "FAILED: %s's request %lld refused: %d %s\n", who, (long long)request,
                reply.error_code, reply.error_message);
        exit(1);
    }
    return reply;
}

/* The code a refused request came back with (0 if it was not refused). */
static int refusal(PlClient *client, const char *who, int64_t request) {
    return next_of(client, who, PL_EVENT_REPLY, request).error_code;
}

static int same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static int has(PlKeyValues map, const char *key, const char *value) {
    for (size_t i = 0; i < map.count; i++)
        if (same(map.items[i].key, key)) return same(map.items[i].value, value);
    return 0;
}

static int has_number(PlKeyNumbers map, const char *key, int64_t value) {
    for (size_t i = 0; i < map.count; i++)
        if (same(map.items[i].key, key)) return map.items[i].value == value;
    return 0;
}

static PlClient *connect_as(const char *server, const char *cert, const char *user) {
    PlClient *client = pl_client_connect(server, NULL, cert, NULL, 0, user, user, NULL);
    if (!client) fail("connect");
    wait_for(client, user, PL_EVENT_CONNECTED);
    printf("%s connected\n", user);
    return client;
}

/* The one player of the match with this user id (exits if not exactly one). */
static const PlMatchedPlayer *player(const PlEvent *match, const char *user) {
    const PlMatchedPlayer *found = NULL;
    for (size_t i = 0; i < match->player_count; i++) {
        if (same(match->players[i].member.user_id, user)) {
            expect(found == NULL, "each player once in the match");
            found = &match->players[i];
        }
    }
    expect(found != NULL, "every player in the match");
    return found;
}

/* What every ticket of the story says about itself and wants of others. */
static const PlKeyValue RANKED[] = {{"mode", "ranked"}};
static const PlKeyRange SKILLED[] = {{"skill", 1000, 2000}};

static PlTicketRequest ticket_for_four(const char *party, const PlKeyNumber *skill) {
    PlTicketRequest ticket = {
        .party_id = party,
        .min_count = 4,
        .max_count = 4,
        .count_multiple = 1,
        .strings = RANKED,
        .string_count = 1,
        .numbers = skill,
        .number_count = 1,
        .query_strings = RANKED,
        .query_string_count = 1,
        .query_ranges = SKILLED,
        .query_range_count = 1,
    };
    return ticket;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST:PORT CERT.pem\n", argv[0]);
        return 2;
    }
    const char *server = argv[1], *cert = argv[2];
    PlClient *ana = connect_as(server, cert, "ana");
    PlClient *bob = connect_as(server, cert, "bob");
    PlClient *cyd = connect_as(server, cert, "cyd");
    PlClient *dav = connect_as(server, cert, "dav");

    /* The duo: Ana's open party, Bob in it. */
    PlEvent created = ok(ana, "ana", sent(pl_create_party(ana, true, 4, "duo"), "create"));
    char party[64];
    snprintf(party, sizeof party, "%s", created.party_id);
    PlEvent joined = ok(bob, "bob", sent(pl_join_party(bob, party), "bob joins"));
    expect(joined.has_party && joined.member_count == 2, "Bob seated, two members");
    printf("duo party %s\n", party);

    /* Ana queues the duo, each member with a hero of their own. */
    const PlKeyNumber duo_skill[] = {{"skill", 1200}};
    const PlKeyValue mage[] = {{"hero", "mage"}}, tank[] = {{"hero", "tank"}};
    const PlKeyNumber level[] = {{"level", 7}};
    const PlMemberProperties heroes[] = {
        {.user_id = "ana", .strings = mage, .string_count = 1, .numbers = level, .number_count = 1},
        {.user_id = "bob", .strings = tank, .string_count = 1},
    };
    PlTicketRequest duo = ticket_for_four(party, duo_skill);
    duo.members = heroes;
    duo.member_count = 2;
    PlEvent submitted = ok(ana, "ana", sent(pl_submit_ticket(ana, &duo), "duo ticket"));
    const uint64_t duo_ticket = submitted.ticket_id;
    expect(duo_ticket > 0, "a ticket id in the reply");
    PlClient *duo_players[] = {ana, bob};
    const char *duo_names[] = {"ana", "bob"};
    for (int i = 0; i < 2; i++) {
        PlEvent started = wait_for(duo_players[i], duo_names[i], PL_EVENT_TICKET_STARTED);
        expect(started.ticket_id == duo_ticket && same(started.party_id, party),
               "both of the duo told the party's ticket started");
    }
    int code = refusal(ana, "ana", sent(pl_submit_ticket(ana, &duo), "duo ticket again"));
    expect(code == PL_REFUSED_ALREADY_MATCHMAKING && code == 29,
           "a second ticket for the party refused with 29 (AlreadyMatchmaking)");
    printf("ana queued the duo (ticket %llu); a second ticket refused: %d\n",
           (unsigned long long)duo_ticket, code);

    /* Cyd and Dav queue alone; Cyd may wait for 2 after the relax time. */
    const PlKeyNumber cyd_skill[] = {{"skill", 1500}}, dav_skill[] = {{"skill", 1100}};
    PlTicketRequest cyd_alone = ticket_for_four(NULL, cyd_skill);
    cyd_alone.relaxed_min_count = 2;
    const PlKeyValue healer[] = {{"hero", "healer"}};
    const PlMemberProperties dav_hero[] = {{.user_id = "dav", .strings = healer, .string_count = 1}};
    PlTicketRequest dav_alone = ticket_for_four(NULL, dav_skill);
    dav_alone.members = dav_hero;
    dav_alone.member_count = 1;
    const uint64_t cyd_ticket =
        ok(cyd, "cyd", sent(pl_submit_ticket(cyd, &cyd_alone), "cyd's ticket")).ticket_id;
    PlEvent started = wait_for(cyd, "cyd", PL_EVENT_TICKET_STARTED);
    expect(started.ticket_id == cyd_ticket && started.party_id == NULL,
           "Cyd's solo ticket started, without a party");
    const uint64_t dav_ticket =
        ok(dav, "dav", sent(pl_submit_ticket(dav, &dav_alone), "dav's ticket")).ticket_id;
    expect(cyd_ticket != duo_ticket && dav_ticket != cyd_ticket && dav_ticket != duo_ticket,
           "three tickets, three ids");

    /* One match of 4 reaches all four, each told its own ticket. */
    PlClient *everyone[] = {ana, bob, cyd, dav};
    const char *names[] = {"ana", "bob", "cyd", "dav"};
    const uint64_t tickets[] = {duo_ticket, duo_ticket, cyd_ticket, dav_ticket};
    char match_id[64] = "", token[1024] = "";
    uint64_t expires = 0;
    for (int i = 0; i < 4; i++) {
        PlEvent match = wait_for(everyone[i], names[i], PL_EVENT_MATCHED);
        expect(match.ticket_id == tickets[i], "each player told the ticket it queued with");
        expect(match.player_count == 4 && match.players != NULL, "4 players in the match");
        expect(match.match_id && strlen(match.match_id) == 36 && match.match_id[8] == '-',
               "the match id as UUID text");
        expect(match.match_token && strlen(match.match_token) > 0 &&
                   strlen(match.match_token) < sizeof token,
               "a match token");
        expect(match.token_expires_at > (uint64_t)time(NULL), "a token that has not expired");
        if (i == 0) {
            snprintf(match_id, sizeof match_id, "%s", match.match_id);
            snprintf(token, sizeof token, "%s", match.match_token);
            expires = match.token_expires_at;
        }
        expect(same(match.match_id, match_id) && same(match.match_token, token) &&
                   match.token_expires_at == expires,
               "one match, one token, for all four");
        const PlMatchedPlayer *a = player(&match, "ana"), *b = player(&match, "bob"),
                              *c = player(&match, "cyd"), *d = player(&match, "dav");
        expect(same(a->party_id, party) && same(b->party_id, party),
               "the duo's two players carrying its party id");
        expect(c->party_id == NULL && d->party_id == NULL, "the solos carrying no party");
        expect(same(a->member.username, "ana") && a->member.session_id &&
                   strlen(a->member.session_id) == 36,
               "a player's name and session");
        expect(a->strings.count == 2 && has(a->strings, "mode", "ranked") &&
                   has(a->strings, "hero", "mage") && a->numbers.count == 2 &&
                   has_number(a->numbers, "skill", 1200) && has_number(a->numbers, "level", 7),
               "Ana's ticket's properties and her own");
        expect(b->strings.count == 2 && has(b->strings, "hero", "tank") && b->numbers.count == 1 &&
                   has_number(b->numbers, "skill", 1200),
               "Bob's hero and the duo's skill");
        expect(c->strings.count == 1 && has(c->strings, "mode", "ranked") &&
                   c->numbers.count == 1 && has_number(c->numbers, "skill", 1500),
               "Cyd's ticket's properties");
        expect(has(d->strings, "hero", "healer") && has_number(d->numbers, "skill", 1100),
               "Dav's hero and skill");
    }
    printf("all four matched: 4 players, the duo with its party, the solos without\n");
    printf("match %s token %s expires %llu\n", match_id, token, (unsigned long long)expires);

    /* Cyd queues again; a second ticket and a stranger's cancel are refused;
     * Cyd's own cancel is told with reason 0. */
    PlTicketRequest again = ticket_for_four(NULL, cyd_skill);
    const uint64_t next_ticket =
        ok(cyd, "cyd", sent(pl_submit_ticket(cyd, &again), "cyd queues again")).ticket_id;
    started = wait_for(cyd, "cyd", PL_EVENT_TICKET_STARTED);
    expect(next_ticket != cyd_ticket && started.ticket_id == next_ticket, "a new ticket");
    const int twice = refusal(cyd, "cyd", sent(pl_submit_ticket(cyd, &again), "cyd queues twice"));
    expect(twice == PL_REFUSED_ALREADY_MATCHMAKING, "a second solo ticket refused (29)");
    const int stranger =
        refusal(dav, "dav", sent(pl_cancel_ticket(dav, next_ticket), "dav cancels cyd's"));
    expect(stranger == PL_REFUSED_TICKET_NOT_FOUND && stranger == 30,
           "another's ticket not found for Dav (30)");
    ok(cyd, "cyd", sent(pl_cancel_ticket(cyd, next_ticket), "cyd cancels"));
    PlEvent cancelled = wait_for(cyd, "cyd", PL_EVENT_TICKET_CANCELLED);
    expect(cancelled.ticket_id == next_ticket && cancelled.reason == 0,
           "Cyd's ticket cancelled with reason 0 (cancelled)");
    code = refusal(cyd, "cyd", sent(pl_cancel_ticket(cyd, next_ticket), "cancel again"));
    expect(code == PL_REFUSED_TICKET_NOT_FOUND, "a cancelled ticket not found (30)");
    printf("cyd cancelled ticket %llu (reason %d); twice refused: %d, by dav: %d\n",
           (unsigned long long)next_ticket, cancelled.reason, twice, stranger);

    /* Tickets that cannot be. */
    PlTicketRequest too_small = ticket_for_four(party, duo_skill);
    too_small.min_count = 1;
    too_small.max_count = 1;
    const int too_large =
        refusal(ana, "ana", sent(pl_submit_ticket(ana, &too_small), "a duo ticket for 1"));
    expect(too_large == PL_REFUSED_PARTY_TOO_LARGE && too_large == 32,
           "a party of 2 in a ticket for 1 refused with 32 (PartyTooLarge)");
    PlTicketRequest no_multiple = ticket_for_four(NULL, dav_skill);
    no_multiple.count_multiple = 0;
    const int invalid =
        refusal(dav, "dav", sent(pl_submit_ticket(dav, &no_multiple), "count_multiple 0"));
    expect(invalid == PL_REFUSED_INVALID_TICKET && invalid == 31,
           "count_multiple 0 refused with 31 (InvalidTicket)");
    const int not_leader =
        refusal(bob, "bob", sent(pl_submit_ticket(bob, &duo), "bob queues the party"));
    expect(not_leader == PL_REFUSED_NOT_LEADER, "a member queueing the party refused (4)");
    printf("refused: party too large %d, invalid ticket %d, not leader %d\n", too_large, invalid,
           not_leader);

    /* The duo queues again; Dav joining the party cancels it for both. */
    const uint64_t duo_again =
        ok(ana, "ana", sent(pl_submit_ticket(ana, &duo), "duo queues again")).ticket_id;
    for (int i = 0; i < 2; i++) {
        started = wait_for(duo_players[i], duo_names[i], PL_EVENT_TICKET_STARTED);
        expect(started.ticket_id == duo_again, "the duo's new ticket started");
    }
    ok(dav, "dav", sent(pl_join_party(dav, party), "dav joins the duo"));
    for (int i = 0; i < 2; i++) {
        cancelled = wait_for(duo_players[i], duo_names[i], PL_EVENT_TICKET_CANCELLED);
        expect(cancelled.ticket_id == duo_again && cancelled.reason == 1,
               "the party's ticket cancelled with reason 1 (members changed)");
    }
    printf("dav joined the duo: its ticket cancelled (reason %d)\n", cancelled.reason);

    for (int i = 0; i < 4; i++) pl_client_free(everyone[i]);
    printf("matchmaking passed\n");
    return 0;
}
