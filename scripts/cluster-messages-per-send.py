#!/usr/bin/env python3
"""NATS messages per party datagram in a partyline cluster, as the code
routes them (src/server/cluster/mod.rs): a datagram from a member whose
party is homed on another node goes to the home (1 message), and the home
sends one message to each other node that holds a recipient (the sender's
own node included). Parties of SIZE, each member on a node drawn uniformly
from N, each member equally likely the sender; exact, by enumerating
every placement (sampled above 12 nodes for parties over 4).
    scripts/cluster-messages-per-send.py [SIZE]"""
import itertools
import random
import sys

size = int(sys.argv[1]) if len(sys.argv) > 1 else 4


def messages(nodes_of, sender):
    home = nodes_of[0]  # the leader created the party: its node is the home
    to_home = 1 if nodes_of[sender] != home else 0
    others = {node for i, node in enumerate(nodes_of) if i != sender and node != home}
    return to_home + len(others)


print(f"parties of {size}; member j of party p on node (p + j) % 2 (the benchmark): "
      f"{sum(messages([j % 2 for j in range(size)], s) for s in range(size)) / size:.3f}")
for n in (1, 2, 4, 8, 16, 38, 100):
    if n ** size <= 3_000_000:
        total = sum(messages(p, s) for p in itertools.product(range(n), repeat=size) for s in range(size))
        mean, how = total / (n ** size * size), "exact"
    else:
        rng = random.Random(1)
        draws = 400_000
        mean = sum(messages([rng.randrange(n) for _ in range(size)], rng.randrange(size)) for _ in range(draws)) / draws
        how = f"{draws:,} draws"
    print(f"{n:4d} nodes, members placed at random: {mean:.3f} messages per datagram ({how})")
