def pytest_configure(config):
    config.addinivalue_line("markers", "hub: needs a real JupyterHub and configurable-http-proxy")
