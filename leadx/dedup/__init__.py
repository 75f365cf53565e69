"""Duplicate protection: the Redis record of who has seen which consumer (`store`), which checks
apply per vertical (`scopes`), and rebuilding the record from SQL (`rebuild`)."""
