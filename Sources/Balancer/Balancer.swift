// Balancer module: see docs/architecture.md.
enum BalancerModule {}
