"""Charts without Textual: what a chart shows (spec), its bars (series, live forming bar) and how
it is drawn into a grid of character cells (render). The widgets only turn rows into strips."""
