"""The HTTP edge: routing (the route wrapper: tokens, Idempotency-Key, errors), validation (request
bodies against their schemas, complaints in plain words), requests (bodies into typed commands),
schemas (the request bodies' JSON Schemas) and views (aggregates as the API shows them).
Nothing here is imported by the domain or the use cases."""
