"""Buyer-protection dispute service: domain, use cases and adapters behind the Chalice app."""
