"""What operators see: Prometheus metrics, structured logs, Server-Timing."""
