// Quitting ends the session at once, by each way Partyline.cs documents:
// Dispose(), and Close() then Dispose(). Twenty quits each, every other one
// by the party's leader: the player who stays must see MemberLeft
// (Reasons.LeaveSessionEnded), and the lead come to it, within 1 s; never
// MemberConnection (a ghost in the grace window).
//
//   mono Quit.exe HOST:PORT CERT.pem      (run by crates/ffi/tests/quit.rs)

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using Partyline;

static class Quit
{
    static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);
    static readonly TimeSpan AtOnce = TimeSpan.FromSeconds(1);
    static string server, cert;

    static void Fail(string what)
    {
        Console.Error.WriteLine("FAILED: " + what);
        Environment.Exit(1);
    }

    /// <summary>Polls until the task completes (10 s at most) and returns its result.</summary>
    static T Await<T>(PartylineClient client, Task<T> task)
    {
        var clock = Stopwatch.StartNew();
        while (!task.IsCompleted)
        {
            if (clock.Elapsed > Limit) Fail("no answer within 10 s");
            if (client.Poll() == 0) Thread.Sleep(1);
        }
        if (task.IsFaulted) Fail("refused: " + task.Exception.InnerException.Message);
        return task.Result;
    }

    static void Await(PartylineClient client, Task task)
    {
        Await(client, task.ContinueWith(t => { if (t.IsFaulted) throw t.Exception.InnerException; return true; },
            TaskContinuationOptions.ExecuteSynchronously));
    }

    static PartylineClient ConnectAs(string user)
    {
        var client = PartylineClient.Connect(server, cert, user, user);
        Await(client, client.WhenConnected);
        return client;
    }

    /// <summary>The next event `stay` sees, waiting until `deadline`; null when none came.</summary>
    static PartyEvent Next(PartylineClient client, Queue<PartyEvent> seen, Stopwatch clock, TimeSpan deadline)
    {
        while (seen.Count == 0)
        {
            if (clock.Elapsed > deadline) return null;
            if (client.Poll() == 0) Thread.Sleep(1);
        }
        return seen.Dequeue();
    }

    static void Main(string[] args)
    {
        if (args.Length != 2)
        {
            Console.Error.WriteLine("usage: Quit.exe HOST:PORT CERT.pem");
            Environment.Exit(2);
        }
        server = args[0];
        cert = args[1];
        var stay = ConnectAs("stay");
        var seen = new Queue<PartyEvent>();
        stay.OnEvent += e => seen.Enqueue(e);
        string[] paths = { "Dispose", "Close + Dispose" };
        for (int path = 0; path < paths.Length; path++)
        {
            double slowest = 0;
            for (int round = 0; round < 20; round++)
            {
                string user = "quitter-" + path + "-" + round;
                bool quitterLeads = round % 2 == 0;
                var quitter = ConnectAs(user);
                var leader = quitterLeads ? quitter : stay;
                var member = quitterLeads ? stay : quitter;
                string party = Await(leader, leader.CreateParty(true, 4, "quit")).Id;
                Await(member, member.JoinParty(party));
                if (!quitterLeads)
                {
                    // Seen before the quit, so it cannot be mistaken for what follows.
                    var joining = Stopwatch.StartNew();
                    for (;;)
                    {
                        var e = Next(stay, seen, joining, Limit);
                        if (e == null) Fail("stay never saw the quitter join");
                        if (e.Kind == EventKind.MemberJoined && e.PartyId == party) break;
                    }
                }
                var clock = Stopwatch.StartNew();
                if (path == 1) quitter.Close();
                quitter.Dispose();
                bool left = false, leadHanded = !quitterLeads;
                while (!(left && leadHanded))
                {
                    var e = Next(stay, seen, clock, AtOnce);
                    if (e == null) Fail(user + " quit, but within 1 s: left " + left + ", lead handed " + leadHanded);
                    bool here = e.PartyId == party;
                    bool about = e.Member != null && e.Member.UserId == user;
                    if (e.Kind == EventKind.MemberLeft && here && about)
                    {
                        if (e.Reason != Reasons.LeaveSessionEnded) Fail("left, but not as session ended");
                        left = true;
                    }
                    else if (e.Kind == EventKind.LeaderChanged && here)
                    {
                        if (e.Member.UserId != "stay") Fail("the lead went elsewhere");
                        leadHanded = true;
                    }
                    else if (e.Kind == EventKind.MemberConnection && about)
                    {
                        Fail(user + " quit, but the server saw a lost connection (a ghost)");
                    }
                }
                slowest = Math.Max(slowest, clock.Elapsed.TotalSeconds);
                Await(stay, stay.LeaveParty(party));
            }
            Console.WriteLine(paths[path] + ": 20 quits, the others told within " + slowest.ToString("0.000") + " s at most");
        }
        stay.Dispose();
        Console.WriteLine("every quit ended its session at once");
    }
}
