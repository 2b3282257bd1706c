"""Label sets of the five UER-py Chinese RoBERTa classifiers, and parsing of custom sets."""

PRESET_LABELS: dict[str, list[str]] = {
    "chinanews": [
        "mainland China politics",
        "Hong Kong - Macau politics",
        "International news",
        "financial news",
        "culture",
        "entertainment",
        "sports",
    ],
    "ifeng": [
        "mainland China politics",
        "international",
        "Taiwan - Hong Kong- Macau politics",
        "military",
        "society",
    ],
    "jd-full": ["star 1", "star 2", "star 3", "star 4", "star 5"],
    "jd-binary": ["negative (stars 1, 2 and 3)", "positive (stars 4 and 5)"],
    "dianping": ["negative (stars 1, 2 and 3)", "positive (stars 4 and 5)"],
}


def parse_labels(spec: str) -> list[str]:
    """A preset name (`chinanews`, ...) or a comma-separated list of label names."""
    if spec in PRESET_LABELS:
        return list(PRESET_LABELS[spec])
    labels = [part.strip() for part in spec.split(",") if part.strip()]
    if len(labels) < 2:
        raise ValueError(
            f"labels {spec!r}: give a preset ({', '.join(PRESET_LABELS)}) or at least two "
            "comma-separated names"
        )
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels {spec!r}: names must be unique")
    return labels
