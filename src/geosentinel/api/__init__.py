"""The REST API (``/api/v1``), built with FastAPI; see :func:`geosentinel.api.app.create_api`."""
