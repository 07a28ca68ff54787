"""What every layer shares: the domain's errors and the parsers of what users type."""
