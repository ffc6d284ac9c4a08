"""The case schema package: case specs, the board registry and prompt rendering."""
