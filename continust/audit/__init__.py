"""The audit trail and what is built on it: reviews, members, integrity proofs, blame, reports."""
