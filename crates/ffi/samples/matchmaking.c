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
 *
 * A reply is not ordered against the events its command causes, so each
 * player copies what it polls into an inbox and the story waits on that,
 * as a game loop would handle events whenever they come.
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

static void copy_text(char *to, size_t size, const char *text) {
    expect(!text || strlen(text) < size, "text that fits the sample's buffer");
    snprintf(to, size, "%s", text ? text : "");
}

/* The duo's party, which the players of a match are checked against. */
static char duo_party[64];

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

/* What every player must see in the match, checked while its pointers live. */
static void check_match(const PlEvent *match) {
    expect(match->player_count == 4 && match->players != NULL, "4 players in the match");
    expect(match->match_id && strlen(match->match_id) == 36 && match->match_id[8] == '-',
           "the match id as UUID text");
    expect(match->match_token && strlen(match->match_token) > 0, "a match token");
    expect(match->token_expires_at > (uint64_t)time(NULL), "a token that has not expired");
    const PlMatchedPlayer *a = player(match, "ana"), *b = player(match, "bob"),
                          *c = player(match, "cyd"), *d = player(match, "dav");
    expect(same(a->party_id, duo_party) && same(b->party_id, duo_party),
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
    expect(c->strings.count == 1 && has(c->strings, "mode", "ranked") && c->numbers.count == 1 &&
               has_number(c->numbers, "skill", 1500),
           "Cyd's ticket's properties");
    expect(has(d->strings, "hero", "healer") && has_number(d->numbers, "skill", 1100),
           "Dav's hero and skill");
}

/* What the story keeps of an event. A reply is not ordered against the
 * events its command causes (PL_EVENT_TICKET_STARTED may come before the
 * reply to pl_submit_ticket, PL_EVENT_TICKET_CANCELLED before the reply to
 * pl_cancel_ticket), and what an event points to dies at the next poll:
 * so each is copied as it comes, and the story waits on the copies. */
typedef struct {
    int kind;
    int64_t request_id;
    int error_code;
    char party_id[64]; /* "" for NULL */
    size_t member_count;
    uint64_t ticket_id;
    int reason;
    char match_id[64];
    char token[1024];
    uint64_t token_expires_at;
} Note;

typedef struct {
    const char *name;
    PlClient *client;
    Note inbox[32];
    size_t count;
} Player;

/* Polls once: a reply, connect or matchmaking event goes to the inbox,
 * others are printed and dropped. Returns 0 when nothing waited. */
static int pump(Player *p) {
    PlEvent event;
    int got = pl_client_poll_sized(p->client, &event, sizeof event);
    if (got < 0) fail("poll");
    if (got == 0) return 0;
    switch (event.kind) {
    case PL_EVENT_REPLY:
    case PL_EVENT_CONNECTED:
    case PL_EVENT_TICKET_STARTED:
    case PL_EVENT_TICKET_CANCELLED:
    case PL_EVENT_MATCHED:
        break;
    case PL_EVENT_DISCONNECTED:
        fprintf(stderr, "FAILED: %s disconnected: %s\n", p->name, event.error_message);
        exit(1);
    default:
        printf("  (%s also saw event %d)\n", p->name, event.kind);
        return 1;
    }
    if (event.kind == PL_EVENT_MATCHED) check_match(&event);
    expect(p->count < sizeof p->inbox / sizeof p->inbox[0], "room in the inbox");
    Note *note = &p->inbox[p->count++];
    memset(note, 0, sizeof *note);
    note->kind = event.kind;
    note->request_id = event.request_id;
    note->error_code = event.error_code;
    if (event.error_code != 0)
        printf("  (%s: request %lld refused: %d %s)\n", p->name, (long long)event.request_id,
               event.error_code, event.error_message);
    copy_text(note->party_id, sizeof note->party_id, event.party_id);
    note->member_count = event.member_count;
    note->ticket_id = event.ticket_id;
    note->reason = event.reason;
    copy_text(note->match_id, sizeof note->match_id, event.match_id);
    copy_text(note->token, sizeof note->token, event.match_token);
    note->token_expires_at = event.token_expires_at;
    return 1;
}

/* Takes the first note of `kind` (for replies, the one for `request_id`)
 * out of the inbox, polling until it comes; 10 s at most. */
static Note take(Player *p, int kind, int64_t request_id) {
    for (int waited = 0; waited < 10000;) {
        for (size_t i = 0; i < p->count; i++) {
            if (p->inbox[i].kind != kind ||
                (kind == PL_EVENT_REPLY && p->inbox[i].request_id != request_id))
                continue;
            Note note = p->inbox[i];
            memmove(&p->inbox[i], &p->inbox[i + 1], (p->count - i - 1) * sizeof(Note));
            p->count--;
            return note;
        }
        if (!pump(p)) {
            sleep_ms(1);
            waited++;
        }
    }
    fprintf(stderr, "FAILED: %s waited 10 s for event %d\n", p->name, kind);
    exit(1);
}

/* The reply to `request`, which must have succeeded. */
static Note ok(Player *p, int64_t request) {
    Note reply = take(p, PL_EVENT_REPLY, request);
    if (reply.error_code != 0) {
        fprintf(stderr, "FAILED: %s's request %lld refused: %d\n", p->name, (long long)request,
                reply.error_code);
        exit(1);
    }
    return reply;
}

/* The code a request came back with (0 if it was not refused). */
static int refusal(Player *p, int64_t request) {
    return take(p, PL_EVENT_REPLY, request).error_code;
}

static void connect_as(Player *p, const char *server, const char *cert, const char *user) {
    p->name = user;
    p->count = 0;
    p->client = pl_client_connect(server, NULL, cert, NULL, 0, user, user, NULL);
    if (!p->client) fail("connect");
    take(p, PL_EVENT_CONNECTED, 0);
    printf("%s connected\n", user);
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

static Player ana, bob, cyd, dav;

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST:PORT CERT.pem\n", argv[0]);
        return 2;
    }
    const char *server = argv[1], *cert = argv[2];
    connect_as(&ana, server, cert, "ana");
    connect_as(&bob, server, cert, "bob");
    connect_as(&cyd, server, cert, "cyd");
    connect_as(&dav, server, cert, "dav");

    /* The duo: Ana's open party, Bob in it. */
    Note created = ok(&ana, sent(pl_create_party(ana.client, true, 4, "duo"), "create"));
    copy_text(duo_party, sizeof duo_party, created.party_id);
    const char *party = duo_party;
    Note joined = ok(&bob, sent(pl_join_party(bob.client, party), "bob joins"));
    expect(same(joined.party_id, party) && joined.member_count == 2, "Bob seated, two members");
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
    const uint64_t duo_ticket =
        ok(&ana, sent(pl_submit_ticket(ana.client, &duo), "duo ticket")).ticket_id;
    expect(duo_ticket > 0, "a ticket id in the reply");
    Player *the_duo[] = {&ana, &bob};
    for (int i = 0; i < 2; i++) {
        Note started = take(the_duo[i], PL_EVENT_TICKET_STARTED, 0);
        expect(started.ticket_id == duo_ticket && same(started.party_id, party),
               "both of the duo told the party's ticket started");
    }
    int code = refusal(&ana, sent(pl_submit_ticket(ana.client, &duo), "duo ticket again"));
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
        ok(&cyd, sent(pl_submit_ticket(cyd.client, &cyd_alone), "cyd's ticket")).ticket_id;
    Note started = take(&cyd, PL_EVENT_TICKET_STARTED, 0);
    expect(started.ticket_id == cyd_ticket && started.party_id[0] == '\0',
           "Cyd's solo ticket started, without a party (NULL)");
    const uint64_t dav_ticket =
        ok(&dav, sent(pl_submit_ticket(dav.client, &dav_alone), "dav's ticket")).ticket_id;
    expect(cyd_ticket != duo_ticket && dav_ticket != cyd_ticket && dav_ticket != duo_ticket,
           "three tickets, three ids");

    /* One match of 4 reaches all four (each checked as it came, in pump),
     * each told its own ticket. */
    Player *everyone[] = {&ana, &bob, &cyd, &dav};
    const uint64_t tickets[] = {duo_ticket, duo_ticket, cyd_ticket, dav_ticket};
    Note first = take(&ana, PL_EVENT_MATCHED, 0);
    for (int i = 0; i < 4; i++) {
        Note match = i == 0 ? first : take(everyone[i], PL_EVENT_MATCHED, 0);
        expect(match.ticket_id == tickets[i], "each player told the ticket it queued with");
        expect(same(match.match_id, first.match_id) && same(match.token, first.token) &&
                   match.token_expires_at == first.token_expires_at,
               "one match, one token, for all four");
    }
    printf("all four matched: 4 players, the duo with its party, the solos without\n");
    printf("match %s token %s expires %llu\n", first.match_id, first.token,
           (unsigned long long)first.token_expires_at);

    /* Cyd queues again; a second ticket and a stranger's cancel are refused;
     * Cyd's own cancel is told with reason 0. */
    PlTicketRequest again = ticket_for_four(NULL, cyd_skill);
    const uint64_t next_ticket =
        ok(&cyd, sent(pl_submit_ticket(cyd.client, &again), "cyd queues again")).ticket_id;
    started = take(&cyd, PL_EVENT_TICKET_STARTED, 0);
    expect(next_ticket != cyd_ticket && started.ticket_id == next_ticket, "a new ticket");
    const int twice = refusal(&cyd, sent(pl_submit_ticket(cyd.client, &again), "cyd queues twice"));
    expect(twice == PL_REFUSED_ALREADY_MATCHMAKING, "a second solo ticket refused (29)");
    const int stranger =
        refusal(&dav, sent(pl_cancel_ticket(dav.client, next_ticket), "dav cancels cyd's"));
    expect(stranger == PL_REFUSED_TICKET_NOT_FOUND && stranger == 30,
           "another's ticket not found for Dav (30)");
    ok(&cyd, sent(pl_cancel_ticket(cyd.client, next_ticket), "cyd cancels"));
    Note cancelled = take(&cyd, PL_EVENT_TICKET_CANCELLED, 0);
    expect(cancelled.ticket_id == next_ticket && cancelled.reason == 0,
           "Cyd's ticket cancelled with reason 0 (cancelled)");
    code = refusal(&cyd, sent(pl_cancel_ticket(cyd.client, next_ticket), "cancel again"));
    expect(code == PL_REFUSED_TICKET_NOT_FOUND, "a cancelled ticket not found (30)");
    printf("cyd cancelled ticket %llu (reason %d); twice refused: %d, by dav: %d\n",
           (unsigned long long)next_ticket, cancelled.reason, twice, stranger);

    /* Tickets that cannot be. */
    PlTicketRequest too_small = ticket_for_four(party, duo_skill);
    too_small.min_count = 1;
    too_small.max_count = 1;
    const int too_large =
        refusal(&ana, sent(pl_submit_ticket(ana.client, &too_small), "a duo ticket for 1"));
    expect(too_large == PL_REFUSED_PARTY_TOO_LARGE && too_large == 32,
           "a party of 2 in a ticket for 1 refused with 32 (PartyTooLarge)");
    PlTicketRequest no_multiple = ticket_for_four(NULL, dav_skill);
    no_multiple.count_multiple = 0;
    const int invalid =
        refusal(&dav, sent(pl_submit_ticket(dav.client, &no_multiple), "count_multiple 0"));
    expect(invalid == PL_REFUSED_INVALID_TICKET && invalid == 31,
           "count_multiple 0 refused with 31 (InvalidTicket)");
    const int not_leader =
        refusal(&bob, sent(pl_submit_ticket(bob.client, &duo), "bob queues the party"));
    expect(not_leader == PL_REFUSED_NOT_LEADER, "a member queueing the party refused (4)");
    printf("refused: party too large %d, invalid ticket %d, not leader %d\n", too_large, invalid,
           not_leader);

    /* The duo queues again; Dav joining the party cancels it for both. */
    const uint64_t duo_again =
        ok(&ana, sent(pl_submit_ticket(ana.client, &duo), "duo queues again")).ticket_id;
    for (int i = 0; i < 2; i++) {
        started = take(the_duo[i], PL_EVENT_TICKET_STARTED, 0);
        expect(started.ticket_id == duo_again, "the duo's new ticket started");
    }
    ok(&dav, sent(pl_join_party(dav.client, party), "dav joins the duo"));
    for (int i = 0; i < 2; i++) {
        cancelled = take(the_duo[i], PL_EVENT_TICKET_CANCELLED, 0);
        expect(cancelled.ticket_id == duo_again && cancelled.reason == 1,
               "the party's ticket cancelled with reason 1 (members changed)");
    }
    printf("dav joined the duo: its ticket cancelled (reason %d)\n", cancelled.reason);

    for (int i = 0; i < 4; i++) pl_client_free(everyone[i]->client);
    printf("matchmaking passed\n");
    return 0;
}
