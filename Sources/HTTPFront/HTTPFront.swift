// HTTPFront module: see docs/architecture.md.
import NIOCore
enum HTTPFrontModule {}
