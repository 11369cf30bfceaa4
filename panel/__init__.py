"""The application core: entry points, config, secrets, local store and the demo fleet."""
