"""Database specifics: the fast job INSERT, the kept cursor, the private-API speed-ups, LISTEN/NOTIFY."""
