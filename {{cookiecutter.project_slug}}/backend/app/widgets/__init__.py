"""Widget cards the tools and actions show, each a ``.widget`` template and a builder."""
