"""One router per capability: health/readiness, ask, chat completions, documents, models."""
