"""The torch-free study model: study files, manifests, imports, image files and the small pieces
(errors, atomic files, CLI option types) that the server and the analysis share with the engine.
Nothing here imports torch or the other two wings (tests/test_architecture.py)."""
