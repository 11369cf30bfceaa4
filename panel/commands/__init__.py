"""CLI commands of the features, registered by panel.cli."""
