"""A local Svix API emulator with faults on demand, for the relay's tests and benchmark.

Start it with `python -m svix_emulator` (see README.md), or from tests with
`svix_emulator.testing.start_emulator`.
"""

DEFAULT_TOKEN = "testsk_emulator"  # noqa: S105 - a fixed token for tests, not a secret
