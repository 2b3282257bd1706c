"""The chaos run (`make chaos`): workers killed and restarted, Redis restarted, a hot swap and
poison records, with every input accounted for from the output and dead-letter topics."""
