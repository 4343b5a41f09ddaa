// CPython module: see docs/architecture.md.
enum CPythonModule {}
