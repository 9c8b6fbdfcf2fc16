"""The entry points: HTTP (Pub/Sub push and direct posts), CloudEvent (Eventarc) and the CLI.

Each turns its input into a batch, hands it to the service, and decides its own answer.
"""
