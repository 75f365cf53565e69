"""One way to connect to Redis (`client`) and Redis calls batched per event-loop turn (`pipeline`)."""
