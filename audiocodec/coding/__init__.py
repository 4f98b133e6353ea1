"""Coding long audio with bounded memory: in chunks, as a stream, and whole files block by block."""
