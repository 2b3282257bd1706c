"""`make demo`: train, classify, shadow, gate and swap on the embedded local stack."""
