"""Everything that talks to the world, and the domain logic. Plain Python, no Qt.

Each call takes explicit arguments (dataclasses), returns dataclasses, and raises
subclasses of :class:`services.errors.PanelError` whose message is written for
the operator.
"""
