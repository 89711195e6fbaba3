"""The REST API's shared parts: its URL map (`urls`: every app's endpoints under /api), the strict request
fields and id/index types (`fields`) and the schema and error helpers (`schema`) that every app's API uses."""
