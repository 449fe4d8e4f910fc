"""The HTTP face of the gateway: routes, dependencies, error rendering, request ids."""
