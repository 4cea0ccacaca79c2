"""Reference servers for bench/serve_http.py: the FastAPI peer and the bare ASGI limit."""
