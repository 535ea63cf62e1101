/* Find, invite, gather through the C ABI: four players, one process.
 *
 *   cc -std=c11 -I crates/ffi/include crates/ffi/samples/gather.c \
 *      target/debug/libpartyline_ffi.a -lpthread -ldl -lm -o gather
 *   ./gather 127.0.0.1:7350 certs/cert.pem
 *
 * Ana follows Bob and Cyd and sees them come online and change status.
 * She invites Bob into her closed party; Cyd declines his invite. Ana
 * opens the party and makes a join code, and Cyd joins by it; she lists
 * the party and Dav finds it by a property. Party state and Bob's
 * attributes reach the others and the party snapshot. Ana bans Cyd, whose
 * rejoin is refused, and Bob going offline reaches Ana. Every step checks
 * the values it got, and exits non-zero on the first that is wrong.
 */
#define _POSIX_C_SOURCE 199309L
#include "partyline.h"

#include <ctype.h>
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
        int got = pl_client_poll_sized(client, &event, sizeof event);
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

/* The value of `key` in a map, or NULL. */
static const char *get(PlKeyValues map, const char *key) {
    for (size_t i = 0; i < map.count; i++)
        if (strcmp(map.items[i].key, key) == 0) return map.items[i].value;
    return NULL;
}

static int has(PlKeyValues map, const char *key, const char *value) {
    const char *found = get(map, key);
    return found && strcmp(found, value) == 0;
}

static int same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static PlClient *connect_as(const char *server, const char *cert, const char *user) {
    PlClient *client = pl_client_connect(server, NULL, cert, NULL, 0, user, user, NULL);
    if (!client) fail("connect");
    wait_for(client, user, PL_EVENT_CONNECTED);
    printf("%s connected\n", user);
    return client;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST:PORT CERT.pem\n", argv[0]);
        return 2;
    }
    const char *server = argv[1], *cert = argv[2];
    PlClient *ana = connect_as(server, cert, "ana");
    PlClient *cyd = connect_as(server, cert, "cyd");

    /* Status and follows: Cyd is online already, Bob comes later. */
    ok(ana, "ana", sent(pl_set_status(ana, "in the menu", true), "set status"));
    const char *friends[] = {"bob", "cyd"};
    PlEvent followed = ok(ana, "ana", sent(pl_follow(ana, friends, 2), "follow"));
    expect(followed.status_count == 1 && same(followed.statuses[0].member.user_id, "cyd") &&
               same(followed.statuses[0].status, ""),
           "following to find Cyd (only) online, without status text");
    printf("ana follows bob and cyd; online now: %s\n", followed.statuses[0].member.user_id);
    PlClient *bob = connect_as(server, cert, "bob");
    PlEvent online = wait_for(ana, "ana", PL_EVENT_STATUS_ONLINE);
    expect(same(online.member.user_id, "bob") && same(online.status, ""), "Bob online");
    ok(bob, "bob", sent(pl_set_status(bob, "looking for a party", true), "bob's status"));
    PlEvent changed = wait_for(ana, "ana", PL_EVENT_STATUS_CHANGED);
    expect(same(changed.member.user_id, "bob") && same(changed.status, "looking for a party"),
           "Bob's new status");
    printf("ana sees bob online: \"%s\"\n", changed.status);

    /* Ana's closed party, with state to start with. */
    PlKeyValue duel[] = {{"mode", "duel"}};
    PlEvent created = ok(ana, "ana",
                         sent(pl_create_party_ex(ana, false, 4, "duel night",
                                                 PL_INVITE_POLICY_LEADER, duel, 1),
                              "create"));
    expect(created.has_party && !created.open && created.invite_policy == PL_INVITE_POLICY_LEADER &&
               created.state.count == 1 && has(created.state, "mode", "duel") &&
               same(created.join_code, "") && !created.listed && created.member_attributes &&
               created.member_attributes[0].count == 0,
           "a closed party with state mode=duel, no code, unlisted");
    char party[64];
    snprintf(party, sizeof party, "%s", created.party_id);
    printf("ana created party %s\n", party);

    /* An invite seats Bob in the closed party. */
    ok(ana, "ana", sent(pl_invite(ana, party, "bob"), "invite bob"));
    PlEvent invited = wait_for(bob, "bob", PL_EVENT_INVITED);
    expect(same(invited.party_id, party) && same(invited.member.user_id, "ana") &&
               invited.invite_count == 1 && same(invited.invites[0].party_id, party) &&
               same(invited.invites[0].label, "duel night") &&
               same(invited.invites[0].inviter.user_id, "ana") &&
               same(invited.invites[0].leader.user_id, "ana") &&
               invited.invites[0].member_count == 1 && invited.invites[0].max_size == 4 &&
               !invited.invites[0].open && invited.invites[0].expires_at_ms > 0,
           "Bob's invite from Ana to \"duel night\"");
    PlEvent invites = ok(bob, "bob", sent(pl_list_invites(bob), "list invites"));
    expect(invites.invite_count == 1 && same(invites.invites[0].party_id, party),
           "Bob's one pending invite");
    PlEvent joined = ok(bob, "bob", sent(pl_join_party(bob, party), "bob joins"));
    expect(!joined.queued && joined.has_party && joined.member_count == 2,
           "the invite to seat Bob at once in the closed party");
    PlEvent seated = wait_for(ana, "ana", PL_EVENT_MEMBER_JOINED);
    expect(same(seated.member.user_id, "bob"), "Bob seated");
    printf("bob was invited and is in (%zu members)\n", joined.member_count);

    /* Cyd declines; Ana is told. */
    ok(ana, "ana", sent(pl_invite(ana, party, "cyd"), "invite cyd"));
    invited = wait_for(cyd, "cyd", PL_EVENT_INVITED);
    expect(same(invited.party_id, party), "Cyd's invite");
    ok(cyd, "cyd", sent(pl_decline_invite(cyd, party), "decline"));
    PlEvent declined = wait_for(ana, "ana", PL_EVENT_INVITE_DECLINED);
    expect(same(declined.party_id, party) && same(declined.member.user_id, "cyd"),
           "Cyd's decline told to Ana");
    invites = ok(cyd, "cyd", sent(pl_list_invites(cyd), "cyd's invites"));
    expect(invites.invite_count == 0, "no invite left for Cyd");
    printf("cyd declined; ana was told\n");

    /* Ana opens the party, lets members invite, and makes a join code. */
    PlEvent updated =
        ok(ana, "ana",
           sent(pl_update_party_ex(ana, party, 1, -1, NULL, PL_INVITE_POLICY_ANY_MEMBER), "update"));
    expect(updated.open && updated.invite_policy == PL_INVITE_POLICY_ANY_MEMBER,
           "an open party where any member invites");
    updated = wait_for(bob, "bob", PL_EVENT_PARTY_UPDATED);
    expect(updated.open && updated.invite_policy == PL_INVITE_POLICY_ANY_MEMBER,
           "Bob to see the new policy");
    PlEvent coded = ok(ana, "ana", sent(pl_create_join_code(ana, party), "join code"));
    expect(same(coded.party_id, party) && coded.join_code && strlen(coded.join_code) == 6,
           "a 6-character join code");
    char code[16];
    snprintf(code, sizeof code, "%s", coded.join_code);
    PlEvent code_changed = wait_for(bob, "bob", PL_EVENT_JOIN_CODE_CHANGED);
    expect(same(code_changed.party_id, party) && same(code_changed.join_code, code),
           "Bob to see the code");
    char typed[16];
    for (size_t i = 0; i <= strlen(code); i++) typed[i] = (char)tolower((unsigned char)code[i]);
    PlEvent by_code = ok(cyd, "cyd", sent(pl_join_by_code(cyd, typed), "join by code"));
    expect(!by_code.queued && by_code.has_party && same(by_code.party_id, party) &&
               by_code.member_count == 3 && same(by_code.join_code, code) &&
               has(by_code.state, "mode", "duel"),
           "Cyd seated by the code (typed in lower case)");
    seated = wait_for(ana, "ana", PL_EVENT_MEMBER_JOINED);
    expect(same(seated.member.user_id, "cyd"), "Cyd seated");
    PlEvent bad_code = next_of(cyd, "cyd", PL_EVENT_REPLY,
                               sent(pl_join_by_code(cyd, "2222-22"), "join by a wrong code"));
    expect(bad_code.error_code == PL_REFUSED_JOIN_CODE_NOT_FOUND, "a wrong code refused (23)");
    printf("cyd joined by code %s\n", code);

    /* Listing and search. */
    PlKeyValue listing[] = {{"region", "eu"}, {"mode", "duel"}};
    ok(ana, "ana", sent(pl_list_party(ana, party, listing, 2), "list"));
    PlEvent listed = wait_for(bob, "bob", PL_EVENT_LISTING_CHANGED);
    expect(listed.listed && listed.properties.count == 2 &&
               has(listed.properties, "region", "eu") && has(listed.properties, "mode", "duel"),
           "Bob to see the listing");
    PlClient *dav = connect_as(server, cert, "dav");
    PlKeyValue eu[] = {{"region", "eu"}};
    PlEvent found = ok(dav, "dav", sent(pl_search_parties(dav, false, 1, eu, 1, 10, 0), "search"));
    expect(found.party_count == 1 && same(found.parties[0].party_id, party) &&
               found.parties[0].member_count == 3 && found.parties[0].max_size == 4 &&
               found.parties[0].open && same(found.parties[0].label, "duel night") &&
               has(found.parties[0].properties, "region", "eu") && found.next_cursor == 0,
           "region=eu to find the party");
    PlKeyValue us[] = {{"region", "us"}};
    found = ok(dav, "dav", sent(pl_search_parties(dav, false, 0, us, 1, 10, 0), "search us"));
    expect(found.party_count == 0 && found.parties == NULL, "region=us to find nothing");
    found = ok(dav, "dav", sent(pl_search_parties(dav, false, 2, eu, 1, 10, 0), "search 2 free"));
    expect(found.party_count == 0, "two free seats to find nothing (3 of 4 taken)");
    printf("dav found the party by region=eu\n");

    /* Party state and member attributes. */
    const char *drop_mode[] = {"mode"};
    PlKeyValue docks[] = {{"map", "docks"}};
    ok(ana, "ana", sent(pl_set_party_state(ana, party, docks, 1, drop_mode, 1), "set state"));
    PlEvent state = wait_for(bob, "bob", PL_EVENT_PARTY_STATE_CHANGED);
    expect(same(state.party_id, party) && state.state.count == 1 &&
               has(state.state, "map", "docks"),
           "Bob to see the state map=docks, mode removed");
    PlKeyValue mage[] = {{"ready", "yes"}, {"hero", "mage"}};
    ok(bob, "bob", sent(pl_set_member_attributes(bob, party, mage, 2, NULL, 0), "attributes"));
    PlEvent attributes = wait_for(ana, "ana", PL_EVENT_MEMBER_ATTRIBUTES_CHANGED);
    expect(same(attributes.party_id, party) && same(attributes.member.user_id, "bob") &&
               attributes.attributes.count == 2 &&
               same(attributes.attributes.items[0].key, "hero") &&
               has(attributes.attributes, "hero", "mage") &&
               has(attributes.attributes, "ready", "yes"),
           "Ana to see Bob's attributes, in key order");
    PlClient *viewers[] = {ana, cyd};
    const char *viewer_names[] = {"ana", "cyd"};
    for (int v = 0; v < 2; v++) {
        PlEvent snapshot = ok(viewers[v], viewer_names[v],
                              sent(pl_get_party(viewers[v], party), "get party"));
        int bob_has_mage = 0;
        for (size_t i = 0; i < snapshot.member_count; i++) {
            if (same(snapshot.members[i].user_id, "bob"))
                bob_has_mage = has(snapshot.member_attributes[i], "hero", "mage") &&
                               snapshot.member_attributes[i].count == 2;
            else
                expect(snapshot.member_attributes[i].count == 0, "no attributes for the others");
        }
        expect(snapshot.state.count == 1 && has(snapshot.state, "map", "docks") && bob_has_mage &&
                   snapshot.listed && has(snapshot.properties, "region", "eu") &&
                   same(snapshot.join_code, code) &&
                   snapshot.invite_policy == PL_INVITE_POLICY_ANY_MEMBER,
               "the snapshot to show state, attributes, listing, code and policy");
    }
    printf("ana and cyd see map=docks and bob's hero=mage in the party\n");

    /* Ana bans Cyd: gone, told why, and kept out. */
    ok(ana, "ana", sent(pl_ban(ana, party, "cyd", 60000), "ban"));
    PlEvent banned = wait_for(cyd, "cyd", PL_EVENT_BANNED);
    expect(same(banned.party_id, party) && banned.until_ms > 0, "Cyd told of a 60 s ban");
    PlEvent left = wait_for(bob, "bob", PL_EVENT_MEMBER_LEFT);
    expect(same(left.member.user_id, "cyd") && left.reason == 3, "Cyd gone with reason 3 (banned)");
    PlEvent refused =
        next_of(cyd, "cyd", PL_EVENT_REPLY, sent(pl_join_party(cyd, party), "rejoin"));
    expect(refused.error_code == PL_REFUSED_BANNED && refused.error_code == 22,
           "Cyd's rejoin refused with 22 (Banned)");
    refused = next_of(cyd, "cyd", PL_EVENT_REPLY, sent(pl_join_by_code(cyd, code), "code rejoin"));
    expect(refused.error_code == PL_REFUSED_BANNED, "Cyd's join by code refused too");
    PlEvent bans = ok(ana, "ana", sent(pl_list_bans(ana, party), "list bans"));
    expect(same(bans.party_id, party) && bans.ban_count == 1 && same(bans.bans[0].user_id, "cyd") &&
               bans.bans[0].until_ms == banned.until_ms,
           "one ban, Cyd's, ending when Cyd was told");
    ok(ana, "ana", sent(pl_unban(ana, party, "cyd"), "unban"));
    bans = ok(ana, "ana", sent(pl_list_bans(ana, party), "list bans again"));
    expect(bans.ban_count == 0 && bans.bans == NULL, "no bans after the unban");
    printf("ana banned cyd (rejoin refused: %d), then lifted it\n", PL_REFUSED_BANNED);

    /* Offline: Ana stops following Cyd; of the two leaving, only Bob is told. */
    ok(ana, "ana", sent(pl_unfollow(ana, friends + 1, 1), "unfollow cyd"));
    pl_client_close(cyd);
    wait_for(cyd, "cyd", PL_EVENT_DISCONNECTED);
    pl_client_close(bob);
    PlEvent offline = wait_for(ana, "ana", PL_EVENT_STATUS_OFFLINE);
    expect(same(offline.member.user_id, "bob") && !offline.member.connected, "Bob offline");
    printf("ana saw bob go offline\n");

    pl_client_free(ana);
    pl_client_free(bob);
    pl_client_free(cyd);
    pl_client_free(dav);
    printf("find, invite, gather passed\n");
    return 0;
}
