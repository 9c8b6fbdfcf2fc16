"""`python -m svix_emulator`: see README.md for the flags and the control API."""

from svix_emulator.cli import main

main()
