"""One way to connect to Redis, over TLS and with a password when configured (`client`), and Redis
calls batched per event-loop turn (`pipeline`)."""
