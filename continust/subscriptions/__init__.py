"""Named, durable subscriptions to a project's log: catch-up subscribers that checkpoint
with their handler's writes, and persistent subscriptions with competing consumers."""
