"""newsletter: self-hosted, personalised research-paper digests."""

__version__ = "0.1.0"
