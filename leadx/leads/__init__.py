"""What a lead is: vertical field schemas and verification, constraint rules, life-cycle status and
the PII identities that stand for a consumer."""
