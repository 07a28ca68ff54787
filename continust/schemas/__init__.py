"""Event schemas: a registry of event types per project, and upcasting between versions."""
