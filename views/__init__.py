"""The Qt face of the panel. Presents only; all work runs in ``services`` on worker threads."""
