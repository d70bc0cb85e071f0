"""Summary -> text and JSON. No decoding here."""
