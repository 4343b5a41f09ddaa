"""An app whose worker dies while importing it (not an import error: the process just exits 1).
Restarting cannot help, but the master only learns that by trying: back-off, then give up."""
import os

os._exit(1)
