// Supervisor module: see docs/architecture.md.
enum SupervisorModule {}
