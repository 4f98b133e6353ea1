"""Coding long audio with bounded memory: in chunks (`chunked`), signals held in memory (`signal`), and files
block by block (`files`)."""
