"""What the on-call runs: replay and reconcile, built on the delivery service and the adapters."""
