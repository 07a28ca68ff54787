"""The HTTP API: personal tokens and the JSON endpoints over the domain."""
