"""The `streamclf` command line: wiring and rendering only."""
