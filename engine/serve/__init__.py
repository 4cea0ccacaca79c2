"""The Litestar server. Never imports river, duckdb, polars, bytewax, sklearn or torch (an import-linter
contract checks it): it stays small and starts fast. The live dashboard lives in `engine.serve.dashboard`."""
