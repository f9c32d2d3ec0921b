"""GeoSentinel: the platform behind connected safety bracelets."""

__version__ = "0.1.0"
