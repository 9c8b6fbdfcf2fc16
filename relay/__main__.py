"""`python -m relay replay|reconcile|event-types sync`: the on-call's tools
(relay/entrypoints/cli.py)."""

import sys

from relay.entrypoints.cli import main

sys.exit(main())
