"""What the tests share, written once: builders of documents and services (``builders``), the live
server on loopback and its clients (``live``), the scripted hour of record (``day``) and the browser
pages (``browser``). The pytest fixtures over them are in ``tests/conftest.py``."""
