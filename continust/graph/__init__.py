"""The version graph: lineage over plain data, the cached graph of a stream, causation."""
