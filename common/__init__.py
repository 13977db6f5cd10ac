"""What rl/ and rewards/ both need, below both: imports nothing from either.

atomic_write (files appear complete or not at all), retry (one bounded retry loop), conversation (the
history "format 2" text, rendered and parsed in one place), errors (the user-error type and CLI entry),
progress (bars that stay quiet off a terminal).
"""
