// ReverseProxy module: see docs/architecture.md.
import NIOCore
enum ReverseProxyModule {}
