"""Running the service on one machine: emulated AWS (moto), the Chalice app, the event dispatcher.
Never packaged into the Lambda (Chalice ships app.py and chalicelib/ only)."""
