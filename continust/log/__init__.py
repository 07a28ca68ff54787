"""The log: appending events to a stream's hash chain and the versions they make."""
