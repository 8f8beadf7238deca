"""`kabar eval`: question sets (datasets), asking them (run), scoring the answers (metrics)."""
