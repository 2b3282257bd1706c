"""Build tool (not product runtime): pretrain the small Chinese encoder behind `--preset tiny`."""
