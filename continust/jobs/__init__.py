"""Background jobs: the transactional outbox and the one lease protocol."""
