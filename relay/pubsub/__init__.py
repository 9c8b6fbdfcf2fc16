"""Pub/Sub, as the relay meets it: reading push requests, checking push tokens, parking poison
events on a topic, and pulling from a subscription for the on-call's tools.
"""
