"""Web page of the serving stack (for now: the state of each model endpoint)."""
