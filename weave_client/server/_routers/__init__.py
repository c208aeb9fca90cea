"""The local server's routes, one router per area, each over its store (see _app.create_app)."""
