"""The core: the event, the message, the outcome and their rules.

It knows nothing of Svix's API, Pub/Sub or HTTP, and does no I/O; every other folder imports it.
"""
