"""The ASGI apps the streaming benchmark compares, each served by uvicorn in its own process."""
