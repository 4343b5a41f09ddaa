"""The pieces of Benchmarks/run: setup, servers, load, scenarios, report, chart, docs."""
