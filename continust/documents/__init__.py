"""Documents: structural diff, JSON Pointer and three-way merge of JSON states."""
