"""I/O only: sockets and HTTP servers that feed decoders and write replies back."""
