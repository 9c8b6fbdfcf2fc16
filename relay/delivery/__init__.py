"""Delivery: every event of a batch becomes one Svix message or a reason, paced and retried
within the request's time budget. It talks to the outside only through the ports in ports.py.
"""
