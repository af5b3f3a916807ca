"""Charts without Textual: what a chart shows (spec), its bars (series, live forming bar) and how
it is drawn into a grid of character cells (render). The widgets only turn rows into strips."""


class SpecError(ValueError):
    """A chart request that cannot be honoured; the message says what to type instead. (Here,
    not in `spec`, so commands can catch it without importing numpy and polars.)"""
