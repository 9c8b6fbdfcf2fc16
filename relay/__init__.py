"""The Gigs to Svix relay: one Svix message for every Gigs platform event."""
