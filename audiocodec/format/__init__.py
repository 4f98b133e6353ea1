"""The `.ac` file format: the container (`bitstream`), the entropy-coded payload (`entropy`), and the mapping
between a header and the model that reads it (`header`)."""
