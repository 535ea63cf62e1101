// Matchmaking through the C# wrapper: a duo and two solos make a match of 4.
//
//   mcs -out:MatchmakingSample.exe crates/ffi/csharp/Partyline.cs crates/ffi/samples/MatchmakingSample.cs
//   LD_LIBRARY_PATH=target/debug mono MatchmakingSample.exe 127.0.0.1:7350 certs/cert.pem
//
// The same story as matchmaking.c: Ana queues her duo with Bob, each with a
// hero of their own; Cyd and Dav queue alone; all four are told of one match
// of 4 with a token for the game server, the duo's two players carrying its
// party id. Cyd queues again and cancels; refusals come back with their
// codes; Dav joining the duo cancels its new ticket. Every step checks what
// it got.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Partyline;

static class MatchmakingSample
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

    /// <summary>The same pairs, and got's in key order (as the server keeps them).</summary>
    static bool Same<T>(IDictionary<string, T> got, IDictionary<string, T> want)
    {
        return got != null && got.SequenceEqual(want.OrderBy(p => p.Key, StringComparer.Ordinal));
    }

    static Dictionary<string, string> Strings(params string[] keysAndValues)
    {
        var map = new Dictionary<string, string>();
        for (int i = 0; i + 1 < keysAndValues.Length; i += 2) map[keysAndValues[i]] = keysAndValues[i + 1];
        return map;
    }

    static Dictionary<string, long> Number(string key, long value)
    {
        return new Dictionary<string, long> { { key, value } };
    }

    /// <summary>What every ticket of the story says about itself and wants of others.</summary>
    static TicketRequest TicketForFour(string partyId, long skill)
    {
        return new TicketRequest
        {
            PartyId = partyId,
            MinCount = 4,
            MaxCount = 4,
            Strings = Strings("mode", "ranked"),
            Numbers = Number("skill", skill),
            QueryStrings = Strings("mode", "ranked"),
            QueryRanges = new Dictionary<string, NumberRange> { { "skill", new NumberRange(1000, 2000) } },
        };
    }

    /// <summary>The one player of the match with this user id.</summary>
    static MatchedPlayer PlayerOf(MatchFound match, string user)
    {
        var found = match.Players.Where(p => p.Member.UserId == user).ToArray();
        Expect(found.Length == 1, user + " once in the match");
        return found[0];
    }

    static void Story(string server, string cert)
    {
        var ana = Join(server, cert, "ana");
        var bob = Join(server, cert, "bob");
        var cyd = Join(server, cert, "cyd");
        var dav = Join(server, cert, "dav");
        int matchedEvents = 0;
        foreach (var player in Players) player.Client.OnMatched += e => matchedEvents++;

        // The duo: Ana's open party, Bob in it.
        Party party = Wait(ana.Client.CreateParty(true, 4, "duo"), "creating the party");
        JoinResult joined = Wait(bob.Client.JoinParty(party.Id), "bob joining");
        Expect(joined.Party != null && joined.Party.Members.Length == 2, "Bob seated, two members");
        Console.WriteLine("duo party {0}", party.Id);

        // Ana queues the duo, each member with a hero of their own.
        TicketRequest duo = TicketForFour(party.Id, 1200);
        duo.Members = new List<MemberProperties>
        {
            new MemberProperties { UserId = "ana", Strings = Strings("hero", "mage"), Numbers = Number("level", 7) },
            new MemberProperties { UserId = "bob", Strings = Strings("hero", "tank") },
        };
        ulong duoTicket = Wait(ana.Client.SubmitTicket(duo), "the duo's ticket");
        Expect(duoTicket > 0, "a ticket id");
        foreach (var member in new[] { ana, bob })
        {
            PartyEvent started = WaitFor(member, EventKind.TicketStarted);
            Expect(started.TicketId == duoTicket && started.PartyId == party.Id,
                "both of the duo told the party's ticket started");
        }
        int code = Refusal(ana.Client.SubmitTicket(duo), "a second ticket for the party");
        Expect(code == ErrorCodes.AlreadyMatchmaking && code == 29, "a second ticket refused with 29");
        Console.WriteLine("ana queued the duo (ticket {0}); a second ticket refused: {1}", duoTicket, code);

        // Cyd and Dav queue alone; Cyd may wait for 2 after the relax time.
        TicketRequest cydAlone = TicketForFour(null, 1500);
        cydAlone.RelaxedMinCount = 2;
        TicketRequest davAlone = TicketForFour(null, 1100);
        davAlone.Members = new[] { new MemberProperties { UserId = "dav", Strings = Strings("hero", "healer") } };
        ulong cydTicket = Wait(cyd.Client.SubmitTicket(cydAlone), "cyd's ticket");
        PartyEvent cydStarted = WaitFor(cyd, EventKind.TicketStarted);
        Expect(cydStarted.TicketId == cydTicket && cydStarted.PartyId == null,
            "Cyd's solo ticket started, without a party");
        ulong davTicket = Wait(dav.Client.SubmitTicket(davAlone), "dav's ticket");
        Expect(cydTicket != duoTicket && davTicket != cydTicket && davTicket != duoTicket, "three tickets, three ids");

        // One match of 4 reaches all four, each told its own ticket.
        var tickets = new Dictionary<Player, ulong> { { ana, duoTicket }, { bob, duoTicket }, { cyd, cydTicket }, { dav, davTicket } };
        MatchFound first = null;
        foreach (var player in new[] { ana, bob, cyd, dav })
        {
            PartyEvent e = WaitFor(player, EventKind.Matched);
            MatchFound match = e.Match;
            Expect(match != null && e.TicketId == tickets[player] && match.TicketId == tickets[player],
                "each player told the ticket it queued with");
            Expect(match.Players.Length == 4, "4 players in the match");
            Guid parsed;
            Expect(match.MatchId.Length == 36 && Guid.TryParse(match.MatchId, out parsed), "the match id as UUID text");
            Expect(!string.IsNullOrEmpty(match.Token), "a match token");
            Expect(match.TokenExpiresAt > (ulong)DateTimeOffset.UtcNow.ToUnixTimeSeconds(), "a token that has not expired");
            if (first == null) first = match;
            Expect(match.MatchId == first.MatchId && match.Token == first.Token && match.TokenExpiresAt == first.TokenExpiresAt,
                "one match, one token, for all four");
            MatchedPlayer a = PlayerOf(match, "ana"), b = PlayerOf(match, "bob"), c = PlayerOf(match, "cyd"), d = PlayerOf(match, "dav");
            Expect(a.PartyId == party.Id && b.PartyId == party.Id, "the duo's two players carrying its party id");
            Expect(c.PartyId == null && d.PartyId == null, "the solos carrying no party");
            Expect(a.Member.Username == "ana" && a.Member.SessionId.Length == 36, "a player's name and session");
            Expect(Same(a.Strings, Strings("mode", "ranked", "hero", "mage"))
                && Same(a.Numbers, new Dictionary<string, long> { { "skill", 1200 }, { "level", 7 } }),
                "Ana's ticket's properties and her own");
            Expect(Same(b.Strings, Strings("mode", "ranked", "hero", "tank")) && Same(b.Numbers, Number("skill", 1200)),
                "Bob's hero and the duo's skill");
            Expect(Same(c.Strings, Strings("mode", "ranked")) && Same(c.Numbers, Number("skill", 1500)),
                "Cyd's ticket's properties");
            Expect(Same(d.Strings, Strings("mode", "ranked", "hero", "healer")) && Same(d.Numbers, Number("skill", 1100)),
                "Dav's hero and skill");
        }
        Expect(matchedEvents == 4, "OnMatched raised once for each player, not " + matchedEvents);
        Console.WriteLine("all four matched: 4 players, the duo with its party, the solos without");
        Console.WriteLine("match {0} token {1} expires {2}", first.MatchId, first.Token, first.TokenExpiresAt);

        // Cyd queues again; a second ticket and a stranger's cancel are refused;
        // Cyd's own cancel is told with reason 0.
        TicketRequest again = TicketForFour(null, 1500);
        ulong nextTicket = Wait(cyd.Client.SubmitTicket(again), "cyd queueing again");
        Expect(nextTicket != cydTicket && WaitFor(cyd, EventKind.TicketStarted).TicketId == nextTicket, "a new ticket");
        int twice = Refusal(cyd.Client.SubmitTicket(again), "cyd queueing twice");
        Expect(twice == ErrorCodes.AlreadyMatchmaking, "a second solo ticket refused (29)");
        int stranger = Refusal(dav.Client.CancelTicket(nextTicket), "dav cancelling cyd's ticket");
        Expect(stranger == ErrorCodes.TicketNotFound && stranger == 30, "another's ticket not found for Dav (30)");
        Wait(cyd.Client.CancelTicket(nextTicket), "cyd cancelling");
        PartyEvent cancelled = WaitFor(cyd, EventKind.TicketCancelled);
        Expect(cancelled.TicketId == nextTicket && cancelled.Reason == 0, "Cyd's ticket cancelled with reason 0 (cancelled)");
        code = Refusal(cyd.Client.CancelTicket(nextTicket), "cancelling again");
        Expect(code == ErrorCodes.TicketNotFound, "a cancelled ticket not found (30)");
        Console.WriteLine("cyd cancelled ticket {0} (reason {1}); twice refused: {2}, by dav: {3}",
            nextTicket, cancelled.Reason, twice, stranger);

        // Tickets that cannot be.
        TicketRequest tooSmall = TicketForFour(party.Id, 1200);
        tooSmall.MinCount = tooSmall.MaxCount = 1;
        int tooLarge = Refusal(ana.Client.SubmitTicket(tooSmall), "a duo ticket for 1");
        Expect(tooLarge == ErrorCodes.PartyTooLarge && tooLarge == 32, "a party of 2 in a ticket for 1 refused with 32");
        TicketRequest noMultiple = TicketForFour(null, 1100);
        noMultiple.CountMultiple = 0;
        int invalid = Refusal(dav.Client.SubmitTicket(noMultiple), "count multiple 0");
        Expect(invalid == ErrorCodes.InvalidTicket && invalid == 31, "CountMultiple 0 refused with 31");
        int notLeader = Refusal(bob.Client.SubmitTicket(duo), "bob queueing the party");
        Expect(notLeader == 4, "a member queueing the party refused (4, NotLeader)");
        Console.WriteLine("refused: party too large {0}, invalid ticket {1}, not leader {2}", tooLarge, invalid, notLeader);

        // The duo queues again; Dav joining the party cancels it for both.
        ulong duoAgain = Wait(ana.Client.SubmitTicket(duo), "the duo queueing again");
        foreach (var member in new[] { ana, bob })
            Expect(WaitFor(member, EventKind.TicketStarted).TicketId == duoAgain, "the duo's new ticket started");
        Wait(dav.Client.JoinParty(party.Id), "dav joining the duo");
        foreach (var member in new[] { ana, bob })
        {
            cancelled = WaitFor(member, EventKind.TicketCancelled);
            Expect(cancelled.TicketId == duoAgain && cancelled.Reason == 1,
                "the party's ticket cancelled with reason 1 (members changed)");
        }
        Console.WriteLine("dav joined the duo: its ticket cancelled (reason {0})", cancelled.Reason);
        foreach (var player in Players) player.Client.Dispose();
        Console.WriteLine("matchmaking passed");
    }

    static int Main(string[] args)
    {
        if (args.Length != 2)
        {
            Console.Error.WriteLine("usage: mono MatchmakingSample.exe HOST:PORT CERT.pem");
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
