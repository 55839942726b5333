"""The Show: analysis → tempo → events → routes → decks → one immutable ShowFrame per tick."""
