"""The read layer: what the explorer and the API show about versions and the timeline, read once."""
