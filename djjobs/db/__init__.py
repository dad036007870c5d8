"""Database specifics: every raw SQL statement (statements), the read model of counts (counts), the
fast job INSERT, the kept cursor, the private-API speed-ups, LISTEN/NOTIFY."""
