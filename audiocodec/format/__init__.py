"""The `.ac` file format: the container (header, payload, checksum) and the entropy coding of the codes."""
