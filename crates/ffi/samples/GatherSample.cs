// Find, invite, gather through the C# wrapper: four players, one process.
//
//   mcs -out:GatherSample.exe crates/ffi/csharp/Partyline.cs crates/ffi/samples/GatherSample.cs
//   LD_LIBRARY_PATH=target/debug mono GatherSample.exe 127.0.0.1:7350 certs/cert.pem
//
// The same story as gather.c: Ana follows Bob and Cyd; she invites Bob into
// her closed party and Cyd declines; Cyd joins by a join code; Dav finds the
// listed party by a property; party state and Bob's attributes reach the
// others and the snapshot; Ana bans Cyd, whose rejoin is refused; Bob going
// offline reaches Ana. Every step checks what it got.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Partyline;

static class GatherSample
{
    static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    /// <summary>A client and the events it has seen but nobody has waited for yet.</summary>
    sealed class Player
    {
        public readonly string Name;
        public readonly PartylineClient Client;
        public readonly List<PartyEvent> Seen = new List<PartyEvent>();

        public Player(string name, PartylineClient client)
        {
            Name = name;
            Client = client;
            client.OnEvent += e => Seen.Add(e);
        }
    }

    static readonly List<Player> Players = new List<Player>();

    sealed class Failure : Exception
    {
        public Failure(string message) : base(message) { }
    }

    static void Expect(bool condition, string what)
    {
        if (!condition) throw new Failure("expected " + what);
    }

    static void PollAll()
    {
        foreach (var player in Players) player.Client.Poll();
    }

    static T Wait<T>(Task<T> task, string what)
    {
        Wait((Task)task, what);
        return task.Result;
    }

    static void Wait(Task task, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!task.IsCompleted)
        {
            if (clock.Elapsed > Limit) throw new Failure("waited 10 s for " + what);
            PollAll();
            Thread.Sleep(1);
        }
        if (task.IsFaulted) throw new Failure(what + " failed: " + task.Exception.InnerException.Message);
    }

    /// <summary>The server's refusal code of a command that must fail.</summary>
    static int Refusal(Task task, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!task.IsCompleted)
        {
            if (clock.Elapsed > Limit) throw new Failure("waited 10 s for " + what);
            PollAll();
            Thread.Sleep(1);
        }
        var refused = task.Exception == null ? null : task.Exception.InnerException as PartylineException;
        if (refused == null) throw new Failure("expected " + what + " to be refused");
        return refused.Code;
    }

    /// <summary>Polls until the player sees an event of this kind (10 s at most); the
    /// events before it are printed and dropped.</summary>
    static PartyEvent WaitFor(Player player, EventKind kind)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            while (player.Seen.Count > 0)
            {
                var next = player.Seen[0];
                player.Seen.RemoveAt(0);
                if (next.Kind == kind) return next;
                if (next.Kind == EventKind.Disconnected)
                    throw new Failure(player.Name + " disconnected: " + next.ErrorMessage);
                Console.WriteLine("  ({0} also saw {1})", player.Name, next.Kind);
            }
            if (clock.Elapsed > Limit) throw new Failure(player.Name + " waited 10 s for " + kind);
            PollAll();
            Thread.Sleep(1);
        }
    }

    static Player Join(string server, string cert, string name)
    {
        var player = new Player(name, PartylineClient.Connect(server, cert, name, name));
        Players.Add(player);
        Wait(player.Client.WhenConnected, name + " connecting");
        WaitFor(player, EventKind.Connected);
        Console.WriteLine("{0} connected", name);
        return player;
    }

    static Dictionary<string, string> Map(params string[] keysAndValues)
    {
        var map = new Dictionary<string, string>();
        for (int i = 0; i + 1 < keysAndValues.Length; i += 2) map[keysAndValues[i]] = keysAndValues[i + 1];
        return map;
    }

    /// <summary>The same pairs, and got's in key order (as the server keeps them).</summary>
    static bool Same(IDictionary<string, string> got, IDictionary<string, string> want)
    {
        return got != null && got.SequenceEqual(want.OrderBy(p => p.Key, StringComparer.Ordinal));
    }

    static void Story(string server, string cert)
    {
        var ana = Join(server, cert, "ana");
        var cyd = Join(server, cert, "cyd");
        int statusEvents = 0;
        ana.Client.OnStatusOnline += e => statusEvents++;
        ana.Client.OnStatusChanged += e => statusEvents++;

        // Status and follows: Cyd is online already, Bob comes later.
        Wait(ana.Client.SetStatus("in the menu"), "ana's status");
        UserStatus[] online = Wait(ana.Client.Follow("bob", "cyd"), "following");
        Expect(online.Length == 1 && online[0].Member.UserId == "cyd" && online[0].Status == "",
            "following to find Cyd (only) online");
        var bob = Join(server, cert, "bob");
        PartyEvent came = WaitFor(ana, EventKind.StatusOnline);
        Expect(came.Member.UserId == "bob" && came.Status == "", "Bob online");
        Wait(bob.Client.SetStatus("looking for a party"), "bob's status");
        PartyEvent changed = WaitFor(ana, EventKind.StatusChanged);
        Expect(changed.Member.UserId == "bob" && changed.Status == "looking for a party", "Bob's new status");
        Expect(statusEvents == 2, "OnStatusOnline and OnStatusChanged raised once each, not " + statusEvents);
        Console.WriteLine("ana sees bob online: \"{0}\"", changed.Status);

        // Ana's closed party, with state to start with.
        Party party = Wait(ana.Client.CreateParty(false, 4, "duel night", InvitePolicy.Leader, Map("mode", "duel")),
            "creating the party");
        Expect(!party.Open && party.InvitePolicy == InvitePolicy.Leader && Same(party.State, Map("mode", "duel"))
            && party.JoinCode == "" && !party.Listed && party.Members[0].Attributes.Count == 0,
            "a closed party with state mode=duel");

        // An invite seats Bob in the closed party.
        PartyEvent invited = null;
        bob.Client.OnInvited += e => invited = e;
        Wait(ana.Client.Invite(party.Id, "bob"), "inviting bob");
        PartyEvent seen = WaitFor(bob, EventKind.Invited);
        Expect(invited == seen, "OnInvited raised");
        PartyInvite invite = seen.Invite;
        Expect(seen.PartyId == party.Id && seen.Member.UserId == "ana" && invite != null
            && invite.PartyId == party.Id && invite.Label == "duel night" && invite.Inviter.UserId == "ana"
            && invite.Leader.UserId == "ana" && invite.MemberCount == 1 && invite.MaxSize == 4 && !invite.Open
            && invite.ExpiresAtMs > 0, "Bob's invite from Ana");
        PartyInvite[] pending = Wait(bob.Client.ListInvites(), "bob's invites");
        Expect(pending.Length == 1 && pending[0].PartyId == party.Id, "Bob's one pending invite");
        JoinResult joined = Wait(bob.Client.JoinParty(party.Id), "bob joining");
        Expect(!joined.Queued && joined.Party != null && joined.Party.Members.Length == 2,
            "the invite to seat Bob at once");
        Expect(WaitFor(ana, EventKind.MemberJoined).Member.UserId == "bob", "Bob seated");
        Console.WriteLine("bob was invited and is in ({0} members)", joined.Party.Members.Length);

        // Cyd declines; Ana is told.
        Wait(ana.Client.Invite(party.Id, "cyd"), "inviting cyd");
        Expect(WaitFor(cyd, EventKind.Invited).PartyId == party.Id, "Cyd's invite");
        Wait(cyd.Client.DeclineInvite(party.Id), "declining");
        PartyEvent declined = WaitFor(ana, EventKind.InviteDeclined);
        Expect(declined.PartyId == party.Id && declined.Member.UserId == "cyd", "Cyd's decline told to Ana");
        Expect(Wait(cyd.Client.ListInvites(), "cyd's invites").Length == 0, "no invite left for Cyd");
        Console.WriteLine("cyd declined; ana was told");

        // Ana opens the party, lets members invite, and makes a join code.
        Party updated = Wait(ana.Client.UpdateParty(party.Id, open: true, invitePolicy: InvitePolicy.AnyMember),
            "updating");
        Expect(updated.Open && updated.InvitePolicy == InvitePolicy.AnyMember, "an open party where any member invites");
        Expect(WaitFor(bob, EventKind.PartyUpdated).Party.InvitePolicy == InvitePolicy.AnyMember,
            "Bob to see the new policy");
        string code = Wait(ana.Client.CreateJoinCode(party.Id), "making a join code");
        Expect(code != null && code.Length == 6, "a 6-character join code");
        Expect(WaitFor(bob, EventKind.JoinCodeChanged).JoinCode == code, "Bob to see the code");
        JoinResult byCode = Wait(cyd.Client.JoinByCode(" " + code.ToLowerInvariant() + " "), "joining by code");
        Expect(!byCode.Queued && byCode.Party != null && byCode.Party.Id == party.Id
            && byCode.Party.Members.Length == 3 && byCode.Party.JoinCode == code, "Cyd seated by the code");
        Expect(WaitFor(ana, EventKind.MemberJoined).Member.UserId == "cyd", "Cyd seated");
        Console.WriteLine("cyd joined by code {0}", code);

        // Listing and search.
        var listing = Map("region", "eu", "mode", "duel");
        Wait(ana.Client.ListParty(party.Id, listing), "listing");
        PartyEvent listed = WaitFor(bob, EventKind.ListingChanged);
        Expect(listed.Listed && Same(listed.Properties, listing), "Bob to see the listing");
        var dav = Join(server, cert, "dav");
        SearchPage found = Wait(dav.Client.SearchParties(Map("region", "eu"), minFreeSeats: 1, limit: 10), "searching");
        Expect(found.Parties.Length == 1 && found.Parties[0].Id == party.Id && found.Parties[0].MemberCount == 3
            && found.Parties[0].MaxSize == 4 && found.Parties[0].Open && found.Parties[0].Label == "duel night"
            && Same(found.Parties[0].Properties, listing) && found.NextCursor == 0, "region=eu to find the party");
        found = Wait(dav.Client.SearchParties(Map("region", "us")), "searching us");
        Expect(found.Parties.Length == 0, "region=us to find nothing");
        Console.WriteLine("dav found the party by region=eu");

        // Party state and member attributes.
        Wait(ana.Client.SetPartyState(party.Id, Map("map", "docks"), new[] { "mode" }), "setting state");
        PartyEvent state = WaitFor(bob, EventKind.PartyStateChanged);
        Expect(state.PartyId == party.Id && Same(state.State, Map("map", "docks")), "Bob to see map=docks, mode removed");
        var mage = Map("ready", "yes", "hero", "mage");
        Wait(bob.Client.SetMemberAttributes(party.Id, mage), "bob's attributes");
        PartyEvent attributes = WaitFor(ana, EventKind.MemberAttributesChanged);
        Expect(attributes.Member.UserId == "bob" && Same(attributes.Attributes, mage), "Ana to see Bob's attributes");
        foreach (var viewer in new[] { ana, cyd })
        {
            Party snapshot = Wait(viewer.Client.GetParty(party.Id), viewer.Name + " reading the party");
            Expect(Same(snapshot.State, Map("map", "docks")) && snapshot.Listed && Same(snapshot.Properties, listing)
                && snapshot.JoinCode == code && snapshot.InvitePolicy == InvitePolicy.AnyMember,
                "the snapshot to show state, listing, code and policy");
            foreach (var member in snapshot.Members)
                Expect(Same(member.Attributes, member.UserId == "bob" ? mage : Map()),
                    member.UserId + "'s attributes in " + viewer.Name + "'s snapshot");
        }
        Console.WriteLine("ana and cyd see map=docks and bob's hero=mage in the party");

        // Ana bans Cyd: gone, told why, and kept out.
        Wait(ana.Client.Ban(party.Id, "cyd", TimeSpan.FromMinutes(1)), "banning cyd");
        PartyEvent banned = WaitFor(cyd, EventKind.Banned);
        Expect(banned.PartyId == party.Id && banned.UntilMs > 0, "Cyd told of the ban");
        PartyEvent left = WaitFor(bob, EventKind.MemberLeft);
        Expect(left.Member.UserId == "cyd" && left.Reason == 3, "Cyd gone with reason 3 (banned)");
        int code22 = Refusal(cyd.Client.JoinParty(party.Id), "cyd's rejoin");
        Expect(code22 == ErrorCodes.Banned && code22 == 22, "Cyd's rejoin refused with 22, not " + code22);
        PartyBan[] bans = Wait(ana.Client.ListBans(party.Id), "listing bans");
        Expect(bans.Length == 1 && bans[0].UserId == "cyd" && bans[0].UntilMs == banned.UntilMs, "one ban, Cyd's");
        Console.WriteLine("ana banned cyd (rejoin refused: {0})", code22);
        Wait(ana.Client.Unban(party.Id, "cyd"), "unbanning");
        Expect(Wait(ana.Client.ListBans(party.Id), "listing bans again").Length == 0, "no bans after the unban");

        // Bob goes offline; Ana is told.
        bob.Client.Close();
        PartyEvent offline = WaitFor(ana, EventKind.StatusOffline);
        Expect(offline.Member.UserId == "bob", "Bob offline");
        Console.WriteLine("ana saw bob go offline");
        foreach (var player in Players) player.Client.Dispose();
        Console.WriteLine("find, invite, gather passed");
    }

    static int Main(string[] args)
    {
        if (args.Length != 2)
        {
            Console.Error.WriteLine("usage: mono GatherSample.exe HOST:PORT CERT.pem");
            return 2;
        }
        try
        {
            Story(args[0], args[1]);
            return 0;
        }
        catch (Exception e)
        {
            var partyline = e as PartylineException;
            string why = e is Failure ? e.Message
                : partyline != null ? "error " + partyline.Code + ": " + partyline.Message
                : e.ToString();
            Console.Error.WriteLine("FAILED: " + why);
            return 1;
        }
        finally
        {
            foreach (var player in Players) player.Client.Dispose();
        }
    }
}
