"""The exchange's contracts: topic names and the code generated from proto/ (`make proto`)."""
