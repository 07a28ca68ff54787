"""Retention: setting a stream's policy, and compaction, which releases what the policy lets go."""
