"""`serve status`: the state of each configured model endpoint, what it serves, the GPU memory it holds."""
