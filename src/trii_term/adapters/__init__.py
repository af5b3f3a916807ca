"""One package per venue: everything a venue needs (wire parsing, feed, broker, REST history,
instrument master, login) lives in `adapters/<venue>/`."""
