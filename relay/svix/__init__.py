"""Svix, as the relay meets it: the two senders, their HTTP/1.1 client, what Svix's answers
mean, and the listing and look-ups the on-call's tools use.
"""
