"""Replays: re-running a range of a stream's events through a reducer onto a shadow branch."""
