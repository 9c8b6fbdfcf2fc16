"""The relay's benchmark: throughput, CPU, batches, rate limits and cold start against a local
Svix emulator, each beside the baseline it must be judged by. Run `python -m bench` (or
`make bench`) from the repository root; see bench/README.md."""
