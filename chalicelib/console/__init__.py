"""The case team's console: server-rendered pages (Jinja2) on the same app, use cases and access
rules as the API (docs/CONSOLE.md)."""
