"""An app whose import fails: the stack must refuse to start and show this error."""
raise RuntimeError("stack_broken refuses to import")
