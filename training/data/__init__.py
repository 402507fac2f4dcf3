"""Dataset builders: the built-in synthetic world and the GoEmoji adapter over real data."""
