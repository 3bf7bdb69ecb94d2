"""ssh layer."""
