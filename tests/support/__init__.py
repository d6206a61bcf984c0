"""What the tests share, written once: builders of documents and services (``builders``), the live
server on loopback and its clients (``live``), the scripted hour of record (``day``), pages in a real
browser (``browser``) and the repository's folders (``paths``). The pytest fixtures over them are in
``tests/conftest.py``; test modules import from here, never from each other or from ``conftest``."""
