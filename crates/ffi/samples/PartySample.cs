// A party's whole life through the C# wrapper: three players, one process.
//
//   mcs -out:PartySample.exe crates/ffi/csharp/Partyline.cs crates/ffi/samples/PartySample.cs
//   LD_LIBRARY_PATH=target/debug mono PartySample.exe 127.0.0.1:7350 certs/cert.pem
//
// Ana creates a closed party; Bob and Cyd ask to join and Ana accepts them;
// data goes both ways (datagram and reliable); Ana leaves, so Bob (seated
// longest) leads; Bob closes the party and Cyd is told. A Unity game calls
// Poll() from Update() and awaits the Tasks; this console program drives
// Poll() itself, so the story stays linear.

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Partyline;

static class PartySample
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

    /// <summary>One frame: every client polls.</summary>
    static void PollAll()
    {
        foreach (var player in Players) player.Client.Poll();
    }

    /// <summary>Polls every client each millisecond until the task is done (10 s at most).</summary>
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
        Member me = Wait(player.Client.WhenConnected, name + " connecting");
        WaitFor(player, EventKind.Connected);
        Console.WriteLine("{0} connected as session {1}", me.Username, player.Client.SessionId);
        return player;
    }

    static string Names(IEnumerable<Member> members)
    {
        return string.Join(", ", members.Select(m => m.UserId).ToArray());
    }

    static void Story(string server, string cert)
    {
        Console.WriteLine("libpartyline {0}", PartylineClient.Version);
        var ana = Join(server, cert, "ana");
        var bob = Join(server, cert, "bob");
        var cyd = Join(server, cert, "cyd");

        // Ana creates a closed party of up to 4.
        Party party = Wait(ana.Client.CreateParty(false, 4, "squad"), "creating the party");
        Expect(party.Members.Length == 1 && party.Leader.UserId == "ana" && !party.Open && party.MaxSize == 4,
            "a closed party of 4 with its leader");
        Console.WriteLine("ana created party {0} (label {1})", party.Id, party.Label);

        // Bob and Cyd ask; Ana accepts each.
        foreach (var asker in new[] { bob, cyd })
        {
            JoinResult join = Wait(asker.Client.JoinParty(party.Id), asker.Name + " joining");
            Expect(join.Queued && join.Party == null, "a queued join request");
            PartyEvent asked = WaitFor(ana, EventKind.JoinRequested);
            Expect(asked.Member.UserId == asker.Name, asker.Name + " to ask");
            Member[] waiting = Wait(ana.Client.ListJoinRequests(party.Id), "listing join requests");
            Console.WriteLine("{0} asks to join (waiting: {1})", asked.Member.UserId, Names(waiting));
            Wait(ana.Client.Accept(party.Id, asker.Name), "accepting " + asker.Name);
            PartyEvent joined = WaitFor(asker, EventKind.PartyJoined);
            Console.WriteLine("{0} is in, {1} members, led by {2}", asker.Name, joined.Party.Members.Length,
                joined.Party.Leader.UserId);
        }
        Party seen = Wait(cyd.Client.GetParty(party.Id), "cyd reading the party");
        Expect(Names(seen.Members) == "ana, bob, cyd", "three members in seat order");

        // Ana renames it; everyone is told.
        Party renamed = Wait(ana.Client.UpdateParty(party.Id, label: "squad two"), "renaming");
        Expect(renamed.Label == "squad two" && renamed.MaxSize == 4 && !renamed.Open, "only the label to change");
        PartyEvent updated = WaitFor(bob, EventKind.PartyUpdated);
        Console.WriteLine("ana renamed the party; bob sees label {0}", updated.Party.Label);

        // Data both ways: a datagram from Ana, a reliable message back from Bob.
        byte[] hello = Encoding.UTF8.GetBytes("hello squad");
        ana.Client.SendData(party.Id, 7, hello);
        PartyEvent data = WaitFor(bob, EventKind.Data);
        Expect(data.OpCode == 7 && data.Data.SequenceEqual(hello) && !data.Reliable && data.Member.UserId == "ana",
            "Ana's datagram");
        Console.WriteLine("bob got a datagram from {0}: {1}", data.Member.UserId, Encoding.UTF8.GetString(data.Data));
        Wait(bob.Client.SendDataReliable(party.Id, 8, Encoding.UTF8.GetBytes("ready")), "bob sending");
        data = WaitFor(ana, EventKind.Data);
        Expect(data.OpCode == 8 && data.Reliable && data.Member.UserId == "bob", "Bob's reliable message");
        Console.WriteLine("ana got a reliable message from {0}: {1}", data.Member.UserId,
            Encoding.UTF8.GetString(data.Data));

        // A ready check: Ana (counted ready) asks; Bob is ready, Cyd is not and then is; the
        // last ready answer ends it. Cyd's view of the party shows it while it runs.
        Wait(ana.Client.StartReadyCheck(party.Id, "pull?", 30000), "starting a ready check");
        PartyEvent check = WaitFor(bob, EventKind.ReadyCheckStarted);
        Expect(check.ReadyCheck != null && Names(check.ReadyCheck.Ready) == "ana"
            && Names(check.ReadyCheck.NoAnswer) == "bob, cyd" && check.ReadyCheck.Message == "pull?",
            "a check asking Bob and Cyd, Ana ready");
        ulong checkId = check.ReadyCheck.CheckId;
        Wait(bob.Client.AnswerReadyCheck(party.Id, checkId, true), "bob answering");
        WaitFor(cyd, EventKind.ReadyCheckStarted);
        Party during = Wait(cyd.Client.GetParty(party.Id), "cyd reading the party");
        Expect(during.ReadyCheck != null && during.ReadyCheck.CheckId == checkId, "the running check in the party");
        Wait(cyd.Client.AnswerReadyCheck(party.Id, checkId, false), "cyd answering");
        Wait(cyd.Client.AnswerReadyCheck(party.Id, checkId, true), "cyd answering again");
        PartyEvent ended = WaitFor(ana, EventKind.ReadyCheckEnded);
        Expect(ended.Reason == Reasons.ReadyCheckAllReady && Names(ended.ReadyCheck.Ready) == "ana, bob, cyd",
            "everyone ready");
        Console.WriteLine("ready check {0}: {1} ready", ended.CheckId, Names(ended.ReadyCheck.Ready));

        // Ana mutes Bob's voice (op codes 100 to 199): his voice does not reach her, his game data
        // does (reliable data keeps its order: the game's message is the first she gets). Bob is not
        // told. Cyd blocks Bob: the reply lists him.
        Wait(ana.Client.Mute(party.Id, "bob", 100, 199), "ana muting bob's voice");
        Party muting = Wait(ana.Client.GetParty(party.Id), "ana reading the party");
        Expect(muting.Muted.Length == 1 && muting.Muted[0].UserId == "bob" && muting.Muted[0].HasOpCodes
            && muting.Muted[0].OpCodeMin == 100 && muting.Muted[0].OpCodeMax == 199,
            "Ana's view to show her mute of Bob's voice");
        Wait(bob.Client.SendDataReliable(party.Id, 150, Encoding.UTF8.GetBytes("voice")), "bob speaking");
        Wait(bob.Client.SendDataReliable(party.Id, 2, Encoding.UTF8.GetBytes("game")), "bob playing");
        data = WaitFor(ana, EventKind.Data);
        Expect(data.OpCode == 2 && data.Member.UserId == "bob", "Bob's game data, not his voice");
        string[] blocked = Wait(cyd.Client.Block("bob"), "cyd blocking bob");
        Expect(blocked.Length == 1 && blocked[0] == "bob", "Cyd's list to name Bob");
        Console.WriteLine("ana muted bob's voice: got op code {0} only; cyd blocked {1}", data.OpCode, blocked[0]);

        // Ana leaves: Bob, seated longest, leads.
        Wait(ana.Client.LeaveParty(party.Id), "ana leaving");
        PartyEvent leader = WaitFor(cyd, EventKind.LeaderChanged);
        Expect(leader.Member.UserId == "bob" && leader.PartyId == party.Id, "Bob to lead");
        Console.WriteLine("ana left; {0} leads now", leader.Member.UserId);

        // Bob has the next leader chosen by connection quality; Cyd is told, and each member's
        // quality comes with the party.
        Party chosen = Wait(bob.Client.SetLeaderPolicy(party.Id, LeaderPolicy.ConnectionQuality),
            "bob setting the leader policy");
        Expect(chosen.LeaderPolicy == LeaderPolicy.ConnectionQuality && chosen.Members.Length == 2,
            "the new policy in the reply");
        PartyEvent told = WaitFor(cyd, EventKind.PartyUpdated);
        Expect(told.Party != null && told.Party.LeaderPolicy == LeaderPolicy.ConnectionQuality,
            "Cyd told the policy");
        Console.WriteLine("bob set the leader policy: connection quality (bob's quality {0})",
            chosen.Members[0].Quality);

        // Bob closes the party; Cyd is told.
        Wait(bob.Client.CloseParty(party.Id), "bob closing");
        PartyEvent closed = WaitFor(cyd, EventKind.PartyClosed);
        Expect(closed.PartyId == party.Id, "the same party to close");
        Console.WriteLine("bob closed the party; cyd was told");

        // Errors: a bad argument throws at once; a refusal faults the Task.
        try
        {
            cyd.Client.JoinParty("not-a-party");
            throw new Failure("expected a bad party id to throw");
        }
        catch (PartylineException e)
        {
            Expect(e.Code == ErrorCodes.InvalidArgument, "InvalidArgument, not " + e.Code);
            Console.WriteLine("a bad party id: {0}", e.Message);
        }
        Task gone = cyd.Client.GetParty(party.Id);
        try
        {
            Wait(gone, "reading a closed party");
        }
        catch (Failure)
        {
        }
        var refused = gone.Exception == null ? null : gone.Exception.InnerException as PartylineException;
        Expect(refused != null && refused.Code > 0, "the server to refuse a closed party");
        Console.WriteLine("a closed party: code {0}, {1}", refused.Code, refused.Message);

        cyd.Client.Close();
        WaitFor(cyd, EventKind.Disconnected);
        foreach (var player in Players) player.Client.Dispose();
        foreach (var player in Players) player.Client.Dispose(); // twice is harmless
        Console.WriteLine("the whole party life passed");
    }

    static int Main(string[] args)
    {
        if (args.Length != 2)
        {
            Console.Error.WriteLine("usage: mono PartySample.exe HOST:PORT CERT.pem");
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
