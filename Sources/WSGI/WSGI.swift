// WSGI module: see docs/architecture.md.
import NIOCore
enum WSGIModule {}
