"""Textual screens: each composes panes."""
