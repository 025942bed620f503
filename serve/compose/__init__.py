"""docker-compose.yml read without Docker: interpolation, the Compose Specification check, a typed view."""
