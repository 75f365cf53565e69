"""The prospect pool that customer lists are sold from."""
