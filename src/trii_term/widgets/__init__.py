"""Textual widgets: each draws one pane or bar."""
