"""Evaluation: evaluator networks, metrics, emotion classifier, motion-quality cues, report."""
