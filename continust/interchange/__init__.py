"""Getting history in and out: JSON Lines export and import, git import."""
