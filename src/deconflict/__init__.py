def hello() -> str:
    return "Hello from deconflict!"
