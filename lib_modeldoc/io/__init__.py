"""Bytes in and out: format sniffing, header readers, lazy tensor reads and streaming writes.

Nothing in this package knows about Stable Diffusion.
"""
