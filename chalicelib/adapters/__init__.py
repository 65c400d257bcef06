"""Adapters behind the ports: DynamoDB (PynamoDB), in-memory fakes, JWT verification."""
